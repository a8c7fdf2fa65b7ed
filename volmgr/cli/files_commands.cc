#include "volmgr/cli/files_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "volmgr/cli/output.h"
#include "volmgr/cli/secret_input.h"
#include "volmgr/files/encrypted_file.h"
#include "volmgr/files/fuse_fs.h"
#include "volmgr/files/sqlite_key_store.h"
#include "volmgr/files/store.h"
#include "volmgr/files/store_lock.h"
#include "volmgr/files/verify.h"

namespace volmgr::cli {
namespace {

using files::Store;

constexpr const char* kFilesHelp = R"(
A store is a directory: STORE/data holds the encrypted tree (names under
AES-256-SIV, content in AES-256-GCM chunks, one random key per file) and
STORE/keys.db the wrapped file keys. File keys are wrapped by the store's
master key, the master key by its protectors (a passphrase for now).

Examples:
  volmgr files init /srv/vault --key-file pass.txt
  volmgr files mount /srv/vault /mnt/vault --key-file pass.txt
  volmgr files umount /mnt/vault
  volmgr files encrypt /srv/vault report.pdf report.pdf.vmf --key-file pass.txt
  tar c dir | volmgr files encrypt /srv/vault - dir.tar.vmf --key-fd 3 3<pass.txt
  volmgr files decrypt /srv/vault dir.tar.vmf - --key-file pass.txt | tar x
  volmgr files rekey /srv/vault --key-file pass.txt     # new master key
  volmgr files shred /srv/vault report.pdf.vmf          # destroys its key
  volmgr files verify /srv/vault --repair --key-file pass.txt
  volmgr files status /srv/vault --json
)";

struct FilesArgs {
  std::string store, input, output, mountpoint, path, log_file, description;
  SecretSource key;
  Argon2Flags argon2;
  bool repair = false, allow_other = false, foreground = false, remove = false,
       debug = false;
};

void AddKeyOptions(CLI::App* cmd, FilesArgs& a) {
  cmd->add_option("--key-file", a.key.file,
                  "read the store passphrase from FILE ('-' = stdin)");
  cmd->add_option("--key-fd", a.key.fd,
                  "read the store passphrase from descriptor N");
}

StatusOr<std::unique_ptr<Store>> UnlockStore(
    const FilesArgs& a,
    files::StoreAccess access = files::StoreAccess::kReadWrite) {
  VOLMGR_ASSIGN_OR_RETURN(
      SecretBytes pass,
      ReadSecret(a.key, "Passphrase for store " + a.store + ": "));
  protectors::Credentials creds;
  creds.secrets.push_back(std::move(pass));
  return Store::Unlock(a.store, creds, access);
}

// Opens INPUT ("-" = stdin) for reading.
StatusOr<int> OpenInput(const std::string& path) {
  if (path == "-") return STDIN_FILENO;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, path);
  return fd;
}

// Creates OUTPUT ("-" = stdout) exclusively: volmgr never overwrites.
StatusOr<int> CreateOutput(const std::string& path, int mode) {
  if (path == "-") return STDOUT_FILENO;
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return AlreadyExistsError(path + " exists; volmgr never overwrites");
    }
    return ErrnoToStatus(errno, path);
  }
  return fd;
}

void CloseFd(int fd) {
  if (fd > STDERR_FILENO) ::close(fd);
}

