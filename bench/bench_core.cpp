// Micro-benchmarks of the tensor core and checkpoint I/O: header parsing, dtype conversion and
// dequantization throughput. Run: build/release/bench/bench_core
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "ohm/core/half.h"
#include "ohm/core/tensor.h"
#include "ohm/core/thread_pool.h"
#include "ohm/formats/safetensors.h"
#include "ohm/kernels/kernels.h"
#include "ohm/quant/dequant.h"

using namespace ohm;

static void BM_Bf16ToF32(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor t = Tensor::empty(DType::BF16, {n});
  for (auto _ : state) benchmark::DoNotOptimize(t.to(DType::F32));
  state.SetBytesProcessed(state.iterations() * n * 2);
}
BENCHMARK(BM_Bf16ToF32)->Arg(1 << 20);

static void BM_DequantizeRow(benchmark::State& state) {
  const auto dt = static_cast<DType>(state.range(0));
  const int64_t n = 4096 * 16;
  std::vector<uint8_t> raw(*row_bytes(dt, n));
  std::mt19937 rng(1);
  for (auto& b : raw) b = static_cast<uint8_t>(rng());
  std::vector<float> out(n);
  for (auto _ : state) {
    quant::dequantize_row(dt, raw.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.SetLabel(std::string(name(dt)));
}
BENCHMARK(BM_DequantizeRow)
    ->Arg(static_cast<int>(DType::Q8_0))
    ->Arg(static_cast<int>(DType::Q4_0))
    ->Arg(static_cast<int>(DType::Q4_K))
    ->Arg(static_cast<int>(DType::Q6_K));

static void BM_SafetensorsHeader(benchmark::State& state) {
  // A 300-tensor header, about the size of a 7B model's.
  std::string header = "{";
  uint64_t off = 0;
  for (int i = 0; i < 300; ++i) {
    if (i) header += ",";
    header += "\"model.layers." + std::to_string(i) +
              ".weight\":{\"dtype\":\"BF16\",\"shape\":[64,64],"
              "\"data_offsets\":[" +
              std::to_string(off) + "," + std::to_string(off + 8192) + "]}";
    off += 8192;
  }
  header += "}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  file.resize(file.size() + off);
  for (auto _ : state)
    benchmark::DoNotOptimize(safetensors::parse_header(
        reinterpret_cast<const uint8_t*>(file.data()), file.size(), "bench"));
}
BENCHMARK(BM_SafetensorsHeader);

static void BM_ThreadPoolDispatch(benchmark::State& state) {
  ThreadPool pool(2);
  for (auto _ : state) pool.parallel_for(2, 1, [](int64_t, int64_t) {});
}
BENCHMARK(BM_ThreadPoolDispatch);

// kernels::matmul on the 1.1B attention shape (K = N = 2048), 2 threads (OHM_NUM_THREADS):
// args {dtype, M}.
// Reports GFLOP/s (2*M*K*N per call); M = 1 is decode, M = 512 prompt processing.
static void BM_Matmul(benchmark::State& state) {
  const auto dt = static_cast<DType>(state.range(0));
  const int64_t M = state.range(1), K = 2048, N = 2048;
  const size_t rb = static_cast<size_t>(*row_bytes(dt, K));
  std::vector<uint8_t> w(rb * N);
  std::mt19937 g(1);
  for (auto& b : w) b = static_cast<uint8_t>(g() & 0x3F);  // small finite f16/bf16/scales
  std::vector<float> x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  for (auto& v : x) v = static_cast<float>(g() % 200) / 100.0f - 1.0f;
  const kernels::Matrix m{dt, w.data(), N, K, rb};
  ThreadPool pool(std::getenv("OHM_NUM_THREADS") ? std::atoi(std::getenv("OHM_NUM_THREADS")) : 2);
  for (auto _ : state) kernels::matmul(x.data(), M, K, m, nullptr, y.data(), pool);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * M * K * N, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Matmul)
    ->ArgsProduct({{static_cast<int64_t>(DType::F16), static_cast<int64_t>(DType::Q4_0),
                    static_cast<int64_t>(DType::Q8_0), static_cast<int64_t>(DType::Q4_K)},
                   {1, 2, 4, 16, 32, 512}})
    ->UseRealTime();

// Fine activations (Matrix::fine_acts) on the 1.1B attention shape, 2 threads: args {dtype, M,
// mode}: 0 int8 activations, 1 fine (the table's fused matmul_fine where it has one), 2 fine as
// two passes (matmul_fine cleared: the front end's residual pass). GFLOP/s as BM_Matmul.
static void BM_MatmulFine(benchmark::State& state) {
  const auto dt = static_cast<DType>(state.range(0));
  const int64_t M = state.range(1), mode = state.range(2), K = 2048, N = 2048;
  const size_t rb = static_cast<size_t>(*row_bytes(dt, K));
  std::vector<uint8_t> w(rb * N);
  std::mt19937 g(1);
  for (auto& b : w) b = static_cast<uint8_t>(g() & 0x3F);
  std::vector<float> x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  for (auto& v : x) v = static_cast<float>(g() % 200) / 100.0f - 1.0f;
  kernels::Matrix m{dt, w.data(), N, K, rb};
  m.fine_acts = mode != 0;
  kernels::KernelTable two_pass = kernels::active();
  for (auto& f : two_pass.matmul_fine) f = nullptr;
  const kernels::KernelTable* prev = mode == 2 ? kernels::set_active(&two_pass) : nullptr;
  ThreadPool pool(std::getenv("OHM_NUM_THREADS") ? std::atoi(std::getenv("OHM_NUM_THREADS")) : 2);
  for (auto _ : state) kernels::matmul(x.data(), M, K, m, nullptr, y.data(), pool);
  if (mode == 2) kernels::set_active(prev);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * M * K * N, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_MatmulFine)
    ->ArgsProduct({{static_cast<int64_t>(DType::Q4_0), static_cast<int64_t>(DType::Q8_0)},
                   {1, 64},
                   {0, 1, 2}})
    ->UseRealTime();

// Decode matvec: one Q4_0/Q8_0/Q4_K/Q6_K/F16 matrix with K = 2048 through the front end, M = 1,
// 2 threads (OHM_NUM_THREADS); args {dtype, MiB}. 600 MiB streams from DRAM (larger than the
// last-level cache; compare with bench/stream_triad), 1 MiB runs from cache (the compute rate).
// Reports weight GB/s.
static void BM_MatvecStream(benchmark::State& state) {
  const auto dt = static_cast<DType>(state.range(0));
  const int64_t K = 2048;
  const size_t rb = static_cast<size_t>(*row_bytes(dt, K));
  const int64_t N = static_cast<int64_t>((static_cast<size_t>(state.range(1)) << 20) / rb);
  std::vector<uint8_t> w(rb * N);
  std::mt19937 g(1);
  for (size_t i = 0; i < w.size(); i += 64) w[i] = static_cast<uint8_t>(g() & 0x3F);
  std::vector<float> x(K), y(static_cast<size_t>(N));
  for (auto& v : x) v = static_cast<float>(g() % 200) / 100.0f - 1.0f;
  const kernels::Matrix m{dt, w.data(), N, K, rb};
  ThreadPool pool(std::getenv("OHM_NUM_THREADS") ? std::atoi(std::getenv("OHM_NUM_THREADS")) : 2);
  for (auto _ : state) kernels::matmul(x.data(), 1, K, m, nullptr, y.data(), pool);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.size()),
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_MatvecStream)
    ->ArgsProduct({{static_cast<int64_t>(DType::Q4_0), static_cast<int64_t>(DType::Q8_0),
                    static_cast<int64_t>(DType::Q4_K), static_cast<int64_t>(DType::Q6_K),
                    static_cast<int64_t>(DType::F16)},
                   {600, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// N rows of K Q4_0 weights: a random byte every 64 bytes, the rest zero; with `scale` every
// block's f16 scale is that one (one scale per group of blocks, as a GPTQ sym checkpoint loads,
// so pack_fine takes the matrix).
static std::vector<uint8_t> q4_0_weights(int64_t N, int64_t K, std::mt19937& g,
                                         uint16_t scale = 0) {
  const size_t rb = static_cast<size_t>(*row_bytes(DType::Q4_0, K));
  std::vector<uint8_t> w(rb * static_cast<size_t>(N));
  for (size_t i = 0; i < w.size(); i += 64) w[i] = static_cast<uint8_t>(g() & 0x3F);
  if (scale)
    for (size_t b = 0; b < w.size(); b += 18) std::memcpy(w.data() + b, &scale, 2);
  return w;
}

// Packed Q4_0 (kernels::pack_weights on the batch-invariant table: the serving kernels), K =
// 2048, 2 threads; args {MiB, M}: 600 MiB at M = 1 streams from DRAM (compare BM_MatvecStream),
// 1 MiB runs from cache; M > 1 the batched decode steps. Reports weight GB/s and GFLOP/s.
static void BM_PackedQ4_0(benchmark::State& state) {
  const kernels::KernelTable* prev = kernels::set_active(&kernels::batch_invariant_table());
  const int64_t K = 2048, M = state.range(1);
  const size_t rb = static_cast<size_t>(*row_bytes(DType::Q4_0, K));
  const int64_t N = static_cast<int64_t>((static_cast<size_t>(state.range(0)) << 20) / rb);
  std::mt19937 g(1);
  const auto w = q4_0_weights(N, K, g);
  std::vector<float> x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  for (auto& v : x) v = static_cast<float>(g() % 200) / 100.0f - 1.0f;
  kernels::Matrix m{DType::Q4_0, w.data(), N, K, rb};
  const auto packed = kernels::pack_weights(m);
  if (!packed) {
    kernels::set_active(prev);
    state.SkipWithError("this CPU's batch-invariant table packs no Q4_0");
    return;
  }
  kernels::attach(m, *packed);
  ThreadPool pool(std::getenv("OHM_NUM_THREADS") ? std::atoi(std::getenv("OHM_NUM_THREADS")) : 2);
  for (auto _ : state) kernels::matmul(x.data(), M, K, m, nullptr, y.data(), pool);
  kernels::set_active(prev);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.size()),
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * M * K * N, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_PackedQ4_0)
    ->ArgsProduct({{600, 1}, {1, 4, 16}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Packed int4 groups on fine activations (the GPTQ / AWQ checkpoints' kernel: pack_fine of a
// Q4_0 matrix whose four blocks of 32 share one scale, as a GPTQ g128 sym checkpoint loads), K =
// 2048, 2 threads; args {MiB, M}: 600 MiB at M = 1 streams from DRAM (compare BM_MatvecStream's
// Q4_0 row and BM_PackedQ4_0), 1 MiB runs from cache; 2 MiB at M = 512 is prompt processing,
// compute-bound (compare BM_Matmul's Q4_0 row at M = 512). Reports weight GB/s (the packed bytes)
// and GFLOP/s (2 M K N).
static void BM_PackedFine(benchmark::State& state) {
  const int64_t K = 2048, M = state.range(1);
  const size_t rb = static_cast<size_t>(*row_bytes(DType::Q4_0, K));
  const int64_t N = static_cast<int64_t>((static_cast<size_t>(state.range(0)) << 20) / rb);
  std::mt19937 g(1);
  const auto w = q4_0_weights(N, K, g, 0x211F);  // every scale 0.01
  std::vector<float> x(static_cast<size_t>(M * K)), y(static_cast<size_t>(M * N));
  for (auto& v : x) v = static_cast<float>(g() % 200) / 100.0f - 1.0f;
  kernels::Matrix m{DType::Q4_0, w.data(), N, K, rb};
  m.fine_acts = true;
  const auto packed = kernels::pack_weights(m);
  if (!packed) {
    state.SkipWithError("this CPU's table packs no int4 groups");
    return;
  }
  kernels::attach(m, *packed);
  ThreadPool pool(std::getenv("OHM_NUM_THREADS") ? std::atoi(std::getenv("OHM_NUM_THREADS")) : 2);
  for (auto _ : state) kernels::matmul(x.data(), M, K, m, nullptr, y.data(), pool);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(packed->size()),
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * M * K * N, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_PackedFine)
    ->ArgsProduct({{600, 1}, {1}})
    ->Args({2, 512})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The linears of one decode step of the 1.1B shape (22 layers of q, k, v, o at 2048 x 2048 / 256 x
// 2048, gate and up 5632 x 2048, down 2048 x 5632), M = 1, 2 threads, the weights streaming from
// DRAM (545 MB as Q4_0): arg 0 plain Q4_0 (the GGUF decode kernels), 1 the same weights as packed
// int4 groups on fine activations (a GPTQ g128 sym checkpoint as loaded). Reports weight GB/s.
static void BM_DecodeLinears(benchmark::State& state) {
  const bool fine = state.range(0) == 1;
  const int64_t shapes[7][2] = {{2048, 2048}, {256, 2048},  {256, 2048}, {2048, 2048},
                                {5632, 2048}, {5632, 2048}, {2048, 5632}};
  std::mt19937 g(1);
  struct Lin {
    std::vector<uint8_t> w;
    kernels::Matrix m;
    std::shared_ptr<const kernels::PackedWeights> packed;
  };
  std::vector<Lin> lins(22 * 7);
  double bytes = 0;
  for (size_t i = 0; i < lins.size(); ++i) {
    const int64_t N = shapes[i % 7][0], K = shapes[i % 7][1];
    const size_t rb = static_cast<size_t>(*row_bytes(DType::Q4_0, K));
    Lin& l = lins[i];
    l.w = q4_0_weights(N, K, g, 0x211F);
    l.m = kernels::Matrix{DType::Q4_0, l.w.data(), N, K, rb};
    if (fine) {
      l.m.fine_acts = true;
      l.packed = kernels::pack_weights(l.m);
      if (!l.packed) {
        state.SkipWithError("this CPU's table packs no int4 groups");
        return;
      }
      kernels::attach(l.m, *l.packed);
      l.m.data = nullptr;  // the packed copy only, as a loaded checkpoint
      l.w = {};
      bytes += static_cast<double>(l.packed->size());
    } else {
      bytes += static_cast<double>(l.w.size());
    }
  }
  std::vector<float> x(5632), y(5632);
  for (auto& v : x) v = static_cast<float>(g() % 200) / 100.0f - 1.0f;
  ThreadPool pool(std::getenv("OHM_NUM_THREADS") ? std::atoi(std::getenv("OHM_NUM_THREADS")) : 2);
  for (auto _ : state)
    for (const Lin& l : lins) kernels::matmul(x.data(), 1, l.m.cols, l.m, nullptr, y.data(), pool);
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
BENCHMARK(BM_DecodeLinears)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
