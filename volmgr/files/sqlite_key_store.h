// SqliteKeyStore: the KeyStore in one embedded SQLite database file, in WAL
// mode, so a reader never sees half a transaction and a committed key
// survives a crash of the process. synchronous=FULL (kEveryCommit, the
// default) fsyncs the WAL at each commit; synchronous=NORMAL (kOnSync)
// leaves that to Sync(), a checkpoint, which syncs the WAL first
// (docs/FORMAT.md, "File key store").
#ifndef VOLMGR_FILES_SQLITE_KEY_STORE_H_
#define VOLMGR_FILES_SQLITE_KEY_STORE_H_

#include <memory>
#include <string>

#include "volmgr/files/key_store.h"

namespace volmgr::files {

enum class KeyStoreOpen : int {
  // A new database (kAlreadyExists if the file is there), mode 0600.
  kCreate = 0,
  kReadWrite = 1,
  // SQLITE_OPEN_READONLY: SQLite never writes the database or its WAL (a
  // WAL reader may create the shared-memory index beside it, as any reader
  // does). On a read-only file system, `immutable`: nobody can change it.
  // Every call that would write fails with kFailedPrecondition.
  kReadOnly = 2,
};

// Opens or creates the database at `path`. Every connection runs with
// secure_delete on: a deleted record's bytes are overwritten with zeros in
// its page (ScrubFreed() then moves those pages out of the WAL). A file
// that does not start with the SQLite header (an empty or foreign keys.db)
// is refused before SQLite sees it, so an open never turns it into a
// database.
// Errors: kNotFound, kCorruption (not a volmgr key store or a damaged one),
// kUnsupported (a newer schema), kBusy, kIoError.
StatusOr<std::unique_ptr<KeyStore>> OpenSqliteKeyStore(const std::string& path,
                                                       KeyStoreOpen mode);

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_SQLITE_KEY_STORE_H_
