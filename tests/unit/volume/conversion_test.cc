// In-place conversion: planning and refusals (pure), the status line, and
// finishing a conversion whose clean-up a power loss cut short (real
// libcryptsetup on image files: offline reencryption needs no dm-crypt).
// The conversion itself needs dm-crypt: tests/vm/cases/volmgr_conversion.sh
// and the power-loss test tests/vm/powerloss.sh are its real twins.
#include "volmgr/volume/conversion.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libcryptsetup.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace volmgr::volume {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

FilesystemFacts Ext4(uint64_t size, uint32_t block = 4096) {
  FilesystemFacts fs;
  fs.type = "ext4";
  fs.size_bytes = size;
  fs.block_size = block;
  return fs;
}

TEST(PlanEncryptionTest, ShrinksAnExt4ThatFillsTheDevice) {
  auto p = PlanEncryption("/dev/x", 256 * kMiB, Ext4(256 * kMiB), false, 0);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->shrink);
  EXPECT_EQ(p->fs_limit_bytes, 224 * kMiB);
  EXPECT_EQ(p->shrink_to_bytes, 224 * kMiB);
  EXPECT_EQ(p->sector_size, 4096u);
}

TEST(PlanEncryptionTest, NoShrinkWhenTheTailIsFree) {
  auto p = PlanEncryption("/dev/x", 256 * kMiB, Ext4(200 * kMiB), false, 0);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->shrink);
}

TEST(PlanEncryptionTest, ShrinkTargetIsWholeBlocks) {
  auto p = PlanEncryption("/dev/x", 100 * kMiB + 1536, Ext4(100 * kMiB, 1024),
                          false, 0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->shrink_to_bytes % 1024, 0u);
  EXPECT_LE(p->shrink_to_bytes, p->fs_limit_bytes);
  EXPECT_EQ(p->sector_size, 512u);  // 1 KiB blocks cannot take 4 KiB sectors
}

TEST(PlanEncryptionTest, SectorSizeLargerThanBlocksIsRefused) {
  auto p =
      PlanEncryption("/dev/x", 256 * kMiB, Ext4(100 * kMiB, 1024), false, 4096);
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("block size"), std::string::npos);
}

TEST(PlanEncryptionTest, TooSmallDeviceIsRefused) {
  auto p = PlanEncryption("/dev/x", 32 * kMiB, Ext4(32 * kMiB), true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("too small"), std::string::npos);
}

TEST(PlanEncryptionTest, MountedFilesystemIsRefused) {
  FilesystemFacts fs = Ext4(256 * kMiB);
  fs.mounted_at = "/srv";
  auto p = PlanEncryption("/dev/x", 256 * kMiB, fs, true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kBusy);
  EXPECT_NE(p.status().message().find("mounted at /srv"), std::string::npos);
}

TEST(PlanEncryptionTest, DeviceInUseIsRefused) {
  FilesystemFacts fs = Ext4(100 * kMiB);
  fs.in_use = true;
  fs.in_use_why = "held by a mapping";
  auto p = PlanEncryption("/dev/x", 256 * kMiB, fs, true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kBusy);
}

TEST(PlanEncryptionTest, UnknownFilesystemNeedsForce) {
  FilesystemFacts xfs;
  xfs.type = "xfs";
  xfs.size_bytes = 200 * kMiB;
  auto p = PlanEncryption("/dev/x", 256 * kMiB, xfs, false, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("--force"), std::string::npos);
  auto forced = PlanEncryption("/dev/x", 256 * kMiB, xfs, true, 0);
  ASSERT_TRUE(forced.ok());
  EXPECT_FALSE(forced->shrink);
}

TEST(PlanEncryptionTest, ForceDoesNotCutIntoAKnownLargeFilesystem) {
  FilesystemFacts xfs;
  xfs.type = "xfs";
  xfs.size_bytes = 256 * kMiB;
  auto p = PlanEncryption("/dev/x", 256 * kMiB, xfs, true, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
}

TEST(PlanEncryptionTest, NoFilesystemNeedsForce) {
  auto p = PlanEncryption("/dev/x", 256 * kMiB, FilesystemFacts{}, false, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("volmgr format"), std::string::npos);
  auto forced =
      PlanEncryption("/dev/x", 256 * kMiB, FilesystemFacts{}, true, 0);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->sector_size, 512u);
}

