#include "ohm/hub/client.h"

#include <fnmatch.h>
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"
#include "ohm/hub/hash.h"

namespace ohm::hub {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string default_endpoint() {
  const char* e = std::getenv("HF_ENDPOINT");
  std::string s = e && *e ? e : "https://huggingface.co";
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string default_token() {
  for (const char* k : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
    if (const char* v = std::getenv(k); v && *v) return v;
  std::string path;
  if (const char* p = std::getenv("HF_TOKEN_PATH"); p && *p)
    path = p;
  else {
    std::string home;
    if (const char* h = std::getenv("HF_HOME"); h && *h)
      home = h;
    else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
      home = std::string(x) + "/huggingface";
    else if (const char* u = std::getenv("HOME"); u && *u)
      home = std::string(u) + "/.cache/huggingface";
    path = home + "/token";
  }
  std::ifstream f(path);
  std::string t;
  std::getline(f, t);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

namespace {

struct Endpoint {
  std::string origin;  // scheme://host[:port]
  std::string prefix;  // path prefix without trailing '/'
};

Endpoint parse_endpoint(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos)
    throw InvalidArgument("endpoint '" + url + "' must start with http:// or https://");
  const size_t slash = url.find('/', scheme + 3);
  Endpoint e{url.substr(0, slash), slash == std::string::npos ? "" : url.substr(slash)};
  while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
  return e;
}

std::unique_ptr<httplib::Client> make_client(const Endpoint& ep, const std::string& token) {
  auto c = std::make_unique<httplib::Client>(ep.origin);
  c->set_connection_timeout(10, 0);
  c->set_read_timeout(60, 0);
  c->set_follow_location(false);
  if (!token.empty()) c->set_bearer_token_auth(token);
  return c;
}

[[noreturn]] void http_fail(const std::string& what, const httplib::Result& r) {
  if (!r) throw IoError(what + ": " + httplib::to_string(r.error()));
  const std::string code = r->get_header_value("X-Error-Code");
  const std::string msg =
      what + ": HTTP " + std::to_string(r->status) + (code.empty() ? "" : " " + code) +
      (r->has_header("X-Error-Message") ? ": " + r->get_header_value("X-Error-Message") : "");
  if (r->status == 404 || r->status == 401) throw NotFoundError(msg);
  throw IoError(msg);
}

json get_json(httplib::Client& c, const std::string& path, std::string* next) {
  auto r = c.Get(path);
  if (!r || r->status != 200) http_fail("GET " + path, r);
  if (next) {
    next->clear();
    const std::string link = r->get_header_value("Link");
    const size_t a = link.find('<'), b = link.find('>');
    if (a != std::string::npos && b != std::string::npos &&
        link.find("rel=\"next\"") != std::string::npos)
      *next = link.substr(a + 1, b - a - 1);
  }
  try {
    return json::parse(r->body);
  } catch (const json::exception& e) {
    throw FormatError("GET " + path + ": invalid JSON: " + e.what());
  }
}

struct RemoteFile {
  std::string path, etag;
  uint64_t size = 0;
  bool lfs = false;
};

void write_atomic(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + "." + random_hex(4) + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << content;
    if (!f) throw IoError(ErrorContext().file(tmp.string()), "write failed");
  }
  fs::rename(tmp, p);
}

// Hash of a file's existing bytes (resumed downloads) into h.
void hash_file(Hasher& h, const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(f.gcount()));
  }
}

}  // namespace

