// Op front ends: argument checks, work splitting over the thread pool, table dispatch.
#include "ohm/kernels/kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "kernels_internal.h"
#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/quant/dequant.h"
#include "ohm/quant/quantize.h"

namespace ohm::kernels {

namespace {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// F16C (CPUID.1:ECX bit 29) straight from cpuid: clang's __builtin_cpu_supports has no "f16c".
bool cpu_has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// AMX-TILE, AMX-INT8 and AMX-BF16 (CPUID.(EAX=7,ECX=0):EDX bits 24, 25, 22).
bool cpu_has_amx() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return (d & (1u << 24)) && (d & (1u << 25)) && (d & (1u << 22));
}
// The OS saves the tile state: OSXSAVE (CPUID.1:ECX bit 27), then XCR0 bits 17 (XTILECFG) and 18
// (XTILEDATA).
bool os_saves_tiles() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;
  unsigned lo = 0, hi = 0;
  __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & (3u << 17)) == (3u << 17);
}
#endif

// Why the AMX table is or is not usable here (empty: usable). Asked once: on Linux the first call
// requests the tile data for this process (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)).
const std::string& amx_blocker() {
  static const std::string why = []() -> std::string {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    // The AVX-512 check first: the AMX tables are built with AVX-512 flags.
    if (!table_for(Isa::Avx512)) return "not on this CPU (no AVX-512 table)";
    if (!avx512_amx_table(false)) return "not built (the compiler has no AMX intrinsics)";
    if (!cpu_has_amx()) return "not on this CPU (cpuid: no amx_tile/amx_int8/amx_bf16)";
    if (!os_saves_tiles()) return "not enabled by the OS (XCR0 lacks the tile state)";
#if defined(__linux__)
    constexpr long kReqXcompPerm = 0x1023, kXtiledata = 18;
    if (syscall(SYS_arch_prctl, kReqXcompPerm, kXtiledata) != 0)
      return "the kernel refused the tile state (arch_prctl ARCH_REQ_XCOMP_PERM)";
#endif
    return "";
#else
    return "not on this architecture";
#endif
  }();
  return why;
}

const KernelTable* pick_best() {
  // SIMD tables plug in here, best first, each behind its cpuid check. OHM_ISA=scalar forces
  // the reference (to compare end-to-end results with the fast paths off).
  // OHM_ISA=avx2 caps the choice at AVX2. OHM_ISA=invariant picks the best batch-invariant
  // table (batch_invariant_table(); on AVX-512 CPUs the invariant AVX-512 one), to measure it.
  const char* e = std::getenv("OHM_ISA");
  const std::string want = e ? e : "";
  if (want == "scalar") return &reference();
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (want != "avx2" && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
      __builtin_cpu_supports("fma") && cpu_has_f16c())
    if (const KernelTable* t = avx512_table()) {
      if (want == "invariant") return avx512_invariant_table();
      // OHM_AMX=1: the AMX tile GEMMs where this CPU and OS have them (off by default until
      // the kernel tests have passed on an AMX machine); OHM_AMX=emulate: the same kernels on
      // the scalar tile model (slow).
      const char* amx = std::getenv("OHM_AMX");
      const std::string a = amx ? amx : "";
      if (a == "1" && amx_blocker().empty()) return avx512_amx_table(false);
      if (a == "emulate") return avx512_amx_table(true);
      return t;
    }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
    if (const KernelTable* t = avx2_table()) return t;
#endif
  return &reference();
}

std::atomic<const KernelTable*>& active_ptr() {
  static std::atomic<const KernelTable*> p{pick_best()};
  return p;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

const KernelTable* table_for(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return &reference();
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    case Isa::Avx2:
      __builtin_cpu_init();
      if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        return avx2_table();
      return nullptr;
    case Isa::Avx512:
      __builtin_cpu_init();
      if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
          __builtin_cpu_supports("fma") && cpu_has_f16c())
        return avx512_table();
      return nullptr;
#else
    default:
      return nullptr;
#endif
  }
  return nullptr;
}

std::string cpu_features() {
  std::string r;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool l1 = __get_cpuid(1, &a, &b, &c, &d) != 0;
  const unsigned c1 = l1 ? c : 0;
  unsigned c7 = 0, d7 = 0, a71 = 0;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    c7 = c;
    d7 = d;
    __cpuid_count(7, 1, a, b, c, d);
    a71 = a;
  }
  // CPUID bits (Intel SDM vol. 2A, table 3-8 and leaf 07H). The OS must also enable the AVX and
  // AVX-512 state (XGETBV); __builtin_cpu_supports checks that for the ones the kernels use.
  __builtin_cpu_init();
  const std::pair<const char*, bool> f[] = {
      {"avx2", __builtin_cpu_supports("avx2") != 0},
      {"fma", __builtin_cpu_supports("fma") != 0},
      {"f16c", (c1 & (1u << 29)) != 0},
      {"avx512f", __builtin_cpu_supports("avx512f") != 0},
      {"avx512bw", __builtin_cpu_supports("avx512bw") != 0},
      {"avx512vl", __builtin_cpu_supports("avx512vl") != 0},
      {"avx512_vnni", (c7 & (1u << 11)) != 0},
      {"avx512_bf16", (a71 & (1u << 5)) != 0},
      {"avx_vnni", (a71 & (1u << 4)) != 0},
      {"amx_bf16", (d7 & (1u << 22)) != 0},
      {"amx_tile", (d7 & (1u << 24)) != 0},
      {"amx_int8", (d7 & (1u << 25)) != 0},
  };
  for (const auto& [name, on] : f) {
    if (!r.empty()) r += ' ';
    r += on ? '+' : '-';
    r += name;
  }
