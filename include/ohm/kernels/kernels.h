// The narrow op interface that model code calls (model code never loops over raw buffers for
// arithmetic and never sees intrinsics).
//
// Every op has three layers:
//   1. a front end (the free functions below): validates arguments, splits work over the
//      ThreadPool, and calls
//   2. the active KernelTable entry for the op (and, for matmul, the weight dtype), which is
//   3. a per-ISA implementation: the scalar reference table (src/kernels/reference.cpp), the
//      oracle every SIMD table is tested against, and the AVX2 and AVX-512 tables
//      (src/kernels/avx2.cpp, avx512.cpp, sharing src/kernels/simd_impl.h and its per-op-family
//      simd_*.h parts), each a translation unit compiled with its -m flags that fills the
//      entries it accelerates (copying the rest from the reference table); kernels.cpp picks
//      the best behind cpuid checks.
//
// Conventions: activations are f32, row-major, contiguous. Weights are `Matrix` views of any
// dtype (f32, f16, bf16, or GGUF block types) in PyTorch's nn.Linear layout [out, in]. Kernels
// never throw and never allocate per call in hot loops (per-thread scratch grows once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ohm/core/dtype.h"
#include "ohm/core/tensor.h"
#include "ohm/core/thread_pool.h"

namespace ohm::kernels {

// A read-only row-major weight matrix [rows, cols] of any dtype; each row is `row_bytes` apart.
// For block-quantized dtypes `cols` is a multiple of the block size.
struct Matrix {
  DType dtype = DType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;  // stride between rows, in bytes
  // Float-accurate activations for Q4_0 / Q8_0 weights. Their SIMD kernels quantize each block
  // of 32 activations to int8 (x ~ d * q, as llama.cpp does), which moves the result by up to
  // half a step d / 2 per value. With fine_acts the rounding residual x - d * q is quantized
  // too, about 254 times finer, and runs against the same weights: the error falls to about
  // 1/250 of that. The AVX2 table does both in one pass (KernelTable::matmul_fine); elsewhere the
  // front end (matmul below) runs the residual through the same kernel as a second pass and
  // adds it. Checkpoints made for float activations (HF GPTQ) set it; other dtypes and the
  // scalar table (which dequantizes weights to f32) ignore it.
  bool fine_acts = false;
  // The same weights repacked for one table's packed kernels (pack_weights below), or null. The
  // front end (matmul) runs them when `packed_for` is the active table; table entries called
  // directly, and every other table, read `data`.
  const uint8_t* packed = nullptr;
  const struct KernelTable* packed_for = nullptr;
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// A Matrix view of a contiguous 2-D tensor (InvalidArgument/ShapeError otherwise). The tensor
// must outlive the view.
Matrix matrix_view(const Tensor& t);

// ---- the dispatch table ----------------------------------------------------------------------

enum class Isa : uint8_t { Scalar, Avx2, Avx512 };
const char* isa_name(Isa isa);

// Activations quantized for integer dot products: row m holds K int8 values qs[m*K + k], one
// f32 scale per 32 values d32[m*K/32 + c] (x ~ d32 * qs), and d32 * (sum of the int8 values) per
// 32 and per 16 values (sd32, sd16) for the weight offsets of the block formats.
// Fine activations (Matrix::fine_acts; the AVX-512 matmul_fine): qs2 holds each value's second
// int8 digit, x ~ d32 * (254 qs + qs2), and sd32 = d32 * sum(254 qs + qs2).
struct QActs {
  int8_t* qs = nullptr;
  int8_t* qs2 = nullptr;
  float* d32 = nullptr;
  float* sd32 = nullptr;
  float* sd16 = nullptr;
  // Per 32 values: -8 x the sum of the int8 values, Q4_0's weight offset in int32 (the packed
  // kernels start each block's integer dot product from it). The packed kernels' activations
  // (KernelTable::packed_acts) are in the table's own order (src/kernels/simd_packed.h: row tiles,
  // each tile's blocks in order).
  int32_t* o32 = nullptr;
  int64_t M = 0, K = 0;  // K is a multiple of 32
};
// The int8 activation rounding of the integer kernels, undone: r = x - d * q for each block of
// 32 values of x [n] (n a multiple of 32), with d = amax / 127 and q = round(x * 127 / amax)
// exactly as the SIMD tables quantize (Matrix::fine_acts).
void act_residual32(const float* x, int64_t n, float* r);

// Carves a QActs for M x K out of `buf` (at least qacts_floats(M, K) floats).
size_t qacts_floats(int64_t M, int64_t K);
QActs qacts_in(float* buf, int64_t M, int64_t K);

// One query of one attention head against the keys [lo, hi] of its KV head (see attention()):
// score_j = (dot(q, k_j) + alibi_slope * pos_j) * scale for the valid j, softmax over them (f32
// scores, max subtracted), out = sum_j p_j * v_j. Keys with kv_valid[j] == 0 are skipped.
struct AttnQuery {
  const float* q = nullptr;
  const float* k = nullptr;  // key j at k + j * kv_stride
  const float* v = nullptr;
  int64_t kv_stride = 0, head_dim = 0;
  // Paged K/V (k_pages non-null): key j at k_pages[j >> page_shift] + (j & page_mask) *
  // kv_stride + kv_offset (v likewise); k and v are then unused.
  const float* const* k_pages = nullptr;
  const float* const* v_pages = nullptr;
  int page_shift = 0;
  int64_t page_mask = 0, kv_offset = 0;
  const float* key(int64_t j) const {
    return k_pages ? k_pages[j >> page_shift] + (j & page_mask) * kv_stride + kv_offset
                   : k + j * kv_stride;
  }
  const float* value(int64_t j) const {
    return v_pages ? v_pages[j >> page_shift] + (j & page_mask) * kv_stride + kv_offset
                   : v + j * kv_stride;
  }
  // Typed K/V (kv_type F16 or Q8_0; attn_tile only): key j's head_dim values are the bytes at
  // kb + j * row_bytes + byte_offset in that type (v likewise); k, v and the pages are unused.
  DType kv_type = DType::F32;
  const uint8_t* kb = nullptr;
  const uint8_t* vb = nullptr;
  int64_t row_bytes = 0, byte_offset = 0;
  int64_t lo = 0, hi = -1;  // inclusive
  const uint8_t* kv_valid = nullptr;
  const int32_t* kv_pos = nullptr;  // ALiBi positions (null: j)
  bool alibi = false;
  float alibi_slope = 0.0f, scale = 1.0f;
};

// A tile of attention rows sharing one KV head, against the keys [j0, j1) of that head, with an
// online softmax over blocks of keys (flash-attention style: no full score row is kept). Row r
// sees the keys j in [max(lo[r], j0), min(hi[r], j1 - 1)] with kv.kv_valid[j] != 0 (if set);
// score = (dot(q_r, k_j) + slope[r] * pos_j) * scale as in AttnQuery. Outputs per row:
// m[r] = max score over the visible keys (-inf if none), l[r] = sum_j exp(score_j - m[r]) and
// o[r] = sum_j exp(score_j - m[r]) v_j / l[r] (zeros if none): the softmax of the row over these
// keys, so the results of several key ranges merge exactly (kernels::attention's KV splits).
struct AttnTile {
  int64_t rows = 0, head_dim = 0;
  const float* q = nullptr;      // [rows, head_dim], packed
  const int64_t* lo = nullptr;   // [rows] first key the row may see (cache index)
  const int64_t* hi = nullptr;   // [rows] last key the row may see (inclusive)
  const float* slope = nullptr;  // [rows] ALiBi slopes, or null
  float scale = 1.0f;
  int64_t j0 = 0, j1 = 0;  // the keys of this call
  AttnQuery kv;            // key()/value(), kv_valid, kv_pos of the KV head (q, lo, hi unused)
  float* o = nullptr;      // [rows, head_dim]
  float* m = nullptr;      // [rows]
  float* l = nullptr;      // [rows]
};
// Keys per block of attn_tile, and the scratch it needs (floats).
constexpr int64_t kAttnBlock = 64;
size_t attn_tile_scratch(int64_t rows, int64_t head_dim);

struct KernelTable {
  Isa isa = Isa::Scalar;
  // "amx" where the batched matmuls (M > 1) of the block-quantized (Q4_0, Q8_0, Q4_K, Q6_K)
  // and f16/bf16 weights run on AMX tiles (amx_table), "amx-emulated" for the same kernels on
  // a scalar model of the tile unit; nullptr otherwise.
  const char* tiles = nullptr;

