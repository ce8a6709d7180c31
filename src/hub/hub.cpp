#include "ohm/hub/hub.h"

#include <fnmatch.h>
#include <strings.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "ohm/core/error.h"
#include "ohm/hub/card.h"
#include "ohm/hub/hash.h"
#include "ohm/safety/signing.h"

namespace ohm::hub {

using json = nlohmann::json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

const char* kGitattributes =
    "*.7z filter=lfs diff=lfs merge=lfs -text\n"
    "*.arrow filter=lfs diff=lfs merge=lfs -text\n"
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.bz2 filter=lfs diff=lfs merge=lfs -text\n"
    "*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    "*.ftz filter=lfs diff=lfs merge=lfs -text\n"
    "*.gguf filter=lfs diff=lfs merge=lfs -text\n"
    "*.gz filter=lfs diff=lfs merge=lfs -text\n"
    "*.h5 filter=lfs diff=lfs merge=lfs -text\n"
    "*.joblib filter=lfs diff=lfs merge=lfs -text\n"
    "*.lfs.* filter=lfs diff=lfs merge=lfs -text\n"
    "*.mlmodel filter=lfs diff=lfs merge=lfs -text\n"
    "*.model filter=lfs diff=lfs merge=lfs -text\n"
    "*.msgpack filter=lfs diff=lfs merge=lfs -text\n"
    "*.npy filter=lfs diff=lfs merge=lfs -text\n"
    "*.npz filter=lfs diff=lfs merge=lfs -text\n"
    "*.onnx filter=lfs diff=lfs merge=lfs -text\n"
    "*.ot filter=lfs diff=lfs merge=lfs -text\n"
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    "*.pb filter=lfs diff=lfs merge=lfs -text\n"
    "*.pickle filter=lfs diff=lfs merge=lfs -text\n"
    "*.pkl filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
    "*.pth filter=lfs diff=lfs merge=lfs -text\n"
    "*.rar filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "saved_model/**/* filter=lfs diff=lfs merge=lfs -text\n"
    "*.tar.* filter=lfs diff=lfs merge=lfs -text\n"
    "*.tar filter=lfs diff=lfs merge=lfs -text\n"
    "*.tflite filter=lfs diff=lfs merge=lfs -text\n"
    "*.tgz filter=lfs diff=lfs merge=lfs -text\n"
    "*.wasm filter=lfs diff=lfs merge=lfs -text\n"
    "*.xz filter=lfs diff=lfs merge=lfs -text\n"
    "*.zip filter=lfs diff=lfs merge=lfs -text\n"
    "*.zst filter=lfs diff=lfs merge=lfs -text\n"
    "*tfevents* filter=lfs diff=lfs merge=lfs -text\n";

// Whether `path` matches an LFS rule of a .gitattributes text (git's basic matching: patterns
// without '/' match the basename, others the whole path).
bool lfs_tracked(const std::string& gitattributes, const std::string& path) {
  const std::string base =
      path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  size_t pos = 0;
  while (pos < gitattributes.size()) {
    size_t eol = gitattributes.find('\n', pos);
    std::string line =
        gitattributes.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos = eol == std::string::npos ? gitattributes.size() : eol + 1;
    if (line.find("filter=lfs") == std::string::npos) continue;
    const std::string pat = line.substr(0, line.find_first_of(" \t"));
    if (pat.empty() || pat[0] == '#') continue;
    if (pat.find('/') == std::string::npos) {
      if (::fnmatch(pat.c_str(), base.c_str(), 0) == 0) return true;
    } else if (::fnmatch(pat.c_str(), path.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

std::string make_commit_id(const std::string& parent, const std::vector<FileEntry>& files,
                           const std::string& author, int64_t date, const std::string& msg) {
  Hasher tree(Hasher::Algo::Sha1);
  for (const auto& f : files) {
    tree.update(f.path);
    tree.update("\0", 1);
    tree.update(f.oid);
  }
  const std::string body = "tree " + tree.hex() + "\nparent " + parent + "\nauthor " + author +
                           " " + std::to_string(date) + "\nnonce " + random_hex(8) + "\n\n" + msg;
  return git_blob_oid(body);
}

}  // namespace

std::string iso_date(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

void make_private_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(ErrorContext().file(dir), "cannot create directory: " + ec.message());
  // EPERM: a directory someone else owns (an operator's choice); it still works.
  if (::chmod(dir.c_str(), 0700) != 0 && errno != EPERM)
    throw IoError(ErrorContext().file(dir), std::string("chmod 0700: ") + std::strerror(errno));
}

Hub::Hub(const std::string& data_dir) {
  make_private_dir(data_dir);
  blobs_ = open_disk_blob_store(data_dir + "/blobs");
  meta_ = open_sqlite_metadata(data_dir + "/hub.sqlite");
}

Hub::Hub(std::unique_ptr<BlobStore> blobs, std::unique_ptr<MetadataStore> meta)
    : blobs_(std::move(blobs)), meta_(std::move(meta)) {}

RepoInfo Hub::create_repo(const Caller& c, RepoType t, const std::string& ns,
                          const std::string& name, bool is_private) {
  if (c.anonymous()) throw Unauthorized("You must be authenticated to create a repo");
  if (auto e = check_name(ns, true); !e.empty()) throw BadRequest("Invalid namespace: " + e);
  if (auto e = check_name(name, false); !e.empty()) throw BadRequest("Invalid repo name: " + e);
  if (!can_write_namespace(c, ns))
    throw Forbidden("You don't have the rights to create a repo under the namespace " + ns);
  std::lock_guard l(commit_mu_);
  if (meta_->get_repo(t, ns, name))
    throw Conflict("You already created this " + std::string(to_string(t)) + " repo");
  RepoInfo r;
  r.type = t;
  r.ns = ns;
  r.name = name;
  r.is_private = is_private;
  r = meta_->create_repo(r);
  const std::string ga(kGitattributes);
  FileEntry f{".gitattributes", blobs_->put(BlobKind::Git, ga), ga.size(), std::nullopt};
  CommitInfo ci;
  ci.title = "initial commit";
  ci.author = c.user;
  ci.date_ms = now_ms();
  ci.id = make_commit_id("", {f}, ci.author, ci.date_ms, ci.title);
  meta_->commit(r.id, "main", "", ci, {f});
  return *meta_->get_repo(t, ns, name);
}

void Hub::delete_repo(const Caller& c, RepoType t, const std::string& ns, const std::string& name) {
  RepoInfo r = repo_for_write(c, t, ns, name);
  std::lock_guard l(commit_mu_);
  meta_->delete_repo(r.id);
}

std::string Hub::resolve(const RepoInfo& r, const std::string& rev_in) {
  auto fail = [&] { return revision_not_found("Invalid rev id: " + rev_in); };
  if (!check_revision(rev_in).empty()) throw fail();
  std::string rev = rev_in;
  if (rev.starts_with("refs/heads/")) {
    if (auto b = meta_->get_ref(r.id, rev.substr(11), false)) return b->commit;
    throw fail();
  }
  if (rev.starts_with("refs/tags/")) {
    if (auto b = meta_->get_ref(r.id, rev.substr(10), true)) return b->commit;
    throw fail();
  }
  if (auto b = meta_->get_ref(r.id, rev, false)) return b->commit;
  if (auto b = meta_->get_ref(r.id, rev, true)) return b->commit;
  std::string lower = rev;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower.size() >= 7 && lower.size() <= 40 && is_hex(lower, lower.size())) {
    auto ids = meta_->commits_with_prefix(r.id, lower);
    if (ids.size() == 1) return ids[0];
  }
  throw fail();
}

std::vector<FileEntry> Hub::files(const RepoInfo& r, const std::string& commit) {
  return meta_->files(r.id, commit);
}

std::optional<FileEntry> Hub::file(const RepoInfo& r, const std::string& commit,
                                   const std::string& path) {
  for (auto& f : meta_->files(r.id, commit))
    if (f.path == path) return f;
  return std::nullopt;
}

std::string Hub::upload_mode(const RepoInfo& r, const std::string& commit, const std::string& path,
                             uint64_t size, std::string_view sample) {
  if (size >= kLfsThreshold) return "lfs";
  if (sample.find('\0') != std::string_view::npos) return "lfs";
  if (auto ga = file(r, commit, ".gitattributes"); ga && !ga->lfs && ga->size < (1u << 20)) {
    if (lfs_tracked(blobs_->read_all(BlobKind::Git, ga->oid, 1u << 20), path)) return "lfs";
  }
  return "regular";
}

bool Hub::lfs_visible(const Caller& c, const RepoInfo& r, const std::string& sha256) {
  if (!is_hex(sha256, 64)) return false;
  if (meta_->has_lfs_grant(r.id, sha256)) return true;
  for (int64_t id : meta_->repos_with_lfs(sha256)) {
    if (id == r.id) return true;
    auto other = meta_->get_repo_by_id(id);
    if (other && can_read(c, *other) && has_gate_access(c, *other)) return true;
  }
  return false;
}

static std::string lfs_missing(const std::string& path, const std::string& sha256) {
  return "lfsFile " + path + ": LFS object " + sha256 +
         " not found for this repository; upload it first";
}

CommitInfo Hub::commit(const Caller& c, const RepoInfo& r, const std::string& branch,
                       const std::string& summary, const std::string& description,
                       const std::string& parent_commit, const std::vector<CommitOp>& ops) {
  for (const auto& op : ops)
    if (op.kind == CommitOp::Kind::LfsFile && is_hex(op.sha256, 64) &&
        !lfs_visible(c, r, op.sha256))
      throw BadRequest(lfs_missing(op.path, op.sha256));
  return commit(c.user, r, branch, summary, description, parent_commit, ops);
}

CommitInfo Hub::commit(const std::string& author, const RepoInfo& r, const std::string& branch,
                       const std::string& summary, const std::string& description,
                       const std::string& parent_commit, const std::vector<CommitOp>& ops) {
  CommitInfo ci = commit_locked(author, r, branch, summary, description, parent_commit, ops);
  for (auto& h : commit_hooks_) {
    try {
      h(r, branch, ci);
    } catch (...) {  // a hook never fails an accepted commit
    }
  }
  return ci;
}

CommitInfo Hub::commit_locked(const std::string& author, const RepoInfo& r,
                              const std::string& branch, const std::string& summary,
                              const std::string& description, const std::string& parent_commit,
                              const std::vector<CommitOp>& ops) {
  std::lock_guard l(commit_mu_);
  auto ref = meta_->get_ref(r.id, branch, false);
  if (!ref) throw revision_not_found("Invalid rev id: " + branch + " (not a branch)");
  const std::string tip = ref->commit;
  if (!parent_commit.empty() && parent_commit != tip) {
    bool prefix_ok = parent_commit.size() >= 7 && tip.starts_with(parent_commit);
    if (!prefix_ok)
      throw PreconditionFailed("A commit has happened since. Please refresh and try again.");
  }
  std::map<std::string, FileEntry> tree;
  for (auto& f : meta_->files(r.id, tip)) tree.emplace(f.path, f);
  std::vector<std::string> new_lfs_paths;
  // Every path first, so that a bad one changes nothing (not even the blob store).
  for (const auto& op : ops) {
    if (op.kind != CommitOp::Kind::DeleteFolder) {
      if (auto e = check_file_path(op.path); !e.empty())
        throw BadRequest("Invalid path '" + op.path + "': " + e);
    } else {
      // "folder/" as the client sends it; "/", ".", "./", "//", "" and ".." are not folders.
      std::string_view p = op.path;
      if (!p.empty() && p.back() == '/') p.remove_suffix(1);
      if (auto e = check_file_path(p); !e.empty())
        throw BadRequest("Invalid folder '" + op.path + "': " + e);
    }
  }
  for (const auto& op : ops) {
    switch (op.kind) {
      case CommitOp::Kind::File: {
        FileEntry f{op.path, blobs_->put(BlobKind::Git, op.content), op.content.size(),
                    std::nullopt};
        tree[op.path] = f;
        break;
      }
      case CommitOp::Kind::LfsFile: {
        if (!is_hex(op.sha256, 64)) throw BadRequest("lfsFile " + op.path + ": invalid oid");
        auto sz = blobs_->size(BlobKind::Lfs, op.sha256);
        if (!sz) throw BadRequest(lfs_missing(op.path, op.sha256));
        if (op.size && *op.size != *sz)
          throw BadRequest("lfsFile " + op.path + ": size " + std::to_string(*op.size) +
                           " does not match the stored object (" + std::to_string(*sz) + ")");
        const std::string ptr = lfs_pointer(op.sha256, *sz);
        FileEntry f{op.path, blobs_->put(BlobKind::Git, ptr), *sz,
                    LfsInfo{op.sha256, *sz, ptr.size()}};
        tree[op.path] = f;
        new_lfs_paths.push_back(op.path);
        break;
      }
      case CommitOp::Kind::DeleteFile: {
        if (!tree.erase(op.path))
          throw entry_not_found("A file with this name doesn't exist: " + op.path, tip);
        break;
      }
      case CommitOp::Kind::DeleteFolder: {
        std::string p = op.path;
        if (!p.empty() && p.back() == '/') p.pop_back();  // validated above
        const std::string pre = p + "/";
        size_t n = 0;
        for (auto it = tree.lower_bound(pre); it != tree.end() && it->first.starts_with(pre);) {
          it = tree.erase(it);
          ++n;
        }
        if (n == 0) throw entry_not_found("A folder with this name doesn't exist: " + op.path, tip);
        break;
      }
    }
  }
  // Keep LFS files tracked in .gitattributes, as the Hub does.
  if (!new_lfs_paths.empty()) {
    std::string ga;
    auto it = tree.find(".gitattributes");
    if (it != tree.end() && !it->second.lfs)
      ga = blobs_->read_all(BlobKind::Git, it->second.oid, 4u << 20);
    bool changed = false;
    for (const auto& p : new_lfs_paths) {
      if (lfs_tracked(ga, p)) continue;
      if (!ga.empty() && ga.back() != '\n') ga += '\n';
      std::string esc;
      for (char ch : p) {
        if (ch == ' ')
          esc += "[[:space:]]";
        else
          esc += ch;
      }
      ga += esc + " filter=lfs diff=lfs merge=lfs -text\n";
      changed = true;
    }
    if (changed)
      tree[".gitattributes"] =
          FileEntry{".gitattributes", blobs_->put(BlobKind::Git, ga), ga.size(), std::nullopt};
  }
  std::vector<FileEntry> files;
  files.reserve(tree.size());
  for (auto& [p, f] : tree) files.push_back(f);
  if (signing_.require_signed && r.type == RepoType::Model) {
    const SignatureStatus st = check_signature(files);
    if (!st.verified)
      throw Forbidden("Commit refused: this hub requires signed models: " + st.reason);
  }
  CommitInfo ci;
  ci.parent = tip;
  ci.title = summary.empty() ? "Upload files" : summary;
  ci.message = description;
  ci.author = author;
  ci.date_ms = now_ms();
  ci.id = make_commit_id(tip, files, author, ci.date_ms, ci.title + "\n" + ci.message);
  try {
    meta_->commit(r.id, branch, tip, ci, files);
  } catch (const CommitConflict&) {
    throw PreconditionFailed("A commit has happened since. Please refresh and try again.");
  }
  if (branch == "main") {
    json card = json::object();
    auto readme = tree.find("README.md");
    if (readme != tree.end() && !readme->second.lfs && readme->second.size < (4u << 20))
      card = parse_model_card(blobs_->read_all(BlobKind::Git, readme->second.oid, 4u << 20)).data;
    std::vector<std::string> paths;
    for (auto& f : files) paths.push_back(f.path);
    auto tags = derive_tags(card, paths);
    auto str = [&](const char* k) {
      return card.contains(k) && card[k].is_string() ? card[k].get<std::string>() : std::string();
    };
    meta_->update_repo_card(r.id, card.dump(), json(tags).dump(), str("pipeline_tag"),
                            str("library_name"),
                            r.type == RepoType::Model ? eval_results_from_card(card).dump() : "[]");
  }
  return ci;
}

void Hub::create_branch(const RepoInfo& r, const std::string& name, const std::string& start) {
  if (auto e = check_ref_name(name); !e.empty()) throw BadRequest("Invalid branch name: " + e);
  const std::string commit = resolve(r, start.empty() ? "main" : start);
  std::lock_guard l(commit_mu_);
  if (meta_->get_ref(r.id, name, false))
    throw Conflict("Reference already exists: refs/heads/" + name);
  meta_->create_ref(r.id, RefInfo{name, false, commit, ""});
}

void Hub::ensure_convert_branch(const RepoInfo& r, const std::string& name,
                                const std::string& commit) {
  const std::string ref = "refs/convert/" + name;
  if (auto e = check_ref_name(name); !e.empty() || name.find('/') != std::string::npos)
    throw BadRequest("Invalid convert branch name: " + name);
  std::lock_guard l(commit_mu_);
  if (meta_->get_ref(r.id, ref, false)) return;
  meta_->create_ref(r.id, RefInfo{ref, false, commit, ""});
}

void Hub::delete_branch(const RepoInfo& r, const std::string& name) {
  if (name == "main") throw Forbidden("Cannot delete the default branch");
  std::lock_guard l(commit_mu_);
  if (!meta_->delete_ref(r.id, name, false)) throw revision_not_found("Invalid rev id: " + name);
}

void Hub::create_tag(const RepoInfo& r, const std::string& tag, const std::string& rev,
                     const std::string& message) {
  if (auto e = check_ref_name(tag); !e.empty()) throw BadRequest("Invalid tag name: " + e);
  const std::string commit = resolve(r, rev.empty() ? "main" : rev);
  std::lock_guard l(commit_mu_);
  if (meta_->get_ref(r.id, tag, true)) throw Conflict("Tag already exists: " + tag);
  meta_->create_ref(r.id, RefInfo{tag, true, commit, message});
}

void Hub::delete_tag(const RepoInfo& r, const std::string& tag) {
  std::lock_guard l(commit_mu_);
  if (!meta_->delete_ref(r.id, tag, true)) throw revision_not_found("Invalid rev id: " + tag);
}

std::vector<CommitInfo> Hub::history(const RepoInfo& r, const std::string& commit, size_t max) {
  std::vector<CommitInfo> out;
  std::string id = commit;
  while (!id.empty() && out.size() < max) {
    auto c = meta_->get_commit(r.id, id);
    if (!c) break;
    id = c->parent;
    out.push_back(std::move(*c));
  }
  return out;
}

std::optional<CommitInfo> Hub::last_change(const RepoInfo& r, const std::string& commit,
                                           const std::string& path) {
  auto digest = [&](const std::string& c) {
    std::string d;
    const std::string pre = path + "/";
    for (auto& f : meta_->files(r.id, c))
      if (f.path == path || f.path.starts_with(pre)) d += f.path + ":" + f.oid + "\n";
    return d;
  };
  std::string id = commit;
  std::string cur = digest(id);
  for (int i = 0; i < 1000; ++i) {
    auto c = meta_->get_commit(r.id, id);
    if (!c) return std::nullopt;
    if (c->parent.empty()) return c;
    std::string prev = digest(c->parent);
    if (prev != cur) return c;
    id = c->parent;
  }
  return meta_->get_commit(r.id, id);
}

json Hub::card(const RepoInfo& r, const std::string& commit) {
  auto f = file(r, commit, "README.md");
  if (!f || f->lfs || f->size >= (4u << 20)) return json::object();
  return parse_model_card(blobs_->read_all(BlobKind::Git, f->oid, 4u << 20)).data;
}

bool Hub::counts_as_download(RepoType t, const std::string& path) {
  if (t != RepoType::Model) return false;
  return path == "config.json" || path == "model_index.json" || path == "adapter_config.json" ||
         path == "params.json" || path == "config.yaml";
}

std::vector<TrustedKey> load_trusted_keys(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw InvalidArgument("--trusted-keys " + dir + ": not a directory");
  std::vector<TrustedKey> keys;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".pub" && ext != ".pem")) continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::string pem((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    TrustedKey k;
    k.name = e.path().stem().string();
    try {
      k.fingerprint = safety::key_fingerprint(pem);
    } catch (const std::exception& ex) {
      throw InvalidArgument("--trusted-keys: " + e.path().string() + ": " + ex.what());
    }
    if (pem.find("PRIVATE KEY") != std::string::npos)
      throw InvalidArgument("--trusted-keys: " + e.path().string() +
                            " is a private key; give the hub public keys only");
    k.pem = std::move(pem);
    keys.push_back(std::move(k));
  }
  std::sort(keys.begin(), keys.end(),
            [](const TrustedKey& a, const TrustedKey& b) { return a.name < b.name; });
  return keys;
}

// The manifest of a commit's files without reading LFS objects (their sha256 is the LFS oid);
// regular files are hashed from the git blob store.
SignatureStatus Hub::check_signature(const std::vector<FileEntry>& files) {
  SignatureStatus st;
  const FileEntry* sig = nullptr;
  for (const auto& f : files)
    if (f.path == "model.sig") sig = &f;
  if (!sig) {
    st.reason = "no model.sig in the repo (sign the model with `ohm sign` or model_signing)";
    return st;
  }
  st.is_signed = true;
  if (sig->lfs || sig->size > (16u << 20)) {
    st.reason = "model.sig is not a small regular file";
    return st;
  }
  const std::string bundle = blobs_->read_all(BlobKind::Git, sig->oid, 16u << 20);
  // The bundle's key hint picks the trusted key; without a hint every key is tried.
  std::string hint;
  {
    json b = json::parse(bundle, nullptr, false);
    if (b.is_object() && b.contains("verificationMaterial") &&
        b["verificationMaterial"].is_object() && b["verificationMaterial"].contains("publicKey") &&
        b["verificationMaterial"]["publicKey"].is_object())
      hint = b["verificationMaterial"]["publicKey"].value("hint", "");
  }
  if (signing_.trusted.empty()) {
    st.reason = "this hub has no trusted keys (ohm hub serve --trusted-keys DIR)";
    st.key_fingerprint = hint;
    return st;
  }
  std::optional<safety::SignedManifest> sm;
  std::string last_error;
  for (const auto& k : signing_.trusted) {
    if (!hint.empty() && k.fingerprint != hint) continue;
    try {
      sm = safety::verify_signature(bundle, k.pem, "model.sig");
      st.key_name = k.name;
      break;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
  }
  if (!sm) {
    st.key_fingerprint = hint;
    st.reason = last_error.empty()
                    ? "model.sig is signed by key " + hint + ", which this hub does not trust"
                    : last_error;
    return st;
  }
  st.key_fingerprint = sm->key_fingerprint;
  std::vector<std::vector<std::string>> ignore;
  auto parts = [](const std::string& p) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= p.size()) {
      const size_t j = std::min(p.find('/', i), p.size());
      if (j > i) out.push_back(p.substr(i, j - i));
      i = j + 1;
    }
    return out;
  };
  for (const auto& p : sm->manifest.ignore_paths) ignore.push_back(parts(p));
  ignore.push_back({"model.sig"});
  safety::Manifest actual;
  for (const auto& f : files) {
    const auto pp = parts(f.path);
    bool skip = false;
    for (const auto& ig : ignore)
      if (!ig.empty() && ig.size() <= pp.size() && std::equal(ig.begin(), ig.end(), pp.begin()))
        skip = true;
    if (skip) continue;
    if (!f.lfs && f.size > 2 * kLfsThreshold) {
      st.reason = "'" + f.path + "' is too large a regular file to check (upload it through LFS)";
      return st;
    }
    std::string digest =
        f.lfs ? f.lfs->sha256
              : sha256_hex(blobs_->read_all(BlobKind::Git, f.oid, kLfsThreshold * 2));
    actual.files.push_back({f.path, std::move(digest)});
  }
  safety::canonical_sort(actual.files);
  try {
    safety::compare_manifests(sm->manifest, actual, "the commit");
  } catch (const std::exception& e) {
    st.reason = e.what();
    return st;
  }
  st.verified = true;
  return st;
}

SignatureStatus Hub::signature_status(const RepoInfo& r, const std::string& commit) {
  const std::string key = std::to_string(r.id) + "/" + commit;
  {
    std::lock_guard l(sig_mu_);
    if (auto it = sig_cache_.find(key); it != sig_cache_.end()) return it->second;
  }
  SignatureStatus st = check_signature(meta_->files(r.id, commit));
  std::lock_guard l(sig_mu_);
  if (sig_cache_.size() > 10000) sig_cache_.clear();
  sig_cache_[key] = st;
  return st;
}

}  // namespace ohm::hub
