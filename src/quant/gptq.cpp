// GPTQ and RTN for one linear layer (ohm/quant/gptq.h has the algorithm's outline).
#include "ohm/quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <string>

#include "ohm/core/error.h"
#include "ohm/core/half.h"

namespace ohm::quant {

namespace {

// Scale and zero of one row of a group, as the GPTQ reference Quantizer.find_params
// (perchannel): the range always includes 0; sym widens it to [-max|x|, max|x|] (only when the
// minimum is negative); an all-zero range becomes [-1, 1].
struct Grid {
  float scale;
  int32_t zero;
};

Grid find_grid(float xmin, float xmax, int maxq, bool sym) {
  xmin = std::min(xmin, 0.0f);
  xmax = std::max(xmax, 0.0f);
  if (sym) {
    xmax = std::max(std::fabs(xmin), xmax);
    if (xmin < 0) xmin = -xmax;
  }
  if (xmin == 0 && xmax == 0) {
    xmin = -1;
    xmax = 1;
  }
  float scale = f16_to_f32(f32_to_f16((xmax - xmin) / static_cast<float>(maxq)));
  if (!(scale > 0)) scale = f16_to_f32(1);  // below f16's range: the smallest subnormal
  int32_t zero;
  if (sym) {
    zero = (maxq + 1) / 2;
  } else {
    zero = static_cast<int32_t>(std::nearbyint(-xmin / scale));
    zero = std::clamp(zero, 1, maxq);  // v1 stores zero - 1 in `bits` bits
  }
  return {scale, zero};
}

inline int quantize_one(float x, const Grid& g, int maxq) {
  const float q = std::nearbyint(x / g.scale) + static_cast<float>(g.zero);
  return static_cast<int>(std::clamp(q, 0.0f, static_cast<float>(maxq)));
}

inline float dequantize_one(int q, const Grid& g) {
  return g.scale * static_cast<float>(q - g.zero);
}

int64_t group_count(int64_t cols, int64_t group_size) {
  return group_size < 0 ? 1 : (cols + group_size - 1) / group_size;
}

// Cholesky in place of the symmetric positive definite a [n, n] (lower triangle holds L on
// return; the upper is left as is). False when a pivot is not positive.
bool cholesky_lower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double* aj = a.data() + j * n;
    double d = aj[j];
    for (int64_t k = 0; k < j; ++k) d -= aj[k] * aj[k];
    if (!(d > 0) || !std::isfinite(d)) return false;
    const double ljj = std::sqrt(d);
    aj[j] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double* ai = a.data() + i * n;
      double s = ai[j];
      for (int64_t k = 0; k < j; ++k) s -= ai[k] * aj[k];
      ai[j] = s / ljj;
    }
  }
  return true;
}

