// The components of a tokenizer.json pipeline, mirroring HF `tokenizers`:
// NormalizedString (text + per-byte alignment to the input), PreTokenizedString (splits),
// Normalizer, PreTokenizer, Model, PostProcessor, Decoder, AddedVocabulary.
// Each component is built from its JSON object by a factory that names the JSON path in errors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ohm/tokenizers/tokenizer.h"

namespace ohm::tokenizers {

struct Align {
  uint32_t start, end;  // absolute byte range of the input text
};

// (start, end, is_match) over a string, covering it entirely (HF's Pattern::find_matches).
struct Match {
  size_t start, end;
  bool is_match;
};

class Regex;  // Oniguruma, ruby syntax, UTF-8 (as HF uses through the onig crate)

// A pattern as used by Split / Replace: a literal string or a regex.
class Pattern {
 public:
  static Pattern literal(std::string s);
  static Pattern regex(const std::string& re, const std::string& where);
  static Pattern from_json(const nlohmann::json& j, const std::string& where);
  Pattern();
  ~Pattern();
  Pattern(Pattern&&) noexcept;
  Pattern& operator=(Pattern&&) noexcept;
  void find_matches(std::string_view s, std::vector<Match>& out) const;
  const Regex* regex() const { return re_.get(); }  // null for a literal

 private:
  std::string literal_;
  std::shared_ptr<Regex> re_;
};

class NormalizedString {
 public:
  NormalizedString() = default;
  // A fresh string whose alignments point into the input at `base`.
  NormalizedString(std::string_view s, uint32_t base);

  const std::string& get() const { return norm_; }
  bool empty() const { return norm_.empty(); }
  size_t size() const { return norm_.size(); }
  const std::vector<Align>& alignments() const { return align_; }
  uint32_t orig_start() const { return orig_start_; }
  uint32_t orig_end() const { return orig_end_; }

  // HF NormalizedString::transform_range on the normalized range [ns, ne): `dest` is a list of
  // (code point, change) with change 0 = replaces one char, +1 = inserted, -n = replaces one
  // char and removes n following ones; `initial_offset` chars are removed first.
  void transform_range(size_t ns, size_t ne, const std::vector<std::pair<char32_t, int>>& dest,
                       size_t initial_offset);
  void transform(const std::vector<std::pair<char32_t, int>>& dest, size_t initial_offset) {
    transform_range(0, norm_.size(), dest, initial_offset);
  }
  void prepend(std::string_view s);
  void append(std::string_view s);
  void replace(const Pattern& p, std::string_view content);
  void replace_char(char32_t from, std::string_view content);
  void lowercase();
  void strip(bool left, bool right);
  // Unicode normalization form: 0 NFC, 1 NFD, 2 NFKC, 3 NFKD.
  void unicode_normalize(int form);
  // Maps every byte b to the code point table[b] (GPT-2 byte-level), keeping alignments.
  void map_bytes(const char32_t* table);
  template <class F>
  void filter(F keep);
  template <class F>
  void map(F fn);

  // The slice [ns, ne) of the normalized string (HF slice(Range::Normalized)).
  NormalizedString slice(size_t ns, size_t ne) const;
  // Splits by matches with an HF SplitDelimiterBehavior.
  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  void split(const std::vector<Match>& matches, Behavior b,
             std::vector<NormalizedString>& out) const;
  // Original (absolute) byte range of a normalized range, as HF convert_offsets + shift.
  std::pair<size_t, size_t> original_range(size_t ns, size_t ne) const;

 private:
  std::string norm_;
  std::vector<Align> align_;
  uint32_t orig_start_ = 0, orig_end_ = 0;
};

// A token produced by a model: id and byte offsets in the split's normalized string.
struct Token {
  int32_t id;
  uint32_t start, end;
};

struct Split {
  NormalizedString ns;
  bool tokenized = false;  // tokens set (added tokens, or after the model ran)
  int32_t added_id = -1;   // an added token: value is ns.get()
  std::vector<Token> tokens;
};

struct PreTokenizedString {
  std::string_view original;
  std::vector<Split> splits;
  // Replaces every not-yet-tokenized split by f(split.ns) (empty results are dropped).
  template <class F>
  void split(F f);
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& s) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits `in` (appending to `out`); the default PreTokenizedString driver drops empty pieces.
  virtual void split(NormalizedString&& in, std::vector<NormalizedString>& out) const = 0;
  virtual void pre_tokenize(PreTokenizedString& pts) const;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual void tokenize(std::string_view s, std::vector<Token>& out) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view tok) const = 0;
  virtual const std::string* id_to_token(int32_t id) const = 0;
  virtual size_t vocab_size() const = 0;
  virtual const char* kind() const = 0;  // "BPE", "Unigram", "WordPiece", "WordLevel"
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual size_t added_tokens(bool is_pair) const = 0;
  // Combines the encodings (b may be null) into one, adding special tokens if asked.
  virtual Encoding process(Encoding a, Encoding* b, bool add_special_tokens) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// Factories: `where` is the JSON path used in error messages, `file` the file name.
