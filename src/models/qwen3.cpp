// Qwen3 (dense). Mirrors transformers models/qwen3/modeling_qwen3.py.
//
// Differences from LLaMA: q_norm / k_norm, RMSNorms over each head's head_dim values of q and k
// before RoPE; head_dim is its own key (default 128, not hidden / heads); no q/k/v biases by
// default; sliding window (use_sliding_window) on the layers config.layer_types marks
// "sliding_attention" (by default those >= max_window_layers).
// GGUF: general.architecture "qwen3", attn_q_norm / attn_k_norm, not permuted.
#include "builders.h"

namespace ohm::models {
namespace {

struct Qwen3Config : DecoderConfig {
  bool use_sliding_window = false;
  int64_t max_window_layers = 28;
  std::vector<std::string> layer_types;  // "full_attention" / "sliding_attention" per layer
  void summarize_extra(std::vector<std::pair<std::string, std::string>>& s) const override {
    int64_t full = 0, sliding = 0;
    for (const auto& t : layer_types) (t == "sliding_attention" ? sliding : full) += 1;
    std::string v = std::to_string(full) + " full";
    if (sliding) v += ", " + std::to_string(sliding) + " sliding";
    s.emplace_back("layer_types", v);
  }
};

// Defaults from transformers configuration_qwen3.py.
std::shared_ptr<DecoderConfig> bind_qwen3(const JsonReader& r) {
  auto c = std::make_shared<Qwen3Config>();
  bind_decoder(r,
               {151936, 4096, 22016, 32, 32, 32, 32768, 1e-6, 10000.0, "silu", false, std::nullopt,
                std::nullopt, std::nullopt, 4096},
               *c);
  if (!r.has("head_dim")) c->head_dim = 128;
  c->use_sliding_window = r.get_bool("use_sliding_window", false);
  c->max_window_layers = r.get_int("max_window_layers", 28);
  if (!c->use_sliding_window) c->sliding_window.reset();  // as Qwen3Config.__post_init__
  // without layer_types, the default of Qwen3Config.__post_init__
  c->layer_types = bind_layer_types(r, c->num_hidden_layers, [&](int64_t i) {
    return c->sliding_window && i >= c->max_window_layers;
  });
  return c;
}

class Qwen3ForCausalLM : public DecoderLM {
 public:
  Qwen3ForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const auto& c = this->config().get<Qwen3Config>();
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size);
    ropes_ = {nn::Rope(c)};
    nn::DecoderLayerSpec s = layer_spec(c);
    s.qk_norm = true;
    s.qkv_bias = s.o_bias = c.attention_bias ? nn::Bias::Required : nn::Bias::None;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const bool sliding = c.layer_types[static_cast<size_t>(i)] == "sliding_attention";
      s.window = sliding && c.sliding_window ? *c.sliding_window : 0;
      layers_.push_back(nn::load_decoder_layer(ws, "model.layers." + std::to_string(i), s));
    }
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", c.hidden_size, c.norm_eps);
    finish(ws);
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<Qwen3ForCausalLM>(config, weights, opts);
}

void bind_gguf(const gguf::GGUFFile& f, nlohmann::json& j) {
  j["model_type"] = "qwen3";
  gguf_llama_like(f, "qwen3", j);
  gguf_rope_scaling(f, "qwen3", j);
}

GgufTensorTable tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)f;
  (void)c;
  GgufTensorTable t = gguf_llama_tensors();
  t.layer.push_back({"attn_q_norm.weight", "self_attn.q_norm.weight"});
  t.layer.push_back({"attn_k_norm.weight", "self_attn.k_norm.weight"});
  return t;
}

}  // namespace

const ArchSpec& qwen3_arch() {
  static const ArchSpec s{.model_type = "qwen3",
                          .aliases = {},
                          .hf_classes = {"Qwen3ForCausalLM"},
                          .bind_config = &bind_qwen3,
                          .build = &build,
                          .gguf_arch = "qwen3",
                          .bind_gguf = &bind_gguf,
                          .gguf_tensors = &tensors,
                          .tokenizer_pre = "qwen2"};
  return s;
}

}  // namespace ohm::models
