// The Tokenizer: added vocabulary, the encode pipeline, truncation/padding, decode.
#include <lzma.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>

#include "internal.h"
#include "ohm/core/thread_pool.h"
#include "ohm/formats/json_reader.h"

namespace ohm::tokenizers {

// ---- added-token trie (leftmost-longest) ----
struct Pipeline::Trie {
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> kids;
    int32_t token = -1;  // index into `added`
  };
  std::vector<Node> nodes{1};
  std::array<bool, 256> first{};
  void add(std::string_view s, int32_t idx) {
    if (s.empty()) return;
    first[static_cast<unsigned char>(s[0])] = true;
    int32_t n = 0;
    for (unsigned char b : s) {
      int32_t next = -1;
      for (auto& [k, v] : nodes[static_cast<size_t>(n)].kids)
        if (k == b) {
          next = v;
          break;
        }
      if (next < 0) {
        next = static_cast<int32_t>(nodes.size());
        nodes[static_cast<size_t>(n)].kids.emplace_back(b, next);
        nodes.emplace_back();
      }
      n = next;
    }
    if (nodes[static_cast<size_t>(n)].token < 0) nodes[static_cast<size_t>(n)].token = idx;
  }
  // Longest match starting at i: returns length, sets *idx.
  size_t longest(std::string_view s, size_t i, int32_t* idx) const {
    size_t best = 0;
    int32_t n = 0;
    for (size_t k = i; k < s.size(); ++k) {
      auto b = static_cast<unsigned char>(s[k]);
      int32_t next = -1;
      for (auto& [kb, v] : nodes[static_cast<size_t>(n)].kids)
        if (kb == b) {
          next = v;
          break;
        }
      if (next < 0) break;
      n = next;
      if (nodes[static_cast<size_t>(n)].token >= 0) {
        best = k + 1 - i;
        *idx = nodes[static_cast<size_t>(n)].token;
      }
    }
    return best;
  }
};

Pipeline::Pipeline() = default;
Pipeline::~Pipeline() = default;

void Pipeline::finish_added_tokens() {
  added_by_content_.clear();
  added_by_id_.clear();
  special_ids_.clear();
  auto raw = std::make_shared<Trie>();
  auto norm = std::make_shared<Trie>();
  bool any_raw = false, any_norm = false;
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& t = added[i];
    if (t.content.empty()) continue;
    added_by_content_[t.content] = t.id;
    added_by_id_[t.id] = i;
    if (t.special) special_ids_.insert(t.id);
    if (t.normalized) {
      NormalizedString ns(t.content, 0);
      if (normalizer) normalizer->normalize(ns);
      norm->add(ns.get(), static_cast<int32_t>(i));
      any_norm = true;
    } else {
      raw->add(t.content, static_cast<int32_t>(i));
      any_raw = true;
    }
  }
  trie_raw_ = any_raw ? raw : nullptr;
  trie_norm_ = any_norm ? norm : nullptr;
}

namespace {
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t b = s.size() - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  size_t n;
  return is_alphanumeric(utf8_decode(s.data() + b, &n));
}
bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t n;
  return is_alphanumeric(utf8_decode(s.data(), &n));
}
size_t space_leftmost_at_end(std::string_view s) {  // start of the trailing whitespace run
  size_t e = s.size();
  while (e > 0) {
    size_t b = e - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    size_t n;
    if (!is_whitespace(utf8_decode(s.data() + b, &n))) break;
    e = b;
  }
  return e;
}
size_t space_rightmost_at_start(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t n;
    if (!is_whitespace(utf8_decode(s.data() + i, &n))) break;
    i += n;
  }
  return i;
}
}  // namespace

void Pipeline::find_added(const Trie& trie, std::string_view s,
                          std::vector<std::pair<std::pair<size_t, size_t>, int32_t>>& marks) const {
  size_t start_offset = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (!trie.first[static_cast<unsigned char>(s[i])]) {
      ++i;
      continue;
    }
    int32_t idx = -1;
    size_t len = trie.longest(s, i, &idx);
    if (len == 0) {
      ++i;
      continue;
    }
    const AddedToken& t = added[static_cast<size_t>(idx)];
    size_t start = i, stop = i + len;
    i = stop;  // leftmost-longest, non-overlapping
    if (!parse_special && t.special) continue;
    if (t.single_word) {
      bool ss = start == 0 || !ends_with_word(s.substr(0, start));
      bool es = stop == s.size() || !starts_with_word(s.substr(stop));
      if (!ss || !es) continue;
    }
    if (t.lstrip) start = std::max(space_leftmost_at_end(s.substr(0, start)), start_offset);
    if (t.rstrip) stop += space_rightmost_at_start(s.substr(stop));
    marks.push_back({{start, stop}, idx});
    start_offset = stop;
    i = stop;
  }
}

