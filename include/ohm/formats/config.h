// config.json -> typed per-architecture configs, with the defaults of the matching
// transformers `configuration_*.py` (keys keep their HF names).
//
// Stage 1 (here): parse what the file says, fill HF defaults, validate, derive the values every
// model needs (head_dim, kv heads, eos list) into the common DecoderConfig base.
// Model code reads the common fields; arch-specific ones stay on the arch struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ohm {

// `rope_scaling` (transformers <= 4.x) or `rope_parameters` (5.x): linear, dynamic, yarn,
// llama3, longrope/su, default.
struct RopeScaling {
  std::string rope_type = "default";
  double factor = 1.0;
  std::optional<int64_t> original_max_position_embeddings;
  std::optional<double> low_freq_factor, high_freq_factor;                               // llama3
  std::optional<double> attention_factor, beta_fast, beta_slow, mscale, mscale_all_dim;  // yarn
  bool truncate = true;                           // yarn: floor/ceil the correction range
  std::vector<double> short_factor, long_factor;  // longrope / su
};

// What every decoder-only transformer has, under HF's canonical names.
struct DecoderConfig {
  std::string model_type;
  std::vector<std::string> architectures;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double norm_eps = 1e-6;  // rms_norm_eps or layer_norm_epsilon
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  double partial_rotary_factor = 1.0;
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::optional<int64_t> sliding_window;
  std::optional<int64_t> bos_token_id, pad_token_id;
  std::vector<int64_t> eos_token_id;
  std::string torch_dtype;  // "bfloat16", "float16", "float32" or empty
};

struct LlamaConfig : DecoderConfig {  // also CodeLlama, TinyLlama, LLaMA-2/3
  int64_t pretraining_tp = 1;
};
struct MistralConfig : DecoderConfig {};
struct MixtralConfig : DecoderConfig {
  int64_t num_local_experts = 8;
  int64_t num_experts_per_tok = 2;
  double router_aux_loss_coef = 0.001;
  double router_jitter_noise = 0.0;
};
struct Qwen2Config : DecoderConfig {
  bool use_sliding_window = false;
  int64_t max_window_layers = 28;
};
struct GemmaConfig : DecoderConfig {
  std::string hidden_activation;  // overrides hidden_act when set
};
struct Phi3Config : DecoderConfig {
  int64_t original_max_position_embeddings = 4096;
};
struct FalconConfig : DecoderConfig {
  bool new_decoder_architecture = false;
  bool multi_query = true;
  bool parallel_attn = true;
  bool alibi = false;
  bool bias = false;
  std::optional<int64_t> num_ln_in_parallel_attn;
  int64_t ffn_hidden_size = 0;
};
struct GPT2Config : DecoderConfig {
  int64_t n_positions = 1024;
  std::string activation_function = "gelu_new";
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  bool reorder_and_upcast_attn = false;
};

using ModelConfig = std::variant<LlamaConfig, MistralConfig, MixtralConfig, Qwen2Config,
                                 GemmaConfig, Phi3Config, FalconConfig, GPT2Config>;

// The model_type values ohm knows, e.g. for error messages.
const std::vector<std::string>& supported_model_types();

// Parses a config.json object. `file` names the source in errors. Unknown model_type ->
// UnsupportedError; bad or inconsistent values -> ConfigError naming the key.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& file);
ModelConfig load_model_config(const std::string& path);

const DecoderConfig& common(const ModelConfig& c);

// (key, value) pairs summarising the config for `ohm inspect`.
std::vector<std::pair<std::string, std::string>> summarize(const ModelConfig& c);

// generation_config.json with transformers' GenerationConfig defaults.
struct GenerationConfig {
  std::optional<int64_t> max_new_tokens;
  int64_t max_length = 20;
  int64_t min_length = 0;
  std::optional<int64_t> min_new_tokens;
  bool do_sample = false;
  int64_t num_beams = 1;
  double temperature = 1.0;
  int64_t top_k = 50;
  double top_p = 1.0;
  std::optional<double> min_p;
  double typical_p = 1.0;
  double repetition_penalty = 1.0;
  int64_t no_repeat_ngram_size = 0;
  double length_penalty = 1.0;
  std::string early_stopping = "false";  // "true", "false" or "never"
  int64_t num_return_sequences = 1;
  std::vector<std::vector<int64_t>> bad_words_ids;
  std::vector<std::string> stop_strings;
  std::optional<int64_t> bos_token_id, pad_token_id, decoder_start_token_id;
  std::vector<int64_t> eos_token_id;
  bool output_scores = false;
  std::optional<uint64_t> seed;  // not an HF field; set by callers
};

GenerationConfig parse_generation_config(const nlohmann::json& j, const std::string& file);
GenerationConfig load_generation_config(const std::string& path);
// The defaults transformers derives from config.json when there is no generation_config.json.
GenerationConfig generation_config_from_model(const ModelConfig& c);

}  // namespace ohm

namespace ohm {
// tokenizer_config.json, loaded raw (the tokenizer module interprets it): must be an object.
nlohmann::json load_tokenizer_config(const std::string& path);
}  // namespace ohm
