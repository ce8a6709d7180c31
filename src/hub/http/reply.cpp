#include "reply.h"

#include <algorithm>
#include <chrono>

#include "ohm/hub/errors.h"
#include "ohm/hub/validate.h"

namespace ohm::hub::http {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string header_safe(const std::string& s, size_t max) {
  std::string out;
  for (unsigned char c : s.substr(0, max))
    out.push_back(c < 0x20 || c >= 0x7f ? '?' : static_cast<char>(c));
  return out;
}

void send_json(Request& c, const json& j, int status) {
  c.res.status = status;
  c.res.set_content(dump(j), "application/json");
}

std::string read_body(Request& c, size_t limit) {
  // anonymous API bodies (paths-info, LFS batch for downloads, validate-yaml) are small
  if (c.caller.anonymous()) limit = std::min<size_t>(limit, 1u << 20);
  if (!c.reader) {
    if (c.req.body.size() > limit) throw BadRequest("request body too large");
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
    throw BadRequest("request body larger than " + std::to_string(limit) + " bytes");
  }
  if (!ok) {
    c.res.set_header("Connection", "close");
    throw BadRequest("could not read the request body");
  }
  return body;
}

void drain(Request& c) {
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

namespace {

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
        throw BadRequest("JSON nested deeper than " + std::to_string(max_depth));
    } else if (c == ']' || c == '}')
      --depth;
  }
}

}  // namespace

json parse_json(std::string_view body, const std::string& what) {
  check_json_depth(body, 64);
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    throw BadRequest("malformed JSON in " + what + ": " + e.what());
  }
}

json parse_object(std::string_view body, const std::string& what) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::object();
  json j = parse_json(body, what);
  if (!j.is_object()) throw BadRequest(what + " must be a JSON object");
  return j;
}

std::string get_str(const json& j, const char* key, const std::string& what) {
  if (!j.contains(key) || j[key].is_null()) return {};
  if (!j[key].is_string()) throw BadRequest(what + ": '" + key + "' must be a string");
  return j[key].get<std::string>();
}

std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    const std::string_view kv = body.substr(pos, amp - pos);
    const size_t eq = kv.find('=');
    std::string k, v;
    if (eq != std::string_view::npos && percent_decode(kv.substr(0, eq), k, true) &&
        percent_decode(kv.substr(eq + 1), v, true))
      out.emplace_back(std::move(k), std::move(v));
    pos = amp + 1;
  }
  return out;
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

size_t cursor(const Request& c) {
  std::string v = c.param("cursor");
  if (v.empty()) return 0;
  if (v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos)
    throw BadRequest("invalid cursor");
  return std::stoull(v);
}

void set_next_link(Request& c, size_t next_cursor) {
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

}  // namespace ohm::hub::http
