#include "ohm/nn/layers.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/core/half.h"

namespace ohm::nn {

float* SharedBuffer::get(size_t n) const {
  thread_local std::array<std::vector<float>, static_cast<size_t>(Role::kCount)> bufs;
  auto& v = bufs[static_cast<size_t>(role_)];
  if (v.size() < n) v.resize(n);
  return v.data();
}

// ---- Linear & norms ------------------------------------------------------------------------

namespace {
thread_local LinearObserver* t_linear_observer = nullptr;
}  // namespace

LinearObserver* set_linear_observer(LinearObserver* observer) {
  LinearObserver* prev = t_linear_observer;
  t_linear_observer = observer;
  return prev;
}

Linear Linear::load(Weights& ws, const std::string& prefix, int64_t out, int64_t in, Bias bias) {
  Linear l;
  l.name = prefix;
  l.weight = ws.matrix(prefix + ".weight", out, in);
  l.w = kernels::matrix_view(l.weight);
  l.in_perm = ws.input_permutation(prefix + ".weight");
  l.w.fine_acts = ws.float_activations(prefix + ".weight");
  l.pack();
  if (l.packed && l.w.fine_acts && !l.weight.is_mapped() && l.weight.storage().use_count() <= 2) {
    // A GPTQ / AWQ weight repacked at load and packed again for the kernels: the packed copy is
    // all the matmuls read (on this table and any with the same fine-activation kernel), so the
    // repacked one is freed, here and in the source (kernels::matmul refuses w elsewhere).
    l.weight = Tensor();
    l.w.data = nullptr;
    ws.release(prefix + ".weight");
  }
  if (bias == Bias::Required)
    l.bias = ws.vector(prefix + ".bias", out);
  else if (bias == Bias::Optional)
    if (auto b = ws.optional_vector(prefix + ".bias", out)) l.bias = std::move(*b);
  return l;
}

Linear Linear::from(Tensor weight, std::vector<float> bias) {
  Linear l;
  l.weight = std::move(weight);
  l.w = kernels::matrix_view(l.weight);
  l.bias = std::move(bias);
  l.pack();
  return l;
}

void Linear::pack() {
  packed = kernels::pack_weights(w);
  if (!packed) return;
  kernels::attach(w, *packed);
  // The matmuls read the copy now: a mapped checkpoint's pages of the weight go back to the page
  // cache (resident memory stays about one copy of the weights; they fault back in if read).
  if (const auto& st = weight.storage(); st && st->is_mapped())
    st->file()->release(static_cast<uint64_t>(w.data - st->file()->data()), weight.nbytes());
}

void Linear::forward(const float* x, int64_t M, float* y, const backends::Context& ctx) const {
  if (t_linear_observer) t_linear_observer->on_linear(name, x, M, w.cols);
  if (!in_perm.empty()) {
    // The weight's columns are stored sorted by group (act-order): gather the input to match.
    thread_local std::vector<float> gathered;
    const int64_t K = w.cols;
    gathered.resize(static_cast<size_t>(M * K));
    for (int64_t m = 0; m < M; ++m) {
      const float* xr = x + m * K;
      float* gr = gathered.data() + m * K;
      for (int64_t j = 0; j < K; ++j) gr[j] = xr[in_perm[static_cast<size_t>(j)]];
    }
    ctx.matmul(gathered.data(), M, K, w, bias.empty() ? nullptr : bias.data(), y);
    return;
  }
  ctx.matmul(x, M, w.cols, w, bias.empty() ? nullptr : bias.data(), y);
}

RMSNorm RMSNorm::load(Weights& ws, const std::string& name, int64_t n, double eps, float offset) {
  RMSNorm r;
  r.weight = ws.vector(name, n);
  r.eps = static_cast<float>(eps);
  r.offset = offset;
  return r;
}

void RMSNorm::forward(const float* x, int64_t rows, float* y, const backends::Context& ctx) const {
  const int64_t n = static_cast<int64_t>(weight.size());
  ctx.rms_norm(x, rows, n, weight.data(), offset, eps, y);
}

LayerNorm LayerNorm::load(Weights& ws, const std::string& prefix, int64_t n, double eps) {
  LayerNorm l;
  l.weight = ws.vector(prefix + ".weight", n);
  l.bias = ws.vector(prefix + ".bias", n);
  l.eps = static_cast<float>(eps);
  return l;
}

void LayerNorm::forward(const float* x, int64_t rows, float* y,
                        const backends::Context& ctx) const {
  const int64_t n = static_cast<int64_t>(weight.size());
  ctx.layer_norm(x, rows, n, weight.data(), bias.empty() ? nullptr : bias.data(), eps, y);
}

// ---- MLPs ----------------------------------------------------------------------------------

void GatedMLP::forward(const float* x, int64_t M, float* y, const backends::Context& ctx) {
  float* h = h_.get(static_cast<size_t>(M * inter));
  float* u = u_.get(static_cast<size_t>(M * inter * (fused ? 2 : 1)));
  if (fused) {
    gate_up.forward(x, M, u, ctx);  // [M, 2*inter]: gate | up
    for (int64_t m = 0; m < M; ++m) {
      const float* g = u + m * 2 * inter;
      ctx.activate(act, g, h + m * inter, inter);
      ctx.mul(h + m * inter, g + inter, h + m * inter, inter);
    }
  } else {
    gate.forward(x, M, h, ctx);
    up.forward(x, M, u, ctx);
    ctx.activate(act, h, h, M * inter);
    ctx.mul(h, u, h, M * inter);
  }
  down.forward(h, M, y, ctx);
}

void MLP::forward(const float* x, int64_t M, float* y, const backends::Context& ctx) {
  const int64_t inter = fc.out_features();
  float* h = h_.get(static_cast<size_t>(M * inter));
  fc.forward(x, M, h, ctx);
  ctx.activate(act, h, h, M * inter);
  proj.forward(h, M, y, ctx);
}

void SparseMoE::forward(const float* x, int64_t M, float* y, const backends::Context& ctx) {
  const int64_t E = router.out_features(), H = router.in_features();
  if (counts.size() != static_cast<size_t>(E)) counts.assign(static_cast<size_t>(E), 0);
  float* logits = logits_.get(static_cast<size_t>(M * E));
  router.forward(x, M, logits, ctx);
  ctx.softmax(logits, M, E);  // router probabilities in f32
  sel_.resize(static_cast<size_t>(M * top_k));
  selw_.resize(static_cast<size_t>(M * top_k));
  for (int64_t m = 0; m < M; ++m) {
    float* p = logits + m * E;
    float sum = 0;
    for (int64_t k = 0; k < top_k; ++k) {  // top-k by value, lowest index first on ties
      int64_t best = -1;
      for (int64_t e = 0; e < E; ++e) {
        bool taken = false;
        for (int64_t j = 0; j < k; ++j) taken |= sel_[m * top_k + j] == e;
        if (!taken && (best < 0 || p[e] > p[best])) best = e;
      }
      sel_[m * top_k + k] = best;
      selw_[m * top_k + k] = p[best];
      sum += p[best];
    }
    if (normalize)
      for (int64_t k = 0; k < top_k; ++k) selw_[m * top_k + k] /= sum;
  }
  ctx.fill(y, 0.0f, M * H);
  float* xs = xs_.get(static_cast<size_t>(M * H));
  float* ys = ys_.get(static_cast<size_t>(M * H));
  for (int64_t e = 0; e < E; ++e) {  // ascending expert order, as HF's index_add_
    rows_.clear();
    roww_.clear();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < top_k; ++k)
        if (sel_[m * top_k + k] == e) {
          rows_.push_back(m);
          roww_.push_back(selw_[m * top_k + k]);
        }
    if (rows_.empty()) continue;
    counts[e] += static_cast<int64_t>(rows_.size());
    const int64_t n = static_cast<int64_t>(rows_.size());
    for (int64_t i = 0; i < n; ++i) ctx.copy_2d(xs + i * H, H, x + rows_[i] * H, H, 1, H);
    experts[e].forward(xs, n, ys, ctx);
    for (int64_t i = 0; i < n; ++i) ctx.axpy(roww_[i], ys + i * H, y + rows_[i] * H, H);
  }
}

