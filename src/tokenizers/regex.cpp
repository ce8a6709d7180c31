// Oniguruma wrapper with the onig crate's semantics (what HF tokenizers uses): the default
// Oniguruma syntax (Unicode \w, \s, \d), find_iter skipping empty matches after a match.
#include <oniguruma.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>

#include "internal.h"

namespace ohm::tokenizers {

static void onig_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    onig_initialize(&enc, 1);
  });
}

// ---- hand-written matchers for the common byte-level pre-tokenizer patterns ----
// Each is the exact pattern text as tokenizer.json spells it. Every character of any string is
// matched by one of their alternatives (a letter, a number, a space or "anything else"), so
// find_iter is a partition of the string into non-empty matches, each starting where the last
// ended; the matchers below return the end of the match at a position, resolving Oniguruma's
// leftmost-first alternation and backtracking for these patterns by hand. The character classes
// come from Oniguruma's own Unicode tables, so both agree on every code point.
namespace {

const char* const kFastPatterns[] = {
    // 1: GPT-2 (ByteLevel's use_regex)
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
    // 2: cl100k (Llama 3)
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
    // 3: o200k (GPT-4o)
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
};

enum : uint16_t {
  kL = 1,   // \p{L}
  kN = 2,   // \p{N}
  kS = 4,   // \s
  kU = 8,   // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
  kW = 16,  // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
  kKnown = 0x8000,
};

// Class bits of every code point, filled on first use (a relaxed race writes the same value).
class CharClasses {
 public:
  CharClasses() : table_(new std::atomic<uint16_t>[0x110000]) {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    auto ctype = [enc](const char* name) {
      std::string n = name;
      auto* p = reinterpret_cast<OnigUChar*>(n.data());
      int t = ONIGENC_PROPERTY_NAME_TO_CTYPE(enc, p, p + n.size());
      if (t < 0) throw InvalidArgument(std::string("Oniguruma lacks property ") + name);
      return static_cast<unsigned>(t);
    };
    l_ = ctype("L");
    n_ = ctype("N");
    lu_ = ctype("Lu");
    lt_ = ctype("Lt");
    lm_ = ctype("Lm");
    lo_ = ctype("Lo");
    ll_ = ctype("Ll");
    m_ = ctype("M");
    for (char32_t c = 0; c < 0x110000; ++c) table_[c].store(0, std::memory_order_relaxed);
    for (char32_t c = 0; c < 0x80; ++c) {
      ascii_[c] = compute(c);
      table_[c].store(ascii_[c], std::memory_order_relaxed);
    }
  }
  uint16_t ascii(unsigned char b) const { return ascii_[b]; }  // b < 0x80
  uint16_t operator()(char32_t c) const {
    if (c < 0x80) return ascii_[c];
    if (c >= 0x110000) return kKnown;
    uint16_t v = table_[c].load(std::memory_order_relaxed);
    if (v) return v;
    v = compute(c);
    table_[c].store(v, std::memory_order_relaxed);
    return v;
  }