void Pipeline::run(std::string_view text, PreTokenizedString& pts) const {
  pts.original = text;
  pts.splits.clear();
  Split first;
  first.ns = NormalizedString(text, 0);
  pts.splits.push_back(std::move(first));

  auto split_with = [&](const Trie* trie, bool normalize) {
    std::vector<Split> out;
    out.reserve(pts.splits.size() + 4);
    for (auto& sp : pts.splits) {
      if (sp.tokenized) {
        out.push_back(std::move(sp));
        continue;
      }
      if (normalize && normalizer) {
        normalizer->normalize(sp.ns);
        // HF re-slices every normalized piece (AddedVocabulary::split_with_indices), so its
        // original start becomes that of its first char: what Metaspace's "first" scheme tests
        // when the normalizer removed leading text.
        const auto& al = sp.ns.alignments();
        if (!al.empty() && al.front().start != sp.ns.orig_start())
          sp.ns = sp.ns.slice(0, sp.ns.size());
      }
      const std::string& s = sp.ns.get();
      if (!trie || s.empty()) {
        if (!s.empty()) out.push_back(std::move(sp));
        continue;
      }
      auto push_plain = [&](size_t a, size_t b) {
        if (a >= b) return;
        Split x;
        x.ns = sp.ns.slice(a, b);
        out.push_back(std::move(x));
      };
      std::vector<std::pair<std::pair<size_t, size_t>, int32_t>> marks;
      find_added(*trie, s, marks);
      if (marks.empty()) {
        out.push_back(std::move(sp));
        continue;
      }
      size_t prev = 0;
      for (auto& [rng, idx] : marks) {
        push_plain(prev, rng.first);
        Split x;
        x.ns = sp.ns.slice(rng.first, rng.second);
        x.tokenized = true;
        x.added_id = added[static_cast<size_t>(idx)].id;
        x.tokens.push_back({x.added_id, 0, static_cast<uint32_t>(x.ns.size())});
        if (!x.ns.empty()) out.push_back(std::move(x));
        prev = rng.second;
      }
      push_plain(prev, s.size());
    }
    pts.splits = std::move(out);
  };
  split_with(trie_raw_.get(), false);
  split_with(trie_norm_.get(), true);
  if (pre_tokenizer) pre_tokenizer->pre_tokenize(pts);
  for (auto& sp : pts.splits) {
    if (sp.tokenized) continue;
    model->tokenize(sp.ns.get(), sp.tokens);
    sp.tokenized = true;
  }
}

namespace {
// GPT-2's byte -> code point map as UTF-8 (1 or 2 bytes each).
struct ByteLevelUtf8 {
  char two[256][2];  // the UTF-8 bytes (the second unused when len is 1)
  uint8_t len[256];
  ByteLevelUtf8() {
    const char32_t* t = byte_to_unicode_table();
    for (int b = 0; b < 256; ++b) {
      std::string u;
      utf8_append(u, t[b]);
      len[b] = static_cast<uint8_t>(u.size());
      two[b][0] = u[0];
      two[b][1] = u.size() > 1 ? u[1] : 0;
    }
  }
};
const ByteLevelUtf8& byte_level_utf8() {
  static const ByteLevelUtf8 t;
  return t;
}
}  // namespace

