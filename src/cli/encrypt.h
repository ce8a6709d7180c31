// Encryption helpers shared by `ohm encrypt|decrypt|keygen`, `ohm push --encrypt` and
// `ohm pull --decrypt` (docs/encryption.md).
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "ohm/safety/encrypt.h"

namespace ohm::cli {

// OHM_IDENTITY, else $XDG_CONFIG_HOME/ohm/identity.key, else ~/.config/ohm/identity.key.
std::string default_identity_path();

// Loads an identity file (the default when `path` is empty), warning on stderr when the file is
// readable by group or others.
safety::Identity load_identity(const std::string& path);

// --recipient keys and --recipients-file files, in order; UsageError when there are none.
std::vector<safety::PublicKey> collect_recipients(const std::vector<std::string>& keys,
                                                  const std::vector<std::string>& files);

// A temporary directory removed (recursively) on destruction.
class StagingDir {
 public:
  StagingDir();
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Encrypts every file under `folder` (as `ohm push` lists them: symlinks followed, .git/ and
// .cache/huggingface/ left out) to `staging`/<path>.ohmenc; a file that already is an ohm
// encrypted *.ohmenc is copied as it is. Returns the number of files encrypted.
size_t encrypt_tree(const std::filesystem::path& folder, const std::filesystem::path& staging,
                    const std::vector<safety::PublicKey>& recipients, int parallel,
                    std::ostream* log);

struct DecryptTreeResult {
  size_t decrypted = 0;
  std::vector<std::string> failed;  // one message per file that did not decrypt
};

// Decrypts every *.ohmenc file under `dir` (a pulled snapshot) to the same path without the
// suffix, each verified and written only when it authenticates; failures are collected.
DecryptTreeResult decrypt_tree(const std::filesystem::path& dir, const safety::Identity& id,
                               std::ostream* log);

}  // namespace ohm::cli
