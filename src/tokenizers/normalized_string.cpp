// NormalizedString: HF tokenizers' alignment-tracking string (tokenizer/normalizer.rs).
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "internal.h"

namespace ohm::tokenizers {

NormalizedString::NormalizedString(std::string_view s, uint32_t base) : norm_(s) {
  align_.resize(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(static_cast<unsigned char>(s[i]));
    if (i + n > s.size()) n = s.size() - i;
    Align a{static_cast<uint32_t>(base + i), static_cast<uint32_t>(base + i + n)};
    for (size_t k = 0; k < n; ++k) align_[i + k] = a;
    i += n;
  }
  orig_start_ = base;
  orig_end_ = base + static_cast<uint32_t>(s.size());
}

void NormalizedString::transform_range(size_t ns, size_t ne,
                                       const std::vector<std::pair<char32_t, int>>& dest,
                                       size_t initial_offset) {
  // Sizes of the replaced chars.
  std::vector<uint8_t> sizes;
  sizes.reserve(ne - ns);
  for (size_t i = ns; i < ne;) {
    size_t n = utf8_len(static_cast<unsigned char>(norm_[i]));
    sizes.push_back(static_cast<uint8_t>(n));
    i += n;
  }
  size_t ri = 0;
  size_t offset = ns;
  for (; ri < initial_offset && ri < sizes.size(); ++ri) offset += sizes[ri];
  std::string out;
  out.reserve(dest.size() + 8);
  std::vector<Align> aligns;
  aligns.reserve(dest.size() + 8);
  const Align zero{orig_start_, orig_start_};
  for (const auto& [c, change] : dest) {
    size_t idx = offset;
    Align a;
    if (change > 0) {
      a = idx < 1 ? zero : align_[idx - 1];
    } else {
      a = idx < align_.size() ? align_[idx] : (align_.empty() ? zero : align_.back());
    }
    if (change <= 0 && ri < sizes.size()) offset += sizes[ri++];
    if (change < 0) {
      for (int k = 0; k < -change && ri < sizes.size(); ++k) offset += sizes[ri++];
    }
    size_t before = out.size();
    utf8_append(out, c);
    for (size_t k = before; k < out.size(); ++k) aligns.push_back(a);
  }
  norm_.replace(ns, ne - ns, out);
  align_.erase(align_.begin() + static_cast<std::ptrdiff_t>(ns),
               align_.begin() + static_cast<std::ptrdiff_t>(ne));
  align_.insert(align_.begin() + static_cast<std::ptrdiff_t>(ns), aligns.begin(), aligns.end());
}

void NormalizedString::prepend(std::string_view s) {
  if (norm_.empty() || s.empty()) return;
  size_t n;
  char32_t next = utf8_decode(norm_.data(), &n);
  std::vector<std::pair<char32_t, int>> tr;
  bool first = true;
  for (char32_t c : utf8_to_u32(s)) {
    tr.emplace_back(c, first ? 0 : 1);
    first = false;
  }
  tr.emplace_back(next, 1);
  transform_range(0, n, tr, 0);
}

void NormalizedString::append(std::string_view s) {
  if (s.empty()) return;
  std::vector<std::pair<char32_t, int>> tr;
  if (norm_.empty()) {
    for (char32_t c : utf8_to_u32(s)) tr.emplace_back(c, 1);
    transform_range(0, 0, tr, 0);
    return;
  }
  size_t b = norm_.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(norm_[b]) & 0xC0) == 0x80) --b;
  size_t n;
  char32_t prev = utf8_decode(norm_.data() + b, &n);
  tr.emplace_back(prev, 0);
  for (char32_t c : utf8_to_u32(s)) tr.emplace_back(c, 1);
  transform_range(b, norm_.size(), tr, 0);
}