struct JsonCtx {
  std::string file;
  std::string path;
  JsonCtx at(const std::string& key) const;
  JsonCtx at(size_t i) const;
  [[noreturn]] void fail(const std::string& what) const;
};
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const JsonCtx& c);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const JsonCtx& c);
std::unique_ptr<Model> make_model(const nlohmann::json& j, const JsonCtx& c);
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j, const JsonCtx& c,
                                                   const Model& model);
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const JsonCtx& c);

// BPE merges in rank order, all token bytes in one arena (a 280k-merge list is ~4 MB, not the
// ~20 MB of string pairs).
class MergeList {
 public:
  void reserve(size_t n, size_t bytes = 0) {
    ends_.reserve(2 * n);
    arena_.reserve(bytes);
  }
  void emplace_back(std::string_view a, std::string_view b) {
    arena_.append(a);
    ends_.push_back(static_cast<uint32_t>(arena_.size()));
    arena_.append(b);
    ends_.push_back(static_cast<uint32_t>(arena_.size()));
  }
  size_t size() const { return ends_.size() / 2; }
  bool empty() const { return ends_.empty(); }
  std::pair<std::string_view, std::string_view> operator[](size_t i) const {
    size_t a0 = i == 0 ? 0 : ends_[2 * i - 1], a1 = ends_[2 * i], b1 = ends_[2 * i + 1];
    std::string_view s = arena_;
    return {s.substr(a0, a1 - a0), s.substr(a1, b1 - a1)};
  }

 private:
  std::string arena_;
  std::vector<uint32_t> ends_;
};

// Direct constructors used by the GGUF / SentencePiece loaders.
struct BpeConfig {
  std::vector<std::string> vocab;  // id -> token
  MergeList merges;                // in rank order
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix, end_of_word_suffix;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
};
std::unique_ptr<Model> make_bpe(BpeConfig cfg, const JsonCtx& c);
std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> vocab,
                                    std::optional<int32_t> unk_id, bool byte_fallback);
std::unique_ptr<Model> make_wordpiece(std::vector<std::string> vocab, std::string unk,
                                      std::string prefix, size_t max_chars);

class Pipeline {
 public:
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Model> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  std::optional<TruncationParams> truncation;
  std::optional<PaddingParams> padding;
  bool parse_special = true;

  // Added vocabulary (call finish_added_tokens after changing).
  std::vector<AddedToken> added;
  void finish_added_tokens();

  // The pipeline up to the model: splits with tokens.
  void run(std::string_view text, PreTokenizedString& pts) const;
  Encoding encode_one(std::string_view text, OffsetType ot, bool with_strings) const;
  Encoding post_process(Encoding a, Encoding* b, bool add_special_tokens) const;

  std::optional<int32_t> token_to_id(std::string_view tok) const;
  const std::string* id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const;

  ~Pipeline();
  Pipeline();

 private:
  struct Trie;
  // Added tokens in s (leftmost-longest, then single_word / lstrip / rstrip): ranges in s and
  // indexes into `added`.
  void find_added(const Trie& trie, std::string_view s,
                  std::vector<std::pair<std::pair<size_t, size_t>, int32_t>>& marks) const;
  // encode_one without NormalizedString when the pipeline is: no normalizer, a pre-tokenizer
  // that splits by one regex then maps bytes (ByteLevel), any model. False if it is not.
  bool encode_byte_level(std::string_view text, OffsetType ot, bool with_strings,
                         Encoding& e) const;
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::unordered_map<int32_t, size_t> added_by_id_;  // -> index in `added`
  std::unordered_set<int32_t> special_ids_;
  std::shared_ptr<Trie> trie_raw_, trie_norm_;
};

}  // namespace ohm::tokenizers