  // y[m*ldy + n] = dot(x[m*K .. m*K+K), W.row(n)) for m in [0, M), n in [n0, n1).
  // `scratch` holds at least K floats (for converting one weight row). One entry per weight
  // dtype; nullptr means the dtype has no kernel in this table.
  using MatmulFn = void (*)(const float* x, int64_t M, int64_t K, const Matrix& w, int64_t n0,
                            int64_t n1, float* y, int64_t ldy, float* scratch);
  MatmulFn matmul[static_cast<int>(DType::Count_)] = {};
  // The same product with fine activations (Matrix::fine_acts) in one pass, where a table has
  // it (AVX2: Q4_0 and Q8_0): each activation is quantized to two int8 digits, the int8 value
  // of the plain entry and its rounding residual in steps 254 times finer, and both digit
  // streams run against each weight block as it is unpacked, meeting in int32. Without it the
  // front end runs the residual through `matmul` as a second pass.
  MatmulFn matmul_fine[static_cast<int>(DType::Count_)] = {};

  // Decode (M = 1) load sharing. Where set for the weight dtype, the entry runs its rows
  // through a queue installed for the calling thread (src/kernels/kernels_internal.h): after its
  // own range [n0, n1) it takes chunks of the queue's rows until none are left. The front end gives
  // each thread a static share and leaves a tail in the queue, so a thread that finishes first (the
  // cores of a shared machine do not run at one speed) helps with the rest instead of waiting.
  bool matvec_row_queue[static_cast<int>(DType::Count_)] = {};

