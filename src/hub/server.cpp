#include "ohm/hub/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>

#include "http_front.h"
#include "ohm/core/error.h"
#include "ohm/hub/card.h"
#include "ohm/hub/hash.h"
#include "ohm/hub/hub.h"
#include "ohm/hub/webui.h"

namespace ohm::hub {

using json = nlohmann::json;

namespace {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Header values must not carry CR/LF or non-ASCII bytes.
std::string header_safe(const std::string& s, size_t max = 400) {
  std::string out;
  for (unsigned char c : s.substr(0, max))
    out.push_back(c < 0x20 || c >= 0x7f ? '?' : static_cast<char>(c));
  return out;
}

void check_json_depth(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_str = false, esc = false;
  for (char c : s) {
    if (in_str) {
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw HubError(400, "", "JSON nested deeper than " + std::to_string(max_depth));
    } else if (c == ']' || c == '}')
      --depth;
  }
}

json parse_json(std::string_view body, const std::string& what) {
  check_json_depth(body, 64);
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    throw HubError(400, "", "malformed JSON in " + what + ": " + e.what());
  }
}

json parse_object(std::string_view body, const std::string& what) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::object();
  json j = parse_json(body, what);
  if (!j.is_object()) throw HubError(400, "", what + " must be a JSON object");
  return j;
}

std::string get_str(const json& j, const char* key, const std::string& what) {
  if (!j.contains(key) || j[key].is_null()) return {};
  if (!j[key].is_string()) throw HubError(400, "", what + ": '" + key + "' must be a string");
  return j[key].get<std::string>();
}

