// The fixed small volume extract_state_fuzz resumes on, shared with
// fuzz_seedgen (which makes the seed state files with the real Extract).
#ifndef VOLMGR_TESTS_FUZZ_EXTRACT_FIXTURE_H_
#define VOLMGR_TESTS_FUZZ_EXTRACT_FIXTURE_H_

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "dmtarget/sector_transform.h"
#include "tests/fuzz/fuzz_util.h"
#include "volmgr/recover/data_io.h"
#include "volmgr/recover/extract.h"

namespace volmgr::fuzz::extract {

inline constexpr uint32_t kSector = 4096;
inline constexpr uint64_t kPayload = 4 * kSector;
inline constexpr const char* kUuid = "6c3e1f5e-8a5b-4f0e-9d61-2b7c3f8a9e10";

struct Fixture {
  std::string dir, source, output;
  std::vector<uint8_t> plain;
  SecretBytes fvek;
  std::optional<recover::SegmentReader> reader;

  // A private directory holding the ciphertext; removed at exit.
  static Fixture* Make() {
    auto* fx = new Fixture;
    char tmpl[] = "/tmp/volmgr-fuzz-extract.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) SetupFailed("mkdtemp");
    fx->dir = tmpl;
    static std::string cleanup = "rm -rf " + fx->dir;
    std::atexit([] { (void)!std::system(cleanup.c_str()); });
    fx->source = fx->dir + "/source.img";
    fx->output = fx->dir + "/plain.img";
    auto key = SecretBytes::Allocate(64);
    if (!key.ok()) SetupFailed("secret memory");
    for (size_t i = 0; i < 64; ++i)
      key->RevealMutable()[i] = uint8_t(i * 7 + 1);
    fx->fvek = std::move(key).value();
    fx->plain.resize(kPayload);
    for (size_t i = 0; i < kPayload; ++i)
      fx->plain[i] = uint8_t(i * 13 + i / 4096);
    auto xts = dmtarget::XtsSectorTransform::Create(fx->fvek, kSector, 0, {});
    if (!xts.ok()) SetupFailed("XtsSectorTransform: " + xts.status().message());
    std::vector<uint8_t> ct(kPayload);
    if (!xts->Encrypt(0, fx->plain, ct).ok()) SetupFailed("Encrypt");
    int fd = open(fx->source.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  0600);
    if (fd < 0 || write(fd, ct.data(), ct.size()) != ssize_t(ct.size())) {
      SetupFailed("writing the source");
    }
    close(fd);
    recover::DataSegment seg;
    seg.uuid = kUuid;
    seg.cipher = "aes-xts-plain64";
    seg.sector_size = kSector;
    seg.data_offset_bytes = 0;
    seg.payload_bytes = kPayload;
    auto r = recover::SegmentReader::Open(fx->source, seg);
    if (!r.ok()) SetupFailed("SegmentReader: " + r.status().message());
    fx->reader.emplace(std::move(r).value());
    return fx;
  }

  StatusOr<recover::ExtractResult> Run(const recover::ExtractOptions& opt) {
    return recover::Extract(*reader, fvek, opt);
  }
};

}  // namespace volmgr::fuzz::extract

#endif  // VOLMGR_TESTS_FUZZ_EXTRACT_FIXTURE_H_
