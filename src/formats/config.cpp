// config.json parsing. Defaults mirror transformers' configuration_<model_type>.py.
#include "ohm/formats/config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ohm/core/error.h"
#include "ohm/formats/json_reader.h"

namespace ohm {

using json = nlohmann::json;

namespace {

RopeScaling parse_rope(const JsonReader& r) {
  RopeScaling s;
  s.rope_type = r.opt_string("rope_type").value_or(r.get_string("type", "default"));
  if (s.rope_type == "su") s.rope_type = "longrope";  // HF renamed su -> longrope
  static const std::vector<std::string> known = {"default", "linear", "dynamic",
                                                 "yarn",    "llama3", "longrope"};
  if (std::find(known.begin(), known.end(), s.rope_type) == known.end())
    throw UnsupportedError(ErrorContext().file(r.file()).key(r.path("rope_type")),
                           "unknown rope scaling type '" + s.rope_type + "'");
  s.factor = r.get_double("factor", 1.0);
  s.original_max_position_embeddings = r.opt_int("original_max_position_embeddings");
  s.low_freq_factor = r.opt_double("low_freq_factor");
  s.high_freq_factor = r.opt_double("high_freq_factor");
  s.attention_factor = r.opt_double("attention_factor");
  s.beta_fast = r.opt_double("beta_fast");
  s.beta_slow = r.opt_double("beta_slow");
  s.mscale = r.opt_double("mscale");
  s.mscale_all_dim = r.opt_double("mscale_all_dim");
  s.truncate = r.get_bool("truncate", true);
  s.short_factor = r.opt_double_list("short_factor").value_or(std::vector<double>{});
  s.long_factor = r.opt_double_list("long_factor").value_or(std::vector<double>{});
  if (s.rope_type != "default" && s.rope_type != "longrope" && s.factor <= 0)
    r.fail("factor", "must be > 0");
  return s;
}

}  // namespace

void bind_rope(const JsonReader& r, double default_theta, DecoderConfig& c) {
  c.partial_rotary_factor = r.get_double("partial_rotary_factor", 1.0);
  c.rope_theta = r.get_double("rope_theta", default_theta);
  if (auto rp = r.object("rope_parameters")) {
    c.rope_theta = rp->get_double("rope_theta", c.rope_theta);
    if (rp->get_string("rope_type", rp->get_string("type", "default")) != "default")
      c.rope_scaling = parse_rope(*rp);
    if (rp->has("partial_rotary_factor"))
      c.partial_rotary_factor = rp->get_double("partial_rotary_factor", 1.0);
  }
  if (auto rs = r.object("rope_scaling")) c.rope_scaling = parse_rope(*rs);
}

void bind_decoder(const JsonReader& r, const ConfigDefaults& d, DecoderConfig& c) {
  c.architectures = r.opt_string_list("architectures").value_or(std::vector<std::string>{});
  c.vocab_size = r.get_int("vocab_size", d.vocab_size);
  c.hidden_size = r.get_int("hidden_size", d.hidden_size);
  c.intermediate_size = r.get_int("intermediate_size", d.intermediate_size);
  c.num_hidden_layers = r.get_int("num_hidden_layers", d.num_hidden_layers);
  c.num_attention_heads = r.get_int("num_attention_heads", d.num_attention_heads);
  c.num_key_value_heads = r.opt_int("num_key_value_heads")
                              .value_or(d.num_key_value_heads.value_or(c.num_attention_heads));
  c.max_position_embeddings = r.get_int("max_position_embeddings", d.max_position_embeddings);
  c.norm_eps = r.get_double("rms_norm_eps", d.norm_eps);
  c.hidden_act = r.get_string("hidden_act", d.hidden_act);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", d.tie_word_embeddings);
  c.attention_bias = r.get_bool("attention_bias", false);
  c.mlp_bias = r.get_bool("mlp_bias", false);
  c.bos_token_id = r.has("bos_token_id") ? r.opt_int("bos_token_id") : d.bos;
  c.pad_token_id = r.has("pad_token_id") ? r.opt_int("pad_token_id") : d.pad;
  if (auto e = r.opt_int_list("eos_token_id"))
    c.eos_token_id = *e;
  else if (d.eos)
    c.eos_token_id = {*d.eos};
  c.sliding_window =
      r.raw().contains("sliding_window") ? r.opt_int("sliding_window") : d.sliding_window;
  c.torch_dtype = r.opt_string("torch_dtype").value_or(r.get_string("dtype", ""));
  bind_rope(r, d.rope_theta, c);
  c.head_dim = r.opt_int("head_dim")
                   .value_or(c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
}

void validate_decoder(const JsonReader& r, const DecoderConfig& c) {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) r.fail(key, "must be > 0, got " + std::to_string(v));
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("num_key_value_heads", c.num_key_value_heads);
  positive("head_dim", c.head_dim);
  positive("intermediate_size", c.intermediate_size);
  positive("max_position_embeddings", c.max_position_embeddings);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_key_value_heads", std::to_string(c.num_key_value_heads) +
                                      " does not divide num_attention_heads " +
                                      std::to_string(c.num_attention_heads));
  if (!r.has("head_dim") && c.hidden_size % c.num_attention_heads != 0)
    r.fail("num_attention_heads", "hidden_size " + std::to_string(c.hidden_size) +
                                      " is not divisible by num_attention_heads " +
                                      std::to_string(c.num_attention_heads));
  if (c.norm_eps <= 0) r.fail("rms_norm_eps", "must be > 0");
  if (c.rope_theta <= 0) r.fail("rope_theta", "must be > 0");
  if (c.sliding_window && *c.sliding_window <= 0) r.fail("sliding_window", "must be > 0");
  for (int64_t e : c.eos_token_id)
    if (e < 0 || e >= c.vocab_size)
      r.fail("eos_token_id", "id " + std::to_string(e) + " outside the vocabulary");
}

