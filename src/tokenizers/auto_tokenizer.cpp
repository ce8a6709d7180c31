// AutoTokenizer: tokenizer.json (or tokenizer.model / .gguf) plus tokenizer_config.json, applied
// the way transformers' fast tokenizers (TokenizersBackend) apply them.
#include <filesystem>

#include "internal.h"
#include "ohm/formats/json_reader.h"
#include "ohm/formats/model_source.h"

namespace ohm::tokenizers {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> token_string(const json& cfg, const char* key) {
  const json* v = jget(cfg, key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object() && v->contains("content") && (*v)["content"].is_string())
    return (*v)["content"].get<std::string>();
  return std::nullopt;
}

std::string find_tokenizer_file(const fs::path& dir) {
  for (const char* f : {"tokenizer.json", "tokenizer.json.gz", "tokenizer.json.xz"})
    if (fs::exists(dir / f)) return (dir / f).string();
  return {};
}

// transformers' choice for a bare tokenizer.model: LlamaTokenizer(Fast) when the config names it
// (legacy defaults to false there), else TokenizersBackend's conversion from the proto (legacy
// defaults to true).
Tokenizer load_sentencepiece(const std::string& path, const json* cfg, const JsonCtx& c) {
  SpmOptions o;
  std::string cls = cfg ? jstring_or(*cfg, "tokenizer_class", "", c) : "";
  if (cls == "LlamaTokenizer" || cls == "LlamaTokenizerFast") {
    o.conversion = SpmConversion::Llama;
    o.legacy = jbool_or(*cfg, "legacy", false, c);
    o.add_prefix_space = jbool_or(*cfg, "add_prefix_space", true, c);
  } else if (cfg) {
    o.legacy = jbool_or(*cfg, "legacy", true, c);
  }
  return Tokenizer::from_sentencepiece(path, o);
}

}  // namespace