// ---- attention -----------------------------------------------------------------------------

namespace {

void fill_args(const AttentionSpec& spec, kernels::AttentionArgs& a) {
  a.n_head = spec.n_head;
  a.n_kv_head = spec.n_kv_head;
  a.head_dim = spec.head_dim;
  a.scale = spec.scale;
  a.window = spec.window;
  a.alibi_slopes = spec.alibi_slopes;
  a.softcap = spec.softcap;
}

// The paged view: each sequence's new K/V rows go to their slots in its blocks, then its
// queries attend through its block table (no padding: slot j holds position j).
void attend_paged(const AttentionSpec& spec, const float* q, int64_t q_stride, const float* k,
                  const float* v, int64_t kv_src_stride, KVCache& cache, int64_t layer, float* out,
                  const backends::Context& ctx) {
  PagedKVPool& pool = *cache.paged_pool();
  const int64_t kv_dim = cache.kv_dim(), bt = pool.block_tokens();
  const int64_t od = spec.n_head * spec.head_dim;
  thread_local std::vector<const float*> kp, vp;
  for (const PagedSeq& s : cache.paged_seqs()) {
    if (s.n_new <= 0) continue;
    const int64_t S = s.n_past + s.n_new;
    if ((S + bt - 1) / bt > s.n_blocks)
      throw ShapeError(ErrorContext().op("attend"), "paged sequence has too few blocks");
    for (int64_t t = 0; t < s.n_new; ++t) {
      const int64_t slot = s.n_past + t, blk = s.blocks[slot / bt], row = slot % bt;
      const int64_t src = (s.offset + t) * kv_src_stride;
      ctx.copy_2d(pool.k_block(layer, blk) + row * kv_dim, kv_dim, k + src, kv_src_stride, 1,
                  kv_dim);
      ctx.copy_2d(pool.v_block(layer, blk) + row * kv_dim, kv_dim, v + src, kv_src_stride, 1,
                  kv_dim);
    }
    const int64_t nb = (S + bt - 1) / bt;
    kp.resize(static_cast<size_t>(nb));
    vp.resize(static_cast<size_t>(nb));
    for (int64_t b = 0; b < nb; ++b) {
      kp[static_cast<size_t>(b)] = pool.k_block(layer, s.blocks[b]);
      vp[static_cast<size_t>(b)] = pool.v_block(layer, s.blocks[b]);
    }
    kernels::AttentionArgs a;
    a.q = q + s.offset * q_stride;
    a.q_stride = q_stride;
    a.k_pages = kp.data();
    a.v_pages = vp.data();
    a.page_tokens = bt;
    a.kv_stride = kv_dim;
    a.out = out + s.offset * od;
    a.out_stride = od;
    a.T = s.n_new;
    a.S = S;
    a.q_start = s.n_past;
    fill_args(spec, a);
    ctx.attention(a);
  }
}

}  // namespace