namespace {

std::string fmt_double(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

}  // namespace

const DecoderConfig& ModelConfig::common() const {
  if (!c_) throw InvalidArgument("ModelConfig: empty (no config parsed)");
  return *c_;
}

void ModelConfig::throw_wrong_type() const {
  throw InvalidArgument("ModelConfig: the config of model_type '" +
                        (c_ ? c_->model_type : std::string("(none)")) +
                        "' is not of the requested architecture type");
}

const DecoderConfig& common(const ModelConfig& c) {
  return c.common();
}

QuantizationConfig parse_quantization_config(const JsonReader& r) {
  QuantizationConfig q;
  const auto bad = [&](const std::string& key, const std::string& what) {
    throw UnsupportedError(ErrorContext().file(r.file()).key(r.path(key)), what);
  };
  // AutoGPTQ's quantize_config.json and TheBloke-era files have no quant_method: GPTQ.
  q.quant_method = r.get_string("quant_method", r.has("bits") ? "gptq" : "");
  std::transform(q.quant_method.begin(), q.quant_method.end(), q.quant_method.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (q.quant_method != "gptq" && q.quant_method != "awq")
    bad("quant_method", "unsupported quant_method '" + q.quant_method + "' (supported: gptq, awq)");
  if (q.quant_method == "gptq") {
    q.bits = r.get_int("bits", 4);
    if (q.bits != 4 && q.bits != 8)
      bad("bits", "unsupported GPTQ bits " + std::to_string(q.bits) + " (supported: 4, 8)");
    q.group_size = r.get_int("group_size", 128);
    q.desc_act = r.get_bool("desc_act", false);
    q.sym = r.get_bool("sym", true);
    q.checkpoint_format = r.get_string("checkpoint_format", "gptq");
    if (q.checkpoint_format != "gptq" && q.checkpoint_format != "gptq_v2")
      bad("checkpoint_format",
          "unsupported checkpoint_format '" + q.checkpoint_format + "' (supported: gptq, gptq_v2)");
  } else {
    // transformers' AwqConfig keys, else AutoAWQ's quant_config.json ones (w_bit, q_group_size).
    q.bits = r.opt_int("bits").value_or(r.get_int("w_bit", 4));
    if (q.bits != 4)
      bad(r.has("bits") ? "bits" : "w_bit",
          "unsupported AWQ bits " + std::to_string(q.bits) + " (supported: 4)");
    q.group_size = r.opt_int("group_size").value_or(r.get_int("q_group_size", 128));
    q.zero_point = r.get_bool("zero_point", true);
    if (!q.zero_point)
      bad("zero_point", "AWQ without zero_point is not supported (GEMM checkpoints have zeros)");
    q.version = r.get_string("version", "gemm");
    std::transform(q.version.begin(), q.version.end(), q.version.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (q.version != "gemm")
      bad("version", "unsupported AWQ version '" + q.version + "' (supported: gemm)");
    q.modules_to_not_convert =
        r.opt_string_list("modules_to_not_convert").value_or(std::vector<std::string>{});
  }
  const char* gkey =
      r.has("group_size") || q.quant_method == "gptq" ? "group_size" : "q_group_size";
  if (q.group_size == 0 || q.group_size < -1 || (q.group_size > 0 && q.group_size % 32 != 0) ||
      (q.quant_method == "awq" && q.group_size == -1))
    throw ConfigError(ErrorContext().file(r.file()).key(r.path(gkey)),
                      "group_size " + std::to_string(q.group_size) +
                          " is not supported (expected a positive multiple of 32" +
                          (q.quant_method == "gptq" ? std::string(", or -1)") : std::string(")")));
  return q;
}

std::vector<std::pair<std::string, std::string>> summarize(const ModelConfig& mc) {
  const DecoderConfig& c = common(mc);
  std::vector<std::pair<std::string, std::string>> s = {
      {"model_type", c.model_type},
      {"architectures", c.architectures.empty() ? "" : c.architectures[0]},
      {"vocab_size", std::to_string(c.vocab_size)},
      {"hidden_size", std::to_string(c.hidden_size)},
      {"intermediate_size", std::to_string(c.intermediate_size)},
      {"num_hidden_layers", std::to_string(c.num_hidden_layers)},
      {"num_attention_heads", std::to_string(c.num_attention_heads)},
      {"num_key_value_heads", std::to_string(c.num_key_value_heads)},
      {"head_dim", std::to_string(c.head_dim)},
      {"max_position_embeddings", std::to_string(c.max_position_embeddings)},
      {"hidden_act", c.hidden_act},
      {"norm_eps", fmt_double(c.norm_eps)},
      {"tie_word_embeddings", c.tie_word_embeddings ? "true" : "false"},
  };
  if (c.partial_rotary_factor > 0) s.emplace_back("rope_theta", fmt_double(c.rope_theta));
  if (c.rope_scaling)
    s.emplace_back("rope_scaling",
                   c.rope_scaling->rope_type + " x" + fmt_double(c.rope_scaling->factor));
  if (c.sliding_window) s.emplace_back("sliding_window", std::to_string(*c.sliding_window));
  if (!c.torch_dtype.empty()) s.emplace_back("torch_dtype", c.torch_dtype);
  if (const auto& q = c.quantization) {
    std::string v = q->quant_method + " " + std::to_string(q->bits) + "-bit, group_size " +
                    std::to_string(q->group_size);
    if (q->quant_method == "gptq")
      v += std::string(q->sym ? ", sym" : ", asym") + (q->desc_act ? ", desc_act" : "") +
           ", checkpoint_format " + q->checkpoint_format;
    else
      v += std::string(q->zero_point ? ", zero_point" : "") + ", version " + q->version;
    s.emplace_back("quantization_config", v);
  }
  c.summarize_extra(s);
  return s;
}

// ---- generation_config.json ----------------------------------------------------------------

GenerationConfig parse_generation_config(const json& j, const std::string& file) {
  JsonReader r(j, file);
  GenerationConfig g;
  g.max_new_tokens = r.opt_int("max_new_tokens");
  g.max_length = r.get_int("max_length", 20);
  g.min_length = r.get_int("min_length", 0);
  g.min_new_tokens = r.opt_int("min_new_tokens");
  g.do_sample = r.get_bool("do_sample", false);
  g.num_beams = r.get_int("num_beams", 1);
  g.temperature = r.get_double("temperature", 1.0);
  g.top_k = r.get_int("top_k", 50);
  g.top_p = r.get_double("top_p", 1.0);
  g.min_p = r.opt_double("min_p");
  g.typical_p = r.get_double("typical_p", 1.0);
  g.repetition_penalty = r.get_double("repetition_penalty", 1.0);
  g.no_repeat_ngram_size = r.get_int("no_repeat_ngram_size", 0);
  g.length_penalty = r.get_double("length_penalty", 1.0);
  if (r.has("early_stopping")) {
    const auto& v = j["early_stopping"];
    if (v.is_boolean())
      g.early_stopping = v.get<bool>() ? "true" : "false";
    else if (v.is_string() && v.get<std::string>() == "never")
      g.early_stopping = "never";
    else
      r.fail("early_stopping", "expected true, false or \"never\"");
  }
  g.num_return_sequences = r.get_int("num_return_sequences", 1);
  if (r.has("bad_words_ids")) {
    const auto& v = j["bad_words_ids"];
    if (!v.is_array()) r.fail("bad_words_ids", "expected a list of lists of ids");
    for (const auto& seq : v) {
      if (!seq.is_array()) r.fail("bad_words_ids", "expected a list of lists of ids");
      std::vector<int64_t> ids;
      for (const auto& id : seq) {
        if (!id.is_number_integer()) r.fail("bad_words_ids", "ids must be integers");
        ids.push_back(id.get<int64_t>());
      }
      g.bad_words_ids.push_back(std::move(ids));
    }
  }
  g.stop_strings = r.opt_string_list("stop_strings").value_or(std::vector<std::string>{});
  g.bos_token_id = r.opt_int("bos_token_id");
  g.pad_token_id = r.opt_int("pad_token_id");
  g.decoder_start_token_id = r.opt_int("decoder_start_token_id");
  g.eos_token_id = r.opt_int_list("eos_token_id").value_or(std::vector<int64_t>{});
  g.output_scores = r.get_bool("output_scores", false);
  if (r.has("watermarking_config") && !j["watermarking_config"].is_null()) {
    const json& wj = j["watermarking_config"];
    if (!wj.is_object()) r.fail("watermarking_config", "expected an object");
    JsonReader wr(wj, file + ": watermarking_config");
    WatermarkingConfig w;
    w.greenlist_ratio = wr.get_double("greenlist_ratio", w.greenlist_ratio);
    w.bias = wr.get_double("bias", w.bias);
    const int64_t key = wr.get_int("hashing_key", static_cast<int64_t>(w.hashing_key));
    if (key < 0) wr.fail("hashing_key", "must be >= 0");
    w.hashing_key = static_cast<uint64_t>(key);
    if (auto s = wr.opt_string("seeding_scheme")) w.seeding_scheme = *s;
    w.context_width = wr.get_int("context_width", w.context_width);
    validate_watermarking_config(w, file + ": watermarking_config");
    g.watermarking_config = w;
  }
  if (g.temperature < 0) r.fail("temperature", "must be >= 0");
  if (g.top_p < 0 || g.top_p > 1) r.fail("top_p", "must be in [0, 1]");
  if (g.num_beams < 1) r.fail("num_beams", "must be >= 1");
  if (g.num_return_sequences < 1) r.fail("num_return_sequences", "must be >= 1");
  if (g.repetition_penalty <= 0) r.fail("repetition_penalty", "must be > 0");
  return g;
}

void validate_watermarking_config(const WatermarkingConfig& w, const std::string& where) {
  auto bad = [&](const std::string& k, const std::string& why) {
    ErrorContext ctx;
    if (!where.empty()) ctx.file(where);
    throw InvalidArgument(ctx.key(k), why);
  };
  auto num = [](double v) {
    std::ostringstream ss;
    ss << v;
    return ss.str();
  };
  if (!(w.greenlist_ratio > 0.0 && w.greenlist_ratio < 1.0))
    bad("greenlist_ratio (gamma)",
        "must be in (0, 1) exclusive (got " + num(w.greenlist_ratio) + ")");
  if (!std::isfinite(w.bias) || w.bias < 0.0)
    bad("bias (delta)", "must be a finite number >= 0 (got " + num(w.bias) + ")");
  if (w.seeding_scheme != "lefthash" && w.seeding_scheme != "selfhash")
    bad("seeding_scheme", "must be lefthash or selfhash (got '" + w.seeding_scheme + "')");
  if (w.context_width < 1 || w.context_width > 128)
    bad("context_width", "must be in 1..128 (got " + std::to_string(w.context_width) + ")");
}

GenerationConfig load_generation_config(const std::string& path) {
  return parse_generation_config(read_json_file(path), path);
}

GenerationConfig generation_config_from_model(const ModelConfig& mc) {
  const DecoderConfig& c = common(mc);
  GenerationConfig g;
  g.bos_token_id = c.bos_token_id;
  g.pad_token_id = c.pad_token_id;
  g.eos_token_id = c.eos_token_id;
  return g;
}

}  // namespace ohm

namespace ohm {
nlohmann::json load_tokenizer_config(const std::string& path) {
  nlohmann::json j = read_json_file(path);
  if (!j.is_object()) throw ConfigError(ErrorContext().file(path), "not a JSON object");
  if (j.contains("chat_template") && !j["chat_template"].is_null() &&
      !j["chat_template"].is_string() && !j["chat_template"].is_array())
    throw ConfigError(ErrorContext().file(path).key("chat_template"),
                      "must be a string or a list of {name, template}");
  return j;
}
}  // namespace ohm