void NormalizedString::replace(const Pattern& p, std::string_view content) {
  std::vector<Match> ms;
  p.find_matches(norm_, ms);
  bool any = false;
  for (auto& m : ms) any |= m.is_match;
  if (!any) return;
  std::string out;
  out.reserve(norm_.size());
  std::vector<Align> al;
  al.reserve(align_.size());
  const Align zero{orig_start_, orig_start_};
  size_t last_end = 0;
  for (auto& m : ms) {
    if (!m.is_match) continue;
    out.append(norm_, last_end, m.start - last_end);
    al.insert(al.end(), align_.begin() + static_cast<std::ptrdiff_t>(last_end),
              align_.begin() + static_cast<std::ptrdiff_t>(m.start));
    Align a = m.end < 1 ? zero : align_[m.end - 1];
    out.append(content);
    al.insert(al.end(), content.size(), a);
    last_end = m.end;
  }
  out.append(norm_, last_end, std::string::npos);
  al.insert(al.end(), align_.begin() + static_cast<std::ptrdiff_t>(last_end), align_.end());
  norm_ = std::move(out);
  align_ = std::move(al);
}

void NormalizedString::replace_char(char32_t from, std::string_view content) {
  std::string f;
  utf8_append(f, from);
  if (norm_.find(f) == std::string::npos) return;
  std::string out;
  out.reserve(norm_.size() + norm_.size() / 2);
  std::vector<Align> al;
  al.reserve(out.capacity());
  size_t pos = 0;
  while (true) {
    size_t m = norm_.find(f, pos);
    if (m == std::string::npos) break;
    out.append(norm_, pos, m - pos);
    al.insert(al.end(), align_.begin() + static_cast<std::ptrdiff_t>(pos),
              align_.begin() + static_cast<std::ptrdiff_t>(m));
    size_t e = m + f.size();
    out.append(content);
    al.insert(al.end(), content.size(), align_[e - 1]);
    pos = e;
  }
  out.append(norm_, pos, std::string::npos);
  al.insert(al.end(), align_.begin() + static_cast<std::ptrdiff_t>(pos), align_.end());
  norm_ = std::move(out);
  align_ = std::move(al);
}

