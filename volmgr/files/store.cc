#include "volmgr/files/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <set>

#include "volmgr/base/uuid.h"
#include "volmgr/crypto/key_wrap.h"
#include "volmgr/crypto/openssl_handles.h"
#include "volmgr/files/sqlite_key_store.h"

namespace volmgr::files {
namespace {

constexpr std::string_view kFileKeyPurpose = "file-key";
constexpr std::string_view kNameKeyPurpose = "name-key";

std::string KeysPath(const std::string& root) {
  return root + "/" + std::string(kKeysDbName);
}

std::string GenerationKind(uint32_t generation) {
  return "master-" + std::to_string(generation);
}

StatusOr<std::string> RequiredSetting(KeyStore& ks, std::string_view name) {
  VOLMGR_ASSIGN_OR_RETURN(std::optional<std::string> v, ks.GetSetting(name));
  if (!v) {
    return CorruptionError("key store has no setting '" + std::string(name) +
                           "'");
  }
  return *v;
}

StatusOr<uint32_t> NumberSetting(KeyStore& ks, std::string_view name) {
  VOLMGR_ASSIGN_OR_RETURN(std::string v, RequiredSetting(ks, name));
  char* end = nullptr;
  unsigned long n = std::strtoul(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n > 0xffffffffUL) {
    return CorruptionError("key store setting '" + std::string(name) +
                           "' is not a number");
  }
  return static_cast<uint32_t>(n);
}

// The protector records, read as untrusted JSON: a damaged one is skipped
// with a warning naming it (like a damaged LUKS2 token), so any intact
// protector still opens the store.
struct LoadedProtectors {
  std::vector<protectors::ProtectorRecord> records;
  std::vector<std::string> warnings;
};

StatusOr<LoadedProtectors> LoadProtectors(KeyStore& ks) {
  VOLMGR_ASSIGN_OR_RETURN(std::vector<std::string> rows, ks.ListProtectors());
  LoadedProtectors out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string which = "protector record " + std::to_string(i + 1);
    auto r = protectors::ProtectorRecord::FromTokenJson(-1, rows[i]);
    Status s = r.status();
    if (s.ok()) {
      const auto* h = protectors::FindHandler(r->kind);
      s = h == nullptr ? UnsupportedError("protector kind \"" + r->kind +
                                          "\" is unknown to this volmgr")
                       : h->Validate(*r);
    }
    if (!s.ok()) {
      out.warnings.push_back(which +
                             " of the key store is damaged and was "
                             "skipped: " +
                             s.message());
      continue;
    }
    out.records.push_back(std::move(r).value());
  }
  return out;
}

// Every warning in one error (when nothing else can be said).
Status DamagedProtectors(const LoadedProtectors& p) {
  std::string msg;
  for (const auto& w : p.warnings) msg += (msg.empty() ? "" : "; ") + w;
  return CorruptionError(msg);
}

Status WriteDirId(const std::string& dir) {
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes rnd, SecretBytes::Random(kDirIdSize));
  const std::string path = dir + "/" + std::string(kDirIdFileName);
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);
  if (fd < 0) return ErrnoToStatus(errno, "create " + path);
  ssize_t n = ::write(fd, rnd.Reveal().data(), kDirIdSize);
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(kDirIdSize)) return ErrnoToStatus(err, path);
  return Status::Ok();
}

}  // namespace