// U, upper triangular with H^-1 = U^T U, from H (symmetric positive definite) in `l` (taken
// over: it becomes L, then L^-1 in place); false when a factorization fails. Returns U
// row-major [n, n] in `u` (lower part zero). Two n x n matrices are alive at a time.
bool inverse_cholesky_upper(std::vector<double> l, int64_t n, std::vector<double>& u) {
  if (!cholesky_lower(l, n)) return false;
  // Linv = L^-1 (lower), row by row over L's rows: Linv[i][c] = -sum_{k<i} L[i][k] Linv[k][c] /
  // L[i][i] (c < i), accumulated as multiples of the rows above (contiguous). Row i of L is
  // kept aside while its row of Linv is built in its place (the upper part is never read).
  std::vector<double> li(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double* row = l.data() + i * n;
    std::copy(row, row + i + 1, li.begin());
    std::fill(row, row + i, 0.0);
    for (int64_t k = 0; k < i; ++k) {
      const double a = li[static_cast<size_t>(k)];
      if (a == 0) continue;
      const double* lk = l.data() + k * n;
      for (int64_t c = 0; c <= k; ++c) row[c] += a * lk[c];
    }
    const double inv = 1.0 / li[static_cast<size_t>(i)];
    for (int64_t c = 0; c < i; ++c) row[c] *= -inv;
    row[i] = inv;
  }
  // Hinv = Linv^T Linv (symmetric): Hinv[i][j] = sum_{k >= max(i,j)} Linv[k][i] Linv[k][j].
  std::vector<double> hinv(static_cast<size_t>(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const double* lk = l.data() + k * n;
    for (int64_t i = 0; i <= k; ++i) {
      const double a = lk[i];
      if (a == 0) continue;
      double* hi = hinv.data() + i * n;
      for (int64_t j = i; j <= k; ++j) hi[j] += a * lk[j];
    }
  }
  std::vector<double>().swap(l);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j)
      hinv[static_cast<size_t>(i * n + j)] = hinv[static_cast<size_t>(j * n + i)];
  if (!cholesky_lower(hinv, n)) return false;
  // U = the transpose of the lower factor, in place.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) {
      hinv[static_cast<size_t>(j * n + i)] = hinv[static_cast<size_t>(i * n + j)];
      hinv[static_cast<size_t>(i * n + j)] = 0.0;
    }
  u = std::move(hinv);
  return true;
}

GptqResult make_result(int64_t rows, int64_t cols, const GptqOptions& opt) {
  GptqResult r;
  r.rows = rows;
  r.cols = cols;
  r.bits = opt.bits;
  r.group_size = opt.group_size;
  r.groups = group_count(cols, opt.group_size);
  r.q.assign(static_cast<size_t>(rows * cols), 0);
  r.scales.assign(static_cast<size_t>(r.groups * rows), 0.0f);
  r.zeros.assign(static_cast<size_t>(r.groups * rows), 0);
  r.g_idx.resize(static_cast<size_t>(cols));
  return r;
}

}  // namespace

void check_gptq_options(const GptqOptions& opt) {
  if (opt.bits != 2 && opt.bits != 3 && opt.bits != 4 && opt.bits != 8)
    throw InvalidArgument("bits " + std::to_string(opt.bits) + ": GPTQ bits are 2, 3, 4 or 8");
  if (opt.group_size == 0 || opt.group_size < -1)
    throw InvalidArgument("group size " + std::to_string(opt.group_size) +
                          ": give -1 (one group per row) or a positive number of columns");
  if (!(opt.damp >= 0) || opt.damp > 1)
    throw InvalidArgument("damp " + std::to_string(opt.damp) + ": must be in [0, 1]");
  if (opt.block < 1) throw InvalidArgument("block must be >= 1");
}

std::vector<float> GptqResult::dequantize() const {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const size_t gi = static_cast<size_t>(g_idx[static_cast<size_t>(j)] * rows + r);
      w[static_cast<size_t>(r * cols + j)] =
          scales[gi] * static_cast<float>(q[static_cast<size_t>(r * cols + j)] - zeros[gi]);
    }
  return w;
}

GptqResult rtn_quantize(const float* w, int64_t rows, int64_t cols, const GptqOptions& opt) {
  check_gptq_options(opt);
  if (rows < 1 || cols < 1) throw InvalidArgument("empty weight");
  GptqResult r = make_result(rows, cols, opt);
  const int maxq = (1 << opt.bits) - 1;
  const int64_t gs = opt.group_size < 0 ? cols : opt.group_size;
  for (int64_t j = 0; j < cols; ++j) r.g_idx[static_cast<size_t>(j)] = static_cast<int32_t>(j / gs);
  ThreadPool& pool = opt.pool ? *opt.pool : ThreadPool::global();
  pool.parallel_for(rows, 1, [&](int64_t a, int64_t b) {
    for (int64_t row = a; row < b; ++row) {
      const float* x = w + row * cols;
      for (int64_t g = 0; g < r.groups; ++g) {
        const int64_t c0 = g * gs, c1 = std::min(cols, c0 + gs);
        float lo = x[c0], hi = x[c0];
        for (int64_t j = c0; j < c1; ++j) {
          lo = std::min(lo, x[j]);
          hi = std::max(hi, x[j]);
        }
        const Grid gr = find_grid(lo, hi, maxq, opt.sym);
        r.scales[static_cast<size_t>(g * rows + row)] = gr.scale;
        r.zeros[static_cast<size_t>(g * rows + row)] = gr.zero;
        for (int64_t j = c0; j < c1; ++j)
          r.q[static_cast<size_t>(row * cols + j)] =
              static_cast<uint8_t>(quantize_one(x[j], gr, maxq));
      }
    }
  });
  return r;
}

