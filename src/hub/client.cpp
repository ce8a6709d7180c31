#include "ohm/hub/client.h"

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

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string default_endpoint() {
  const char* e = std::getenv("HF_ENDPOINT");
  std::string s = e && *e ? e : "https://huggingface.co";
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string hf_home() {
  if (const char* h = std::getenv("HF_HOME"); h && *h) return h;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/huggingface";
  const char* u = std::getenv("HOME");
  return std::string(u && *u ? u : "/") + "/.cache/huggingface";
}

std::string token_path() {
  if (const char* p = std::getenv("HF_TOKEN_PATH"); p && *p) return p;
  return hf_home() + "/token";
}

std::string default_token() {
  for (const char* k : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
    if (const char* v = std::getenv(k); v && *v) return v;
  std::ifstream f(token_path());
  std::string t;
  std::getline(f, t);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

bool offline_mode() {
  for (const char* k : {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}) {
    const char* v = std::getenv(k);
    if (!v) continue;
    std::string s(v);
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (s == "1" || s == "ON" || s == "YES" || s == "TRUE") return true;
  }
  return false;
}

void save_token(const std::string& token) {
  const fs::path p = token_path();
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = p.string() + "." + random_hex(4) + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw IoError(ErrorContext().file(tmp), "cannot create the token file");
  const bool ok = ::write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    throw IoError(ErrorContext().file(tmp), "cannot write the token file");
  }
  fs::rename(tmp, p);
}

bool delete_token() {
  std::error_code ec;
  return fs::remove(token_path(), ec);
}

namespace {

struct Endpoint {
  std::string origin;  // scheme://host[:port]
  std::string prefix;  // path prefix without trailing '/'
};

// An httplib client that remembers its origin, for error messages.
class Client : public httplib::Client {
 public:
  explicit Client(const std::string& origin) : httplib::Client(origin), origin_(origin) {}
  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
};

// Why a TCP connection to `origin` (scheme://host[:port]) fails: tries it once more (at most
// 4 addresses, 3 s each) for the system's reason, e.g. "Connection refused".
std::string connect_failure_reason(const std::string& origin) {
  const size_t scheme = origin.find("://");
  if (scheme == std::string::npos) return "invalid URL";
  std::string host = origin.substr(scheme + 3),
              port = origin.starts_with("https://") ? "443" : "80";
  if (host.starts_with("[")) {  // [v6]:port
    const size_t close = host.find(']');
    if (close != std::string::npos) {
      if (close + 1 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
      host = host.substr(1, close - 1);
    }
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return "cannot resolve host '" + host + "': " + ::gai_strerror(rc);
  std::string reason = "no address";
  int tried = 0;
  for (addrinfo* a = res; a && tried < 4; a = a->ai_next, ++tried) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      reason = std::strerror(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd pfd{fd, POLLOUT, 0};
        const int n = ::poll(&pfd, 1, 3000);
        socklen_t len = sizeof err;
        if (n == 0)
          err = ETIMEDOUT;
        else if (n < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
          err = errno;
      }
    }
    ::close(fd);
    if (err == 0) {
      reason = "it accepts connections now: a transient failure, retry";
      break;
    }
    reason = std::strerror(err);
  }
  ::freeaddrinfo(res);
  return reason;
}

// A failed request (no HTTP answer) in words.
std::string network_error(httplib::Error e, const std::string& origin) {
  using E = httplib::Error;
  switch (e) {
    case E::Connection:
      return "cannot connect to " + origin + " (" + connect_failure_reason(origin) + ")";
    case E::ConnectionTimeout:
      return "timed out connecting to " + origin;
    case E::Read:
      return "the connection to " + origin + " was closed or timed out while reading the response";
    case E::Write:
      return "the connection to " + origin + " failed while sending the request";
    case E::SSLConnection:
      return "TLS connection to " + origin + " failed";
    case E::SSLLoadingCerts:
      return "cannot load the CA certificates to verify " + origin;
    case E::SSLServerVerification:
      return "the TLS certificate of " + origin + " did not verify";
    case E::Canceled:
      return "the request to " + origin + " was cancelled";
    case E::ExceedRedirectCount:
      return "too many redirects from " + origin;
    case E::Compression:
      return "cannot decompress the response of " + origin;
    default:
      return "the request to " + origin + " failed (" + httplib::to_string(e) + ")";
  }
}

Endpoint parse_endpoint(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos)
    throw InvalidArgument("endpoint '" + url + "' must start with http:// or https://");
  const size_t slash = url.find('/', scheme + 3);
  Endpoint e{url.substr(0, slash), slash == std::string::npos ? "" : url.substr(slash)};
  while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
  return e;
}

std::unique_ptr<Client> make_client(const std::string& origin, const std::string& token,
                                    int timeout_s = 60) {
  auto c = std::make_unique<Client>(origin);
  c->set_connection_timeout(10, 0);
  c->set_read_timeout(timeout_s, 0);
  c->set_write_timeout(timeout_s, 0);
  c->set_follow_location(false);
  c->set_keep_alive(true);
  c->set_default_headers({{"User-Agent", "ohm-hub-client/1"}});
  if (!token.empty()) c->set_bearer_token_auth(token);
  return c;
}

[[noreturn]] void http_fail(const Client& c, const std::string& what, const httplib::Result& r) {
  if (!r) throw IoError(what + ": " + network_error(r.error(), c.origin()));
  const std::string code = r->get_header_value("X-Error-Code");
  std::string detail = r->get_header_value("X-Error-Message");
  if (detail.empty() && !r->body.empty()) {
    auto j = json::parse(r->body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) detail = j["error"];
  }
  const std::string msg = what + ": HTTP " + std::to_string(r->status) +
                          (code.empty() ? "" : " " + code) + (detail.empty() ? "" : ": " + detail);
  if (r->status == 401)
    throw AuthError(msg + " (401 Unauthorized: invalid or missing token for " + c.origin() +
                    "; pass --token, set HF_TOKEN or run `ohm login`)");
  if (r->status == 404) throw NotFoundError(msg);
  if (r->status == 400 || r->status == 403 || r->status == 409 || r->status == 412)
    throw InvalidArgument(msg);
  throw IoError(msg);
}

json parse_body(const std::string& what, const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    throw FormatError(what + ": invalid JSON: " + e.what());
  }
}

json get_json(Client& c, const std::string& path, std::string* next) {
  auto r = c.Get(path);
  if (!r || r->status != 200) http_fail(c, "GET " + path, r);
  if (next) {
    next->clear();
    const std::string link = r->get_header_value("Link");
    const size_t a = link.find('<'), b = link.find('>');
    if (a != std::string::npos && b != std::string::npos &&
        link.find("rel=\"next\"") != std::string::npos)
      *next = link.substr(a + 1, b - a - 1);
  }
  return parse_body("GET " + path, r->body);
}

json post_json(Client& c, const std::string& path, const json& body,
               const char* type = "application/json") {
  auto r = c.Post(path, body.dump(), type);
  if (!r || r->status != 200) http_fail(c, "POST " + path, r);
  return parse_body("POST " + path, r->body);
}

void check_repo_id(const std::string& id) {
  const size_t slash = id.find('/');
  if (slash == std::string::npos || !check_name(id.substr(0, slash), true).empty() ||
      !check_name(id.substr(slash + 1), false).empty())
    throw InvalidArgument("invalid repo id '" + id + "' (expected namespace/name)");
}

struct RemoteFile {
  std::string path, etag;
  uint64_t size = 0;
  bool lfs = false;
};

// Every file of a commit (recursive tree, following Link pagination).
std::vector<RemoteFile> list_tree(Client& c, const Endpoint& ep, const std::string& api,
                                  const std::string& commit) {
  std::vector<RemoteFile> files;
  std::string next,
      path = api + "/tree/" + percent_encode(commit, false) + "?recursive=true&expand=false";
  for (int page = 0; page < 1000000 && !path.empty(); ++page) {
    json arr = get_json(c, path, &next);
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
      files.push_back(std::move(f));
    }
    path.clear();
    if (!next.empty()) {
      if (!next.starts_with(ep.origin + "/"))
        throw FormatError("pagination link leaves the endpoint: " + next);
      path = next.substr(ep.origin.size());
    }
  }
  return files;
}

bool glob_match(const std::vector<std::string>& globs, const std::string& path) {
  for (auto g : globs) {
    if (!g.empty() && g.back() == '/') g += '*';  // a folder pattern, as huggingface_hub
    if (::fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
  }
  return false;
}

void write_atomic(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  {
    std::ifstream in(p, std::ios::binary);
    std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.good() || in.eof())
      if (old == content) return;
  }
  const fs::path tmp = p.string() + "." + random_hex(4) + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << content;
    if (!f) throw IoError(ErrorContext().file(tmp.string()), "write failed");
  }
  fs::rename(tmp, p);
}