bool Pipeline::encode_byte_level(std::string_view text, OffsetType ot, bool with_strings,
                                 Encoding& e) const {
  const Regex* re = nullptr;
  bool keep_gaps = true;
  if (normalizer || !pre_tokenizer || !model || !byte_level_split(*pre_tokenizer, &re, &keep_gaps))
    return false;
  // Segments of the text: added tokens (index into `added`) and plain text (-1), as run()'s two
  // added-token passes make them (there is no normalizer, so both see the input bytes).
  struct Segment {
    size_t a, b;
    int32_t added;
  };
  thread_local std::vector<Segment> segs;
  thread_local std::vector<std::pair<std::pair<size_t, size_t>, int32_t>> marks;
  segs.clear();
  if (!text.empty()) segs.push_back({0, text.size(), -1});
  for (const Trie* trie : {trie_raw_.get(), trie_norm_.get()}) {
    if (!trie) continue;
    thread_local std::vector<Segment> next;
    next.clear();
    for (const Segment& sg : segs) {
      if (sg.added >= 0) {
        next.push_back(sg);
        continue;
      }
      marks.clear();
      find_added(*trie, text.substr(sg.a, sg.b - sg.a), marks);
      size_t prev = sg.a;
      for (auto& [rng, idx] : marks) {
        if (sg.a + rng.first > prev) next.push_back({prev, sg.a + rng.first, -1});
        if (rng.second > rng.first) next.push_back({sg.a + rng.first, sg.a + rng.second, idx});
        prev = sg.a + rng.second;
      }
      if (sg.b > prev) next.push_back({prev, sg.b, -1});
    }
    std::swap(segs, next);
  }

  // Original byte range of the character holding byte i (a token may end or start inside a
  // character: ByteLevel aligns every byte to its whole character).
  auto char_start = [&](size_t i) {
    while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
    return i;
  };
  auto char_end = [&](size_t i) {
    size_t s0 = char_start(i);
    return std::min(text.size(), s0 + utf8_len(static_cast<unsigned char>(text[s0])));
  };
  bool ascii = true;
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  thread_local std::vector<uint32_t> char_of;  // byte -> char index (size len+1)
  const bool char_offsets = with_strings && ot == OffsetType::Char && !ascii;
  if (char_offsets) {
    char_of.resize(text.size() + 1);
    uint32_t ci = 0;
    for (size_t i = 0; i < text.size();) {
      size_t l = utf8_len(static_cast<unsigned char>(text[i]));
      for (size_t k = 0; k < l && i + k < text.size(); ++k) char_of[i + k] = ci;
      i += l;
      ++ci;
    }
    char_of[text.size()] = ci;
  }
  auto offset = [&](size_t a, size_t b) {
    if (char_offsets) return std::pair<size_t, size_t>{char_of[a], char_of[b]};
    return std::pair<size_t, size_t>{a, b};
  };

  const ByteLevelUtf8& bl = byte_level_utf8();
  thread_local std::string mapped;
  thread_local std::vector<Token> toks;
  thread_local std::vector<std::pair<size_t, size_t>> pieces;
  e.ids.reserve(text.size() / 3 + 4);
  if (with_strings) {
    e.tokens.reserve(text.size() / 3 + 4);
    e.offsets.reserve(text.size() / 3 + 4);
    e.word_ids.reserve(text.size() / 3 + 4);
  }
  int64_t word = 0;
  for (const Segment& sg : segs) {
    if (sg.added >= 0) {
      const AddedToken& t = added[static_cast<size_t>(sg.added)];
      e.ids.push_back(t.id);
      if (with_strings) {
        e.tokens.emplace_back(text.substr(sg.a, sg.b - sg.a));
        e.offsets.push_back(offset(sg.a, sg.b));
        e.word_ids.push_back(word);
      }
      ++word;
      continue;
    }
    std::string_view seg = text.substr(sg.a, sg.b - sg.a);
    pieces.clear();
    re->find_iter(seg, pieces);
    size_t prev = 0;
    auto piece = [&](size_t a, size_t b) {
      if (a >= b) return;
      const size_t ia = sg.a + a, ib = sg.a + b;
      mapped.resize(2 * (ib - ia));
      {
        // locals: stores through char* could alias the captures and force reloads
        char* w = mapped.data();
        const auto* src = reinterpret_cast<const unsigned char*>(text.data()) + ia;
        const auto* end = reinterpret_cast<const unsigned char*>(text.data()) + ib;
        const auto* two = bl.two;
        const uint8_t* len = bl.len;
        for (; src < end; ++src) {
          std::memcpy(w, two[*src], 2);
          w += len[*src];
        }
        mapped.resize(static_cast<size_t>(w - mapped.data()));
      }
      toks.clear();
      model->tokenize(mapped, toks);
      // input byte holding mapped byte m: walk forward (tokens come in order), restart if not
      size_t in = ia, m = 0;
      auto input_byte = [&](size_t pos) {
        if (pos < m) in = ia, m = 0;
        while (in < ib) {
          size_t l = bl.len[static_cast<unsigned char>(text[in])];
          if (m + l > pos) break;
          m += l;
          ++in;
        }
        return in;
      };
      for (const Token& t : toks) {
        e.ids.push_back(t.id);
        if (!with_strings) continue;
        const std::string* s = model->id_to_token(t.id);
        e.tokens.push_back(s ? *s : std::string());
        size_t oa, ob;
        if (t.start == t.end || t.end > mapped.size()) {  // as NormalizedString::original_range
          oa = ia + t.start;
          ob = ia + t.end;
        } else {
          oa = char_start(input_byte(t.start));
          ob = char_end(input_byte(t.end - 1));
        }
        e.offsets.push_back(offset(oa, ob));
        e.word_ids.push_back(word);
      }
      ++word;
    };
    for (auto [ms, me] : pieces) {
      if (keep_gaps) piece(prev, ms);
      piece(ms, me);
      prev = me;
    }
    if (keep_gaps) piece(prev, seg.size());
  }
  e.type_ids.assign(e.ids.size(), 0);
  e.attention_mask.assign(e.ids.size(), 1);
  e.special_tokens_mask.assign(e.ids.size(), 0);
  if (!with_strings) e.word_ids.assign(e.ids.size(), -1);
  return true;
}