Status Store::Init(const std::string& root, const InitOptions& options) {
  if (options.passphrase == nullptr) {
    return InvalidArgumentError("a new store needs a passphrase");
  }
  if (::mkdir(root.c_str(), 0700) != 0) {
    if (errno != EEXIST) return ErrnoToStatus(errno, "create " + root);
    DIR* d = ::opendir(root.c_str());
    if (d == nullptr) return ErrnoToStatus(errno, "open " + root);
    bool empty = true;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") empty = false;
    }
    ::closedir(d);
    if (!empty) {
      return AlreadyExistsError(root +
                                " is not empty; a store needs a new or empty "
                                "directory");
    }
  }
  VOLMGR_ASSIGN_OR_RETURN(Uuid uuid, Uuid::Random());
  const std::string store_id = uuid.ToString();
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes master,
                          SecretBytes::Random(crypto::kWrapKekSize));
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes name_key,
                          SecretBytes::Random(kNameKeySize));
  const auto* handler = protectors::FindHandler("passphrase");
  if (handler == nullptr) return InternalError("no passphrase protector");
  protectors::CreateRequest req;
  req.passphrase = options.passphrase;
  req.argon2 = options.argon2;
  req.description = options.description;
  protectors::Binding binding{store_id};
  // Derive (the slow step) before anything is written.
  VOLMGR_ASSIGN_OR_RETURN(protectors::CreateResult prot,
                          handler->Create(master, req, binding));
  crypto::WrapContext name_ctx{std::string(kNameKeyPurpose), store_id, "",
                               GenerationKind(1)};
  VOLMGR_ASSIGN_OR_RETURN(crypto::WrappedKey wrapped_name,
                          crypto::WrapKey(master, name_key, name_ctx));

  const std::string data = root + "/" + std::string(kDataDirName);
  if (::mkdir(data.c_str(), 0700) != 0) {
    return ErrnoToStatus(errno, "create " + data);
  }
  VOLMGR_RETURN_IF_ERROR(WriteDirId(data));
  VOLMGR_ASSIGN_OR_RETURN(
      std::unique_ptr<KeyStore> ks,
      OpenSqliteKeyStore(KeysPath(root), KeyStoreOpen::kCreate));
  return ks->Transaction([&]() -> Status {
    VOLMGR_RETURN_IF_ERROR(ks->PutSetting("format", "1"));
    VOLMGR_RETURN_IF_ERROR(ks->PutSetting("store_id", store_id));
    VOLMGR_RETURN_IF_ERROR(ks->PutSetting("master_generation", "1"));
    VOLMGR_RETURN_IF_ERROR(
        ks->PutSetting("chunk_size", std::to_string(kDefaultChunkSize)));
    VOLMGR_RETURN_IF_ERROR(
        ks->PutSetting("wrapped_name_key", wrapped_name.ToBase64()));
    return ks->PutProtector(prot.record.id, prot.record.kind,
                            prot.record.ToTokenJson());
  });
}

StatusOr<StoreInfo> Store::Inspect(const std::string& root) {
  VOLMGR_ASSIGN_OR_RETURN(
      std::unique_ptr<KeyStore> ks,
      OpenSqliteKeyStore(KeysPath(root), KeyStoreOpen::kReadOnly));
  StoreInfo info;
  VOLMGR_ASSIGN_OR_RETURN(info.store_id, RequiredSetting(*ks, "store_id"));
  VOLMGR_ASSIGN_OR_RETURN(info.master_generation,
                          NumberSetting(*ks, "master_generation"));
  VOLMGR_ASSIGN_OR_RETURN(info.chunk_size, NumberSetting(*ks, "chunk_size"));
  VOLMGR_ASSIGN_OR_RETURN(info.file_keys, ks->CountFileKeys());
  VOLMGR_ASSIGN_OR_RETURN(LoadedProtectors p, LoadProtectors(*ks));
  info.protectors = std::move(p.records);
  info.warnings = std::move(p.warnings);
  return info;
}

StatusOr<std::unique_ptr<Store>> Store::Unlock(
    const std::string& root, const protectors::Credentials& creds,
    StoreAccess access) {
  std::unique_ptr<Store> s(new Store());
  // Absolute, so a daemon that changes directory still finds its data.
  char real[PATH_MAX];
  if (::realpath(root.c_str(), real) == nullptr) {
    return ErrnoToStatus(errno, "store " + root);
  }
  s->root_ = real;
  VOLMGR_ASSIGN_OR_RETURN(
      s->keys_,
      OpenSqliteKeyStore(KeysPath(root), access == StoreAccess::kReadOnly
                                             ? KeyStoreOpen::kReadOnly
                                             : KeyStoreOpen::kReadWrite));
  VOLMGR_ASSIGN_OR_RETURN(s->id_, RequiredSetting(*s->keys_, "store_id"));
  VOLMGR_ASSIGN_OR_RETURN(s->generation_,
                          NumberSetting(*s->keys_, "master_generation"));
  VOLMGR_ASSIGN_OR_RETURN(s->chunk_size_,
                          NumberSetting(*s->keys_, "chunk_size"));
  VOLMGR_ASSIGN_OR_RETURN(LoadedProtectors loaded, LoadProtectors(*s->keys_));
  if (loaded.records.empty() && !loaded.warnings.empty()) {
    return DamagedProtectors(loaded);
  }
  const auto& records = loaded.records;
  protectors::Binding binding{s->id_};
  Status last = AuthFailedError("no protector of store " + root +
                                " can use the given credentials");
  bool opened = false;
  for (const auto& r : records) {
    const auto* h = protectors::FindHandler(r.kind);
    if (h == nullptr || !h->CanTry(r, creds)) continue;
    auto master = h->UnwrapVmk(r, creds, binding);
    if (master.ok()) {
      s->master_ = std::move(master).value();
      opened = true;
      break;
    }
    last = master.status();
  }
  if (!opened) return last;
  VOLMGR_ASSIGN_OR_RETURN(std::string wrapped_name,
                          RequiredSetting(*s->keys_, "wrapped_name_key"));
  VOLMGR_ASSIGN_OR_RETURN(crypto::WrappedKey w,
                          crypto::WrappedKey::FromBase64(wrapped_name));
  VOLMGR_ASSIGN_OR_RETURN(
      SecretBytes name_key,
      crypto::UnwrapKey(s->master_, w, s->NameKeyContext()));
  VOLMGR_ASSIGN_OR_RETURN(NameCipher names,
                          NameCipher::Create(std::move(name_key)));
  s->names_ = std::make_unique<NameCipher>(std::move(names));
  return s;
}

