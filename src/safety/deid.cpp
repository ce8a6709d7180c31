// PII detection with hand-written scanners (ohm/safety/deid.h, docs/deid.md).
#include "ohm/safety/deid.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <unordered_set>

#include "deid_gazetteers.h"
#include "ohm/core/error.h"

namespace ohm::safety::deid {

namespace {

constexpr const char* kNames[kEntityCount] = {"cn_id", "iban",  "card", "ssn",     "email", "url",
                                              "ip",    "phone", "dob",  "address", "person"};
constexpr const char* kTags[kEntityCount] = {"CN_ID", "IBAN",  "CARD", "SSN",     "EMAIL", "URL",
                                             "IP",    "PHONE", "DOB",  "ADDRESS", "PERSON"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool is_lower(char c) {
  return c >= 'a' && c <= 'z';
}
bool is_alpha(char c) {
  return is_upper(c) || is_lower(c);
}
bool is_alnum(char c) {
  return is_digit(c) || is_alpha(c);
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char lower(char c) {
  return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
}

// The code point at text[i] (UTF-8) and its length; invalid bytes decode as U+FFFD, length 1.
char32_t decode(std::string_view s, size_t i, size_t* len) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return *len = 1, b;
  int n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return *len = 1, 0xFFFD;
  char32_t cp = b & (0x7F >> n);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  *len = static_cast<size_t>(n);
  return cp;
}
bool is_han(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF);
}
// The start of the code point that ends at `end` (end > 0).
size_t prev_cp(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool starts_with(std::string_view s, size_t i, std::string_view w) {
  return s.size() >= i + w.size() && s.compare(i, w.size(), w) == 0;
}
bool starts_with_ci(std::string_view s, size_t i, std::string_view w) {
  if (s.size() < i + w.size()) return false;
  for (size_t k = 0; k < w.size(); ++k)
    if (lower(s[i + k]) != w[k]) return false;
  return true;
}

// A number may start at i: not glued to a word or to a longer number ("A123", "12-345", "1.5").
bool num_left_ok(std::string_view s, size_t i) {
  if (i == 0) return true;
  const char p = s[i - 1];
  if (is_alnum(p) || p == '_') return false;
  if ((p == '-' || p == '.' || p == '/') && i >= 2 && is_digit(s[i - 2])) return false;
  return true;
}
// ... and may end at e.
bool num_right_ok(std::string_view s, size_t e) {
  if (e >= s.size()) return true;
  const char c = s[e];
  if (is_alnum(c) || c == '_') return false;
  if ((c == '-' || c == '.' || c == '/') && e + 1 < s.size() && is_digit(s[e + 1])) return false;
  return true;
}

struct Cand {
  size_t b, e;
  Entity t;
};
using Out = std::vector<Cand>;

// ---- validators ----------------------------------------------------------------------------

bool leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}
bool date_ok(int y, int m, int d) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1) return false;
  return d <= days[m - 1] + (m == 2 && leap(y) ? 1 : 0);
}
int num(std::string_view s, size_t i, size_t n) {
  int v = 0;
  for (size_t k = 0; k < n; ++k) v = v * 10 + (s[i + k] - '0');
  return v;
}

// Province-level codes of GB/T 2260 (the first two digits of an identity number).
bool cn_region_ok(int r) {
  static const int codes[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42,
                              43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82};
  return std::find(std::begin(codes), std::end(codes), r) != std::end(codes);
}
char cn_id_check(std::string_view d17) {
  static const int w[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int k = 0; k < 17; ++k) sum += (d17[k] - '0') * w[k];
  return "10X98765432"[sum % 11];
}

// Issuer prefixes (IIN ranges) and the lengths each scheme issues.
bool card_iin_ok(std::string_view d) {
  const size_t n = d.size();
  auto pre = [&](size_t k) { return num(d, 0, k); };
  auto len_in = [&](size_t lo, size_t hi) { return n >= lo && n <= hi; };
  if (d[0] == '4') return n == 13 || n == 16 || n == 19;                   // Visa
  if (pre(2) >= 51 && pre(2) <= 55) return n == 16;                        // Mastercard
  if (pre(4) >= 2221 && pre(4) <= 2720) return n == 16;                    // Mastercard 2-series
  if (pre(2) == 34 || pre(2) == 37) return n == 15;                        // Amex
  if (pre(4) == 6011 || pre(2) == 65 || (pre(3) >= 644 && pre(3) <= 649))  // Discover
    return len_in(16, 19);
  if (pre(2) == 62 || pre(2) == 81) return len_in(16, 19);      // UnionPay
  if (pre(4) >= 3528 && pre(4) <= 3589) return len_in(16, 19);  // JCB
  if ((pre(3) >= 300 && pre(3) <= 305) || pre(2) == 36 || pre(2) == 38 || pre(2) == 39)
    return len_in(14, 19);                                      // Diners
  if (pre(4) >= 2200 && pre(4) <= 2204) return len_in(16, 19);  // Mir
  if (pre(2) == 50 || (pre(2) >= 56 && pre(2) <= 58) || pre(2) == 63 || pre(2) == 67)
    return len_in(12, 19);  // Maestro
  return false;
}

struct IbanLen {
  const char* cc;
  int len;
};
// ISO 13616 registry lengths.
constexpr IbanLen kIban[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24},
    {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SC", 31},
    {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
    {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}};
int iban_length(std::string_view cc) {
  for (const auto& e : kIban)
    if (cc == e.cc) return e.len;
  return 0;
}
int iban_mod97(std::string_view rearranged) {
  int r = 0;
  for (char c : rearranged) {
    if (is_digit(c)) {
      r = (r * 10 + (c - '0')) % 97;
    } else {
      const int v = c - 'A' + 10;
      r = (r * 100 + v) % 97;
    }
  }
  return r;
}

// ---- scanners ------------------------------------------------------------------------------

bool email_local_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool domain_char(char c) {
  return is_alnum(c) || c == '.' || c == '-';
}

void scan_email(std::string_view s, Out& out) {
  size_t from = 0;
  while (true) {
    const size_t at = s.find('@', from);
    if (at == std::string_view::npos) return;
    from = at + 1;
    size_t b = at;
    while (b > 0 && email_local_char(s[b - 1])) --b;
    while (b < at && (s[b] == '.' || s[b] == '-')) ++b;
    if (b == at || s[at - 1] == '.') continue;
    size_t e = at + 1;
    while (e < s.size() && domain_char(s[e])) ++e;
    while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;
    const std::string_view dom = s.substr(at + 1, e - at - 1);
    const size_t dot = dom.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dom.find("..") != std::string_view::npos)
      continue;
    const std::string_view tld = dom.substr(dot + 1);
    if (tld.size() < 2 || !std::all_of(tld.begin(), tld.end(), is_alpha)) continue;
    if (dom[0] == '-' || dom[0] == '.') continue;
    out.push_back({b, e, Entity::Email});
    from = e;
  }
}

