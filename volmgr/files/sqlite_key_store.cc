#include "volmgr/files/sqlite_key_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace volmgr::files {
namespace {

constexpr int kSchemaVersion = 1;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// The one conversion from an SQLite result code to a Status.
Status SqliteError(sqlite3* db, int rc, std::string_view context) {
  std::string msg = std::string(context) + ": " +
                    (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return BusyError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return CorruptionError(msg);
    case SQLITE_CANTOPEN:
      return NotFoundError(msg);
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return IoError(msg);
    case SQLITE_CONSTRAINT:
      return AlreadyExistsError(msg);
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return FailedPreconditionError(msg);
    default:
      return InternalError(msg);
  }
}

class SqliteKeyStore final : public KeyStore {
 public:
  explicit SqliteKeyStore(DbPtr db) : db_(std::move(db)) {}

  Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "key store");
    return Status::Ok();
  }

  StatusOr<StmtPtr> Prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), sql, -1, &s, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "key store query");
    return StmtPtr(s);
  }

  // The connection's prepared copy of `sql` (a string literal: the cache is
  // keyed by its address). Preparing once instead of per call: parsing the
  // INSERT of every create and the DELETE of every unlink showed up in
  // profiles of many-small-file workloads. Use with a ResetOnExit.
  // REQUIRES: mu_ held; the statement is not in use further up the stack.
  StatusOr<sqlite3_stmt*> Cached(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second.get();
    VOLMGR_ASSIGN_OR_RETURN(StmtPtr s, Prepare(sql));
    return cache_.emplace(sql, std::move(s)).first->second.get();
  }

  // Returns a cached statement to its initial state (no read transaction
  // left open, no bindings kept) when the call that used it ends.
  struct ResetOnExit {
    sqlite3_stmt* s;
    ~ResetOnExit() {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    }
  };

  // Runs a statement that returns no rows.
  Status Run(sqlite3_stmt* s, std::string_view what) {
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, what);
    return Status::Ok();
  }

  StatusOr<std::optional<std::string>> GetSetting(
      std::string_view name) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(
        sqlite3_stmt * s, Cached("SELECT value FROM settings WHERE name = ?1"));
    ResetOnExit reset{s};
    sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()),
                      SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "read setting");
    return std::optional<std::string>(
        reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  }

  Status PutSetting(std::string_view name, std::string_view value) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(
        sqlite3_stmt * s,
        Cached("INSERT OR REPLACE INTO settings(name, value) VALUES(?1, ?2)"));
    ResetOnExit reset{s};
    sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
    return Run(s, "write setting");
  }

  StatusOr<std::vector<std::string>> ListProtectors() override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(
        StmtPtr s, Prepare("SELECT record FROM protectors ORDER BY id"));
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      out.emplace_back(
          reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
    }
    if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "list protectors");
    return out;
  }

  Status PutProtector(std::string_view id, std::string_view kind,
                      std::string_view json) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(StmtPtr s,
                            Prepare("INSERT OR REPLACE INTO protectors(id, "
                                    "kind, record) VALUES(?1, ?2, ?3)"));
    sqlite3_bind_text(s.get(), 1, id.data(), static_cast<int>(id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(s.get(), 2, kind.data(), static_cast<int>(kind.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(s.get(), 3, json.data(), static_cast<int>(json.size()),
                      SQLITE_TRANSIENT);
    return Run(s.get(), "write protector");
  }

  Status RemoveProtector(std::string_view id) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(StmtPtr s,
                            Prepare("DELETE FROM protectors WHERE id = ?1"));
    sqlite3_bind_text(s.get(), 1, id.data(), static_cast<int>(id.size()),
                      SQLITE_TRANSIENT);
    VOLMGR_RETURN_IF_ERROR(Run(s.get(), "remove protector"));
    if (sqlite3_changes(db_.get()) == 0) {
      return NotFoundError("no protector " + std::string(id));
    }
    return Status::Ok();
  }

  Status InsertFileKey(const FileKeyRecord& r) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(
        sqlite3_stmt * s,
        Cached("INSERT INTO file_keys(file_id, location, "
               "generation, wrapped) VALUES(?1, ?2, ?3, ?4)"));
    ResetOnExit reset{s};
    Bind(s, r);
    int rc = sqlite3_step(s);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
      return AlreadyExistsError("file key " + FileIdHex(r.file_id) + " exists");
    }
    if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "insert file key");
    return Status::Ok();
  }

  StatusOr<FileKeyRecord> GetFileKey(const FileId& id) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(
        sqlite3_stmt * s,
        Cached("SELECT file_id, location, generation, wrapped "
               "FROM file_keys WHERE file_id = ?1"));
    ResetOnExit reset{s};
    sqlite3_bind_blob(s, 1, id.data(), static_cast<int>(id.size()),
                      SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      return NotFoundError("no key for file " + FileIdHex(id) +
                           " (shredded or never stored)");
    }
    if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "read file key");
    return Row(s);
  }

  Status UpdateFileKey(const FileKeyRecord& r) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(
        sqlite3_stmt * s,
        Cached("UPDATE file_keys SET location = ?2, generation = "
               "?3, wrapped = ?4 WHERE file_id = ?1"));
    ResetOnExit reset{s};
    Bind(s, r);
    VOLMGR_RETURN_IF_ERROR(Run(s, "update file key"));
    if (sqlite3_changes(db_.get()) == 0) {
      return NotFoundError("no key for file " + FileIdHex(r.file_id));
    }
    return Status::Ok();
  }

  Status DeleteFileKey(const FileId& id) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                            Cached("DELETE FROM file_keys WHERE file_id = ?1"));
    ResetOnExit reset{s};
    sqlite3_bind_blob(s, 1, id.data(), static_cast<int>(id.size()),
                      SQLITE_TRANSIENT);
    VOLMGR_RETURN_IF_ERROR(Run(s, "delete file key"));
    if (sqlite3_changes(db_.get()) == 0) {
      return NotFoundError("no key for file " + FileIdHex(id));
    }
    return Status::Ok();
  }

  Status ForEachFileKey(
      const std::function<Status(const FileKeyRecord&)>& fn) override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(
        StmtPtr s, Prepare("SELECT file_id, location, generation, wrapped "
                           "FROM file_keys ORDER BY file_id"));
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      VOLMGR_ASSIGN_OR_RETURN(FileKeyRecord r, Row(s.get()));
      VOLMGR_RETURN_IF_ERROR(fn(r));
    }
    if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "list file keys");
    return Status::Ok();
  }

  StatusOr<uint64_t> CountFileKeys() override {
    std::lock_guard lock(mu_);
    VOLMGR_ASSIGN_OR_RETURN(StmtPtr s,
                            Prepare("SELECT count(*) FROM file_keys"));
    int rc = sqlite3_step(s.get());
    if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "count file keys");
    return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
  }

  Status Transaction(const std::function<Status()>& body) override {
    std::lock_guard lock(mu_);
    VOLMGR_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status s = body();
    if (!s.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return s;
    }
    s = Exec("COMMIT");
    if (!s.ok()) Exec("ROLLBACK").IgnoreError();
    return s;
  }

  Status SetDurability(KeyStoreDurability d) override {
    std::lock_guard lock(mu_);
    VOLMGR_RETURN_IF_ERROR(Exec(d == KeyStoreDurability::kOnSync
                                    ? "PRAGMA synchronous=NORMAL"
                                    : "PRAGMA synchronous=FULL"));
    durability_ = d;
    return Status::Ok();
  }

  Status Sync() override {
    std::lock_guard lock(mu_);
    if (durability_ == KeyStoreDurability::kEveryCommit) return Status::Ok();
    // Under synchronous=NORMAL a checkpoint fsyncs the WAL before it copies
    // frames into the database (and the database after a complete copy):
    // every transaction committed so far is then on stable storage
    // (https://sqlite.org/pragma.html#pragma_synchronous).
    return Exec("PRAGMA wal_checkpoint(PASSIVE)");
  }

  // REQUIRES: not inside Transaction() (a checkpoint needs no write
  // transaction open on this connection).
  Status ScrubFreed() override {
    std::lock_guard lock(mu_);
    // secure_delete zeroed a deleted record in the newest copy of its page,
    // but the database file keeps the old copy until a checkpoint writes
    // the new one over it, and the WAL keeps every frame written since the
    // last reset (the INSERT of the record among them). TRUNCATE copies
    // all frames back and cuts the WAL to zero bytes; it waits (busy
    // handler) for readers of older frames, and says SQLITE_BUSY if they
    // outlast the timeout (https://sqlite.org/c3ref/wal_checkpoint_v2.html).
    int log_frames = -1, done_frames = -1;
    int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr,
                                       SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                       &done_frames);
    if (rc != SQLITE_OK) {
      return SqliteError(db_.get(), rc,
                         "clear deleted keys from the key store's journal");
    }
    return Status::Ok();
  }

 private:
  static void Bind(sqlite3_stmt* s, const FileKeyRecord& r) {
    sqlite3_bind_blob(s, 1, r.file_id.data(),
                      static_cast<int>(r.file_id.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 2, static_cast<int>(r.location));
    sqlite3_bind_int64(s, 3, r.generation);
    sqlite3_bind_blob(s, 4, r.wrapped.data(),
                      static_cast<int>(r.wrapped.size()), SQLITE_TRANSIENT);
  }

  static StatusOr<FileKeyRecord> Row(sqlite3_stmt* s) {
    FileKeyRecord r;
    if (sqlite3_column_bytes(s, 0) != static_cast<int>(kFileIdSize)) {
      return CorruptionError("key store: malformed file ID");
    }
    std::memcpy(r.file_id.data(), sqlite3_column_blob(s, 0), kFileIdSize);
    int loc = sqlite3_column_int(s, 1);
    if (loc != 0 && loc != 1) return CorruptionError("key store: bad location");
    r.location = static_cast<KeyLocation>(loc);
    r.generation = static_cast<uint32_t>(sqlite3_column_int64(s, 2));
    const auto* w = static_cast<const uint8_t*>(sqlite3_column_blob(s, 3));
    r.wrapped.assign(w, w + sqlite3_column_bytes(s, 3));
    return r;
  }

  // SQLite's own serialized mode would make single statements safe, but
  // Transaction() must keep other threads out for its whole body.
  std::recursive_mutex mu_;
  DbPtr db_;
  KeyStoreDurability durability_ = KeyStoreDurability::kEveryCommit;
  // After db_: finalized before the connection closes.
  std::unordered_map<const char*, StmtPtr> cache_;
};

