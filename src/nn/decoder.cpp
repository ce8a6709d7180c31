// The shared pre-norm decoder layer (see ohm/nn/decoder.h).
#include "ohm/nn/decoder.h"

#include <cmath>

namespace ohm::nn {

void DecoderLayer::forward(float* h, float* x, float* y, int64_t B, int64_t T, const float* cos,
                           const float* sin, int64_t rot_dim, KVCache& cache, int64_t layer,
                           const backends::Context& ctx) {
  const int64_t M = B * T;
  input_norm.forward(h, M, x, ctx);
  self_attn.forward(x, B, T, cos, sin, rot_dim, cache, layer, y, ctx);
  if (attn_out_norm) attn_out_norm->forward(y, M, y, ctx);
  ctx.add(h, y, h, M * hidden);
  pre_mlp_norm.forward(h, M, x, ctx);
  if (moe)
    moe->forward(x, M, y, ctx);
  else
    mlp.forward(x, M, y, ctx);
  if (mlp_out_norm) mlp_out_norm->forward(y, M, y, ctx);
  ctx.add(h, y, h, M * hidden);
}

DecoderLayer load_decoder_layer(Weights& ws, const std::string& p, const DecoderLayerSpec& s) {
  DecoderLayer L;
  const int64_t H = s.hidden, nh = s.n_head, nkv = s.n_kv_head, hd = s.head_dim, I = s.inter;
  L.hidden = H;
  L.rope = s.rope;
  L.input_norm = RMSNorm::load(ws, p + ".input_layernorm.weight", H, s.eps, s.norm_offset);
  if (s.sandwich_norms) {
    L.attn_out_norm =
        RMSNorm::load(ws, p + ".post_attention_layernorm.weight", H, s.eps, s.norm_offset);
    L.pre_mlp_norm =
        RMSNorm::load(ws, p + ".pre_feedforward_layernorm.weight", H, s.eps, s.norm_offset);
    L.mlp_out_norm =
        RMSNorm::load(ws, p + ".post_feedforward_layernorm.weight", H, s.eps, s.norm_offset);
  } else {
    L.pre_mlp_norm =
        RMSNorm::load(ws, p + ".post_attention_layernorm.weight", H, s.eps, s.norm_offset);
  }
  auto& a = L.self_attn;
  a.rope_interleaved = s.rope_interleaved;
  if (s.fused_qkv) {
    a.fused = true;
    a.qkv_proj = Linear::load(ws, p + ".self_attn.qkv_proj", (nh + 2 * nkv) * hd, H, s.qkv_bias);
  } else {
    a.q_proj = Linear::load(ws, p + ".self_attn.q_proj", nh * hd, H, s.qkv_bias);
    a.k_proj = Linear::load(ws, p + ".self_attn.k_proj", nkv * hd, H, s.qkv_bias);
    a.v_proj = Linear::load(ws, p + ".self_attn.v_proj", nkv * hd, H, s.qkv_bias);
  }
  a.o_proj = Linear::load(ws, p + ".self_attn.o_proj", H, nh * hd, s.o_bias);
  if (s.qk_norm) {
    a.q_norm = RMSNorm::load(ws, p + ".self_attn.q_norm.weight", hd, s.eps, s.norm_offset);
    a.k_norm = RMSNorm::load(ws, p + ".self_attn.k_norm.weight", hd, s.eps, s.norm_offset);
  }
  a.spec.n_head = nh;
  a.spec.n_kv_head = nkv;
  a.spec.head_dim = hd;
  a.spec.scale =
      s.scale > 0 ? s.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  a.spec.window = s.window;
  a.spec.softcap = s.softcap;
  if (s.mlp) {
    auto& m = L.mlp;
    if (s.fused_gate_up) {
      m.fused = true;
      m.gate_up = Linear::load(ws, p + ".mlp.gate_up_proj", 2 * I, H, s.mlp_bias);
    } else {
      m.gate = Linear::load(ws, p + ".mlp.gate_proj", I, H, s.mlp_bias);
      m.up = Linear::load(ws, p + ".mlp.up_proj", I, H, s.mlp_bias);
    }
    m.down = Linear::load(ws, p + ".mlp.down_proj", H, I, s.mlp_bias);
    m.inter = I;
    m.act = s.act;
  }
  return L;
}

}  // namespace ohm::nn
