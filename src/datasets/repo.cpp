// Local directories and Hub dataset repos resolved to configs, splits and data files.
#include "ohm/datasets/repo.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "ohm/core/error.h"
#include "ohm/datasets/dataset.h"
#include "ohm/hub/card.h"
#include "ohm/hub/client.h"

namespace ohm::datasets {

namespace fs = std::filesystem;

namespace {

bool match_from(const char* p, const char* s) {
  for (; *p; ++p) {
    if (p[0] == '*' && p[1] == '*') {
      const char* rest = p + 2;
      if (*rest == '/') ++rest;  // "**/" also matches nothing
      for (const char* t = s;; ++t) {
        if (match_from(rest, t)) return true;
        if (!*t) return false;
      }
    }
    if (*p == '*') {
      for (const char* t = s;; ++t) {
        if (match_from(p + 1, t)) return true;
        if (!*t || *t == '/') return false;
      }
    }
    if (!*s) return false;
    if (*p == '?') {
      if (*s == '/') return false;
    } else if (*p != *s) {
      return false;
    }
    ++s;
  }
  return !*s;
}

// Data files under root: regular files with a known extension, not hidden, not README.md.
std::vector<std::string> data_files(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::follow_directory_symlink, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto name = it->path().filename().string();
    if (!name.empty() && (name[0] == '.' || name[0] == '_')) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    FileFormat f;
    if (it->is_regular_file(ec) && format_of(name, f)) {
      out.push_back(it->path().lexically_relative(root).generic_string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<std::pair<std::string, std::vector<std::string>>>& split_keywords() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> k = {
      {"train", {"train", "training"}},
      {"validation", {"validation", "valid", "val", "dev"}},
      {"test", {"test", "testing", "eval", "evaluation"}},
  };
  return k;
}

// The split a relative path names by datasets' default patterns, or "".
std::string split_of(const std::string& rel) {
  std::string lower = rel;
  // the extension is not a name part
  if (auto dot = lower.rfind('.');
      dot != std::string::npos && lower.find('/', dot) == std::string::npos)
    lower.erase(dot);
  std::vector<std::string> parts;
  std::string cur;
  for (char c : lower) {
    if (c == '-' || c == '.' || c == '_' || c == ' ' || c == '/' || (c >= '0' && c <= '9')) {
      if (!cur.empty()) parts.push_back(std::exchange(cur, {}));
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  for (const auto& [split, words] : split_keywords())
    for (const auto& p : parts)
      if (std::find(words.begin(), words.end(), p) != words.end()) return split;
  return {};
}

std::vector<std::string> patterns_of(const nlohmann::json& v, const std::string& where) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const auto& p : v) {
      if (!p.is_string())
        throw FormatError(ErrorContext().file("README.md").key(where),
                          "path must be a string or a list of strings");
      out.push_back(p.get<std::string>());
    }
  } else {
    throw FormatError(ErrorContext().file("README.md").key(where),
                      "path must be a string or a list of strings");
  }
  return out;
}

std::vector<std::string> expand(const fs::path& root, const std::vector<std::string>& all,
                                const std::vector<std::string>& patterns,
                                const std::string& where) {
  std::vector<std::string> out;
  for (auto p : patterns) {
    if (p.rfind("./", 0) == 0) p.erase(0, 2);
    bool any = false;
    for (const auto& f : all)
      if (glob_match(p, f)) {
        out.push_back((root / f).string());
        any = true;
      }
    if (!any) {
      throw NotFoundError(ErrorContext().file((root / "README.md").string()).key(where),
                          "data_files pattern '" + p + "' matches no data file");
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<ConfigFiles> configs_from_readme(const fs::path& root,
                                             const std::vector<std::string>& all) {
  std::ifstream f(root / "README.md");
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  const auto card = hub::parse_model_card(ss.str());
  const std::string readme = (root / "README.md").string();
  if (!card.error.empty()) throw FormatError(ErrorContext().file(readme), "YAML: " + card.error);
  if (!card.data.contains("configs")) return {};
  const auto& cfgs = card.data["configs"];
  if (!cfgs.is_array())
    throw FormatError(ErrorContext().file(readme).key("configs"), "must be a list");
  std::vector<ConfigFiles> out;
  for (const auto& c : cfgs) {
    ConfigFiles cf;
    if (!c.is_object() || !c.contains("config_name") || !c["config_name"].is_string()) {
      throw FormatError(ErrorContext().file(readme).key("configs"),
                        "each config needs a config_name");
    }
    cf.name = c["config_name"].get<std::string>();
    cf.is_default = c.value("default", false);
    const std::string where = "configs." + cf.name + ".data_files";
    if (!c.contains("data_files")) {
      // no data_files: the default patterns over the whole repo
      std::map<std::string, std::vector<std::string>> by;
      for (const auto& fl : all)
        by[split_of(fl).empty() ? "train" : split_of(fl)].push_back((root / fl).string());
      for (auto& [s, fl] : by) cf.splits.push_back({s, fl});
    } else {
      const auto& df = c["data_files"];
      if (df.is_string() || (df.is_array() && !df.empty() && df[0].is_string())) {
        cf.splits.push_back({"train", expand(root, all, patterns_of(df, where), where)});
      } else if (df.is_array()) {
        for (const auto& s : df) {
          if (!s.is_object() || !s.contains("split") || !s.contains("path")) {
            throw FormatError(ErrorContext().file(readme).key(where),
                              "each entry needs split and path");
          }
          const std::string split = s["split"].get<std::string>();
          cf.splits.push_back({split, expand(root, all, patterns_of(s["path"], where + "." + split),
                                             where + "." + split)});
        }
      } else if (df.is_object()) {
        for (const auto& [split, p] : df.items())
          cf.splits.push_back(
              {split, expand(root, all, patterns_of(p, where + "." + split), where + "." + split)});
      } else {
        throw FormatError(ErrorContext().file(readme).key(where),
                          "must be a pattern, a list or a mapping");
      }
    }
    out.push_back(std::move(cf));
  }
  return out;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& path) {
  return match_from(pattern.c_str(), path.c_str());
}

DatasetLayout resolve_local(const std::string& path) {
  std::error_code ec;
  DatasetLayout d;
  d.root = path;
  if (fs::is_regular_file(path, ec)) {
    FileFormat f;
    if (!format_of(path, f)) {
      throw UnsupportedError(ErrorContext().file(path),
                             "unknown data file type (expected .parquet, .arrow, .jsonl, .json, "
                             ".csv, .tsv or .txt)");
    }
    ConfigFiles c;
    c.is_default = true;
    c.splits.push_back({"train", {path}});
    d.configs.push_back(c);
    return d;
  }
  if (!fs::is_directory(path, ec))
    throw NotFoundError(ErrorContext().file(path), "no such file or directory");
  const auto all = data_files(path);
  d.configs = configs_from_readme(path, all);
  if (!d.configs.empty()) return d;
  if (all.empty())
    throw NotFoundError(ErrorContext().file(path),
                        "no data files (.parquet, .arrow, .jsonl, .json, .csv, .tsv, .txt)");
  ConfigFiles c;
  c.is_default = true;
  for (const auto& [split, words] : split_keywords()) {
    SplitFiles s{split, {}};
    for (const auto& f : all)
      if (split_of(f) == split) s.files.push_back((fs::path(path) / f).string());
    if (!s.files.empty()) c.splits.push_back(std::move(s));
  }
  if (c.splits.empty()) {
    SplitFiles s{"train", {}};
    for (const auto& f : all) s.files.push_back((fs::path(path) / f).string());
    c.splits.push_back(std::move(s));
  }
  d.configs.push_back(std::move(c));
  return d;
}

DatasetLayout resolve(const std::string& path_or_id, const std::string& revision, bool progress) {
  std::error_code ec;
  if (fs::exists(path_or_id, ec)) return resolve_local(path_or_id);
  static const std::regex id(R"(^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$)");
  if (!std::regex_match(path_or_id, id)) {
    throw NotFoundError(ErrorContext().file(path_or_id),
                        "no such file or directory (nor a Hub dataset id ns/name)");
  }
  hub::PullOptions po;
  po.repo_id = path_or_id;
  po.type = hub::RepoType::Dataset;
  po.revision = revision;
  po.progress = progress;
  auto r = hub::pull(po);
  auto d = resolve_local(r.snapshot_dir);
  d.root = path_or_id;
  return d;
}

const ConfigFiles& select_config(const DatasetLayout& d, const std::string& name) {
  if (name.empty()) {
    for (const auto& c : d.configs)
      if (c.is_default) return c;
    for (const auto& c : d.configs)
      if (c.name == "default") return c;
    return d.configs.at(0);
  }
  std::string names;
  for (const auto& c : d.configs) {
    if (c.name == name) return c;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  throw NotFoundError(ErrorContext().file(d.root).key("config"),
                      "no config '" + name + "' (configs: " + names + ")");
}

const SplitFiles& select_split(const DatasetLayout& d, const ConfigFiles& c,
                               const std::string& name) {
  std::string names;
  for (const auto& s : c.splits) {
    if (s.name == name) return s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  throw NotFoundError(ErrorContext().file(d.root).key("split"),
                      "no split '" + name + "' in config '" + c.name + "' (splits: " + names + ")");
}

}  // namespace ohm::datasets
