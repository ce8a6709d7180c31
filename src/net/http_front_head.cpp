// The front end's request-head checks, its own refusals and the access log's redaction.
#include <algorithm>
#include <cstring>
#include <vector>

#include "http_front_internal.h"

namespace ohm::net {
namespace front_detail {

namespace {

bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

const char* reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

}  // namespace

int check_head(std::string_view head, const FrontLimits& lim, Head& h, std::string& why) {
  h.len = head.size();
  std::vector<std::string_view> lines;
  size_t p = 0;
  while (p < head.size()) {
    size_t e = head.find("\r\n", p);
    if (e == std::string_view::npos) break;
    lines.push_back(head.substr(p, e - p));
    p = e + 2;
  }
  if (lines.empty()) return why = "empty request", 400;
  for (char ch : head.substr(0, head.size() - 4))
    if (ch == '\0') return why = "NUL byte in the request head", 400;
  for (auto l : lines)
    if (l.find('\n') != std::string_view::npos || l.find('\r') != std::string_view::npos)
      return why = "bare CR or LF in the request head (lines must end in CRLF)", 400;
  // request line
  const std::string_view rl = lines[0];
  if (rl.size() > kMaxRequestLine)
    return why = "request line longer than " + std::to_string(kMaxRequestLine) + " bytes", 414;
  const size_t s1 = rl.find(' '), s2 = s1 == std::string_view::npos ? s1 : rl.find(' ', s1 + 1);
  if (s1 == std::string_view::npos || s2 == std::string_view::npos ||
      rl.find(' ', s2 + 1) != std::string_view::npos)
    return why = "malformed request line", 400;
  h.method = std::string(rl.substr(0, s1));
  h.target = std::string(rl.substr(s1 + 1, s2 - s1 - 1));
  const std::string_view version = rl.substr(s2 + 1);
  static const char* methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
  if (std::none_of(std::begin(methods), std::end(methods),
                   [&](const char* m) { return h.method == m; }))
    return why = "method '" + h.method.substr(0, 20) + "' is not supported", 501;
  if (h.target.empty() || (h.target[0] != '/' && h.target != "*"))
    return why = "request target must start with '/'", 400;
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return why = "HTTP version must be HTTP/1.1 or HTTP/1.0", 505;
  // header fields (the last two entries of `lines` are the blank line's halves: skip empties)
  int count = 0;
  bool has_len = false, has_te = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view l = lines[i];
    if (l.empty()) continue;
    if (++count > lim.max_headers)
      return why = "more than " + std::to_string(lim.max_headers) + " header fields", 431;
    if (l[0] == ' ' || l[0] == '\t') return why = "obsolete header line folding", 400;
    const size_t colon = l.find(':');
    if (colon == std::string_view::npos || colon == 0) return why = "malformed header field", 400;
    const std::string_view name = l.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(),
                     [](char c) { return is_tchar(static_cast<unsigned char>(c)); }))
      return why = "malformed header field name", 400;
    const std::string_view value = trim(l.substr(colon + 1));
    if (ieq(name, "Content-Length")) {
      if (has_len) return why = "Content-Length given more than once", 400;
      has_len = true;
      if (value.empty() || value.size() > 19 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return why = "Content-Length must be a non-negative decimal integer", 400;
      h.content_length = std::stoull(std::string(value));
    } else if (ieq(name, "Transfer-Encoding")) {
      if (has_te) return why = "Transfer-Encoding given more than once", 400;
      has_te = true;
      if (!ieq(value, "chunked"))
        return why = "Transfer-Encoding '" + std::string(value.substr(0, 40)) +
                     "' is not supported (only chunked)",
               501;
      h.chunked = true;
    } else if (ieq(name, "Expect")) {
      if (ieq(value, "100-continue")) h.expect_continue = true;
    }
  }
  if (has_len && has_te) return why = "both Content-Length and Transfer-Encoding given", 400;
  const bool wants_body = h.method == "POST" || h.method == "PUT" || h.method == "PATCH";
  if (wants_body && !has_len && !has_te)
    return why = h.method + " needs a Content-Length (or chunked Transfer-Encoding)", 411;
  if (lim.max_body_bytes && h.content_length > lim.max_body_bytes)
    return why = "request body of " + std::to_string(h.content_length) + " bytes is over the " +
                 std::to_string(lim.max_body_bytes) + "-byte limit",
           413;
  return 0;
}

std::string error_response(int status, const std::string& msg) {
  std::string body = "{\"error\":\"";
  for (char c : msg) {
    if (c == '"' || c == '\\') body += '\\';
    body += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  body += "\"}";
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  r += "Content-Type: application/json\r\nConnection: close\r\n";
  r += "X-Error-Message: " + msg + "\r\n";
  if (status == 429 || status == 503) r += "Retry-After: 1\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  return r;
}

}  // namespace front_detail

std::string redact_target(const std::string& target) {
  static const char* secret[] = {"token",    "sig",    "signature", "access_token", "key",
                                 "password", "passwd", "secret",    "code"};
  std::string out;
  const size_t q = target.find('?');
  out = target.substr(0, q);
  if (q != std::string::npos) {
    out += '?';
    std::string_view rest = std::string_view(target).substr(q + 1);
    bool first = true;
    while (true) {
      const size_t amp = rest.find('&');
      std::string_view kv = rest.substr(0, amp);
      const size_t eq = kv.find('=');
      const std::string_view k = kv.substr(0, eq);
      std::string lk(k);
      for (auto& ch : lk) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const bool hide =
          eq != std::string_view::npos &&
          (lk.starts_with("x-amz-") || std::any_of(std::begin(secret), std::end(secret),
                                                   [&](const char* s) { return lk == s; }));
      if (!first) out += '&';
      first = false;
      out += hide ? std::string(k) + "=REDACTED" : std::string(kv);
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  std::string safe;
  for (unsigned char c : out.substr(0, 300))
    safe.push_back(c < 0x20 || c >= 0x7f || c == '"' ? '?' : static_cast<char>(c));
  return safe;
}

}  // namespace ohm::net
