#include "volmgr/files/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "tests/unit/files/test_util.h"
#include "volmgr/files/sqlite_key_store.h"
#include "volmgr/files/store_lock.h"

namespace volmgr::files {
namespace {

using testing::TempDir;

SecretBytes Pass(std::string_view s) {
  return std::move(SecretBytes::CopyOf(s)).value();
}

protectors::Credentials Creds(std::string_view s) {
  protectors::Credentials c;
  c.secrets.push_back(Pass(s));
  return c;
}

// Cheap Argon2id so the tests run fast; the cost is recorded per protector.
constexpr crypto::Argon2Params kFast{1, 64, 1};

std::string MakeStore(const TempDir& d,
                      std::string_view pass = "correct horse") {
  const std::string root = d.path() + "/store";
  auto p = Pass(pass);
  InitOptions o;
  o.passphrase = &p;
  o.argon2 = kFast;
  Status s = Store::Init(root, o);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return root;
}

TEST(StoreTest, InitUnlockAndWrongPassphrase) {
  TempDir d;
  const auto root = MakeStore(d);
  auto info = Store::Inspect(root);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->master_generation, 1u);
  EXPECT_EQ(info->chunk_size, kDefaultChunkSize);
  ASSERT_EQ(info->protectors.size(), 1u);
  EXPECT_EQ(info->protectors[0].kind, "passphrase");
  EXPECT_TRUE(Store::Unlock(root, Creds("correct horse")).ok());
  EXPECT_EQ(Store::Unlock(root, Creds("wrong horse!")).status().code(),
            StatusCode::kAuthFailed);
  // A second init into the same directory is refused.
  auto p = Pass("correct horse");
  InitOptions o;
  o.passphrase = &p;
  o.argon2 = kFast;
  EXPECT_EQ(Store::Init(root, o).code(), StatusCode::kAlreadyExists);
}

TEST(StoreTest, FileKeysPersistAndShredDeletesThem) {
  TempDir d;
  const auto root = MakeStore(d);
  FileId id{};
  SecretBytes key;
  {
    auto s = std::move(Store::Unlock(root, Creds("correct horse"))).value();
    auto nk = s->CreateFileKey(KeyLocation::kTree);
    ASSERT_TRUE(nk.ok());
    id = nk->file_id;
    key = std::move(nk->key);
  }
  auto s = std::move(Store::Unlock(root, Creds("correct horse"))).value();
  auto k = s->FileKey(id);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_TRUE(k->ConstantTimeEquals(key));
  ASSERT_TRUE(s->Shred(id).ok());
  EXPECT_EQ(s->FileKey(id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s->Shred(id).code(), StatusCode::kNotFound);
}

TEST(StoreTest, KeyRecordMovedToAnotherFileDoesNotUnwrap) {
  TempDir d;
  const auto root = MakeStore(d);
  auto s = std::move(Store::Unlock(root, Creds("correct horse"))).value();
  auto a = std::move(s->CreateFileKey(KeyLocation::kTree)).value();
  auto b = std::move(s->CreateFileKey(KeyLocation::kTree)).value();
  // Copy A's wrapped key into B's record (an attacker with the database).
  auto ra = std::move(s->keys().GetFileKey(a.file_id)).value();
  ra.file_id = b.file_id;
  ASSERT_TRUE(s->keys().UpdateFileKey(ra).ok());
  EXPECT_EQ(s->FileKey(b.file_id).status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(s->FileKey(a.file_id).ok());
}

TEST(StoreTest, RekeyRewrapsEveryKeyAndKeepsThemEqual) {
  TempDir d;
  const auto root = MakeStore(d);
  auto s = std::move(Store::Unlock(root, Creds("correct horse"))).value();
  std::vector<NewFileKey> keys;
  for (int i = 0; i < 50; ++i) {
    keys.push_back(std::move(s->CreateFileKey(KeyLocation::kTree)).value());
  }
  auto before = std::move(s->keys().GetFileKey(keys[0].file_id)).value();
  auto r = s->Rekey(Creds("correct horse"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->new_generation, 2u);
  EXPECT_EQ(r->rewrapped, 50u);
  auto after = std::move(s->keys().GetFileKey(keys[0].file_id)).value();
  EXPECT_NE(before.wrapped, after.wrapped);
  EXPECT_EQ(after.generation, 2u);
  // A fresh unlock (new protector around the new master key) sees the same
  // file keys and the same names.
  auto s2 = std::move(Store::Unlock(root, Creds("correct horse"))).value();
  for (const auto& k : keys) {
    auto got = s2->FileKey(k.file_id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->ConstantTimeEquals(k.key));
  }
  DirId dir{};
  EXPECT_EQ(*s2->names().Encrypt(dir, "n"), *s->names().Encrypt(dir, "n"));
  EXPECT_EQ(Store::Inspect(root)->master_generation, 2u);
  // The old wrapped record no longer opens: restoring it is detected.
  ASSERT_TRUE(s2->keys().UpdateFileKey(before).ok());
  EXPECT_FALSE(s2->FileKey(before.file_id).ok());
}

TEST(StoreTest, RekeyWithWrongPassphraseChangesNothing) {
  TempDir d;
  const auto root = MakeStore(d);
  auto s = std::move(Store::Unlock(root, Creds("correct horse"))).value();
  auto k = std::move(s->CreateFileKey(KeyLocation::kTree)).value();
  EXPECT_FALSE(s->Rekey(Creds("not the passphrase")).ok());
  EXPECT_EQ(Store::Inspect(root)->master_generation, 1u);
  auto s2 = std::move(Store::Unlock(root, Creds("correct horse"))).value();
  EXPECT_TRUE(s2->FileKey(k.file_id).ok());
}

TEST(SqliteKeyStoreTest, TransactionRollsBackOnError) {
  TempDir d;
  auto ks =
      std::move(OpenSqliteKeyStore(d.path() + "/k.db", KeyStoreOpen::kCreate))
          .value();
  FileKeyRecord r;
  r.file_id.fill(1);
  r.wrapped = {1, 2, 3};
  Status s = ks->Transaction([&]() -> Status {
    VOLMGR_RETURN_IF_ERROR(ks->InsertFileKey(r));
    return InternalError("boom");
  });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(ks->GetFileKey(r.file_id).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(ks->InsertFileKey(r).ok());
  EXPECT_EQ(ks->InsertFileKey(r).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*ks->CountFileKeys(), 1u);
  // Reopened: WAL mode and the record persist.
  ks.reset();
  auto again = OpenSqliteKeyStore(d.path() + "/k.db", KeyStoreOpen::kReadWrite);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->GetFileKey(r.file_id)->wrapped, r.wrapped);
  EXPECT_EQ(OpenSqliteKeyStore(d.path() + "/k.db", KeyStoreOpen::kCreate)
                .status()
                .code(),
            StatusCode::kAlreadyExists);
}

// The mount's mode: commits are visible to another connection (and so
// survive the death of this process) at once; Sync() checkpoints them.
// Prepared statements are reused across calls without leaking bindings.
TEST(SqliteKeyStoreTest, OnSyncDurabilityCommitsAtOnceAndSyncCheckpoints) {
  TempDir d;
  const std::string p = d.path() + "/k.db";
  auto ks = std::move(OpenSqliteKeyStore(p, KeyStoreOpen::kCreate)).value();
  ASSERT_TRUE(ks->Sync().ok());  // a no-op under kEveryCommit
  ASSERT_TRUE(ks->SetDurability(KeyStoreDurability::kOnSync).ok());
  std::vector<FileKeyRecord> recs(50);
  for (size_t i = 0; i < recs.size(); ++i) {
    recs[i].file_id.fill(static_cast<uint8_t>(i));
    recs[i].generation = static_cast<uint32_t>(i);
    recs[i].wrapped.assign(i + 1, static_cast<uint8_t>(i));
    ASSERT_TRUE(ks->InsertFileKey(recs[i]).ok()) << i;
  }
  for (size_t i = 0; i < recs.size(); i += 2) {
    ASSERT_TRUE(ks->DeleteFileKey(recs[i].file_id).ok()) << i;
  }
  EXPECT_EQ(ks->DeleteFileKey(recs[0].file_id).code(), StatusCode::kNotFound);
  {
    auto other =
        std::move(OpenSqliteKeyStore(p, KeyStoreOpen::kReadWrite)).value();
    EXPECT_EQ(*other->CountFileKeys(), recs.size() / 2);
    auto got = other->GetFileKey(recs[3].file_id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->wrapped, recs[3].wrapped);
    EXPECT_EQ(got->generation, 3u);
  }
  for (size_t i = 1; i < recs.size(); i += 2) {
    auto got = ks->GetFileKey(recs[i].file_id);
    ASSERT_TRUE(got.ok()) << i;
    EXPECT_EQ(got->wrapped, recs[i].wrapped) << i;
  }
  ASSERT_TRUE(ks->Sync().ok());
  ASSERT_TRUE(ks->PutSetting("a", "1").ok());
  ASSERT_TRUE(ks->PutSetting("a", "2").ok());
  EXPECT_EQ(**ks->GetSetting("a"), "2");
  EXPECT_FALSE(ks->GetSetting("b")->has_value());
  ks.reset();
  auto again =
      std::move(OpenSqliteKeyStore(p, KeyStoreOpen::kReadWrite)).value();
  EXPECT_EQ(*again->CountFileKeys(), recs.size() / 2);
}

TEST(SqliteKeyStoreTest, RejectsAForeignDatabase) {
  TempDir d;
  const std::string p = d.path() + "/x.db";
  int fd = ::open(p.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_EQ(::write(fd, "not sqlite at all, just text....", 32), 32);
  ::close(fd);
  EXPECT_FALSE(OpenSqliteKeyStore(p, KeyStoreOpen::kReadWrite).ok());
}

TEST(StoreLockTest, SecondLockIsBusy) {
  TempDir d;
  auto a = StoreLock::Acquire(d.path());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(StoreLock::Acquire(d.path()).status().code(), StatusCode::kBusy);
}

// A shred leaves no byte of the deleted record in the database, its WAL or
// the WAL index (issue 17, item 15): secure_delete zeroes the row and
// ScrubFreed() replaces the old page and empties the WAL.
TEST(SqliteKeyStoreTest, ScrubFreedLeavesNoByteOfADeletedRecord) {
  TempDir d;
  const std::string p = d.path() + "/k.db";
  auto ks = std::move(OpenSqliteKeyStore(p, KeyStoreOpen::kCreate)).value();
  ASSERT_TRUE(ks->SetDurability(KeyStoreDurability::kOnSync).ok());
  std::vector<FileKeyRecord> recs(200);
  for (size_t i = 0; i < recs.size(); ++i) {
    recs[i].file_id.fill(static_cast<uint8_t>(i));
    recs[i].file_id[0] = 0xa5;
    recs[i].wrapped.resize(61);
    for (size_t j = 0; j < 61; ++j) {
      recs[i].wrapped[j] = static_cast<uint8_t>(i * 131 + j * 7 + 1);
    }
    ASSERT_TRUE(ks->InsertFileKey(recs[i]).ok()) << i;
  }
  auto holds = [&](const std::vector<uint8_t>& needle) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      int fd = ::open((p + suffix).c_str(), O_RDONLY);
      if (fd < 0) continue;
      std::vector<uint8_t> all;
      uint8_t buf[65536];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0)
        all.insert(all.end(), buf, buf + n);
      ::close(fd);
      if (std::search(all.begin(), all.end(), needle.begin(), needle.end()) !=
          all.end()) {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(holds(recs[17].wrapped));
  for (size_t i : {17u, 18u, 100u, 199u}) {
    ASSERT_TRUE(ks->DeleteFileKey(recs[i].file_id).ok());
  }
  ASSERT_TRUE(ks->ScrubFreed().ok());
  for (size_t i : {17u, 18u, 100u, 199u}) {
    EXPECT_FALSE(holds(recs[i].wrapped)) << i;
  }
  EXPECT_TRUE(holds(recs[19].wrapped));
  EXPECT_EQ(*ks->CountFileKeys(), recs.size() - 4);
}

// Read-only opens never write keys.db (issue 17, item 13); an empty or
// foreign file is refused before SQLite could write a header into it.
TEST(SqliteKeyStoreTest, ReadOnlyOpenNeverWritesAndRefusesAnEmptyFile) {
  TempDir d;
  const std::string p = d.path() + "/k.db";
  {
    auto ks = std::move(OpenSqliteKeyStore(p, KeyStoreOpen::kCreate)).value();
    FileKeyRecord r;
    r.file_id.fill(3);
    r.wrapped = {1, 2, 3};
    ASSERT_TRUE(ks->InsertFileKey(r).ok());
  }
  struct stat before {};
  ASSERT_EQ(::stat(p.c_str(), &before), 0);
  {
    auto ro = OpenSqliteKeyStore(p, KeyStoreOpen::kReadOnly);
    ASSERT_TRUE(ro.ok()) << ro.status().ToString();
    EXPECT_EQ(*(*ro)->CountFileKeys(), 1u);
    FileKeyRecord r;
    r.file_id.fill(4);
    r.wrapped = {9};
    EXPECT_FALSE((*ro)->InsertFileKey(r).ok());
  }
  struct stat after {};
  ASSERT_EQ(::stat(p.c_str(), &after), 0);
  EXPECT_EQ(before.st_size, after.st_size);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);

  const std::string empty = d.path() + "/empty.db";
  int fd = ::open(empty.c_str(), O_CREAT | O_WRONLY, 0600);
  ::close(fd);
  for (KeyStoreOpen m : {KeyStoreOpen::kReadOnly, KeyStoreOpen::kReadWrite}) {
    auto s = OpenSqliteKeyStore(empty, m);
    EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
    struct stat st {};
    ASSERT_EQ(::stat(empty.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0);
  }
}

// A damaged protector record (a field of the wrong type) is skipped with a
// warning naming it: the intact protector still opens the store, status
// still shows it, and rekey, which must re-create every protector, refuses
// (issue 17, item 5).
TEST(StoreTest, ADamagedProtectorRecordIsSkippedNotFatal) {
  TempDir d;
  const auto root = MakeStore(d);
  {
    auto ks = std::move(OpenSqliteKeyStore(root + "/keys.db",
                                           KeyStoreOpen::kReadWrite))
                  .value();
    ASSERT_TRUE(ks->PutProtector("zz-damaged", "passphrase",
                                 R"({"type":"volmgr-passphrase","version":1,)"
                                 R"("id":"zz","created":5,"keyslots":[],)"
                                 R"("wrapped_vmk":"AAAA","params":{}})")
                    .ok());
  }
  auto info = Store::Inspect(root);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->protectors.size(), 1u);
  ASSERT_EQ(info->warnings.size(), 1u);
  EXPECT_NE(info->warnings[0].find("created"), std::string::npos)
      << info->warnings[0];
  auto s = Store::Unlock(root, Creds("correct horse"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Rekey(Creds("correct horse")).status().code(),
            StatusCode::kCorruption);
}

}  // namespace
}  // namespace volmgr::files