bool url_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7F) return false;
  return !std::strchr("<>\"'`{}|\\^", c);
}
size_t url_end(std::string_view s, size_t host_begin) {
  size_t e = host_begin;
  while (e < s.size() && url_char(s[e])) ++e;
  // trailing punctuation belongs to the sentence; a ')' only when it closes a '('
  while (e > host_begin) {
    const char c = s[e - 1];
    if (std::strchr(".,;:!?*", c)) {
      --e;
    } else if (c == ')') {
      const auto part = s.substr(host_begin, e - host_begin);
      if (std::count(part.begin(), part.end(), '(') >= std::count(part.begin(), part.end(), ')'))
        break;
      --e;
    } else {
      break;
    }
  }
  return e;
}
bool host_ok(std::string_view s, size_t b, size_t e) {
  size_t k = b;
  while (k < e && (domain_char(s[k]))) ++k;
  const auto host = s.substr(b, k - b);
  const size_t dot = host.find('.');
  return dot != std::string_view::npos && dot > 0 && dot + 1 < host.size();
}

void scan_url(std::string_view s, Out& out) {
  size_t from = 0;
  while (true) {
    const size_t p = s.find("://", from);
    if (p == std::string_view::npos) break;
    from = p + 3;
    size_t b = p;
    while (b > 0 && is_alpha(s[b - 1])) --b;
    const auto scheme = s.substr(b, p - b);
    std::string sc(scheme);
    for (auto& c : sc) c = lower(c);
    if (sc != "http" && sc != "https" && sc != "ftp") continue;
    const size_t e = url_end(s, p + 3);
    if (!host_ok(s, p + 3, e)) continue;
    out.push_back({b, e, Entity::Url});
    from = e;
  }
  from = 0;
  while (true) {
    size_t p = from;
    for (; p + 4 <= s.size(); ++p)
      if (lower(s[p]) == 'w' && starts_with_ci(s, p, "www.")) break;
    if (p + 4 > s.size()) return;
    from = p + 4;
    if (p > 0 && (is_alnum(s[p - 1]) || s[p - 1] == '/' || s[p - 1] == '.' || s[p - 1] == '@'))
      continue;
    const size_t e = url_end(s, p);
    if (!host_ok(s, p, e)) continue;
    out.push_back({p, e, Entity::Url});
    from = e;
  }
}

// Preceded (within a few words) by a word that says the number is a version, not an address.
bool version_context(std::string_view s, size_t b) {
  const size_t lo = b >= 24 ? b - 24 : 0;
  std::string w(s.substr(lo, b - lo));
  for (auto& c : w) c = lower(c);
  for (const char* k : {"version", "ver.", "release", "build", "firmware", "版本", "v."})
    if (w.find(k) != std::string::npos) return true;
  return false;
}

// Parses a dotted quad at i; returns its end or 0.
size_t parse_ipv4(std::string_view s, size_t i) {
  size_t p = i;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (p >= s.size() || s[p] != '.') return 0;
      ++p;
    }
    size_t q = p;
    while (q < s.size() && is_digit(s[q]) && q - p < 4) ++q;
    const size_t n = q - p;
    if (n == 0 || n > 3 || (n > 1 && s[p] == '0') || num(s, p, n) > 255) return 0;
    p = q;
  }
  return p;
}

void scan_ipv4(std::string_view s, Out& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!is_digit(s[i]) || (i > 0 && is_digit(s[i - 1]))) continue;
    if (i > 0 && (is_alpha(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == '_')) continue;
    const size_t e = parse_ipv4(s, i);
    if (!e || !num_right_ok(s, e)) continue;
    if (version_context(s, i)) continue;
    out.push_back({i, e, Entity::Ip});
    i = e;
  }
}

bool ipv6_ok(std::string_view a) {
  if (a.size() < 3 || std::count(a.begin(), a.end(), ':') < 2) return false;
  if (std::none_of(a.begin(), a.end(), is_digit)) return false;
  const size_t dc = a.find("::");
  if (dc != std::string_view::npos && a.find("::", dc + 1) != std::string_view::npos) return false;
  int groups = 0;
  auto count = [&](std::string_view part, bool last) {
    if (part.empty()) return true;
    size_t start = 0;
    while (true) {
      const size_t c = part.find(':', start);
      const auto g =
          part.substr(start, c == std::string_view::npos ? part.size() - start : c - start);
      const bool is_last = c == std::string_view::npos;
      if (is_last && last && g.find('.') != std::string_view::npos) {
        if (parse_ipv4(g, 0) != g.size()) return false;
        groups += 2;
        return true;
      }
      if (g.empty() || g.size() > 4 || !std::all_of(g.begin(), g.end(), is_hex)) return false;
      ++groups;
      if (is_last) return true;
      start = c + 1;
    }
  };
  if (dc == std::string_view::npos) return count(a, true) && groups == 8;
  return count(a.substr(0, dc), false) && count(a.substr(dc + 2), true) && groups <= 7;
}

void scan_ipv6(std::string_view s, Out& out) {
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (!is_hex(c) && c != ':') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && (is_hex(s[j]) || s[j] == ':' || s[j] == '.')) ++j;
    const bool left =
        i == 0 || !(is_alnum(s[i - 1]) || s[i - 1] == ':' || s[i - 1] == '.' || s[i - 1] == '_');
    if (left && (j >= s.size() || !is_alnum(s[j]))) {
      size_t e = j;
      while (e > i + 2) {
        if (ipv6_ok(s.substr(i, e - i))) {
          out.push_back({i, e, Entity::Ip});
          break;
        }
        if (s[e - 1] != '.' && s[e - 1] != ':') break;
        --e;
      }
    }
    i = j;
  }
}

void scan_cn_id(std::string_view s, Out& out) {
  for (size_t i = 0; i + 18 <= s.size(); ++i) {
    if (!is_digit(s[i]) || !num_left_ok(s, i)) continue;
    size_t j = i;
    while (j < s.size() && is_digit(s[j])) ++j;
    size_t e = 0;
    if (j - i == 18)
      e = j;
    else if (j - i == 17 && j < s.size() && (s[j] == 'X' || s[j] == 'x'))
      e = j + 1;
    if (e && num_right_ok(s, e) && cn_id_ok(s.substr(i, 18))) out.push_back({i, e, Entity::CnId});
    i = j;
  }
}

void scan_iban(std::string_view s, Out& out) {
  for (size_t i = 0; i + 15 <= s.size(); ++i) {
    if (!is_upper(s[i]) || !is_upper(s[i + 1]) || !is_digit(s[i + 2]) || !is_digit(s[i + 3]))
      continue;
    if (i > 0 && is_alnum(s[i - 1])) continue;
    const int len = iban_length(s.substr(i, 2));
    if (!len) continue;
    std::string compact;
    size_t p = i;
    while (p < s.size() && static_cast<int>(compact.size()) < len) {
      if (is_digit(s[p]) || is_upper(s[p])) {
        compact += s[p++];
      } else if (s[p] == ' ' && p + 1 < s.size() && (is_digit(s[p + 1]) || is_upper(s[p + 1])) &&
                 compact.size() % 4 == 0) {
        ++p;
      } else {
        break;
      }
    }
    if (static_cast<int>(compact.size()) != len || (p < s.size() && is_alnum(s[p]))) continue;
    if (!iban_ok(compact)) continue;
    out.push_back({i, p, Entity::Iban});
    i = p;
  }
}