  // Batched path for block-quantized weights (prompt processing): the front end quantizes
  // the activations once per call (qacts_prepare over row ranges, in parallel), then each thread
  // runs qgemm over its range of output features. Used when M >= qgemm_min_rows and the entry
  // for the weight dtype is set; a table's matmul entry takes the same path for such M, so a
  // direct call and the threaded front end give identical results.
  int64_t qgemm_min_rows = 0;
  void (*qacts_prepare)(const float* x, int64_t m0, int64_t m1, const struct QActs& a) = nullptr;
  using QGemmFn = void (*)(const struct QActs& a, const Matrix& w, int64_t n0, int64_t n1, float* y,
                           int64_t ldy);
  QGemmFn qgemm[static_cast<int>(DType::Count_)] = {};

  // Packed weights (Matrix::packed): where pack[dtype] is set, pack_weights copies a matrix of
  // that dtype into this table's layout (packed_bytes of it, in panels of pack_rows output
  // features), and the front end then runs packed_matmul for every M: the activations quantized
  // once per call (packed_acts over row ranges: qs, d32 and o32 of a QActs carved for M rounded
  // up to 8, in the table's tile order), the panels shared by the threads (static shares, the
  // rest taken from a counter).
  int64_t pack_rows = 0;
  size_t (*packed_bytes)(DType dtype, int64_t rows, int64_t cols) = nullptr;
  using PackFn = void (*)(const Matrix& w, int64_t p0, int64_t p1, uint8_t* out);
  PackFn pack[static_cast<int>(DType::Count_)] = {};
  void (*packed_acts)(const float* x, int64_t m0, int64_t m1, const struct QActs& a) = nullptr;
  // y[m*ldy + n] for every m and the output features n of panels [p0, p1) (and below w.rows).
  using PackedFn = void (*)(const struct QActs& a, const Matrix& w, int64_t p0, int64_t p1,
                            float* y, int64_t ldy);
  PackedFn packed_matmul[static_cast<int>(DType::Count_)] = {};
  // Fine-activation packed weights (Matrix::fine_acts on the exact int4 repacks of HF GPTQ / AWQ
  // checkpoints: Q4_0, and Q5_0 holding q - zero + 16): pack_fine[dtype](w, nullptr) gives the
  // bytes w packs into (0 where w is not made of int4 groups of 32, 64 or 128 inputs with one
  // scale and zero each), pack_fine[dtype](w, out) packs it. The front end then quantizes the
  // activations once per call, two int8 digits per group (packed_fine_acts with the packed
  // buffer's group size in blocks of 32: both digits in qs, in the table's own layout (64 bytes
  // per block and row in row tiles; the AMX tables' from 16 rows: row-major, digit 1 then digit
  // 2); d32 and o32 per group; qs holds 2 (M + 8) K bytes), and runs packed_fine_matmul over the
  // panels (pack_rows features each) for every M. Tables with the same pack_fine run each
  // other's packed weights.
  using PackFineFn = size_t (*)(const Matrix& w, uint8_t* out);
  PackFineFn pack_fine[static_cast<int>(DType::Count_)] = {};
  void (*packed_fine_acts)(const float* x, int64_t m0, int64_t m1, int group_blocks,
                           const struct QActs& a) = nullptr;
  PackedFn packed_fine_matmul = nullptr;

