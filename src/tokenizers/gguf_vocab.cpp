// GGUF-embedded vocabularies (tokenizer.ggml.*) mapped onto the tokenizer.json pipeline the
// corresponding HF tokenizer uses:
//   llama (SentencePiece BPE) -> transformers' legacy LlamaConverter layout (Prepend + Replace
//                                normalizer, BPE with byte_fallback, merges from scores);
//   gpt2  (byte-level BPE)    -> ByteLevel with the pre-tokenizer llama.cpp associates with
//                                tokenizer.ggml.pre (regexes from llama.cpp's llama-vocab.cpp);
//   bert  (WordPiece)         -> BertNormalizer + BertPreTokenizer + WordPiece ("##" restored).
#include <algorithm>
#include <map>

#include "internal.h"
#include "ohm/formats/gguf.h"

namespace ohm::tokenizers {

namespace {

json split_re(const std::string& re) {
  return json{
      {"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json byte_level(bool use_regex) {
  return json{{"type", "ByteLevel"},
              {"add_prefix_space", false},
              {"trim_offsets", true},
              {"use_regex", use_regex}};
}

const char* kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* kQwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// llama.cpp's pre-tokenizer types (tokenizer.ggml.pre), one row each: the names llama.cpp
// gives it, whether an NFC normalizer comes first, and its pre-tokenizer steps (regexes from
// llama.cpp's llama-vocab.cpp). Architectures name theirs in ArchSpec::tokenizer_pre.
struct PreType {
  std::vector<std::string> names;
  bool nfc;
  void (*steps)(json& p);
};

const std::vector<PreType>& pre_types() {
  static const std::vector<PreType> t = {
      {{"llama3", "llama-bpe", "llama-v3", "dbrx", "smaug-bpe"},
       false,
       [](json& p) {
         p.push_back(split_re(kLlama3));
         p.push_back(byte_level(false));
       }},
      {{"qwen2", "deepseek-r1-qwen", "megrez"},
       true,
       [](json& p) {
         p.push_back(split_re(kQwen2));
         p.push_back(byte_level(false));
       }},
      {{"deepseek-llm"},
       false,
       [](json& p) {
         p.push_back(split_re("[\r\n]"));
         p.push_back(split_re(
             "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-"
             "ᏽᲐ-"
             "ᲺᲽ-"
             "Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}"
             "ῠ-"
             "Ῥῲ-"
             "ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-"
             "ꮿﬀ-"
             "ﬆﬓ-"
             "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"));
         p.push_back(split_re("\\s?[!-/:-~！-／：-～‘-‟　-。]+"));
         p.push_back(split_re("\\s+$"));
         p.push_back(split_re("[一-龥ࠀ-一가-퟿]+"));
         p.push_back(json{{"type", "Digits"}, {"individual_digits", false}});
         p.push_back(byte_level(false));
       }},
      {{"deepseek-coder"},
       false,
       [](json& p) {
         p.push_back(split_re("[\r\n]"));
         p.push_back(split_re("\\s?\\p{L}+"));
         p.push_back(split_re("\\s?\\p{P}+"));
         p.push_back(split_re("[一-龥ࠀ-一가-퟿]+"));
         p.push_back(json{{"type", "Digits"}, {"individual_digits", true}});
         p.push_back(byte_level(false));
       }},
      {{"deepseek-v3"},
       false,
       [](json& p) {
         p.push_back(split_re("\\p{N}{1,3}"));
         p.push_back(split_re("[一-龥぀-ゟ゠-ヿ]+"));
         p.push_back(split_re(
             "[!\"#$%&'()*+,\\-./"
             ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
             "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"));
         p.push_back(byte_level(false));
       }},
      {{"falcon"},
       false,
       [](json& p) {
         p.push_back(json{{"type", "Punctuation"}, {"behavior", "Contiguous"}});
         p.push_back(byte_level(true));
         p.push_back(json{{"type", "Digits"}, {"individual_digits", false}});
         p.push_back(split_re("[0-9][0-9][0-9]"));
       }},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       false,
       [](json& p) {
         p.push_back(json{{"type", "Digits"}, {"individual_digits", true}});
         p.push_back(byte_level(true));
       }},
      {{"mpt", "olmo"}, true, [](json& p) { p.push_back(byte_level(true)); }},
      {{"", "default", "gpt-2", "gpt2", "jais", "phi-2", "stablelm2"},
       false,
       [](json& p) { p.push_back(byte_level(true)); }},
  };
  return t;
}

// tokenizer.ggml.pre -> (normalizer, pre_tokenizer) JSON.
std::pair<json, json> bpe_pre(const std::string& pre) {
  for (const PreType& t : pre_types())
    if (std::find(t.names.begin(), t.names.end(), pre) != t.names.end()) {
      json seq = {{"type", "Sequence"}, {"pretokenizers", json::array()}};
      t.steps(seq["pretokenizers"]);
      return {t.nfc ? json{{"type", "NFC"}} : json(nullptr), seq};
    }
  throw UnsupportedError(ErrorContext().key("tokenizer.ggml.pre"),
                         "unknown pre-tokenizer '" + pre + "'");
}

}  // namespace

std::vector<std::string> gguf_pre_types() {
  std::vector<std::string> out;
  for (const PreType& t : pre_types())
    for (const auto& n : t.names)
      if (!n.empty()) out.push_back(n);
  return out;
}

namespace {

// transformers' SentencePieceExtractor: merges ordered by the merged piece's score.
MergeList spm_merges(const std::vector<std::string>& toks, const std::vector<double>& scores) {
  Vocab v;
  v.reserve(toks.size());
  for (size_t i = 0; i < toks.size(); ++i) v.add(toks[i], static_cast<int32_t>(i));
  struct M {
    int32_t l, r;
    double score;
    size_t order;
  };
  std::vector<M> all;
  for (size_t i = 0; i < toks.size(); ++i) {
    const std::string& t = toks[i];
    std::vector<M> local;
    for (size_t k = 1; k < t.size(); ++k) {
      if ((static_cast<unsigned char>(t[k]) & 0xC0) == 0x80) continue;
      int32_t l = v.find(std::string_view(t).substr(0, k)),
              r = v.find(std::string_view(t).substr(k));
      if (l >= 0 && r >= 0) local.push_back({l, r, i < scores.size() ? scores[i] : 0.0, 0});
    }
    std::sort(local.begin(), local.end(),
              [](const M& a, const M& b) { return a.l != b.l ? a.l < b.l : a.r < b.r; });
    for (auto& m : local) {
      m.order = all.size();
      all.push_back(m);
    }
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const M& a, const M& b) { return a.score > b.score; });
  MergeList out;
  out.reserve(all.size());
  for (auto& m : all)
    out.emplace_back(toks[static_cast<size_t>(m.l)], toks[static_cast<size_t>(m.r)]);
  return out;
}

json llama_normalizer() {
  return json{
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
}
json llama_decoder() {
  return json{{"type", "Sequence"},
              {"decoders",
               {{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                {{"type", "ByteFallback"}},
                {{"type", "Fuse"}},
                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
}

}  // namespace

Tokenizer build_spm_tokenizer(const std::vector<std::string>& toks,
                              const std::vector<double>& scores, const std::vector<int64_t>& types,
                              std::optional<int32_t> unk_id, std::optional<int32_t> bos_id,
                              std::optional<int32_t> eos_id, bool add_bos, bool add_eos,
                              const std::string& name);

Tokenizer build_spm_tokenizer(const std::vector<std::string>& toks,
                              const std::vector<double>& scores, const std::vector<int64_t>& types,
                              std::optional<int32_t> unk_id, std::optional<int32_t> bos_id,
                              std::optional<int32_t> eos_id, bool add_bos, bool add_eos,
                              const std::string& name) {
  JsonCtx c{name, "tokenizer.ggml"};
  Tokenizer t;
  Pipeline& p = t.pipeline();
  BpeConfig cfg;
  cfg.vocab = toks;
  cfg.merges = spm_merges(toks, scores);
  if (unk_id && *unk_id >= 0 && static_cast<size_t>(*unk_id) < toks.size())
    cfg.unk_token = toks[static_cast<size_t>(*unk_id)];
  cfg.fuse_unk = true;
  cfg.byte_fallback = true;
  p.model = make_bpe(std::move(cfg), c);
  p.normalizer = make_normalizer(llama_normalizer(), c);
  p.decoder = make_decoder(llama_decoder(), c);
  for (size_t i = 0; i < toks.size() && i < types.size(); ++i) {
    if (types[i] == 2 || types[i] == 3 || types[i] == 4) {
      AddedToken a;
      a.content = toks[i];
      a.id = static_cast<int32_t>(i);
      a.special = types[i] != 4;
      a.normalized = false;
      p.added.push_back(a);
    }
  }
  json single = json::array(), pair = json::array(), specials = json::object();
  auto add_special = [&](std::optional<int32_t> id, json& tmpl, int type_id) {
    if (!id || *id < 0 || static_cast<size_t>(*id) >= toks.size()) return;
    const std::string& s = toks[static_cast<size_t>(*id)];
    tmpl.push_back({{"SpecialToken", {{"id", s}, {"type_id", type_id}}}});
    specials[s] = {{"id", s}, {"ids", {*id}}, {"tokens", {s}}};
  };
  if (add_bos) add_special(bos_id, single, 0);
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (add_eos) add_special(eos_id, single, 0);
  pair = single;
  if (add_bos) add_special(bos_id, pair, 1);
  pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
  if (add_eos) add_special(eos_id, pair, 1);
  p.post_processor = make_post_processor(json{{"type", "TemplateProcessing"},
                                              {"single", single},
                                              {"pair", pair},
                                              {"special_tokens", specials}},
                                         c, *p.model);
  p.finish_added_tokens();
  return t;
}

Tokenizer Tokenizer::from_gguf(const std::string& path) {
  auto f = gguf::GGUFFile::open(path);
  JsonCtx c{path, "tokenizer.ggml"};
  auto model = f.get_string("tokenizer.ggml.model");
  if (!model)
    throw FormatError(ErrorContext().file(path).key("tokenizer.ggml.model"),
                      "missing: the file has no vocabulary");
  auto toks = f.get_string_array("tokenizer.ggml.tokens");
  if (!toks) throw FormatError(ErrorContext().file(path).key("tokenizer.ggml.tokens"), "missing");
  auto types = f.get_int_array("tokenizer.ggml.token_type").value_or(std::vector<int64_t>{});
  auto id_of = [&](const char* key) -> std::optional<int32_t> {
    auto v = f.get_int(key);
    if (!v) return std::nullopt;
    return static_cast<int32_t>(*v);
  };
  if (*model == "llama") {
    auto scores = f.get_float_array("tokenizer.ggml.scores").value_or(std::vector<double>{});
    return build_spm_tokenizer(*toks, scores, types, id_of("tokenizer.ggml.unknown_token_id"),
                               id_of("tokenizer.ggml.bos_token_id"),
                               id_of("tokenizer.ggml.eos_token_id"),
                               f.get_bool("tokenizer.ggml.add_bos_token").value_or(true),
                               f.get_bool("tokenizer.ggml.add_eos_token").value_or(false), path);
  }
  Tokenizer t;
  Pipeline& p = t.pipeline();
  if (*model == "gpt2") {
    BpeConfig cfg;
    cfg.vocab = *toks;
    auto merges = f.get_string_array("tokenizer.ggml.merges");
    if (!merges)
      throw FormatError(ErrorContext().file(path).key("tokenizer.ggml.merges"), "missing");
    cfg.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& m = (*merges)[i];
      size_t sp = m.find(' ', 1);
      if (sp == std::string::npos)
        throw FormatError(
            ErrorContext().file(path).key("tokenizer.ggml.merges[" + std::to_string(i) + "]"),
            "expected \"a b\"");
      cfg.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    p.model = make_bpe(std::move(cfg), c);
    auto [norm, pre] = bpe_pre(f.get_string("tokenizer.ggml.pre").value_or("default"));
    if (!norm.is_null()) p.normalizer = make_normalizer(norm, c);
    p.pre_tokenizer = make_pre_tokenizer(pre, c);
    p.decoder = make_decoder(json{{"type", "ByteLevel"}}, c);
    p.post_processor =
        make_post_processor(json{{"type", "ByteLevel"}, {"trim_offsets", false}}, c, *p.model);
  } else if (*model == "bert") {
    std::vector<std::string> vocab;
    vocab.reserve(toks->size());
    const std::string sp = "\xE2\x96\x81";
    for (size_t i = 0; i < toks->size(); ++i) {
      const std::string& s = (*toks)[i];
      const bool control = i < types.size() && types[i] == 3;
      // Control tokens and "[X]" specials as they are (a "▁" piece never starts with '['), word
      // starts without the "▁", continuations with WordPiece's "##".
      if (control || (s.size() >= 2 && s.front() == '[' && s.back() == ']'))
        vocab.push_back(s);
      else if (s.compare(0, sp.size(), sp) == 0)
        vocab.push_back(s.substr(sp.size()));
      else
        vocab.push_back("##" + s);
    }
    auto unk = id_of("tokenizer.ggml.unknown_token_id");
    std::string unk_s = unk && static_cast<size_t>(*unk) < vocab.size()
                            ? vocab[static_cast<size_t>(*unk)]
                            : "[UNK]";
    for (size_t i = 0; i < vocab.size() && i < types.size(); ++i)
      if (types[i] == 3)
        p.added.push_back(
            AddedToken{vocab[i], static_cast<int32_t>(i), false, false, false, false, true});
    p.model = make_wordpiece(vocab, unk_s, "##", 100);
    p.normalizer = make_normalizer(json{{"type", "BertNormalizer"}, {"lowercase", true}}, c);
    p.pre_tokenizer = make_pre_tokenizer(json{{"type", "BertPreTokenizer"}}, c);
    p.decoder = make_decoder(json{{"type", "WordPiece"}}, c);
    auto cls = id_of("tokenizer.ggml.cls_token_id"),
         sep = id_of("tokenizer.ggml.seperator_token_id");
    if (cls && sep)
      p.post_processor =
          make_post_processor(json{{"type", "BertProcessing"},
                                   {"sep", {vocab[static_cast<size_t>(*sep)], *sep}},
                                   {"cls", {vocab[static_cast<size_t>(*cls)], *cls}}},
                              c, *p.model);
  } else {
    throw UnsupportedError(ErrorContext().file(path).key("tokenizer.ggml.model"),
                           "unsupported vocabulary type '" + *model + "'");
  }
  if (*model == "gpt2")
    for (size_t i = 0; i < toks->size() && i < types.size(); ++i)
      if (types[i] == 3 || types[i] == 4)
        p.added.push_back(AddedToken{(*toks)[i], static_cast<int32_t>(i), false, false, false,
                                     types[i] == 4, types[i] == 3});
  p.finish_added_tokens();
  return t;
}

}  // namespace ohm::tokenizers
