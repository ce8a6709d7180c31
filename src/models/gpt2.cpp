// GPT-2. Mirrors transformers models/gpt2/modeling_gpt2.py (eager attention).
//
// Differences from LLaMA: learned absolute positions (wpe) added to the token embeddings, no
// RoPE; pre-LayerNorm blocks with biases; Conv1D weights stored [in, out] (transposed here at
// load into nn.Linear's [out, in]); fused c_attn = q | k | v; gelu_new MLP; attention scaled
// by 1/sqrt(head_dim) (and 1/(layer+1) with scale_attn_by_inverse_layer_idx); lm_head tied to
// wte.
#include <cmath>

#include "builders.h"
#include "ohm/core/error.h"

namespace ohm::models {
namespace {

struct GPT2Block {
  nn::LayerNorm ln_1, ln_2;
  nn::Linear c_attn, c_proj;
  nn::MLP mlp;
  nn::AttentionSpec spec;
};

class GPT2LMHeadModel : public CausalLM {
 public:
  GPT2LMHeadModel(const ModelConfig& config, nn::Weights& ws, const LoadOptions& opts)
      : CausalLM(config, opts), c_(std::get<GPT2Config>(this->config())) {
    const int64_t H = c_.hidden_size, nh = c_.num_attention_heads, hd = c_.head_dim,
                  I = c_.intermediate_size;
    wte_ = ws.matrix("transformer.wte.weight", c_.vocab_size, H);
    wpe_ = ws.matrix("transformer.wpe.weight", c_.n_positions, H);
    const auto act = kernels::activation_from_name(c_.activation_function);
    for (int64_t i = 0; i < c_.num_hidden_layers; ++i) {
      const std::string p = "transformer.h." + std::to_string(i);
      GPT2Block b;
      b.ln_1 = nn::LayerNorm::load(ws, p + ".ln_1", H, c_.norm_eps);
      b.ln_2 = nn::LayerNorm::load(ws, p + ".ln_2", H, c_.norm_eps);
      b.c_attn = nn::Linear::from(ws.matrix_transposed(p + ".attn.c_attn.weight", 3 * H, H),
                                  ws.vector(p + ".attn.c_attn.bias", 3 * H));
      b.c_proj = nn::Linear::from(ws.matrix_transposed(p + ".attn.c_proj.weight", H, H),
                                  ws.vector(p + ".attn.c_proj.bias", H));
      b.mlp.fc = nn::Linear::from(ws.matrix_transposed(p + ".mlp.c_fc.weight", I, H),
                                  ws.vector(p + ".mlp.c_fc.bias", I));
      b.mlp.proj = nn::Linear::from(ws.matrix_transposed(p + ".mlp.c_proj.weight", H, I),
                                    ws.vector(p + ".mlp.c_proj.bias", H));
      b.mlp.act = act;
      double scale = c_.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(hd)) : 1.0;
      if (c_.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(i + 1);
      b.spec = {nh, nh, hd, static_cast<float>(scale), 0, nullptr};
      blocks_.push_back(std::move(b));
    }
    ln_f_ = nn::LayerNorm::load(ws, "transformer.ln_f", H, c_.norm_eps);
    lm_head_ = lm_head_or_tied(ws, c_, wte_);
  }

 protected:
  void forward_hidden(const Step& s, nn::KVCache& cache, float* out) override {
    const int64_t M = s.B * s.T, H = c_.hidden_size;
    ThreadPool& pool = this->pool();
    float* h = h_.get(M * H);
    float* x = x_.get(M * H);
    float* y = y_.get(M * H);
    float* qkv = qkv_.get(M * 3 * H);
    float* a = a_.get(M * H);
    float* pe = pe_.get(M * H);
    kernels::embedding(kernels::matrix_view(wte_), s.ids, M, h);
    pos64_.resize(static_cast<size_t>(M));
    for (int64_t i = 0; i < M; ++i) pos64_[i] = s.pos[i];
    kernels::embedding(kernels::matrix_view(wpe_), pos64_.data(), M, pe);  // checks < n_positions
    kernels::add(h, pe, h, M * H);
    for (size_t l = 0; l < blocks_.size(); ++l) {
      GPT2Block& b = blocks_[l];
      b.ln_1.forward(h, M, x, pool);
      b.c_attn.forward(x, M, qkv, pool);  // [M, q | k | v]
      nn::attend(b.spec, qkv, 3 * H, qkv + H, qkv + 2 * H, 3 * H, cache, l, s.B, s.T, a, pool);
      b.c_proj.forward(a, M, y, pool);
      kernels::add(h, y, h, M * H);
      b.ln_2.forward(h, M, x, pool);
      b.mlp.forward(x, M, y, pool);
      kernels::add(h, y, h, M * H);
    }
    ln_f_.forward(h, M, out, pool);
  }

 private:
  const GPT2Config& c_;
  Tensor wte_, wpe_;
  std::vector<GPT2Block> blocks_;
  nn::LayerNorm ln_f_;
  std::vector<int64_t> pos64_;
  nn::Buffer h_, x_, y_, qkv_, a_, pe_;
};

}  // namespace

std::unique_ptr<CausalLM> build_gpt2(const ModelConfig& config, nn::Weights& weights,
                                     const LoadOptions& opts) {
  return std::make_unique<GPT2LMHeadModel>(config, weights, opts);
}

}  // namespace ohm::models
