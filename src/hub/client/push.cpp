// ohm push and whoami: a local folder committed to a Hub repo (LFS uploads for large files).
#include "ohm/hub/client.h"

#include "transport.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <thread>

#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"
#include "ohm/hub/hash.h"

namespace ohm::hub {

using namespace client_detail;

// ------------------------------------------------------------------ push

WhoAmI whoami(const std::string& endpoint, const std::string& token) {
  const Endpoint ep = parse_endpoint(endpoint.empty() ? default_endpoint() : endpoint);
  if (token.empty())
    throw NotFoundError("not logged in: no token (set HF_TOKEN or run `ohm login`)");
  auto c = make_client(ep.origin, token);
  json j = get_json(*c, ep.prefix + "/api/whoami-v2", nullptr);
  WhoAmI w;
  w.name = j.value("name", "");
  if (w.name.empty()) throw FormatError("whoami-v2: no 'name' in the answer");
  if (j.contains("orgs") && j["orgs"].is_array())
    for (auto& o : j["orgs"])
      if (o.is_object() && o.contains("name") && o["name"].is_string()) w.orgs.push_back(o["name"]);
  if (j.contains("auth") && j["auth"].is_object() && j["auth"].contains("accessToken") &&
      j["auth"]["accessToken"].is_object())
    w.role = j["auth"]["accessToken"].value("role", "");
  return w;
}

namespace {

std::string base64(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 |
                       uint32_t(uint8_t(in[i + 2]));
    out += a[v >> 18], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += a[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += a[v >> 18], out += a[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
    out += a[v >> 18], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += '=';
  }
  return out;
}

struct LocalFile {
  std::string path;  // in the repo
  fs::path abs;
  uint64_t size = 0;
  std::string sample;  // first <= 512 bytes
  bool lfs = false;
  std::string remote_oid, oid;  // oid: git sha1 (regular) or sha256 (lfs)
  std::string content;          // regular files only
};

std::string read_file(const fs::path& p, size_t max = SIZE_MAX) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw IoError(ErrorContext().file(p.string()), "cannot open");
  std::string s;
  const uint64_t size = fs::file_size(p);
  s.resize(static_cast<size_t>(std::min<uint64_t>(size, max)));
  f.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(f.gcount()));
  return s;
}

// Splits an absolute URL into origin and path (+ query).
std::pair<std::string, std::string> split_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) throw FormatError("not an absolute URL: " + url);
  const size_t slash = url.find('/', scheme + 3);
  if (slash == std::string::npos) return {url, "/"};
  return {url.substr(0, slash), url.substr(slash)};
}

}  // namespace

std::vector<FolderFile> upload_folder_files(const std::string& folder) {
  std::vector<FolderFile> out;
  const fs::path root = fs::canonical(folder);
  for (auto it =
           fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it.depth() > 64)
      throw InvalidArgument(ErrorContext().file(it->path().string()),
                            "folders nested more than 64 deep (a symlink loop?)");
    std::string rel = it->path().lexically_relative(root).generic_string();
    if (rel == ".git" || rel.starts_with(".git/") || rel == ".cache/huggingface" ||
        rel.starts_with(".cache/huggingface/")) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) out.push_back({it->path(), std::move(rel)});
  }
  std::sort(out.begin(), out.end(),
            [](const FolderFile& a, const FolderFile& b) { return a.rel < b.rel; });
  return out;
}

