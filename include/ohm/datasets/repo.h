// Dataset repos as HF `datasets` lays them out: a local file, a local directory or a Hub
// dataset repo id (pulled into the HF cache through the Hub client), resolved to configs and
// splits of data files.
//
// A directory's configs come from its README.md YAML `configs:` (config_name, data_files as a
// pattern, a list of patterns or a list of {split, path}, default: true). Without one there is a
// single config, "default", whose splits come from the data files' names as datasets' default
// patterns do: a path component or a name part delimited by [-._ 0-9/] that is train/training,
// validation/valid/val/dev, test/testing/eval/evaluation; no such file: every data file is
// "train". Globs: '*' within a path component, '**' across them, '?' one character.
#pragma once

#include <string>
#include <vector>

namespace ohm::datasets {

struct SplitFiles {
  std::string name;                // "train"
  std::vector<std::string> files;  // absolute paths, sorted
};

struct ConfigFiles {
  std::string name = "default";
  bool is_default = false;
  std::vector<SplitFiles> splits;
};

struct DatasetLayout {
  std::string root;  // the directory (or the single file)
  std::vector<ConfigFiles> configs;
};

// A local directory or a single data file (one config, one split "train").
DatasetLayout resolve_local(const std::string& path);

// `path_or_id`: an existing local path, else a Hub dataset repo id (ns/name) pulled (revision,
// HF_ENDPOINT/HF_TOKEN/HF_HUB_OFFLINE as for `ohm pull`) into the HF cache, then resolved as a
// directory. Throws NotFoundError when neither.
DatasetLayout resolve(const std::string& path_or_id, const std::string& revision = "main",
                      bool progress = false);

// The config named `name` (empty: the one marked default, else "default", else the only or
// first one). NotFoundError naming the dataset and listing the configs there are.
const ConfigFiles& select_config(const DatasetLayout& d, const std::string& name);
// The split named `name`. NotFoundError naming the dataset, the config and the splits there are.
const SplitFiles& select_split(const DatasetLayout& d, const ConfigFiles& c,
                               const std::string& name);

// fnmatch-style glob of a '/'-separated relative path (see above).
bool glob_match(const std::string& pattern, const std::string& path);

}  // namespace ohm::datasets