bool base64_decode(std::string_view in, std::string& out) {
  static int8_t tbl[256];
  static bool init = [] {
    std::fill(std::begin(tbl), std::end(tbl), int8_t(-1));
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) tbl[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
    tbl[static_cast<unsigned char>('-')] = 62;
    tbl[static_cast<unsigned char>('_')] = 63;
    return true;
  }();
  (void)init;
  out.clear();
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (char ch : in) {
    if (ch == '=') {
      ++pad;
      continue;
    }
    if (ch == '\n' || ch == '\r') continue;
    if (pad) return false;
    int v = tbl[static_cast<unsigned char>(ch)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return pad <= 2;
}

bool truthy(const std::string& v) {
  return v == "1" || v == "true" || v == "True" || v == "TRUE";
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Ctx {
  const httplib::Request& req;
  httplib::Response& res;
  const httplib::ContentReader* reader = nullptr;
  std::vector<std::string> seg;
  std::string base;
  Caller caller;
  bool head = false;
  bool consumed = false;  // the request body was read (or drained)

  std::string param(const std::string& k) const {
    return req.has_param(k) ? req.get_param_value(k) : std::string();
  }
  std::vector<std::string> params(const std::string& k) const {
    std::vector<std::string> v;
    auto range = req.params.equal_range(k);
    for (auto it = range.first; it != range.second; ++it) v.push_back(it->second);
    return v;
  }
};

std::string join(const std::vector<std::string>& v, size_t from) {
  std::string s;
  for (size_t i = from; i < v.size(); ++i) {
    if (i > from) s += '/';
    s += v[i];
  }
  return s;
}

}  // namespace

struct HubServer::Impl {
  ServerOptions opt;
  Hub hub;
  FrontedServer svr;
  std::unique_ptr<HttpFront> front;
  std::string secret = random_hex(32);
  std::thread th;
  int bound_port = -1;
  std::mutex log_mu;

  explicit Impl(ServerOptions o) : opt(std::move(o)), hub(opt.data_dir) { setup(); }

  // ------------------------------------------------------------------ plumbing
  void send_json(Ctx& c, const json& j, int status = 200) {
    c.res.status = status;
    c.res.set_content(dump(j), "application/json");
  }

  void send_error(const httplib::Request& req, httplib::Response& res, int status,
                  const std::string& code, const std::string& msg, const std::string& commit) {
    res.status = status;
    if (status != 416) res.headers.erase("Content-Range");
    if (!code.empty()) res.set_header("X-Error-Code", code);
    res.set_header("X-Error-Message", header_safe(msg));
    if (!commit.empty()) res.set_header("X-Repo-Commit", commit);
    if (req.method != "HEAD")
      res.set_content(dump(json{{"error", msg}}), "application/json");
    else
      res.body.clear();
  }

  std::string read_body(Ctx& c, size_t limit) {
    // anonymous API bodies (paths-info, LFS batch for downloads, validate-yaml) are small
    if (c.caller.anonymous()) limit = std::min<size_t>(limit, 1u << 20);
    if (!c.reader) {
      if (c.req.body.size() > limit) throw HubError(400, "", "request body too large");
      return c.req.body;
    }
    std::string body;
    bool too_big = false;
    size_t discarded = 0;
    c.consumed = true;
    bool ok = (*c.reader)([&](const char* d, size_t n) {
      if (too_big || body.size() + n > limit) {
        // keep reading (bounded) so the connection stays in sync for the error response
        too_big = true;
        discarded += n;
        return discarded < kDrainMax;
      }
      body.append(d, n);
      return true;
    });
    if (too_big) {
      c.res.set_header("Connection", "close");
      throw HubError(400, "", "request body larger than " + std::to_string(limit) + " bytes");
    }
    if (!ok) {
      c.res.set_header("Connection", "close");
      throw HubError(400, "", "could not read the request body");
    }
    return body;
  }

  static constexpr size_t kDrainMax = 64u << 20;

  // Reads and drops an unread request body so a keep-alive connection stays in sync. Bodies the
  // front end has buffered (64 KiB) are dropped at once; a larger or chunked one is not waited
  // for (a slow client would hold the worker): the connection is closed after the answer.
  void drain(Ctx& c) {
    if (!c.reader || c.consumed) return;
    c.consumed = true;
    const std::string len = c.req.get_header_value("Content-Length");
    if (len.empty() || len.size() > 6 || std::stoul(len) > (64u << 10)) {
      c.res.set_header("Connection", "close");
      return;
    }
    size_t n = 0;
    (*c.reader)([&](const char*, size_t k) {
      n += k;
      return n < kDrainMax;
    });
    if (n >= kDrainMax) c.res.set_header("Connection", "close");
  }

  std::string base_url(const httplib::Request& req) {
    if (!opt.public_url.empty()) return opt.public_url;
    std::string host = req.get_header_value("Host");
    bool ok = !host.empty() && host.size() < 256;
    for (char ch : host)
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == ':' || ch == '-' ||
            ch == '[' || ch == ']'))
        ok = false;
    if (!ok) host = opt.host + ":" + std::to_string(bound_port);
    return "http://" + host;
  }

  // ------------------------------------------------------------------ rate limiting
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex rate_mu;
  std::unordered_map<std::string, Bucket> buckets;

  // Takes one token from the caller's bucket; throws 429 when it is empty.
  void rate_limit(const httplib::Request& req, httplib::Response& res) {
    if (opt.rate_limit <= 0) return;
    const std::string auth = req.get_header_value("Authorization");
    const std::string key =
        auth.empty() ? "ip:" + req.remote_addr : "tok:" + sha256_hex(auth).substr(0, 32);
    const double cap = opt.rate_limit, per_s = opt.rate_limit / 60.0;
    const auto now = std::chrono::steady_clock::now();
    double wait_s = 0;
    {
      std::lock_guard l(rate_mu);
      if (buckets.size() > 100000) {  // forget callers whose bucket has refilled
        for (auto it = buckets.begin(); it != buckets.end();) {
          const double t = std::chrono::duration<double>(now - it->second.at).count();
          it = it->second.tokens + t * per_s >= cap ? buckets.erase(it) : std::next(it);
        }
      }
      auto [it, fresh] = buckets.try_emplace(key, Bucket{cap, now});
      Bucket& b = it->second;
      if (!fresh) {
        const double t = std::chrono::duration<double>(now - b.at).count();
        b.tokens = std::min(cap, b.tokens + t * per_s);
        b.at = now;
      }
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return;
      }
      wait_s = (1 - b.tokens) / per_s;
    }
    const int64_t retry = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)));
    res.set_header("Retry-After", std::to_string(retry));
    res.set_header("RateLimit", "\"api\";r=0;t=" + std::to_string(retry));
    res.set_header("RateLimit-Policy",
                   "\"fixed window\";\"api\";q=" + std::to_string(opt.rate_limit) + ";w=60");
    throw HubError(429, "",
                   "Rate limit exceeded: " + std::to_string(opt.rate_limit) +
                       " requests per minute. Retry after " + std::to_string(retry) + " s.");
  }

  void dispatch(const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader* reader) {
    Ctx c{req, res, reader, {}, base_url(req), {}, req.method == "HEAD"};
    try {
      rate_limit(req, res);
      std::string target = req.target.substr(0, req.target.find('?'));
      if (target.empty() || target[0] != '/') throw HubError(400, "", "bad request target");
      size_t pos = 1;
      while (pos <= target.size()) {
        size_t e = target.find('/', pos);
        if (e == std::string::npos) e = target.size();
        std::string dec;
        if (!percent_decode(std::string_view(target).substr(pos, e - pos), dec))
          throw HubError(400, "", "malformed percent-encoding in the URL path");
        c.seg.push_back(std::move(dec));
        pos = e + 1;
      }
      if (!c.seg.empty() && c.seg.back().empty() && c.seg.size() > 1) c.seg.pop_back();
      route(c);
    } catch (const HubError& e) {
      send_error(req, res, e.status, e.code, e.what(), e.commit);
    } catch (const InvalidArgument& e) {
      send_error(req, res, 400, "", e.what(), "");
    } catch (const FormatError& e) {
      send_error(req, res, 400, "", e.what(), "");
    } catch (const NotFoundError& e) {
      send_error(req, res, 404, "EntryNotFound", e.what(), "");
    } catch (const std::exception& e) {
      send_error(req, res, 500, "", std::string("internal error: ") + e.what(), "");
    }
    try {
      drain(c);
    } catch (...) {
    }
  }

  // ------------------------------------------------------------------ routing
  void route(Ctx& c) {
    const auto& s = c.seg;
    const std::string& m = c.req.method;
    // Self-authorising LFS upload URLs: no Authorization header is sent to them.
    if (s[0] == "api" && s.size() == 3 && s[1] == "lfs-upload" && m == "PUT")
      return lfs_put(c, s[2]);
    c.caller = hub.authenticate(c.req.get_header_value("Authorization"));
    if (s[0] == "api") {
      if (s.size() < 2) throw HubError(404, "", "not found");
      if (s[1] == "whoami-v2" && s.size() == 2) return whoami(c);
      if (s[1] == "users" && s.size() == 4 && s[3] == "likes" && m == "GET")
        return user_likes(c, s[2]);
      if (s[1] == "validate-yaml" && m == "POST") return validate_yaml(c);
      if (s[1] == "telemetry") return void(c.res.status = 200);
      if (s[1] == "admin") return admin_api(c);
      if (s[1] == "repos" && s.size() == 3) {
        if (s[2] == "create" && m == "POST") return repo_create(c);
        if (s[2] == "delete" && m == "DELETE") return repo_delete(c);
        throw HubError(404, "", "unsupported repos operation");
      }
      if (s[1] == "lfs-verify" && s.size() == 5 && m == "POST") return lfs_verify(c);
      RepoType t;
      if (!parse_repo_type(s[1], t) || s[1].back() != 's') throw HubError(404, "", "not found");
      if (s.size() == 2) {
        if (m != "GET" && m != "HEAD") throw HubError(405, "", "method not allowed");
        return list_repos(c, t);
      }
      if (s.size() < 4) throw HubError(404, "RepoNotFound", "Repository not found");
      const std::string& ns = s[2];
      const std::string& name = s[3];
      if (s.size() == 4) return repo_info(c, t, ns, name, "");
      const std::string& action = s[4];
      const std::string rest = join(s, 5);
      if (action == "revision" && s.size() >= 6) return repo_info(c, t, ns, name, rest);
      if (action == "tree" && s.size() >= 6) return tree(c, t, ns, name, s[5], join(s, 6));
      if (action == "refs" && s.size() == 5) return refs(c, t, ns, name);
      if (action == "commits" && s.size() >= 6) return commits(c, t, ns, name, rest);
      if (action == "paths-info" && s.size() >= 6 && m == "POST")
        return paths_info(c, t, ns, name, rest);
      if (action == "preupload" && s.size() >= 6 && m == "POST")
        return preupload(c, t, ns, name, rest);
      if (action == "commit" && s.size() >= 6 && m == "POST") return commit(c, t, ns, name, rest);
      if (action == "branch" && s.size() >= 6) return branch(c, t, ns, name, rest);
      if (action == "tag" && s.size() >= 6) return tag(c, t, ns, name, rest);
      if (action == "settings" && s.size() == 5 && m == "PUT") return settings(c, t, ns, name);
      if (action == "like" && s.size() == 5 && (m == "POST" || m == "DELETE"))
        return like(c, t, ns, name, m == "POST");
      if (action == "likers" && s.size() == 5 && m == "GET") return likers(c, t, ns, name);
      if (action == "user-access-request" && s.size() <= 6)
        return access_request(c, t, ns, name, s.size() == 6 ? s[5] : "");
      throw HubError(404, "", "not found");
    }
    size_t i = 0;
    RepoType t = RepoType::Model;
    if (s[0] == "datasets")
      t = RepoType::Dataset, i = 1;
    else if (s[0] == "spaces")
      t = RepoType::Space, i = 1;
    if (s.size() >= i + 2 && s[i + 1].size() > 4 && s[i + 1].ends_with(".git")) {
      if (s.size() == i + 6 && s[i + 2] == "info" && s[i + 3] == "lfs" && s[i + 4] == "objects" &&
          s[i + 5] == "batch" && m == "POST")
        return lfs_batch(c, t, s[i], s[i + 1].substr(0, s[i + 1].size() - 4));
      throw HubError(404, "", "git protocol is not supported");
    }
    if (s.size() >= i + 5 && s[i + 2] == "resolve" && (m == "GET" || m == "HEAD"))
      return resolve(c, t, s[i], s[i + 1], s[i + 3], join(s, i + 4));
    if (s[0] == "login" || s[0] == "logout" || s[0] == "admin") return web_account(c);
    if (m == "GET" || m == "HEAD") {
      const WebContext wx = web_context(c);
      auto page = render_web_ui(
          hub, c.caller, s, [&](const std::string& k) { return c.param(k); }, wx);
      if (page) return send_page(c, *page);
    }
    throw HubError(404, "", "not found");
  }

  // Web UI pages: no inline scripts or styles are ever emitted, so the policy can forbid them.
  void send_page(Ctx& c, const WebPage& page) {
    c.res.status = page.status;
    c.res.set_header("Content-Security-Policy",
                     "default-src 'self'; img-src * data:; script-src 'self'; style-src 'self'; "
                     "object-src 'none'; base-uri 'none'; form-action 'self'; "
                     "frame-ancestors 'none'");
    c.res.set_header("X-Content-Type-Options", "nosniff");
    c.res.set_header("Referrer-Policy", "same-origin");
    c.res.set_header("Cache-Control", c.seg.size() == 2 && c.seg[0] == "static"
                                          ? "public, max-age=300"
                                          : "no-cache");
    c.res.set_content(page.body, page.content_type);
  }

  // ------------------------------------------------------------------ read API
  void resolve(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
               const std::string& rev, const std::string& path) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    hub.check_gate(c.caller, r);
    const std::string commit = hub.resolve(r, rev);
    if (auto e = check_file_path(path); !e.empty()) throw HubError(400, "", "Invalid path: " + e);
    auto f = hub.file(r, commit, path);
    if (!f) throw HubError(404, "EntryNotFound", "Entry not found: " + path, commit);
    const BlobKind kind = f->lfs ? BlobKind::Lfs : BlobKind::Git;
    const std::string key = f->lfs ? f->lfs->sha256 : f->oid;
    std::shared_ptr<BlobReader> rd = hub.blobs().open(kind, key);
    const uint64_t size = rd->size();
    auto& res = c.res;
    res.set_header("X-Repo-Commit", commit);
    res.set_header("ETag", "\"" + key + "\"");
    res.set_header("X-Linked-Etag", "\"" + key + "\"");
    res.set_header("X-Linked-Size", std::to_string(size));
    res.set_header("Accept-Ranges", "bytes");
    res.set_header("Cache-Control", "no-transform");
    const std::string base =
        path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    std::string ascii;
    for (unsigned char ch : base)
      ascii.push_back(ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' ? '_'
                                                                         : static_cast<char>(ch));
    res.set_header("Content-Disposition", "inline; filename*=UTF-8''" +
                                              percent_encode(base, false) + "; filename=\"" +
                                              ascii + "\";");
    uint64_t start = 0, end = size;  // [start, end)
    const std::string range = c.req.get_header_value("Range");
    const_cast<httplib::Request&>(c.req).ranges.clear();  // ranges are handled here, not by httplib
    int status = 200;
    if (!range.empty()) {
      bool ok = range.starts_with("bytes=") && range.find(',') == std::string::npos;
      uint64_t a = 0, b = 0;
      if (ok) {
        std::string spec = range.substr(6);
        size_t dash = spec.find('-');
        std::string sa = dash == std::string::npos ? "" : spec.substr(0, dash);
        std::string sb = dash == std::string::npos ? "" : spec.substr(dash + 1);
        auto num = [](const std::string& x, uint64_t& v) {
          if (x.empty() || x.size() > 19 || x.find_first_not_of("0123456789") != std::string::npos)
            return false;
          v = std::stoull(x);
          return true;
        };
        if (dash == std::string::npos)
          ok = false;
        else if (sa.empty()) {  // suffix: last N bytes
          uint64_t n = 0;
          ok = num(sb, n) && n > 0 && size > 0;
          if (ok) a = n >= size ? 0 : size - n, b = size;
        } else {
          ok = num(sa, a);
          b = size;
          if (ok && !sb.empty()) {
            uint64_t last = 0;
            ok = num(sb, last) && last >= a;
            if (ok) b = std::min<uint64_t>(last + 1, size);
          }
          if (ok && a >= size) ok = false;
        }
      }
      if (!ok) {
        res.set_header("Content-Range", "bytes */" + std::to_string(size));
        throw HubError(416, "", "Requested Range Not Satisfiable: " + range);
      }
      start = a, end = b, status = 206;
      res.set_header("Content-Range", "bytes " + std::to_string(start) + "-" +
                                          std::to_string(end - 1) + "/" + std::to_string(size));
    }
    res.status = status;
    if (!c.head && start == 0 && Hub::counts_as_download(t, path)) hub.count_download(r);
    const uint64_t len = end - start;
    if (len == 0) {
      res.set_content("", "application/octet-stream");
      return;
    }
    res.set_content_provider(static_cast<size_t>(len), "application/octet-stream",
                             [rd, start, buf = std::make_shared<std::vector<char>>()](
                                 size_t offset, size_t length, httplib::DataSink& sink) {
                               // one buffer per response, not one allocation per chunk
                               if (buf->empty()) buf->resize(std::min<size_t>(length, 1u << 20));
                               size_t n = rd->read_at(start + offset, buf->data(),
                                                      std::min(length, buf->size()));
                               if (n == 0) return false;
                               return sink.write(buf->data(), n);
                             });
  }

  json sibling_json(const FileEntry& f) {
    json s = {{"rfilename", f.path}, {"size", f.size}, {"blobId", f.oid}};
    if (f.lfs)
      s["lfs"] = {
          {"sha256", f.lfs->sha256}, {"size", f.lfs->size}, {"pointerSize", f.lfs->pointer_size}};
    return s;
  }

  json repo_summary(const RepoInfo& r) {
    json j;
    j["_id"] = "ohm" + std::to_string(r.id);
    j["id"] = r.full_id();
    if (r.type == RepoType::Model) j["modelId"] = r.full_id();
    j["author"] = r.ns;
    j["private"] = r.is_private;
    j["gated"] = r.gated.empty() ? json(false) : json(r.gated);
    j["disabled"] = false;
    j["downloads"] = r.downloads;
    j["downloadsAllTime"] = r.downloads;
    j["likes"] = r.likes;
    j["trendingScore"] = 0;
    j["createdAt"] = iso_date(r.created_ms);
    j["lastModified"] = iso_date(r.modified_ms);
    json tags = json::parse(r.tags_json, nullptr, false);
    j["tags"] = tags.is_array() ? tags : json::array();
    if (!r.pipeline_tag.empty()) j["pipeline_tag"] = r.pipeline_tag;
    if (!r.library_name.empty()) j["library_name"] = r.library_name;
    return j;
  }

  void repo_info(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
                 const std::string& rev) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    const std::string commit = hub.resolve(r, rev.empty() ? "main" : rev);
    auto files = hub.files(r, commit);
    json j = repo_summary(r);
    j["sha"] = commit;
    json card = hub.card(r, commit);
    j["cardData"] = card;
    std::vector<std::string> paths;
    json sib = json::array();
    uint64_t used = 0;
    for (auto& f : files) {
      paths.push_back(f.path);
      sib.push_back(sibling_json(f));
      used += f.size;
    }
    j["tags"] = derive_tags(card, paths);
    if (card.contains("pipeline_tag") && card["pipeline_tag"].is_string())
      j["pipeline_tag"] = card["pipeline_tag"];
    if (card.contains("library_name") && card["library_name"].is_string())
      j["library_name"] = card["library_name"];
    j["siblings"] = sib;
    j["usedStorage"] = used;
    j["spaces"] = json::array();
    j["xetEnabled"] = false;
    if (auto cf = hub.file(r, commit, "config.json");
        cf && !cf->lfs && cf->size < (1u << 20) && t == RepoType::Model) {
      json cfg =
          json::parse(hub.blobs().read_all(BlobKind::Git, cf->oid, 1u << 20), nullptr, false);
      if (cfg.is_object()) {
        json sub = json::object();
        for (const char* k : {"architectures", "model_type"})
          if (cfg.contains(k)) sub[k] = cfg[k];
        j["config"] = sub;
      }
    }
    if (t == RepoType::Dataset) {
      j["description"] = "";
      j["citation"] = "";
      j["paperswithcode_id"] = nullptr;
    }
    if (t == RepoType::Space && card.contains("sdk")) j["sdk"] = card["sdk"];
    send_json(c, j);
  }

  void set_next_link(Ctx& c, size_t next_cursor) {
    std::string q;
    auto add = [&q](const std::string& key, const std::string& value) {
      if (!q.empty()) q += '&';
      q.append(key).append("=").append(value);
    };
    for (const auto& [k, v] : c.req.params)
      if (k != "cursor") add(percent_encode(k, false), percent_encode(v, false));
    add("cursor", std::to_string(next_cursor));
    const std::string path = c.req.target.substr(0, c.req.target.find('?'));
    std::string link = "<";
    link.append(c.base).append(path).append("?").append(q).append(">; rel=\"next\"");
    c.res.set_header("Link", link);
  }

  size_t cursor(Ctx& c) {
    std::string v = c.param("cursor");
    if (v.empty()) return 0;
    if (v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos)
      throw HubError(400, "", "invalid cursor");
    return std::stoull(v);
  }

  void list_repos(Ctx& c, RepoType t) {
    auto lower = [](std::string s) {
      std::transform(s.begin(), s.end(), s.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      return s;
    };
    const std::string author = lower(c.param("author"));
    std::vector<std::string> searches, filters = c.params("filter");
    for (auto& s : c.params("search")) searches.push_back(lower(s));
    for (const char* k : {"pipeline_tag", "library", "language"})
      for (auto& v : c.params(k)) filters.push_back(v);
    const bool full = truthy(c.param("full"));
    const bool card_data = full || truthy(c.param("cardData"));
    std::vector<RepoInfo> out;
    for (auto& r : hub.meta().list_repos(t)) {
      if (!hub.can_read(c.caller, r)) continue;
      if (!author.empty() && lower(r.ns) != author) continue;
      const std::string id = lower(r.full_id());
      bool ok = true;
      for (auto& s : searches)
        if (id.find(s) == std::string::npos) ok = false;
      if (ok && !filters.empty()) {
        json tags = json::parse(r.tags_json, nullptr, false);
        std::set<std::string> ts;
        if (tags.is_array())
          for (auto& x : tags)
            if (x.is_string()) ts.insert(x.get<std::string>());
        ts.insert(r.pipeline_tag);
        ts.insert(r.library_name);
        for (auto& f : filters)
          if (!ts.count(f)) ok = false;
      }
      if (ok) out.push_back(std::move(r));
    }
    const std::string sort = c.param("sort");
    const bool asc = c.param("direction") == "1";
    auto key = [&](const RepoInfo& r) -> int64_t {
      if (sort == "downloads" || sort == "trendingScore" || sort == "trending_score")
        return r.downloads;
      if (sort == "likes") return r.likes;
      if (sort == "lastModified" || sort == "last_modified") return r.modified_ms;
      if (sort == "createdAt" || sort == "created_at") return r.created_ms;
      return 0;
    };
    if (!sort.empty())
      std::stable_sort(out.begin(), out.end(), [&](const RepoInfo& a, const RepoInfo& b) {
        return asc ? key(a) < key(b) : key(a) > key(b);
      });
    size_t page = opt.page_size;
    if (std::string l = c.param("limit"); !l.empty()) {
      if (l.size() > 9 || l.find_first_not_of("0123456789") != std::string::npos)
        throw HubError(400, "", "invalid limit");
      page = std::min<size_t>(page, std::max<size_t>(1, std::stoull(l)));
    }
    const size_t from = std::min(cursor(c), out.size());
    const size_t to = std::min(out.size(), from + page);
    json arr = json::array();
    for (size_t i = from; i < to; ++i) {
      json j = repo_summary(out[i]);
      if (card_data) j["cardData"] = json::parse(out[i].card_json, nullptr, false);
      if (full) {
        const std::string sha = hub.resolve(out[i], "main");
        j["sha"] = sha;
        json sib = json::array();
        for (auto& f : hub.files(out[i], sha)) sib.push_back({{"rfilename", f.path}});
        j["siblings"] = sib;
      }
      arr.push_back(std::move(j));
    }
    if (to < out.size()) set_next_link(c, to);
    send_json(c, arr);
  }

  std::string dir_oid(const std::vector<FileEntry>& files, const std::string& dir) {
    Hasher h(Hasher::Algo::Sha1);
    const std::string pre = dir + "/";
    for (auto& f : files)
      if (f.path.starts_with(pre)) h.update(f.path + ":" + f.oid + "\n");
    return h.hex();
  }

  json entry_json(const RepoInfo& r, const std::string& commit, const std::vector<FileEntry>& files,
                  const std::string& path, const FileEntry* f, bool expand) {
    json e;
    if (f) {
      e = {{"type", "file"}, {"oid", f->oid}, {"size", f->size}, {"path", f->path}};
      if (f->lfs)
        e["lfs"] = {
            {"oid", f->lfs->sha256}, {"size", f->lfs->size}, {"pointerSize", f->lfs->pointer_size}};
    } else {
      e = {{"type", "directory"}, {"oid", dir_oid(files, path)}, {"size", 0}, {"path", path}};
    }
    if (expand) {
      if (auto lc = hub.last_change(r, commit, path))
        e["lastCommit"] = {{"id", lc->id}, {"title", lc->title}, {"date", iso_date(lc->date_ms)}};
    }
    return e;
  }

  void tree(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
            const std::string& rev, std::string path) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    const std::string commit = hub.resolve(r, rev);
    while (!path.empty() && path.back() == '/') path.pop_back();
    if (!path.empty())
      if (auto e = check_file_path(path); !e.empty()) throw HubError(400, "", "Invalid path: " + e);
    const bool recursive = truthy(c.param("recursive"));
    const bool expand = truthy(c.param("expand"));
    auto files = hub.files(r, commit);
    const std::string pre = path.empty() ? "" : path + "/";
    std::map<std::string, const FileEntry*> entries;  // path -> file (nullptr: directory)
    for (auto& f : files) {
      if (!f.path.starts_with(pre)) continue;
      const std::string rel = f.path.substr(pre.size());
      size_t slash = rel.find('/');
      if (!recursive) {
        if (slash == std::string::npos)
          entries[f.path] = &f;
        else
          entries.emplace(pre + rel.substr(0, slash), nullptr);
      } else {
        entries[f.path] = &f;
        while (slash != std::string::npos) {
          entries.emplace(pre + rel.substr(0, slash), nullptr);
          slash = rel.find('/', slash + 1);
        }
      }
    }
    if (entries.empty() && !path.empty())
      throw HubError(404, "EntryNotFound", "Entry not found: " + path, commit);
    std::vector<std::pair<std::string, const FileEntry*>> list(entries.begin(), entries.end());
    const size_t from = std::min(cursor(c), list.size());
    const size_t to = std::min(list.size(), from + opt.page_size);
    json arr = json::array();
    for (size_t i = from; i < to; ++i)
      arr.push_back(entry_json(r, commit, files, list[i].first, list[i].second, expand));
    if (to < list.size()) set_next_link(c, to);
    send_json(c, arr);
  }

  void paths_info(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
                  const std::string& rev) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    const std::string commit = hub.resolve(r, rev);
    const std::string body = read_body(c, opt.max_json_bytes);
    std::vector<std::string> paths;
    bool expand = false;
    if (c.req.get_header_value("Content-Type").starts_with("application/json")) {
      json j = parse_object(body, "paths-info body");
      if (j.contains("paths") && j["paths"].is_array())
        for (auto& p : j["paths"])
          if (p.is_string()) paths.push_back(p.get<std::string>());
      expand = j.value("expand", false) == true;
    } else {
      size_t pos = 0;
      while (pos <= body.size()) {
        size_t amp = body.find('&', pos);
        if (amp == std::string::npos) amp = body.size();
        std::string kv = body.substr(pos, amp - pos);
        size_t eq = kv.find('=');
        std::string k, v;
        if (eq != std::string::npos && percent_decode(kv.substr(0, eq), k, true) &&
            percent_decode(kv.substr(eq + 1), v, true)) {
          if (k == "paths") paths.push_back(v);
          if (k == "expand") expand = truthy(v);
        }
        pos = amp + 1;
      }
    }
    auto files = hub.files(r, commit);
    json arr = json::array();
    for (auto p : paths) {
      while (!p.empty() && p.back() == '/') p.pop_back();
      if (!check_file_path(p).empty()) continue;
      const FileEntry* hit = nullptr;
      bool dir = false;
      for (auto& f : files) {
        if (f.path == p)
          hit = &f;
        else if (f.path.starts_with(p + "/"))
          dir = true;
      }
      if (hit || dir) arr.push_back(entry_json(r, commit, files, p, hit, expand));
    }
    send_json(c, arr);
  }

  void refs(Ctx& c, RepoType t, const std::string& ns, const std::string& name) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    json branches = json::array(), tags = json::array();
    for (auto& ref : hub.meta().refs(r.id)) {
      json e = {{"name", ref.name},
                {"ref", (ref.is_tag ? "refs/tags/" : "refs/heads/") + ref.name},
                {"targetCommit", ref.commit}};
      (ref.is_tag ? tags : branches).push_back(e);
    }
    json j = {{"branches", branches}, {"converts", json::array()}, {"tags", tags}};
    if (truthy(c.param("include_prs"))) j["pullRequests"] = json::array();
    send_json(c, j);
  }

  void commits(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
               const std::string& rev) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    const std::string commit = hub.resolve(r, rev);
    const size_t from = cursor(c);
    auto hist = hub.history(r, commit, from + opt.page_size + 1);
    const bool formatted = !c.params("expand[]").empty() || !c.params("expand").empty();
    json arr = json::array();
    for (size_t i = from; i < hist.size() && i < from + opt.page_size; ++i) {
      const auto& h = hist[i];
      json e = {{"id", h.id},
                {"title", h.title},
                {"message", h.message},
                {"date", iso_date(h.date_ms)},
                {"authors", json::array({{{"user", h.author}}})}};
      if (formatted) e["formatted"] = {{"title", h.title}, {"message", h.message}};
      arr.push_back(e);
    }
    if (hist.size() > from + opt.page_size) set_next_link(c, from + opt.page_size);
    send_json(c, arr);
  }

  void whoami(Ctx& c) {
    if (c.caller.anonymous())
      throw HubError(401, "", "Invalid user token. Please provide a valid token.");
    auto u = hub.meta().get_user(c.caller.user);
    json orgs = json::array();
    for (auto& o : c.caller.orgs)
      orgs.push_back({{"type", "org"}, {"name", o}, {"fullname", o}, {"roleInOrg", "write"}});
    send_json(
        c, {{"type", "user"},
            {"id", "ohm-" + c.caller.user},
            {"name", c.caller.user},
            {"fullname", u ? u->fullname : ""},
            {"email", u && !u->email.empty() ? json(u->email) : json(nullptr)},
            {"emailVerified", true},
            {"isPro", false},
            {"canPay", false},
            {"orgs", orgs},
            {"auth",
             {{"type", "access_token"},
              {"accessToken", {{"displayName", c.caller.token_name}, {"role", c.caller.scope}}}}}});
  }

  // ------------------------------------------------------------------ write API
  void validate_yaml(Ctx& c) {
    json j = parse_object(read_body(c, opt.max_json_bytes), "validate-yaml body");
    ModelCard card = parse_model_card(get_str(j, "content", "validate-yaml body"));
    if (!card.error.empty())
      return send_json(c, {{"errors", json::array({{{"message", card.error}}})}}, 400);
    send_json(c, {{"errors", json::array()}, {"warnings", json::array()}});
  }

  std::tuple<RepoType, std::string, std::string> repo_from_body(Ctx& c, const json& j,
                                                                const char* what) {
    std::string name = get_str(j, "name", what), ns = get_str(j, "organization", what);
    if (name.find('/') != std::string::npos) {
      ns = name.substr(0, name.find('/'));
      name = name.substr(name.find('/') + 1);
      if (ns.empty() || name.find('/') != std::string::npos)
        throw HubError(400, "", std::string(what) + ": invalid repo id (expected namespace/name)");
    }
    if (ns.empty()) ns = c.caller.user;
    RepoType t = RepoType::Model;
    if (std::string ty = get_str(j, "type", what); !ty.empty() && !parse_repo_type(ty, t))
      throw HubError(400, "", std::string(what) + ": unknown repo type '" + ty + "'");
    if (name.empty()) throw HubError(400, "", std::string(what) + ": 'name' is required");
    return {t, ns, name};
  }

  void repo_create(Ctx& c) {
    // refused before the body is read: an anonymous client gets no worker time for its upload
    if (c.caller.anonymous()) throw HubError(401, "", "You must be authenticated to create a repo");
    json j = parse_object(read_body(c, opt.max_json_bytes), "create repo body");
    auto [t, ns, name] = repo_from_body(c, j, "create repo body");
    bool priv = false;
    if (j.contains("private") && j["private"].is_boolean()) priv = j["private"].get<bool>();
    if (std::string v = get_str(j, "visibility", "create repo body"); !v.empty())
      priv = v != "public";
    const std::string url = c.base + "/" + url_prefix(t) + ns + "/" + name;
    try {
      RepoInfo r = hub.create_repo(c.caller, t, ns, name, priv);
      send_json(c, {{"url", url}, {"name", r.full_id()}, {"id", "ohm" + std::to_string(r.id)}});
    } catch (const HubError& e) {
      if (e.status != 409) throw;
      c.res.set_header("X-Error-Message", header_safe(e.what()));
      send_json(c, {{"error", e.what()}, {"url", url}}, 409);
    }
  }

  void repo_delete(Ctx& c) {
    json j = parse_object(read_body(c, opt.max_json_bytes), "delete repo body");
    auto [t, ns, name] = repo_from_body(c, j, "delete repo body");
    hub.delete_repo(c.caller, t, ns, name);
    send_json(c, json::object());
  }

  void settings(Ctx& c, RepoType t, const std::string& ns, const std::string& name) {
    RepoInfo r = hub.repo_for_write(c.caller, t, ns, name);
    json j = parse_object(read_body(c, opt.max_json_bytes), "settings body");
    bool priv = r.is_private;
    std::string gated = r.gated;
    if (j.contains("private") && j["private"].is_boolean()) priv = j["private"].get<bool>();
    if (std::string v = get_str(j, "visibility", "settings body"); !v.empty()) priv = v != "public";
    if (j.contains("gated")) {
      if (j["gated"].is_boolean() && !j["gated"].get<bool>())
        gated = "";
      else if (j["gated"].is_string() && (j["gated"] == "auto" || j["gated"] == "manual"))
        gated = j["gated"];
      else
        throw HubError(400, "", "settings: gated must be false, \"auto\" or \"manual\"");
    }
    hub.meta().update_repo_settings(r.id, priv, gated);
    send_json(c, {{"private", priv}, {"gated", gated.empty() ? json(false) : json(gated)}});
  }

  // ------------------------------------------------------------------ likes
  void like(Ctx& c, RepoType t, const std::string& ns, const std::string& name, bool on) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    const int64_t n = hub.like(c.caller, r, on);
    send_json(c, {{"likes", n}});
  }

  void likers(Ctx& c, RepoType t, const std::string& ns, const std::string& name) {
    RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
    json arr = json::array();
    for (auto& [user, ms] : hub.meta().likers(r.id)) {
      auto u = hub.meta().get_user(user);
      arr.push_back({{"user", user},
                     {"fullname", u ? u->fullname : ""},
                     {"avatarUrl", ""},
                     {"type", "user"},
                     {"isPro", false}});
      (void)ms;
    }
    send_json(c, arr);
  }

  void user_likes(Ctx& c, const std::string& user) {
    if (!check_name(user, true).empty() || !hub.meta().get_user(user))
      throw HubError(404, "", "User not found");
    json arr = json::array();
    for (auto& l : hub.meta().likes_of(user)) {
      auto r = hub.meta().get_repo(l.type, l.ns, l.name);
      if (!r || !hub.can_read(c.caller, *r)) continue;
      arr.push_back({{"createdAt", iso_date(l.created_ms)},
                     {"repo", {{"name", r->full_id()}, {"type", to_string(r->type)}}}});
    }
    send_json(c, arr);
  }

  // ------------------------------------------------------------------ gated access
  // POST .../user-access-request (the caller asks), GET .../{pending,accepted,rejected},
  // POST .../handle {"user"|"requestId", "status"}, POST .../grant {"user"} (repo writers).
  void access_request(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
                      const std::string& sub) {
    const std::string& m = c.req.method;
    if (sub.empty()) {
      if (m != "POST") throw HubError(405, "", "method not allowed");
      RepoInfo r = hub.repo_for_read(c.caller, t, ns, name);
      json j = parse_object(read_body(c, opt.max_json_bytes), "access request body");
      json fields = j.contains("fields") && j["fields"].is_object() ? j["fields"] : json::object();
      const std::string st = hub.request_access(c.caller, r, dump(fields));
      return send_json(c, {{"status", st}});
    }
    RepoInfo r = hub.repo_for_write(c.caller, t, ns, name);
    if (m == "GET" && (sub == "pending" || sub == "accepted" || sub == "rejected")) {
      if (r.gated.empty()) throw HubError(400, "", r.full_id() + " is not a gated repo");
      json arr = json::array();
      for (auto& a : hub.meta().access_requests(r.id, sub)) {
        auto u = hub.meta().get_user(a.user);
        json fields = json::parse(a.fields_json, nullptr, false);
        json e = {{"user",
                   {{"user", a.user},
                    {"fullname", u ? u->fullname : ""},
                    {"email", u && !u->email.empty() ? json(u->email) : json(nullptr)},
                    {"avatarUrl", ""}}},
                  {"requestId", access_request_id(r, a.user)},
                  {"status", a.status},
                  {"timestamp", iso_date(a.created_ms)}};
        if (fields.is_object() && !fields.empty()) e["fields"] = fields;
        arr.push_back(std::move(e));
      }
      return send_json(c, arr);
    }
    if (m != "POST" || (sub != "handle" && sub != "grant"))
      throw HubError(404, "", "unsupported access request operation");
    json j = parse_object(read_body(c, opt.max_json_bytes), "access request body");
    std::string user = get_str(j, "user", "access request body");
    if (user.empty()) {
      const std::string id = get_str(j, "requestId", "access request body");
      for (const char* st : {"pending", "accepted", "rejected"})
        for (auto& a : hub.meta().access_requests(r.id, st))
          if (!id.empty() && access_request_id(r, a.user) == id) user = a.user;
      if (user.empty()) throw HubError(404, "", "Access request not found");
    }
    if (sub == "grant") {
      hub.grant_access(r, user);
    } else {
      hub.handle_access(r, user, get_str(j, "status", "access request body"));
    }
    send_json(c, json::object());
  }

  static std::string access_request_id(const RepoInfo& r, const std::string& user) {
    return sha256_hex("access|" + std::to_string(r.id) + "|" + user).substr(0, 24);
  }

  void preupload(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
                 const std::string& rev) {
    RepoInfo r = hub.repo_for_write(c.caller, t, ns, name);
    json j = parse_object(read_body(c, opt.max_json_bytes), "preupload body");
    if (!j.contains("files") || !j["files"].is_array())
      throw HubError(400, "", "preupload body: 'files' must be a list");
    const std::string commit = hub.resolve(r, rev);
    auto files = hub.files(r, commit);
    std::map<std::string, const FileEntry*> by_path;
    for (auto& f : files) by_path[f.path] = &f;
    json out = json::array();
    for (auto& f : j["files"]) {
      if (!f.is_object()) throw HubError(400, "", "preupload body: each file must be an object");
      const std::string path = get_str(f, "path", "preupload file");
      if (auto e = check_file_path(path); !e.empty())
        throw HubError(400, "", "Invalid path '" + path + "': " + e);
      uint64_t size = 0;
      if (f.contains("size")) {
        if (!f["size"].is_number_unsigned() && !f["size"].is_number_integer())
          throw HubError(400, "", "preupload: size must be an integer");
        size = f["size"].get<uint64_t>();
      }
      std::string sample;
      base64_decode(get_str(f, "sample", "preupload file"), sample);
      json e = {{"path", path},
                {"uploadMode", hub.upload_mode(r, commit, path, size, sample)},
                {"shouldIgnore", false}};
      if (auto it = by_path.find(path); it != by_path.end())
        e["oid"] = it->second->lfs ? it->second->lfs->sha256 : it->second->oid;
      out.push_back(e);
    }
    send_json(c, {{"files", out}, {"commitOid", commit}});
  }

  // Upload URLs are signed for one object, size, expiry and repo: the PUT grants the object to
  // that repo (LFS objects are stored once but scoped to the repos they were uploaded to).
  std::string lfs_sig(const std::string& oid, uint64_t size, int64_t exp, int64_t repo) {
    return sha256_hex(secret + "|" + oid + "|" + std::to_string(size) + "|" + std::to_string(exp) +
                      "|" + std::to_string(repo));
  }

  void lfs_batch(Ctx& c, RepoType t, const std::string& ns, const std::string& name) {
    json j = parse_object(read_body(c, opt.max_json_bytes), "LFS batch body");
    const std::string op = get_str(j, "operation", "LFS batch body");
    RepoInfo r = op == "upload" ? hub.repo_for_write(c.caller, t, ns, name)
                                : hub.repo_for_read(c.caller, t, ns, name);
    if (op != "upload" && op != "download")
      throw HubError(400, "", "LFS batch: unknown operation '" + op + "'");
    if (!j.contains("objects") || !j["objects"].is_array())
      throw HubError(400, "", "LFS batch: 'objects' must be a list");
    const int64_t exp = now_s() + 3600;
    json objs = json::array();
    for (auto& o : j["objects"]) {
      if (!o.is_object()) throw HubError(400, "", "LFS batch: each object must be an object");
      const std::string oid = get_str(o, "oid", "LFS object");
      int64_t size =
          o.contains("size") && o["size"].is_number_integer() ? o["size"].get<int64_t>() : -1;
      json e = {{"oid", oid}, {"size", size}};
      if (!is_hex(oid, 64) || size < 0) {
        e["error"] = {{"code", 422}, {"message", "invalid oid or size"}};
      } else if (static_cast<uint64_t>(size) > opt.max_lfs_bytes) {
        e["error"] = {{"code", 422}, {"message", "object larger than the server limit"}};
      } else if (op == "upload") {
        // Objects the caller cannot already read get an upload action exactly as if absent: the
        // answer never says whether the Hub stores an oid elsewhere.
        auto have = hub.blobs().size(BlobKind::Lfs, oid);
        if (!have || *have != static_cast<uint64_t>(size) || !hub.lfs_visible(c.caller, r, oid)) {
          e["authenticated"] = true;
          e["actions"] = {
              {"upload",
               {{"href", c.base + "/api/lfs-upload/" + oid + "?size=" + std::to_string(size) +
                             "&exp=" + std::to_string(exp) + "&repo=" + std::to_string(r.id) +
                             "&sig=" + lfs_sig(oid, size, exp, r.id)},
                {"expires_in", 3600}}},
              {"verify",
               {{"href", c.base + "/api/lfs-verify/" + plural(t) + "/" + r.full_id()},
                {"expires_in", 3600}}}};
        }
      } else {
        if (!hub.lfs_visible(c.caller, r, oid) || !hub.blobs().has(BlobKind::Lfs, oid))
          e["error"] = {{"code", 404}, {"message", "object not found"}};
      }
      objs.push_back(e);
    }
    c.res.status = 200;
    c.res.set_content(dump({{"transfer", "basic"}, {"objects", objs}, {"hash_algo", "sha256"}}),
                      "application/vnd.git-lfs+json");
  }

  void lfs_put(Ctx& c, const std::string& oid) {
    const std::string ssize = c.param("size"), sexp = c.param("exp"), sig = c.param("sig");
    const std::string srepo = c.param("repo");
    auto digits = [](const std::string& v) {
      return !v.empty() && v.size() <= 15 && v.find_first_not_of("0123456789") == std::string::npos;
    };
    if (!is_hex(oid, 64) || !digits(ssize) || !digits(sexp) || !digits(srepo)) {
      c.res.set_header("Connection", "close");
      throw HubError(400, "", "malformed LFS upload URL");
    }
    const uint64_t size = std::stoull(ssize);
    const int64_t exp = std::stoll(sexp);
    const int64_t repo_id = std::stoll(srepo);
    const std::string want = lfs_sig(oid, size, exp, repo_id);
    unsigned diff = want.size() != sig.size();
    for (size_t i = 0; i < std::min(want.size(), sig.size()); ++i)
      diff |= static_cast<unsigned>(want[i] ^ sig[i]);
    if (diff || exp < now_s()) {
      c.res.set_header("Connection", "close");
      throw HubError(403, "", "invalid or expired LFS upload URL");
    }
    if (c.req.has_header("Content-Length") && c.req.get_header_value("Content-Length") != ssize) {
      c.res.set_header("Connection", "close");
      throw HubError(400, "", "Content-Length does not match the announced object size");
    }
    auto w = hub.blobs().lfs_writer();
    bool too_big = false;
    c.consumed = true;
    bool ok = c.reader ? (*c.reader)([&](const char* d, size_t n) {
      if (w->written() + n > size) {
        too_big = true;
        return false;
      }
      w->write(d, n);
      return true;
    })
                       : (w->write(c.req.body.data(), c.req.body.size()), true);
    if (!ok || too_big) {
      c.res.set_header("Connection", "close");
      throw HubError(400, "", too_big ? "more data than the announced size" : "upload interrupted");
    }
    // The bytes are hashed even when the object is already stored: only someone holding the
    // content can get it granted to their repo.
    w->commit(oid, size);  // InvalidArgument (-> 400) on mismatch; temp file removed
    hub.meta().grant_lfs(repo_id, oid, "");
    send_json(c, json::object());
  }

  void lfs_verify(Ctx& c) {
    RepoType t;
    if (!parse_repo_type(c.seg[2], t)) throw HubError(404, "", "not found");
    RepoInfo r = hub.repo_for_write(c.caller, t, c.seg[3], c.seg[4]);
    json j = parse_object(read_body(c, opt.max_json_bytes), "LFS verify body");
    const std::string oid = get_str(j, "oid", "LFS verify body");
    if (!is_hex(oid, 64)) throw HubError(400, "", "LFS verify: invalid oid");
    auto have = hub.blobs().size(BlobKind::Lfs, oid);
    if (!have || !hub.lfs_visible(c.caller, r, oid))
      throw HubError(404, "", "LFS object " + oid + " not found for this repository");
    if (j.contains("size") && j["size"].is_number_integer() && j["size"].get<uint64_t>() != *have)
      throw HubError(422, "", "LFS object " + oid + " has a different size");
    send_json(c, {{"message", "Verified"}});
  }

  void commit(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
              const std::string& rev) {
    RepoInfo r = hub.repo_for_write(c.caller, t, ns, name);
    if (truthy(c.param("create_pr")))
      throw HubError(400, "", "pull requests are not supported by this hub");
    if (auto e = check_revision(rev); !e.empty()) throw HubError(400, "", "Invalid revision: " + e);
    const std::string body = read_body(c, opt.max_commit_bytes);
    std::string summary, description, parent;
    std::vector<CommitOp> ops;
    auto path_of = [](const json& v, const std::string& what) {
      // present; its value (even "") is validated by Hub::commit, whose errors name it
      if (!v.contains("path")) throw HubError(400, "", what + ": 'path' is required");
      return get_str(v, "path", what);
    };
    auto add_file = [&](const json& v) {
      CommitOp op;
      op.kind = CommitOp::Kind::File;
      op.path = path_of(v, "file");
      const std::string content = get_str(v, "content", "file");
      const std::string enc = get_str(v, "encoding", "file");
      if (enc == "base64" || enc.empty()) {
        if (!base64_decode(content, op.content))
          throw HubError(400, "", "file " + op.path + ": invalid base64 content");
      } else if (enc == "utf-8" || enc == "utf8") {
        op.content = content;
      } else {
        throw HubError(400, "", "file " + op.path + ": unknown encoding '" + enc + "'");
      }
      ops.push_back(std::move(op));
    };
    auto add_lfs = [&](const json& v) {
      CommitOp op;
      op.kind = CommitOp::Kind::LfsFile;
      op.path = path_of(v, "lfsFile");
      op.sha256 = get_str(v, "oid", "lfsFile");
      if (std::string algo = get_str(v, "algo", "lfsFile"); !algo.empty() && algo != "sha256")
        throw HubError(400, "", "lfsFile " + op.path + ": unsupported algo '" + algo + "'");
      if (v.contains("size") && !v["size"].is_null()) {
        if (!v["size"].is_number_integer() || v["size"].get<int64_t>() < 0)
          throw HubError(400, "", "lfsFile: size must be a non-negative integer");
        op.size = v["size"].get<uint64_t>();
      }
      ops.push_back(std::move(op));
    };
    auto add_del = [&](const json& v, bool folder) {
      CommitOp op;
      op.kind = folder ? CommitOp::Kind::DeleteFolder : CommitOp::Kind::DeleteFile;
      op.path = path_of(v, folder ? "deletedFolder" : "deletedFile");
      ops.push_back(std::move(op));
    };
    if (c.req.get_header_value("Content-Type").starts_with("application/json")) {
      json j = parse_object(body, "commit body");
      summary = get_str(j, "summary", "commit body");
      description = get_str(j, "description", "commit body");
      parent = get_str(j, "parentCommit", "commit body");
      auto list = [&](const char* k) {
        if (!j.contains(k)) return json::array();
        if (!j[k].is_array())
          throw HubError(400, "", std::string("commit body: '") + k + "' must be a list");
        return j[k];
      };
      for (auto& v : list("files")) add_file(v);
      for (auto& v : list("lfsFiles")) add_lfs(v);
      for (auto& v : list("deletedFiles")) add_del(v, false);
      for (auto& v : list("deletedFolders")) add_del(v, true);
    } else {
      size_t pos = 0, lineno = 0;
      bool have_header = false;
      while (pos < body.size()) {
        size_t eol = body.find('\n', pos);
        if (eol == std::string::npos) eol = body.size();
        std::string_view line(body.data() + pos, eol - pos);
        pos = eol + 1;
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        json j = parse_json(line, "commit line " + std::to_string(lineno));
        if (!j.is_object() || !j.contains("key") || !j["key"].is_string() || !j.contains("value") ||
            !j["value"].is_object())
          throw HubError(400, "",
                         "commit line " + std::to_string(lineno) +
                             ": expected {\"key\": ..., \"value\": {...}}");
        const std::string key = j["key"];
        const json& v = j["value"];
        if (!have_header && key != "header")
          throw HubError(400, "", "commit: the first line must be the header");
        if (key == "header") {
          if (have_header) throw HubError(400, "", "commit: more than one header line");
          have_header = true;
          summary = get_str(v, "summary", "commit header");
          description = get_str(v, "description", "commit header");
          parent = get_str(v, "parentCommit", "commit header");
        } else if (key == "file")
          add_file(v);
        else if (key == "lfsFile")
          add_lfs(v);
        else if (key == "deletedFile")
          add_del(v, false);
        else if (key == "deletedFolder")
          add_del(v, true);
        else
          throw HubError(400, "",
                         "commit line " + std::to_string(lineno) + ": unknown key '" + key + "'");
      }
      if (!have_header) throw HubError(400, "", "commit: missing header line");
    }
    if (!parent.empty() &&
        (parent.size() < 5 || parent.size() > 40 || !is_hex(parent, parent.size())))
      throw HubError(400, "", "commit: parentCommit must be a hex commit id");
    CommitInfo ci = hub.commit(c.caller, r, rev, summary, description, parent, ops);
    send_json(c, {{"success", true},
                  {"commitOid", ci.id},
                  {"commitUrl", c.base + "/" + url_prefix(t) + r.full_id() + "/commit/" + ci.id},
                  {"commitMessage", ci.title},
                  {"hookOutput", ""}});
  }

  // ------------------------------------------------------------------ admin API
  // GET /api/admin/users, DELETE /api/admin/users/{name}, GET /api/admin/tokens[?user=U],
  // DELETE /api/admin/tokens/{id}: hub administrators only (401 anonymous, 403 otherwise;
  // deletions need a write token). Token secrets are stored hashed and never listed.
  static json token_json(const TokenInfo& t) {
    return {{"id", t.id},
            {"name", t.name},
            {"user", t.user},
            {"role", t.scope},
            {"createdAt", iso_date(t.created_ms)},
            {"lastUsedAt", t.last_used_ms ? json(iso_date(t.last_used_ms)) : json(nullptr)}};
  }

  void require_admin(const Caller& caller, bool write) {
    if (caller.anonymous())
      throw HubError(401, "", "You must be authenticated as an administrator");
    if (!caller.admin) throw HubError(403, "", "Administrator rights required");
    if (write && caller.scope != "write")
      throw HubError(403, "", "Administrator rights required (token has read scope)");
  }

  void admin_api(Ctx& c) {
    const auto& s = c.seg;
    const std::string& m = c.req.method;
    const bool del = m == "DELETE";
    if (!del && m != "GET" && m != "HEAD") throw HubError(405, "", "method not allowed");
    require_admin(c.caller, del);
    if (s.size() == 3 && s[2] == "users" && !del) {
      json arr = json::array();
      for (auto& u : hub.list_users())
        arr.push_back({{"name", u.name},
                       {"fullname", u.fullname},
                       {"email", u.email.empty() ? json(nullptr) : json(u.email)},
                       {"type", u.is_org ? "org" : "user"},
                       {"isAdmin", u.is_admin},
                       {"createdAt", iso_date(u.created_ms)}});
      return send_json(c, arr);
    }
    if (s.size() == 4 && s[2] == "users" && del) {
      if (s[3] == c.caller.user) throw HubError(400, "", "Administrators cannot delete themselves");
      hub.delete_user(s[3]);
      return send_json(c, {{"deleted", s[3]}});
    }
    if (s.size() == 3 && s[2] == "tokens" && !del) {
      json arr = json::array();
      for (auto& t : hub.list_tokens(c.param("user"))) arr.push_back(token_json(t));
      return send_json(c, arr);
    }
    if (s.size() == 4 && s[2] == "tokens" && del) {
      if (s[3].empty() || s[3].size() > 18 || s[3].find_first_not_of("0123456789") != s[3].npos)
        throw HubError(400, "", "token id must be a number");
      return send_json(c, {{"revoked", token_json(hub.revoke_token(s[3]))}});
    }
    throw HubError(404, "", "unknown admin endpoint");
  }

  // ------------------------------------------------------------------ web login and admin pages
  // The browser logs in with a user token (POST /login) and gets an opaque session cookie:
  // HttpOnly, SameSite=Strict, server-side, 12 h. Cookies authenticate web UI pages only, never
  // the API. Every POST form carries a CSRF token that is checked (the session's; for the login
  // form, a value also set as a cookie), and a foreign Origin is refused.
  static constexpr const char* kSessionCookie = "ohm_session";
  static constexpr const char* kLoginCookie = "ohm_login_csrf";

  static std::string cookie(const httplib::Request& req, const std::string& name) {
    const std::string all = req.get_header_value("Cookie");
    size_t pos = 0;
    while (pos < all.size()) {
      size_t end = all.find(';', pos);
      if (end == std::string::npos) end = all.size();
      std::string kv = all.substr(pos, end - pos);
      kv.erase(0, kv.find_first_not_of(' '));
      if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 &&
          kv[name.size()] == '=')
        return kv.substr(name.size() + 1);
      pos = end + 1;
    }
    return {};
  }

  static bool same_secret(const std::string& a, const std::string& b) {
    if (a.empty() || a.size() != b.size()) return false;
    unsigned diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ b[i]);
    return diff == 0;
  }

  std::map<std::string, std::string> read_form(Ctx& c) {
    const std::string body = read_body(c, 64u << 10);
    std::map<std::string, std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t amp = body.find('&', pos);
      if (amp == std::string::npos) amp = body.size();
      const std::string kv = body.substr(pos, amp - pos);
      const size_t eq = kv.find('=');
      std::string k, v;
      if (eq != std::string::npos && percent_decode(kv.substr(0, eq), k, true) &&
          percent_decode(kv.substr(eq + 1), v, true))
        out.emplace(k, v);
      pos = amp + 1;
    }
    return out;
  }

  std::string cookie_attrs(Ctx& c, int max_age, const char* path = "/") {
    return std::string("; Path=") + path + "; Max-Age=" + std::to_string(max_age) +
           "; HttpOnly; SameSite=Strict" + (c.base.starts_with("https://") ? "; Secure" : "");
  }

  // The session behind the request's cookie (pages authenticated by a header have none).
  std::optional<Hub::WebSession> web_session(Ctx& c) {
    const std::string id = cookie(c.req, kSessionCookie);
    if (id.empty() || !c.req.get_header_value("Authorization").empty()) return std::nullopt;
    return hub.session(id);
  }

  WebContext web_context(Ctx& c) {
    WebContext wx;
    wx.base_url = c.base;
    if (auto s = web_session(c)) {
      c.caller = s->caller;
      wx.csrf = s->csrf;
    }
    return wx;
  }

  void check_origin(Ctx& c) {
    const std::string origin = c.req.get_header_value("Origin");
    if (!origin.empty() && origin != c.base)
      throw HubError(403, "", "cross-origin form submissions are refused");
  }

  void redirect(Ctx& c, const std::string& to) {
    c.res.status = 303;
    c.res.set_header("Location", to);
    c.res.set_content("", "text/plain");
  }

  void send_login(Ctx& c, const WebContext& wx, const std::string& error, int status) {
    const std::string form_csrf = random_hex(16);
    c.res.set_header("Set-Cookie",
                     std::string(kLoginCookie) + "=" + form_csrf + cookie_attrs(c, 3600, "/login"));
    send_page(c, render_login_page(c.caller, wx, form_csrf, error, status));
  }

  void web_account(Ctx& c) {
    const auto& s = c.seg;
    const std::string& m = c.req.method;
    WebContext wx = web_context(c);
    const bool get = m == "GET" || m == "HEAD";
    if (!get && m != "POST") throw HubError(405, "", "method not allowed");
    if (s.size() == 1 && s[0] == "login") {
      if (get) return send_login(c, wx, "", 200);
      check_origin(c);
      auto form = read_form(c);
      if (!same_secret(form["csrf"], cookie(c.req, kLoginCookie)))
        return send_login(c, wx, "The login form expired; please try again.", 403);
      Hub::WebSession sess;
      try {
        sess = hub.login(form["token"]);
      } catch (const HubError&) {
        return send_login(c, wx, "Invalid token.", 401);
      }
      c.res.set_header("Set-Cookie",
                       std::string(kSessionCookie) + "=" + sess.id +
                           cookie_attrs(c, static_cast<int>(Hub::kSessionTtlMs / 1000)));
      c.res.set_header("Set-Cookie",
                       std::string(kLoginCookie) + "=" + cookie_attrs(c, 0, "/login"));
      return redirect(c, "/");
    }
    auto forbidden = [&](int status, const std::string& msg) {
      send_page(c, render_error_page(c.caller, wx, status, msg));
    };
    // Every other POST needs the session and its CSRF token.
    std::map<std::string, std::string> form;
    if (!get) {
      check_origin(c);
      form = read_form(c);
      if (wx.csrf.empty() || !same_secret(form["csrf"], wx.csrf))
        return forbidden(403, "Missing or invalid CSRF token; reload the page and try again.");
    }
    if (s.size() == 1 && s[0] == "logout" && !get) {
      hub.logout(cookie(c.req, kSessionCookie));
      c.res.set_header("Set-Cookie", std::string(kSessionCookie) + "=" + cookie_attrs(c, 0));
      return redirect(c, "/");
    }
    if (s[0] != "admin") throw HubError(404, "", "not found");
    if (c.caller.anonymous()) return get ? redirect(c, "/login") : forbidden(401, "Log in first.");
    if (!c.caller.admin) return forbidden(403, "Administrator rights required.");
    if (get && s.size() == 1) return send_page(c, render_admin_page(hub, c.caller, wx, ""));
    if (get || s.size() != 4 || (s[1] != "tokens" && s[1] != "users"))
      throw HubError(404, "", "not found");
    if (c.caller.scope != "write")
      return forbidden(403, "Administrator rights required (token has read scope).");
    std::string notice;
    try {
      if (s[1] == "tokens" && s[3] == "revoke") {
        if (s[2].empty() || s[2].size() > 18 || s[2].find_first_not_of("0123456789") != s[2].npos)
          throw HubError(400, "", "token id must be a number");
        TokenInfo t = hub.revoke_token(s[2]);
        notice = "Token " + std::to_string(t.id) + " (" + t.name + ", " + t.user + ") revoked.";
      } else if (s[1] == "users" && s[3] == "delete") {
        if (s[2] == c.caller.user)
          throw HubError(400, "", "Administrators cannot delete themselves");
        hub.delete_user(s[2]);
        notice = "User " + s[2] + " deleted.";
      } else {
        throw HubError(404, "", "not found");
      }
    } catch (const HubError& e) {
      if (e.status == 404 && notice.empty() && e.what() == std::string("not found")) throw;
      notice = e.what();
    }
    // the session may have ended with the admin's own token
    if (!hub.session(cookie(c.req, kSessionCookie))) return redirect(c, "/login");
    send_page(c, render_admin_page(hub, c.caller, wx, notice));
  }

  void branch(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
              const std::string& b) {
    RepoInfo r = hub.repo_for_write(c.caller, t, ns, name);
    if (c.req.method == "POST") {
      json j = parse_object(read_body(c, opt.max_json_bytes), "branch body");
      hub.create_branch(r, b, get_str(j, "startingPoint", "branch body"));
    } else if (c.req.method == "DELETE") {
      hub.delete_branch(r, b);
    } else {
      throw HubError(405, "", "method not allowed");
    }
    send_json(c, json::object());
  }

  void tag(Ctx& c, RepoType t, const std::string& ns, const std::string& name,
           const std::string& rev) {
    RepoInfo r = hub.repo_for_write(c.caller, t, ns, name);
    if (c.req.method == "POST") {
      json j = parse_object(read_body(c, opt.max_json_bytes), "tag body");
      const std::string tg = get_str(j, "tag", "tag body");
      if (tg.empty()) throw HubError(400, "", "tag body: 'tag' is required");
      hub.create_tag(r, tg, rev, get_str(j, "message", "tag body"));
    } else if (c.req.method == "DELETE") {
      hub.delete_tag(r, rev);
    } else {
      throw HubError(405, "", "method not allowed");
    }
    send_json(c, json::object());
  }

  // ------------------------------------------------------------------ server
  // One line per answered request: time (UTC), client, method, path with secrets redacted,
  // status, bytes sent, duration; requests the front end refused carry the reason.
  void access_log(const AccessRecord& a) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.1fms", a.ms);
    std::string line = std::string(ts) + " " + (a.client.empty() ? "-" : a.client) + " \"" +
                       a.method + " " + a.target + "\" " + std::to_string(a.status) + " " +
                       std::to_string(a.bytes) + " " + dur;
    if (!a.note.empty()) line += " (" + header_safe(a.note, 200) + ")";
    std::lock_guard l(log_mu);
    std::cerr << line << "\n";
  }

  void setup() {
    FrontLimits lim;
    static_cast<ConnectionLimits&>(lim) = opt.limits;
    lim.threads = std::max(4, opt.threads);
    lim.max_body_bytes = std::max<uint64_t>(opt.max_lfs_bytes, opt.max_commit_bytes);
    HttpFront::LogFn log;
    if (!opt.quiet) log = [this](const AccessRecord& a) { access_log(a); };
    front = std::make_unique<HttpFront>(svr, lim, std::move(log));
    svr.set_keep_alive_max_count(lim.max_requests_per_connection);
    svr.set_keep_alive_timeout(opt.limits.keepalive_timeout_s);
    svr.set_payload_max_length(static_cast<size_t>(lim.max_body_bytes));
    svr.Get(".*",
            [this](const httplib::Request& q, httplib::Response& s) { dispatch(q, s, nullptr); });
    svr.Delete(
        ".*", [this](const httplib::Request& q, httplib::Response& s) { dispatch(q, s, nullptr); });
    svr.Post(".*", [this](const httplib::Request& q, httplib::Response& s,
                          const httplib::ContentReader& rd) { dispatch(q, s, &rd); });
    svr.Put(".*", [this](const httplib::Request& q, httplib::Response& s,
                         const httplib::ContentReader& rd) { dispatch(q, s, &rd); });
    svr.Delete(".*", [this](const httplib::Request& q, httplib::Response& s,
                            const httplib::ContentReader& rd) { dispatch(q, s, &rd); });
    svr.set_exception_handler(
        [this](const httplib::Request& q, httplib::Response& s, std::exception_ptr) {
          send_error(q, s, 500, "", "internal error", "");
        });
  }
};

HubServer::HubServer(ServerOptions opt) : impl_(std::make_unique<Impl>(std::move(opt))) {}

HubServer::~HubServer() {
  stop();
}

int HubServer::bind() {
  auto& i = *impl_;
  i.bound_port = i.front->bind(i.opt.host, i.opt.port);
  return i.bound_port;
}

void HubServer::run() {
  impl_->front->run();
}

void HubServer::start() {
  bind();
  // The socket already listens after bind(): clients connecting now wait until accept.
  impl_->th = std::thread([this] { run(); });
}

void HubServer::stop() {
  if (!impl_) return;
  impl_->front->stop();
  if (impl_->th.joinable()) impl_->th.join();
}

int HubServer::port() const {
  return impl_->bound_port;
}

}  // namespace ohm::hub
