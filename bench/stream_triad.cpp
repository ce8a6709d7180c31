// STREAM-like memory-bandwidth probe: triad a[i] = b[i] + s*c[i] over three double arrays,
// split statically over T threads, best of R trials. Bytes counted the STREAM way
// (3 x 8 B per element, no write-allocate). Also a read-only 3-stream sum.
//   stream_triad [--threads T] [--mib-per-array N] [--trials R]
// Prints "triad_gb_s=<best> read_gb_s=<best> threads=<T>". The decode bound of a model is
// triad bandwidth / weight bytes read per token.
#include <algorithm>
#include <atomic>
#include <chrono>
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
      double acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
      size_t i = i0;
      for (; i + 4 <= i1; i += 4) {
        acc0 += a[i] + b[i] + c[i];
        acc1 += a[i + 1] + b[i + 1] + c[i + 1];
        acc2 += a[i + 2] + b[i + 2] + c[i + 2];
        acc3 += a[i + 3] + b[i + 3] + c[i + 3];
      }
      for (; i < i1; ++i) acc0 += a[i] + b[i] + c[i];
      partial[static_cast<size_t>(t) * 8] = acc0 + acc1 + acc2 + acc3;
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
