// Falcon. Mirrors transformers models/falcon/modeling_falcon.py (eager attention).
//
// Two layouts of the fused query_key_value projection:
//   - Falcon-7B (multi_query, !new_decoder_architecture): [n_head + 2, head_dim] per token:
//     all query heads, then ONE key head and ONE value head (config.num_kv_heads is ignored);
//   - Falcon-40B/180B (new_decoder_architecture): [n_kv, n_head/n_kv + 2, head_dim]: per KV
//     group its query heads, then that group's key and value;
//   - (!multi_query, old layout: [n_head, 3, head_dim].)
// Blocks use LayerNorm with bias and GELU (erf) MLPs. With parallel_attn the attention and the
// MLP read the same normed input (or ln_attn / ln_mlp when num_ln_in_parallel_attn == 2) and
// out = x + (mlp + attn). lm_head is tied to word_embeddings. ALiBi replaces RoPE when
// config.alibi (no fixture exercises ALiBi yet).
#include <cmath>
#include <cstring>

#include "builders.h"

namespace ohm::models {
namespace {

struct FalconLayer {
  nn::LayerNorm ln_attn, ln_mlp;           // ln_attn is input_layernorm when there is only one
  nn::LayerNorm post_attention_layernorm;  // sequential (!parallel_attn) blocks only
  bool two_ln = false;
  nn::Linear query_key_value, dense;
  nn::MLP mlp;
};

class FalconForCausalLM : public CausalLM {
 public:
  FalconForCausalLM(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts), c_(std::get<FalconConfig>(this->config())) {
    const int64_t H = c_.hidden_size, nh = c_.num_attention_heads, hd = c_.head_dim;
    nkv_ = c_.num_key_value_heads;  // 1 for the multi-query layout (config.cpp derives it)
    embed_ = ws.matrix("transformer.word_embeddings.weight", c_.vocab_size, H);
    if (!c_.alibi)
      rope_ = nn::Rope(c_);
    else
      slopes_ = nn::alibi_slopes(nh);
    const int64_t qkv_out = c_.new_decoder_architecture ? (2 * nkv_ + nh) * hd
                            : c_.multi_query            ? H + 2 * hd
                                                        : 3 * H;
    const auto bias = c_.bias ? nn::Bias::Required : nn::Bias::None;
    const int64_t n_ln = c_.num_ln_in_parallel_attn.value_or(c_.new_decoder_architecture ? 2 : 1);
    const auto act = kernels::activation_from_name(c_.hidden_act);
    for (int64_t i = 0; i < c_.num_hidden_layers; ++i) {
      const std::string p = "transformer.h." + std::to_string(i);
      FalconLayer L;
      if (c_.new_decoder_architecture && n_ln == 2) {
        L.two_ln = true;
        L.ln_attn = nn::LayerNorm::load(ws, p + ".ln_attn", H, c_.norm_eps);
        L.ln_mlp = nn::LayerNorm::load(ws, p + ".ln_mlp", H, c_.norm_eps);
      } else {
        L.ln_attn = nn::LayerNorm::load(ws, p + ".input_layernorm", H, c_.norm_eps);
        if (!c_.parallel_attn)
          L.post_attention_layernorm =
              nn::LayerNorm::load(ws, p + ".post_attention_layernorm", H, c_.norm_eps);
      }
      L.query_key_value =
          nn::Linear::load(ws, p + ".self_attention.query_key_value", qkv_out, H, bias);
      L.dense = nn::Linear::load(ws, p + ".self_attention.dense", H, H, bias);
      L.mlp.fc = nn::Linear::load(ws, p + ".mlp.dense_h_to_4h", c_.ffn_hidden_size, H, bias);
      L.mlp.proj = nn::Linear::load(ws, p + ".mlp.dense_4h_to_h", H, c_.ffn_hidden_size, bias);
      L.mlp.act = act;
      layers_.push_back(std::move(L));
    }
    ln_f_ = nn::LayerNorm::load(ws, "transformer.ln_f", H, c_.norm_eps);
    lm_head_ = lm_head_or_tied(ws, c_, embed_);
    spec_ = {nh, nkv_,
             hd, static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))),
             0,  slopes_.empty() ? nullptr : slopes_.data()};
  }

 protected:
  int64_t kv_dim() const override { return nkv_ * c_.head_dim; }

  void forward_hidden(const Step& s, nn::KVCache& cache, float* out) override {
    const int64_t M = s.B * s.T, H = c_.hidden_size, nh = c_.num_attention_heads, hd = c_.head_dim,
                  half = rope_.rot_dim() / 2;
    const int64_t qkv_out = layers_.empty() ? 0 : layers_[0].query_key_value.out_features();
    ThreadPool& pool = this->pool();
    float* h = h_.get(M * H);
    float* xa = xa_.get(M * H);  // normed input of attention
    float* xm = xm_.get(M * H);  // normed input of the MLP
    float* ya = ya_.get(M * H);  // attention output
    float* ym = ym_.get(M * H);  // MLP output
    float* qkv = qkv_.get(M * qkv_out);
    float* q = q_.get(M * nh * hd);
    float* k = k_.get(M * nkv_ * hd);
    float* v = v_.get(M * nkv_ * hd);
    float* a = a_.get(M * nh * hd);
    float* cos = cos_.get(M * half);
    float* sin = sin_.get(M * half);
    kernels::embedding(kernels::matrix_view(embed_), s.ids, M, h);
    if (!c_.alibi) rope_.tables(s.pos, M, cos, sin);
    for (size_t l = 0; l < layers_.size(); ++l) {
      FalconLayer& L = layers_[l];
      L.ln_attn.forward(h, M, xa, pool);
      if (L.two_ln) L.ln_mlp.forward(h, M, xm, pool);
      // ---- attention
      L.query_key_value.forward(xa, M, qkv, pool);  // [M, qkv_out]
      split_heads(qkv, qkv_out, M, q, k, v);        // q [M, nh*hd], k/v [M, nkv*hd]
      if (!c_.alibi) {
        kernels::rope(q, M, nh * hd, nh, hd, rope_.rot_dim(), cos, sin);
        kernels::rope(k, M, nkv_ * hd, nkv_, hd, rope_.rot_dim(), cos, sin);
      }
      nn::attend(spec_, q, nh * hd, k, v, nkv_ * hd, cache, l, s.B, s.T, a, pool);
      L.dense.forward(a, M, ya, pool);
      // ---- MLP and residual
      if (!c_.new_decoder_architecture && !c_.parallel_attn) {
        kernels::add(h, ya, h, M * H);  // residual = attn + residual
        L.post_attention_layernorm.forward(h, M, xm, pool);
        L.mlp.forward(xm, M, ym, pool);
        kernels::add(h, ym, h, M * H);
      } else {
        L.mlp.forward(L.two_ln ? xm : xa, M, ym, pool);
        kernels::add(ym, ya, ym, M * H);  // mlp_output += attention_output
        kernels::add(h, ym, h, M * H);    // output = residual + mlp_output
      }
    }
    ln_f_.forward(h, M, out, pool);
  }

 private:
  // Gathers q/k/v from the fused projection into contiguous per-token rows.
  void split_heads(const float* qkv, int64_t qkv_out, int64_t M, float* q, float* k,
                   float* v) const {
    const int64_t nh = c_.num_attention_heads, hd = c_.head_dim;
    const size_t hb = static_cast<size_t>(hd) * sizeof(float);
    for (int64_t m = 0; m < M; ++m) {
      const float* r = qkv + m * qkv_out;
      float* qr = q + m * nh * hd;
      float* kr = k + m * nkv_ * hd;
      float* vr = v + m * nkv_ * hd;
      if (c_.new_decoder_architecture) {
        const int64_t qpg = nh / nkv_;  // query heads per KV group
        for (int64_t g = 0; g < nkv_; ++g) {
          const float* gr = r + g * (qpg + 2) * hd;
          std::memcpy(qr + g * qpg * hd, gr, qpg * hb);
          std::memcpy(kr + g * hd, gr + qpg * hd, hb);
          std::memcpy(vr + g * hd, gr + (qpg + 1) * hd, hb);
        }
      } else if (c_.multi_query) {
        std::memcpy(qr, r, nh * hb);
        std::memcpy(kr, r + nh * hd, hb);
        std::memcpy(vr, r + (nh + 1) * hd, hb);
      } else {
        for (int64_t i = 0; i < nh; ++i) {
          std::memcpy(qr + i * hd, r + (3 * i) * hd, hb);
          std::memcpy(kr + i * hd, r + (3 * i + 1) * hd, hb);
          std::memcpy(vr + i * hd, r + (3 * i + 2) * hd, hb);
        }
      }
    }
  }

  const FalconConfig& c_;
  int64_t nkv_ = 1;
  Tensor embed_;
  nn::Rope rope_;
  std::vector<float> slopes_;
  nn::AttentionSpec spec_;
  std::vector<FalconLayer> layers_;
  nn::LayerNorm ln_f_;
  nn::Buffer h_, xa_, xm_, ya_, ym_, qkv_, q_, k_, v_, a_, cos_, sin_;
};

}  // namespace

std::unique_ptr<CausalLM> build_falcon(const ModelConfig& config, nn::Weights& weights,
                                       const LoadOptions& opts) {
  return std::make_unique<FalconForCausalLM>(config, weights, opts);
}

}  // namespace ohm::models
