// Resolving a model argument the way users type it: a local directory, a single .gguf or
// .safetensors file, or a Hub id `org/name[@revision]` found in the standard HF cache
// (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), where
// models--org--name/refs/<revision> holds the commit and snapshots/<commit>/ the files.
#pragma once

#include <optional>
#include <string>

namespace ohm {

enum class SourceKind { Directory, GgufFile, SafetensorsFile };

struct ModelSource {
  SourceKind kind = SourceKind::Directory;
  std::string path;      // the directory or file
  std::string repo_id;   // set when resolved from the HF cache
  std::string revision;  // as asked ("main" by default)
  std::string commit;    // the snapshot's commit hash

  // For directories: path/name if that file exists, else nullopt.
  std::optional<std::string> file(const std::string& name) const;
};

// The HF hub cache directory from the environment (not checked for existence).
std::string hf_hub_cache_dir();

// Whether `s` is a syntactically valid Hub repo id ("org/name" or "name"), without revision.
bool is_valid_repo_id(const std::string& s);

// Throws NotFoundError naming what was looked for and where, InvalidArgument for bad ids.
ModelSource resolve_model(const std::string& arg);

}  // namespace ohm
