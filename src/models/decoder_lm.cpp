// DecoderLM: the forward pass shared by the LLaMA-like architectures (see builders.h).
#include <algorithm>
#include <cmath>
#include <vector>

#include "builders.h"
#include "ohm/core/error.h"

namespace ohm::models {

nn::DecoderLayerSpec DecoderLM::layer_spec(const DecoderConfig& c) {
  nn::DecoderLayerSpec s;
  s.hidden = c.hidden_size;
  s.n_head = c.num_attention_heads;
  s.n_kv_head = c.num_key_value_heads;
  s.head_dim = c.head_dim;
  s.inter = c.intermediate_size;
  s.eps = c.norm_eps;
  s.act = kernels::activation_from_name(c.hidden_act);
  s.mlp_bias = c.mlp_bias ? nn::Bias::Required : nn::Bias::None;
  return s;
}

void require_heads_divide_hidden(const JsonReader& r, const DecoderConfig& c) {
  if (c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads != 0)
    r.fail("num_attention_heads", "hidden_size " + std::to_string(c.hidden_size) +
                                      " is not divisible by num_attention_heads " +
                                      std::to_string(c.num_attention_heads) +
                                      " (required even with head_dim, as transformers does)");
}

std::vector<std::string> bind_layer_types(const JsonReader& r, int64_t n_layers,
                                          const std::function<bool(int64_t)>& sliding) {
  // Before layer_types, whose length follows it (a bad count is num_hidden_layers' fault).
  if (n_layers <= 0) r.fail("num_hidden_layers", "must be > 0, got " + std::to_string(n_layers));
  auto types = r.opt_string_list("layer_types").value_or(std::vector<std::string>{});
  if (types.empty())
    for (int64_t i = 0; i < n_layers; ++i)
      types.emplace_back(sliding(i) ? "sliding_attention" : "full_attention");
  if (static_cast<int64_t>(types.size()) != n_layers)
    r.fail("layer_types", "needs one entry per layer (" + std::to_string(n_layers) + ")");
  for (const auto& t : types)
    if (t != "full_attention" && t != "sliding_attention")
      r.fail("layer_types", "unknown layer type '" + t + "'");
  return types;
}

void DecoderLM::finish(nn::Weights& ws) {
  // Every layer windowed alike: the cache may drop what the window hides.
  cache_window_ = layers_.empty() ? 0 : layers_.front().self_attn.spec.window;
  for (const auto& l : layers_)
    if (l.self_attn.spec.window != cache_window_) cache_window_ = 0;
  lm_head_ = lm_head_or_tied(ws, decoder_config(), embed_);
  cos_.resize(ropes_.size());
  sin_.resize(ropes_.size());
}

void DecoderLM::forward_hidden(const Step& s, nn::KVCache& cache, float* out) {
  const int64_t M = s.B * s.T, H = decoder_config().hidden_size;
  const backends::Context& ctx = context();
  float* h = h_.get(M * H);  // [M, H] residual stream
  float* x = x_.get(M * H);  // [M, H] normed input of a block
  float* y = y_.get(M * H);  // [M, H] block output
  ctx.embedding(kernels::matrix_view(embed_), s.ids, M, h);
  if (embed_scale_ != 0.0f) ctx.scale(h, embed_scale_, M * H);
  for (size_t r = 0; r < ropes_.size(); ++r) {
    const int64_t half = ropes_[r].rot_dim() / 2;
    ropes_[r].tables(s.pos, M, cos_[r].get(M * half), sin_[r].get(M * half), s.rope_len);
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    nn::DecoderLayer& L = layers_[l];
    const auto r = static_cast<size_t>(L.rope);
    L.forward(h, x, y, s.B, s.T, cos_[r].get(0), sin_[r].get(0), ropes_[r].rot_dim(), cache,
              static_cast<int64_t>(l), ctx);
  }
  norm_.forward(h, M, out, ctx);
}

void DecoderLM::embed_layers(std::span<const int64_t> ids, float* h) {
  const auto M = static_cast<int64_t>(ids.size());
  const backends::Context& ctx = context();
  ctx.embedding(kernels::matrix_view(embed_), ids.data(), M, h);
  if (embed_scale_ != 0.0f) ctx.scale(h, embed_scale_, M * decoder_config().hidden_size);
}

void DecoderLM::run_layer(int64_t l, int64_t T, float* h) {
  if (l < 0 || l >= static_cast<int64_t>(layers_.size()) || T <= 0)
    throw InvalidArgument(ErrorContext().op("run_layer"), "layer " + std::to_string(l) + " of " +
                                                              std::to_string(layers_.size()) +
                                                              ", " + std::to_string(T) + " tokens");
  const int64_t H = decoder_config().hidden_size;
  const backends::Context& ctx = context();
  nn::DecoderLayer& L = layers_[static_cast<size_t>(l)];
  const auto r = static_cast<size_t>(L.rope);
  // What forward() sets up for a fresh sequence: positions 0..T-1, all valid, the cache that
  // make_cache(1, T) gives (here with this one layer).
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
  const int64_t half = ropes_[r].rot_dim() / 2;
  float* cos = cos_[r].get(static_cast<size_t>(T * half));
  float* sin = sin_[r].get(static_cast<size_t>(T * half));
  ropes_[r].tables(pos.data(), T, cos, sin, nullptr);
  const int64_t hint = cache_window_ > 0 ? std::min(T, 2 * cache_window_) : T;
  nn::KVCache cache(ctx, 1, 1, kv_dim(), hint, kv_type_);
  cache.set_window(cache_window_);
  cache.append(T, nullptr, pos.data());
  float* x = x_.get(static_cast<size_t>(T * H));
  float* y = y_.get(static_cast<size_t>(T * H));
  L.forward(h, x, y, 1, T, cos, sin, ropes_[r].rot_dim(), cache, 0, ctx);
}

}  // namespace ohm::models