// A run of digit groups: "+86 138-1234-5678", "(010) 6552 9988", "4111 1111 1111 1111".
struct Groups {
  bool plus = false, paren = false;
  std::vector<std::pair<size_t, size_t>> g;  // digit ranges
  std::vector<char> sep;                     // the separator before group k (0 for the first)
};

bool ssn_context(std::string_view s, size_t b) {
  const size_t lo = b >= 40 ? b - 40 : 0;
  std::string w(s.substr(lo, b - lo));
  for (auto& c : w) c = lower(c);
  return w.find("ssn") != std::string::npos || w.find("social security") != std::string::npos ||
         w.find("社会安全号") != std::string::npos;
}

bool cn_landline_area(std::string_view a) {  // with the leading 0
  if (a.size() < 3 || a.size() > 4 || a[0] != '0') return false;
  if (a.size() == 3) return a == "010" || a[1] == '2';
  return a[1] >= '3' && a[1] <= '9';
}

// The entity of groups [0, k) of a group run (its digits `d`), or nothing.
std::optional<Entity> classify_groups(std::string_view s, const Groups& G, size_t k,
                                      const std::string& d) {
  std::vector<size_t> L;
  for (size_t q = 0; q < k; ++q) L.push_back(G.g[q].second - G.g[q].first);
  bool same_sep = true;
  for (size_t q = 2; q < k; ++q) same_sep = same_sep && G.sep[q] == G.sep[1];
  const char sep = k > 1 ? G.sep[1] : 0;
  if (!G.plus && !G.paren) {
    // payment card: 13-19 digits, one separator kind (space or '-'), groups of 3-6
    if (d.size() >= 12 && d.size() <= 19 && (k == 1 || (same_sep && (sep == ' ' || sep == '-')))) {
      bool shape = true;
      for (size_t q = 0; q < k; ++q) shape = shape && (k == 1 || (L[q] >= 3 && L[q] <= 6));
      if (shape && card_iin_ok(d) && luhn_ok(d)) return Entity::Card;
    }
    // SSN: 3-2-4 with '-' or ' ', or 9 bare digits after an SSN context word
    if (d.size() == 9 && ssn_ok(d)) {
      if (k == 3 && L[0] == 3 && L[1] == 2 && L[2] == 4 && same_sep && (sep == '-' || sep == ' '))
        return Entity::Ssn;
      if (k == 1 && ssn_context(s, G.g[0].first)) return Entity::Ssn;
    }
  }
  // phones
  std::string nat = d;
  bool intl = G.plus;
  if (!G.plus && k > 1 && L[0] == 4 && d.compare(0, 4, "0086") == 0) {
    intl = true;
    nat = d.substr(2);  // as if "+86..."
  }
  if (intl) {
    if (nat.size() < 8 || nat.size() > 15 || nat[0] == '0') return std::nullopt;
    if (k > 1 && (L[0] > 3 && !(L[0] == 4 && d.compare(0, 4, "0086") == 0))) return std::nullopt;
    if (nat.compare(0, 2, "86") == 0) {
      const std::string n = nat.substr(2);
      if (n.size() == 11 && n[0] == '1' && n[1] >= '3' && n[1] <= '9') return Entity::Phone;
      if (n.size() >= 9 && n.size() <= 11 && n[0] != '0' && n[0] != '1' &&
          cn_landline_area("0" + n.substr(0, n[0] == '2' ? 2 : 3)))
        return Entity::Phone;
      if (n.size() >= 9 && n.size() <= 10 && n.compare(0, 2, "10") == 0) return Entity::Phone;
      return std::nullopt;
    }
    return Entity::Phone;
  }
  // Chinese mobile: 11 digits 1[3-9]..., bare or 3-4-4
  if (d.size() == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9' && !G.paren &&
      (k == 1 || (k == 3 && L[0] == 3 && L[1] == 4 && L[2] == 4 && same_sep && sep != '.')))
    return Entity::Phone;
  // Chinese landline: area code 0xx(x) then a 7-8 digit local number starting 2-9
  if (k >= 2 && k <= 3 && cn_landline_area(d.substr(0, L[0])) && sep != '.') {
    const std::string local = d.substr(L[0]);
    if (local.size() >= 7 && local.size() <= 8 && local[0] >= '2' && local[0] <= '9')
      return Entity::Phone;
  }
  // NANP with separators: (415) 555-2671, 415-555-2671, 415.555.2671, 1-800-555-0199
  {
    size_t o = 0;
    if (k == 4 && L[0] == 1 && d[0] == '1') o = 1;
    if (k - o == 3 && L[o] == 3 && L[o + 1] == 3 && L[o + 2] == 4 && d[o] >= '2' && d[o + 3] >= '2')
      return Entity::Phone;
  }
  return std::nullopt;
}

void scan_numbers(std::string_view s, Out& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!(is_digit(c) || c == '+' || c == '(')) continue;
    if (!num_left_ok(s, i) || (i > 0 && (s[i - 1] == '+' || s[i - 1] == '('))) continue;
    Groups G;
    size_t p = i;
    bool open = false;  // a '(' not closed yet
    if (s[p] == '+') {
      G.plus = true;
      ++p;
    }
    if (p < s.size() && s[p] == '(') {
      G.paren = open = true;
      ++p;
    }
    if (p >= s.size() || !is_digit(s[p])) continue;
    char pending = 0;
    while (p < s.size() && G.g.size() < 8) {
      const size_t q0 = p;
      while (p < s.size() && is_digit(s[p])) ++p;
      G.g.push_back({q0, p});
      G.sep.push_back(pending);
      // a separator: ' ', '-', '.', or ')' / ') ' closing an opened '('
      size_t r = p;
      pending = 0;
      if (r < s.size() && s[r] == ')' && open) {
        ++r;
        pending = ')';
        open = false;
        if (r < s.size() && (s[r] == ' ' || s[r] == '-')) ++r;
      } else if (!open && r < s.size() && (s[r] == ' ' || s[r] == '-' || s[r] == '.')) {
        pending = s[r];
        ++r;
        if (r < s.size() && s[r] == '(' && G.plus && G.g.size() == 1) {  // "+1 (415) 555-2671"
          ++r;
          G.paren = open = true;
        }
      }
      if (!pending || r >= s.size() || !is_digit(s[r])) break;
      p = r;
    }
    if (open) continue;  // an unclosed '('
    // The longest prefix of groups that classifies (a shorter one only before a space).
    std::string d;
    std::vector<std::string> prefix_digits;
    for (auto [a, b] : G.g) {
      d.append(s.substr(a, b - a));
      prefix_digits.push_back(d);
    }
    bool found = false;
    for (size_t k = G.g.size(); k >= 1 && !found; --k) {
      const size_t e = G.g[k - 1].second;
      // a shorter prefix only before a space, and not out of a long block of digit groups (an
      // account number written in groups of four)
      if (k < G.g.size() && (s[e] != ' ' || G.g.size() >= 5)) continue;
      if (!num_right_ok(s, e) && !(k < G.g.size() && s[e] == ' ')) continue;
      if (auto t = classify_groups(s, G, k, prefix_digits[k - 1])) {
        out.push_back({i, e, *t});
        found = true;
        i = e - 1;
      }
    }
    if (!found) i = G.g.back().second - 1;
  }
}

