// Internal helpers of the tokenizers module: UTF-8, Unicode properties (utf8proc), regex
// (Oniguruma), JSON access with path-naming errors, and the template bodies of pipeline.h.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/tokenizers/pipeline.h"

namespace ohm::tokenizers {

using json = nlohmann::json;

// ---- UTF-8 (input is always valid UTF-8 inside the pipeline) ----
inline size_t utf8_len(unsigned char b) {
  return b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
}
inline char32_t utf8_decode(const char* p, size_t* len) {
  auto b = static_cast<unsigned char>(p[0]);
  size_t n = utf8_len(b);
  *len = n;
  if (n == 1) return b;
  char32_t c = b & (0xFF >> (n + 1));
  for (size_t i = 1; i < n; ++i) c = (c << 6) | (static_cast<unsigned char>(p[i]) & 0x3F);
  return c;
}
inline void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}
inline size_t utf8_char_len(char32_t c) {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}
std::vector<char32_t> utf8_to_u32(std::string_view s);
size_t utf8_count(std::string_view s);

// ---- Unicode properties (utf8proc) ----
// Two-letter general category, e.g. "Lu", "Mn", "Zs".
const char* category(char32_t c);
bool is_whitespace(char32_t c);    // Rust char::is_whitespace (White_Space)
bool is_alphanumeric(char32_t c);  // Rust regex \w approximation: L, M, Nd, Nl, Pc, ZWJ/ZWNJ
bool is_numeric(char32_t c);       // Rust char::is_numeric: Nd, Nl, No
bool is_punctuation(char32_t c);   // P*, as HF classifies it (frozen older Unicode tables)
bool is_mark(char32_t c);          // M*, as HF classifies it
// A mark utf8proc knows and HF's frozen tables do not (newer Unicode): for HF's normalizers it
// is an unassigned code point, with combining class 0 and no (de)composition.
bool hf_unknown_mark(char32_t c);
bool is_other(char32_t c);  // Cc, Cf, Co, Cs as HF classifies them (not Cn)
// Full lowercase mapping of one code point (Rust char::to_lowercase).
void to_lower(char32_t c, std::vector<char32_t>& out);

// ---- regex ----
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws InvalidArgument with onig's message
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // onig crate find_iter semantics (empty matches after the previous match are skipped).
  void find_iter(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;
  // Search once from `start`; returns false when none.
  bool search(std::string_view s, size_t start, size_t* ms, size_t* me) const;

 private:
  void* re_ = nullptr;
  // The GPT-2, cl100k (Llama 3) and o200k (GPT-4o) pre-tokenizer patterns are matched by hand
  // (regex.cpp, same matches as Oniguruma's); 0 = Oniguruma.
  int fast_ = 0;
};

// ---- byte-level pre-tokenization ----
const char32_t* byte_to_unicode_table();  // GPT-2's byte -> code point
// When `p` splits by one regex and then maps bytes with ByteLevel (GPT-2's ByteLevel with
// use_regex; or Sequence[Split(regex), ByteLevel without regex], as Llama 3 and GPT-4o), sets
// *re and *keep_gaps (whether the text between matches is kept as pieces) and returns true.
bool byte_level_split(const PreTokenizer& p, const Regex** re, bool* keep_gaps);

// ---- JSON helpers ----
const json* jget(const json& j, const char* key);  // present and not null
std::string jstring(const json& j, const char* key, const JsonCtx& c);
std::string jstring_or(const json& j, const char* key, const std::string& def, const JsonCtx& c);
bool jbool_or(const json& j, const char* key, bool def, const JsonCtx& c);
int64_t jint_or(const json& j, const char* key, int64_t def, const JsonCtx& c);
std::string jtype(const json& j, const JsonCtx& c);  // the "type" field