// Refuses a file that is not an SQLite database before SQLite opens it:
// SQLite takes an empty file for a new database and writes its header
// into it at the first pragma (a zero-length keys.db is evidence, or a
// mistake, never a key store to initialise).
Status CheckDatabaseHeader(const std::string& path) {
  static constexpr char kMagic[] = "SQLite format 3";  // with its NUL: 16
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoToStatus(errno, "key store " + path);
  char buf[sizeof kMagic] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  int err = errno;
  ::close(fd);
  if (n < 0) return ErrnoToStatus(err, "read key store " + path);
  if (n == 0) {
    return CorruptionError(path +
                           " is empty: not a volmgr key store (left as it "
                           "is; restore it from a backup)");
  }
  if (static_cast<size_t>(n) != sizeof kMagic ||
      std::memcmp(buf, kMagic, sizeof kMagic) != 0) {
    return CorruptionError(path +
                           " is not a volmgr key store (not an SQLite "
                           "database; left as it is)");
  }
  return Status::Ok();
}

// `path` as an SQLite URI filename with `query` (https://sqlite.org/uri.html):
// '%', '?' and '#' percent-encoded, everything else as it is.
std::string UriFor(const std::string& path, std::string_view query) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      static constexpr char kHex[] = "0123456789ABCDEF";
      uri += '%';
      uri += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      uri += kHex[static_cast<unsigned char>(c) & 0xf];
    } else {
      uri += c;
    }
  }
  uri += '?';
  uri += query;
  return uri;
}

}  // namespace

