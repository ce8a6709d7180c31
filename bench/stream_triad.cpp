// STREAM-like memory-bandwidth probe: triad a[i] = b[i] + s*c[i] over three double arrays,
// split statically over T threads, best of R trials. Bytes counted the STREAM way
// (3 x 8 B per element, no write-allocate). Also a read-only probe: the three arrays summed
// as integers with 16 independent accumulators (the read ceiling a decode kernel can reach).
//   stream_triad [--threads T] [--mib-per-array N] [--trials R]
// Prints "triad_gb_s=<best> read_gb_s=<best> threads=<T>". The decode bound of a model is
// triad bandwidth / weight bytes read per token.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  size_t mib = 256;
  int trials = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--mib-per-array")
      mib = static_cast<size_t>(std::atoll(argv[i + 1]));
    else if (a == "--trials")
      trials = std::atoi(argv[i + 1]);
  }
  const size_t n = mib * (1u << 20) / sizeof(double);
  double* a = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  double* b = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  double* c = static_cast<double*>(std::aligned_alloc(64, n * sizeof(double)));
  std::vector<double> partial(static_cast<size_t>(threads) * 8);
  auto parallel = [&](auto&& body) {
    std::vector<std::thread> ts;
    for (int t = 1; t < threads; ++t)
      ts.emplace_back([&, t] { body(n * t / threads, n * (t + 1) / threads, t); });
    body(0, n / threads, 0);
    for (auto& th : ts) th.join();
  };
  // first touch by the owning thread
  parallel([&](size_t i0, size_t i1, int) {
    for (size_t i = i0; i < i1; ++i) a[i] = 1.0, b[i] = 2.0, c[i] = 0.5;
  });
  double best_triad = 0, best_read = 0;
  const double s = 3.0;
  for (int r = 0; r < trials; ++r) {
    double t0 = now_s();
    parallel([&](size_t i0, size_t i1, int) {
      for (size_t i = i0; i < i1; ++i) a[i] = b[i] + s * c[i];
    });
    double dt = now_s() - t0;
    best_triad = std::max(best_triad, 3.0 * 8.0 * static_cast<double>(n) / dt / 1e9);
    t0 = now_s();
    parallel([&](size_t i0, size_t i1, int t) {
      // 16 independent integer accumulators per array (the compiler keeps them in vector
      // registers: integer sums reassociate), so the loads never wait on an add chain.
      const uint64_t* arrs[3] = {reinterpret_cast<const uint64_t*>(a),
                                 reinterpret_cast<const uint64_t*>(b),
                                 reinterpret_cast<const uint64_t*>(c)};
      uint64_t acc[16] = {};
      for (const uint64_t* p : arrs) {
        size_t i = i0;
        for (; i + 16 <= i1; i += 16)
          for (int j = 0; j < 16; ++j) acc[j] += p[i + static_cast<size_t>(j)];
        for (; i < i1; ++i) acc[0] += p[i];
      }
      uint64_t sum = 0;
      for (uint64_t v : acc) sum += v;
      partial[static_cast<size_t>(t) * 8] = static_cast<double>(sum & 0xffff);
    });
    dt = now_s() - t0;
    best_read = std::max(best_read, 3.0 * 8.0 * static_cast<double>(n) / dt / 1e9);
  }
  double chk = 0;
  for (double p : partial) chk += p;
  std::printf("triad_gb_s=%.2f read_gb_s=%.2f threads=%d mib_per_array=%zu (check %.0f)\n",
              best_triad, best_read, threads, mib, chk);
  std::free(a);
  std::free(b);
  std::free(c);
  return 0;
}