void attend(const AttentionSpec& spec, const float* q, int64_t q_stride, const float* k,
            const float* v, int64_t kv_src_stride, KVCache& cache, int64_t layer, int64_t B,
            int64_t T, float* out, const backends::Context& ctx) {
  const int64_t kv_dim = spec.n_kv_head * spec.head_dim;
  if (kv_dim != cache.kv_dim() || B != cache.batch())
    throw ShapeError(ErrorContext().op("attend"), "KV cache geometry does not match the model");
  if (cache.paged_pool())
    return attend_paged(spec, q, q_stride, k, v, kv_src_stride, cache, layer, out, ctx);
  const int64_t S = cache.size(), start = S - T;
  const DType kt = cache.kv_type();
  const int64_t slot = cache.slot_floats();
  thread_local std::vector<float> staged;  // typed caches: the new rows, converted
  for (int64_t b = 0; b < B; ++b) {
    float* kc = cache.k(layer, b);
    float* vc = cache.v(layer, b);
    if (kt == DType::F32) {
      ctx.copy_2d(kc + start * kv_dim, kv_dim, k + b * T * kv_src_stride, kv_src_stride, T, kv_dim);
      ctx.copy_2d(vc + start * kv_dim, kv_dim, v + b * T * kv_src_stride, kv_src_stride, T, kv_dim);
    } else {
      staged.assign(static_cast<size_t>(T * slot), 0.0f);
      auto put = [&](const float* src, float* dst) {
        for (int64_t t = 0; t < T; ++t)
          kernels::kv_store_row(kt, src + (b * T + t) * kv_src_stride,
                                reinterpret_cast<uint8_t*>(staged.data() + t * slot), kv_dim);
        ctx.copy_2d(dst + start * slot, slot, staged.data(), slot, T, slot);
      };
      put(k, kc);
      put(v, vc);
    }
    kernels::AttentionArgs a;
    a.q = q + b * T * q_stride;
    a.q_stride = q_stride;
    if (kt == DType::F32) {
      a.k = kc;
      a.v = vc;
    } else {
      a.kv_type = kt;
      a.k_bytes = reinterpret_cast<const uint8_t*>(kc);
      a.v_bytes = reinterpret_cast<const uint8_t*>(vc);
      a.kv_row_bytes = slot * 4;
    }
    a.kv_stride = kv_dim;
    a.kv_valid = cache.valid(b);
    a.kv_pos = cache.pos(b);
    a.out = out + b * T * spec.n_head * spec.head_dim;
    a.out_stride = spec.n_head * spec.head_dim;
    a.T = T;
    a.S = S;
    a.q_start = start;
    fill_args(spec, a);
    ctx.attention(a);
  }
}