#endif
  return r;
}

const KernelTable* amx_table(bool emulated) {
  if (!table_for(Isa::Avx512)) return nullptr;
  if (emulated) return avx512_amx_table(true);
  return amx_blocker().empty() ? avx512_amx_table(false) : nullptr;
}

std::string amx_status() {
  const KernelTable& a = active();
  if (a.tiles && std::string(a.tiles) == "amx")
    return "amx: in use (AMX-INT8 block-quant GEMM, AMX-BF16 f16/bf16 GEMM at M > 1)";
  if (a.tiles) return "amx: emulated (OHM_AMX=emulate: the AMX kernels on a scalar tile model)";
  const std::string& why = amx_blocker();
  if (why.empty()) return "amx: available, off (OHM_AMX=1 turns it on)";
  return "amx: " + why;
}

const KernelTable& active() {
  return *active_ptr().load(std::memory_order_relaxed);
}

const KernelTable* set_active(const KernelTable* table) {
  return active_ptr().exchange(table ? table : &reference());
}

const KernelTable& batch_invariant_table() {
  const KernelTable& a = active();
  if (&a == avx512_table() || a.tiles) return *avx512_invariant_table();
  return a;
}

PackedWeights::PackedWeights(const KernelTable* table, size_t bytes)
    : table_(table),
      data_(static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64))),
      size_(bytes) {
  if (!data_) throw std::bad_alloc();
}

PackedWeights::~PackedWeights() {
  std::free(data_);
}

std::shared_ptr<const PackedWeights> pack_weights(const Matrix& w) {
  const KernelTable& kt = active();
  const auto d = static_cast<int>(w.dtype);
  if (w.packed || w.cols <= 0 || w.cols % 32 != 0 || w.rows <= 0 || kt.pack_rows <= 0)
    return nullptr;
  if (w.fine_acts) {
    if (!kt.pack_fine[d] || !kt.packed_fine_acts || !kt.packed_fine_matmul) return nullptr;
    const size_t bytes = kt.pack_fine[d](w, nullptr);
    if (!bytes) return nullptr;
    auto p = std::make_shared<PackedWeights>(&kt, bytes);
    kt.pack_fine[d](w, p->data());
    return p;
  }
  if (!kt.pack[d] || !kt.packed_matmul[d] || !kt.packed_bytes) return nullptr;
  auto p = std::make_shared<PackedWeights>(&kt, kt.packed_bytes(w.dtype, w.rows, w.cols));
  kt.pack[d](w, 0, (w.rows + kt.pack_rows - 1) / kt.pack_rows, p->data());
  return p;
}

float* thread_scratch(int slot, size_t n) {
  thread_local std::vector<float> bufs[8];
  OHM_ASSERT(slot >= 0 && slot < 8, "scratch slot out of range");
  auto& b = bufs[slot];
  if (b.size() < n) b.resize(std::max(n, b.size() * 2));
  return b.data();
}

RowQueue*& row_queue() {
  thread_local RowQueue* q = nullptr;
  return q;
}

Matrix matrix_view(const Tensor& t) {
  if (!t.defined() || t.ndim() != 2 || !t.is_contiguous())
    throw InvalidArgument(ErrorContext().op("matrix_view").shape("w", t.shape()),
                          "expected a defined contiguous 2-D tensor");
  Matrix m;
  m.dtype = t.dtype();
  m.data = static_cast<const uint8_t*>(t.raw());
  m.rows = t.dim(0);
  m.cols = t.dim(1);
  const auto rb = row_bytes(t.dtype(), static_cast<uint64_t>(m.cols));
  if (!rb)
    throw ShapeError(
        ErrorContext().op("matrix_view").shape("w", t.shape()),
        "row length is not a multiple of the " + std::string(name(t.dtype())) + " block size");
  m.row_bytes = static_cast<size_t>(*rb);
  return m;
}

size_t qacts_floats(int64_t M, int64_t K) {
  const auto mk = static_cast<size_t>(M * K);
  return (mk + 3) / 4 + 4 * (mk / 32) + mk / 16 + 16;
}

