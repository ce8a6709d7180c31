// `ohm keygen [--out KEYFILE]`, `ohm encrypt IN [OUT] --recipient PUBKEY...` and
// `ohm decrypt IN [OUT] --identity KEYFILE`: file encryption to X25519 recipients (libsodium;
// docs/encryption.md), and the folder helpers behind `ohm push --encrypt` / `ohm pull --decrypt`.
#include "encrypt.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <mutex>
#include <thread>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/hub/client.h"

namespace ohm::cli {

namespace fs = std::filesystem;

std::string default_identity_path() {
  if (const char* e = std::getenv("OHM_IDENTITY"); e && *e) return e;
  fs::path base;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    base = x;
  else if (const char* h = std::getenv("HOME"); h && *h)
    base = fs::path(h) / ".config";
  else
    throw UsageError("no identity file: give --identity (or set OHM_IDENTITY or HOME)");
  return (base / "ohm" / "identity.key").string();
}

safety::Identity load_identity(const std::string& path) {
  const std::string p = path.empty() ? default_identity_path() : path;
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    std::cerr << "ohm: warning: identity file " << p << " is readable by others (chmod 600 it)\n";
  return safety::Identity::load(p);
}

std::vector<safety::PublicKey> collect_recipients(const std::vector<std::string>& keys,
                                                  const std::vector<std::string>& files) {
  std::vector<safety::PublicKey> out;
  for (const auto& k : keys) out.push_back(safety::PublicKey::parse(k, "--recipient"));
  for (const auto& f : files)
    for (const auto& k : safety::read_recipients_file(f)) out.push_back(k);
  if (out.empty())
    throw UsageError(
        "no recipients: give --recipient PUBKEY (from `ohm keygen`) or "
        "--recipients-file FILE");
  return out;
}

StagingDir::StagingDir() {
  std::string tmpl = (fs::temp_directory_path() / "ohm-encrypt-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    throw IoError(ErrorContext().file(tmpl), "cannot create a temporary directory (TMPDIR)");
  path_ = tmpl;
}

StagingDir::~StagingDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

namespace {

// Runs fn(i) for i in [0, n) on up to `threads` threads; rethrows the first exception.
template <class F>
void run_parallel(size_t n, int threads, F fn) {
  std::atomic<size_t> next{0};
  std::exception_ptr err;
  std::mutex mu;
  auto work = [&] {
    for (size_t i; (i = next++) < n;) {
      {
        std::lock_guard l(mu);
        if (err) return;
      }
      try {
        fn(i);
      } catch (...) {
        std::lock_guard l(mu);
        if (!err) err = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t t = std::min<size_t>(n, static_cast<size_t>(std::max(1, threads)));
  for (size_t i = 1; i < t; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
}

bool has_magic(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  char head[8] = {};
  f.read(head, static_cast<std::streamsize>(safety::kEncMagic.size()));
  return safety::is_encrypted(std::string_view(head, static_cast<size_t>(f.gcount())));
}

}  // namespace

size_t encrypt_tree(const fs::path& folder, const fs::path& staging,
                    const std::vector<safety::PublicKey>& recipients, int parallel,
                    std::ostream* log) {
  const std::vector<hub::FolderFile> items = hub::upload_folder_files(folder.string());
  std::atomic<size_t> encrypted{0};
  std::mutex mu;
  run_parallel(items.size(), parallel, [&](size_t i) {
    const hub::FolderFile& it = items[i];
    const bool already = it.rel.ends_with(safety::kEncSuffix) && has_magic(it.abs);
    const fs::path dst = staging / (already ? it.rel : it.rel + std::string(safety::kEncSuffix));
    fs::create_directories(dst.parent_path());
    if (already) {
      fs::copy_file(it.abs, dst, fs::copy_options::overwrite_existing);
    } else {
      safety::encrypt_file(it.abs.string(), dst.string(), recipients);
      ++encrypted;
    }
    if (log) {
      std::lock_guard l(mu);
      *log << (already ? "already encrypted " : "encrypted ") << it.rel << "\n";
    }
  });
  return encrypted;
}

DecryptTreeResult decrypt_tree(const fs::path& dir, const safety::Identity& id, std::ostream* log) {
  DecryptTreeResult r;
  if (!fs::is_directory(dir)) return r;
  std::vector<fs::path> todo;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string name = it->path().filename().string();
    if (name.size() > safety::kEncSuffix.size() && name.ends_with(safety::kEncSuffix) &&
        fs::is_regular_file(it->path()))  // follows the snapshot's symlink to its blob
      todo.push_back(it->path());
  }
  std::sort(todo.begin(), todo.end());
  for (const auto& p : todo) {
    const std::string s = p.string();
    const fs::path out = s.substr(0, s.size() - safety::kEncSuffix.size());
    const std::string rel = p.lexically_relative(dir).generic_string();
    if (fs::is_symlink(out)) {
      r.failed.push_back(rel + ": not decrypted: the repo also has a file " +
                         out.lexically_relative(dir).generic_string());
      continue;
    }
    try {
      // decrypt_file writes a temporary file and renames it: `out` is a new regular file (never
      // written through a symlink into the cache's blobs).
      safety::decrypt_file(s, out.string(), id);
      ++r.decrypted;
      if (log) *log << "decrypted " << rel << "\n";
    } catch (const Error& e) {
      r.failed.push_back(e.what());
    }
  }
  return r;
}

namespace {

const Register keygen_reg("keygen", [](CLI::App& app) {
  auto out = std::make_shared<std::string>();
  auto show = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "keygen",
      "Create an identity (X25519 key pair) for encrypted uploads; prints its public key");
  cmd->add_option("--out,-o", *out,
                  "Identity file to create, mode 0600, never overwritten (default: OHM_IDENTITY, "
                  "else $XDG_CONFIG_HOME/ohm/identity.key or ~/.config/ohm/identity.key)");
  cmd->add_flag("--public", *show,
                "Print the public key of the existing identity file instead of creating one");
  cmd->footer(
      "The public key (ohm1...) goes to stdout: give it to whoever encrypts for you\n"
      "(`ohm push --encrypt --recipient ohm1...`). Keep the identity file private: it decrypts\n"
      "(`ohm pull --decrypt --identity FILE`). docs/encryption.md has the formats.");
  return Command{cmd, [out, show] {
                   const std::string path = out->empty() ? default_identity_path() : *out;
                   if (*show) {
                     std::cout << load_identity(path).pub.str() << "\n";
                     return 0;
                   }
                   const fs::path dir = fs::path(path).parent_path();
                   if (!dir.empty() && !fs::exists(dir)) {
                     fs::create_directories(dir);
                     fs::permissions(dir, fs::perms::owner_all);
                   }
                   const auto id = safety::Identity::generate();
                   id.save(path);
                   std::cerr << "wrote identity " << path << " (keep it private); public key:\n";
                   std::cout << id.pub.str() << "\n";
                   return 0;
                 }};
});

struct CryptOpts {
  std::string in, out, identity;
  std::vector<std::string> recipients, recipient_files;
};

const Register encrypt_reg("encrypt", [](CLI::App& app) {
  auto o = std::make_shared<CryptOpts>();
  auto* cmd = app.add_subcommand(
      "encrypt", "Encrypt a file to one or more public keys (X25519 + XChaCha20-Poly1305)");
  cmd->add_option("IN", o->in, "File to encrypt")->required()->check(readable_file());
  cmd->add_option("OUT", o->out, "Encrypted file (default: IN.ohmenc)");
  cmd->add_option("--recipient,-r", o->recipients,
                  "Public key ohm1... (from `ohm keygen`) that can decrypt (repeatable)");
  cmd->add_option("--recipients-file,-R", o->recipient_files,
                  "File of public keys, one per line ('#' comments; an identity file counts as "
                  "its own public key) (repeatable)")
      ->check(readable_file());
  return Command{cmd, [o] {
                   const auto to = collect_recipients(o->recipients, o->recipient_files);
                   const std::string out =
                       o->out.empty() ? o->in + std::string(safety::kEncSuffix) : o->out;
                   const uint64_t n = safety::encrypt_file(o->in, out, to);
                   std::cerr << "encrypted " << o->in << " -> " << out << " (" << n << " bytes, "
                             << to.size() << " recipient(s))\n";
                   return 0;
                 }};
});

const Register decrypt_reg("decrypt", [](CLI::App& app) {
  auto o = std::make_shared<CryptOpts>();
  auto* cmd = app.add_subcommand(
      "decrypt",
      "Decrypt and verify a file from `ohm encrypt` / `ohm push --encrypt` (nothing is written "
      "unless all of it authenticates)");
  cmd->add_option("IN", o->in, "Encrypted file")->required()->check(readable_file());
  cmd->add_option("OUT", o->out, "Decrypted file, mode 0600 (default: IN without .ohmenc)");
  cmd->add_option("--identity,-i", o->identity,
                  "Identity file from `ohm keygen` (default: OHM_IDENTITY, else "
                  "~/.config/ohm/identity.key)");
  cmd->footer(
      "A changed, truncated or extended file, or one not encrypted to this identity, fails with\n"
      "exit status 1 naming the cause; OUT is then not created (an existing OUT is kept).");
  return Command{
      cmd, [o] {
        std::string out = o->out;
        if (out.empty()) {
          if (!o->in.ends_with(safety::kEncSuffix) || o->in.size() == safety::kEncSuffix.size())
            throw UsageError("give OUT: '" + o->in + "' does not end in .ohmenc");
          out = o->in.substr(0, o->in.size() - safety::kEncSuffix.size());
        }
        const auto id = load_identity(o->identity);
        const uint64_t n = safety::decrypt_file(o->in, out, id);
        std::cerr << "decrypted " << o->in << " -> " << out << " (" << n << " bytes, verified)\n";
        return 0;
      }};
});

}  // namespace
}  // namespace ohm::cli
