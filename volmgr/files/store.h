// Store: a directory of encrypted files and its key store, unlocked.
//
//   STORE/keys.db   the SqliteKeyStore (settings, protectors, file keys)
//   STORE/data/     the encrypted tree: encrypted names, chunked content
//   STORE/.lock     flock'd by a mount and by `verify --repair`
//
// Key hierarchy (docs/FORMAT.md, "File key hierarchy"):
//   protectors (passphrase, ...) --wrap--> master key (256-bit, generation g)
//   master key --wrap--> each file key (256-bit, random per file)
//   master key --wrap--> name key (512-bit AES-SIV key for names)
// Protectors are volmgr's ProtectorHandlers bound to the store ID as if it
// were a volume UUID, so every protector kind volmgr knows (and the PKCS#11
// customer-key kinds once registered) can protect a store's master key.
//
// Thread-safety: after Unlock, all methods may be called from many threads.
#ifndef VOLMGR_FILES_STORE_H_
#define VOLMGR_FILES_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "volmgr/base/secret_bytes.h"
#include "volmgr/base/status.h"
#include "volmgr/crypto/argon2id.h"
#include "volmgr/files/chunk_format.h"
#include "volmgr/files/key_store.h"
#include "volmgr/files/name_cipher.h"
#include "volmgr/protectors/protector.h"

namespace volmgr::files {

inline constexpr std::string_view kKeysDbName = "keys.db";
inline constexpr std::string_view kDataDirName = "data";
inline constexpr std::string_view kLockFileName = ".lock";

struct InitOptions {
  const SecretBytes* passphrase = nullptr;  // the first protector
  crypto::Argon2Params argon2{};            // zeros: calibrate (~1 s)
  std::string description;
};

// What `files status` shows without unlocking. No secrets.
struct StoreInfo {
  std::string store_id;
  uint32_t master_generation = 0;
  uint32_t chunk_size = 0;
  uint64_t file_keys = 0;
  std::vector<protectors::ProtectorRecord> protectors;
  // Damaged protector records, skipped (one line each, naming the record
  // and the field).
  std::vector<std::string> warnings;
};

struct NewFileKey {
  FileId file_id{};
  SecretBytes key;
};

struct RekeyResult {
  uint32_t new_generation = 0;
  uint64_t rewrapped = 0;
};

// How Store::Unlock opens the key store: kReadOnly for commands that only
// read (decrypt, verify without --repair), which then never write keys.db.
enum class StoreAccess : int { kReadWrite = 0, kReadOnly = 1 };

class Store {
 public:
  // Creates STORE (which must be absent or an empty directory).
  // Errors: kAlreadyExists if STORE holds anything; kInvalidArgument for a
  // short passphrase; kIoError.
  static Status Init(const std::string& root, const InitOptions& options);

  // Reads the key store read-only (it never writes).
  static StatusOr<StoreInfo> Inspect(const std::string& root);

  // Opens the key store and recovers the master key with `creds`.
  // Errors: kAuthFailed if no protector opens; kNotFound if STORE is not a
  // store; kCorruption for a damaged key store. Under kReadOnly every call
  // that would change the key store fails with kFailedPrecondition.
  static StatusOr<std::unique_ptr<Store>> Unlock(
      const std::string& root, const protectors::Credentials& creds,
      StoreAccess access = StoreAccess::kReadWrite);

  const std::string& root() const { return root_; }
  const std::string& id() const { return id_; }
  std::string data_dir() const {
    return root_ + "/" + std::string(kDataDirName);
  }
  uint32_t chunk_size() const { return chunk_size_; }
  KeyStore& keys() { return *keys_; }
  const NameCipher& names() const { return *names_; }

  // A fresh file ID and key; the wrapped key is committed before this
  // returns, so ciphertext never exists without its key (on stable storage
  // at once under KeyStoreDurability::kEveryCommit, else at the next Sync).
  StatusOr<NewFileKey> CreateFileKey(KeyLocation location);
  // The key of a file. kNotFound if it was shredded; kCorruption if the
  // record does not belong to this file ID (moved between files) or store.
  StatusOr<SecretBytes> FileKey(const FileId& id);
  // Destroys a file's key (crypto-shred). kNotFound if absent. The
  // record's bytes stay in keys.db's journal until keys().ScrubFreed().
  Status Shred(const FileId& id);

  // Rotates the master key: a new random master key, every file key and the
  // name key rewrapped under it, and every protector re-created around it,
  // all in one transaction. No file content is touched. `creds` must open
  // every protector (a protector that cannot be re-created from them fails
  // the rekey with kFailedPrecondition and nothing changes).
  StatusOr<RekeyResult> Rekey(const protectors::Credentials& creds);

 private:
  Store() = default;
  crypto::WrapContext FileKeyContext(const FileId& id) const;
  crypto::WrapContext NameKeyContext() const;

  std::string root_;
  std::string id_;
  uint32_t generation_ = 0;
  uint32_t chunk_size_ = kDefaultChunkSize;
  std::unique_ptr<KeyStore> keys_;
  SecretBytes master_;
  std::unique_ptr<NameCipher> names_;
};

}  // namespace volmgr::files

#endif  // VOLMGR_FILES_STORE_H_