// ---- dates of birth ------------------------------------------------------------------------

const char* const kMonths[] = {"january",   "february", "march",    "april",
                               "may",       "june",     "july",     "august",
                               "september", "october",  "november", "december"};
// A month name (full, or 3-letter abbreviation with an optional '.') at i: 1-12 and its end.
int month_at(std::string_view s, size_t i, size_t* end) {
  for (int m = 0; m < 12; ++m) {
    const std::string_view full = kMonths[m];
    if (starts_with_ci(s, i, full) &&
        (i + full.size() >= s.size() || !is_alpha(s[i + full.size()]))) {
      *end = i + full.size();
      return m + 1;
    }
    if (starts_with_ci(s, i, full.substr(0, 3)) && (i + 3 >= s.size() || !is_alpha(s[i + 3]))) {
      *end = i + 3 + (i + 3 < s.size() && s[i + 3] == '.' ? 1 : 0);
      return m + 1;
    }
    if (m == 8 && starts_with_ci(s, i, "sept") && (i + 4 >= s.size() || !is_alpha(s[i + 4]))) {
      *end = i + 4 + (i + 4 < s.size() && s[i + 4] == '.' ? 1 : 0);
      return 9;
    }
  }
  return 0;
}
size_t digits_at(std::string_view s, size_t i, size_t max) {
  size_t j = i;
  while (j < s.size() && is_digit(s[j]) && j - i < max + 1) ++j;
  return j - i;
}

// A date starting at i; returns its end or 0.
size_t parse_date(std::string_view s, size_t i) {
  const size_t n1 = digits_at(s, i, 4);
  if (n1 == 4) {  // 1990-03-15, 1990/3/15, 1990.03.15, 1990年3月15日
    const int y = num(s, i, 4);
    size_t p = i + 4;
    if (starts_with(s, p, "年")) {
      p += 3;
      const size_t nm = digits_at(s, p, 2);
      if (nm < 1 || nm > 2 || !starts_with(s, p + nm, "月")) return 0;
      const int m = num(s, p, nm);
      p += nm + 3;
      const size_t nd = digits_at(s, p, 2);
      if (nd < 1 || nd > 2) return 0;
      const int d = num(s, p, nd);
      p += nd;
      if (starts_with(s, p, "日") || starts_with(s, p, "号"))
        p += 3;
      else
        return 0;
      return date_ok(y, m, d) ? p : 0;
    }
    if (p >= s.size() || !std::strchr("-/.", s[p])) return 0;
    const char sep = s[p++];
    const size_t nm = digits_at(s, p, 2);
    if (nm < 1 || nm > 2 || p + nm >= s.size() || s[p + nm] != sep) return 0;
    const int m = num(s, p, nm);
    p += nm + 1;
    const size_t nd = digits_at(s, p, 2);
    if (nd < 1 || nd > 2) return 0;
    const int d = num(s, p, nd);
    p += nd;
    return date_ok(y, m, d) && num_right_ok(s, p) ? p : 0;
  }
  if (n1 == 1 || n1 == 2) {
    const int a = num(s, i, n1);
    size_t p = i + n1;
    if (p < s.size() && std::strchr("-/.", s[p])) {  // 03/15/1990, 15.03.1990
      const char sep = s[p++];
      const size_t n2 = digits_at(s, p, 2);
      if (n2 < 1 || n2 > 2 || p + n2 >= s.size() || s[p + n2] != sep) return 0;
      const int b = num(s, p, n2);
      p += n2 + 1;
      if (digits_at(s, p, 4) != 4) return 0;
      const int y = num(s, p, 4);
      p += 4;
      if (!num_right_ok(s, p)) return 0;
      return date_ok(y, a, b) || date_ok(y, b, a) ? p : 0;
    }
    // 15 March 1990, 15th of March, 1990
    for (const char* suf : {"st", "nd", "rd", "th"})
      if (starts_with_ci(s, p, suf)) {
        p += 2;
        break;
      }
    if (starts_with(s, p, " of ")) p += 3;
    if (p >= s.size() || s[p] != ' ') return 0;
    ++p;
    size_t me = 0;
    const int m = month_at(s, p, &me);
    if (!m) return 0;
    p = me;
    if (p < s.size() && s[p] == ',') ++p;
    if (p >= s.size() || s[p] != ' ') return 0;
    ++p;
    if (digits_at(s, p, 4) != 4) return 0;
    const int y = num(s, p, 4);
    return date_ok(y, m, a) && num_right_ok(s, p + 4) ? p + 4 : 0;
  }
  size_t me = 0;
  const int m = month_at(s, i, &me);  // March 15, 1990 / Mar. 15th 1990
  if (!m) return 0;
  size_t p = me;
  if (p >= s.size() || s[p] != ' ') return 0;
  ++p;
  const size_t nd = digits_at(s, p, 2);
  if (nd < 1 || nd > 2) return 0;
  const int d = num(s, p, nd);
  p += nd;
  for (const char* suf : {"st", "nd", "rd", "th"})
    if (starts_with_ci(s, p, suf)) {
      p += 2;
      break;
    }
  if (p < s.size() && s[p] == ',') ++p;
  if (p >= s.size() || s[p] != ' ') return 0;
  ++p;
  if (digits_at(s, p, 4) != 4) return 0;
  const int y = num(s, p, 4);
  return date_ok(y, m, d) && num_right_ok(s, p + 4) ? p + 4 : 0;
}

void scan_dob(std::string_view s, Out& out) {
  static const char* const kEn[] = {"date of birth", "birth date", "birthdate", "birthday",
                                    "d.o.b",         "dob",        "born"};
  static const char* const kZh[] = {"出生日期", "出生于", "出生", "生日", "生于"};
  std::vector<size_t> ends;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = lower(s[i]);
    if (c == 'd' || c == 'b') {
      if (i > 0 && is_alpha(s[i - 1])) continue;
      for (const char* w : kEn) {
        const size_t n = std::strlen(w);
        if (starts_with_ci(s, i, w) && (i + n >= s.size() || !is_alpha(s[i + n]))) {
          ends.push_back(i + n);
          i += n - 1;
          break;
        }
      }
    } else if (static_cast<unsigned char>(s[i]) >= 0xE5) {
      for (const char* w : kZh) {
        if (starts_with(s, i, w)) {
          ends.push_back(i + std::strlen(w));
          i += std::strlen(w) - 1;
          break;
        }
      }
    }
  }
  for (size_t e0 : ends) {
    // the first date within a short window after the context word
    const size_t hi = std::min(s.size(), e0 + 40);
    for (size_t p = e0; p < hi; ++p) {
      if (is_digit(s[p]) || is_alpha(s[p])) {
        if ((is_digit(s[p]) && !num_left_ok(s, p)) ||
            (is_alpha(s[p]) && p > 0 && is_alpha(s[p - 1])))
          continue;
        if (const size_t e = parse_date(s, p)) {
          out.push_back({p, e, Entity::Dob});
          break;
        }
        if (is_digit(s[p])) break;  // a number that is not a date ends the search
      }
    }
  }
}

