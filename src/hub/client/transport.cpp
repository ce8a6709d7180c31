// The Hub client's endpoint and token settings, and the shared plumbing of transport.h.
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

namespace client_detail {

namespace {

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

}  // namespace

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
                                    int timeout_s) {
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

json post_json(Client& c, const std::string& path, const json& body, const char* type) {
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

// Hash of a file's bytes into h.
void hash_file(Hasher& h, const fs::path& p, uint64_t limit) {
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

}  // namespace client_detail
}  // namespace ohm::hub