Status Encrypt(const FilesArgs& a) {
  VOLMGR_ASSIGN_OR_RETURN(auto store, UnlockStore(a));
  VOLMGR_ASSIGN_OR_RETURN(int in, OpenInput(a.input));
  auto out = CreateOutput(a.output, 0600);
  if (!out.ok()) {
    CloseFd(in);
    return out.status();
  }
  Status s = [&]() -> Status {
    VOLMGR_ASSIGN_OR_RETURN(
        files::NewFileKey nk,
        store->CreateFileKey(files::KeyLocation::kExternal));
    files::FileHeader h;
    h.chunk_size = store->chunk_size();
    h.file_id = nk.file_id;
    VOLMGR_ASSIGN_OR_RETURN(files::ChunkCipher c,
                            files::ChunkCipher::Create(nk.key, h));
    auto n = files::EncryptStream(in, *out, c);
    if (!n.ok()) {
      store->Shred(nk.file_id).IgnoreError();
      return n.status();
    }
    if (*out != STDOUT_FILENO && ::fsync(*out) != 0) {
      return ErrnoToStatus(errno, "fsync " + a.output);
    }
    if (isatty(STDERR_FILENO)) {
      std::fprintf(stderr, "Encrypted %llu bytes as file %s.\n",
                   static_cast<unsigned long long>(*n),
                   files::FileIdHex(nk.file_id).c_str());
    }
    return Status::Ok();
  }();
  CloseFd(in);
  CloseFd(*out);
  if (!s.ok() && a.output != "-") ::unlink(a.output.c_str());
  return s;
}

Status Decrypt(const FilesArgs& a) {
  VOLMGR_ASSIGN_OR_RETURN(auto store,
                          UnlockStore(a, files::StoreAccess::kReadOnly));
  VOLMGR_ASSIGN_OR_RETURN(int in, OpenInput(a.input));
  Status s = [&]() -> Status {
    uint8_t hb[files::kFileHeaderSize];
    size_t got = 0;
    while (got < sizeof hb) {
      ssize_t n = ::read(in, hb + got, sizeof hb - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    VOLMGR_ASSIGN_OR_RETURN(files::FileHeader h,
                            files::FileHeader::Parse({hb, got}));
    VOLMGR_ASSIGN_OR_RETURN(SecretBytes key, store->FileKey(h.file_id));
    VOLMGR_ASSIGN_OR_RETURN(files::ChunkCipher c,
                            files::ChunkCipher::Create(key, h));
    VOLMGR_ASSIGN_OR_RETURN(int out, CreateOutput(a.output, 0600));
    auto n = files::DecryptStream(in, out, c);
    CloseFd(out);
    if (!n.ok()) {
      if (a.output != "-") ::unlink(a.output.c_str());
      return n.status().WithContext(a.input);
    }
    return Status::Ok();
  }();
  CloseFd(in);
  return s;
}

Status Shred(const FilesArgs& a) {
  // No unlock needed: deleting a key record needs no key.
  VOLMGR_ASSIGN_OR_RETURN(auto info, Store::Inspect(a.store));
  int fd = ::open(a.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, a.path);
  auto h = files::ReadFileHeader(fd);
  ::close(fd);
  if (!h.ok()) return h.status().WithContext(a.path);
  VOLMGR_ASSIGN_OR_RETURN(
      auto ks,
      files::OpenSqliteKeyStore(a.store + "/" + std::string(files::kKeysDbName),
                                files::KeyStoreOpen::kReadWrite));
  VOLMGR_RETURN_IF_ERROR(ks->DeleteFileKey(h->file_id));
  // The shred is complete only when the wrapped key's bytes are in none of
  // keys.db, -wal, -shm (docs/SECURITY.md, "Crypto-shred").
  Status scrubbed = ks->ScrubFreed();
  if (!scrubbed.ok()) {
    return scrubbed.WithContext(
        "the key of file " + files::FileIdHex(h->file_id) +
        " is deleted, but its bytes are still in " + a.store +
        "/keys.db's journal until the next shred, mount or verify --repair");
  }
  if (a.remove && ::unlink(a.path.c_str()) != 0) {
    return ErrnoToStatus(errno, "remove " + a.path);
  }
  std::printf("Shredded %s: key of file %s destroyed%s.\n", a.path.c_str(),
              files::FileIdHex(h->file_id).c_str(),
              a.remove ? ", ciphertext removed" : "");
  return Status::Ok();
}

Status Mount(const FilesArgs& a) {
  // Fork before any secret is read or unwrapped: SecretBytes memory is
  // MADV_WIPEONFORK, so a daemon forked after unlocking would hold zeros.
  // The parent waits for the child's verdict and exits with it.
  int pipefd[2] = {-1, -1};
  if (!a.foreground) {
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");
    pid_t pid = ::fork();
    if (pid < 0) return ErrnoToStatus(errno, "fork");
    if (pid > 0) {
      ::close(pipefd[1]);
      char buf[1024];
      ssize_t n = ::read(pipefd[0], buf, sizeof buf);
      if (n <= 0) return InternalError("the mount process died while starting");
      if (buf[0] == '0') std::exit(0);
      std::fprintf(stderr, "volmgr: %.*s\n", static_cast<int>(n - 1), buf + 1);
      std::exit(buf[0] - 'A');
    }
    ::close(pipefd[0]);
  }
  auto report = [&](const Status& s) {
    if (pipefd[1] < 0) return;
    std::string msg =
        s.ok()
            ? std::string("0")
            : std::string(1, static_cast<char>('A' + ExitCodeFor(s.code()))) +
                  s.message();
    if (::write(pipefd[1], msg.data(), msg.size()) < 0) {
    }
    ::close(pipefd[1]);
    pipefd[1] = -1;
  };
  Status s = [&]() -> Status {
    VOLMGR_ASSIGN_OR_RETURN(files::StoreLock lock,
                            files::StoreLock::Acquire(a.store));
    VOLMGR_ASSIGN_OR_RETURN(auto store, UnlockStore(a));
    files::MountOptions mo;
    mo.mountpoint = a.mountpoint;
    mo.allow_other = a.allow_other;
    mo.debug = a.debug;
    if (!a.log_file.empty()) {
      int lfd = ::open(a.log_file.c_str(),
                       O_CREAT | O_APPEND | O_WRONLY | O_CLOEXEC, 0600);
      if (lfd < 0) return ErrnoToStatus(errno, a.log_file);
      mo.log = [lfd](const std::string& line) {
        std::string l = line + "\n";
        if (::write(lfd, l.data(), l.size()) < 0) {
        }
      };
    } else if (a.foreground) {
      mo.log = [](const std::string& line) {
        std::fprintf(stderr, "%s\n", line.c_str());
      };
    } else {
      openlog("volmgr-files", LOG_PID, LOG_DAEMON);
      mo.log = [](const std::string& line) {
        syslog(LOG_WARNING, "%s", line.c_str());
      };
    }
    VOLMGR_ASSIGN_OR_RETURN(auto m,
                            files::FuseMount::Mount(std::move(store), mo));
    if (!a.foreground) {
      ::setsid();
      if (::chdir("/") != 0) {
      }
      int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) ::close(null);
      }
    }
    report(Status::Ok());
    return m->Serve();
  }();
  report(s);
  return s;
}

}  // namespace

