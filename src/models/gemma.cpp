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

struct GemmaLayer {
  nn::RMSNorm input_layernorm, post_attention_layernorm;
  nn::SelfAttention self_attn;
  nn::GatedMLP mlp;
};

class GemmaForCausalLM : public CausalLM {
 public:
  GemmaForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts) {
    const auto& c = std::get<GemmaConfig>(this->config());
    const int64_t H = c.hidden_size, nh = c.num_attention_heads, nkv = c.num_key_value_heads,
                  hd = c.head_dim, I = c.intermediate_size;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    rope_ = nn::Rope(c);
    const auto bias = c.attention_bias ? nn::Bias::Required : nn::Bias::None;
    const auto act = kernels::activation_from_name(c.hidden_act);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      GemmaLayer L;
      L.input_layernorm =
          nn::RMSNorm::load(ws, p + ".input_layernorm.weight", H, c.norm_eps, /*offset=*/1.0f);
      L.post_attention_layernorm =
          nn::RMSNorm::load(ws, p + ".post_attention_layernorm.weight", H, c.norm_eps, 1.0f);
      auto& a = L.self_attn;
      a.q_proj = nn::Linear::load(ws, p + ".self_attn.q_proj", nh * hd, H, bias);
      a.k_proj = nn::Linear::load(ws, p + ".self_attn.k_proj", nkv * hd, H, bias);
      a.v_proj = nn::Linear::load(ws, p + ".self_attn.v_proj", nkv * hd, H, bias);
      a.o_proj = nn::Linear::load(ws, p + ".self_attn.o_proj", H, nh * hd, bias);
      a.spec = {nh, nkv,    hd, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))),
                0,  nullptr};
      L.mlp.gate = nn::Linear::load(ws, p + ".mlp.gate_proj", I, H);
      L.mlp.up = nn::Linear::load(ws, p + ".mlp.up_proj", I, H);
      L.mlp.down = nn::Linear::load(ws, p + ".mlp.down_proj", H, I);
      L.mlp.inter = I;
      L.mlp.act = act;
      layers_.push_back(std::move(L));
    }
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", H, c.norm_eps, 1.0f);
    lm_head_ = lm_head_or_tied(ws, c, embed_);
  }

 protected:
  void forward_hidden(const Step& s, nn::KVCache& cache, float* out) override {
    const DecoderConfig& c = decoder_config();
    const int64_t M = s.B * s.T, H = c.hidden_size, half = rope_.rot_dim() / 2;
    ThreadPool& pool = this->pool();
    float* h = h_.get(M * H);
    float* x = x_.get(M * H);
    float* y = y_.get(M * H);
    float* cos = cos_.get(M * half);
    float* sin = sin_.get(M * half);
    kernels::embedding(kernels::matrix_view(embed_), s.ids, M, h);
    // normalizer = tensor(hidden_size**0.5, dtype=hidden.dtype)
    const float normalizer = static_cast<float>(std::sqrt(static_cast<double>(H)));
    for (int64_t i = 0; i < M * H; ++i) h[i] *= normalizer;
    rope_.tables(s.pos, M, cos, sin);
    for (size_t l = 0; l < layers_.size(); ++l) {
      GemmaLayer& L = layers_[l];
      L.input_layernorm.forward(h, M, x, pool);
      L.self_attn.forward(x, s.B, s.T, cos, sin, rope_.rot_dim(), cache, l, y, pool);
      kernels::add(h, y, h, M * H);
      L.post_attention_layernorm.forward(h, M, x, pool);
      L.mlp.forward(x, M, y, pool);
      kernels::add(h, y, h, M * H);
    }
    norm_.forward(h, M, out, pool);
  }

 private:
  Tensor embed_;
  nn::Rope rope_;
  std::vector<GemmaLayer> layers_;
  nn::RMSNorm norm_;
  nn::Buffer h_, x_, y_, cos_, sin_;
};

}  // namespace

std::unique_ptr<CausalLM> build_gemma(const ModelConfig& config, nn::Weights& weights,
                                      const LoadOptions& opts) {
  return std::make_unique<GemmaForCausalLM>(config, weights, opts);
}

}  // namespace ohm::models