QActs qacts_in(float* buf, int64_t M, int64_t K) {
  const auto mk = static_cast<size_t>(M * K);
  QActs a;
  a.M = M;
  a.K = K;
  a.d32 = buf;
  a.sd32 = a.d32 + mk / 32;
  a.sd16 = a.sd32 + mk / 32;
  a.o32 = reinterpret_cast<int32_t*>(a.sd16 + mk / 16);
  a.qs = reinterpret_cast<int8_t*>(a.o32 + mk / 32);
  return a;
}

void act_residual32(const float* x, int64_t n, float* r) {
  for (int64_t b = 0; b + 32 <= n; b += 32) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b + i]));
    const float d = amax / 127.0f;
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int i = 0; i < 32; ++i) {
      const float q = std::nearbyint(x[b + i] * id);  // the kernels' cvtps: round half to even
      r[b + i] = x[b + i] - d * q;
    }
  }
}

namespace {
void matmul_impl(const float* x, int64_t M, int64_t K, const Matrix& w, const float* bias, float* y,
                 ThreadPool& pool, bool fine = false);

// Whether `kt` runs `dtype` on int8 activations in blocks of 32 (Matrix::fine_acts): the SIMD
// Q4_0 / Q8_0 entries; the reference table dequantizes the weights instead.
bool quantizes_acts32(const KernelTable& kt, DType dtype) {
  if (dtype != DType::Q4_0 && dtype != DType::Q8_0) return false;
  const int d = static_cast<int>(dtype);
  return kt.qgemm[d] || (kt.matmul[d] && kt.matmul[d] != reference().matmul[d]);
}
}  // namespace

namespace {
// The packed path (Matrix::packed; KernelTable::packed_matmul): the activations quantized once,
// then panels in equal static shares for three quarters, the rest taken from a counter (the
// cores of a shared machine do not run at one speed; as the decode row queue).
void matmul_packed(const KernelTable& kt, const float* x, int64_t M, int64_t K, const Matrix& w,
                   const float* bias, float* y, ThreadPool& pool) {
  thread_local std::vector<float> abuf;
  thread_local std::vector<int8_t> qbuf;
  QActs a;
  KernelTable::PackedFn fn;
  const auto prepare = [&](const auto& quantize) {
    if (M * K >= 16384 && pool.size() > 1)
      pool.parallel_for(M, std::max<int64_t>(1, 8192 / K),
                        [&](int64_t m0, int64_t m1) { quantize(m0, m1); });
    else
      quantize(0, M);
  };
  if (w.fine_acts) {
    // Two int8 digits per group (KernelTable::pack_fine): the group size, in blocks of 32, is the
    // packed buffer's first int32.
    int32_t G;
    std::memcpy(&G, w.packed, 4);
    const auto mk = static_cast<size_t>(M * K), groups = mk / (32 * static_cast<size_t>(G));
    const auto tiled = static_cast<size_t>((M + 8) * K);  // whole row tiles (of up to 8 rows)
    if (qbuf.size() < 2 * tiled) qbuf.resize(2 * tiled);
    if (abuf.size() < 2 * groups) abuf.resize(2 * groups);
    a.M = M;
    a.K = K;
    a.qs = qbuf.data();
    a.d32 = abuf.data();
    a.o32 = reinterpret_cast<int32_t*>(abuf.data() + groups);
    prepare([&](int64_t m0, int64_t m1) { kt.packed_fine_acts(x, m0, m1, G, a); });
    fn = kt.packed_fine_matmul;
  } else {
    const int64_t Mt = (M + 7) / 8 * 8;  // whole row tiles (packed_acts' layout)
    const size_t need = qacts_floats(Mt, K);
    if (abuf.size() < need) abuf.resize(need);
    a = qacts_in(abuf.data(), Mt, K);
    a.M = M;
    prepare([&](int64_t m0, int64_t m1) { kt.packed_acts(x, m0, m1, a); });
    fn = kt.packed_matmul[static_cast<int>(w.dtype)];
  }
  const int64_t N = w.rows, R = kt.pack_rows, P = (N + R - 1) / R;
  const int T = pool.size();
  const int64_t share = P * 3 / 4 / T, chunk = std::max<int64_t>(1, (P - share * T) / (4 * T));
  std::atomic<int64_t> next{share * T};
  const auto panels = [&](int64_t p0, int64_t p1) {
    fn(a, w, p0, p1, y, N);
    if (bias)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = p0 * R; n < std::min(N, p1 * R); ++n) y[m * N + n] += bias[n];
  };
  pool.run([&](int t, int) {
    if (share > 0) panels(t * share, (t + 1) * share);
    for (;;) {
      const int64_t p0 = next.fetch_add(chunk, std::memory_order_relaxed);
      if (p0 >= P) break;
      panels(p0, std::min(P, p0 + chunk));
    }
  });
}
}  // namespace

