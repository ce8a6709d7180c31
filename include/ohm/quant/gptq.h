// GPTQ (Frantar et al., ICLR 2023) and round-to-nearest for one linear layer, with the grid of
// the GPTQ reference Quantizer (per output row and group: min-max, sym or asym, 2..8 bits), and
// the HF GPTQ v1 packing (AutoGPTQ / GPTQModel `checkpoint_format: "gptq"`).
//
//   H = 2 X^T X over the layer's calibration inputs X [tokens, in] (accumulate_hessian);
//   GptqResult r = gptq_quantize(W, out, in, H, opt);   // W [out, in] row-major f32
//   GptqPacked p = pack_gptq_v1(r);                      // qweight / qzeros / scales / g_idx
//
// The algorithm: dead inputs (H_ii = 0) get H_ii = 1 and a zero weight column; with desc_act
// the columns are visited by decreasing diag(H); H += damp * mean(diag H) * I; U = the upper
// Cholesky factor of H^-1; columns are quantized in lazy blocks of `block` columns, each
// column's scaled error (w - q) / U_jj fed back to the later columns of its block at once and
// to the rest of the matrix after the block (one product). A group's scale and zero are taken
// from the current (error-updated) weights of its columns when the visit reaches its first
// column. Scales are rounded to f16 before use (the checkpoint stores f16), so the feedback sees
// the stored grid. Asymmetric zeros are kept in [1, 2^bits - 1]: the v1 layout stores zero - 1.
#pragma once

#include <cstdint>
#include <vector>

#include "ohm/core/tensor.h"
#include "ohm/core/thread_pool.h"

namespace ohm::quant {

struct GptqOptions {
  int bits = 4;                // 2, 3, 4 or 8 (3 is rejected by pack_gptq_v1)
  int64_t group_size = 128;    // -1: one group per row
  bool desc_act = false;       // act-order (g_idx non-monotonic)
  bool sym = true;             // zero fixed at 2^(bits-1)
  double damp = 0.01;          // fraction of mean(diag H) added to the diagonal
  double damp_step = 0.01;     // added to damp while the Cholesky fails (GPTQModel 7.7 default)
  int64_t block = 128;         // lazy-batch width
  ThreadPool* pool = nullptr;  // nullptr: ThreadPool::global()
};

struct GptqResult {
  int64_t rows = 0, cols = 0;  // out, in
  int bits = 4;
  int64_t group_size = 0;      // as given (-1 allowed)
  int64_t groups = 0;          // ceil(cols / group_size), 1 for -1
  std::vector<uint8_t> q;      // [rows, cols] codes in 0 .. 2^bits-1, stored column order
  std::vector<float> scales;   // [groups, rows], f16-representable
  std::vector<int32_t> zeros;  // [groups, rows] true zero points
  std::vector<int32_t> g_idx;  // [cols] group of each input column
  double damp = 0;             // the dampening fraction that was used
  int64_t dead = 0;            // input columns with H_ii = 0

  // scales[g_idx[j], r] * (q[r, j] - zeros[g_idx[j], r]) as [rows, cols] f32.
  std::vector<float> dequantize() const;
};

// Throws InvalidArgument for bits outside {2,3,4,8}, a group size that is neither -1 nor >= 1,
// or empty shapes.
void check_gptq_options(const GptqOptions& opt);

// GPTQ of w [rows, cols] against h [cols, cols] (symmetric, row-major; it is copied).
// NumericError when H cannot be factored even with damp raised to 1.
GptqResult gptq_quantize(const float* w, int64_t rows, int64_t cols, const std::vector<double>& h,
                         const GptqOptions& opt);
// Round-to-nearest on the same grid and groups (no Hessian; desc_act ignored).
GptqResult rtn_quantize(const float* w, int64_t rows, int64_t cols, const GptqOptions& opt);

// Adds 2 * x^T x over the rows of x [m, k] to the upper triangle of h [k, k] (f64), using
// `pool`'s threads; symmetrize_hessian copies the upper triangle to the lower one.
void accumulate_hessian(std::vector<double>& h, const float* x, int64_t m, int64_t k,
                        ThreadPool& pool);
void symmetrize_hessian(std::vector<double>& h, int64_t k);

// tr(D H D^T) / tr(W H W^T) with D = W - dequantize(r): the relative output error on the
// inputs H was accumulated from (0 when W H W^T vanishes).
double relative_output_error(const float* w, const GptqResult& r, const std::vector<double>& h,
                             ThreadPool& pool);

// The HF GPTQ v1 tensors: qweight int32 [cols*bits/32, rows], qzeros int32
// [groups, rows*bits/32] (zero - 1), scales f16 [groups, rows], g_idx int32 [cols]. bits 2, 4
// or 8; cols and rows multiples of 32/bits (InvalidArgument otherwise).
struct GptqPacked {
  Tensor qweight, qzeros, scales, g_idx;
};
GptqPacked pack_gptq_v1(const GptqResult& r);

}  // namespace ohm::quant
