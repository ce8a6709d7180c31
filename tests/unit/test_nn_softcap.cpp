// kernels::attention with AttentionArgs::softcap (Gemma 2's attention logit soft-capping) against
// the formula written out
// directly: p = softmax_j(cap * tanh(scale * q.k_j / cap)) over the visible keys (causal, sliding
// window, padding), out = sum_j p_j v_j.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/nn/layers.h"

namespace ohm {
namespace {

struct Case {
  int64_t T, S, n_head, n_kv_head, head_dim, window;
  float scale, cap;
  std::vector<uint8_t> valid;  // empty: all valid
};

void check(const Case& c) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 2.0f);  // large scores, so the cap matters
  const int64_t qs = c.n_head * c.head_dim, kvs = c.n_kv_head * c.head_dim;
  std::vector<float> q(c.T * qs), k(c.S * kvs), v(c.S * kvs), out(c.T * qs, -1.0f);
  for (auto* x : {&q, &k, &v})
    for (float& f : *x) f = nd(rng);
  kernels::AttentionArgs a;
  a.q = q.data();
  a.q_stride = qs;
  a.k = k.data();
  a.v = v.data();
  a.kv_stride = kvs;
  a.kv_valid = c.valid.empty() ? nullptr : c.valid.data();
  a.out = out.data();
  a.out_stride = qs;
  a.T = c.T;
  a.S = c.S;
  a.q_start = c.S - c.T;
  a.n_head = c.n_head;
  a.n_kv_head = c.n_kv_head;
  a.head_dim = c.head_dim;
  a.scale = c.scale;
  a.window = c.window;
  a.softcap = c.cap;
  ThreadPool pool(2);
  kernels::attention(a, pool);
  const int64_t group = c.n_head / c.n_kv_head;
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t h = 0; h < c.n_head; ++h) {
      const int64_t i = c.S - c.T + t, g = h / group;
      std::vector<double> s(c.S, 0.0);
      std::vector<bool> vis(c.S, false);
      double mx = -1e300;
      for (int64_t j = 0; j <= i; ++j) {
        if (c.window > 0 && i - j >= c.window) continue;
        if (!c.valid.empty() && !c.valid[j]) continue;
        double d = 0;
        for (int64_t e = 0; e < c.head_dim; ++e)
          d += double(q[t * qs + h * c.head_dim + e]) * k[j * kvs + g * c.head_dim + e];
        s[j] = c.cap * std::tanh(d * c.scale / c.cap);
        EXPECT_LE(std::abs(s[j]), c.cap);
        vis[j] = true;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < c.S; ++j)
        if (vis[j]) sum += std::exp(s[j] - mx);
      for (int64_t e = 0; e < c.head_dim; ++e) {
        double want = 0;
        for (int64_t j = 0; j < c.S; ++j)
          if (vis[j]) want += std::exp(s[j] - mx) / sum * v[j * kvs + g * c.head_dim + e];
        EXPECT_NEAR(out[t * qs + h * c.head_dim + e], want, 1e-5)
            << "t " << t << " h " << h << " e " << e;
      }
    }
}

TEST(SoftcapAttention, MatchesFormulaCausal) {
  check({7, 7, 4, 2, 8, 0, 0.35f, 5.0f, {}});
}

TEST(SoftcapAttention, MatchesFormulaWindowAndCache) {
  check({5, 40, 2, 1, 16, 16, 0.25f, 50.0f, {}});  // queries 35..39 past a window of 16
}

TEST(SoftcapAttention, MatchesFormulaPadding) {
  std::vector<uint8_t> valid(9, 1);
  valid[0] = valid[1] = valid[2] = 0;  // left padding
  check({9, 9, 2, 2, 4, 4, 0.5f, 3.0f, valid});
}

TEST(SoftcapAttention, CapCompressesScores) {
  // Two keys with q.k*scale = 100 and 0: uncapped p0 ~ 1; capped at 1, p0 = 1/(1 + e^-tanh(100)).
  std::vector<float> q = {10.0f}, k = {10.0f, 0.0f}, v = {1.0f, 0.0f}, out(1);
  kernels::AttentionArgs a;
  a.q = q.data();
  a.q_stride = 1;
  a.k = k.data();
  a.v = v.data();
  a.kv_stride = 1;
  a.out = out.data();
  a.out_stride = 1;
  a.T = 1;
  a.S = 2;
  a.q_start = 1;
  a.n_head = a.n_kv_head = a.head_dim = 1;
  a.scale = 1.0f;
  ThreadPool pool(1);
  a.softcap = 1.0f;
  kernels::attention(a, pool);
  EXPECT_NEAR(out[0], 1.0 / (1.0 + std::exp(-std::tanh(100.0))), 1e-6);
  a.softcap = -1.0f;
  EXPECT_THROW(kernels::attention(a, pool), InvalidArgument);
}

TEST(SoftcapAttention, AttendTakesTheCappedPath) {
  // attend() with spec.softcap set stores k/v in the cache and matches the capped kernel.
  const int64_t T = 6, nh = 2, hd = 4;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> q(T * nh * hd), k(T * nh * hd), v(T * nh * hd), o1(T * nh * hd), o2(o1);
  for (auto* x : {&q, &k, &v})
    for (float& f : *x) f = nd(rng);
  nn::AttentionSpec spec;
  spec.n_head = spec.n_kv_head = nh;
  spec.head_dim = hd;
  spec.scale = 0.5f;
  spec.softcap = 2.0f;
  ThreadPool pool(2);
  backends::Context ctx(pool);
  nn::KVCache cache(ctx, 1, 1, nh * hd);
  cache.append(T, nullptr, nullptr);
  nn::attend(spec, q.data(), nh * hd, k.data(), v.data(), nh * hd, cache, 0, 1, T, o1.data(), ctx);
  kernels::AttentionArgs a;
  a.q = q.data();
  a.q_stride = a.kv_stride = a.out_stride = nh * hd;
  a.k = k.data();
  a.v = v.data();
  a.out = o2.data();
  a.T = a.S = T;
  a.n_head = a.n_kv_head = nh;
  a.head_dim = hd;
  a.scale = 0.5f;
  a.softcap = 2.0f;
  kernels::attention(a, pool);
  for (size_t i = 0; i < o1.size(); ++i) EXPECT_FLOAT_EQ(o1[i], o2[i]) << i;
}

}  // namespace
}  // namespace ohm
