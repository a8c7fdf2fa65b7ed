// An encrypted file container (volmgr/files/chunk_format.h,
// encrypted_file.h) as a store's data directory holds it: whoever can write
// STORE/data controls these bytes. Every way the code reads one: the
// mount's random-access Read, `files verify` (VerifyAll) and `files
// decrypt` (DecryptStream), under the fixed key the seeds were sealed with
// (fuzz_seedgen). Property: the three agree, so a container the verifier
// rejects never reads through the mount (issue 17 item 6: a store file cut
// to 60 bytes read as a valid empty file).
#include <fcntl.h>

#include <vector>

#include "tests/fuzz/fuzz_util.h"
#include "volmgr/files/encrypted_file.h"

namespace f = volmgr::files;

namespace {

const volmgr::SecretBytes& Key() {
  static const volmgr::SecretBytes* k = [] {
    auto s = volmgr::SecretBytes::CopyOf(
        std::string(f::kFileKeySize, char(volmgr::fuzz::kFileKeyByte)));
    if (!s.ok()) volmgr::fuzz::SetupFailed("secret memory");
    return new volmgr::SecretBytes(std::move(s).value());
  }();
  return *k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static volmgr::fuzz::MemFile* file = new volmgr::fuzz::MemFile;
  static const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  file->Set({data, size});
  // A chunk alone: Open never accepts what it was not sealed as.
  {
    f::FileHeader h;
    h.chunk_size = f::kMinChunkSize;
    auto c = f::ChunkCipher::Create(Key(), h);
    if (!c.ok()) volmgr::fuzz::SetupFailed("ChunkCipher");
    std::vector<uint8_t> out(
        size >= f::kChunkOverhead ? size - f::kChunkOverhead : 0);
    (void)c->Open(size % 3, size % 2, {data, size}, out);
  }
  auto header = f::ReadFileHeader(file->fd());
  if (!header.ok()) return 0;
  (void)f::ChunkLayout{header->chunk_size}.PlaintextSize(size);

  auto cipher = f::ChunkCipher::Create(Key(), *header);
  if (!cipher.ok()) volmgr::fuzz::SetupFailed("ChunkCipher");
  f::EncryptedFile ef(file->fd(), std::move(cipher).value());
  auto plain_size = ef.Size();
  bool read_ok = false;
  if (plain_size.ok()) {
    std::vector<uint8_t> buf(*plain_size + 1);
    auto got = ef.Read(0, buf);
    read_ok = got.ok() && *got == *plain_size;
    // A piece in the middle, as a FUSE read asks for.
    if (*plain_size > 2) {
      std::vector<uint8_t> piece(*plain_size / 2);
      (void)ef.Read(*plain_size / 3, piece);
    }
  }
  const bool verify_ok = ef.VerifyAll().ok();

  auto cipher2 = f::ChunkCipher::Create(Key(), *header);
  if (!cipher2.ok()) volmgr::fuzz::SetupFailed("ChunkCipher");
  lseek(file->fd(), f::kFileHeaderSize, SEEK_SET);
  auto dec = f::DecryptStream(file->fd(), devnull, *cipher2);
  const bool decrypt_ok = dec.ok();

  if (read_ok != verify_ok || verify_ok != decrypt_ok) {
    volmgr::fuzz::Violation(std::string("readers disagree: mount read ") +
                            (read_ok ? "accepts" : "rejects") + ", verify " +
                            (verify_ok ? "accepts" : "rejects") + ", decrypt " +
                            (decrypt_ok ? "accepts" : "rejects"));
  }
  return 0;
}