  // y = x / sqrt(mean(x^2) + eps) * (w + w_offset)        (one row of n)
  void (*rms_norm)(const float* x, const float* w, float w_offset, float eps, float* y,
                   int64_t n) = nullptr;
  // y = (x - mean) / sqrt(var + eps) * w + b              (b may be null)
  void (*layer_norm)(const float* x, const float* w, const float* b, float eps, float* y,
                     int64_t n) = nullptr;
  // In place, numerically stable (max subtracted).
  void (*softmax)(float* x, int64_t n) = nullptr;
  // Elementwise activations y = f(x) (y may alias x).
  void (*silu)(const float* x, float* y, int64_t n) = nullptr;
  void (*gelu)(const float* x, float* y, int64_t n) = nullptr;       // erf form
  void (*gelu_tanh)(const float* x, float* y, int64_t n) = nullptr;  // tanh approximation
  void (*relu)(const float* x, float* y, int64_t n) = nullptr;
  // y = a + b, y = a * b (y may alias a or b).
  void (*add)(const float* a, const float* b, float* y, int64_t n) = nullptr;
  void (*mul)(const float* a, const float* b, float* y, int64_t n) = nullptr;
  // y += s * x
  void (*axpy)(float s, const float* x, float* y, int64_t n) = nullptr;
  // sum_i a[i] * b[i]
  float (*dot)(const float* a, const float* b, int64_t n) = nullptr;
  // Rotary embedding, rotate-half (GPT-NeoX / HF) convention, for one token:
  // x [n_head, head_dim]; the first rot_dim dims of each head rotate by cos/sin [rot_dim/2].
  void (*rope)(float* x, int64_t n_head, int64_t head_dim, int64_t rot_dim, const float* cos,
               const float* sin) = nullptr;
  // Rotary embedding, interleaved-pair (GPT-J / ggml "normal") convention: dims (2i, 2i+1) of
  // the first rot_dim of each head rotate by cos/sin [i]. The same rotation as rope() on rows
  // permuted by llama.cpp's converter (LLaMA GGUF q/k weights), so those run zero-copy.
  void (*rope_interleaved)(float* x, int64_t n_head, int64_t head_dim, int64_t rot_dim,
                           const float* cos, const float* sin) = nullptr;
  // One attention query (AttnQuery); `scores` holds at least hi + 1 floats, out head_dim.
  void (*attn_query)(const AttnQuery& a, float* scores, float* out) = nullptr;
  // A tile of rows (AttnTile); `scratch` holds attn_tile_scratch(rows, head_dim) floats. Null in
  // the scalar reference table, whose attention() stays per query (the oracle).
  void (*attn_tile)(const AttnTile& a, float* scratch) = nullptr;
};

// The table in use (the best for this CPU; OHM_ISA=scalar forces the reference).
const KernelTable& active();
// The scalar reference table.
const KernelTable& reference();
// The table for `isa` when it is compiled in and this CPU supports it, else nullptr (tests,
// benchmarks).
const KernelTable* table_for(Isa isa);
// The CPU features the kernel choice looks at, as /proc/cpuinfo names them, each with "+" (this
// CPU has it) or "-": "+avx2 +fma +f16c -avx512f ... -amx_tile -amx_int8 -amx_bf16". Empty on
// other architectures. `ohm --version` prints it with the table in use.
std::string cpu_features();
// The AVX-512 table with AMX tile GEMMs for batched matmuls (src/kernels/simd_amx.h: AMX-INT8
// for the qgemm block types, AMX-BF16 for f16/bf16 weights; decode stays on VNNI). nullptr unless
// the build has the AMX intrinsics, cpuid reports AMX-TILE, AMX-INT8 and AMX-BF16, the OS saves
// the tile state (XCR0) and grants it to this process (Linux arch_prctl ARCH_REQ_XCOMP_PERM).
// OHM_AMX=1 makes it the active table where it exists. emulated = true gives the same kernels on
// a scalar model of Intel's tile instructions, on any AVX-512 CPU (slow; for tests, and
// OHM_AMX=emulate to run a model through the AMX code paths on a CPU without AMX).
const KernelTable* amx_table(bool emulated = false);
// One line on the AMX path for `ohm --version`: in use, emulated, available but off, or why it is
// not available here.
std::string amx_status();
// Overrides the active table (tests); returns the previous one.
const KernelTable* set_active(const KernelTable* table);
// The table whose matmul rows are bitwise the same at any number of rows M (batch invariance:
// the serving engine's and exact speculative decoding's premise, docs/serving.md): the active
// table, except that the AVX-512 table (whose VNNI qgemm and f32 GEMM at M > 1 sum in another
// order than its M = 1 kernels) gives its batch-invariant variant: the same M = 1 kernels, and at
// M > 1 Q4_0/Q8_0 through the decode kernels' arithmetic with a step's weights shared by up to 4
// activation rows, f32/f16/bf16 and Q4_K/Q6_K through row tiles. Q4_0 weights packed for it
// (pack_weights) run one panel kernel at every M instead.
const KernelTable& batch_invariant_table();

// A weight matrix repacked for one table's packed kernels (KernelTable::pack).
class PackedWeights {
 public:
  PackedWeights(const KernelTable* table, size_t bytes);
  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;
  const KernelTable* table() const { return table_; }
  const uint8_t* data() const { return data_; }
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }

