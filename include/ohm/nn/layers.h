// Shared transformer blocks. Every block computes in f32 over row-major activations
// [n_tokens, features] and runs its ops through the backend context (ohm/backends/context.h),
// never a kernel or a device directly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ohm/backends/context.h"
#include "ohm/kernels/kernels.h"
#include "ohm/nn/kv_cache.h"
#include "ohm/nn/rope.h"
#include "ohm/nn/weights.h"

namespace ohm::nn {

// A grow-only f32 buffer (reused across forwards: no per-token allocation once warm).
class Buffer {
 public:
  float* get(size_t n) {
    if (v_.size() < n) v_.resize(n);
    return v_.data();
  }

 private:
  std::vector<float> v_;
};

// Scratch shared by every block instance with the same role on this thread. Layers run one
// after another, so one buffer per role serves all of them (per-layer buffers cost layers x
// prompt x width: ~0.7 GB for a 512-token prompt on a 1.1B model, ~2.4 GB on a 7B).
// thread_local keeps threads, and models run on different threads, apart.
enum class Role : uint8_t {
  MlpH,
  MlpU,
  Mlp2H,
  MoeLogits,
  MoeXs,
  MoeYs,
  AttnQKV,
  AttnQ,
  AttnK,
  AttnV,
  AttnOut,
  kCount
};
class SharedBuffer {
 public:
  explicit SharedBuffer(Role role) : role_(role) {}
  float* get(size_t n) const;

 private:
  Role role_;
};

enum class Bias { None, Required, Optional };

// Sees the input of every Linear::forward run on the thread it is set on (`ohm imatrix`
// accumulates squared activations per weight): the weight's checkpoint name (the prefix given to
// Linear::load, e.g. "model.layers.0.self_attn.q_proj"; empty for Linear::from), the input rows
// x [M, K].
struct LinearObserver {
  virtual ~LinearObserver() = default;
  virtual void on_linear(const std::string& name, const float* x, int64_t M, int64_t K) = 0;
};
// Sets this thread's observer (nullptr: none) and returns the previous one.
LinearObserver* set_linear_observer(LinearObserver* observer);

// nn.Linear over a weight of any dtype: y [M, out] = x [M, in] @ W^T + b.
struct Linear {
  Tensor weight;     // [out, in] (keeps the mmap or owned copy alive)
  std::string name;  // checkpoint prefix (Linear::load), for a LinearObserver
  kernels::Matrix w;
  std::vector<float> bias;  // empty: none
  // Input column order of `w` (GPTQ act-order; empty: stored order): forward multiplies
  // x[:, in_perm[j]] by column j.
  std::vector<int32_t> in_perm;
  // `w` repacked for the kernel table active at load (kernels::pack_weights; null where that
  // table packs none of this dtype): the serving tables' one kernel for every batch size.
  std::shared_ptr<const kernels::PackedWeights> packed;