StatusOr<std::unique_ptr<KeyStore>> OpenSqliteKeyStore(const std::string& path,
                                                       KeyStoreOpen mode) {
  const bool create = mode == KeyStoreOpen::kCreate;
  const bool read_only = mode == KeyStoreOpen::kReadOnly;
  if (create) {
    // Create the file ourselves: exclusive, 0600 (SQLite would use 0644).
    int fd =
        ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoToStatus(errno, "create key store " + path);
    ::close(fd);
  } else {
    VOLMGR_RETURN_IF_ERROR(CheckDatabaseHeader(path));
  }
  // Read-only: mode=ro never writes the database or the WAL. Where nobody
  // can write the file system (a backup on read-only media) there is no
  // WAL index to share either, so `immutable` reads it without one.
  std::string query = "mode=rw";
  if (read_only) {
    struct statvfs fs {};
    query = ::statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0
                ? "immutable=1"
                : "mode=ro";
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      UriFor(path, query).c_str(), &raw,
      (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
          SQLITE_OPEN_URI | SQLITE_OPEN_FULLMUTEX,
      nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return SqliteError(raw, rc, "open key store " + path);
  sqlite3_busy_timeout(db.get(), 5000);
  auto store = std::make_unique<SqliteKeyStore>(std::move(db));
  // WAL: readers never block the writer and a crash leaves the last
  // committed state. FULL: each commit is fsync'd before it returns, so a
  // file's key is durable before its ciphertext exists (docs/FORMAT.md).
  // secure_delete: a deleted key's bytes are overwritten with zeros, not
  // left in the page's free space (https://sqlite.org/pragma.html
  // #pragma_secure_delete); it is per connection, so every open sets it.
  if (!read_only) {
    VOLMGR_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
    VOLMGR_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  }
  VOLMGR_RETURN_IF_ERROR(store->Exec("PRAGMA secure_delete=ON"));
  VOLMGR_RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  if (create) {
    Status created = store->Transaction([&]() -> Status {
      VOLMGR_RETURN_IF_ERROR(store->Exec(
          "CREATE TABLE settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);"
          "CREATE TABLE protectors(id TEXT PRIMARY KEY, kind TEXT NOT NULL,"
          " record TEXT NOT NULL);"
          "CREATE TABLE file_keys(file_id BLOB PRIMARY KEY"
          " CHECK(length(file_id) = 16), location INTEGER NOT NULL,"
          " generation INTEGER NOT NULL, wrapped BLOB NOT NULL);"
          "PRAGMA user_version = 1;"));
      return Status::Ok();
    });
    VOLMGR_RETURN_IF_ERROR(created);
  } else {
    auto s = store->Prepare("PRAGMA user_version");
    if (!s.ok()) return s.status();
    if (sqlite3_step(s->get()) != SQLITE_ROW) {
      return CorruptionError(path + " is not a volmgr key store");
    }
    int v = sqlite3_column_int(s->get(), 0);
    if (v == 0) return CorruptionError(path + " is not a volmgr key store");
    if (v > kSchemaVersion) {
      return UnsupportedError(path + " has key store schema " +
                              std::to_string(v) + "; this build reads 1");
    }
  }
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace volmgr::files