void NormalizedString::lowercase() {
  bool change = false;
  std::vector<std::pair<char32_t, int>> tr;
  tr.reserve(norm_.size());
  std::vector<char32_t> lc;
  for (size_t i = 0; i < norm_.size();) {
    size_t n;
    char32_t c = utf8_decode(norm_.data() + i, &n);
    i += n;
    lc.clear();
    if (c < 0x80) {
      lc.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else {
      to_lower(c, lc);
    }
    if (lc.size() != 1 || lc[0] != c) change = true;
    for (size_t k = 0; k < lc.size(); ++k) tr.emplace_back(lc[k], k > 0 ? 1 : 0);
  }
  if (change) transform(tr, 0);
}

void NormalizedString::strip(bool left, bool right) {
  auto chars = utf8_to_u32(norm_);
  size_t lead = 0, trail = 0;
  if (left)
    while (lead < chars.size() && is_whitespace(chars[lead])) ++lead;
  if (right)
    while (trail < chars.size() && is_whitespace(chars[chars.size() - 1 - trail])) ++trail;
  if (lead == 0 && trail == 0) return;
  size_t count = chars.size();
  std::vector<std::pair<char32_t, int>> tr;
  for (size_t i = 0; i < count; ++i) {
    if (i < lead || i >= count - trail) continue;
    // HF compares a char index with a byte length here; kept for identical alignments.
    if (norm_.size() >= trail + 1 && i == norm_.size() - trail - 1)
      tr.emplace_back(chars[i], -static_cast<int>(trail));
    else
      tr.emplace_back(chars[i], 0);
  }
  transform(tr, lead);
}

static std::string nf_map(std::string_view s, int form) {
  int opts = UTF8PROC_STABLE;
  switch (form) {
    case 0:
      opts |= UTF8PROC_COMPOSE;
      break;
    case 1:
      opts |= UTF8PROC_DECOMPOSE;
      break;
    case 2:
      opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    default:
      opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
  }
  utf8proc_uint8_t* out = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                        static_cast<utf8proc_ssize_t>(s.size()), &out,
                        static_cast<utf8proc_option_t>(opts));
  if (n < 0) {
    std::free(out);
    return std::string(s);
  }
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

namespace {

// Combining classes and compositions as HF's unicode-normalization-alignments crate has them:
// marks newer than its tables are starters that never compose (found by tests/diff, e.g.
// U+08CA, U+1DF7 and U+1ABF under Qwen3's NFC).
int ccc(char32_t c) {
  if (hf_unknown_mark(c)) return 0;
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

// Canonical composition of a pair, or 0 when they do not compose.
char32_t compose_pair(char32_t a, char32_t b) {
  if (hf_unknown_mark(a) || hf_unknown_mark(b)) return 0;
  std::string s;
  utf8_append(s, a);
  utf8_append(s, b);
  std::string r = nf_map(s, 0);
  size_t n;
  if (r.empty()) return 0;
  char32_t c = utf8_decode(r.data(), &n);
  return n == r.size() ? c : 0;
}

}  // namespace

// Mirrors the unicode-normalization-alignments crate HF uses: every input char is decomposed on
// its own (first char change 0, the rest +1), non-starter runs are stably reordered by combining
// class carrying their changes, and for NFC/NFKC the composition merges a char into its starter
// (change of the starter + change of the char - 1).
void NormalizedString::unicode_normalize(int form) {
  bool ascii = true;
  for (unsigned char c : norm_)
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) return;
  bool unknown = false;  // utf8proc's answer is HF's unless a newer mark is in the string
  for (size_t i = 0; i < norm_.size() && !unknown;) {
    size_t n;
    unknown = hf_unknown_mark(utf8_decode(norm_.data() + i, &n));
    i += n;
  }
  if (!unknown && nf_map(norm_, form) == norm_) return;
  const bool compat = form >= 2;
  const bool compose = form == 0 || form == 2;
  std::vector<std::pair<char32_t, int>> dec;
  dec.reserve(norm_.size());
  utf8proc_int32_t buf[32];
  for (size_t i = 0; i < norm_.size();) {
    size_t n;
    char32_t c = utf8_decode(norm_.data() + i, &n);
    i += n;
    if (hf_unknown_mark(c)) {
      dec.emplace_back(c, 0);
      continue;
    }
    int bound = 0;
    int opts = UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0);
    auto k = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32,
                                     static_cast<utf8proc_option_t>(opts), &bound);
    if (k <= 0 || k > 32) {
      dec.emplace_back(c, 0);
      continue;
    }
    for (utf8proc_ssize_t j = 0; j < k; ++j)
      dec.emplace_back(static_cast<char32_t>(buf[j]), j == 0 ? 0 : 1);
  }
  // Canonical ordering of non-starter runs.
  for (size_t i = 0; i < dec.size();) {
    if (ccc(dec[i].first) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < dec.size() && ccc(dec[j].first) != 0) ++j;
    std::stable_sort(dec.begin() + static_cast<std::ptrdiff_t>(i),
                     dec.begin() + static_cast<std::ptrdiff_t>(j),
                     [](const auto& x, const auto& y) { return ccc(x.first) < ccc(y.first); });
    i = j;
  }
  std::vector<std::pair<char32_t, int>> tr;
  if (!compose) {
    tr = std::move(dec);
  } else {
    tr.reserve(dec.size());
    bool have = false;
    std::pair<char32_t, int> composee{0, 0};
    int last_ccc = -1;  // -1: none since the composee
    std::vector<std::pair<char32_t, int>> pending;
    for (auto& [ch, change] : dec) {
      int cl = ccc(ch);
      if (!have) {
        if (cl != 0) {
          tr.emplace_back(ch, change);
          continue;
        }
        composee = {ch, change};
        have = true;
        continue;
      }
      if (last_ccc < 0 || last_ccc < cl) {
        if (char32_t r = compose_pair(composee.first, ch)) {
          composee = {r, composee.second + change - 1};
          continue;
        }
      }
      if (cl == 0) {
        tr.push_back(composee);
        tr.insert(tr.end(), pending.begin(), pending.end());
        pending.clear();
        composee = {ch, change};
        last_ccc = -1;
        continue;
      }
      pending.emplace_back(ch, change);
      last_ccc = cl;
    }
    if (have) tr.push_back(composee);
    tr.insert(tr.end(), pending.begin(), pending.end());
  }
  transform(tr, 0);
}