PullResult pull(const PullOptions& opt) {
  if (opt.repo_id.find('/') == std::string::npos ||
      !check_name(opt.repo_id.substr(0, opt.repo_id.find('/')), true).empty() ||
      !check_name(opt.repo_id.substr(opt.repo_id.find('/') + 1), false).empty())
    throw InvalidArgument("invalid repo id '" + opt.repo_id + "' (expected namespace/name)");
  if (auto e = check_revision(opt.revision); !e.empty()) throw InvalidArgument(e);
  const Endpoint ep = parse_endpoint(opt.endpoint.empty() ? default_endpoint() : opt.endpoint);
  const std::string token = opt.token.empty() ? default_token() : opt.token;
  const fs::path cache = opt.cache_dir.empty() ? hf_hub_cache_dir() : opt.cache_dir;
  std::string folder = std::string(plural(opt.type)) + "--" + opt.repo_id;
  folder.replace(folder.find('/'), 1, "--");
  const fs::path repo_dir = cache / folder;

  auto cli = make_client(ep, token);
  const std::string api = ep.prefix + "/api/" + plural(opt.type) + "/" + opt.repo_id;
  const std::string commit =
      get_json(*cli, api + "/revision/" + percent_encode(opt.revision, false), nullptr)
          .at("sha")
          .get<std::string>();
  if (!is_hex(commit, 40)) throw FormatError("server returned an invalid commit '" + commit + "'");

  std::vector<RemoteFile> files;
  std::string next, path = api + "/tree/" + commit + "?recursive=true&expand=false";
  for (int page = 0; page < 100000 && !path.empty(); ++page) {
    json arr = get_json(*cli, path, &next);
    if (!arr.is_array()) throw FormatError("tree listing is not a list");
    for (auto& e : arr) {
      if (e.value("type", "") != "file") continue;
      RemoteFile f;
      f.path = e.at("path").get<std::string>();
      if (auto err = check_file_path(f.path); !err.empty())
        throw FormatError("server sent an unsafe path '" + f.path + "'");
      f.size = e.at("size").get<uint64_t>();
      if (e.contains("lfs") && e["lfs"].is_object()) {
        f.lfs = true;
        f.etag = e["lfs"].at("oid").get<std::string>();
        if (!is_hex(f.etag, 64)) throw FormatError("invalid lfs oid for " + f.path);
      } else {
        f.etag = e.at("oid").get<std::string>();
        if (!is_hex(f.etag, 40)) throw FormatError("invalid oid for " + f.path);
      }
      bool keep = opt.include.empty();
      for (auto& g : opt.include)
        if (::fnmatch(g.c_str(), f.path.c_str(), 0) == 0) keep = true;
      if (keep) files.push_back(std::move(f));
    }
    path.clear();
    if (!next.empty()) {
      if (!next.starts_with(ep.origin + "/"))
        throw FormatError("pagination link leaves the endpoint: " + next);
      path = next.substr(ep.origin.size());
    }
  }

  PullResult res;
  res.commit = commit;
  res.snapshot_dir = (repo_dir / "snapshots" / commit).string();
  res.files = files.size();
  fs::create_directories(repo_dir / "blobs");
  std::atomic<size_t> idx{0}, downloaded{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  std::exception_ptr error;
  auto worker = [&] {
    auto c = make_client(ep, token);
    while (true) {
      const size_t i = idx++;
      if (i >= files.size()) return;
      const RemoteFile& f = files[i];
      try {
        const fs::path blob = repo_dir / "blobs" / f.etag;
        if (!fs::exists(blob)) {
          const fs::path part = blob.string() + ".incomplete";
          uint64_t have = fs::exists(part) ? fs::file_size(part) : 0;
          if (have > f.size) fs::remove(part), have = 0;
          const std::string url = ep.prefix + "/" + url_prefix(opt.type) + opt.repo_id +
                                  "/resolve/" + commit + "/" + percent_encode(f.path, true);
          for (int attempt = 0; attempt < 5 && have < f.size; ++attempt) {
            std::ofstream out(part, std::ios::binary | std::ios::app);
            httplib::Headers h;
            if (have > 0) h.emplace("Range", "bytes=" + std::to_string(have) + "-");
            bool restart = false;
            auto r = c->Get(
                url, h,
                [&](const httplib::Response& resp) {
                  if (have > 0 && resp.status == 200) restart = true;  // range ignored
                  return resp.status == 200 || resp.status == 206;
                },
                [&](const char* d, size_t n) {
                  out.write(d, static_cast<std::streamsize>(n));
                  have += n;
                  bytes += n;
                  return static_cast<bool>(out);
                });
            out.close();
            if (restart) {
              fs::resize_file(part, 0);
              have = 0;
              continue;
            }
            if (r && r->status != 200 && r->status != 206) http_fail("GET " + url, r);
          }
          if (have != f.size)
            throw IoError("download of " + f.path + " incomplete: " + std::to_string(have) +
                          " of " + std::to_string(f.size) + " bytes (rerun to resume)");
          Hasher hs(f.lfs ? Hasher::Algo::Sha256 : Hasher::Algo::Sha1);
          if (!f.lfs) {
            const std::string hdr = "blob " + std::to_string(f.size);
            hs.update(hdr.c_str(), hdr.size() + 1);
          }
          hash_file(hs, part);
          const std::string got = hs.hex();
          if (got != f.etag) {
            fs::remove(part);
            throw FormatError(f.path + ": checksum mismatch (expected " + f.etag + ", got " + got +
                              ")");
          }
          fs::rename(part, blob);
          ++downloaded;
        }
        const fs::path link = repo_dir / "snapshots" / commit / f.path;
        fs::create_directories(link.parent_path());
        std::error_code ec;
        fs::remove(link, ec);
        fs::create_symlink(fs::relative(blob, link.parent_path()), link);
        if (opt.log) {
          std::lock_guard l(mu);
          *opt.log << f.path << "\n";
        }
      } catch (...) {
        std::lock_guard l(mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, opt.parallel); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  fs::create_directories(res.snapshot_dir);
  if (opt.revision != commit) write_atomic(repo_dir / "refs" / opt.revision, commit);
  res.downloaded = downloaded;
  res.bytes = bytes;
  return res;
}

}  // namespace ohm::hub