void matmul(const float* x, int64_t M, int64_t K, const Matrix& w, const float* bias, float* y,
            ThreadPool& pool) {
  if (w.cols != K)
    throw ShapeError(ErrorContext().op("matmul").shape("x", {M, K}).shape("w", {w.rows, w.cols}),
                     "inner dimensions differ");
  // Packed weights run where they were packed for the active table, and fine-activation ones
  // on any table with the same fine-activation panel layout (the AVX-512 table, its
  // batch-invariant variant and the AMX tables).
  if (w.packed && K % 32 == 0 &&
      (w.packed_for == &active() || (w.fine_acts && active().packed_fine_matmul &&
                                     active().pack_fine[static_cast<int>(w.dtype)] ==
                                         w.packed_for->pack_fine[static_cast<int>(w.dtype)])))
    return matmul_packed(active(), x, M, K, w, bias, y, pool);
  if (!w.data)
    throw InvalidArgument(ErrorContext().op("matmul").shape("w", {w.rows, w.cols}),
                          "the weight is held only in another kernel table's packed layout "
                          "(select the kernel table before loading the model)");
  // OHM_FINE_FUSED=0 keeps the two-pass path where a table has the fused one (A/B measurements).
  static const bool fused = [] {
    const char* e = std::getenv("OHM_FINE_FUSED");
    return !(e && std::string(e) == "0");
  }();
  if (w.fine_acts && K % 32 == 0 && fused && active().matmul_fine[static_cast<int>(w.dtype)])
    return matmul_impl(x, M, K, w, bias, y, pool, true);  // one fused pass
  if (w.fine_acts && K % 32 == 0 && quantizes_acts32(active(), w.dtype)) {
    // y = W (d q) + W (x - d q): the second product carries the first one's activation
    // rounding, itself rounded 127 times finer (Matrix::fine_acts).
    const int64_t N = w.rows;
    thread_local std::vector<float> rbuf, ybuf;
    if (rbuf.size() < static_cast<size_t>(M * K)) rbuf.resize(static_cast<size_t>(M * K));
    if (ybuf.size() < static_cast<size_t>(M * N)) ybuf.resize(static_cast<size_t>(M * N));
    float* r = rbuf.data();
    pool.parallel_for(M, 1, [&](int64_t m0, int64_t m1) {
      act_residual32(x + m0 * K, (m1 - m0) * K, r + m0 * K);
    });
    matmul_impl(x, M, K, w, bias, y, pool);
    matmul_impl(r, M, K, w, nullptr, ybuf.data(), pool);
    const float* y2 = ybuf.data();
    pool.parallel_for(M * N, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) y[i] += y2[i];
    });
    return;
  }
  matmul_impl(x, M, K, w, bias, y, pool);
}

namespace {
void matmul_impl(const float* x, int64_t M, int64_t K, const Matrix& w, const float* bias, float* y,
                 ThreadPool& pool, bool fine) {
  const KernelTable& kt = active();
  const int64_t N = w.rows;
  if (const auto qg = kt.qgemm[static_cast<int>(w.dtype)];
      !fine && qg && kt.qacts_prepare && M >= kt.qgemm_min_rows && K % 32 == 0) {
    // Quantize the activations once (rows split over the threads), then split the output
    // features in 32-wide panels.
    thread_local std::vector<float> abuf;
    const size_t need = qacts_floats(M, K);
    if (abuf.size() < need) abuf.resize(need);
    const QActs a = qacts_in(abuf.data(), M, K);
    pool.parallel_for(M, std::max<int64_t>(1, 8192 / K),
                      [&](int64_t m0, int64_t m1) { kt.qacts_prepare(x, m0, m1, a); });
    const int64_t panels = (N + 31) / 32;
    pool.parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
      const int64_t n0 = p0 * 32, n1 = std::min(N, p1 * 32);
      qg(a, w, n0, n1, y, N);
      if (bias)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = n0; n < n1; ++n) y[m * N + n] += bias[n];
    });
    return;
  }
  auto fn = fine ? kt.matmul_fine[static_cast<int>(w.dtype)] : kt.matmul[static_cast<int>(w.dtype)];
  if (!fn) fn = reference().matmul[static_cast<int>(w.dtype)];
  if (!fn)
    throw DTypeError(ErrorContext().op("matmul"),
                     "no matmul kernel for weight dtype " + std::string(name(w.dtype)));
  // Split over output features: each thread streams its own slice of the weights once.
  const int64_t work_per_row = std::max<int64_t>(1, M * K);
  const int64_t grain = std::max<int64_t>(1, 32768 / work_per_row);
  const int T = pool.size();
  if (M == 1 && T > 1 && kt.matvec_row_queue[static_cast<int>(w.dtype)] && N >= 8 * grain * T) {
    // Decode: three quarters of the rows in equal static shares, the rest in a shared queue.
    const int64_t share = N * 3 / 4 / T;
    RowQueue q;
    q.next = share * T;
    q.end = N;
    q.chunk = std::max<int64_t>(grain, (N - q.next) / (4 * T));
    pool.run([&](int t, int) {
      struct Install {
        explicit Install(RowQueue* p) { row_queue() = p; }
        ~Install() { row_queue() = nullptr; }
      } install(&q);
      fn(x, 1, K, w, t * share, (t + 1) * share, y, N, thread_scratch(0, static_cast<size_t>(K)));
    });
    if (bias)
      for (int64_t n = 0; n < N; ++n) y[n] += bias[n];
    return;
  }
  pool.parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    float* scratch = thread_scratch(0, static_cast<size_t>(K));
    fn(x, M, K, w, n0, n1, y, N, scratch);
    if (bias)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = n0; n < n1; ++n) y[m * N + n] += bias[n];
  });
}
}  // namespace