// ---- person names --------------------------------------------------------------------------

struct Word {
  size_t b, e;
};
// The ASCII word starting at i.
size_t word_end(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size() &&
         (is_alpha(s[j]) || (s[j] == '\'' && j + 1 < s.size() && is_alpha(s[j + 1]) && j > i)))
    ++j;
  return j;
}
bool capitalised(std::string_view w) {
  if (w.size() < 2 || !is_upper(w[0])) return false;
  return std::all_of(w.begin() + 1, w.end(), [](char c) { return is_lower(c) || c == '\''; });
}

// Han-character person names: a surname from the list, then 1-2 characters, with a context word
// just before ("姓名：", "我叫", "联系人") or a title just after ("先生", "女士", "经理").
void scan_person_zh(std::string_view s, Out& out) {
  const auto& G = gazetteers();
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t c = decode(s, i, &len);
    if (!is_han(c)) {
      i += len;
      continue;
    }
    size_t sur_end = 0;
    if (i + 6 <= s.size() && G.zh_compound_surnames.count(std::string(s.substr(i, 6))))
      sur_end = i + 6;
    else if (G.zh_surnames.count(std::string(s.substr(i, len))))
      sur_end = i + len;
    if (!sur_end) {
      i += len;
      continue;
    }
    // context before: skip ':', '：' and spaces, then a context word ending there
    size_t cb = i;
    while (cb > 0 && (s[cb - 1] == ':' || s[cb - 1] == ' ')) --cb;
    if (cb >= 3 && starts_with(s, cb - 3, "：")) cb -= 3;
    bool ctx = false;
    for (const auto& w : G.zh_name_context)
      if (cb >= w.size() && s.compare(cb - w.size(), w.size(), w) == 0) ctx = true;
    // given name: 1-2 Han characters, stopping at a title or a stop character
    size_t p = sur_end, given = 0, title_at = 0;
    bool title = false;
    while (given < 2 && p < s.size()) {
      bool at_title = false;
      for (const auto& t : G.zh_titles)
        if (starts_with(s, p, t)) at_title = true;
      if (at_title && given >= 1) {
        title = true;
        title_at = p;
        break;
      }
      size_t l2 = 0;
      const char32_t g = decode(s, p, &l2);
      if (!is_han(g) || G.zh_stop_chars.count(std::string(s.substr(p, l2)))) break;
      p += l2;
      ++given;
    }
    if (!title && given >= 1)
      for (const auto& t : G.zh_titles)
        if (starts_with(s, p, t)) title = true, title_at = p;
    if (given >= 1 && (ctx || title)) {
      out.push_back({i, title ? title_at : p, Entity::Person});
      i = p;
      continue;
    }
    i += len;
  }
}

void scan_person_en(std::string_view s, Out& out) {
  const auto& G = gazetteers();
  std::vector<Word> words;  // capitalised ASCII words, in order
  for (size_t i = 0; i < s.size();) {
    if (is_alpha(s[i]) && (i == 0 || !is_alnum(s[i - 1]))) {
      const size_t e = word_end(s, i);
      words.push_back({i, e});
      i = e;
    } else {
      ++i;
    }
  }
  auto text = [&](size_t k) { return std::string(s.substr(words[k].b, words[k].e - words[k].b)); };
  // words k and k+1 are adjacent (one space, or "J. " style initial between handled by caller)
  auto adjacent = [&](size_t k) {
    return k + 1 < words.size() && words[k + 1].b == words[k].e + 1 && s[words[k].e] == ' ';
  };
  auto cap_name = [&](size_t k) {
    const std::string w = text(k);
    return capitalised(w) && !G.en_stop_words.count(w) && !G.street_suffixes.count(w);
  };
  // preceded by a word that introduces a person: "Dear X", "patient X", "my name is X"
  auto name_cue = [&](size_t k) {
    const size_t lo = words[k].b >= 16 ? words[k].b - 16 : 0;
    std::string before(s.substr(lo, words[k].b - lo));
    for (auto& c : before) c = lower(c);
    for (const char* cw : {"name is ", "named ", "dear ", "called ", "i'm ", "i am ", "patient ",
                           "contact ", "reach ", "hello ", "hi ", "signed ", "by "}) {
      const size_t n = std::strlen(cw);
      if (before.size() >= n && before.compare(before.size() - n, n, cw) == 0 &&
          (before.size() == n || !is_alpha(before[before.size() - n - 1])))
        return true;
    }
    return false;
  };
  for (size_t k = 0; k < words.size(); ++k) {
    const std::string w = text(k);
    if (!capitalised(w)) continue;
    size_t first = k, last = k;
    bool hit = false;
    if (G.en_titles.count(w)) {
      // "Dr. Jane Smith", "Mr Wang": the title is not part of the name
      size_t q = k + 1;
      const size_t gap = q < words.size() ? words[q].b - words[k].e : 0;
      const bool dot = words[k].e < s.size() && s[words[k].e] == '.';
      if (q < words.size() && (gap == 1 || (dot && gap == 2)) && cap_name(q)) {
        first = last = q;
        if (adjacent(q) && cap_name(q + 1)) last = q + 1;
        hit = true;
      }
    } else if (G.en_given.count(w)) {
      size_t q = k + 1;
      // optional middle initial "J."
      if (q < words.size() && words[q].e - words[q].b == 1 && is_upper(s[words[q].b]) &&
          words[q].b == words[k].e + 1 && words[q].e < s.size() && s[words[q].e] == '.' &&
          q + 1 < words.size() && words[q + 1].b == words[q].e + 2)
        ++q;
      const bool adj = (q == k + 1) ? adjacent(k) : true;
      if (adj && q < words.size() && cap_name(q)) {
        last = q;
        if (adjacent(q) && G.en_surnames.count(text(q + 1))) last = q + 1;
        hit = true;
      } else {
        hit = name_cue(k);  // a lone given name after "Dear", "name is" ...
      }
    } else if (!G.en_stop_words.count(w) && adjacent(k) && G.en_surnames.count(text(k + 1)) &&
               !G.street_suffixes.count(w)) {
      last = k + 1;  // an unknown capitalised word before a listed surname: "Yara Garcia"
      hit = true;
    } else if (G.en_surnames.count(w) && G.pinyin_surname.count(w) && adjacent(k) &&
               cap_name(k + 1)) {
      last = k + 1;  // pinyin order: "Wang Fang", "Li Na"
      hit = true;
    } else if (cap_name(k) && name_cue(k)) {
      if (adjacent(k) && cap_name(k + 1)) last = k + 1;  // "Dear Yara", "patient Arjun Haddad"
      hit = true;
    }
    if (hit) {
      // followed by a street suffix: a street name, not a person ("Jackson Street")
      if (last + 1 < words.size() && adjacent(last) && G.street_suffixes.count(text(last + 1)))
        continue;
      out.push_back({words[first].b, words[last].e, Entity::Person});
      k = last;
    }
  }
}

