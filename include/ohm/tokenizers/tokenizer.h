// Hugging Face `tokenizers`-compatible tokenization: the tokenizer.json pipeline
// (normalizer -> pre-tokenizer -> model -> post-processor, decoder, added tokens), plus loaders
// for a model directory (tokenizer.json + tokenizer_config.json, applied the way transformers'
// PreTrainedTokenizerFast does) and for GGUF-embedded vocabularies (`tokenizer.ggml.*`).
//
//   auto tok = ohm::tokenizers::Tokenizer::from_file("tokenizer.json");
//   auto enc = tok.encode("Hello world", /*add_special_tokens=*/true);   // enc.ids, enc.offsets
//   std::string s = tok.decode(enc.ids, /*skip_special_tokens=*/true);
//
//   auto hf = ohm::tokenizers::AutoTokenizer::from_pretrained("models/llama");   // or a .gguf
//   auto ids = hf.encode("Hello");    // BOS/EOS as add_bos_token/add_eos_token say
//
// Input text is UTF-8. HF takes a Python str, so bytes that are not valid UTF-8 are replaced by
// U+FFFD exactly as Python's bytes.decode("utf-8", "replace") does (one U+FFFD per maximal
// invalid subpart); offsets then refer to that repaired text.
//
// Thread safety: a loaded Tokenizer is immutable; encode/decode may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ohm/core/token_id.h"

namespace ohm {
class ThreadPool;
}

namespace ohm::tokenizers {

enum class OffsetType { Byte, Char };  // Char = Unicode code points, as Python's str indexes

struct Encoding {
  std::vector<TokenId> ids;
  std::vector<std::string> tokens;
  std::vector<std::pair<size_t, size_t>> offsets;  // into the input text (see OffsetType)
  std::vector<uint32_t> type_ids;
  std::vector<uint32_t> attention_mask;
  std::vector<uint32_t> special_tokens_mask;
  std::vector<int64_t> word_ids;  // -1 for none (special tokens, padding)
  std::vector<Encoding> overflowing;

  size_t size() const { return ids.size(); }
};

enum class TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond };
enum class Direction { Right, Left };

struct TruncationParams {
  size_t max_length = 512;
  TruncationStrategy strategy = TruncationStrategy::LongestFirst;
  size_t stride = 0;
  Direction direction = Direction::Right;
};

struct PaddingParams {
  bool batch_longest = true;  // false: pad to `fixed_length`
  size_t fixed_length = 0;
  Direction direction = Direction::Right;
  size_t pad_to_multiple_of = 0;
  TokenId pad_id = 0;
  uint32_t pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

struct EncodeOptions {
  bool add_special_tokens = true;
  OffsetType offset_type = OffsetType::Char;
};

class Pipeline;  // the components (ohm/tokenizers/pipeline.h)

// How a SentencePiece tokenizer.model is mapped onto the tokenizer.json pipeline.
enum class SpmConversion {
  // transformers' generic conversion from the proto (what AutoTokenizer builds for a directory with
  // only tokenizer.model and no tokenizer class): the model's normalizer spec (precompiled
  // charsmap,
  // extra-whitespace removal, dummy prefix), BPE merges ranked by piece score, or Unigram.
  Proto,
  // transformers' LlamaTokenizer / LlamaTokenizerFast: no normalizer, Metaspace pre-tokenizer,
  // BPE merges ranked by the merged piece's id (generate_merges), byte_fallback. BPE models only.
  Llama,
};
struct SpmOptions {
  SpmConversion conversion = SpmConversion::Proto;
  // Dummy prefix on every chunk between added tokens (true) or only at the start of the text.
  // transformers' defaults: true for Proto, false for LlamaTokenizer.
  bool legacy = true;
  bool add_prefix_space = true;  // Llama only: false = no dummy prefix (prepend_scheme "never")
};

class Tokenizer {
 public:
  // Loads a tokenizer.json (".gz" and ".xz" files are decompressed). FormatError names the file
  // and the JSON path of the offending field ("model.merges[3]", "pre_tokenizer.type").
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json(const nlohmann::json& j, const std::string& name = "tokenizer.json");
  static Tokenizer from_json_text(std::string_view text,
                                  const std::string& name = "tokenizer.json");
  // A GGUF file's embedded vocabulary (tokenizer.ggml.model llama / gpt2 / bert), mapped onto the
  // same pipeline the corresponding HF tokenizer.json uses.
  static Tokenizer from_gguf(const std::string& path);
  // A SentencePiece tokenizer.model (BPE or Unigram) converted the way transformers 5 does (see
  // SpmOptions). The default (Proto, legacy) encodes exactly like sentencepiece's
  // SentencePieceProcessor.encode (special-token text aside: set_split_special_tokens(false)).
  static Tokenizer from_sentencepiece(const std::string& path, const SpmOptions& opt = {});

  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  Encoding encode(std::string_view text, bool add_special_tokens = true) const {
    return encode(text, EncodeOptions{add_special_tokens, OffsetType::Char});
  }
  Encoding encode(std::string_view text, const EncodeOptions& opt) const;
  Encoding encode_pair(std::string_view a, std::string_view b, const EncodeOptions& opt = {}) const;
  // Only the ids (no token strings / offsets): the fast path.
  std::vector<TokenId> encode_ids(std::string_view text, bool add_special_tokens = true) const;
  // Encodes on a thread pool (the global one by default); applies padding across the batch.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts,
                                     const EncodeOptions& opt = {},
                                     ThreadPool* pool = nullptr) const;
  std::vector<std::vector<TokenId>> encode_batch_ids(const std::vector<std::string>& texts,
                                                     bool add_special_tokens = true,
                                                     ThreadPool* pool = nullptr) const;

  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false) const;
  std::vector<std::string> decode_batch(const std::vector<std::vector<TokenId>>& ids,
                                        bool skip_special_tokens = false) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(TokenId id) const;
  bool is_special(TokenId id) const;
  size_t vocab_size(bool with_added_tokens = true) const;

  void set_truncation(std::optional<TruncationParams> t);
  void set_padding(std::optional<PaddingParams> p);
  const std::optional<TruncationParams>& truncation() const;
  const std::optional<PaddingParams>& padding() const;

  // Parse special tokens found in the text as such (default true; false = HF's
  // encode_special_tokens=True, i.e. treat them as plain text).
  void set_split_special_tokens(bool parse_special);

  Pipeline& pipeline();
  const Pipeline& pipeline() const;

 private:
  std::unique_ptr<Pipeline> p_;
};