void rms_norm(const float* x, int64_t rows, int64_t n, const float* w, float w_offset, float eps,
              float* y, ThreadPool& pool) {
  const auto fn = active().rms_norm;
  pool.parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n)),
                    [&](int64_t r0, int64_t r1) {
                      for (int64_t r = r0; r < r1; ++r)
                        fn(x + r * n, w, w_offset, eps, y + r * n, n);
                    });
}

void layer_norm(const float* x, int64_t rows, int64_t n, const float* w, const float* b, float eps,
                float* y, ThreadPool& pool) {
  const auto fn = active().layer_norm;
  pool.parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n)),
                    [&](int64_t r0, int64_t r1) {
                      for (int64_t r = r0; r < r1; ++r) fn(x + r * n, w, b, eps, y + r * n, n);
                    });
}

void softmax(float* x, int64_t rows, int64_t n) {
  const auto fn = active().softmax;
  for (int64_t r = 0; r < rows; ++r) fn(x + r * n, n);
}

Activation activation_from_name(const std::string& s) {
  if (s == "silu" || s == "swish") return Activation::Silu;
  if (s == "gelu") return Activation::Gelu;
  if (s == "gelu_new" || s == "gelu_pytorch_tanh" || s == "gelu_fast" || s == "gelu_tanh")
    return Activation::GeluTanh;
  if (s == "relu") return Activation::Relu;
  throw UnsupportedError(ErrorContext().key("hidden_act"), "unsupported activation '" + s + "'");
}

void activate(Activation act, const float* x, float* y, int64_t n) {
  const KernelTable& kt = active();
  switch (act) {
    case Activation::Silu:
      kt.silu(x, y, n);
      return;
    case Activation::Gelu:
      kt.gelu(x, y, n);
      return;
    case Activation::GeluTanh:
      kt.gelu_tanh(x, y, n);
      return;
    case Activation::Relu:
      kt.relu(x, y, n);
      return;
  }
}

void add(const float* a, const float* b, float* y, int64_t n) {
  active().add(a, b, y, n);
}
void mul(const float* a, const float* b, float* y, int64_t n) {
  active().mul(a, b, y, n);
}
void axpy(float s, const float* x, float* y, int64_t n) {
  active().axpy(s, x, y, n);
}
float dot(const float* a, const float* b, int64_t n) {
  return active().dot(a, b, n);
}

void rope(float* x, int64_t n_tok, int64_t x_stride, int64_t n_head, int64_t head_dim,
          int64_t rot_dim, const float* cos, const float* sin) {
  if (rot_dim > head_dim || rot_dim % 2 != 0)
    throw InvalidArgument(ErrorContext().op("rope"), "rot_dim must be even and <= head_dim");
  const auto fn = active().rope;
  const int64_t half = rot_dim / 2;
  for (int64_t t = 0; t < n_tok; ++t)
    fn(x + t * x_stride, n_head, head_dim, rot_dim, cos + t * half, sin + t * half);
}

void rope_interleaved(float* x, int64_t n_tok, int64_t x_stride, int64_t n_head, int64_t head_dim,
                      int64_t rot_dim, const float* cos, const float* sin) {
  if (rot_dim > head_dim || rot_dim % 2 != 0)
    throw InvalidArgument(ErrorContext().op("rope_interleaved"),
                          "rot_dim must be even and <= head_dim");
  const auto fn = active().rope_interleaved;
  const int64_t half = rot_dim / 2;
  for (int64_t t = 0; t < n_tok; ++t)
    fn(x + t * x_stride, n_head, head_dim, rot_dim, cos + t * half, sin + t * half);
}

void embedding(const Matrix& table, const int64_t* ids, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= table.rows)
      throw InvalidArgument(ErrorContext().op("embedding"), "token id " + std::to_string(ids[i]) +
                                                                " outside [0, " +
                                                                std::to_string(table.rows) + ")");
    float* o = out + i * table.cols;
    const uint8_t* src = table.row(ids[i]);
    if (table.dtype == DType::F32)
      std::memcpy(o, src, static_cast<size_t>(table.cols) * 4);
    else
      quant::dequantize_row(table.dtype, src, o, table.cols);
  }
}

size_t attn_tile_scratch(int64_t rows, int64_t head_dim) {
  const int64_t hdp = (head_dim + 15) / 16 * 16;  // the widest table's padding
  return static_cast<size_t>(2 * hdp * kAttnBlock + rows * kAttnBlock + 2 * rows * hdp + 2 * rows +
                             hdp);
}