// ---- addresses ------------------------------------------------------------------------------

void scan_address_en(std::string_view s, Out& out) {
  const auto& G = gazetteers();
  for (size_t i = 0; i < s.size(); ++i) {
    if (!is_digit(s[i]) || !num_left_ok(s, i)) continue;
    size_t p = i;
    while (p < s.size() && is_digit(s[p])) ++p;
    if (p - i > 5) {
      i = p;
      continue;
    }
    if (p < s.size() && is_upper(s[p]) && (p + 1 >= s.size() || s[p + 1] == ' ')) ++p;  // 221B
    if (p >= s.size() || s[p] != ' ') {
      i = p;
      continue;
    }
    // 1-4 name words (capitalised or ordinal "5th"), then a street suffix
    size_t q = p + 1, nwords = 0, end = 0;
    while (nwords <= 4 && q < s.size()) {
      const size_t we = is_digit(s[q]) ? q + digits_at(s, q, 3) : word_end(s, q);
      if (we == q) break;
      std::string w(s.substr(q, we - q));
      size_t wend = we;
      if (is_digit(w[0])) {
        if (!starts_with_ci(s, we, "st") && !starts_with_ci(s, we, "nd") &&
            !starts_with_ci(s, we, "rd") && !starts_with_ci(s, we, "th"))
          break;
        wend = we + 2;
      } else if (!is_upper(w[0])) {
        break;
      }
      if (nwords >= 1 && G.street_suffixes.count(w)) {
        end = wend;
        // "St." keeps its dot only inside the address ("12 Main St., Springfield")
        if (w.size() <= 4 && end + 1 < s.size() && s[end] == '.' && s[end + 1] == ',') ++end;
        break;
      }
      ++nwords;
      if (wend >= s.size() || s[wend] != ' ') break;
      q = wend + 1;
    }
    if (!end) {
      i = p;
      continue;
    }
    // optional unit ", Apt 4B" / " Suite 200" / " #12", then ", City, ST 12345"
    size_t r = end;
    auto try_unit = [&](size_t at) -> size_t {
      size_t u = at;
      if (u < s.size() && s[u] == ',') ++u;
      if (u >= s.size() || s[u] != ' ') return 0;
      ++u;
      for (const char* kw : {"Apt ", "Apt. ", "Suite ", "Unit ", "#", "Room ", "Floor "}) {
        if (starts_with(s, u, kw)) {
          size_t v = u + std::strlen(kw);
          const size_t v0 = v;
          while (v < s.size() && is_alnum(s[v])) ++v;
          return v > v0 ? v : 0;
        }
      }
      return 0;
    };
    if (const size_t u = try_unit(r)) r = u;
    {
      // ", City Name, ST 12345(-1234)"
      size_t c = r;
      if (c + 2 < s.size() && s[c] == ',' && s[c + 1] == ' ') {
        c += 2;
        size_t cw = 0;
        while (cw < 3 && c < s.size() && is_upper(s[c])) {
          const size_t we = word_end(s, c);
          c = we;
          ++cw;
          if (c < s.size() && s[c] == ' ' && c + 1 < s.size() && is_upper(s[c + 1]) &&
              !(c + 3 <= s.size() && is_upper(s[c + 1]) && c + 2 < s.size() && is_upper(s[c + 2])))
            ++c;
          else
            break;
        }
        if (cw >= 1 && c + 4 < s.size() && s[c] == ',' && s[c + 1] == ' ' && is_upper(s[c + 2]) &&
            is_upper(s[c + 3])) {
          size_t z = c + 4;
          if (z < s.size() && s[z] == ' ' && digits_at(s, z + 1, 5) == 5) {
            z += 6;
            if (z + 5 <= s.size() && s[z] == '-' && digits_at(s, z + 1, 4) == 4) z += 5;
            r = z;
          } else if (z >= s.size() || !is_alpha(s[z])) {
            r = z;
          }
        }
      }
    }
    out.push_back({i, r, Entity::Address});
    i = r;
  }
}

// Chinese street addresses: "...路|街|道|巷|弄 <number>号" with the place names before it (back to
// a non-Han character or a stop character such as 在/住/于/是) and the building/unit/room after.
void scan_address_zh(std::string_view s, Out& out) {
  const auto& G = gazetteers();
  size_t from = 0;
  while (true) {
    const size_t h = s.find("号", from);
    if (h == std::string_view::npos) return;
    from = h + 3;
    size_t d = h;
    while (d > 0 && (is_digit(s[d - 1]) || s[d - 1] == '-')) --d;
    if (d == h || !is_digit(s[d])) continue;
    if (d < 3) continue;
    const std::string suf(s.substr(d - 3, 3));
    if (!G.zh_street_suffixes.count(suf)) continue;
    // left: Han characters (and digits) back to a stop character, at most 30 characters
    size_t b = d - 3, n = 0;
    while (b > 0 && n < 30) {
      const size_t pb = prev_cp(s, b);
      size_t l = 0;
      const char32_t c = decode(s, pb, &l);
      if (!(is_han(c) || is_digit(s[pb])) || G.zh_addr_stop.count(std::string(s.substr(pb, l))))
        break;
      b = pb;
      ++n;
    }
    if (n < 1) continue;
    // right: "3栋2单元501室", "12楼", "1202室"
    size_t e = h + 3;
    while (true) {
      size_t q = e;
      while (q < s.size() && is_digit(s[q])) ++q;
      if (q == e) break;
      bool unit = false;
      for (const auto& u : G.zh_unit_suffixes)
        if (starts_with(s, q, u)) {
          e = q + u.size();
          unit = true;
          break;
        }
      if (!unit) break;
    }
    out.push_back({b, e, Entity::Address});
    from = e;
  }
}

uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

const char* entity_name(Entity e) {
  return kNames[static_cast<int>(e)];
}
const char* entity_tag(Entity e) {
  return kTags[static_cast<int>(e)];
}
std::optional<Entity> parse_entity(std::string_view name) {
  for (int i = 0; i < kEntityCount; ++i)
    if (name == kNames[i]) return static_cast<Entity>(i);
  return std::nullopt;
}

EntitySet parse_entity_list(std::string_view list) {
  EntitySet set = EntitySet::none();
  size_t start = 0;
  while (start <= list.size()) {
    size_t c = list.find(',', start);
    if (c == std::string_view::npos) c = list.size();
    std::string_view name = list.substr(start, c - start);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) {
      const auto e = parse_entity(name);
      if (!e) {
        std::string all;
        for (const char* n : kNames) all += std::string(all.empty() ? "" : ", ") + n;
        throw InvalidArgument(ErrorContext().key("--entities"),
                              "unknown entity '" + std::string(name) + "' (known: " + all + ")");
      }
      set.add(*e);
    }
    start = c + 1;
  }
  if (!set.bits) throw InvalidArgument(ErrorContext().key("--entities"), "no entity named");
  return set;
}