  static Linear load(Weights& ws, const std::string& prefix, int64_t out, int64_t in,
                     Bias bias = Bias::None);
  static Linear from(Tensor weight, std::vector<float> bias = {});
  int64_t in_features() const { return w.cols; }
  int64_t out_features() const { return w.rows; }
  void forward(const float* x, int64_t M, float* y, const backends::Context& ctx) const;
  void pack();  // packs `w` for the active table where it has packed kernels for its dtype
};

// LlamaRMSNorm (offset 0) and GemmaRMSNorm (x * (1 + w): offset 1).
struct RMSNorm {
  std::vector<float> weight;
  float eps = 1e-6f;
  float offset = 0.0f;
  static RMSNorm load(Weights& ws, const std::string& name, int64_t n, double eps,
                      float offset = 0.0f);
  void forward(const float* x, int64_t rows, float* y, const backends::Context& ctx) const;
};

struct LayerNorm {
  std::vector<float> weight, bias;
  float eps = 1e-5f;
  static LayerNorm load(Weights& ws, const std::string& prefix, int64_t n, double eps);
  void forward(const float* x, int64_t rows, float* y, const backends::Context& ctx) const;
};

// down(act(gate(x)) * up(x)): SwiGLU (silu) / GeGLU (gelu). Gate and up may be fused in one
// [2*inter, hidden] matrix, gate first (Phi-3's gate_up_proj).
struct GatedMLP {
  Linear gate, up, down, gate_up;
  bool fused = false;
  int64_t inter = 0;
  kernels::Activation act = kernels::Activation::Silu;
  SharedBuffer h_{Role::MlpH}, u_{Role::MlpU};
  void forward(const float* x, int64_t M, float* y, const backends::Context& ctx);
};

// proj(act(fc(x))): GPT-2, Falcon.
struct MLP {
  Linear fc, proj;
  kernels::Activation act = kernels::Activation::Gelu;
  SharedBuffer h_{Role::Mlp2H};
  void forward(const float* x, int64_t M, float* y, const backends::Context& ctx);
};

// Sparse MoE as HF Mixtral: probs = softmax(router(x)) in f32, top-k, renormalise to sum 1,
// y = sum_k w_k * expert_k(x), accumulated in ascending expert order (HF's index_add_ order).
struct SparseMoE {
  Linear router;
  std::vector<GatedMLP> experts;
  int64_t top_k = 2;
  bool normalize = true;
  std::vector<int64_t> counts;  // tokens routed to each expert so far (statistics)
  SharedBuffer logits_{Role::MoeLogits}, xs_{Role::MoeXs}, ys_{Role::MoeYs};
  std::vector<int64_t> sel_;
  std::vector<float> selw_;
  std::vector<int64_t> rows_;
  std::vector<float> roww_;
  void forward(const float* x, int64_t M, float* y, const backends::Context& ctx);
};

// Geometry of one attention layer.
struct AttentionSpec {
  int64_t n_head = 0, n_kv_head = 0, head_dim = 0;
  float scale = 1.0f;
  int64_t window = 0;  // sliding window (0: none)
  const float* alibi_slopes = nullptr;
  float softcap = 0.0f;  // scores = softcap * tanh(scores / softcap) before the mask (0: none)
};

// Stores k, v ([B*T, kv_src_stride], kv_dim = n_kv_head*head_dim values each) into cache
// layer `layer` at the slots opened for this step, then attends q ([B*T, q_stride]) over the
// cache: out [B*T, n_head*head_dim]. Causal + padding + sliding-window masks as HF; spec.softcap
// (Gemma 2) is passed to the attention op (kernels::AttentionArgs::softcap).
void attend(const AttentionSpec& spec, const float* q, int64_t q_stride, const float* k,
            const float* v, int64_t kv_src_stride, KVCache& cache, int64_t layer, int64_t B,
            int64_t T, float* out, const backends::Context& ctx);

// The LLaMA-family self-attention: q/k/v projections (optionally biased, or one fused qkv
// matrix q|k|v as Phi-3), RoPE on q and k, attention over the cache, o_proj.
struct SelfAttention {
  Linear q_proj, k_proj, v_proj, o_proj, qkv_proj;
  bool fused = false;
  // q/k rows in ggml's interleaved-pair RoPE order (LLaMA GGUF, loaded zero-copy): rotate pairs
  // (2i, 2i+1) instead of (i, i + rot_dim/2). Attention scores are the same.
  bool rope_interleaved = false;
  // Qwen3 / Gemma 3: RMSNorm over each head's head_dim values of q and k, before RoPE.
  std::optional<RMSNorm> q_norm, k_norm;
  AttentionSpec spec;
  SharedBuffer q_{Role::AttnQ}, k_{Role::AttnK}, v_{Role::AttnV}, qkv_{Role::AttnQKV},
      a_{Role::AttnOut};
  // x [B*T, hidden]; cos/sin [B*T, rot_dim/2]; out [B*T, hidden_out].
  void forward(const float* x, int64_t B, int64_t T, const float* cos, const float* sin,
               int64_t rot_dim, KVCache& cache, int64_t layer, float* out,
               const backends::Context& ctx);
};

// ALiBi slopes for n_head heads (BLOOM/Falcon build_alibi_tensor; rounded through bf16 as HF).
std::vector<float> alibi_slopes(int64_t n_head);

}  // namespace ohm::nn
