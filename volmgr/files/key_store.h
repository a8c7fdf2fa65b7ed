// KeyStore: where a file-encryption store keeps its keys, apart from the
// ciphertext (docs/FORMAT.md, "File key store").
//
// It holds the store's settings (ID, master-key generation, the wrapped name
// key), the protector records that wrap the master key, and one wrapped key
// per file. Deleting a file's record crypto-shreds the file: copies of its
// ciphertext anywhere stay unreadable. The interface is the seam for a
// shared database serving many hosts later; SqliteKeyStore is the local one.
//
// Thread-safety: implementations are safe to call from many threads.
// Transaction() runs `body` atomically: every call made by `body` on the same
// store commits together or not at all; other threads wait.
//
// Durability: by default (KeyStoreDurability::kEveryCommit) a change is
// durable when the call that made it returns. Under kOnSync a committed
// change survives a crash of the process at once, but survives power loss
// only after the next Sync(); a mount uses this and calls Sync() before it
// lets an fsync of a file return (docs/FORMAT.md, "File key store").
#ifndef VOLMGR_FILES_KEY_STORE_H_
#define VOLMGR_FILES_KEY_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "volmgr/base/status.h"
#include "volmgr/files/chunk_format.h"

namespace volmgr::files {

// Where the file a key belongs to lives: inside the store's data tree
// (checked by `verify`), or a standalone file made by `files encrypt`.
enum class KeyLocation : int { kTree = 0, kExternal = 1 };

struct FileKeyRecord {
  FileId file_id{};
  KeyLocation location = KeyLocation::kTree;
  uint32_t generation = 0;       // master-key generation that wrapped it
  std::vector<uint8_t> wrapped;  // crypto::WrappedKey bytes
};

enum class KeyStoreDurability : int { kEveryCommit = 0, kOnSync = 1 };

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Settings: small named text values. Get returns nullopt when absent.
  virtual StatusOr<std::optional<std::string>> GetSetting(
      std::string_view name) = 0;
  virtual Status PutSetting(std::string_view name, std::string_view value) = 0;

  // Protector records of the master key, as JSON text (protector token
  // layout, docs/FORMAT.md "Protector tokens"), keyed by protector ID.
  virtual StatusOr<std::vector<std::string>> ListProtectors() = 0;
  virtual Status PutProtector(std::string_view id, std::string_view kind,
                              std::string_view record_json) = 0;
  virtual Status RemoveProtector(std::string_view id) = 0;

  // File keys. Insert fails with kAlreadyExists for a used ID; Get and
  // Delete with kNotFound for an absent one.
  virtual Status InsertFileKey(const FileKeyRecord& record) = 0;
  virtual StatusOr<FileKeyRecord> GetFileKey(const FileId& id) = 0;
  virtual Status UpdateFileKey(const FileKeyRecord& record) = 0;
  virtual Status DeleteFileKey(const FileId& id) = 0;
  // Calls `fn` for every record (in ID order); stops at its first error.
  virtual Status ForEachFileKey(
      const std::function<Status(const FileKeyRecord&)>& fn) = 0;
  virtual StatusOr<uint64_t> CountFileKeys() = 0;

  virtual Status Transaction(const std::function<Status()>& body) = 0;

  virtual Status SetDurability(KeyStoreDurability durability) = 0;
  // Makes every committed change durable against power loss (a no-op
  // under kEveryCommit).
  virtual Status Sync() = 0;

  // Leaves no byte of a deleted or replaced record in the store's own
  // files (crypto-shred, docs/SECURITY.md): the deleted bytes were zeroed
  // in their pages when deleted; this copies those pages over the old ones
  // and empties the journal that still holds earlier copies. Makes every
  // committed change durable too. kBusy if another process kept reading
  // the old state for the whole busy timeout; the bytes then go at the
  // next call that succeeds.
  virtual Status ScrubFreed() = 0;
};

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_KEY_STORE_H_