GptqResult gptq_quantize(const float* w, int64_t rows, int64_t cols, const std::vector<double>& h,
                         const GptqOptions& opt) {
  check_gptq_options(opt);
  if (rows < 1 || cols < 1) throw InvalidArgument("empty weight");
  if (static_cast<int64_t>(h.size()) != cols * cols)
    throw ShapeError("Hessian of " + std::to_string(h.size()) + " values for " +
                     std::to_string(cols) + " input columns");
  GptqResult r = make_result(rows, cols, opt);
  const int maxq = (1 << opt.bits) - 1;
  const int64_t n = cols, gs = opt.group_size < 0 ? cols : opt.group_size;

  // Dead inputs, then the visiting order.
  std::vector<double> hh = h;
  std::vector<bool> dead(static_cast<size_t>(n), false);
  for (int64_t i = 0; i < n; ++i)
    if (hh[static_cast<size_t>(i * n + i)] == 0) {
      hh[static_cast<size_t>(i * n + i)] = 1;
      dead[static_cast<size_t>(i)] = true;
      ++r.dead;
    }
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.desc_act)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      return hh[static_cast<size_t>(a * n + a)] > hh[static_cast<size_t>(b * n + b)];
    });
  std::vector<double> hp;
  if (opt.desc_act) {
    hp.resize(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        hp[static_cast<size_t>(i * n + j)] = hh[static_cast<size_t>(
            perm[static_cast<size_t>(i)] * n + perm[static_cast<size_t>(j)])];
    std::vector<double>().swap(hh);
  } else {
    hp = std::move(hh);  // the identity order
  }
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += hp[static_cast<size_t>(i * n + i)];
  mean_diag /= static_cast<double>(n);

  std::vector<double> u;
  double damp = opt.damp;
  for (;;) {
    std::vector<double> hd = hp;
    for (int64_t i = 0; i < n; ++i) hd[static_cast<size_t>(i * n + i)] += damp * mean_diag;
    if (inverse_cholesky_upper(std::move(hd), n, u)) break;
    if (opt.damp_step <= 0 || damp >= 1)
      throw InvalidArgument("the Hessian is not positive definite even with damp " +
                            std::to_string(damp) + " (inputs with NaN or Inf?)");
    damp = std::min(1.0, damp + opt.damp_step);
  }
  r.damp = damp;
  std::vector<double>().swap(hp);
  const std::vector<float> uf(u.begin(), u.end());
  std::vector<double>().swap(u);

  for (int64_t j = 0; j < n; ++j)
    r.g_idx[static_cast<size_t>(perm[static_cast<size_t>(j)])] = static_cast<int32_t>(j / gs);

  // Rows are independent given U: each chunk of rows runs the whole column loop.
  ThreadPool& pool = opt.pool ? *opt.pool : ThreadPool::global();
  const int64_t B = opt.block;
  pool.parallel_for(rows, 4, [&](int64_t a, int64_t b) {
    const int64_t nr = b - a;
    std::vector<float> wk(static_cast<size_t>(nr * n));  // permuted working copy
    std::vector<float> err(static_cast<size_t>(nr * B));
    std::vector<Grid> grid(static_cast<size_t>(nr));
    for (int64_t r0 = 0; r0 < nr; ++r0)
      for (int64_t j = 0; j < n; ++j) {
        const int64_t c = perm[static_cast<size_t>(j)];
        wk[static_cast<size_t>(r0 * n + j)] =
            dead[static_cast<size_t>(c)] ? 0.0f : w[(a + r0) * cols + c];
      }
    for (int64_t i1 = 0; i1 < n; i1 += B) {
      const int64_t i2 = std::min(n, i1 + B);
      for (int64_t j = i1; j < i2; ++j) {
        if (j % gs == 0) {  // a group starts: its grid from the current weights
          const int64_t g = j / gs, j1 = std::min(n, j + gs);
          for (int64_t r0 = 0; r0 < nr; ++r0) {
            const float* x = wk.data() + r0 * n;
            float lo = x[j], hi = x[j];
            for (int64_t k = j; k < j1; ++k) {
              lo = std::min(lo, x[k]);
              hi = std::max(hi, x[k]);
            }
            grid[static_cast<size_t>(r0)] = find_grid(lo, hi, maxq, opt.sym);
            r.scales[static_cast<size_t>(g * rows + a + r0)] = grid[static_cast<size_t>(r0)].scale;
            r.zeros[static_cast<size_t>(g * rows + a + r0)] = grid[static_cast<size_t>(r0)].zero;
          }
        }
        const float d = uf[static_cast<size_t>(j * n + j)];
        const float* uj = uf.data() + j * n;
        for (int64_t r0 = 0; r0 < nr; ++r0) {
          float* x = wk.data() + r0 * n;
          const Grid& gr = grid[static_cast<size_t>(r0)];
          const int q = quantize_one(x[j], gr, maxq);
          r.q[static_cast<size_t>((a + r0) * cols + perm[static_cast<size_t>(j)])] =
              static_cast<uint8_t>(q);
          const float e = (x[j] - dequantize_one(q, gr)) / d;
          err[static_cast<size_t>(r0 * B + (j - i1))] = e;
          for (int64_t k = j + 1; k < i2; ++k) x[k] -= e * uj[k];
        }
      }
      // The block's errors onto the columns after it (lazy batch update).
      if (i2 < n)
        for (int64_t r0 = 0; r0 < nr; ++r0) {
          float* x = wk.data() + r0 * n;
          for (int64_t j = i1; j < i2; ++j) {
            const float e = err[static_cast<size_t>(r0 * B + (j - i1))];
            if (e == 0) continue;
            const float* uj = uf.data() + j * n;
            for (int64_t k = i2; k < n; ++k) x[k] -= e * uj[k];
          }
        }
    }
  });
  return r;
}

