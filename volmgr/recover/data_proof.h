// The proof that a device holds a key package's volume: the first data
// bytes decrypt, under the package's FVEK, to the checksum taken when the
// package was made (docs/FORMAT.md "Key package"). `rebuild`, `mount
// --key-package` and `verify --key-package` all prove it here.
//
// A proof over ciphertext whose bytes are all one value (zeros: never
// written, or discarded by TRIM; 0xff: erased flash) proves nothing: such
// bytes are the same on every blank device, so they decrypt to the same
// plaintext under one FVEK whichever volume the device holds, and another
// volume's package made over its own blank data area "matches" (issue 17,
// item 9). That outcome is kBlank, never kMatch.
//
// Thread-safety: reentrant.
#ifndef VOLMGR_RECOVER_DATA_PROOF_H_
#define VOLMGR_RECOVER_DATA_PROOF_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/recover/data_io.h"

namespace volmgr::recover {

enum class DataProof {
  kMatch,    // the plaintext checksum matches: the package's volume's data
  kDiffers,  // it does not: another volume, or the data changed since
  kBlank,    // the ciphertext is all one byte value: nothing can be proved
};

struct DataProofResult {
  DataProof result = DataProof::kDiffers;
  uint32_t bytes = 0;       // how many bytes were compared (whole sectors)
  uint8_t blank_value = 0;  // for kBlank: the one byte value
};

// Reads the first min(`check_bytes`, payload) bytes of the data segment,
// and decrypts them with `fvek` unless they are blank. kIoError when a
// sector of them cannot be read.
StatusOr<DataProofResult> ProveData(const SegmentReader& reader,
                                    const SecretBytes& fvek,
                                    uint32_t check_bytes,
                                    const std::array<uint8_t, 32>& sha256);

// The same for commands that must not go on without the proof: the result
// for kMatch, and for kBlank when `force`; kFailedPrecondition otherwise,
// saying why. `whose` names the package's volume ("volume UUID (label
// "x")"); `force_flag` ("--force", or empty when the command has none) is
// named as the way past a blank data area.
StatusOr<DataProofResult> RequireDataProof(
    const std::string& device, const std::string& whose,
    const SegmentReader& reader, const SecretBytes& fvek, uint32_t check_bytes,
    const std::array<uint8_t, 32>& sha256, bool force,
    std::string_view force_flag);

// "the first N data bytes of DEVICE are all zeros (never written, or
// discarded): ..." for a kBlank result.
std::string BlankDataMessage(const std::string& device,
                             const DataProofResult& r);

}  // namespace volmgr::recover

#endif  // VOLMGR_RECOVER_DATA_PROOF_H_