 private:
  uint16_t compute(char32_t c) const {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    auto is = [&](unsigned t) { return ONIGENC_IS_CODE_CTYPE(enc, c, t) != 0; };
    uint16_t v = kKnown;
    if (is(l_)) v |= kL;
    if (is(n_)) v |= kN;
    if (is(ONIGENC_CTYPE_SPACE)) v |= kS;
    bool lm = is(lm_), lo = is(lo_), m = is(m_);
    if (is(lu_) || is(lt_) || lm || lo || m) v |= kU;
    if (is(ll_) || lm || lo || m) v |= kW;
    return v;
  }
  std::unique_ptr<std::atomic<uint16_t>[]> table_;
  uint16_t ascii_[0x80] = {};
  unsigned l_, n_, lu_, lt_, lm_, lo_, ll_, m_;
};

const CharClasses& classes() {
  static const CharClasses c;
  return c;
}

struct Cursor {
  std::string_view s;
  const CharClasses& cc;
  // Class bits of the character at i (0 at the end), its length in *n.
  uint16_t at(size_t i, size_t* n) const {
    if (i >= s.size()) {
      *n = 0;
      return 0;
    }
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      *n = 1;
      return cc.ascii(b);
    }
    size_t len = utf8_len(b);
    if (i + len > s.size()) len = s.size() - i;
    *n = len;
    size_t dl;
    return cc(utf8_decode(s.data() + i, &dl));
  }
  // End of the run of characters having any of `bits`, from i.
  size_t run(size_t i, uint16_t bits) const {
    while (i < s.size()) {
      auto b = static_cast<unsigned char>(s[i]);
      size_t n = 1;
      uint16_t c = b < 0x80 ? cc.ascii(b) : at(i, &n);
      if (!(c & bits)) break;
      i += n;
    }
    return i;
  }
  // [^\s\p{L}\p{N}]: a character that is none of these.
  static bool other(uint16_t c) { return c != 0 && !(c & (kS | kL | kN)); }
  size_t run_other(size_t i) const {
    size_t n;
    while (i < s.size() && other(at(i, &n))) i += n;
    return i;
  }
  // \s+(?!\S)|\s+ at i (a space): the run less its last character when that leaves one and
  // the run does not reach the end.
  size_t spaces(size_t i) const {
    size_t last = i, e = i, n;
    while (e < s.size() && (at(e, &n) & kS)) {
      last = e;
      e += n;
    }
    if (e < s.size() && last > i) return last;
    return e;
  }
  // \s*[\r\n]+ at i: through the last \r or \n of the space run, or 0 when there is none.
  size_t spaces_to_newline(size_t i) const {
    size_t e = run(i, kS), r = 0;
    for (size_t k = i; k < e; ++k)
      if (s[k] == '\r' || s[k] == '\n') r = k + 1;
    return r;
  }
  // 's|'t|'re|'ve|'m|'ll|'d at i (case-insensitive: Oniguruma folds U+017F to s); 0 if none.
  size_t contraction(size_t i, bool icase) const {
    if (i + 1 >= s.size() || s[i] != '\'') return 0;
    auto low = [&](size_t k) -> char {
      if (k >= s.size()) return 0;
      char c = s[k];
      return icase && c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    };
    char a = low(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (icase && s.compare(i + 1, 2, "\xC5\xBF") == 0) return i + 3;  // U+017F
    char b = low(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
  }
};

size_t match_gpt2(const Cursor& c, size_t p) {
  if (size_t e = c.contraction(p, false)) return e;
  size_t n0, n1;
  uint16_t c0 = c.at(p, &n0);
  if (c.s[p] == ' ') {
    uint16_t c1 = c.at(p + 1, &n1);
    if (c1 & kL) return c.run(p + 1, kL);
    if (c1 & kN) return c.run(p + 1, kN);
    if (Cursor::other(c1)) return c.run_other(p + 1);
  }
  if (c0 & kL) return c.run(p, kL);
  if (c0 & kN) return c.run(p, kN);
  if (Cursor::other(c0)) return c.run_other(p);
  return c.spaces(p);
}

// [^\r\n\p{L}\p{N}]: the optional lead of cl100k / o200k words.
bool lead(const Cursor& c, size_t p, uint16_t cls) {
  return cls != 0 && !(cls & (kL | kN)) && c.s[p] != '\r' && c.s[p] != '\n';
}

size_t match_cl100k(const Cursor& c, size_t p) {
  if (size_t e = c.contraction(p, true)) return e;
  size_t n0, n1;
  uint16_t c0 = c.at(p, &n0);
  if (lead(c, p, c0) && (c.at(p + n0, &n1) & kL)) return c.run(p + n0, kL);
  if (c0 & kL) return c.run(p, kL);
  if (c0 & kN) {  // \p{N}{1,3}
    size_t e = p + n0;
    for (int k = 1; k < 3 && (c.at(e, &n1) & kN); ++k) e += n1;
    return e;
  }
  size_t q = p;
  if (c.s[p] == ' ' && Cursor::other(c.at(p + 1, &n1))) q = p + 1;
  if (Cursor::other(c.at(q, &n1))) {
    size_t e = c.run_other(q);
    while (e < c.s.size() && (c.s[e] == '\r' || c.s[e] == '\n')) ++e;
    return e;
  }
  if (size_t e = c.spaces_to_newline(p)) return e;
  return c.spaces(p);
}

// o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ at q, 0 if none. U* is
// greedy: W+ starts after the whole U run when an Ll follows it, else at the last W character
// inside the run (backtracking), else the branch fails.
size_t o200k_upper_lower(const Cursor& c, size_t q) {
  size_t e = q, last_w = SIZE_MAX, n;
  uint16_t cls;
  while ((cls = c.at(e, &n)) & kU) {
    if (cls & kW) last_w = e;
    e += n;
  }
  if (cls & kW) return c.run(e, kW);
  if (last_w != SIZE_MAX) return c.run(last_w, kW);
  return 0;
}
// [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* at q, 0 if none.
size_t o200k_upper(const Cursor& c, size_t q) {
  size_t n;
  if (!(c.at(q, &n) & kU)) return 0;
  return c.run(c.run(q, kU), kW);
}

size_t match_o200k(const Cursor& c, size_t p) {
  size_t n0, n1;
  uint16_t c0 = c.at(p, &n0);
  bool has_lead = lead(c, p, c0);
  auto with_contraction = [&](size_t e) {
    size_t k = c.contraction(e, true);
    return k ? k : e;
  };
  if (has_lead)
    if (size_t e = o200k_upper_lower(c, p + n0)) return with_contraction(e);
  if (size_t e = o200k_upper_lower(c, p)) return with_contraction(e);
  if (has_lead)
    if (size_t e = o200k_upper(c, p + n0)) return with_contraction(e);
  if (size_t e = o200k_upper(c, p)) return with_contraction(e);
  if (c0 & kN) {  // \p{N}{1,3}
    size_t e = p + n0;
    for (int k = 1; k < 3 && (c.at(e, &n1) & kN); ++k) e += n1;
    return e;
  }
  size_t q = p;
  if (c.s[p] == ' ' && Cursor::other(c.at(p + 1, &n1))) q = p + 1;
  if (Cursor::other(c.at(q, &n1))) {
    size_t e = c.run_other(q);
    while (e < c.s.size() && (c.s[e] == '\r' || c.s[e] == '\n' || c.s[e] == '/')) ++e;
    return e;
  }
  if (size_t e = c.spaces_to_newline(p)) return e;
  return c.spaces(p);
}

}  // namespace

Regex::Regex(const std::string& pattern) {
  for (size_t i = 0; i < std::size(kFastPatterns); ++i)
    if (pattern == kFastPatterns[i]) fast_ = static_cast<int>(i) + 1;

  onig_init_once();
  regex_t* re = nullptr;
  OnigErrorInfo einfo;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  int r = onig_new(&re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                   ONIG_SYNTAX_ONIGURUMA, &einfo);
  if (r != ONIG_NORMAL) {
    OnigUChar buf[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(buf, r, &einfo);
    throw InvalidArgument("invalid regex /" + pattern + "/: " + reinterpret_cast<char*>(buf));
  }
  re_ = re;
}

Regex::~Regex() {
  if (re_) onig_free(static_cast<regex_t*>(re_));
}

bool Regex::search(std::string_view s, size_t start, size_t* ms, size_t* me) const {
  struct RegionHolder {
    OnigRegion* r = onig_region_new();
    ~RegionHolder() { onig_region_free(r, 1); }
  };
  thread_local RegionHolder holder;
  OnigRegion* region = holder.r;
  const auto* b = reinterpret_cast<const OnigUChar*>(s.data());
  const OnigUChar* e = b + s.size();
  int r = onig_search(static_cast<regex_t*>(re_), b, e, b + start, e, region, ONIG_OPTION_NONE);
  if (r < 0) return false;
  *ms = static_cast<size_t>(region->beg[0]);
  *me = static_cast<size_t>(region->end[0]);
  return true;
}

void Regex::find_iter(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
  size_t last_end = 0;
  if (fast_) {
    const Cursor c{s, classes()};
    while (last_end < s.size()) {
      size_t e = fast_ == 1   ? match_gpt2(c, last_end)
                 : fast_ == 2 ? match_cl100k(c, last_end)
                              : match_o200k(c, last_end);
      if (e <= last_end) break;  // cannot happen (see above); Oniguruma takes the rest
      out.emplace_back(last_end, e);
      last_end = e;
    }
    if (last_end == s.size()) return;
  }
  bool have_last = last_end > 0;
  size_t last_match_end = last_end;
  while (last_end <= s.size()) {
    size_t ms, me;
    if (!search(s, last_end, &ms, &me)) break;
    if (ms == me && have_last && last_match_end == me) {
      last_end += last_end < s.size() ? utf8_len(static_cast<unsigned char>(s[last_end])) : 1;
      continue;
    }
    last_end = me;
    have_last = true;
    last_match_end = me;
    out.emplace_back(ms, me);
  }
}

}  // namespace ohm::tokenizers