void accumulate_hessian(std::vector<double>& h, const float* x, int64_t m, int64_t k,
                        ThreadPool& pool) {
  if (static_cast<int64_t>(h.size()) != k * k) h.assign(static_cast<size_t>(k * k), 0.0);
  std::vector<double> xd(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m * k; ++i) xd[static_cast<size_t>(i)] = x[i];
  // Rows of H interleaved over the chunks (row i costs k - i), so the work is even.
  const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(pool.size(), k));
  pool.parallel_for(nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t i = t; i < k; i += nt) {
        double* hi = h.data() + i * k;
        for (int64_t r = 0; r < m; ++r) {
          const double* xr = xd.data() + r * k;
          const double a = 2.0 * xr[i];
          if (a == 0) continue;
          for (int64_t j = i; j < k; ++j) hi[j] += a * xr[j];
        }
      }
  });
}

void symmetrize_hessian(std::vector<double>& h, int64_t k) {
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < i; ++j)
      h[static_cast<size_t>(i * k + j)] = h[static_cast<size_t>(j * k + i)];
}

double relative_output_error(const float* w, const GptqResult& r, const std::vector<double>& h,
                             ThreadPool& pool) {
  const std::vector<float> dq = r.dequantize();
  const int64_t n = r.cols;
  std::mutex mu;
  double num = 0, den = 0;
  pool.parallel_for(r.rows, 1, [&](int64_t a, int64_t b) {
    std::vector<double> d(static_cast<size_t>(n)), x(static_cast<size_t>(n)),
        hd(static_cast<size_t>(n)), hx(static_cast<size_t>(n));
    double e = 0, s = 0;
    for (int64_t row = a; row < b; ++row) {
      for (int64_t j = 0; j < n; ++j) {
        x[static_cast<size_t>(j)] = w[row * n + j];
        d[static_cast<size_t>(j)] =
            x[static_cast<size_t>(j)] - dq[static_cast<size_t>(row * n + j)];
      }
      // H d and H x as sums of H's rows (contiguous multiply-adds), then two dot products.
      std::fill(hd.begin(), hd.end(), 0.0);
      std::fill(hx.begin(), hx.end(), 0.0);
      for (int64_t i = 0; i < n; ++i) {
        const double* hi = h.data() + i * n;
        const double di = d[static_cast<size_t>(i)], xi = x[static_cast<size_t>(i)];
        for (int64_t j = 0; j < n; ++j) {
          hd[static_cast<size_t>(j)] += di * hi[j];
          hx[static_cast<size_t>(j)] += xi * hi[j];
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        e += d[static_cast<size_t>(j)] * hd[static_cast<size_t>(j)];
        s += x[static_cast<size_t>(j)] * hx[static_cast<size_t>(j)];
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    num += e;
    den += s;
  });
  return den > 0 ? num / den : 0.0;
}

GptqPacked pack_gptq_v1(const GptqResult& r) {
  if (r.bits != 2 && r.bits != 4 && r.bits != 8)
    throw InvalidArgument("bits " + std::to_string(r.bits) +
                          ": the GPTQ writer packs 2, 4 or 8 bits");
  const int64_t pw = 32 / r.bits, K = r.cols, N = r.rows, G = r.groups;
  if (K % pw != 0 || N % pw != 0)
    throw ShapeError("a " + std::to_string(N) + "x" + std::to_string(K) +
                     " weight does not pack: in and out features must be multiples of " +
                     std::to_string(pw) + " at " + std::to_string(r.bits) + " bits");
  const uint32_t mask = (1u << r.bits) - 1;
  GptqPacked p;
  p.qweight = Tensor::empty(DType::I32, {K / pw, N});
  auto* qw = p.qweight.mutable_data<int32_t>();
  for (int64_t rr = 0; rr < K / pw; ++rr)
    for (int64_t c = 0; c < N; ++c) {
      uint32_t word = 0;
      for (int64_t k = 0; k < pw; ++k)
        word |= (static_cast<uint32_t>(r.q[static_cast<size_t>(c * K + rr * pw + k)]) & mask)
                << (r.bits * k);
      qw[rr * N + c] = static_cast<int32_t>(word);
    }
  p.qzeros = Tensor::empty(DType::I32, {G, N / pw});
  auto* qz = p.qzeros.mutable_data<int32_t>();
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < N / pw; ++c) {
      uint32_t word = 0;
      for (int64_t k = 0; k < pw; ++k)
        word |= (static_cast<uint32_t>(r.zeros[static_cast<size_t>(g * N + c * pw + k)] - 1) & mask)
                << (r.bits * k);
      qz[g * (N / pw) + c] = static_cast<int32_t>(word);
    }
  p.scales = Tensor::empty(DType::F16, {G, N});
  auto* sc = p.scales.mutable_data<uint16_t>();
  for (int64_t i = 0; i < G * N; ++i) sc[i] = f32_to_f16(r.scales[static_cast<size_t>(i)]);
  p.g_idx = Tensor::empty(DType::I32, {K});
  std::memcpy(p.g_idx.mutable_raw(), r.g_idx.data(), static_cast<size_t>(K) * sizeof(int32_t));
  return p;
}

}  // namespace ohm::quant
