#include "ohm/formats/model_source.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "ohm/core/error.h"

namespace ohm {

namespace fs = std::filesystem;

std::optional<std::string> ModelSource::file(const std::string& name) const {
  if (kind != SourceKind::Directory) return std::nullopt;
  fs::path p = fs::path(path) / name;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p.string();
  return std::nullopt;
}

std::string hf_hub_cache_dir() {
  if (const char* c = std::getenv("HF_HUB_CACHE"); c && *c) return c;
  if (const char* h = std::getenv("HF_HOME"); h && *h) return (fs::path(h) / "hub").string();
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return (fs::path(x) / "huggingface" / "hub").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home ? home : "/") / ".cache" / "huggingface" / "hub").string();
}

bool is_valid_repo_id(const std::string& s) {
  // huggingface_hub's validate_repo_id: [namespace/]name, word chars, '-', '.', no '--' or
  // '..', not starting/ending with '-' or '.', name at most 96 chars.
  static const std::regex re(
      R"(^([A-Za-z0-9_][A-Za-z0-9_.\-]*/)?[A-Za-z0-9_][A-Za-z0-9_.\-]{0,95}$)");
  if (!std::regex_match(s, re)) return false;
  if (s.find("--") != std::string::npos || s.find("..") != std::string::npos) return false;
  const size_t slash = s.find('/');
  for (const std::string& part :
       {s.substr(0, slash), slash == std::string::npos ? std::string() : s.substr(slash + 1)})
    if (!part.empty() && (part.back() == '-' || part.back() == '.')) return false;
  return true;
}

namespace {

bool is_commit_hash(const std::string& s) {
  static const std::regex re("^[0-9a-f]{40}$");
  return std::regex_match(s, re);
}

ModelSource from_path(const std::string& arg) {
  ModelSource src;
  src.path = arg;
  std::error_code ec;
  if (fs::is_directory(arg, ec)) {
    src.kind = SourceKind::Directory;
  } else {
    const std::string ext = fs::path(arg).extension().string();
    if (ext == ".gguf")
      src.kind = SourceKind::GgufFile;
    else if (ext == ".safetensors")
      src.kind = SourceKind::SafetensorsFile;
    else
      throw InvalidArgument(ErrorContext().file(arg),
                            "expected a model directory, a .gguf or a .safetensors file");
  }
  return src;
}

}  // namespace

ModelSource resolve_model(const std::string& arg) {
  if (arg.empty()) throw InvalidArgument("empty model argument");
  std::error_code ec;
  if (fs::exists(arg, ec)) return from_path(arg);

  std::string id = arg, revision = "main";
  if (auto at = arg.find('@'); at != std::string::npos) {
    id = arg.substr(0, at);
    revision = arg.substr(at + 1);
  }
  const bool looks_like_path = arg.rfind("./", 0) == 0 || arg.rfind("../", 0) == 0 ||
                               arg.rfind('/', 0) == 0 || arg.find('\\') != std::string::npos;
  if (looks_like_path || !is_valid_repo_id(id))
    throw NotFoundError(ErrorContext().file(arg), "no such file or directory, and not a Hub id");
  if (revision.empty() || revision.find("..") != std::string::npos || revision[0] == '/' ||
      revision.find('\0') != std::string::npos)
    throw InvalidArgument(ErrorContext().note("revision", revision), "invalid revision");

  std::string folder = "models--" + id;
  for (size_t p; (p = folder.find('/')) != std::string::npos;) folder.replace(p, 1, "--");
  const fs::path cache = hf_hub_cache_dir();
  const fs::path repo = cache / folder;
  if (!fs::is_directory(repo, ec))
    throw NotFoundError(
        ErrorContext().note("repo", id).note("cache", cache.string()),
        "model is not in the Hugging Face cache (download it with `ohm pull " + id + "`)");
  ModelSource src;
  src.kind = SourceKind::Directory;
  src.repo_id = id;
  src.revision = revision;
  if (is_commit_hash(revision)) {
    src.commit = revision;
  } else {
    const fs::path ref = repo / "refs" / revision;
    std::ifstream in(ref);
    if (!in || !(in >> src.commit) || !is_commit_hash(src.commit))
      throw NotFoundError(ErrorContext().file(ref.string()).note("repo", id),
                          "revision '" + revision + "' is not in the cache");
  }
  const fs::path snap = repo / "snapshots" / src.commit;
  if (!fs::is_directory(snap, ec))
    throw NotFoundError(ErrorContext().file(snap.string()).note("repo", id),
                        "snapshot for commit " + src.commit + " is missing from the cache");
  src.path = snap.string();
  return src;
}

}  // namespace ohm