AutoTokenizer AutoTokenizer::from_pretrained(const std::string& arg) {
  AutoTokenizer at;
  fs::path p(arg);
  fs::path dir;
  std::string spm_path;
  bool byte_level_json = false;  // tokenizer.json text contains "ByteLevel" (in quotes)
  auto load_json = [&](const std::string& file) {
    std::string text = read_maybe_compressed(file);
    byte_level_json = text.find("\"ByteLevel\"") != std::string::npos;
    at.tok_ = load_tokenizer_json(std::move(text), file);
  };
  std::string ext = p.extension().string();
  if (fs::is_regular_file(p) && ext == ".gguf") {
    at.tok_ = Tokenizer::from_gguf(arg);
    return at;
  }
  if (fs::is_regular_file(p)) {
    if (ext == ".model") {
      spm_path = arg;
    } else {
      load_json(arg);
    }
    dir = p.parent_path();
  } else {
    ModelSource src = resolve_model(arg);
    if (src.kind == SourceKind::GgufFile) {
      at.tok_ = Tokenizer::from_gguf(src.path);
      return at;
    }
    dir = src.kind == SourceKind::Directory ? fs::path(src.path) : fs::path(src.path).parent_path();
    std::string tj = find_tokenizer_file(dir);
    if (!tj.empty()) {
      load_json(tj);
    } else if (fs::exists(dir / "tokenizer.model")) {
      spm_path = (dir / "tokenizer.model").string();
    } else {
      throw NotFoundError(ErrorContext().file(dir.string()),
                          "no tokenizer.json or tokenizer.model");
    }
  }
  fs::path cfgp = dir / "tokenizer_config.json";
  bool have_cfg = fs::exists(cfgp);
  json cfg = have_cfg ? read_json_file(cfgp.string()) : json::object();
  JsonCtx c{cfgp.string(), ""};
  if (!spm_path.empty()) at.tok_ = load_sentencepiece(spm_path, have_cfg ? &cfg : nullptr, c);
  if (!spm_path.empty()) {
    // transformers' defaults for a tokenizer.model (LlamaTokenizer's, and the proto's pieces).
    auto piece = [&](const char* s) -> std::optional<std::string> {
      if (at.tok_.token_to_id(s)) return std::string(s);
      return std::nullopt;
    };
    at.bos_ = piece("<s>");
    at.eos_ = piece("</s>");
    at.unk_ = piece("<unk>");
  }
  if (!have_cfg) return at;
  for (auto [key, slot] : {std::pair{"bos_token", &at.bos_}, std::pair{"eos_token", &at.eos_},
                           std::pair{"pad_token", &at.pad_}, std::pair{"unk_token", &at.unk_}})
    if (spm_path.empty() || jget(cfg, key)) *slot = token_string(cfg, key);
  if (const json* m = jget(cfg, "model_max_length"); m && m->is_number()) {
    double v = m->get<double>();
    if (v > 0 && v < 1e18) at.model_max_length_ = static_cast<size_t>(v);
  }
  at.cleanup_ = jbool_or(cfg, "clean_up_tokenization_spaces", false, c);
  if (const json* ct = jget(cfg, "chat_template")) at.chat_template_json_ = ct->dump();
  std::string cls = jstring_or(cfg, "tokenizer_class", "", c);
  bool llama_class = cls == "LlamaTokenizer" || cls == "LlamaTokenizerFast";
  // Added tokens declared only in the config.
  Pipeline& pl = at.tok_.pipeline();
  if (const json* dec = jget(cfg, "added_tokens_decoder"); dec && dec->is_object()) {
    bool changed = false;
    for (auto it = dec->begin(); it != dec->end(); ++it) {
      int32_t id = std::stoi(it.key());
      if (pl.id_to_token(id) &&
          pl.token_to_id(jstring(it.value(), "content", c.at("added_tokens_decoder"))) == id)
        continue;
      AddedToken a;
      a.id = id;
      a.content = jstring(it.value(), "content", c.at("added_tokens_decoder"));
      a.special = jbool_or(it.value(), "special", false, c);
      a.normalized = jbool_or(it.value(), "normalized", !a.special, c);
      // transformers matches them on the raw text when converting a tokenizer.model itself.
      if (!spm_path.empty() && !llama_class) a.normalized = false;
      a.lstrip = jbool_or(it.value(), "lstrip", false, c);
      a.rstrip = jbool_or(it.value(), "rstrip", false, c);
      a.single_word = jbool_or(it.value(), "single_word", false, c);
      pl.added.push_back(a);
      changed = true;
    }
    if (changed) pl.finish_added_tokens();
  }
  // transformers 5 maps tokenizer_class to a tokenizer that rebuilds parts of the pipeline:
  // LlamaTokenizer -> Metaspace(prepend_scheme "first", no split), no normalizer, BOS/EOS template
  // from add_bos_token/add_eos_token; GPT2Tokenizer -> GPT-2 ByteLevel pre-tokenizer. Other classes
  // (PreTrainedTokenizerFast, *TokenizerFast) use tokenizer.json as is.
  bool llama = llama_class;
  // AutoTokenizer loads TokenizersBackend (tokenizer.json as is) instead when the declared class is
  // LlamaTokenizer but tokenizer.json is byte-level
  // (TokenizersBackend._tokenizer_json_has_byte_level: the text contains "ByteLevel" in quotes).
  if (llama && byte_level_json) llama = false;
  const json* ab = jget(cfg, "add_bos_token");
  const json* ae = jget(cfg, "add_eos_token");
  if (cls == "GPT2Tokenizer") {
    pl.normalizer.reset();
    pl.pre_tokenizer =
        make_pre_tokenizer(json{{"type", "ByteLevel"},
                                {"add_prefix_space", jbool_or(cfg, "add_prefix_space", false, c)},
                                {"use_regex", true}},
                           JsonCtx{cfgp.string(), "pre_tokenizer"});
    pl.decoder = make_decoder(json{{"type", "ByteLevel"}}, JsonCtx{cfgp.string(), "decoder"});
    pl.finish_added_tokens();
  }
  if (llama) {
    // transformers 5 LlamaTokenizer.__init__: legacy defaults to False, add_prefix_space to True;
    // _get_prepend_scheme: "always" when legacy, "first" otherwise, "never" without prefix space.
    bool legacy = jbool_or(cfg, "legacy", false, c);
    bool aps = jbool_or(cfg, "add_prefix_space", true, c);
    const char* scheme = !aps ? "never" : legacy ? "always" : "first";
    pl.normalizer.reset();
    pl.pre_tokenizer = make_pre_tokenizer(json{{"type", "Metaspace"},
                                               {"replacement", "\xE2\x96\x81"},
                                               {"prepend_scheme", scheme},
                                               {"split", false}},
                                          JsonCtx{cfgp.string(), "pre_tokenizer"});
    json decs = json::array(
        {json{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
         json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
    if (aps) decs.push_back(json{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    pl.decoder = make_decoder(json{{"type", "Sequence"}, {"decoders", decs}},
                              JsonCtx{cfgp.string(), "decoder"});
    pl.finish_added_tokens();
  }
  if (llama && ((ab && ab->is_boolean()) || (ae && ae->is_boolean()))) {
    bool add_bos = ab && ab->is_boolean() && ab->get<bool>();
    bool add_eos = ae && ae->is_boolean() && ae->get<bool>();
    json single = json::array(), pair = json::array(), specials = json::object();
    auto add = [&](const std::optional<std::string>& tok, json& tmpl, int type_id) {
      if (!tok) return;
      auto id = pl.token_to_id(*tok);
      if (!id) return;
      tmpl.push_back({{"SpecialToken", {{"id", *tok}, {"type_id", type_id}}}});
      specials[*tok] = {{"id", *tok}, {"ids", {*id}}, {"tokens", {*tok}}};
    };
    if (add_bos) add(at.bos_, single, 0);
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (add_eos) add(at.eos_, single, 0);
    pair = single;
    if (add_bos) add(at.bos_, pair, 1);
    pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
    if (add_eos) add(at.eos_, pair, 1);
    pl.post_processor = make_post_processor(json{{"type", "TemplateProcessing"},
                                                 {"single", single},
                                                 {"pair", pair},
                                                 {"special_tokens", specials}},
                                            JsonCtx{cfgp.string(), "post_processor"}, *pl.model);
  }
  return at;
}

std::vector<int32_t> AutoTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return tok_.encode_ids(text, add_special_tokens);
}

Encoding AutoTokenizer::encode_full(std::string_view text, bool add_special_tokens) const {
  return tok_.encode(text, add_special_tokens);
}

std::string AutoTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens,
                                  std::optional<bool> cleanup) const {
  std::string s = tok_.decode(ids, skip_special_tokens);
  bool bpe = tok_.pipeline().model && std::string_view(tok_.pipeline().model->kind()) == "BPE";
  // transformers 5 ignores clean_up_tokenization_spaces for BPE tokenizers.
  if (cleanup.value_or(cleanup_ && !bpe)) s = clean_up_tokenization(std::move(s));
  return s;
}

std::optional<int32_t> AutoTokenizer::bos_token_id() const {
  return bos_ ? tok_.token_to_id(*bos_) : std::nullopt;
}
std::optional<int32_t> AutoTokenizer::eos_token_id() const {
  return eos_ ? tok_.token_to_id(*eos_) : std::nullopt;
}
std::optional<int32_t> AutoTokenizer::pad_token_id() const {
  return pad_ ? tok_.token_to_id(*pad_) : std::nullopt;
}

}  // namespace ohm::tokenizers
