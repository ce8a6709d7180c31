// Attention with logit soft-capping (Gemma 2): a scalar, threaded path that kernels::attention
// takes when AttentionArgs::softcap > 0 (the SIMD tables have no capped variant).
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "kernels_internal.h"
#include "ohm/core/error.h"
#include "ohm/kernels/kernels.h"

namespace ohm::kernels {

void softcap_attention(const AttentionArgs& a, ThreadPool& pool) {
  const float softcap = a.softcap;
  if (!(softcap > 0.0f))
    throw InvalidArgument(ErrorContext().op("softcap_attention"), "softcap must be > 0");
  if (a.n_kv_head <= 0 || a.n_head % a.n_kv_head != 0)
    throw InvalidArgument(ErrorContext().op("softcap_attention"), "n_kv_head must divide n_head");
  if (a.q_start + a.T > a.S)
    throw InvalidArgument(ErrorContext().op("softcap_attention"),
                          "queries past the end of the cache");
  const int64_t group = a.n_head / a.n_kv_head, hd = a.head_dim;
  const int64_t pmask = a.page_tokens - 1;
  const int pshift = a.k_pages ? std::countr_zero(static_cast<uint64_t>(a.page_tokens)) : 0;
  auto key = [&](int64_t j, int64_t g) {
    return a.k_pages ? a.k_pages[j >> pshift] + (j & pmask) * a.kv_stride + g * hd
                     : a.k + j * a.kv_stride + g * hd;
  };
  auto value = [&](int64_t j, int64_t g) {
    return a.v_pages ? a.v_pages[j >> pshift] + (j & pmask) * a.kv_stride + g * hd
                     : a.v + j * a.kv_stride + g * hd;
  };
  pool.parallel_for(a.T * a.n_head, 1, [&](int64_t w0, int64_t w1) {
    float* scores = thread_scratch(1, static_cast<size_t>(a.S));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t t = w / a.n_head, h = w % a.n_head, g = h / group;
      const int64_t i = a.q_start + t;  // cache index of this query: sees keys lo..i
      const int64_t lo = a.window > 0 ? std::max<int64_t>(0, i - a.window + 1) : 0;
      const float* q = a.q + t * a.q_stride + h * hd;
      float* out = a.out + t * a.out_stride + h * hd;
      std::fill(out, out + hd, 0.0f);
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j <= i; ++j) {
        if (a.kv_valid && !a.kv_valid[j]) continue;
        float s = dot(q, key(j, g), hd);
        if (a.alibi_slopes) s += a.alibi_slopes[h] * static_cast<float>(a.kv_pos ? a.kv_pos[j] : j);
        s *= a.scale;
        s = softcap * std::tanh(s / softcap);  // HF: (s / cap).tanh() * cap, before the mask
        scores[j] = s;
        mx = std::max(mx, s);
      }
      if (mx == -std::numeric_limits<float>::infinity()) continue;  // nothing visible: zeros
      double sum = 0;
      for (int64_t j = lo; j <= i; ++j) {
        if (a.kv_valid && !a.kv_valid[j]) continue;
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = lo; j <= i; ++j) {
        if (a.kv_valid && !a.kv_valid[j]) continue;
        const float p = scores[j] * inv;
        const float* v = value(j, g);
        for (int64_t d = 0; d < hd; ++d) out[d] += p * v[d];
      }
    }
  });
}

}  // namespace ohm::kernels