int64_t kv_row_bytes(DType t, int64_t kv_dim) {
  switch (t) {
    case DType::F32:
      return kv_dim * 4;
    case DType::F16:
      return kv_dim * 2;
    case DType::Q8_0:
      if (kv_dim % 32 != 0)
        throw InvalidArgument(ErrorContext().op("kv cache"),
                              "a q8_0 KV cache needs head_dim * n_kv_head to be a multiple of 32 "
                              "(got " +
                                  std::to_string(kv_dim) + ")");
      return kv_dim / 32 * 34;
    default:
      throw InvalidArgument(ErrorContext().op("kv cache"),
                            "KV cache type must be f32, f16 or q8_0, not " + std::string(name(t)));
  }
}

void kv_store_row(DType t, const float* src, uint8_t* dst, int64_t n) {
  if (t == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
  } else if (t == DType::F16) {
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = f32_to_f16(src[i]);
      std::memcpy(dst + 2 * i, &h, 2);
    }
  } else {
    (void)kv_row_bytes(t, n);  // checks the type and n
    quant::quantize_row(t, src, dst, n);
  }
}

namespace {

// The cache layout every attention kernel reads (strides, pages, valid and position maps),
// without the per-head pointers and the query.
AttnQuery kv_layout(const AttentionArgs& a) {
  AttnQuery kv;
  kv.kv_stride = a.kv_stride;
  kv.k_pages = a.k_pages;
  kv.v_pages = a.v_pages;
  if (a.k_pages) {
    kv.page_shift = std::countr_zero(static_cast<uint64_t>(a.page_tokens));
    kv.page_mask = a.page_tokens - 1;
  }
  kv.head_dim = a.head_dim;
  kv.kv_valid = a.kv_valid;
  kv.kv_pos = a.kv_pos;
  return kv;
}

// The exact merge of split softmaxes for one row: out = sum_s o_s l_s e^(m_s - M) / L over the
// splits with a visible key (M = max_s m_s, L = sum_s l_s e^(m_s - M)); zeros if none. Split s
// of the row is at m[s * m_stride], l[s * m_stride], o + s * o_stride. Every caller runs the same
// arithmetic, so a row's result depends on its partials alone.
void merge_splits(int64_t nsplit, const float* m, const float* l, const float* o, int64_t m_stride,
                  int64_t o_stride, int64_t hd, float* out) {
  float M = -std::numeric_limits<float>::infinity();
  for (int64_t sp = 0; sp < nsplit; ++sp) M = std::max(M, m[sp * m_stride]);
  std::fill(out, out + hd, 0.0f);
  if (M == -std::numeric_limits<float>::infinity()) return;
  double L = 0;
  for (int64_t sp = 0; sp < nsplit; ++sp) {
    const float ms = m[sp * m_stride];
    if (ms != -std::numeric_limits<float>::infinity())
      L += l[sp * m_stride] * std::exp(static_cast<double>(ms) - M);
  }
  for (int64_t sp = 0; sp < nsplit; ++sp) {
    const float ms = m[sp * m_stride];
    if (ms == -std::numeric_limits<float>::infinity()) continue;
    const float wgt =
        static_cast<float>(l[sp * m_stride] * std::exp(static_cast<double>(ms) - M) / L);
    const float* os = o + sp * o_stride;
    for (int64_t d = 0; d < hd; ++d) out[d] += wgt * os[d];
  }
}

// Keys per KV split: the splits of a row are the fixed ranges [s * kAttnSplit, (s + 1) *
// kAttnSplit) of the cache, whatever the call.
constexpr int64_t kAttnSplit = 512;

// The tiled path of attention(): one work item = (KV head, tile of queries[, KV split]). A tile
// holds the queries of Tq consecutive tokens for every head of the KV head's group (rows
// token-major), about 64 rows, so each K/V block is packed once for all of them. A cache longer
// than kAttnSplit keys is attended in splits at fixed key boundaries whose partial softmaxes
// merge exactly (merge_splits): a row's result then depends on its own keys only, not on how
// many queries share the call or how long the cache is past its last key, so a one-token decode
// step, a several-token forward (speculative verification) and a prompt chunk round the same.
// One query tile (decode): the splits are work items of their own (parallel over a long cache);
// several: each item runs its splits in turn. Items are taken from an atomic counter, heaviest
// (latest query tiles) first.
void tiled_attention(const AttentionArgs& a, ThreadPool& pool, const KernelTable& kt) {
  const int64_t group = a.n_head / a.n_kv_head, hd = a.head_dim;
  const int64_t Tq = std::clamp<int64_t>((64 + group - 1) / group, 1, a.T);
  const int64_t n_qt = (a.T + Tq - 1) / Tq;
  const int64_t threads = std::max(1, pool.size());
  const int64_t nsplit = std::max<int64_t>(1, (a.S + kAttnSplit - 1) / kAttnSplit);
  const bool split_items = nsplit > 1 && n_qt == 1;  // decode: splits are work items
  const int64_t item_splits = split_items ? nsplit : 1;
  const int64_t R = group * Tq;
  const int64_t n_items = n_qt * a.n_kv_head * item_splits;
  // Split partials of split items: [item][R][hd] outputs, [item][R] m and l.
  std::vector<float> part_o, part_m, part_l;
  if (split_items) {
    part_o.resize(static_cast<size_t>(n_items * R * hd));
    part_m.resize(static_cast<size_t>(n_items * R));
    part_l.resize(static_cast<size_t>(n_items * R));
  }
  AttnQuery kv = kv_layout(a);
  kv.kv_type = a.kv_type;
  kv.kb = a.k_bytes;
  kv.vb = a.v_bytes;
  kv.row_bytes = a.kv_row_bytes;
  // Bytes of one KV head's values within a row.
  const int64_t head_bytes = a.kv_type == DType::F32   ? 0
                             : a.kv_type == DType::F16 ? hd * 2
                                                       : hd / 32 * 34;
  std::atomic<int64_t> next{0};
  pool.parallel_for(threads, 1, [&](int64_t, int64_t) {
    thread_local std::vector<float> qbuf, obuf, mbuf, lbuf, slopes;
    thread_local std::vector<int64_t> lo, hi;
    qbuf.resize(static_cast<size_t>(R * hd));
    const int64_t local_splits = split_items ? 1 : nsplit;  // partials this thread keeps
    obuf.resize(static_cast<size_t>(local_splits * R * hd));
    mbuf.resize(static_cast<size_t>(local_splits * R));
    lbuf.resize(static_cast<size_t>(local_splits * R));
    slopes.resize(static_cast<size_t>(R));
    lo.resize(static_cast<size_t>(R));
    hi.resize(static_cast<size_t>(R));
    float* scratch = thread_scratch(1, attn_tile_scratch(R, hd));
    for (int64_t w; (w = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) {
      const int64_t qt = n_qt - 1 - w / (a.n_kv_head * item_splits);
      const int64_t g = (w / item_splits) % a.n_kv_head;
      const int64_t t0 = qt * Tq, t1 = std::min(a.T, t0 + Tq);
      const int64_t rows = (t1 - t0) * group;
      int64_t lo_min = a.S, hi_max = -1;
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t hh = 0; hh < group; ++hh) {
          const int64_t r = (t - t0) * group + hh, h = g * group + hh, i = a.q_start + t;
          std::memcpy(qbuf.data() + r * hd, a.q + t * a.q_stride + h * hd,
                      static_cast<size_t>(hd) * sizeof(float));
          lo[r] = a.window > 0 ? std::max<int64_t>(0, i - a.window + 1) : 0;
          hi[r] = i;
          lo_min = std::min(lo_min, lo[r]);
          hi_max = std::max(hi_max, hi[r]);
          if (a.alibi_slopes) slopes[r] = a.alibi_slopes[h];
        }
      AttnTile at;
      at.rows = rows;
      at.head_dim = hd;
      at.q = qbuf.data();
      at.lo = lo.data();
      at.hi = hi.data();
      at.slope = a.alibi_slopes ? slopes.data() : nullptr;
      at.scale = a.scale;
      at.kv = kv;
      if (a.kv_type != DType::F32) {
        at.kv.byte_offset = g * head_bytes;
      } else if (a.k_pages) {
        at.kv.kv_offset = g * hd;
      } else {
        at.kv.k = a.k + g * hd;
        at.kv.v = a.v + g * hd;
      }
      if (split_items) {
        const int64_t sp = w % nsplit;
        at.j0 = sp * kAttnSplit;
        at.j1 = std::min(a.S, at.j0 + kAttnSplit);
        at.o = part_o.data() + w * R * hd;
        at.m = part_m.data() + w * R;
        at.l = part_l.data() + w * R;
        kt.attn_tile(at, scratch);
        continue;
      }
      // Each split of the tile in turn; a split no row sees (past the tile's last key, before
      // its window) has no visible key: m = -inf, skipped by the merge, so it is not run.
      for (int64_t sp = 0; sp < nsplit; ++sp) {
        at.j0 = sp * kAttnSplit;
        at.j1 = nsplit == 1 ? a.S : std::min(a.S, at.j0 + kAttnSplit);
        at.o = obuf.data() + sp * R * hd;
        at.m = mbuf.data() + sp * R;
        at.l = lbuf.data() + sp * R;
        if (nsplit > 1 && (at.j0 > hi_max || at.j1 <= lo_min)) {
          std::fill(at.m, at.m + R, -std::numeric_limits<float>::infinity());
          continue;
        }
        kt.attn_tile(at, scratch);
      }
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t hh = 0; hh < group; ++hh) {
          const int64_t r = (t - t0) * group + hh;
          float* out = a.out + t * a.out_stride + (g * group + hh) * hd;
          if (nsplit == 1)
            std::memcpy(out, obuf.data() + r * hd, static_cast<size_t>(hd) * sizeof(float));
          else
            merge_splits(nsplit, mbuf.data() + r, lbuf.data() + r, obuf.data() + r * hd, R, R * hd,
                         hd, out);
        }
    }
  });
  if (!split_items) return;
  // Merge the split items (one query tile: qt = 0, items g * nsplit + sp).
  for (int64_t g = 0; g < a.n_kv_head; ++g) {
    const int64_t base = g * nsplit;
    for (int64_t r = 0; r < a.T * group; ++r) {
      const int64_t t = r / group, h = g * group + r % group;
      merge_splits(nsplit, part_m.data() + base * R + r, part_l.data() + base * R + r,
                   part_o.data() + (base * R + r) * hd, R, R * hd, hd,
                   a.out + t * a.out_stride + h * hd);
    }
  }
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.n_kv_head <= 0 || a.n_head % a.n_kv_head != 0)
    throw InvalidArgument(ErrorContext().op("attention"), "n_kv_head must divide n_head");
  if (a.q_start + a.T > a.S)
    throw InvalidArgument(ErrorContext().op("attention"), "queries past the end of the cache");
  if (a.k_pages && (a.page_tokens <= 0 || (a.page_tokens & (a.page_tokens - 1)) != 0))
    throw InvalidArgument(ErrorContext().op("attention"), "page_tokens must be a power of two");
  const KernelTable& kt = active();
  const int64_t group = a.n_head / a.n_kv_head;
  const int64_t hd = a.head_dim;
  // OHM_ATTN_TILES=0 keeps the one-query kernel (A/B measurements).
  static const bool tiles = [] {
    const char* e = std::getenv("OHM_ATTN_TILES");
    return !(e && std::string(e) == "0");
  }();
  if (a.kv_type != DType::F32) {
    if (a.k_pages || !a.k_bytes || !a.v_bytes)
      throw InvalidArgument(ErrorContext().op("attention"),
                            "a typed KV cache is contiguous (k_bytes, v_bytes; no pages)");
    if (a.kv_type == DType::Q8_0 && hd % 32 != 0)
      throw InvalidArgument(
          ErrorContext().op("attention"),
          "a q8_0 KV cache needs head_dim to be a multiple of 32 (got " + std::to_string(hd) + ")");
    if (a.kv_row_bytes < kv_row_bytes(a.kv_type, a.n_kv_head * hd))
      throw InvalidArgument(ErrorContext().op("attention"), "kv_row_bytes too small");
    if (!(tiles && kt.attn_tile && a.softcap == 0.0f)) {
      // The per-query paths read f32: dequantize the cache (the reference, softcap, A/B runs).
      const int64_t kvd = a.n_kv_head * hd;
      std::vector<float> k32(static_cast<size_t>(a.S * kvd)), v32(k32.size());
      for (int64_t j = 0; j < a.S; ++j) {
        quant::dequantize_row(a.kv_type, a.k_bytes + j * a.kv_row_bytes, k32.data() + j * kvd, kvd);
        quant::dequantize_row(a.kv_type, a.v_bytes + j * a.kv_row_bytes, v32.data() + j * kvd, kvd);
      }
      AttentionArgs f = a;
      f.kv_type = DType::F32;
      f.k = k32.data();
      f.v = v32.data();
      f.kv_stride = kvd;
      f.k_bytes = f.v_bytes = nullptr;
      return attention(f, pool);
    }
    return tiled_attention(a, pool, kt);
  }
  if (a.softcap != 0.0f) return softcap_attention(a, pool);
  // Tiles where they share K/V reads among rows (GQA groups or several queries); a single
  // query of a head without a group takes the one-query kernel. A GQA model takes the tiles
  // for any number of queries, so a token's attention rounds the same in a one-token decode
  // step and in a several-token forward (speculative decoding's verification).
  if (tiles && kt.attn_tile && (group >= 2 || a.T >= 4)) return tiled_attention(a, pool, kt);
  pool.parallel_for(a.T * a.n_head, 1, [&](int64_t w0, int64_t w1) {
    float* scores = thread_scratch(1, static_cast<size_t>(a.S));
    AttnQuery aq = kv_layout(a);
    aq.alibi = a.alibi_slopes != nullptr;
    aq.scale = a.scale;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t t = w / a.n_head, h = w % a.n_head, g = h / group;
      const int64_t i = a.q_start + t;  // cache index of this query
      aq.lo = a.window > 0 ? std::max<int64_t>(0, i - a.window + 1) : 0;
      aq.hi = i;
      aq.q = a.q + t * a.q_stride + h * hd;
      if (a.k_pages) {
        aq.kv_offset = g * hd;
      } else {
        aq.k = a.k + g * hd;
        aq.v = a.v + g * hd;
      }
      aq.alibi_slope = a.alibi_slopes ? a.alibi_slopes[h] : 0.0f;
      kt.attn_query(aq, scores, a.out + t * a.out_stride + h * hd);
    }
  });
}

}  // namespace ohm::kernels