// Hash of a file's bytes into h.
void hash_file(Hasher& h, const fs::path& p, uint64_t limit = UINT64_MAX) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw IoError(ErrorContext().file(p.string()), "cannot open");
  std::vector<char> buf(1 << 20);
  while (f && limit > 0) {
    f.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(buf.size(), limit)));
    const auto n = static_cast<size_t>(f.gcount());
    h.update(buf.data(), n);
    limit -= n;
  }
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) b /= 1000, ++u;
  char s[32];
  std::snprintf(s, sizeof s, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return s;
}

// One aggregate progress bar on stderr, redrawn every 200 ms (only when enabled).
class Progress {
 public:
  Progress(bool on, std::string verb, uint64_t total, size_t files)
      : on_(on), verb_(std::move(verb)), total_(total), files_(files) {
    if (on_) th_ = std::thread([this] { loop(); });
  }
  ~Progress() { finish(); }
  void add(uint64_t n) { done_ += n; }
  void file_done() { ++files_done_; }
  void finish() {
    if (!on_) return;
    {
      std::lock_guard l(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
    draw();
    std::fputc('\n', stderr);
  }

 private:
  void loop() {
    std::unique_lock l(mu_);
    while (!cv_.wait_for(l, std::chrono::milliseconds(200), [&] { return stop_; })) draw();
  }
  void draw() {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const uint64_t done = std::min<uint64_t>(done_, total_);
    const double frac = total_ ? double(done) / double(total_) : 1.0;
    const int width = 30, fill = static_cast<int>(frac * width);
    std::string bar = std::string(static_cast<size_t>(fill), '#') +
                      std::string(static_cast<size_t>(width - fill), '.');
    std::fprintf(stderr, "\r%s %zu/%zu files [%s] %3d%% %s/%s %s/s   ", verb_.c_str(),
                 files_done_.load(), files_, bar.c_str(), static_cast<int>(frac * 100),
                 human_bytes(double(done)).c_str(), human_bytes(double(total_)).c_str(),
                 human_bytes(secs > 0 ? double(done) / secs : 0).c_str());
    std::fflush(stderr);
  }

  bool on_;
  std::string verb_;
  uint64_t total_;
  size_t files_;
  std::atomic<uint64_t> done_{0};
  std::atomic<size_t> files_done_{0};
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::thread th_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the first error.
template <class F>
void parallel_for(size_t n, int threads, F fn) {
  std::atomic<size_t> idx{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::exception_ptr error;
  auto worker = [&] {
    while (!failed) {
      const size_t i = idx++;
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard l(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t nt = std::min<size_t>(n, static_cast<size_t>(std::max(1, threads)));
  for (size_t t = 1; t < nt; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

std::string repo_folder(RepoType t, const std::string& id) {
  std::string folder = std::string(plural(t)) + "--" + id;
  folder.replace(folder.find('/'), 1, "--");
  return folder;
}

PullResult pull_offline(const PullOptions& opt, const fs::path& cache, const fs::path& repo_dir) {
  std::string commit;
  if (is_hex(opt.revision, 40)) {
    commit = opt.revision;
  } else {
    std::ifstream f(repo_dir / "refs" / opt.revision);
    std::getline(f, commit);
  }
  const std::string where =
      std::string(to_string(opt.type)) + " " + opt.repo_id + " at revision '" + opt.revision + "'";
  const fs::path snap = repo_dir / "snapshots" / commit;
  if (!is_hex(commit, 40) || !fs::is_directory(snap))
    throw NotFoundError("offline mode (HF_HUB_OFFLINE): " + where + " is not in the cache " +
                        cache.string() + "; run without HF_HUB_OFFLINE to download it");
  PullResult res;
  res.commit = commit;
  res.snapshot_dir = snap.string();
  for (auto it = fs::recursive_directory_iterator(snap); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_directory()) continue;
    const std::string rel = it->path().lexically_relative(snap).generic_string();
    if (!opt.include.empty() && !glob_match(opt.include, rel)) continue;
    if (!fs::exists(it->path()))
      throw NotFoundError("offline mode (HF_HUB_OFFLINE): " + where + ": " + rel +
                          " points to a missing blob");
    ++res.files;
    if (opt.log) *opt.log << rel << "\n";
  }
  if (res.files == 0)
    throw NotFoundError("offline mode (HF_HUB_OFFLINE): " + where + ": no cached file matches in " +
                        snap.string());
  return res;
}

// Appends to a file and hashes on a second thread while the network thread fills the next buffer
// (so receiving, writing and hashing overlap).
class BlobSink {
 public:
  BlobSink(const fs::path& p, Hasher& h) : path_(p), h_(h) {
    fd_ = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(ErrorContext().file(p.string()), "cannot open for writing");
    cur_.reserve(kBuf);
    work_.reserve(kBuf);
    th_ = std::thread([this] { loop(); });
  }
  ~BlobSink() {
    try {
      finish();
    } catch (...) {
    }
  }
  bool write(const char* d, size_t n) {
    cur_.append(d, n);
    return cur_.size() < kBuf || hand_over();
  }
  // Flushes everything; throws IoError when a write failed.
  void finish() {
    if (fd_ < 0) return;
    hand_over();
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return !pending_; });
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
    ::close(fd_);
    fd_ = -1;
    if (!error_.empty()) throw IoError(ErrorContext().file(path_.string()), error_);
  }

 private:
  static constexpr size_t kBuf = 4u << 20;
  bool hand_over() {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return !pending_; });
    if (!error_.empty()) return false;
    if (cur_.empty()) return true;
    std::swap(cur_, work_);
    cur_.clear();
    pending_ = true;
    cv_.notify_all();
    return true;
  }
  void loop() {
    std::unique_lock l(mu_);
    while (true) {
      cv_.wait(l, [&] { return pending_ || stop_; });
      if (!pending_) return;
      l.unlock();
      std::string err;
      for (size_t off = 0; off < work_.size() && err.empty();) {
        const ssize_t w = ::write(fd_, work_.data() + off, work_.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = std::string("write failed: ") + std::strerror(errno);
        off += w > 0 ? static_cast<size_t>(w) : 0;
      }
      if (err.empty()) h_.update(work_.data(), work_.size());
      l.lock();
      if (!err.empty()) error_ = err;
      pending_ = false;
      cv_.notify_all();
    }
  }

  fs::path path_;
  Hasher& h_;
  int fd_ = -1;
  std::string cur_, work_;  // filled by the caller / written by the thread
  std::thread th_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, stop_ = false;
  std::string error_;
};

// Downloads one file into blobs/<etag> (resuming <etag>.incomplete), verifying its hash.
void download_blob(Client& c, const std::string& url, const RemoteFile& f, const fs::path& blob,
                   Progress& progress, std::atomic<uint64_t>& bytes) {
  const fs::path part = blob.string() + ".incomplete";
  uint64_t have = fs::exists(part) ? fs::file_size(part) : 0;
  if (have > f.size) fs::resize_file(part, 0), have = 0;
  auto new_hasher = [&] {
    auto h = std::make_unique<Hasher>(f.lfs ? Hasher::Algo::Sha256 : Hasher::Algo::Sha1);
    if (!f.lfs) {
      const std::string hdr = "blob " + std::to_string(f.size);
      h->update(hdr.c_str(), hdr.size() + 1);
    }
    return h;
  };
  auto hs = new_hasher();
  if (have > 0) hash_file(*hs, part, have), progress.add(have);
  std::string last_error;
  for (int attempt = 0; attempt < 5 && (have < f.size || (f.size == 0 && attempt == 0));
       ++attempt) {
    httplib::Headers h;
    if (have > 0) h.emplace("Range", "bytes=" + std::to_string(have) + "-");
    bool restart = false;
    std::optional<httplib::Result> res;
    {
      BlobSink out(part, *hs);
      res.emplace(c.Get(
          url, h,
          [&](const httplib::Response& resp) {
            if (have > 0 && resp.status == 200) {  // range ignored: start over
              restart = true;
              return false;
            }
            return resp.status == 200 || resp.status == 206;
          },
          [&](const char* d, size_t n) {
            if (have + n > f.size) return false;  // more than announced
            have += n;
            bytes += n;
            progress.add(n);
            return out.write(d, n);
          }));
      out.finish();
    }
    const httplib::Result& r = *res;
    if (restart) {
      fs::resize_file(part, 0);
      have = 0;
      hs = new_hasher();
      continue;
    }
    if (r && r->status != 200 && r->status != 206) http_fail(c, "GET " + url, r);
    if (!r) last_error = ": " + network_error(r.error(), c.origin());
    if (r && f.size == 0) break;
  }
  if (have != f.size)
    throw IoError("download of " + f.path + " incomplete: " + std::to_string(have) + " of " +
                  std::to_string(f.size) + " bytes" + last_error + " (rerun to resume)");
  const std::string got = hs->hex();
  if (got != f.etag) {
    fs::remove(part);
    throw FormatError(f.path + ": checksum mismatch (expected " + f.etag + ", got " + got + ")");
  }
  fs::rename(part, blob);
}

}  // namespace

PullResult pull(const PullOptions& opt) {
  check_repo_id(opt.repo_id);
  if (auto e = check_revision(opt.revision); !e.empty()) throw InvalidArgument(e);
  const fs::path cache = opt.cache_dir.empty() ? hf_hub_cache_dir() : opt.cache_dir;
  const fs::path repo_dir = cache / repo_folder(opt.type, opt.repo_id);
  if (opt.offline || offline_mode()) return pull_offline(opt, cache, repo_dir);

  const Endpoint ep = parse_endpoint(opt.endpoint.empty() ? default_endpoint() : opt.endpoint);
  const std::string token = opt.token.empty() ? default_token() : opt.token;
  auto cli = make_client(ep.origin, token);
  const std::string api = ep.prefix + "/api/" + plural(opt.type) + "/" + opt.repo_id;
  const std::string commit =
      get_json(*cli, api + "/revision/" + percent_encode(opt.revision, false), nullptr)
          .at("sha")
          .get<std::string>();
  if (!is_hex(commit, 40)) throw FormatError("server returned an invalid commit '" + commit + "'");

  std::vector<RemoteFile> files;
  for (auto& f : list_tree(*cli, ep, api, commit))
    if (opt.include.empty() || glob_match(opt.include, f.path)) files.push_back(std::move(f));

  PullResult res;
  res.commit = commit;
  res.snapshot_dir = (repo_dir / "snapshots" / commit).string();
  res.files = files.size();
  fs::create_directories(repo_dir / "blobs");
  uint64_t total = 0;
  size_t missing = 0;
  for (auto& f : files)
    if (!fs::exists(repo_dir / "blobs" / f.etag)) total += f.size, ++missing;
  std::atomic<size_t> downloaded{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  Progress progress(opt.progress && missing > 0, "Downloading", total, missing);
  std::vector<std::unique_ptr<Client>> clients;
  std::mutex cmu;
  parallel_for(files.size(), opt.parallel, [&](size_t i) {
    const RemoteFile& f = files[i];
    const fs::path blob = repo_dir / "blobs" / f.etag;
    if (!fs::exists(blob)) {
      std::unique_ptr<Client> c;
      {
        std::lock_guard l(cmu);
        if (!clients.empty()) c = std::move(clients.back()), clients.pop_back();
      }
      if (!c) c = make_client(ep.origin, token);
      const std::string url = ep.prefix + "/" + url_prefix(opt.type) + opt.repo_id + "/resolve/" +
                              commit + "/" + percent_encode(f.path, true);
      download_blob(*c, url, f, blob, progress, bytes);
      {
        std::lock_guard l(cmu);
        clients.push_back(std::move(c));
      }
      ++downloaded;
      progress.file_done();
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
  });
  progress.finish();
  fs::create_directories(res.snapshot_dir);
  if (opt.revision != commit) write_atomic(repo_dir / "refs" / opt.revision, commit);
  res.downloaded = downloaded;
  res.bytes = bytes;
  return res;
}

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
  const fs::path root = fs::canonical(opt.folder);
  // Symlinks are followed (an HF cache snapshot is symlinks into ../../blobs): a file's path in
  // the repo is its path under the folder, never its target's.
  for (auto it =
           fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it.depth() > 64)
      throw InvalidArgument(ErrorContext().file(it->path().string()),
                            "folders nested more than 64 deep (a symlink loop?)");
    const std::string rel = it->path().lexically_relative(root).generic_string();
    if (rel == ".git" || rel.starts_with(".git/") || rel == ".cache/huggingface" ||
        rel.starts_with(".cache/huggingface/")) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (auto e = check_file_path(rel); !e.empty())
      throw InvalidArgument("cannot upload '" + rel + "': " + e);
    LocalFile f;
    f.path = rel;
    f.abs = it->path();
    f.size = it->file_size();
    f.sample = read_file(f.abs, 512);
    local.push_back(std::move(f));
  }
  std::sort(local.begin(), local.end(),
            [](const LocalFile& a, const LocalFile& b) { return a.path < b.path; });
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
  line("header", {{"summary", opt.message.empty() ? "Upload folder using ohm" : opt.message},
                  {"description", ""}});
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