 private:
  const KernelTable* table_;
  uint8_t* data_;  // 64-byte aligned
  size_t size_;
};
// w repacked for the active table, or null where that table packs no weights of w's dtype (with
// fine activations: pack_fine, where w is made of int4 groups), or w is packed already. The caller
// keeps the result alive and points w at it (attach), as nn::Linear does at load: pack once, then
// every matmul of w at any M runs the table's packed kernel.
std::shared_ptr<const PackedWeights> pack_weights(const Matrix& w);
inline void attach(Matrix& w, const PackedWeights& p) {
  w.packed = p.data();
  w.packed_for = p.table();
}

// ---- op front ends ---------------------------------------------------------------------------

// y [M, N] = x [M, K] @ W^T (+ bias [N]); W is a Matrix [N, K] of any supported dtype.
void matmul(const float* x, int64_t M, int64_t K, const Matrix& w, const float* bias, float* y,
            ThreadPool& pool);

// Row-wise norms over `rows` rows of n.
void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float w_offset, float eps,
              float* y, ThreadPool& pool);
void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps,
                float* y, ThreadPool& pool);

// Row-wise softmax in place over `rows` rows of n.
void softmax(float* x, int64_t rows, int64_t n);

enum class Activation : uint8_t { Silu, Gelu, GeluTanh, Relu };
// Maps HF's ACT2FN names ("silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "relu", ...);
// UnsupportedError for others.
Activation activation_from_name(const std::string& name);
void activate(Activation act, const float* x, float* y, int64_t n);