Encoding Pipeline::encode_one(std::string_view text, OffsetType ot, bool with_strings) const {
  {
    Encoding e;
    if (encode_byte_level(text, ot, with_strings, e)) return e;
  }
  PreTokenizedString pts;
  run(text, pts);
  Encoding e;
  size_t n = 0;
  for (auto& sp : pts.splits) n += sp.tokens.size();
  e.ids.reserve(n);
  if (with_strings) {
    e.tokens.reserve(n);
    e.offsets.reserve(n);
    e.word_ids.reserve(n);
  }
  std::vector<uint32_t> char_of;  // byte -> char index (size len+1)
  if (with_strings && ot == OffsetType::Char) {
    char_of.resize(text.size() + 1);
    uint32_t ci = 0;
    for (size_t i = 0; i < text.size();) {
      size_t l = utf8_len(static_cast<unsigned char>(text[i]));
      for (size_t k = 0; k < l && i + k < text.size(); ++k) char_of[i + k] = ci;
      i += l;
      ++ci;
    }
    char_of[text.size()] = ci;
  }
  for (size_t w = 0; w < pts.splits.size(); ++w) {
    const Split& sp = pts.splits[w];
    for (const Token& t : sp.tokens) {
      e.ids.push_back(t.id);
      if (!with_strings) continue;
      if (sp.added_id >= 0) {
        e.tokens.push_back(sp.ns.get());
      } else {
        const std::string* s = model->id_to_token(t.id);
        e.tokens.push_back(s ? *s : std::string());
      }
      auto off = sp.ns.original_range(t.start, t.end);
      if (ot == OffsetType::Char && off.first <= text.size() && off.second <= text.size())
        off = {char_of[off.first], char_of[off.second]};
      e.offsets.push_back(off);
      e.word_ids.push_back(static_cast<int64_t>(w));
    }
  }
  e.type_ids.assign(e.ids.size(), 0);
  e.attention_mask.assign(e.ids.size(), 1);
  e.special_tokens_mask.assign(e.ids.size(), 0);
  if (!with_strings) e.word_ids.assign(e.ids.size(), -1);
  return e;
}

