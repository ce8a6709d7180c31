// The C++ Hub client: downloads a repo snapshot into the standard HF cache layout
// ({cache}/{models|datasets}--ns--name/{blobs/<etag>, snapshots/<commit>/..., refs/<rev>}), so
// transformers and huggingface_hub find the files (also offline). Resumable
// (blobs/<etag>.incomplete is continued with Range) and verified (sha256 for LFS files, git blob
// sha1 for regular files).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "ohm/hub/validate.h"

namespace ohm::hub {

struct PullOptions {
  std::string repo_id;  // ns/name
  RepoType type = RepoType::Model;
  std::string revision = "main";
  std::vector<std::string> include;  // fnmatch globs ('*' also matches '/'); empty: everything
  std::string endpoint;              // default: HF_ENDPOINT, else https://huggingface.co
  std::string token;                 // default: HF_TOKEN, else $HF_HOME/token
  std::string cache_dir;             // default: HF_HUB_CACHE, else HF_HOME/hub
  int parallel = 4;
  std::ostream* log = nullptr;  // one line per file
};

struct PullResult {
  std::string commit, snapshot_dir;
  size_t files = 0, downloaded = 0;
  uint64_t bytes = 0;
};

// Throws NotFoundError (repo, revision), IoError (network, disk), FormatError (hash mismatch).
PullResult pull(const PullOptions& opt);

std::string default_endpoint();
std::string default_token();

}  // namespace ohm::hub
