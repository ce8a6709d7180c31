// Gemma (v1). Mirrors transformers models/gemma/modeling_gemma.py.
//
// Differences from LLaMA:
//   - embeddings are scaled by sqrt(hidden_size), rounded to the compute dtype (f32 here);
//   - RMSNorm multiplies by (1 + weight) (GemmaRMSNorm);
//   - the MLP is GeGLU: down(gelu_tanh(gate(x)) * up(x)) (config.hidden_act);
//   - lm_head is tied to embed_tokens.
#include <cmath>

#include "builders.h"

namespace ohm::models {
namespace {

struct GemmaConfig : DecoderConfig {
  std::string hidden_activation;  // transformers' key (read; hidden_act drives the MLP)
};

// Defaults from transformers configuration_gemma.py.
std::shared_ptr<DecoderConfig> bind_gemma(const JsonReader& r) {
  auto c = std::make_shared<GemmaConfig>();
  bind_decoder(r,
               {256000, 3072, 24576, 28, 16, 16, 8192, 1e-6, 10000.0, "gelu_pytorch_tanh", true, 2,
                1, 0, std::nullopt},
               *c);
  if (!r.has("head_dim")) c->head_dim = 256;
  c->hidden_activation = r.get_string("hidden_activation", "");
  return c;
}

class GemmaForCausalLM : public DecoderLM {
 public:
  GemmaForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : DecoderLM(config, opts) {
    const DecoderConfig& c = decoder_config();
    const int64_t H = c.hidden_size;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    // normalizer = tensor(hidden_size**0.5, dtype=hidden.dtype)
    embed_scale_ = static_cast<float>(std::sqrt(static_cast<double>(H)));
    ropes_ = {nn::Rope(c)};
    nn::DecoderLayerSpec s = layer_spec(c);
    s.norm_offset = 1.0f;
    s.qkv_bias = s.o_bias = c.attention_bias ? nn::Bias::Required : nn::Bias::None;
    s.mlp_bias = nn::Bias::None;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      layers_.push_back(nn::load_decoder_layer(ws, "model.layers." + std::to_string(i), s));
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", H, c.norm_eps, 1.0f);
    finish(ws);
  }
};

std::unique_ptr<CausalLM> build(const ModelConfig& config, nn::Weights& weights,
                                const LoadOptions& opts) {
  return std::make_unique<GemmaForCausalLM>(config, weights, opts);
}

void bind_gguf_gemma(const gguf::GGUFFile& f, nlohmann::json& j) {
  j["model_type"] = "gemma";
  gguf_llama_like(f, "gemma", j);
}

// Not permuted (llama.cpp runs Gemma with NEOX RoPE); the converter stored every norm as 1 + w.
GgufTensorTable gemma_tensors(const gguf::GGUFFile& f, const ModelConfig& c) {
  (void)f;
  (void)c;
  return gguf_llama_tensors(GgufTensorKind::Plain, GgufTensorKind::MinusOne);
}

}  // namespace

const ArchSpec& gemma_arch() {
  static const ArchSpec s{.model_type = "gemma",
                          .aliases = {},
                          .hf_classes = {"GemmaForCausalLM"},
                          .bind_config = &bind_gemma,
                          .build = &build,
                          .gguf_arch = "gemma",
                          .bind_gguf = &bind_gguf_gemma,
                          .gguf_tensors = &gemma_tensors,
                          .tokenizer_pre = ""};  // SentencePiece
  return s;
}

}  // namespace ohm::models