void SelfAttention::forward(const float* x, int64_t B, int64_t T, const float* cos,
                            const float* sin, int64_t rot_dim, KVCache& cache, int64_t layer,
                            float* out, const backends::Context& ctx) {
  const int64_t M = B * T;
  const int64_t qd = spec.n_head * spec.head_dim, kvd = spec.n_kv_head * spec.head_dim;
  float *q, *k, *v;
  int64_t q_stride, kv_stride;
  if (fused) {
    float* qkv = qkv_.get(static_cast<size_t>(M * (qd + 2 * kvd)));
    qkv_proj.forward(x, M, qkv, ctx);  // [M, q | k | v]
    q = qkv;
    k = qkv + qd;
    v = qkv + qd + kvd;
    q_stride = kv_stride = qd + 2 * kvd;
  } else {
    float* qb = q_.get(static_cast<size_t>(M * qd));
    float* kb = k_.get(static_cast<size_t>(M * kvd));
    float* vb = v_.get(static_cast<size_t>(M * kvd));
    q_proj.forward(x, M, qb, ctx);
    k_proj.forward(x, M, kb, ctx);
    v_proj.forward(x, M, vb, ctx);
    q = qb;
    k = kb;
    v = vb;
    q_stride = qd;
    kv_stride = kvd;
  }
  // Per head over head_dim; heads are contiguous within a token's row (and rows are contiguous
  // unless q/k/v come from one fused matrix).
  auto head_norm = [&](const std::optional<RMSNorm>& n, float* t, int64_t stride, int64_t heads) {
    if (!n) return;
    if (stride == heads * spec.head_dim) {
      n->forward(t, M * heads, t, ctx);
      return;
    }
    for (int64_t m = 0; m < M; ++m) n->forward(t + m * stride, heads, t + m * stride, ctx);
  };
  head_norm(q_norm, q, q_stride, spec.n_head);
  head_norm(k_norm, k, kv_stride, spec.n_kv_head);
  if (rot_dim > 0) {
    ctx.rope(rope_interleaved, q, M, q_stride, spec.n_head, spec.head_dim, rot_dim, cos, sin);
    ctx.rope(rope_interleaved, k, M, kv_stride, spec.n_kv_head, spec.head_dim, rot_dim, cos, sin);
  }
  float* a = a_.get(static_cast<size_t>(M * qd));
  attend(spec, q, q_stride, k, v, kv_stride, cache, layer, B, T, a, ctx);
  o_proj.forward(a, M, out, ctx);
}

std::vector<float> alibi_slopes(int64_t n_head) {
  // build_alibi_tensor (BLOOM/Falcon): slopes for the closest power of two, then the odd powers
  // of the next base for the remaining heads; HF multiplies with slopes cast to bf16.
  const int64_t p2 =
      int64_t{1} << static_cast<int>(std::floor(std::log2(static_cast<double>(n_head))));
  std::vector<float> s;
  const float base =
      static_cast<float>(std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(p2)) - 3))));
  for (int64_t i = 1; i <= p2; ++i) s.push_back(std::pow(base, static_cast<float>(i)));
  if (p2 != n_head) {
    const float extra = static_cast<float>(
        std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(2 * p2)) - 3))));
    const int64_t rem = std::min(p2, n_head - p2);
    for (int64_t i = 1; i < 1 + 2 * rem; i += 2)
      s.push_back(std::pow(extra, static_cast<float>(i)));
  }
  for (auto& x : s) x = bf16_to_f32(f32_to_bf16(x));
  return s;
}

}  // namespace ohm::nn