NormalizedString NormalizedString::slice(size_t ns, size_t ne) const {
  NormalizedString r;
  if (ns >= ne) {
    r.orig_start_ = r.orig_end_ = orig_start_;
    return r;
  }
  r.norm_ = norm_.substr(ns, ne - ns);
  r.align_.assign(align_.begin() + static_cast<std::ptrdiff_t>(ns),
                  align_.begin() + static_cast<std::ptrdiff_t>(ne));
  r.orig_start_ = align_[ns].start;
  r.orig_end_ = align_[ne - 1].end;
  return r;
}

std::pair<size_t, size_t> NormalizedString::original_range(size_t ns, size_t ne) const {
  if (ns == ne || ne > align_.size()) return {orig_start_ + ns, orig_start_ + ne};
  return {align_[ns].start, align_[ne - 1].end};
}

void NormalizedString::split(const std::vector<Match>& matches, Behavior b,
                             std::vector<NormalizedString>& out) const {
  struct P {
    size_t s, e;
    bool remove;
  };
  std::vector<P> ps;
  ps.reserve(matches.size());
  switch (b) {
    case Behavior::Isolated:
      for (auto& m : matches) ps.push_back({m.start, m.end, false});
      break;
    case Behavior::Removed:
      for (auto& m : matches) ps.push_back({m.start, m.end, m.is_match});
      break;
    case Behavior::Contiguous: {
      bool prev = false;
      for (auto& m : matches) {
        if (m.is_match == prev && !ps.empty())
          ps.back().e = m.end;
        else
          ps.push_back({m.start, m.end, false});
        prev = m.is_match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool prev = false;
      for (auto& m : matches) {
        if (m.is_match && !prev && !ps.empty())
          ps.back().e = m.end;
        else
          ps.push_back({m.start, m.end, false});
        prev = m.is_match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev = false;
      for (size_t k = matches.size(); k-- > 0;) {
        auto& m = matches[k];
        if (m.is_match && !prev && !ps.empty())
          ps.back().s = m.start;
        else
          ps.push_back({m.start, m.end, false});
        prev = m.is_match;
      }
      std::reverse(ps.begin(), ps.end());
      break;
    }
  }
  for (auto& p : ps)
    if (!p.remove) out.push_back(slice(p.s, p.e));
}

// ---- Pattern ----
Pattern::Pattern() = default;
Pattern::~Pattern() = default;
Pattern::Pattern(Pattern&&) noexcept = default;
Pattern& Pattern::operator=(Pattern&&) noexcept = default;

Pattern Pattern::literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

Pattern Pattern::regex(const std::string& re, const std::string& where) {
  Pattern p;
  try {
    p.re_ = std::make_shared<Regex>(re);
  } catch (const Error& e) {
    throw FormatError(ErrorContext().key(where), e.what());
  }
  return p;
}

void Pattern::find_matches(std::string_view s, std::vector<Match>& out) const {
  out.clear();
  if (!re_ && literal_.empty()) {
    out.push_back({0, utf8_count(s), false});
    return;
  }
  if (s.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  size_t prev = 0;
  auto emit = [&](size_t ms, size_t me) {
    if (prev != ms) out.push_back({prev, ms, false});
    out.push_back({ms, me, true});
    prev = me;
  };
  if (re_) {
    std::vector<std::pair<size_t, size_t>> ms;
    re_->find_iter(s, ms);
    for (auto& [a, b] : ms) emit(a, b);
  } else {
    size_t pos = 0;
    while (true) {
      size_t m = s.find(literal_, pos);
      if (m == std::string_view::npos) break;
      emit(m, m + literal_.size());
      pos = m + literal_.size();
    }
  }
  if (prev != s.size()) out.push_back({prev, s.size(), false});
}

}  // namespace ohm::tokenizers

namespace ohm::tokenizers {
void NormalizedString::map_bytes(const char32_t* table) {
  std::string out;
  out.reserve(norm_.size() * 2);
  std::vector<Align> al;
  al.reserve(norm_.size() * 2);
  for (size_t i = 0; i < norm_.size(); ++i) {
    char32_t c = table[static_cast<unsigned char>(norm_[i])];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      al.push_back(align_[i]);
    } else {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      al.push_back(align_[i]);
      al.push_back(align_[i]);
    }
  }
  norm_ = std::move(out);
  align_ = std::move(al);
}
}  // namespace ohm::tokenizers
