// The pre-norm decoder layer that LLaMA, Mistral, Qwen2/3, Mixtral, Qwen3-MoE, Gemma 1-3 and
// Phi-3 share (transformers' <Arch>DecoderLayer):
//
//   h = h + attn_out_norm?(self_attn(input_norm(h)))
//   h = h + mlp_out_norm?(mlp_or_moe(pre_mlp_norm(h)))
//
// The optional norms are Gemma 2/3's "sandwich" norms (post_attention_layernorm on the attention
// output, post_feedforward_layernorm on the MLP output); LLaMA's post_attention_layernorm is
// pre_mlp_norm here. Model files describe a layer with DecoderLayerSpec and load it with
// load_decoder_layer; what differs from LLaMA stays in the model file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ohm/nn/layers.h"

namespace ohm::nn {

struct DecoderLayer {
  int64_t hidden = 0;
  RMSNorm input_norm, pre_mlp_norm;
  std::optional<RMSNorm> attn_out_norm, mlp_out_norm;
  SelfAttention self_attn;
  GatedMLP mlp;
  std::optional<SparseMoE> moe;  // replaces mlp when set
  int rope = 0;                  // which of the model's RoPE tables this layer uses

  // h [B*T, hidden] residual stream, updated in place; x, y scratch [B*T, hidden].
  void forward(float* h, float* x, float* y, int64_t B, int64_t T, const float* cos,
               const float* sin, int64_t rot_dim, KVCache& cache, int64_t layer,
               const backends::Context& ctx);
};

// Everything load_decoder_layer needs to know about one layer, with transformers' LLaMA
// defaults. Names are the HF ones after "<prefix>.".
struct DecoderLayerSpec {
  int64_t hidden = 0, n_head = 0, n_kv_head = 0, head_dim = 0, inter = 0;
  double eps = 1e-6;
  float norm_offset = 0.0f;  // Gemma's RMSNorm: x * (1 + w)
  Bias qkv_bias = Bias::None, o_bias = Bias::None, mlp_bias = Bias::None;
  bool fused_qkv = false;       // self_attn.qkv_proj (q | k | v), Phi-3
  bool fused_gate_up = false;   // mlp.gate_up_proj (gate | up), Phi-3
  bool qk_norm = false;         // self_attn.q_norm / k_norm over head_dim (Qwen3, Gemma 3)
  bool sandwich_norms = false;  // Gemma 2/3: pre/post_feedforward_layernorm, post-attention norm
  bool mlp = true;              // false: the model file sets the MoE block itself
  bool rope_interleaved = false;
  float scale = 0.0f;    // attention scale (0: 1/sqrt(head_dim))
  float softcap = 0.0f;  // attention logit soft-capping (Gemma 2; 0: none)
  int64_t window = 0;    // sliding window of this layer (0: none)
  int rope = 0;          // RoPE table index
  kernels::Activation act = kernels::Activation::Silu;
};

DecoderLayer load_decoder_layer(Weights& ws, const std::string& prefix, const DecoderLayerSpec& s);

}  // namespace ohm::nn