// Incremental decoding for streaming generation: step() returns the text that became final
// with this token, never an incomplete UTF-8 sequence (HF tokenizers' DecodeStream).
class DecodeStream {
 public:
  explicit DecodeStream(const Tokenizer& tok, bool skip_special_tokens = false);
  std::optional<std::string> step(TokenId id);
  std::optional<std::string> step(const std::vector<TokenId>& ids);

 private:
  const Tokenizer* tok_;
  bool skip_;
  std::vector<TokenId> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

// transformers-style loading: a tokenizer plus tokenizer_config.json's settings.
// What `tokenizer(text)` returns in transformers: per row the ids and the attention mask (all
// ones here: rows are not padded; generate() pads internally).
struct BatchEncoding {
  std::vector<std::vector<TokenId>> input_ids;
  std::vector<std::vector<int32_t>> attention_mask;
  size_t size() const { return input_ids.size(); }
};

class AutoTokenizer {
 public:
  // A model directory (or Hub id in the HF cache, via ohm::resolve_model) with tokenizer.json
  // (or tokenizer.model) and optionally tokenizer_config.json; a tokenizer.json file; or a .gguf.
  static AutoTokenizer from_pretrained(const std::string& model_or_path);

  // transformers' tokenizer.encode(text, add_special_tokens=...).
  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = true) const;
  Encoding encode_full(std::string_view text, bool add_special_tokens = true) const;
  // transformers' tokenizer.decode(ids, skip_special_tokens=..., clean_up_tokenization_spaces
  // from the config unless overridden).
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false,
                     std::optional<bool> clean_up_tokenization_spaces = std::nullopt) const;
  // The same for 64-bit ids (e.g. read from an i64 tensor).
  std::string decode(std::span<const int64_t> ids, bool skip_special_tokens = false,
                     std::optional<bool> clean_up_tokenization_spaces = std::nullopt) const;
  // tokenizer(text) / tokenizer([texts]): one row per text.
  BatchEncoding operator()(std::string_view text, bool add_special_tokens = true) const;
  BatchEncoding operator()(const std::vector<std::string>& texts,
                           bool add_special_tokens = true) const;

  const Tokenizer& tokenizer() const { return tok_; }
  Tokenizer& tokenizer() { return tok_; }
  const std::optional<std::string>& bos_token() const { return bos_; }
  const std::optional<std::string>& eos_token() const { return eos_; }
  const std::optional<std::string>& pad_token() const { return pad_; }
  const std::optional<std::string>& unk_token() const { return unk_; }
  std::optional<TokenId> bos_token_id() const;
  std::optional<TokenId> eos_token_id() const;
  std::optional<TokenId> pad_token_id() const;
  size_t model_max_length() const { return model_max_length_; }
  bool clean_up_tokenization_spaces() const { return cleanup_; }
  // The chat template(s) as found in tokenizer_config.json (raw JSON; string or list).
  const std::string& chat_template_json() const { return chat_template_json_; }

 private:
  Tokenizer tok_;
  std::optional<std::string> bos_, eos_, pad_, unk_;
  size_t model_max_length_ = size_t(1) << 60;
  bool cleanup_ = false;
  std::string chat_template_json_;
};

// transformers' clean_up_tokenization (" ." -> "." etc.).
std::string clean_up_tokenization(std::string text);

// Python-compatible UTF-8 repair (bytes.decode("utf-8", "replace")).
std::string sanitize_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);

// Reads a file, decompressing .gz (zlib) and .xz (liblzma).
std::string read_maybe_compressed(const std::string& path);

// The tokenizer.ggml.pre values Tokenizer::from_gguf maps to a pre-tokenizer (llama.cpp's names;
// ohm::ArchSpec::tokenizer_pre names one of them).
std::vector<std::string> gguf_pre_types();

}  // namespace ohm::tokenizers