TEST(ConversionStatusLineTest, RunningShowsPercentRateAndEta) {
  ConversionStatus s;
  s.in_progress = true;
  s.running = true;
  s.progress.size_bytes = 1000 * kMiB;
  s.progress.done_bytes = 370 * kMiB;
  s.progress.bytes_per_second = 210.0 * kMiB;
  s.progress.eta_seconds = 240;
  EXPECT_EQ(ConversionStatusLine(s),
            "Encryption in progress: 37 %, 210 MiB/s, ETA 4 min");
}

TEST(ConversionStatusLineTest, PausedAndNone) {
  ConversionStatus s;
  EXPECT_EQ(ConversionStatusLine(s), "");
  s.in_progress = true;
  s.direction = ConversionDirection::kDecrypt;
  s.progress.size_bytes = 100;
  s.progress.done_bytes = 50;
  EXPECT_EQ(ConversionStatusLine(s), "Decryption paused at 50 %");
}

// Issue 17 item 3: a conversion whose process stopped without pausing, or
// whose clean-up was cut short, is not "paused".
TEST(ConversionStatusLineTest, InterruptedIsNotPaused) {
  ConversionStatus s;
  s.in_progress = true;
  s.progress.size_bytes = 100;
  s.progress.done_bytes = 37;
  s.interrupted = true;
  const std::string line = ConversionStatusLine(s);
  EXPECT_EQ(line.rfind("Encryption interrupted at 37 %", 0), 0u) << line;
  EXPECT_EQ(line.find("paused"), std::string::npos) << line;
}

TEST(ConversionStatusLineTest, CleanupPendingSaysComplete) {
  ConversionStatus s;
  s.in_progress = true;
  s.cleanup_pending = true;
  s.interrupted = true;
  const std::string line = ConversionStatusLine(s);
  EXPECT_EQ(
      line.rfind("Encryption complete, but its clean-up was interrupted", 0),
      0u)
      << line;
  EXPECT_EQ(line.find("paused"), std::string::npos) << line;
}

TEST(GetConversionStatusTest, PlainFileIsNotAVolume) {
  char path[] = "/tmp/volmgr-conv-plain.XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4 << 20), 0);
  close(fd);
  auto s = GetConversionStatus(path);
  unlink(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->is_volume);
  EXPECT_FALSE(s->in_progress);
}

TEST(DefaultDecryptHeaderPathTest, OneFilePerDevicePath) {
  EXPECT_NE(DefaultDecryptHeaderPath("/dev/sda1"),
            DefaultDecryptHeaderPath("/dev/sdb1"));
  EXPECT_EQ(
      DefaultDecryptHeaderPath("/dev/sda1").find('/', 1) != std::string::npos,
      true);
  EXPECT_NE(DefaultDecryptHeaderPath("/dev/sda1").find("decrypt-_dev_sda1"),
            std::string::npos);
}

// ---- FinishCompletedConversion -----------------------------------------

constexpr char kPass[] = "a VMK stands in here";
constexpr uint64_t kShift = 16 * kMiB;

class FinishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    crypt_metadata_locking(nullptr, 0);  // no /run/cryptsetup as nobody
    char tmpl[] = "/tmp/volmgr-finish-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img_ = dir_ + "/data.img";
    setenv("VOLMGR_STATE_DIR", (dir_ + "/state").c_str(), 1);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    unsetenv("VOLMGR_STATE_DIR");
  }
  std::vector<uint8_t> Read(const std::string& path, uint64_t off, size_t len) {
    std::vector<uint8_t> b(len);
    int fd = open(path.c_str(), O_RDONLY);
    EXPECT_EQ(pread(fd, b.data(), len, static_cast<off_t>(off)),
              static_cast<ssize_t>(len));
    close(fd);
    return b;
  }
  void WriteRandom(uint64_t size, uint64_t used) {
    int fd = open(img_.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    std::vector<uint8_t> b(kMiB);
    for (uint64_t off = 0; off < used; off += kMiB) {
      ASSERT_EQ(RAND_bytes(b.data(), static_cast<int>(b.size())), 1);
      ASSERT_EQ(pwrite(fd, b.data(), b.size(), static_cast<off_t>(off)),
                static_cast<ssize_t>(b.size()));
    }
    close(fd);
  }
  // Runs the reencryption of (header, img) in a child that dies like a
  // power loss right after libcryptsetup committed its last chunk, before
  // its clean-up (or after `steps` chunks).
  // With `crash_in_write`, the child's file size limit stops it with
  // SIGXFSZ at its first data write beyond 8 MiB, after the header commit
  // that opens the hotzone: a crash inside a hotzone.
  void RunAndDie(const std::string& header, int steps,
                 bool crash_in_write = false) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (crash_in_write) {
        rlimit rl{8 * kMiB, 8 * kMiB};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(5);
      }
      crypt_device* cd = nullptr;
      if (crypt_init_data_device(&cd, header.c_str(), img_.c_str()) < 0 ||
          crypt_load(cd, CRYPT_LUKS2, nullptr) < 0) {
        _exit(2);
      }
      crypt_params_reencrypt p{};
      p.flags = CRYPT_REENCRYPT_RESUME_ONLY;
      if (crypt_reencrypt_init_by_passphrase(
              cd, nullptr, kPass, sizeof kPass - 1, CRYPT_ANY_SLOT,
              CRYPT_ANY_SLOT, nullptr, nullptr, &p) < 0) {
        _exit(3);
      }
      static int calls = 0;
      static int max_steps = 0;
      max_steps = steps;
      auto cb = [](uint64_t size, uint64_t offset, void*) -> int {
        ++calls;
        // Called once before the first chunk, then after each chunk with
        // the progress before it; the last chunk starts at size - shift.
        if (calls > 1 && (offset + kShift >= size || calls > max_steps)) {
          _exit(0);
        }
        return 0;
      };
      crypt_reencrypt_run(cd, cb, nullptr);
      _exit(4);
    }
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (crash_in_write) {
      ASSERT_TRUE(WIFSIGNALED(st));
      ASSERT_EQ(WTERMSIG(st), SIGXFSZ);
      return;
    }
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
  }
  // Sector `data_off / 512` of the data segment, decrypted with the volume
  // key (aes-xts-plain64, IV = 512-byte sector number).
  std::vector<uint8_t> DecryptedSector(uint64_t data_off) {
    crypt_device* cd = nullptr;
    EXPECT_EQ(crypt_init(&cd, img_.c_str()), 0);
    EXPECT_EQ(crypt_load(cd, CRYPT_LUKS2, nullptr), 0);
    EXPECT_EQ(crypt_get_data_offset(cd) * 512, kShift);
    char key[64];
    size_t key_len = sizeof key;
    EXPECT_GE(crypt_volume_key_get(cd, CRYPT_ANY_SLOT, key, &key_len, kPass,
                                   sizeof kPass - 1),
              0);
    crypt_free(cd);
    std::vector<uint8_t> ct = Read(img_, kShift + data_off, 512), pt(512);
    unsigned char iv[16] = {};
    const uint64_t sector = data_off / 512;
    for (int i = 0; i < 8; ++i) {
      iv[i] = static_cast<unsigned char>(sector >> (8 * i));
    }
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    EXPECT_EQ(EVP_DecryptInit_ex(ctx, EVP_aes_256_xts(), nullptr,
                                 reinterpret_cast<unsigned char*>(key), iv),
              1);
    EXPECT_EQ(EVP_DecryptUpdate(ctx, pt.data(), &n, ct.data(), 512), 1);
    EVP_CIPHER_CTX_free(ctx);
    return pt;
  }
  void WriteRandomAt(uint64_t off, uint64_t len) {
    std::vector<uint8_t> b(len);
    ASSERT_EQ(RAND_bytes(b.data(), static_cast<int>(len)), 1);
    int fd = open(img_.c_str(), O_WRONLY);
    ASSERT_EQ(pwrite(fd, b.data(), len, static_cast<off_t>(off)),
              static_cast<ssize_t>(len));
    close(fd);
  }
  crypt_reencrypt_info StatusOf(const std::string& header) {
    crypt_device* cd = nullptr;
    EXPECT_EQ(crypt_init_data_device(&cd, header.c_str(), img_.c_str()), 0);
    EXPECT_EQ(crypt_load(cd, CRYPT_LUKS2, nullptr), 0);
    crypt_reencrypt_info ri = crypt_reencrypt_status(cd, nullptr);
    crypt_free(cd);
    return ri;
  }
  // In-place encryption as volmgr sets it up: a header with a 16 MiB data
  // offset in a file, reencryption initialised with the data shift and the
  // first segment moved, then the header placed at the head of the device.
  void InitEncryption() {
    const std::string tmp = dir_ + "/new.luks2";
    {
      int fd = open(tmp.c_str(), O_CREAT | O_WRONLY, 0600);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kShift)), 0);
      close(fd);
    }
    crypt_device* cd = nullptr;
    ASSERT_EQ(crypt_init(&cd, tmp.c_str()), 0);
    crypt_pbkdf_type pbkdf{};
    pbkdf.type = CRYPT_KDF_PBKDF2;
    pbkdf.hash = "sha256";
    pbkdf.iterations = 1000;
    pbkdf.flags = CRYPT_PBKDF_NO_BENCHMARK;
    ASSERT_EQ(crypt_set_pbkdf_type(cd, &pbkdf), 0);
    crypt_params_luks2 luks2{};
    luks2.sector_size = 512;
    luks2.data_alignment = kShift / 512;
    ASSERT_EQ(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", nullptr,
                           nullptr, 64, &luks2),
              0);
    int slot = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, nullptr, 0,
                                               kPass, sizeof kPass - 1);
    ASSERT_GE(slot, 0);
    crypt_free(cd);
    ASSERT_EQ(crypt_init_data_device(&cd, tmp.c_str(), img_.c_str()), 0);
    ASSERT_EQ(crypt_load(cd, CRYPT_LUKS2, nullptr), 0);
    crypt_params_reencrypt p{};
    p.mode = CRYPT_REENCRYPT_ENCRYPT;
    p.direction = CRYPT_REENCRYPT_BACKWARD;
    p.resilience = "datashift";
    p.hash = "sha256";
    p.data_shift = kShift / 512;
    p.luks2 = &luks2;
    p.flags =
        CRYPT_REENCRYPT_INITIALIZE_ONLY | CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT;
    ASSERT_GE(crypt_reencrypt_init_by_passphrase(
                  cd, nullptr, kPass, sizeof kPass - 1, CRYPT_ANY_SLOT, slot,
                  "aes", "xts-plain64", &p),
              0);
    crypt_free(cd);
    ASSERT_EQ(crypt_init(&cd, img_.c_str()), 0);
    ASSERT_EQ(crypt_header_restore(cd, CRYPT_LUKS2, tmp.c_str()), 0);
    crypt_free(cd);
  }
  std::string dir_, img_;
};