crypto::WrapContext Store::FileKeyContext(const FileId& id) const {
  return {std::string(kFileKeyPurpose), id_, FileIdHex(id),
          GenerationKind(generation_)};
}

crypto::WrapContext Store::NameKeyContext() const {
  return {std::string(kNameKeyPurpose), id_, "", GenerationKind(generation_)};
}

StatusOr<NewFileKey> Store::CreateFileKey(KeyLocation location) {
  NewFileKey out;
  VOLMGR_ASSIGN_OR_RETURN(out.key, SecretBytes::Random(kFileKeySize));
  // The ID is public (it is in the file header): no locked secret mapping,
  // whose mmap/munmap per create showed up in untar profiles.
  if (RAND_bytes(out.file_id.data(), static_cast<int>(out.file_id.size())) !=
      1) {
    return crypto::OpenSslError("RAND_bytes for a file ID");
  }
  VOLMGR_ASSIGN_OR_RETURN(
      crypto::WrappedKey w,
      crypto::WrapKey(master_, out.key, FileKeyContext(out.file_id)));
  FileKeyRecord rec{out.file_id, location, generation_, w.bytes()};
  VOLMGR_RETURN_IF_ERROR(keys_->InsertFileKey(rec));
  return out;
}

StatusOr<SecretBytes> Store::FileKey(const FileId& id) {
  VOLMGR_ASSIGN_OR_RETURN(FileKeyRecord rec, keys_->GetFileKey(id));
  if (rec.generation != generation_) {
    return CorruptionError("key of file " + FileIdHex(id) +
                           " is from master-key generation " +
                           std::to_string(rec.generation) + ", store is at " +
                           std::to_string(generation_));
  }
  auto key = crypto::UnwrapKey(master_, rec.wrapped, FileKeyContext(id));
  if (!key.ok() && key.status().code() == StatusCode::kAuthFailed) {
    return CorruptionError("key record of file " + FileIdHex(id) +
                           " does not authenticate (moved or altered)");
  }
  return key;
}

Status Store::Shred(const FileId& id) { return keys_->DeleteFileKey(id); }