PushResult push(const PushOptions& opt) {
  check_repo_id(opt.repo_id);
  if (auto e = check_ref_name(opt.revision); !e.empty() && !is_hex(opt.revision, 40))
    throw InvalidArgument("invalid branch '" + opt.revision + "': " + e);
  if (!fs::is_directory(opt.folder)) throw NotFoundError("not a directory: " + opt.folder);
  const Endpoint ep = parse_endpoint(opt.endpoint.empty() ? default_endpoint() : opt.endpoint);
  const std::string token = opt.token.empty() ? default_token() : opt.token;
  if (token.empty())
    throw InvalidArgument("ohm push needs a write token (--token, HF_TOKEN or `ohm login`)");
  auto cli = make_client(ep.origin, token, 600);
  const std::string ns = opt.repo_id.substr(0, opt.repo_id.find('/'));
  const std::string name = opt.repo_id.substr(opt.repo_id.find('/') + 1);
  const std::string api = ep.prefix + "/api/" + plural(opt.type) + "/" + opt.repo_id;
  const std::string rev = percent_encode(opt.revision, false);

  // 1. local files (as upload_folder: no .git/ nor .cache/huggingface/)
  std::vector<LocalFile> local;
  for (const FolderFile& ff : upload_folder_files(opt.folder)) {
    const std::string& rel = ff.rel;
    if (auto e = check_file_path(rel); !e.empty())
      throw InvalidArgument("cannot upload '" + rel + "': " + e);
    LocalFile f;
    f.path = rel;
    f.abs = ff.abs;
    f.size = fs::file_size(ff.abs);
    f.sample = read_file(f.abs, 512);
    local.push_back(std::move(f));
  }
  PushResult res;
  res.files = local.size();

  // 2. the repo and the branch
  {
    json body = {{"name", name},
                 {"organization", ns},
                 {"type", to_string(opt.type)},
                 {"private", opt.is_private}};
    auto r = cli->Post(ep.prefix + "/api/repos/create", body.dump(), "application/json");
    if (!r || (r->status != 200 && r->status != 409))
      http_fail(*cli, "create repo " + opt.repo_id, r);
    if (opt.log && r->status == 200) *opt.log << "created " << opt.repo_id << "\n";
  }
  if (opt.revision != "main") {
    auto r = cli->Get(api + "/revision/" + rev);
    if (r && r->status == 404 && r->get_header_value("X-Error-Code") == "RevisionNotFound") {
      auto b = cli->Post(api + "/branch/" + rev, "{}", "application/json");
      if (!b || (b->status != 200 && b->status != 409))
        http_fail(*cli, "create branch " + opt.revision, b);
    } else if (!r || r->status != 200) {
      http_fail(*cli, "GET " + api + "/revision/" + rev, r);
    }
  }

  // 3. preupload: regular or LFS, and the remote oids
  std::string tip;
  for (size_t from = 0; from < local.size(); from += 256) {
    json files = json::array();
    const size_t to = std::min(local.size(), from + 256);
    for (size_t i = from; i < to; ++i)
      files.push_back(
          {{"path", local[i].path}, {"sample", base64(local[i].sample)}, {"size", local[i].size}});
    json j = post_json(*cli, api + "/preupload/" + rev, {{"files", files}});
    if (!j.contains("files") || !j["files"].is_array())
      throw FormatError("preupload: 'files' is not a list");
    std::map<std::string, json> by_path;
    for (auto& e : j["files"])
      if (e.is_object() && e.contains("path") && e["path"].is_string()) by_path[e["path"]] = e;
    for (size_t i = from; i < to; ++i) {
      auto it = by_path.find(local[i].path);
      if (it == by_path.end()) throw FormatError("preupload: no answer for " + local[i].path);
      local[i].lfs = it->second.value("uploadMode", "regular") == "lfs" && local[i].size > 0;
      if (it->second.contains("oid") && it->second["oid"].is_string())
        local[i].remote_oid = it->second["oid"];
    }
    if (j.contains("commitOid") && j["commitOid"].is_string()) tip = j["commitOid"];
  }

  // 4. local oids (sha256 streamed for LFS files, git blob sha1 for regular ones)
  parallel_for(local.size(), opt.parallel, [&](size_t i) {
    LocalFile& f = local[i];
    if (f.lfs) {
      Hasher h(Hasher::Algo::Sha256);
      hash_file(h, f.abs);
      f.oid = h.hex();
    } else {
      f.content = read_file(f.abs);
      if (f.content.size() != f.size)
        throw IoError(ErrorContext().file(f.abs.string()), "file changed while reading");
      f.oid = git_blob_oid(f.content);
    }
  });
  std::vector<LocalFile*> changed;
  for (auto& f : local) {
    if (!f.remote_oid.empty() && f.remote_oid == f.oid) {
      ++res.unchanged;
      f.content.clear();
      continue;
    }
    changed.push_back(&f);
    (f.lfs ? res.lfs : res.regular)++;
  }

  // 5. deletions (only with --delete)
  std::vector<std::string> deletions;
  if (!opt.delete_globs.empty()) {
    std::set<std::string> keep;
    for (auto& f : local) keep.insert(f.path);
    std::string at = tip;
    if (at.empty())
      at = get_json(*cli, api + "/revision/" + rev, nullptr).at("sha").get<std::string>();
    for (auto& f : list_tree(*cli, ep, api, at))
      if (f.path != ".gitattributes" && !keep.count(f.path) && glob_match(opt.delete_globs, f.path))
        deletions.push_back(f.path);
  }
  res.deleted = deletions.size();
  if (changed.empty() && deletions.empty()) {
    res.commit =
        tip.empty() ? get_json(*cli, api + "/revision/" + rev, nullptr).at("sha").get<std::string>()
                    : tip;
    return res;
  }

  // 6. LFS: batch, PUT the missing objects (streamed), verify
  std::vector<LocalFile*> lfs;
  for (auto* f : changed)
    if (f->lfs) lfs.push_back(f);
  struct Upload {
    LocalFile* f;
    std::string href, verify;
  };
  std::vector<Upload> uploads;
  const std::string batch_path =
      ep.prefix + "/" + url_prefix(opt.type) + opt.repo_id + ".git/info/lfs/objects/batch";
  for (size_t from = 0; from < lfs.size(); from += 100) {
    json objs = json::array();
    std::map<std::string, LocalFile*> by_oid;
    for (size_t i = from; i < std::min(lfs.size(), from + 100); ++i) {
      if (by_oid.emplace(lfs[i]->oid, lfs[i]).second)
        objs.push_back({{"oid", lfs[i]->oid}, {"size", lfs[i]->size}});
    }
    json body = {{"operation", "upload"},
                 {"transfers", {"basic"}},
                 {"hash_algo", "sha256"},
                 {"objects", objs},
                 {"ref", {{"name", opt.revision}}}};
    httplib::Headers h = {{"Accept", "application/vnd.git-lfs+json"}};
    auto r = cli->Post(batch_path, h, body.dump(), "application/vnd.git-lfs+json");
    if (!r || r->status != 200) http_fail(*cli, "POST " + batch_path, r);
    json j = parse_body("LFS batch", r->body);
    if (!j.contains("objects") || !j["objects"].is_array())
      throw FormatError("LFS batch: 'objects' is not a list");
    for (auto& o : j["objects"]) {
      const std::string oid = o.value("oid", "");
      auto it = by_oid.find(oid);
      if (it == by_oid.end()) throw FormatError("LFS batch: unexpected object " + oid);
      if (o.contains("error"))
        throw IoError("LFS batch: " + it->second->path + ": " + o["error"].dump());
      if (!o.contains("actions") || !o["actions"].is_object()) continue;  // already stored
      Upload u{it->second, "", ""};
      if (o["actions"].contains("upload"))
        u.href = o["actions"]["upload"].at("href").get<std::string>();
      if (o["actions"].contains("verify"))
        u.verify = o["actions"]["verify"].at("href").get<std::string>();
      if (!u.href.empty() || !u.verify.empty()) uploads.push_back(std::move(u));
    }
  }
  uint64_t up_total = 0;
  for (auto& u : uploads)
    if (!u.href.empty()) up_total += u.f->size;
  {
    Progress progress(opt.progress && up_total > 0, "Uploading", up_total, uploads.size());
    std::atomic<uint64_t> sent_total{0};
    std::mutex mu;
    parallel_for(uploads.size(), opt.parallel, [&](size_t i) {
      const Upload& u = uploads[i];
      if (!u.href.empty()) {
        auto [origin, path] = split_url(u.href);
        auto c = make_client(origin, "", 600);  // the href is self-authorising: no token
        const int fd = ::open(u.f->abs.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw IoError(ErrorContext().file(u.f->abs.string()), "cannot open");
        std::vector<char> buf(1 << 20);
        auto r = c->Put(
            path, {}, static_cast<size_t>(u.f->size),
            [&](size_t offset, size_t length, httplib::DataSink& sink) {
              const ssize_t n =
                  ::pread(fd, buf.data(), std::min(length, buf.size()), static_cast<off_t>(offset));
              if (n <= 0) return false;
              progress.add(static_cast<uint64_t>(n));
              return sink.write(buf.data(), static_cast<size_t>(n));
            },
            "application/octet-stream");
        ::close(fd);
        if (!r || r->status < 200 || r->status >= 300)
          http_fail(*c, "LFS upload of " + u.f->path, r);
        sent_total += u.f->size;
      }
      if (!u.verify.empty()) {
        auto [origin, path] = split_url(u.verify);
        auto c = make_client(origin, token);
        auto r = c->Post(path, json{{"oid", u.f->oid}, {"size", u.f->size}}.dump(),
                         "application/vnd.git-lfs+json");
        if (!r || r->status < 200 || r->status >= 300)
          http_fail(*c, "LFS verify of " + u.f->path, r);
      }
      progress.file_done();
      if (opt.log) {
        std::lock_guard l(mu);
        *opt.log << "uploaded " << u.f->path << " (LFS)\n";
      }
    });
    res.lfs_bytes_uploaded = sent_total;
  }

  // 7. the commit (NDJSON)
  std::string body;
  auto line = [&](const char* key, const json& value) {
    body +=
        json{{"key", key}, {"value", value}}.dump(-1, ' ', false, json::error_handler_t::strict);
    body += '\n';
  };
  json header = {{"summary", opt.message.empty() ? "Upload folder using ohm" : opt.message},
                 {"description", ""}};
  if (!opt.parent_commit.empty()) header["parentCommit"] = opt.parent_commit;
  line("header", header);
  for (auto* f : changed) {
    if (f->lfs)
      line("lfsFile", {{"path", f->path}, {"algo", "sha256"}, {"oid", f->oid}, {"size", f->size}});
    else
      line("file", {{"path", f->path}, {"encoding", "base64"}, {"content", base64(f->content)}});
    f->content.clear();
    f->content.shrink_to_fit();
  }
  for (auto& d : deletions) line("deletedFile", {{"path", d}});
  auto r = cli->Post(api + "/commit/" + rev, body, "application/x-ndjson");
  if (!r || r->status != 200) http_fail(*cli, "commit to " + opt.repo_id + "@" + opt.revision, r);
  json j = parse_body("commit", r->body);
  res.commit = j.value("commitOid", "");
  res.commit_url = j.value("commitUrl", "");
  if (!is_hex(res.commit, 40)) throw FormatError("commit: invalid commitOid in " + r->body);
  res.committed = true;
  if (opt.log)
    for (auto* f : changed)
      if (!f->lfs) *opt.log << "uploaded " << f->path << "\n";
  if (opt.log)
    for (auto& d : deletions) *opt.log << "deleted " << d << "\n";
  return res;
}

}  // namespace ohm::hub