namespace {

Encoding slice_enc(const Encoding& e, size_t a, size_t b) {
  Encoding r;
  auto cp = [&](auto& dst, const auto& src) {
    if (src.size() >= b)
      dst.assign(src.begin() + static_cast<std::ptrdiff_t>(a),
                 src.begin() + static_cast<std::ptrdiff_t>(b));
  };
  cp(r.ids, e.ids);
  cp(r.tokens, e.tokens);
  cp(r.offsets, e.offsets);
  cp(r.type_ids, e.type_ids);
  cp(r.attention_mask, e.attention_mask);
  cp(r.special_tokens_mask, e.special_tokens_mask);
  cp(r.word_ids, e.word_ids);
  return r;
}

void truncate_enc(Encoding& e, size_t max_len, size_t stride, Direction dir) {
  size_t len = e.ids.size();
  if (max_len >= len) return;
  if (max_len == 0) {
    Encoding o = std::move(e);
    e = Encoding();
    e.overflowing.push_back(std::move(o));
    return;
  }
  if (stride >= max_len) throw InvalidArgument("truncation stride must be smaller than max_length");
  size_t step = max_len - stride;
  std::vector<std::pair<size_t, size_t>> parts;
  bool end = false;
  if (dir == Direction::Right) {
    for (size_t s = 0; s < len && !end; s += step) {
      size_t stop = std::min(s + max_len, len);
      end = stop == len;
      parts.emplace_back(s, stop);
    }
  } else {
    for (size_t k = 0; k < len && !end; k += step) {
      size_t stop = len - k;
      size_t start = stop < max_len ? 0 : stop - max_len;
      if (start < stop) {
        end = start == 0;
        parts.emplace_back(start, stop);
      }
    }
  }
  Encoding main = slice_enc(e, parts[0].first, parts[0].second);
  for (size_t i = 1; i < parts.size(); ++i)
    main.overflowing.push_back(slice_enc(e, parts[i].first, parts[i].second));
  e = std::move(main);
}

void pad_enc(Encoding& e, size_t target, const PaddingParams& p) {
  if (e.ids.size() >= target) return;
  size_t n = target - e.ids.size();
  bool left = p.direction == Direction::Left;
  auto pad = [&](auto& v, auto val) {
    if (left)
      v.insert(v.begin(), n, val);
    else
      v.insert(v.end(), n, val);
  };
  pad(e.ids, p.pad_id);
  if (!e.tokens.empty() || e.ids.size() == n) pad(e.tokens, p.pad_token);
  if (!e.offsets.empty() || e.ids.size() == n) pad(e.offsets, std::pair<size_t, size_t>{0, 0});
  pad(e.type_ids, p.pad_type_id);
  pad(e.attention_mask, 0u);
  pad(e.special_tokens_mask, 1u);
  pad(e.word_ids, int64_t{-1});
}

size_t pad_target(size_t len, const PaddingParams& p) {
  size_t t = p.batch_longest ? len : p.fixed_length;
  if (p.pad_to_multiple_of > 0 && t % p.pad_to_multiple_of != 0)
    t += p.pad_to_multiple_of - t % p.pad_to_multiple_of;
  return t;
}

}  // namespace

Encoding Pipeline::post_process(Encoding a, Encoding* b, bool add_special) const {
  if (truncation) {
    const TruncationParams& t = *truncation;
    size_t added_n = add_special && post_processor ? post_processor->added_tokens(b != nullptr) : 0;
    if (added_n > t.max_length)
      throw InvalidArgument("truncation max_length is smaller than the special tokens");
    size_t max_len = t.max_length - added_n;
    size_t total = a.ids.size() + (b ? b->ids.size() : 0);
    if (total > max_len) {
      size_t to_remove = total - max_len;
      if (!b) {
        truncate_enc(a, total - to_remove, t.stride, t.direction);
      } else if (t.strategy == TruncationStrategy::LongestFirst) {
        size_t n1 = a.ids.size(), n2 = b->ids.size();
        bool swap = n1 > n2;
        if (swap) std::swap(n1, n2);
        if (n1 > max_len)
          n2 = n1;
        else
          n2 = std::max(n1, max_len - n1);
        if (n1 + n2 > max_len) {
          n1 = max_len / 2;
          n2 = n1 + max_len % 2;
        }
        if (swap) std::swap(n1, n2);
        truncate_enc(a, n1, t.stride, t.direction);
        truncate_enc(*b, n2, t.stride, t.direction);
      } else {
        Encoding& target = t.strategy == TruncationStrategy::OnlyFirst ? a : *b;
        if (target.ids.size() <= to_remove)
          throw InvalidArgument("truncation: the selected sequence is too short to remove " +
                                std::to_string(to_remove) + " tokens");
        truncate_enc(target, target.ids.size() - to_remove, t.stride, t.direction);
      }
    }
  }
  Encoding r;
  if (post_processor) {
    r = post_processor->process(std::move(a), b, add_special);
  } else {
    r = std::move(a);
    if (b) {
      Encoding bb = *b;
      for (auto& x : bb.type_ids) x = 1;
      r.ids.insert(r.ids.end(), bb.ids.begin(), bb.ids.end());
      r.tokens.insert(r.tokens.end(), bb.tokens.begin(), bb.tokens.end());
      r.offsets.insert(r.offsets.end(), bb.offsets.begin(), bb.offsets.end());
      r.type_ids.insert(r.type_ids.end(), bb.type_ids.begin(), bb.type_ids.end());
      r.attention_mask.insert(r.attention_mask.end(), bb.attention_mask.begin(),
                              bb.attention_mask.end());
      r.special_tokens_mask.insert(r.special_tokens_mask.end(), bb.special_tokens_mask.begin(),
                                   bb.special_tokens_mask.end());
      r.word_ids.insert(r.word_ids.end(), bb.word_ids.begin(), bb.word_ids.end());
    }
  }
  if (padding && !padding->batch_longest) pad_enc(r, pad_target(r.ids.size(), *padding), *padding);
  return r;
}

