// config.json parsing. Defaults mirror transformers' configuration_<model_type>.py.
#include "ohm/formats/config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ohm/core/error.h"
#include "ohm/formats/json_reader.h"

namespace ohm {

using json = nlohmann::json;

namespace {

// HF defaults that differ between architectures.
struct Defaults {
  int64_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
  std::optional<int64_t> num_key_value_heads;  // nullopt: same as num_attention_heads
  int64_t max_position_embeddings;
  double norm_eps;
  double rope_theta;
  std::string hidden_act;
  bool tie_word_embeddings;
  std::optional<int64_t> bos, eos, pad;
  std::optional<int64_t> sliding_window;
};

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

// rope_theta, rope_scaling and partial_rotary_factor, from the top level (transformers 4) or
// from `rope_parameters` (transformers 5).
void parse_rope_settings(const JsonReader& r, double default_theta, DecoderConfig& c) {
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

// Reads the fields shared by the LLaMA-like configs (HF names), applying `d`.
void parse_common(const JsonReader& r, const Defaults& d, DecoderConfig& c) {
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
  parse_rope_settings(r, d.rope_theta, c);
  c.head_dim = r.opt_int("head_dim")
                   .value_or(c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
}

void validate(const JsonReader& r, const DecoderConfig& c) {
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

// ---- per architecture (defaults from transformers configuration_*.py) ----------------------

LlamaConfig parse_llama(const JsonReader& r) {
  LlamaConfig c;
  parse_common(r,
               {32000, 4096, 11008, 32, 32, std::nullopt, 2048, 1e-6, 10000.0, "silu", false, 1, 2,
                std::nullopt, std::nullopt},
               c);
  c.pretraining_tp = r.get_int("pretraining_tp", 1);
  return c;
}

MistralConfig parse_mistral(const JsonReader& r) {
  MistralConfig c;
  parse_common(r,
               {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1e-6, 10000.0, "silu", false, 1, 2,
                std::nullopt, 4096},
               c);
  return c;
}

MixtralConfig parse_mixtral(const JsonReader& r) {
  MixtralConfig c;
  parse_common(r,
               {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1e-5, 1e6, "silu", false, 1, 2,
                std::nullopt, std::nullopt},
               c);
  c.num_local_experts = r.get_int("num_local_experts", 8);
  c.num_experts_per_tok = r.get_int("num_experts_per_tok", 2);
  c.router_aux_loss_coef = r.get_double("router_aux_loss_coef", 0.001);
  c.router_jitter_noise = r.get_double("router_jitter_noise", 0.0);
  if (c.num_local_experts <= 0) r.fail("num_local_experts", "must be > 0");
  if (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.num_local_experts)
    r.fail("num_experts_per_tok", "must be in [1, num_local_experts]");
  return c;
}

Qwen2Config parse_qwen2(const JsonReader& r) {
  Qwen2Config c;
  parse_common(r,
               {151936, 4096, 22016, 32, 32, 32, 32768, 1e-6, 10000.0, "silu", false, std::nullopt,
                std::nullopt, std::nullopt, 4096},
               c);
  c.use_sliding_window = r.get_bool("use_sliding_window", false);
  c.max_window_layers = r.get_int("max_window_layers", 28);
  if (!c.use_sliding_window) c.sliding_window.reset();  // as Qwen2Config.__init__ does
  c.attention_bias = true;  // Qwen2 always has q/k/v biases (o_proj has none)
  return c;
}

GemmaConfig parse_gemma(const JsonReader& r) {
  GemmaConfig c;
  parse_common(r,
               {256000, 3072, 24576, 28, 16, 16, 8192, 1e-6, 10000.0, "gelu_pytorch_tanh", true, 2,
                1, 0, std::nullopt},
               c);
  if (!r.has("head_dim")) c.head_dim = 256;
  c.hidden_activation = r.get_string("hidden_activation", "");
  return c;
}

Phi3Config parse_phi3(const JsonReader& r) {
  Phi3Config c;
  parse_common(r,
               {32064, 3072, 8192, 32, 32, std::nullopt, 4096, 1e-5, 10000.0, "silu", false, 1,
                32000, 32000, std::nullopt},
               c);
  c.original_max_position_embeddings = r.get_int("original_max_position_embeddings", 4096);
  return c;
}

FalconConfig parse_falcon(const JsonReader& r) {
  FalconConfig c;
  // Old Falcon configs (model_type RefinedWeb/RefinedWebModel) use n_head/n_layer/n_head_kv.
  c.architectures = r.opt_string_list("architectures").value_or(std::vector<std::string>{});
  c.vocab_size = r.get_int("vocab_size", 65024);
  c.hidden_size = r.get_int("hidden_size", 4544);
  c.num_hidden_layers = r.opt_int("num_hidden_layers").value_or(r.get_int("n_layer", 32));
  c.num_attention_heads = r.opt_int("num_attention_heads").value_or(r.get_int("n_head", 71));
  c.norm_eps = r.get_double("layer_norm_epsilon", 1e-5);
  c.new_decoder_architecture =
      r.get_bool("new_decoder_architecture", r.raw().value("model_type", "") == "RefinedWeb");
  c.multi_query = r.get_bool("multi_query", true);
  c.parallel_attn = r.get_bool("parallel_attn", true);
  c.alibi = r.get_bool("alibi", false);
  c.bias = r.get_bool("bias", false);
  c.num_ln_in_parallel_attn = r.opt_int("num_ln_in_parallel_attn");
  const int64_t n_kv =
      r.opt_int("num_kv_heads").value_or(r.get_int("n_head_kv", c.num_attention_heads));
  // FalconAttention: kv heads = num_kv_heads if new_decoder_architecture or not multi_query,
  // else 1 (multi-query).
  c.num_key_value_heads = (c.new_decoder_architecture || !c.multi_query) ? n_kv : 1;
  c.max_position_embeddings = r.get_int("max_position_embeddings", 2048);
  parse_rope_settings(r, 10000.0, c);
  c.hidden_act = r.get_string("activation", "gelu");
  c.ffn_hidden_size = r.get_int("ffn_hidden_size", 4 * c.hidden_size);
  c.intermediate_size = c.ffn_hidden_size;
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", true);
  c.attention_bias = c.bias;
  c.mlp_bias = c.bias;
  c.bos_token_id = r.has("bos_token_id") ? r.opt_int("bos_token_id") : 11;
  c.pad_token_id = r.opt_int("pad_token_id");
  c.eos_token_id = r.opt_int_list("eos_token_id").value_or(std::vector<int64_t>{11});
  c.torch_dtype = r.opt_string("torch_dtype").value_or(r.get_string("dtype", ""));
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  return c;
}

GPT2Config parse_gpt2(const JsonReader& r) {
  GPT2Config c;
  c.architectures = r.opt_string_list("architectures").value_or(std::vector<std::string>{});
  c.vocab_size = r.get_int("vocab_size", 50257);
  c.n_positions = r.get_int("n_positions", 1024);
  c.max_position_embeddings = c.n_positions;
  c.hidden_size = r.get_int("n_embd", 768);
  c.num_hidden_layers = r.get_int("n_layer", 12);
  c.num_attention_heads = r.get_int("n_head", 12);
  c.num_key_value_heads = c.num_attention_heads;
  c.intermediate_size = r.opt_int("n_inner").value_or(4 * c.hidden_size);
  c.activation_function = r.get_string("activation_function", "gelu_new");
  c.hidden_act = c.activation_function;
  c.norm_eps = r.get_double("layer_norm_epsilon", 1e-5);
  c.scale_attn_weights = r.get_bool("scale_attn_weights", true);
  c.scale_attn_by_inverse_layer_idx = r.get_bool("scale_attn_by_inverse_layer_idx", false);
  c.reorder_and_upcast_attn = r.get_bool("reorder_and_upcast_attn", false);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", true);
  c.attention_bias = true;
  c.mlp_bias = true;
  c.bos_token_id = r.has("bos_token_id") ? r.opt_int("bos_token_id") : 50256;
  c.pad_token_id = r.opt_int("pad_token_id");
  c.eos_token_id = r.opt_int_list("eos_token_id").value_or(std::vector<int64_t>{50256});
  c.torch_dtype = r.opt_string("torch_dtype").value_or(r.get_string("dtype", ""));
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  c.rope_theta = 1.0;  // unused: learned positions
  return c;
}

std::string model_type_from_architectures(const std::vector<std::string>& archs) {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"LlamaForCausalLM", "llama"},     {"MistralForCausalLM", "mistral"},
      {"MixtralForCausalLM", "mixtral"}, {"Qwen2ForCausalLM", "qwen2"},
      {"GemmaForCausalLM", "gemma"},     {"Phi3ForCausalLM", "phi3"},
      {"FalconForCausalLM", "falcon"},   {"RWForCausalLM", "falcon"},
      {"GPT2LMHeadModel", "gpt2"}};
  for (const auto& a : archs)
    for (const auto& [k, v] : m)
      if (a == k) return v;
  return "";
}

std::string fmt_double(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

}  // namespace

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> t = {"llama", "mistral", "mixtral", "qwen2",
                                             "gemma", "phi3",    "falcon",  "gpt2"};
  return t;
}

ModelConfig parse_model_config(const json& j, const std::string& file) {
  JsonReader r(j, file);
  std::string type = r.get_string("model_type", "");
  const auto archs = r.opt_string_list("architectures").value_or(std::vector<std::string>{});
  if (type.empty()) type = model_type_from_architectures(archs);
  if (type.empty())
    throw ConfigError(ErrorContext().file(file).key("model_type"),
                      "missing, and 'architectures' names no known class");
  ModelConfig mc;
  if (type == "llama")
    mc = parse_llama(r);
  else if (type == "mistral")
    mc = parse_mistral(r);
  else if (type == "mixtral")
    mc = parse_mixtral(r);
  else if (type == "qwen2")
    mc = parse_qwen2(r);
  else if (type == "gemma")
    mc = parse_gemma(r);
  else if (type == "phi3")
    mc = parse_phi3(r);
  else if (type == "falcon" || type == "RefinedWeb" || type == "RefinedWebModel")
    mc = parse_falcon(r);
  else if (type == "gpt2")
    mc = parse_gpt2(r);
  else {
    std::string list;
    for (const auto& t : supported_model_types()) list += (list.empty() ? "" : ", ") + t;
    throw UnsupportedError(ErrorContext().file(file).key("model_type"),
                           "unknown model_type '" + type + "' (supported: " + list + ")");
  }
  std::visit(
      [&](auto& c) {
        c.model_type =
            type == "falcon" || type == "RefinedWeb" || type == "RefinedWebModel" ? "falcon" : type;
      },
      mc);
  validate(r, common(mc));
  return mc;
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(read_json_file(path), path);
}

const DecoderConfig& common(const ModelConfig& c) {
  return std::visit([](const auto& x) -> const DecoderConfig& { return x; }, c);
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
  if (c.model_type != "gpt2") s.emplace_back("rope_theta", fmt_double(c.rope_theta));
  if (c.rope_scaling)
    s.emplace_back("rope_scaling",
                   c.rope_scaling->rope_type + " x" + fmt_double(c.rope_scaling->factor));
  if (c.sliding_window) s.emplace_back("sliding_window", std::to_string(*c.sliding_window));
  if (!c.torch_dtype.empty()) s.emplace_back("torch_dtype", c.torch_dtype);
  if (const auto* m = std::get_if<MixtralConfig>(&mc)) {
    s.emplace_back("num_local_experts", std::to_string(m->num_local_experts));
    s.emplace_back("num_experts_per_tok", std::to_string(m->num_experts_per_tok));
  }
  if (const auto* f = std::get_if<FalconConfig>(&mc)) {
    s.emplace_back("new_decoder_architecture", f->new_decoder_architecture ? "true" : "false");
    s.emplace_back("multi_query", f->multi_query ? "true" : "false");
    s.emplace_back("parallel_attn", f->parallel_attn ? "true" : "false");
    s.emplace_back("alibi", f->alibi ? "true" : "false");
  }
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
  if (g.temperature < 0) r.fail("temperature", "must be >= 0");
  if (g.top_p < 0 || g.top_p > 1) r.fail("top_p", "must be in [0, 1]");
  if (g.num_beams < 1) r.fail("num_beams", "must be >= 1");
  if (g.num_return_sequences < 1) r.fail("num_return_sequences", "must be >= 1");
  if (g.repetition_penalty <= 0) r.fail("repetition_penalty", "must be > 0");
  return g;
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