bool luhn_ok(std::string_view d) {
  int sum = 0;
  bool dbl = false;
  for (size_t i = d.size(); i-- > 0;) {
    int v = d[i] - '0';
    if (dbl && (v *= 2) > 9) v -= 9;
    sum += v;
    dbl = !dbl;
  }
  return !d.empty() && sum % 10 == 0;
}

bool cn_id_ok(std::string_view id) {
  if (id.size() != 18) return false;
  for (int k = 0; k < 17; ++k)
    if (!is_digit(id[k])) return false;
  if (!cn_region_ok(num(id, 0, 2))) return false;
  if (!date_ok(num(id, 6, 4), num(id, 10, 2), num(id, 12, 2))) return false;
  const char c = id[17] == 'x' ? 'X' : id[17];
  return c == cn_id_check(id);
}

bool iban_ok(std::string_view iban) {
  if (iban.size() < 15 || iban_length(iban.substr(0, 2)) != static_cast<int>(iban.size()))
    return false;
  std::string r(iban.substr(4));
  r.append(iban.substr(0, 4));
  return iban_mod97(r) == 1;
}

bool ssn_ok(std::string_view d) {
  if (d.size() != 9 || !std::all_of(d.begin(), d.end(), is_digit)) return false;
  const int area = num(d, 0, 3), group = num(d, 3, 2), serial = num(d, 5, 4);
  if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return false;
  // numbers the SSA says were never valid (advertising samples)
  if (d == "078051120" || d == "219099999" || d == "123456789") return false;
  return true;
}

std::vector<Span> detect(std::string_view s, EntitySet en) {
  Out c;
  if (en.has(Entity::Email)) scan_email(s, c);
  if (en.has(Entity::Url)) scan_url(s, c);
  if (en.has(Entity::Ip)) {
    scan_ipv4(s, c);
    scan_ipv6(s, c);
  }
  if (en.has(Entity::CnId)) scan_cn_id(s, c);
  if (en.has(Entity::Iban)) scan_iban(s, c);
  if (en.has(Entity::Card) || en.has(Entity::Ssn) || en.has(Entity::Phone)) {
    Out n;
    scan_numbers(s, n);
    for (const auto& x : n)
      if (en.has(x.t)) c.push_back(x);
  }
  if (en.has(Entity::Dob)) scan_dob(s, c);
  if (en.has(Entity::Person)) {
    scan_person_en(s, c);
    scan_person_zh(s, c);
  }
  if (en.has(Entity::Address)) {
    scan_address_en(s, c);
    scan_address_zh(s, c);
  }
  // longest first, then the more specific type, then the earlier start; keep what does not
  // overlap an accepted span
  std::sort(c.begin(), c.end(), [](const Cand& a, const Cand& b) {
    if (a.e - a.b != b.e - b.b) return a.e - a.b > b.e - b.b;
    if (a.t != b.t) return a.t < b.t;
    return a.b < b.b;
  });
  std::vector<Span> kept;
  for (const auto& x : c) {
    bool clash = false;
    for (const auto& k : kept)
      if (x.b < k.end && k.begin < x.e) {
        clash = true;
        break;
      }
    if (!clash) kept.push_back({x.b, x.e, x.t});
  }
  std::sort(kept.begin(), kept.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  return kept;
}

std::optional<Mode> parse_mode(std::string_view name) {
  if (name == "mask") return Mode::Mask;
  if (name == "replace") return Mode::Replace;
  if (name == "hash") return Mode::Hash;
  if (name == "drop") return Mode::Drop;
  return std::nullopt;
}
const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Mask:
      return "mask";
    case Mode::Replace:
      return "replace";
    case Mode::Hash:
      return "hash";
    case Mode::Drop:
      return "drop";
  }
  return "?";
}

namespace {

std::string normalise(Entity t, std::string_view v) {
  std::string out;
  switch (t) {
    case Entity::Email:
    case Entity::Url:
    case Entity::Ip:
      for (char c : v) out += lower(c);
      return out;
    case Entity::Phone: {
      for (char c : v)
        if (is_digit(c)) out += c;
      if (out.size() == 15 && out.compare(0, 4, "0086") == 0) out.erase(0, 4);
      if (out.size() == 13 && out.compare(0, 2, "86") == 0 && out[2] == '1') out.erase(0, 2);
      return out;
    }
    case Entity::CnId:
    case Entity::Ssn:
    case Entity::Card:
    case Entity::Iban:
    case Entity::Dob:
      for (char c : v)
        if (is_alnum(c)) out += is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c;
      return out;
    default:
      return std::string(v);
  }
}

// Writes `chars` over the alphanumeric characters of `layout` in order (keeps separators).
std::string relayout(std::string_view layout, const std::string& chars) {
  std::string out(layout);
  size_t k = 0;
  for (auto& c : out)
    if (is_alnum(c) && k < chars.size()) c = chars[k++];
  return out;
}

struct Rng {
  uint64_t x;
  uint64_t next() { return splitmix(x); }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
  char digit(int lo = 0) { return static_cast<char>('0' + lo + below(10 - lo)); }
  template <class C>
  const auto& pick(const C& c) {
    return c[static_cast<size_t>(below(static_cast<int>(c.size())))];
  }
};

std::string fake_date_like(std::string_view v, Rng& r) {
  const int y = 1940 + r.below(66), m = 1 + r.below(12), d = 1 + r.below(28);
  char buf[64];
  if (v.find("年") != std::string_view::npos) {
    std::snprintf(buf, sizeof buf, "%d年%d月%d日", y, m, d);
    return buf;
  }
  if (v.size() >= 5 && is_digit(v[0]) && is_digit(v[3]) && !is_digit(v[4])) {
    std::snprintf(buf, sizeof buf, "%04d%c%02d%c%02d", y, v[4], m, v[4], d);
    return buf;
  }
  if (!v.empty() && is_alpha(v[0])) {
    std::string mn = kMonths[m - 1];
    mn[0] = static_cast<char>(mn[0] - 32);
    return mn + " " + std::to_string(d) + ", " + std::to_string(y);
  }
  if (!v.empty() && is_digit(v[0]) && v.find_first_of("/.-") != std::string_view::npos) {
    const char sep = v[v.find_first_of("/.-")];
    std::snprintf(buf, sizeof buf, "%02d%c%02d%c%04d", m, sep, d, sep, y);
    return buf;
  }
  std::string mn = kMonths[m - 1];
  mn[0] = static_cast<char>(mn[0] - 32);
  return std::to_string(d) + " " + mn + " " + std::to_string(y);
}

}  // namespace