void add(const float* a, const float* b, float* y, int64_t n);
void mul(const float* a, const float* b, float* y, int64_t n);
void axpy(float s, const float* x, float* y, int64_t n);
float dot(const float* a, const float* b, int64_t n);

// Rotary embedding for n_tok tokens: x [n_tok, n_head, head_dim] (row stride x_stride floats),
// cos/sin [n_tok, rot_dim/2].
void rope(float* x, int64_t n_tok, int64_t x_stride, int64_t n_head, int64_t head_dim,
          int64_t rot_dim, const float* cos, const float* sin);
// The same with interleaved pairs (KernelTable::rope_interleaved).
void rope_interleaved(float* x, int64_t n_tok, int64_t x_stride, int64_t n_head, int64_t head_dim,
                      int64_t rot_dim, const float* cos, const float* sin);

// out[i, :] = table.row(ids[i]) as f32. InvalidArgument for an id outside [0, table.rows).
void embedding(const Matrix& table, const int64_t* ids, int64_t n, float* out);

// Scaled dot-product attention of T queries against S cached keys/values of one sequence.
struct AttentionArgs {
  const float* q = nullptr;  // [T, q_stride]; head h at q + t*q_stride + h*head_dim
  int64_t q_stride = 0;
  const float* k = nullptr;  // [S, kv_stride]; kv head g at k + s*kv_stride + g*head_dim
  const float* v = nullptr;  // [S, kv_stride]
  int64_t kv_stride = 0;
  // Paged K/V instead of k/v: slot j of the sequence lives in page j / page_tokens, at row
  // j % page_tokens of it (each page [page_tokens, kv_stride]); page_tokens is a power of two.
  const float* const* k_pages = nullptr;
  const float* const* v_pages = nullptr;
  int64_t page_tokens = 0;
  const uint8_t* kv_valid = nullptr;  // [S]: 0 = padding (never attended); null = all valid
  const int32_t* kv_pos = nullptr;    // [S] position ids (ALiBi only)
  // The cache's storage type: F32 (k/v or the pages above), or F16 / Q8_0 (contiguous only):
  // row s of k_bytes / v_bytes holds kv_row_bytes bytes, kv head g starting at value g * head_dim
  // (Q8_0: ggml blocks of 32, head_dim a multiple of 32). See kv_row_bytes().
  DType kv_type = DType::F32;
  const uint8_t* k_bytes = nullptr;
  const uint8_t* v_bytes = nullptr;
  int64_t kv_row_bytes = 0;
  float* out = nullptr;  // [T, out_stride]
  int64_t out_stride = 0;
  int64_t T = 0, S = 0;
  int64_t q_start = 0;  // cache index of query 0 (query t may see keys 0..q_start+t)
  int64_t n_head = 0, n_kv_head = 0, head_dim = 0;
  float scale = 1.0f;  // scores = (q.k [+ alibi]) * scale
  int64_t window = 0;  // > 0: query i sees keys j with i - j < window (HF sliding window)
  const float* alibi_slopes = nullptr;  // [n_head] or null
  // > 0: scores = softcap * tanh(scores / softcap) after the scale, before the mask (Gemma 2's
  // attn_logit_softcapping); runs a scalar threaded path (src/kernels/softcap_attention.cpp).
  float softcap = 0.0f;
};
// Bytes of one K or V row of kv_dim values stored as `t` (F32, F16 or Q8_0; InvalidArgument
// naming the type otherwise, or for Q8_0 with kv_dim not a multiple of 32).
int64_t kv_row_bytes(DType t, int64_t kv_dim);
// Stores n values as `t` (one K or V row; F32, F16 or Q8_0 as ggml's quantize_row_q8_0_ref).
void kv_store_row(DType t, const float* src, uint8_t* dst, int64_t n);
// Rows whose keys are all masked produce zeros. Softmax in f32 as HF's eager attention does.
void attention(const AttentionArgs& a, ThreadPool& pool);

// Per-thread scratch of at least n floats (grows, never shrinks; no allocation once warm).
float* thread_scratch(int slot, size_t n);

}  // namespace ohm::kernels
