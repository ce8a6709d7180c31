// config.json -> typed per-architecture configs, with the defaults of the matching
// transformers `configuration_*.py` (keys keep their HF names).
//
// Stage 1 (here): parse what the file says, fill HF defaults, validate, derive the values every
// model needs (head_dim, kv heads, eos list) into the common DecoderConfig base.
// Model code reads the common fields; arch-specific ones stay on the arch struct.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

class JsonReader;

// `quantization_config` of a GPTQ (AutoGPTQ / GPTQModel / optimum) or AWQ (AutoAWQ, GEMM)
// checkpoint, under HF's key names. ohm/nn/quantized_source.h reads the tensors it describes.
struct QuantizationConfig {
  std::string quant_method;                // "gptq" or "awq"
  int64_t bits = 4;                        // gptq: 4 or 8; awq: 4
  int64_t group_size = 128;                // -1: one group per input column (gptq only)
  bool desc_act = false;                   // gptq act-order (g_idx not i / group_size)
  bool sym = true;                         // gptq; informative (the zeros are read as stored)
  std::string checkpoint_format = "gptq";  // gptq: "gptq" (v1, zeros stored minus 1), "gptq_v2"
  bool zero_point = true;                  // awq
  std::string version = "gemm";            // awq
  std::vector<std::string> modules_to_not_convert;  // awq: kept in float
};

// Reads config.json's `quantization_config` object (ConfigError / UnsupportedError naming
// quantization_config.<key>: unknown quant_method, bits other than 4/8 (gptq) or 4 (awq), a
// group_size that is not -1 or a positive multiple of 32, an unknown checkpoint_format or version).
QuantizationConfig parse_quantization_config(const JsonReader& r);

// What every decoder-only transformer has, under HF's canonical names. Each architecture derives
// its own config from this in its model file (src/models/<arch>.cpp), with the keys that only it
// has, and binds it from config.json through the helpers below (bind_decoder, bind_rope).
struct DecoderConfig {
  DecoderConfig() = default;
  DecoderConfig(const DecoderConfig&) = default;
  DecoderConfig& operator=(const DecoderConfig&) = default;
  virtual ~DecoderConfig() = default;

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
  std::string torch_dtype;                         // "bfloat16", "float16", "float32" or empty
  std::optional<QuantizationConfig> quantization;  // quantization_config (GPTQ / AWQ)

  // The architecture's own keys as (key, value) pairs, for `ohm inspect` and summaries.
  virtual void summarize_extra(std::vector<std::pair<std::string, std::string>>& out) const {
    (void)out;
  }
};

// A parsed config.json: the architecture's config behind its common base. Cheap to copy (shared,
// immutable).
class ModelConfig {
 public:
  ModelConfig() = default;
  explicit ModelConfig(std::shared_ptr<const DecoderConfig> c) : c_(std::move(c)) {}
  bool has_value() const { return c_ != nullptr; }
  const DecoderConfig& common() const;
  // The architecture's config type (nullptr / InvalidArgument when it is another one).
  template <class T>
  const T* get_if() const {
    return dynamic_cast<const T*>(c_.get());
  }
  template <class T>
  const T& get() const {
    if (const T* p = get_if<T>()) return *p;
    throw_wrong_type();
  }

 private:
  [[noreturn]] void throw_wrong_type() const;
  std::shared_ptr<const DecoderConfig> c_;
};

const DecoderConfig& common(const ModelConfig& c);

// HF defaults that differ between architectures (from each configuration_<arch>.py).
struct ConfigDefaults {
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

// Reads the fields shared by the LLaMA-like configs (HF key names), applying `d`.
void bind_decoder(const JsonReader& r, const ConfigDefaults& d, DecoderConfig& c);
// rope_theta, rope_scaling and partial_rotary_factor, from the top level (transformers 4) or
// from `rope_parameters` (transformers 5).
void bind_rope(const JsonReader& r, double default_theta, DecoderConfig& c);
// Range and consistency checks every architecture gets (ConfigError naming the key).
void validate_decoder(const JsonReader& r, const DecoderConfig& c);

// (key, value) pairs summarising the config for `ohm inspect`.
std::vector<std::pair<std::string, std::string>> summarize(const ModelConfig& c);

// parse_model_config / load_model_config (config.json -> the registered architecture's config)
// live with the architecture registry: ohm/models/arch.h.

// generation_config.json with transformers' GenerationConfig defaults.
// transformers' WatermarkingConfig (Kirchenbauer et al. 2023; ohm/generation/watermark.h).
struct WatermarkingConfig {
  double greenlist_ratio = 0.25;  // gamma, in (0, 1)
  double bias = 2.0;              // delta, added to green tokens' scores
  uint64_t hashing_key = 15485863;
  std::string seeding_scheme = "lefthash";  // or "selfhash"
  int64_t context_width = 1;
};

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
  std::optional<WatermarkingConfig> watermarking_config;
};

// Checks a watermarking configuration's ranges (InvalidArgument naming the field and `where`).
void validate_watermarking_config(const WatermarkingConfig& w, const std::string& where);

GenerationConfig parse_generation_config(const nlohmann::json& j, const std::string& file);
GenerationConfig load_generation_config(const std::string& path);
// The defaults transformers derives from config.json when there is no generation_config.json.
GenerationConfig generation_config_from_model(const ModelConfig& c);

}  // namespace ohm

namespace ohm {
// tokenizer_config.json, loaded raw (the tokenizer module interprets it): must be an object.
nlohmann::json load_tokenizer_config(const std::string& path);
}  // namespace ohm
