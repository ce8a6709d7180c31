// Phi-3. Mirrors transformers models/phi3/modeling_phi3.py.
//
// Differences from LLaMA:
//   - fused qkv_proj [(n_head + 2*n_kv_head) * head_dim, hidden], split q | k | v;
//   - fused gate_up_proj [2*intermediate, hidden], split gate | up; y = down(up * silu(gate));
//   - partial rotary (partial_rotary_factor) and su/longrope scaling with short/long factors
//     chosen by original_max_position_embeddings;
//   - sliding-window attention when config.sliding_window is set.
#include <cmath>

#include "builders.h"

namespace ohm::models {
namespace {

struct Phi3Layer {
  nn::RMSNorm input_layernorm, post_attention_layernorm;
  nn::SelfAttention self_attn;
  nn::GatedMLP mlp;
};

class Phi3ForCausalLM : public CausalLM {
 public:
  Phi3ForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts) {
    const auto& c = std::get<Phi3Config>(this->config());
    const int64_t H = c.hidden_size, nh = c.num_attention_heads, nkv = c.num_key_value_heads,
                  hd = c.head_dim, I = c.intermediate_size;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    rope_ = nn::Rope(c, c.original_max_position_embeddings);
    const auto act = kernels::activation_from_name(c.hidden_act);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      Phi3Layer L;
      L.input_layernorm = nn::RMSNorm::load(ws, p + ".input_layernorm.weight", H, c.norm_eps);
      L.post_attention_layernorm =
          nn::RMSNorm::load(ws, p + ".post_attention_layernorm.weight", H, c.norm_eps);
      auto& a = L.self_attn;
      a.fused = true;
      a.qkv_proj = nn::Linear::load(ws, p + ".self_attn.qkv_proj", (nh + 2 * nkv) * hd, H);
      a.o_proj = nn::Linear::load(ws, p + ".self_attn.o_proj", H, nh * hd);
      a.spec = {nh,
                nkv,
                hd,
                static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))),
                c.sliding_window.value_or(0),
                nullptr};
      L.mlp.fused = true;
      L.mlp.gate_up = nn::Linear::load(ws, p + ".mlp.gate_up_proj", 2 * I, H);
      L.mlp.down = nn::Linear::load(ws, p + ".mlp.down_proj", H, I);
      L.mlp.inter = I;
      L.mlp.act = act;
      layers_.push_back(std::move(L));
    }
    // Every layer windowed: the cache may drop what the window hides.
    cache_window_ = layers_.empty() ? 0 : layers_.front().self_attn.spec.window;
    for (const auto& l : layers_)
      if (l.self_attn.spec.window != cache_window_) cache_window_ = 0;
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", H, c.norm_eps);
    lm_head_ = lm_head_or_tied(ws, c, embed_);
  }

 public:
  // Phi3ForCausalLM.prepare_inputs_for_generation: the first time the sequence reaches
  // original_max_position_embeddings + 1 with no more than that many tokens cached, the cache is
  // dropped and the whole sequence recomputed (so its keys use the long RoPE factors).
  bool recompute_cache_before(int64_t cached, int64_t total) const override {
    const int64_t orig = std::get<Phi3Config>(config()).original_max_position_embeddings;
    return total >= orig + 1 && cached <= orig;
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
    rope_.tables(s.pos, M, cos, sin);
    for (size_t l = 0; l < layers_.size(); ++l) {
      Phi3Layer& L = layers_[l];
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
  std::vector<Phi3Layer> layers_;
  nn::RMSNorm norm_;
  nn::Buffer h_, x_, y_, cos_, sin_;
};

}  // namespace

std::unique_ptr<CausalLM> build_phi3(const ModelConfig& config, nn::Weights& weights,
                                     const LoadOptions& opts) {
  return std::make_unique<Phi3ForCausalLM>(config, weights, opts);
}

}  // namespace ohm::models