std::optional<int32_t> Pipeline::token_to_id(std::string_view tok) const {
  auto it = added_by_content_.find(std::string(tok));
  if (it != added_by_content_.end()) return it->second;
  return model ? model->token_to_id(tok) : std::nullopt;
}

const std::string* Pipeline::id_to_token(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return &added[it->second].content;
  return model ? model->id_to_token(id) : nullptr;
}

bool Pipeline::is_special(int32_t id) const {
  return special_ids_.count(id) > 0;
}

std::string Pipeline::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* s = id_to_token(id);
    if (!s) continue;
    if (skip_special && is_special(id)) continue;
    toks.push_back(*s);
  }
  if (decoder) {
    decoder->decode_chain(toks);
    std::string r;
    for (auto& t : toks) r += t;
    return r;
  }
  std::string r;
  for (size_t i = 0; i < toks.size(); ++i) {
    if (i) r += ' ';
    r += toks[i];
  }
  return r;
}

// ---- loading ----

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw IoError(ErrorContext().file(path), "cannot open file");
  std::streamoff n = in.tellg();
  std::string raw;
  if (n > 0) {
    raw.resize(static_cast<size_t>(n));
    in.seekg(0);
    in.read(raw.data(), n);
    if (in.gcount() != n) throw IoError(ErrorContext().file(path), "read failed");
  }
  return raw;
}

std::string read_maybe_compressed(const std::string& path) {
  std::string raw = read_whole_file(path);
  auto ends = [&](const char* suf) {
    size_t n = std::char_traits<char>::length(suf);
    return path.size() >= n && path.compare(path.size() - n, n, suf) == 0;
  };
  if (ends(".gz")) {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
      throw IoError(ErrorContext().file(path), "zlib init failed");
    std::string out;
    out.resize(raw.size() * 4 + 1024);
    zs.next_in = reinterpret_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    int r;
    do {
      if (zs.total_out >= out.size()) out.resize(out.size() * 2);
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
      zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
      r = inflate(&zs, Z_NO_FLUSH);
    } while (r == Z_OK || (r == Z_BUF_ERROR && zs.avail_out == 0));
    out.resize(zs.total_out);
    inflateEnd(&zs);
    if (r != Z_STREAM_END) throw FormatError(ErrorContext().file(path), "corrupt gzip data");
    return out;
  }
  if (ends(".xz")) {
    lzma_stream ls = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&ls, UINT64_MAX, 0) != LZMA_OK)
      throw IoError(ErrorContext().file(path), "lzma init failed");
    std::string out;
    out.resize(raw.size() * 8 + 1024);
    ls.next_in = reinterpret_cast<const uint8_t*>(raw.data());
    ls.avail_in = raw.size();
    lzma_ret r;
    do {
      if (ls.total_out >= out.size()) out.resize(out.size() * 2);
      ls.next_out = reinterpret_cast<uint8_t*>(out.data() + ls.total_out);
      ls.avail_out = out.size() - ls.total_out;
      r = lzma_code(&ls, LZMA_FINISH);
    } while (r == LZMA_OK || (r == LZMA_BUF_ERROR && ls.avail_out == 0));
    out.resize(ls.total_out);
    lzma_end(&ls);
    if (r != LZMA_STREAM_END) throw FormatError(ErrorContext().file(path), "corrupt xz data");
    return out;
  }
  return raw;
}

Tokenizer::Tokenizer() : p_(std::make_unique<Pipeline>()) {}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Pipeline& Tokenizer::pipeline() {
  return *p_;
}
const Pipeline& Tokenizer::pipeline() const {
  return *p_;
}

namespace {
Tokenizer build_from_json(const json& j, const std::string& name, StreamedBpe* pre);
}

Tokenizer load_tokenizer_json(std::string text, const std::string& name) {
  StreamedBpe pre;
  json j = parse_tokenizer_json(text, name, pre);
  std::string().swap(text);  // the text is not needed while the model is built
  return build_from_json(j, name, &pre);
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  return load_tokenizer_json(read_maybe_compressed(path), path);
}

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& name) {
  StreamedBpe pre;
  json j = parse_tokenizer_json(text, name, pre);
  return build_from_json(j, name, &pre);
}

