// LLaMA (LLaMA-1/2/3, CodeLlama, TinyLlama), Mistral and Qwen2.
// Mirrors transformers models/llama/modeling_llama.py (and mistral/, qwen2/).
//
//   h = embed_tokens(ids)
//   per layer:  h = h + o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(..)), v_proj(..)))
//               h = h + down_proj(silu(gate_proj(rms(h))) * up_proj(rms(h)))
//   logits = lm_head(rms(h))
//
// Differences handled here:
//   - Mistral: sliding-window attention on every layer (config.sliding_window).
//   - Qwen2: q/k/v projections have biases; sliding window (if use_sliding_window) only on
//     layers >= max_window_layers.
//   - rope_scaling (linear, dynamic, llama3, yarn, longrope) lives in nn::Rope.
#include <cmath>

#include "builders.h"
#include "ohm/core/error.h"

namespace ohm::models {
namespace {

struct LlamaLayer {
  nn::RMSNorm input_layernorm, post_attention_layernorm;
  nn::SelfAttention self_attn;
  nn::GatedMLP mlp;
};

class LlamaForCausalLM : public CausalLM {
 public:
  LlamaForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts) {
    const DecoderConfig& c = decoder_config();
    const bool qwen2 = c.model_type == "qwen2";
    const int64_t H = c.hidden_size, nh = c.num_attention_heads, nkv = c.num_key_value_heads,
                  hd = c.head_dim, I = c.intermediate_size;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    rope_ = nn::Rope(c);
    // LLaMA GGUF: q/k as stored (interleaved RoPE pairs), no permuted copy (full rotary only).
    const bool rope_interleaved = rope_.rot_dim() == hd && ws.use_rope_interleaved_qk();
    const nn::Bias qkv_bias = (qwen2 || c.attention_bias) ? nn::Bias::Required : nn::Bias::None;
    const nn::Bias o_bias = (!qwen2 && c.attention_bias) ? nn::Bias::Required : nn::Bias::None;
    const nn::Bias mlp_bias = c.mlp_bias ? nn::Bias::Required : nn::Bias::None;
    const auto act = kernels::activation_from_name(c.hidden_act);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      LlamaLayer L;
      L.input_layernorm = nn::RMSNorm::load(ws, p + ".input_layernorm.weight", H, c.norm_eps);
      L.post_attention_layernorm =
          nn::RMSNorm::load(ws, p + ".post_attention_layernorm.weight", H, c.norm_eps);
      auto& a = L.self_attn;
      a.rope_interleaved = rope_interleaved;
      a.q_proj = nn::Linear::load(ws, p + ".self_attn.q_proj", nh * hd, H, qkv_bias);
      a.k_proj = nn::Linear::load(ws, p + ".self_attn.k_proj", nkv * hd, H, qkv_bias);
      a.v_proj = nn::Linear::load(ws, p + ".self_attn.v_proj", nkv * hd, H, qkv_bias);
      a.o_proj = nn::Linear::load(ws, p + ".self_attn.o_proj", H, nh * hd, o_bias);
      a.spec = {nh, nkv,    hd, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))),
                0,  nullptr};
      if (c.sliding_window && c.model_type == "mistral") a.spec.window = *c.sliding_window;
      if (const auto* q = std::get_if<Qwen2Config>(&this->config());
          q && c.sliding_window && q->use_sliding_window && i >= q->max_window_layers)
        a.spec.window = *c.sliding_window;
      L.mlp.gate = nn::Linear::load(ws, p + ".mlp.gate_proj", I, H, mlp_bias);
      L.mlp.up = nn::Linear::load(ws, p + ".mlp.up_proj", I, H, mlp_bias);
      L.mlp.down = nn::Linear::load(ws, p + ".mlp.down_proj", H, I, mlp_bias);
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

 protected:
  void forward_hidden(const Step& s, nn::KVCache& cache, float* out) override {
    const DecoderConfig& c = decoder_config();
    const int64_t M = s.B * s.T, H = c.hidden_size, half = rope_.rot_dim() / 2;
    ThreadPool& pool = this->pool();
    float* h = h_.get(M * H);  // [M, H] residual stream
    float* x = x_.get(M * H);  // [M, H] normed input of a block
    float* y = y_.get(M * H);  // [M, H] block output
    float* cos = cos_.get(M * half);
    float* sin = sin_.get(M * half);
    kernels::embedding(kernels::matrix_view(embed_), s.ids, M, h);
    rope_.tables(s.pos, M, cos, sin);
    for (size_t l = 0; l < layers_.size(); ++l) {
      LlamaLayer& L = layers_[l];
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
  Tensor embed_;  // [vocab, H]
  nn::Rope rope_;
  std::vector<LlamaLayer> layers_;
  nn::RMSNorm norm_;
  nn::Buffer h_, x_, y_, cos_, sin_;
};

}  // namespace

std::unique_ptr<CausalLM> build_llama(const ModelConfig& config, nn::Weights& weights,
                                      const LoadOptions& opts) {
  return std::make_unique<LlamaForCausalLM>(config, weights, opts);
}

}  // namespace ohm::models