StatusOr<RekeyResult> Store::Rekey(const protectors::Credentials& creds) {
  VOLMGR_ASSIGN_OR_RETURN(LoadedProtectors loaded, LoadProtectors(*keys_));
  // A rekey re-creates every protector: a damaged one cannot be, and
  // dropping it silently would lose whatever it was for.
  if (!loaded.warnings.empty()) return DamagedProtectors(loaded);
  const auto& records = loaded.records;
  protectors::Binding binding{id_};
  // Every protector must open with `creds` and be re-creatable from them.
  for (const auto& r : records) {
    const auto* h = protectors::FindHandler(r.kind);
    if (h == nullptr || r.kind != "passphrase" || !h->CanTry(r, creds)) {
      return FailedPreconditionError(
          "protector " + r.id + " (" + r.kind +
          ") cannot be re-created by rekey; remove it first");
    }
  }
  const uint32_t new_gen = generation_ + 1;
  VOLMGR_ASSIGN_OR_RETURN(SecretBytes new_master,
                          SecretBytes::Random(crypto::kWrapKekSize));
  // Re-create the protectors first (the slow Argon2id step) outside the
  // transaction.
  std::vector<protectors::CreateResult> new_prot;
  for (const auto& r : records) {
    protectors::CreateRequest req;
    req.description = r.description;
    // The record is untrusted: type-check before reading (json::value
    // throws on a type mismatch).
    if (!r.params.is_object()) {
      return CorruptionError("protector " + r.id +
                             ": field \"params\" is not an object");
    }
    for (auto [name, out] :
         {std::pair{"time_cost", &req.argon2.time_cost},
          std::pair{"memory_kib", &req.argon2.memory_kib},
          std::pair{"parallelism", &req.argon2.parallelism}}) {
      auto it = r.params.find(name);
      if (it == r.params.end() || !it->is_number_unsigned() ||
          it->get<uint64_t>() > 0xffffffffu) {
        return CorruptionError("protector " + r.id + ": field \"params." +
                               name + "\" is missing or not a 32-bit count");
      }
      *out = it->get<uint32_t>();
    }
    // The passphrase that opened this protector is the one to re-wrap with.
    const SecretBytes* pass = nullptr;
    for (const auto& sec : creds.secrets) {
      protectors::Credentials one;
      auto copy = SecretBytes::CopyOf(sec.Reveal());
      if (!copy.ok()) return copy.status();
      one.secrets.push_back(std::move(copy).value());
      auto m = protectors::FindHandler(r.kind)->UnwrapVmk(r, one, binding);
      if (m.ok() && m->ConstantTimeEquals(master_)) {
        pass = &sec;
        break;
      }
    }
    if (pass == nullptr) {
      return FailedPreconditionError("protector " + r.id +
                                     " does not open with the given "
                                     "passphrase; rekey needs every protector");
    }
    req.passphrase = pass;
    VOLMGR_ASSIGN_OR_RETURN(
        protectors::CreateResult c,
        protectors::FindHandler(r.kind)->Create(new_master, req, binding));
    new_prot.push_back(std::move(c));
  }
  std::vector<FileKeyRecord> all;
  VOLMGR_RETURN_IF_ERROR(keys_->ForEachFileKey([&](const FileKeyRecord& r) {
    all.push_back(r);
    return Status::Ok();
  }));
  RekeyResult result{new_gen, 0};
  const std::string new_kind = GenerationKind(new_gen);
  Status committed = keys_->Transaction([&]() -> Status {
    for (auto& rec : all) {
      VOLMGR_ASSIGN_OR_RETURN(SecretBytes k, FileKey(rec.file_id));
      crypto::WrapContext ctx = FileKeyContext(rec.file_id);
      ctx.protector_kind = new_kind;
      VOLMGR_ASSIGN_OR_RETURN(crypto::WrappedKey w,
                              crypto::WrapKey(new_master, k, ctx));
      rec.wrapped = w.bytes();
      rec.generation = new_gen;
      VOLMGR_RETURN_IF_ERROR(keys_->UpdateFileKey(rec));
      ++result.rewrapped;
    }
    crypto::WrapContext nctx = NameKeyContext();
    VOLMGR_ASSIGN_OR_RETURN(std::string wn,
                            RequiredSetting(*keys_, "wrapped_name_key"));
    VOLMGR_ASSIGN_OR_RETURN(crypto::WrappedKey old_name,
                            crypto::WrappedKey::FromBase64(wn));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes name_key,
                            crypto::UnwrapKey(master_, old_name, nctx));
    nctx.protector_kind = new_kind;
    VOLMGR_ASSIGN_OR_RETURN(crypto::WrappedKey wname,
                            crypto::WrapKey(new_master, name_key, nctx));
    VOLMGR_RETURN_IF_ERROR(
        keys_->PutSetting("wrapped_name_key", wname.ToBase64()));
    for (const auto& r : records) {
      VOLMGR_RETURN_IF_ERROR(keys_->RemoveProtector(r.id));
    }
    for (const auto& c : new_prot) {
      VOLMGR_RETURN_IF_ERROR(keys_->PutProtector(c.record.id, c.record.kind,
                                                 c.record.ToTokenJson()));
    }
    return keys_->PutSetting("master_generation", std::to_string(new_gen));
  });
  VOLMGR_RETURN_IF_ERROR(committed);
  master_ = std::move(new_master);
  generation_ = new_gen;
  // The old wrapped keys and protector records are deleted rows now: take
  // their bytes out of keys.db and its WAL, so only a backup of keys.db
  // still holds the old master key's wrapping (docs/SECURITY.md).
  VOLMGR_RETURN_IF_ERROR(keys_->ScrubFreed());
  return result;
}

}  // namespace volmgr::files