Tokenizer Tokenizer::from_json(const json& j, const std::string& name) {
  return build_from_json(j, name, nullptr);
}

namespace {
Tokenizer build_from_json(const json& j, const std::string& name, StreamedBpe* pre) {
  JsonCtx root{name, ""};
  if (!j.is_object()) root.fail("expected a JSON object");
  Tokenizer t;
  Pipeline& p = t.pipeline();
  const json* m = jget(j, "model");
  if (!m) root.at("model").fail("missing required field");
  p.model = make_model(*m, root.at("model"), pre);
  if (const json* n = jget(j, "normalizer"))
    p.normalizer = make_normalizer(*n, root.at("normalizer"));
  if (const json* n = jget(j, "pre_tokenizer"))
    p.pre_tokenizer = make_pre_tokenizer(*n, root.at("pre_tokenizer"));
  if (const json* n = jget(j, "post_processor"))
    p.post_processor = make_post_processor(*n, root.at("post_processor"), *p.model);
  if (const json* n = jget(j, "decoder")) p.decoder = make_decoder(*n, root.at("decoder"));
  if (const json* a = jget(j, "added_tokens")) {
    if (!a->is_array()) root.at("added_tokens").fail("expected an array");
    for (size_t i = 0; i < a->size(); ++i) {
      const json& e = (*a)[i];
      JsonCtx c = root.at("added_tokens").at(i);
      AddedToken at;
      at.content = jstring(e, "content", c);
      const json* id = jget(e, "id");
      if (!id || !id->is_number_integer()) c.at("id").fail("expected an integer id");
      at.id = static_cast<int32_t>(id->get<int64_t>());
      at.single_word = jbool_or(e, "single_word", false, c);
      at.lstrip = jbool_or(e, "lstrip", false, c);
      at.rstrip = jbool_or(e, "rstrip", false, c);
      at.special = jbool_or(e, "special", false, c);
      at.normalized = jbool_or(e, "normalized", !at.special, c);
      p.added.push_back(std::move(at));
    }
  }
  if (const json* tr = jget(j, "truncation")) {
    JsonCtx c = root.at("truncation");
    TruncationParams tp;
    tp.max_length = static_cast<size_t>(jint_or(*tr, "max_length", 512, c));
    tp.stride = static_cast<size_t>(jint_or(*tr, "stride", 0, c));
    std::string st = jstring_or(*tr, "strategy", "LongestFirst", c);
    tp.strategy = st == "OnlyFirst"    ? TruncationStrategy::OnlyFirst
                  : st == "OnlySecond" ? TruncationStrategy::OnlySecond
                                       : TruncationStrategy::LongestFirst;
    tp.direction =
        jstring_or(*tr, "direction", "Right", c) == "Left" ? Direction::Left : Direction::Right;
    p.truncation = tp;
  }
  if (const json* pd = jget(j, "padding")) {
    JsonCtx c = root.at("padding");
    PaddingParams pp;
    if (const json* s = jget(*pd, "strategy")) {
      if (s->is_object() && jget(*s, "Fixed")) {
        pp.batch_longest = false;
        pp.fixed_length = (*s)["Fixed"].get<size_t>();
      }
    }
    pp.direction =
        jstring_or(*pd, "direction", "Right", c) == "Left" ? Direction::Left : Direction::Right;
    pp.pad_to_multiple_of = static_cast<size_t>(jint_or(*pd, "pad_to_multiple_of", 0, c));
    pp.pad_id = static_cast<int32_t>(jint_or(*pd, "pad_id", 0, c));
    pp.pad_type_id = static_cast<uint32_t>(jint_or(*pd, "pad_type_id", 0, c));
    pp.pad_token = jstring_or(*pd, "pad_token", "[PAD]", c);
    p.padding = pp;
  }
  p.finish_added_tokens();
  return t;
}
}  // namespace

// ---- encode / decode ----

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
  std::string fixed;
  if (!is_valid_utf8(text)) {
    fixed = sanitize_utf8(text);
    text = fixed;
  }
  Encoding e = p_->encode_one(text, opt.offset_type, true);
  return p_->post_process(std::move(e), nullptr, opt.add_special_tokens);
}