void RegisterFilesCommands(CLI::App& app, CommandEnv env) {
  auto* files = app.add_subcommand(
      "files",
      "Service-level file encryption: per-file keys in a store, FUSE mount");
  files->footer(kFilesHelp);
  files->require_subcommand(1);
  auto a = std::make_shared<FilesArgs>();
  std::optional<Status>& result = env.result;
  bool& json = env.json_mode;

  auto* init = files->add_subcommand(
      "init", "Create a store in STORE (a new or empty directory)");
  init->add_option("STORE", a->store, "store directory")->required();
  init->add_option("--description", a->description, "protector description");
  AddKeyOptions(init, *a);
  a->argon2.AddTo(init);
  init->callback([a, &result] {
    result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(
          SecretBytes pass,
          ReadSecret(a->key, "New passphrase for " + a->store + ": ", true));
      files::InitOptions o;
      o.passphrase = &pass;
      o.argon2 = a->argon2.Params();
      o.description = a->description;
      VOLMGR_RETURN_IF_ERROR(Store::Init(a->store, o));
      VOLMGR_ASSIGN_OR_RETURN(auto info, Store::Inspect(a->store));
      std::printf("Created store %s (ID %s).\n", a->store.c_str(),
                  info.store_id.c_str());
      return Status::Ok();
    }();
  });

  auto* status = files->add_subcommand(
      "status", "Show a store: ID, master-key generation, protectors, files");
  status->add_option("STORE", a->store, "store directory")->required();
  status->add_flag("--json", json, "print JSON");
  status->callback([a, &result, &json] {
    result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(auto info, Store::Inspect(a->store));
      for (const auto& w : info.warnings) {
        std::fprintf(stderr, "volmgr: warning: %s\n", TerminalSafe(w).c_str());
      }
      nlohmann::json prot = nlohmann::json::array();
      for (const auto& p : info.protectors) {
        const auto* h = protectors::FindHandler(p.kind);
        prot.push_back({{"id", p.id},
                        {"kind", p.kind},
                        {"created", p.created},
                        {"description", p.description},
                        {"summary", h ? h->Describe(p) : p.kind}});
      }
      if (json) {
        nlohmann::json doc = {{"store", a->store},
                              {"store_id", info.store_id},
                              {"master_generation", info.master_generation},
                              {"chunk_size", info.chunk_size},
                              {"file_keys", info.file_keys},
                              {"protectors", prot},
                              {"warnings", info.warnings}};
        std::cout << JsonText(doc) << std::endl;
        return Status::Ok();
      }
      std::printf(
          "Store %s\n  ID                 %s\n  master key         "
          "generation %u\n  content            AES-256-GCM, %u-byte chunks, "
          "names AES-256-SIV\n  file keys          %llu\n",
          a->store.c_str(), TerminalSafe(info.store_id).c_str(),
          info.master_generation, info.chunk_size,
          static_cast<unsigned long long>(info.file_keys));
      for (const auto& p : info.protectors) {
        std::printf("  protector %s\n", ProtectorLine(p).c_str());
      }
      return Status::Ok();
    }();
  });

  auto* enc = files->add_subcommand(
      "encrypt",
      "Encrypt INPUT ('-' = stdin) into the new file OUTPUT "
      "('-' = stdout); its key goes into STORE");
  enc->add_option("STORE", a->store, "store directory")->required();
  enc->add_option("INPUT", a->input, "plaintext file or -")->required();
  enc->add_option("OUTPUT", a->output, "new encrypted file or -")->required();
  AddKeyOptions(enc, *a);
  enc->callback([a, &result] { result = Encrypt(*a); });

  auto* dec = files->add_subcommand(
      "decrypt",
      "Decrypt INPUT ('-' = stdin) into the new file OUTPUT "
      "('-' = stdout); fails on the first damaged chunk");
  dec->add_option("STORE", a->store, "store directory")->required();
  dec->add_option("INPUT", a->input, "encrypted file or -")->required();
  dec->add_option("OUTPUT", a->output, "new plaintext file or -")->required();
  AddKeyOptions(dec, *a);
  dec->callback([a, &result] { result = Decrypt(*a); });

  auto* rekey = files->add_subcommand(
      "rekey",
      "Rotate the master key: rewrap every file key (no file "
      "content is rewritten); the store must not be mounted");
  rekey->add_option("STORE", a->store, "store directory")->required();
  AddKeyOptions(rekey, *a);
  rekey->callback([a, &result] {
    result = [&]() -> Status {
      VOLMGR_ASSIGN_OR_RETURN(files::StoreLock lock,
                              files::StoreLock::Acquire(a->store));
      VOLMGR_ASSIGN_OR_RETURN(
          SecretBytes pass,
          ReadSecret(a->key, "Passphrase for store " + a->store + ": "));
      protectors::Credentials creds;
      creds.secrets.push_back(std::move(pass));
      VOLMGR_ASSIGN_OR_RETURN(auto store, Store::Unlock(a->store, creds));
      auto t0 = std::chrono::steady_clock::now();
      VOLMGR_ASSIGN_OR_RETURN(files::RekeyResult r, store->Rekey(creds));
      double sec =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      std::printf(
          "Master key rotated to generation %u: %llu file keys rewrapped in "
          "%.2f s; no file content changed.\n",
          r.new_generation, static_cast<unsigned long long>(r.rewrapped), sec);
      return Status::Ok();
    }();
  });

  auto* shred = files->add_subcommand(
      "shred",
      "Destroy the key of the encrypted file PATH (crypto-shred): "
      "every copy of its ciphertext becomes unreadable");
  shred->add_option("STORE", a->store, "store directory")->required();
  shred
      ->add_option("PATH", a->path,
                   "an encrypted file (from `files encrypt`, or in "
                   "STORE/data)")
      ->required();
  shred->add_flag("--remove", a->remove, "also delete PATH");
  shred->callback([a, &result] { result = Shred(*a); });

  auto* verify = files->add_subcommand(
      "verify",
      "Check every chunk of every file in STORE against its key, "
      "and every key against its file");
  verify->add_option("STORE", a->store, "store directory")->required();
  verify->add_flag("--repair", a->repair,
                   "delete keys without a file and files without a key "
                   "(damaged files are only reported)");
  verify->add_flag("--json", json, "print JSON");
  AddKeyOptions(verify, *a);
  verify->callback([a, &result, &json] {
    result = [&]() -> Status {
      std::optional<files::StoreLock> lock;
      if (a->repair) {
        VOLMGR_ASSIGN_OR_RETURN(files::StoreLock l,
                                files::StoreLock::Acquire(a->store));
        lock.emplace(std::move(l));
      }
      VOLMGR_ASSIGN_OR_RETURN(
          auto store,
          UnlockStore(*a, a->repair ? files::StoreAccess::kReadWrite
                                    : files::StoreAccess::kReadOnly));
      VOLMGR_ASSIGN_OR_RETURN(files::VerifyReport r,
                              files::VerifyStore(*store, a->repair));
      if (json) {
        std::cout << nlohmann::json{{"files_ok", r.files_ok},
                                    {"bytes_ok", r.bytes_ok},
                                    {"damaged", r.damaged},
                                    {"keyless", r.keyless},
                                    {"orphan_keys", r.orphan_keys},
                                    {"removed_files", r.removed_files},
                                    {"removed_keys", r.removed_keys}}
                         .dump(2)
                  << std::endl;
      } else {
        std::printf("%llu files verified (%llu bytes).\n",
                    static_cast<unsigned long long>(r.files_ok),
                    static_cast<unsigned long long>(r.bytes_ok));
        for (const auto& d : r.damaged) std::printf("DAMAGED  %s\n", d.c_str());
        for (const auto& k : r.keyless) {
          std::printf("NO KEY   %s%s\n", k.c_str(),
                      a->repair ? " (removed)" : "");
        }
        for (const auto& o : r.orphan_keys) {
          std::printf("ORPHAN KEY %s%s\n", o.c_str(),
                      a->repair ? " (removed)" : "");
        }
      }
      if (!r.damaged.empty()) {
        return CorruptionError(std::to_string(r.damaged.size()) +
                               " damaged file(s) in " + a->store);
      }
      if (!r.clean() && !a->repair) {
        return CorruptionError("store " + a->store +
                               " is inconsistent; run verify --repair");
      }
      return Status::Ok();
    }();
  });

  auto* mount = files->add_subcommand(
      "mount", "Mount STORE's plaintext view at MOUNTPOINT (FUSE)");
  mount->add_option("STORE", a->store, "store directory")->required();
  mount->add_option("MOUNTPOINT", a->mountpoint, "empty directory")->required();
  mount->add_flag("--allow-other", a->allow_other,
                  "let other users in (needs user_allow_other in "
                  "/etc/fuse.conf when not root)");
  mount->add_flag("--foreground", a->foreground,
                  "stay in the foreground; log to stderr");
  mount->add_flag("--debug", a->debug, "libfuse debug output (foreground)");
  mount->add_option("--log", a->log_file,
                    "append tamper/error lines to FILE (default: syslog)");
  AddKeyOptions(mount, *a);
  mount->callback([a, &result] {
    if (a->debug) a->foreground = true;
    result = Mount(*a);
  });

  auto* umount =
      files->add_subcommand("umount", "Unmount a store mounted at MOUNTPOINT");
  umount->add_option("MOUNTPOINT", a->mountpoint, "mountpoint")->required();
  umount->callback([a, &result] { result = files::Unmount(a->mountpoint); });
}

}  // namespace volmgr::cli