// ---- template bodies ----
template <class F>
void NormalizedString::filter(F keep) {
  std::vector<std::pair<char32_t, int>> tr;
  tr.reserve(norm_.size());
  int removed = 0;
  size_t removed_start = 0;
  bool have_last = false;
  char32_t last = 0;
  for (size_t i = 0; i < norm_.size();) {
    size_t n;
    char32_t c = utf8_decode(norm_.data() + i, &n);
    i += n;
    if (keep(c)) {
      if (have_last)
        tr.emplace_back(last, -removed);
      else
        removed_start = static_cast<size_t>(removed);
      have_last = true;
      last = c;
      removed = 0;
    } else {
      ++removed;
    }
  }
  if (have_last)
    tr.emplace_back(last, -removed);
  else
    removed_start = static_cast<size_t>(removed);
  transform(tr, removed_start);
}

template <class F>
void NormalizedString::map(F fn) {
  std::vector<std::pair<char32_t, int>> tr;
  tr.reserve(norm_.size());
  for (size_t i = 0; i < norm_.size();) {
    size_t n;
    char32_t c = utf8_decode(norm_.data() + i, &n);
    i += n;
    tr.emplace_back(fn(c), 0);
  }
  transform(tr, 0);
}

template <class F>
void PreTokenizedString::split(F f) {
  std::vector<Split> out;
  out.reserve(splits.size() * 2);
  std::vector<NormalizedString> pieces;
  for (auto& sp : splits) {
    if (sp.tokenized) {
      out.push_back(std::move(sp));
      continue;
    }
    pieces.clear();
    f(std::move(sp.ns), pieces);
    for (auto& p : pieces) {
      if (p.empty()) continue;
      Split s;
      s.ns = std::move(p);
      out.push_back(std::move(s));
    }
  }
  splits = std::move(out);
}

}  // namespace ohm::tokenizers

namespace ohm::tokenizers {

// A compact token <-> id map: one arena for all token bytes, open addressing on ids.
class Vocab {
 public:
  void reserve(size_t n);
  // Adds token with id (ids may be sparse). Returns false if the token already exists.
  bool add(std::string_view tok, int32_t id);
  int32_t find(std::string_view tok) const {  // -1 if absent
    if (table_.empty()) return -1;
    size_t mask = table_.size() - 1;
    size_t h = hash(tok) & mask;
    while (true) {
      int32_t slot = table_[h];
      if (slot < 0) return -1;
      if (token_view(slot) == tok) return slot;
      h = (h + 1) & mask;
    }
  }
  const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= strings_.size() || !present_[static_cast<size_t>(id)])
      return nullptr;
    return &strings_[static_cast<size_t>(id)];
  }
  std::string_view token_view(int32_t id) const { return strings_[static_cast<size_t>(id)]; }
  size_t size() const { return count_; }
  size_t max_id_plus_one() const { return strings_.size(); }

  static size_t hash(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }

 private:
  void grow();
  std::vector<std::string> strings_;  // by id (short strings stay inline: SSO)
  std::vector<uint8_t> present_;
  std::vector<int32_t> table_;
  size_t count_ = 0;
};

// A BPE model's vocab / merges read straight from tokenizer.json (json_load.cpp).
struct StreamedBpe {
  bool have_vocab = false, have_merges = false;
  Vocab vocab;
  MergeList merges;
};
// Parses tokenizer.json; a BPE model's vocab / merges go to `out` instead of the returned DOM.
json parse_tokenizer_json(std::string_view text, const std::string& name, StreamedBpe& out);
std::unique_ptr<Model> make_model(const json& j, const JsonCtx& c, StreamedBpe* pre);
std::string read_whole_file(const std::string& path);  // IoError if unreadable
// Tokenizer::from_file on text already read (freed once parsed).
Tokenizer load_tokenizer_json(std::string text, const std::string& name);
std::unique_ptr<Model> make_bpe_json(const json& j, const JsonCtx& c, StreamedBpe* pre);

}  // namespace ohm::tokenizers
