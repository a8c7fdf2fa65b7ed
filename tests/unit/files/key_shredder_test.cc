#include "volmgr/files/key_shredder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/files/test_util.h"
#include "volmgr/files/encrypted_file.h"
#include "volmgr/files/store.h"

namespace volmgr::files {
namespace {

using testing::TempDir;

constexpr crypto::Argon2Params kFast{1, 64, 1};

// A real store (SQLite key store, passphrase protector) in a temp dir.
std::unique_ptr<Store> MakeStore(const TempDir& d) {
  const std::string root = d.path() + "/store";
  auto pass =
      std::move(SecretBytes::CopyOf(std::string_view("shred me"))).value();
  InitOptions o;
  o.passphrase = &pass;
  o.argon2 = kFast;
  EXPECT_TRUE(Store::Init(root, o).ok());
  protectors::Credentials c;
  c.secrets.push_back(std::move(pass));
  auto s = Store::Unlock(root, c);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// A ciphertext file with a header and a stored key, as a mount creates it.
FileId MakeFile(Store& store, const std::string& path) {
  auto nk = store.CreateFileKey(KeyLocation::kTree);
  EXPECT_TRUE(nk.ok());
  FileHeader h;
  h.chunk_size = store.chunk_size();
  h.file_id = nk->file_id;
  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  EXPECT_GE(fd, 0);
  auto cipher = ChunkCipher::Create(nk->key, h);
  EXPECT_TRUE(cipher.ok());
  EXPECT_TRUE(EncryptedFile(fd, std::move(cipher).value()).Initialize().ok());
  ::close(fd);
  return nk->file_id;
}

bool HasKey(Store& store, const FileId& id) {
  return store.keys().GetFileKey(id).ok();
}

int OpenForShred(const std::string& path) {
  return ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
}

TEST(KeyShredderTest, DeletesTheKeyOfAnUnlinkedFileByDrain) {
  TempDir d;
  auto store = MakeStore(d);
  const std::string f = d.path() + "/f";
  const FileId id = MakeFile(*store, f);
  KeyShredder shredder(*store, nullptr);
  shredder.Start();
  const int fd = OpenForShred(f);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::unlink(f.c_str()), 0);
  shredder.Enqueue(fd);
  shredder.Drain();
  EXPECT_FALSE(HasKey(*store, id));
  EXPECT_EQ(shredder.deleted(), 1u);
}

TEST(KeyShredderTest, KeepsTheKeyWhileAnotherLinkRemains) {
  TempDir d;
  auto store = MakeStore(d);
  const std::string f = d.path() + "/f", g = d.path() + "/g";
  const FileId id = MakeFile(*store, f);
  ASSERT_EQ(::link(f.c_str(), g.c_str()), 0);
  KeyShredder shredder(*store, nullptr);
  shredder.Start();
  const int fd = OpenForShred(f);
  ASSERT_EQ(::unlink(f.c_str()), 0);
  shredder.Enqueue(fd);
  shredder.Drain();
  EXPECT_TRUE(HasKey(*store, id)) << "g still links the file";
  EXPECT_EQ(shredder.deleted(), 0u);
}

TEST(KeyShredderTest, IgnoresDirectoriesAndFilesWithoutAHeader) {
  TempDir d;
  auto store = MakeStore(d);
  const std::string dir = d.path() + "/dir", junk = d.path() + "/junk";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::close(::open(junk.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  const FileId kept = MakeFile(*store, d.path() + "/kept");
  KeyShredder shredder(*store, nullptr);
  shredder.Start();
  const int dfd = OpenForShred(dir);
  const int jfd = OpenForShred(junk);
  ASSERT_EQ(::rmdir(dir.c_str()), 0);
  ASSERT_EQ(::unlink(junk.c_str()), 0);
  shredder.Enqueue(dfd);
  shredder.Enqueue(jfd);
  shredder.Drain();
  EXPECT_EQ(shredder.deleted(), 0u);
  EXPECT_TRUE(HasKey(*store, kept));
}

// Many deletions, more than the queue holds: Enqueue waits for room, every
// key goes, and Stop() leaves nothing behind.
TEST(KeyShredderTest, ManyDeletionsAllCommitAndStopDrains) {
  TempDir d;
  auto store = MakeStore(d);
  const size_t n = KeyShredder::kMaxPending * 2 + 7;
  std::vector<FileId> ids;
  KeyShredder shredder(*store, nullptr);
  shredder.Start();
  for (size_t i = 0; i < n; ++i) {
    const std::string f = d.path() + "/f" + std::to_string(i);
    ids.push_back(MakeFile(*store, f));
    const int fd = OpenForShred(f);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::unlink(f.c_str()), 0);
    shredder.Enqueue(fd);
  }
  shredder.Stop();
  EXPECT_EQ(shredder.deleted(), n);
  auto count = store->keys().CountFileKeys();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0u);
  for (const FileId& id : ids) EXPECT_FALSE(HasKey(*store, id));
}

// A key already gone (a racing `files shred`) is not a failure and does not
// roll back the other deletions of its batch.
TEST(KeyShredderTest, AKeyAlreadyGoneDoesNotStopTheBatch) {
  TempDir d;
  auto store = MakeStore(d);
  const std::string a = d.path() + "/a", b = d.path() + "/b";
  const FileId ia = MakeFile(*store, a), ib = MakeFile(*store, b);
  ASSERT_TRUE(store->Shred(ia).ok());
  std::vector<std::string> log;
  KeyShredder shredder(*store, [&](const std::string& l) { log.push_back(l); });
  shredder.Start();
  for (const std::string& f : {a, b}) {
    const int fd = OpenForShred(f);
    ASSERT_EQ(::unlink(f.c_str()), 0);
    shredder.Enqueue(fd);
  }
  shredder.Drain();
  EXPECT_FALSE(HasKey(*store, ib));
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace volmgr::files