TEST_F(FinishTest, EncryptionCutShortAfterItsLastChunkIsFinished) {
  WriteRandom(64 * kMiB, 32 * kMiB);  // the "filesystem": first 32 MiB
  const std::vector<uint8_t> first = Read(img_, 0, kShift);
  const std::vector<uint8_t> second = Read(img_, kShift, kShift);
  InitEncryption();
  RunAndDie(img_, 1000);
  ASSERT_EQ(StatusOf(img_), CRYPT_REENCRYPT_CLEAN);
  // The moved first segment (a plain copy) sits at the end of the device.
  EXPECT_EQ(Read(img_, 48 * kMiB, kShift), first);

  auto done = FinishCompletedConversion(img_, img_);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(*done);
  EXPECT_EQ(StatusOf(img_), CRYPT_REENCRYPT_NONE);
  EXPECT_NE(Read(img_, 48 * kMiB, 4096),
            std::vector<uint8_t>(first.begin(), first.begin() + 4096))
      << "the plain copy of the first segment was not wiped";

  // The data decrypts (aes-xts-plain64) to what was there before.
  EXPECT_EQ(DecryptedSector(0),
            std::vector<uint8_t>(first.begin(), first.begin() + 512));
  EXPECT_EQ(
      DecryptedSector(kShift + 4096),
      std::vector<uint8_t>(second.begin() + 4096, second.begin() + 4096 + 512));
  // Nothing left to do: a second call leaves it alone.
  auto again = FinishCompletedConversion(img_, img_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(FinishTest, EncryptionCrashedInItsLastHotzoneIsRecoveredByVolmgr) {
  WriteRandom(64 * kMiB, 32 * kMiB);
  const std::vector<uint8_t> first = Read(img_, 0, kShift);
  const std::vector<uint8_t> second = Read(img_, kShift, kShift);
  InitEncryption();
  RunAndDie(img_, 1);  // the first chunk; the moved one is the last
  RunAndDie(img_, 1000, /*crash_in_write=*/true);
  ASSERT_EQ(StatusOf(img_), CRYPT_REENCRYPT_CRASH);
  WriteRandomAt(kShift, 4 * kMiB);  // and half-written garbage in it
  auto vmk = SecretBytes::CopyOf(std::string_view(kPass));
  ASSERT_TRUE(vmk.ok());
  // A second power loss while volmgr wipes the moved segment (writes past
  // 40 MiB stop the child): volmgr must have committed "last hotzone done"
  // before, or the next recovery would encrypt the half-wiped copy.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rlimit rl{40 * kMiB, 40 * kMiB};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(5);
    // SecretBytes are MADV_WIPEONFORK: the child needs its own copy.
    auto key = SecretBytes::CopyOf(std::string_view(kPass));
    if (!key.ok()) _exit(7);
    auto r = ResumeConversion(img_, *key, ConversionOptions{});
    std::fprintf(stderr, "child: %s\n",
                 r.ok() ? "finished" : r.status().ToString().c_str());
    _exit(6);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(st));
  ASSERT_EQ(WTERMSIG(st), SIGXFSZ);
  EXPECT_EQ(StatusOf(img_), CRYPT_REENCRYPT_CLEAN);
  WriteRandomAt(48 * kMiB, 8 * kMiB);  // the wipe, half done
  auto done = ResumeConversion(img_, *vmk, ConversionOptions{});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(*done);
  EXPECT_EQ(StatusOf(img_), CRYPT_REENCRYPT_NONE);
  EXPECT_NE(Read(img_, 48 * kMiB, 4096),
            std::vector<uint8_t>(first.begin(), first.begin() + 4096));
  for (uint64_t off : {uint64_t{0}, 4 * kMiB + 512, kShift - 512}) {
    EXPECT_EQ(
        DecryptedSector(off),
        std::vector<uint8_t>(first.begin() + off, first.begin() + off + 512))
        << off;
  }
  EXPECT_EQ(DecryptedSector(kShift),
            std::vector<uint8_t>(second.begin(), second.begin() + 512));
}

TEST_F(FinishTest, EncryptionWithChunksLeftIsNotTouched) {
  WriteRandom(96 * kMiB, 64 * kMiB);
  InitEncryption();
  RunAndDie(img_, 1);  // one chunk done, more to go
  ASSERT_EQ(StatusOf(img_), CRYPT_REENCRYPT_CLEAN);
  auto done = FinishCompletedConversion(img_, img_);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_FALSE(*done);
  EXPECT_EQ(StatusOf(img_), CRYPT_REENCRYPT_CLEAN);
}

TEST_F(FinishTest, DecryptionCutShortAfterItsLastChunkIsLeftToTheCaller) {
  WriteRandom(64 * kMiB, 64 * kMiB);
  const std::string hdr = dir_ + "/vda.hdr";
  crypt_device* cd = nullptr;
  ASSERT_EQ(crypt_init(&cd, img_.c_str()), 0);
  crypt_pbkdf_type pbkdf{};
  pbkdf.type = CRYPT_KDF_PBKDF2;
  pbkdf.hash = "sha256";
  pbkdf.iterations = 1000;
  pbkdf.flags = CRYPT_PBKDF_NO_BENCHMARK;
  ASSERT_EQ(crypt_set_pbkdf_type(cd, &pbkdf), 0);
  crypt_params_luks2 luks2{};
  luks2.sector_size = 512;
  ASSERT_EQ(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", nullptr,
                         nullptr, 64, &luks2),
            0);
  ASSERT_GE(crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, nullptr, 0,
                                            kPass, sizeof kPass - 1),
            0);
  ASSERT_EQ(crypt_header_backup(cd, CRYPT_LUKS2, hdr.c_str()), 0);
  crypt_free(cd);
  ASSERT_EQ(crypt_init_data_device(&cd, hdr.c_str(), img_.c_str()), 0);
  ASSERT_EQ(crypt_load(cd, CRYPT_LUKS2, nullptr), 0);
  crypt_params_reencrypt p{};
  p.mode = CRYPT_REENCRYPT_DECRYPT;
  p.direction = CRYPT_REENCRYPT_FORWARD;
  p.resilience = "datashift-checksum";
  p.hash = "sha256";
  p.data_shift = crypt_get_data_offset(cd);
  p.flags =
      CRYPT_REENCRYPT_MOVE_FIRST_SEGMENT | CRYPT_REENCRYPT_INITIALIZE_ONLY;
  ASSERT_GE(crypt_reencrypt_init_by_passphrase(
                cd, nullptr, kPass, sizeof kPass - 1, CRYPT_ANY_SLOT,
                CRYPT_ANY_SLOT, nullptr, nullptr, &p),
            0);
  crypt_free(cd);

  RunAndDie(hdr, 2);
  auto mid = FinishCompletedConversion(hdr, img_);
  ASSERT_TRUE(mid.ok()) << mid.status().ToString();
  EXPECT_FALSE(*mid);

  RunAndDie(hdr, 1000);
  ASSERT_EQ(StatusOf(hdr), CRYPT_REENCRYPT_CLEAN);
  const std::vector<uint8_t> before = Read(img_, 0, 64 * kMiB);
  auto done = FinishCompletedConversion(hdr, img_);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(*done);
  EXPECT_EQ(Read(img_, 0, 64 * kMiB), before) << "the plain data changed";
}

}  // namespace
}  // namespace volmgr::volume