std::string fake_value(Entity t, std::string_view v, uint64_t seed) {
  // The generator depends only on (seed, type, value): the same value gets the same fake.
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (char c : std::string(entity_name(t)) + ":" + std::string(v))
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  Rng r{h ^ (seed * 0x9E3779B97F4A7C15ULL)};
  const auto& G = gazetteers();
  std::string alnum;
  for (char c : v)
    if (is_alnum(c)) alnum += c;
  const bool numeric = t == Entity::Phone || t == Entity::CnId || t == Entity::Ssn ||
                       t == Entity::Card || t == Entity::Iban;
  if (numeric && alnum.size() < 8) {  // not a value the detector gives: random digits in place
    std::string d = alnum;
    for (auto& c : d) c = is_digit(c) ? r.digit() : c;
    return relayout(v, d);
  }
  switch (t) {
    case Entity::Email: {
      std::string g = r.pick(G.en_given_list), f = r.pick(G.en_surname_list);
      for (auto& c : g) c = lower(c);
      for (auto& c : f) c = lower(c);
      static const char* const kDomains[] = {"example.com", "example.org", "example.net"};
      return g + "." + f + std::to_string(r.below(100)) + "@" + kDomains[r.below(3)];
    }
    case Entity::Phone: {
      // keep the country code and the area code / mobile prefix; draw the rest
      std::string d;
      for (char c : v)
        if (is_digit(c)) d += c;
      size_t keep = 3;
      const bool plus = !v.empty() && v[0] == '+';
      if (plus) {
        size_t cc = 0;
        while (cc < v.size() - 1 && is_digit(v[1 + cc])) ++cc;
        if (cc >= d.size() - 6) cc = d.compare(0, 2, "86") == 0 ? 2 : d[0] == '1' ? 1 : 2;
        const std::string nat = d.substr(cc);
        size_t area = nat[0] == '1' && nat.size() == 11 ? 3 : 2;
        keep = cc + area;
      } else if (d[0] == '0') {
        keep = d[1] == '1' || d[1] == '2' ? 3 : 4;
      }
      keep = std::min(keep, d.size() - 4);
      for (size_t k = keep; k < d.size(); ++k) d[k] = r.digit(k == keep ? 2 : 0);
      return relayout(v, d);
    }
    case Entity::CnId: {
      static const char* const kRegions[] = {"110101", "310104", "440305", "330106",
                                             "510104", "420102", "320102", "610113"};
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%04d%02d%02d%03d", kRegions[r.below(8)], 1950 + r.below(56),
                    1 + r.below(12), 1 + r.below(28), r.below(1000));
      std::string id = buf;
      id += cn_id_check(id);
      return relayout(v, id);
    }
    case Entity::Ssn: {
      int area = 1 + r.below(899);
      if (area == 666) area = 667;
      char buf[16];
      std::snprintf(buf, sizeof buf, "%03d%02d%04d", area, 1 + r.below(99), 1 + r.below(9999));
      return relayout(v, buf);
    }
    case Entity::Card: {
      // keep the scheme (first two digits), draw the rest, fix the Luhn digit
      std::string d = alnum;
      for (size_t k = 2; k + 1 < d.size(); ++k) d[k] = r.digit();
      d.back() = '0';
      for (int c = 0; c < 10; ++c) {
        d.back() = static_cast<char>('0' + c);
        if (luhn_ok(d)) break;
      }
      return relayout(v, d);
    }
    case Entity::Iban: {
      std::string d = alnum;
      for (size_t k = 4; k < d.size(); ++k)
        d[k] = is_digit(d[k]) ? r.digit() : static_cast<char>('A' + r.below(26));
      d[2] = d[3] = '0';
      std::string re = d.substr(4) + d.substr(0, 4);
      const int check = 98 - iban_mod97(re);
      d[2] = static_cast<char>('0' + check / 10);
      d[3] = static_cast<char>('0' + check % 10);
      return relayout(v, d);
    }
    case Entity::Ip: {
      if (v.find(':') != std::string_view::npos) {
        char buf[48];
        std::snprintf(buf, sizeof buf, "2001:db8::%x:%x", r.below(0x10000), r.below(0x10000));
        return buf;
      }
      static const char* const kNets[] = {"192.0.2.", "198.51.100.", "203.0.113."};
      return kNets[r.below(3)] + std::to_string(1 + r.below(254));
    }
    case Entity::Url: {
      std::string path;
      for (int k = 0; k < 8; ++k) path += static_cast<char>('a' + r.below(26));
      return "https://www.example.com/" + path;
    }
    case Entity::Dob:
      return fake_date_like(v, r);
    case Entity::Person: {
      if (!v.empty() && static_cast<unsigned char>(v[0]) >= 0x80) {
        size_t chars = 0;
        for (size_t i = 0; i < v.size();) {
          size_t l = 0;
          decode(v, i, &l);
          i += l;
          ++chars;
        }
        std::string out = r.pick(G.zh_surname_list);
        for (size_t k = 1; k < std::max<size_t>(chars, 2); ++k) out += r.pick(G.zh_given_chars);
        return out;
      }
      const bool two = v.find(' ') != std::string_view::npos;
      return two ? r.pick(G.en_given_list) + " " + r.pick(G.en_surname_list)
                 : r.pick(G.en_given_list);
    }
    case Entity::Address: {
      if (!v.empty() && static_cast<unsigned char>(v[0]) >= 0x80)
        return r.pick(G.zh_cities) + r.pick(G.zh_roads) + std::to_string(1 + r.below(300)) + "号";
      static const char* const kSuf[] = {"Street", "Avenue", "Road", "Lane", "Drive"};
      return std::to_string(1 + r.below(9999)) + " " + r.pick(G.en_surname_list) + " " +
             kSuf[r.below(5)];
    }
  }
  return std::string(v);
}

std::string hash_value(Entity t, std::string_view v, std::string_view key) {
  if (key.size() < 16)
    throw InvalidArgument(ErrorContext().key("--key-file"),
                          "hash mode needs an HMAC key of at least 16 bytes");
  if (sodium_init() < 0) throw IoError("libsodium: sodium_init failed");
  const std::string msg = std::string(entity_name(t)) + ":" + normalise(t, v);
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(msg.data()),
                                msg.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  static const char* hex = "0123456789abcdef";
  std::string out = std::string("<") + entity_tag(t) + ":";
  for (int k = 0; k < 16; ++k) {
    out += hex[mac[k] >> 4];
    out += hex[mac[k] & 15];
  }
  return out + ">";
}

std::string transform(std::string_view text, const std::vector<Span>& spans,
                      const TransformOptions& opt) {
  if (opt.mode == Mode::Drop || spans.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16 * spans.size());
  size_t at = 0;
  for (const auto& sp : spans) {
    out.append(text.substr(at, sp.begin - at));
    const auto v = text.substr(sp.begin, sp.end - sp.begin);
    switch (opt.mode) {
      case Mode::Mask:
        out += '<';
        out += entity_tag(sp.type);
        out += '>';
        break;
      case Mode::Replace:
        out += fake_value(sp.type, v, opt.seed);
        break;
      case Mode::Hash:
        out += hash_value(sp.type, v, opt.key);
        break;
      case Mode::Drop:
        break;
    }
    at = sp.end;
  }
  out.append(text.substr(at));
  return out;
}

}  // namespace ohm::safety::deid
