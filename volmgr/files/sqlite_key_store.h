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

// Opens (create = false) or creates (create = true; kAlreadyExists if the
// file is there) the database at `path`, mode 0600.
// Errors: kNotFound, kCorruption (not a volmgr key store or a damaged one),
// kUnsupported (a newer schema), kBusy, kIoError.
StatusOr<std::unique_ptr<KeyStore>> OpenSqliteKeyStore(const std::string& path,
                                                       bool create);

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_SQLITE_KEY_STORE_H_