Encoding Tokenizer::encode_pair(std::string_view a, std::string_view b,
                                const EncodeOptions& opt) const {
  std::string fa = sanitize_utf8(a), fb = sanitize_utf8(b);
  Encoding ea = p_->encode_one(fa, opt.offset_type, true);
  Encoding eb = p_->encode_one(fb, opt.offset_type, true);
  for (auto& t : eb.type_ids) t = 1;
  return p_->post_process(std::move(ea), &eb, opt.add_special_tokens);
}

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text, bool add_special_tokens) const {
  std::string fixed;
  if (!is_valid_utf8(text)) {
    fixed = sanitize_utf8(text);
    text = fixed;
  }
  if (p_->truncation || p_->padding)
    return encode(text, EncodeOptions{add_special_tokens, OffsetType::Byte}).ids;
  bool need_strings = p_->post_processor && add_special_tokens;
  Encoding e = p_->encode_one(text, OffsetType::Byte, need_strings);
  if (!p_->post_processor) return std::move(e.ids);
  return p_->post_process(std::move(e), nullptr, add_special_tokens).ids;
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                              const EncodeOptions& opt, ThreadPool* pool) const {
  std::vector<Encoding> out(texts.size());
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<int64_t>(texts.size()), 1, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i)
      out[static_cast<size_t>(i)] = encode(texts[static_cast<size_t>(i)], opt);
  });
  if (p_->padding && p_->padding->batch_longest) {
    size_t mx = 0;
    for (auto& e : out) mx = std::max(mx, e.ids.size());
    size_t target = pad_target(mx, *p_->padding);
    for (auto& e : out) pad_enc(e, target, *p_->padding);
  }
  return out;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch_ids(const std::vector<std::string>& texts,
                                                              bool add_special_tokens,
                                                              ThreadPool* pool) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<int64_t>(texts.size()), 1, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i)
      out[static_cast<size_t>(i)] = encode_ids(texts[static_cast<size_t>(i)], add_special_tokens);
  });
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return p_->decode(ids, skip_special_tokens);
}

std::vector<std::string> Tokenizer::decode_batch(const std::vector<std::vector<int32_t>>& ids,
                                                 bool skip_special_tokens) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (auto& v : ids) out.push_back(decode(v, skip_special_tokens));
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  return p_->token_to_id(token);
}
std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  const std::string* s = p_->id_to_token(id);
  if (!s) return std::nullopt;
  return *s;
}
bool Tokenizer::is_special(int32_t id) const {
  return p_->is_special(id);
}
size_t Tokenizer::vocab_size(bool with_added) const {
  size_t n = p_->model ? p_->model->vocab_size() : 0;
  if (with_added)
    for (auto& a : p_->added)
      if (!p_->model || !p_->model->token_to_id(a.content)) ++n;
  return n;
}
void Tokenizer::set_truncation(std::optional<TruncationParams> t) {
  p_->truncation = t;
}
void Tokenizer::set_padding(std::optional<PaddingParams> p) {
  p_->padding = std::move(p);
}
const std::optional<TruncationParams>& Tokenizer::truncation() const {
  return p_->truncation;
}
const std::optional<PaddingParams>& Tokenizer::padding() const {
  return p_->padding;
}
void Tokenizer::set_split_special_tokens(bool parse_special) {
  p_->parse_special = parse_special;
}

// ---- streaming decode (HF step_decode_stream) ----
DecodeStream::DecodeStream(const Tokenizer& tok, bool skip) : tok_(&tok), skip_(skip) {}

std::optional<std::string> DecodeStream::step(int32_t id) {
  return step(std::vector<int32_t>{id});
}

std::optional<std::string> DecodeStream::step(const std::vector<int32_t>& ids) {
  static const std::string kRepl = "\xEF\xBF\xBD";
  auto ends_repl = [](const std::string& s) {
    return s.size() >= 3 && s.compare(s.size() - 3, 3, kRepl) == 0;
  };
  if (prefix_.empty() && !ids_.empty()) {
    std::string np = tok_->decode(ids_, skip_);
    if (!ends_repl(np)) {
      prefix_ = np;
      prefix_index_ = ids_.size();
    }
  }
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  std::string s = tok_->decode(ids_, skip_);
  if (s.size() > prefix_.size() && !ends_repl(s)) {
    if (s.compare(0, prefix_.size(), prefix_) != 0)
      throw InvalidArgument("DecodeStream: decoded text does not extend the previous prefix");
    std::string fresh = s.substr(prefix_.size());
    size_t new_prefix_index = ids_.size() - prefix_index_;
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
    prefix_ = tok_->decode(ids_, skip_);
    prefix_index_ = new_prefix_index;
    return fresh;
  }
  return std::nullopt;
}

}  // namespace ohm::tokenizers
