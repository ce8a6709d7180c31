// The C++ Hub client (`ohm pull`, `ohm push`, `ohm login`).
//
// pull: downloads a repo snapshot into the standard HF cache layout
// ({cache}/{models|datasets}--ns--name/{blobs/<etag>, snapshots/<commit>/..., refs/<rev>}), so
// transformers and huggingface_hub find the files (also offline). Parallel, resumable
// (blobs/<etag>.incomplete is continued with Range) and verified (sha256 for LFS files, git blob
// sha1 for regular files). HF_HUB_OFFLINE=1 resolves from the cache without any request.
//
// push: huggingface_hub's upload_folder over the non-Xet protocol: create the repo if missing,
// preupload (regular vs LFS, remote oids), LFS batch + PUT + verify, one NDJSON commit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/hub/validate.h"

namespace ohm::hub {

// HTTP 401 from the Hub: the token is missing or invalid (`ohm` prints it as an authentication
// error). An InvalidArgument, the token being the bad input.
class AuthError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

struct PullOptions {
  std::string repo_id;  // ns/name
  RepoType type = RepoType::Model;
  std::string revision = "main";
  std::vector<std::string> include;  // fnmatch globs ('*' also matches '/'); empty: everything
  std::string endpoint;              // default: HF_ENDPOINT, else https://huggingface.co
  std::string token;                 // default: HF_TOKEN, else the token file (token_path())
  std::string cache_dir;             // default: HF_HUB_CACHE, else HF_HOME/hub
  int parallel = 8;
  bool offline = false;         // also forced by HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE
  bool progress = false;        // progress bar on stderr
  std::ostream* log = nullptr;  // one line per file
};

struct PullResult {
  std::string commit, snapshot_dir;
  size_t files = 0, downloaded = 0;
  uint64_t bytes = 0;
};

// Throws NotFoundError (repo, revision, offline cache miss), AuthError (HTTP 401), IoError
// (network: the message says why, e.g. "cannot connect to http://h:1 (Connection refused)";
// disk), FormatError (hash mismatch).
PullResult pull(const PullOptions& opt);

struct PushOptions {
  std::string folder;   // local directory
  std::string repo_id;  // ns/name
  RepoType type = RepoType::Model;
  std::string revision = "main";  // branch; created from main when missing
  std::string message;            // default "Upload folder using ohm"
  std::string endpoint, token;    // defaults as for pull
  std::string parent_commit;      // when set, the commit is refused (412) if the branch moved
  bool is_private = false;        // only when the repo is created
  std::vector<std::string>
      delete_globs;  // remote files matching these and not uploaded are deleted
  int parallel = 4;
  bool progress = false;
  std::ostream* log = nullptr;
};

struct PushResult {
  std::string commit, commit_url;  // commit is the branch tip when nothing changed
  bool committed = false;
  size_t files = 0, regular = 0, lfs = 0, unchanged = 0, deleted = 0;
  uint64_t lfs_bytes_uploaded = 0;
};

// Symlinks in `folder` are followed (files and folders), so an HF cache snapshot uploads as
// its files. Throws as pull does.
PushResult push(const PushOptions& opt);

// The files `push` uploads from `folder`, as huggingface_hub's upload_folder picks them: the
// regular files under it, symlinks followed (each file keeps its path under the folder, never
// its target's), without .git/ and .cache/huggingface/; sorted by path. InvalidArgument for
// folders nested more than 64 deep (a symlink loop).
struct FolderFile {
  std::filesystem::path abs;
  std::string rel;  // '/'-separated path under the folder
};
std::vector<FolderFile> upload_folder_files(const std::string& folder);

struct WhoAmI {
  std::string name, role;  // role: the token's read/write
  std::vector<std::string> orgs;
};
// GET /api/whoami-v2. Throws AuthError on 401 (invalid token).
WhoAmI whoami(const std::string& endpoint, const std::string& token);

std::string default_endpoint();  // HF_ENDPOINT without trailing '/', else https://huggingface.co
std::string hf_home();           // HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/...
std::string token_path();        // HF_TOKEN_PATH, else hf_home()/token
std::string default_token();     // HF_TOKEN, HUGGING_FACE_HUB_TOKEN, else the token file
bool offline_mode();             // HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE in 1/ON/YES/TRUE
// Writes token to token_path() (mode 0600, atomically).
void save_token(const std::string& token);
// Removes the token file; false when there was none.
bool delete_token();

}  // namespace ohm::hub
