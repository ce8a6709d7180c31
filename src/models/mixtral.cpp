// Mixtral (sparse mixture of experts). Mirrors transformers models/mixtral/modeling_mixtral.py.
//
// Differences from LLaMA/Mistral: the MLP is a SparseMoE block: router `gate` [E, hidden],
// softmax over experts in f32, top-k (num_experts_per_tok), weights renormalised to sum 1,
// each expert a SwiGLU (w1 = gate, w3 = up, w2 = down). Checkpoints store experts one by one
// (block_sparse_moe.experts.{e}.w{1,2,3}.weight, the published layout) or, when written by
// transformers 5, fused as mlp.experts.gate_up_proj [E, 2I, H] / down_proj [E, H, I].
#include <cmath>

#include "builders.h"

namespace ohm::models {
namespace {

struct MixtralLayer {
  nn::RMSNorm input_layernorm, post_attention_layernorm;
  nn::SelfAttention self_attn;
  nn::SparseMoE moe;
};

// Expert e of a fused 3-D weight [E, rows, cols] as a 2-D view (zero copy).
Tensor expert_slice(const Tensor& t, int64_t e) {
  const int64_t rows = t.dim(1), cols = t.dim(2);
  const uint64_t bytes = *row_bytes(t.dtype(), static_cast<uint64_t>(cols)) * rows;
  return Tensor::view(t.storage(), t.dtype(), {rows, cols}, t.offset() + e * bytes);
}

class MixtralForCausalLM : public CausalLM {
 public:
  MixtralForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts) {
    const auto& c = std::get<MixtralConfig>(this->config());
    const int64_t H = c.hidden_size, nh = c.num_attention_heads, nkv = c.num_key_value_heads,
                  hd = c.head_dim, I = c.intermediate_size, E = c.num_local_experts;
    embed_ = ws.matrix("model.embed_tokens.weight", c.vocab_size, H);
    rope_ = nn::Rope(c);
    // LLaMA GGUF: q/k as stored (interleaved RoPE pairs), no permuted copy (full rotary only).
    const bool rope_interleaved = rope_.rot_dim() == hd && ws.use_rope_interleaved_qk();
    const auto act = kernels::activation_from_name(c.hidden_act);
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i);
      MixtralLayer L;
      L.input_layernorm = nn::RMSNorm::load(ws, p + ".input_layernorm.weight", H, c.norm_eps);
      L.post_attention_layernorm =
          nn::RMSNorm::load(ws, p + ".post_attention_layernorm.weight", H, c.norm_eps);
      auto& a = L.self_attn;
      a.rope_interleaved = rope_interleaved;
      a.q_proj = nn::Linear::load(ws, p + ".self_attn.q_proj", nh * hd, H);
      a.k_proj = nn::Linear::load(ws, p + ".self_attn.k_proj", nkv * hd, H);
      a.v_proj = nn::Linear::load(ws, p + ".self_attn.v_proj", nkv * hd, H);
      a.o_proj = nn::Linear::load(ws, p + ".self_attn.o_proj", H, nh * hd);
      a.spec = {nh,
                nkv,
                hd,
                static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))),
                c.sliding_window.value_or(0),
                nullptr};
      auto& moe = L.moe;
      moe.top_k = c.num_experts_per_tok;
      const bool fused = ws.has(p + ".mlp.experts.gate_up_proj");
      const std::string mp = fused ? p + ".mlp" : p + ".block_sparse_moe";
      moe.router = nn::Linear::load(ws, mp + ".gate", E, H);
      if (fused) {
        // [E, 2I, H] and [E, H, I] (transformers 5 layout)
        const Tensor gu = ws.tensor(mp + ".experts.gate_up_proj", {E, 2 * I, H});
        const Tensor dn = ws.tensor(mp + ".experts.down_proj", {E, H, I});
        for (int64_t e = 0; e < E; ++e) {
          nn::GatedMLP x;
          x.fused = true;
          x.gate_up = nn::Linear::from(expert_slice(gu, e));
          x.down = nn::Linear::from(expert_slice(dn, e));
          x.inter = I;
          x.act = act;
          moe.experts.push_back(std::move(x));
        }
      } else {
        for (int64_t e = 0; e < E; ++e) {
          const std::string ep = mp + ".experts." + std::to_string(e);
          nn::GatedMLP x;
          x.gate = nn::Linear::load(ws, ep + ".w1", I, H);
          x.down = nn::Linear::load(ws, ep + ".w2", H, I);
          x.up = nn::Linear::load(ws, ep + ".w3", I, H);
          x.inter = I;
          x.act = act;
          moe.experts.push_back(std::move(x));
        }
      }
      layers_.push_back(std::move(L));
    }
    // Every layer windowed: the cache may drop what the window hides.
    cache_window_ = layers_.empty() ? 0 : layers_.front().self_attn.spec.window;
    for (const auto& l : layers_)
      if (l.self_attn.spec.window != cache_window_) cache_window_ = 0;
    norm_ = nn::RMSNorm::load(ws, "model.norm.weight", H, c.norm_eps);
    lm_head_ = lm_head_or_tied(ws, c, embed_);
  }

  std::map<std::string, std::vector<int64_t>> router_counts() const override {
    std::map<std::string, std::vector<int64_t>> out;
    for (size_t l = 0; l < layers_.size(); ++l)
      out["model.layers." + std::to_string(l) + ".mlp.gate"] = layers_[l].moe.counts;
    return out;
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
      MixtralLayer& L = layers_[l];
      L.input_layernorm.forward(h, M, x, pool);
      L.self_attn.forward(x, s.B, s.T, cos, sin, rope_.rot_dim(), cache, l, y, pool);
      kernels::add(h, y, h, M * H);
      L.post_attention_layernorm.forward(h, M, x, pool);
      L.moe.forward(x, M, y, pool);
      kernels::add(h, y, h, M * H);
    }
    norm_.forward(h, M, out, pool);
  }

 private:
  Tensor embed_;
  nn::Rope rope_;
  std::vector<MixtralLayer> layers_;
  nn::RMSNorm norm_;
  nn::Buffer h_, x_, y_, cos_, sin_;
};

}  // namespace

std::unique_ptr<CausalLM> build_mixtral(const ModelConfig& config, nn::Weights& weights,
                                        const LoadOptions& opts) {
  return std::make_unique<MixtralForCausalLM>(config, weights, opts);
}

}  // namespace ohm::models
