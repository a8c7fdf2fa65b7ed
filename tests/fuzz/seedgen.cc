// fuzz_seedgen OUTDIR: the seeds that need the harnesses' fixed keys, made
// by the real code (make_corpora.sh runs it; the other corpora come from
// the CLI): file containers written by EncryptedFile and EncryptStream,
// property-mode inputs, encrypted names and symlink targets, and the state
// files a real Extract checkpoints.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tests/fuzz/extract_fixture.h"
#include "tests/fuzz/fuzz_util.h"
#include "volmgr/files/encrypted_file.h"
#include "volmgr/files/name_cipher.h"

namespace f = volmgr::files;
using volmgr::fuzz::MemFile;

namespace {

std::string out_dir;

void Put(const std::string& harness, const std::string& name,
         std::span<const uint8_t> bytes) {
  const std::string dir = out_dir + "/" + harness;
  mkdir(dir.c_str(), 0755);
  std::ofstream o(dir + "/" + name, std::ios::binary | std::ios::trunc);
  o.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (!o) volmgr::fuzz::SetupFailed("writing " + dir + "/" + name);
}
void Put(const std::string& harness, const std::string& name,
         const std::string& text) {
  Put(harness, name,
      {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

std::vector<uint8_t> Bytes(int fd) {
  const off_t n = lseek(fd, 0, SEEK_END);
  std::vector<uint8_t> v(n);
  if (pread(fd, v.data(), v.size(), 0) != n) volmgr::fuzz::SetupFailed("pread");
  return v;
}

void Containers() {
  auto key = volmgr::SecretBytes::CopyOf(
      std::string(f::kFileKeySize, char(volmgr::fuzz::kFileKeyByte)));
  for (uint32_t cs : {64u, 256u, 4096u}) {
    for (size_t len : {0, 1, 64, 100, 300, 1000}) {
      if (cs == 4096 && len > 300) continue;
      std::vector<uint8_t> plain(len);
      for (size_t i = 0; i < len; ++i) plain[i] = uint8_t('a' + i % 26);
      f::FileHeader h;
      h.chunk_size = cs;
      h.file_id.fill(uint8_t(len));
      MemFile out;
      {
        auto c = f::ChunkCipher::Create(*key, h);
        f::EncryptedFile ef(out.fd(), std::move(c).value());
        if (!ef.Initialize().ok() || !ef.Write(0, plain).ok()) {
          volmgr::fuzz::SetupFailed("EncryptedFile");
        }
      }
      Put("file_container",
          "write-c" + std::to_string(cs) + "-" + std::to_string(len),
          Bytes(out.fd()));
      MemFile in, out2;
      in.Set(plain);
      auto c = f::ChunkCipher::Create(*key, h);
      if (!f::EncryptStream(in.fd(), out2.fd(), *c).ok()) {
        volmgr::fuzz::SetupFailed("EncryptStream");
      }
      if (len == 100 || len == 0) {
        Put("file_container",
            "stream-c" + std::to_string(cs) + "-" + std::to_string(len),
            Bytes(out2.fd()));
      }
    }
  }
  // Property mode: one seed per mutation kind, over 0, 1 and a few chunks.
  for (int kind = 0; kind < 9; ++kind) {
    for (uint16_t len : {0, 1, 200}) {
      std::vector<uint8_t> in = {0,
                                 uint8_t(kind << 1 | (kind & 1)),
                                 uint8_t(len),
                                 uint8_t(len >> 8),
                                 uint8_t(37 + kind * 11),
                                 0,
                                 0,
                                 0,
                                 uint8_t(kind * 3),
                                 0x41};
      for (char ch : std::string("plaintext of a store file")) in.push_back(ch);
      Put("file_container_property",
          "kind" + std::to_string(kind) + "-len" + std::to_string(len), in);
    }
  }
}

void Names() {
  auto key = volmgr::SecretBytes::CopyOf(
      std::string(f::kNameKeySize, char(volmgr::fuzz::kNameKeyByte)));
  auto nc = f::NameCipher::Create(std::move(key).value());
  f::DirId dir;
  dir.fill(volmgr::fuzz::kDirIdByte);
  int i = 0;
  const std::vector<std::string> names = {"a",
                                          "report.pdf",
                                          ".hidden",
                                          "name with spaces",
                                          "\xc3\xa9t\xc3\xa9.txt",
                                          std::string(180, 'x')};
  for (const std::string& name : names) {
    auto e = nc->Encrypt(dir, name);
    Put("name_cipher", "name" + std::to_string(i), *e);
    Put("name_cipher", "entry" + std::to_string(i++),
        f::NameCipher::EntryName(*e));
  }
  for (const char* t : {"../shared/file", "/etc/passwd"}) {
    Put("name_cipher", "target" + std::to_string(i++), *nc->EncryptTarget(t));
  }
}

void ExtractStates() {
  namespace x = volmgr::fuzz::extract;
  x::Fixture* fx = x::Fixture::Make();
  volmgr::recover::ExtractOptions opt;
  opt.output = fx->output;
  opt.chunk_bytes = 4096;
  opt.checkpoint_seconds = 0;
  opt.force = true;
  int n = 0;
  const std::string state =
      fx->output + std::string(volmgr::recover::kStateSuffix);
  opt.progress = [&](uint64_t, uint64_t) {
    // Called after each chunk, before its checkpoint: the state file is
    // the previous checkpoint, as an interrupted run leaves it.
    std::ifstream in(state, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    if (!s.empty()) Put("extract_state", "state" + std::to_string(n++), s);
  };
  auto r = fx->Run(opt);
  if (!r.ok()) volmgr::fuzz::SetupFailed("Extract: " + r.status().message());
  delete fx;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  Containers();
  Names();
  ExtractStates();
  return 0;
}
