#include "range.h"

#include <algorithm>
#include <string>

namespace ohm::hub::http {

std::optional<ByteRange> parse_byte_range(std::string_view range, uint64_t size) {
  if (!range.starts_with("bytes=") || range.find(',') != std::string_view::npos)
    return std::nullopt;
  const std::string spec(range.substr(6));
  const size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  const std::string sa = spec.substr(0, dash), sb = spec.substr(dash + 1);
  auto num = [](const std::string& x, uint64_t& v) {
    if (x.empty() || x.size() > 19 || x.find_first_not_of("0123456789") != std::string::npos)
      return false;
    v = std::stoull(x);
    return true;
  };
  ByteRange r;
  if (sa.empty()) {  // suffix: last N bytes
    uint64_t n = 0;
    if (!num(sb, n) || n == 0 || size == 0) return std::nullopt;
    r.start = n >= size ? 0 : size - n;
    r.end = size;
    return r;
  }
  if (!num(sa, r.start)) return std::nullopt;
  r.end = size;
  if (!sb.empty()) {
    uint64_t last = 0;
    if (!num(sb, last) || last < r.start) return std::nullopt;
    r.end = std::min<uint64_t>(last + 1, size);
  }
  if (r.start >= size) return std::nullopt;
  return r;
}

}  // namespace ohm::hub::http
