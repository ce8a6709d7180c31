#include "ohm/core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

// x86 intrinsics only on x86 (the portable build also compiles for aarch64;
// scripts/cross-aarch64.sh).
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ohm {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
  __asm__ __volatile__("yield");
#else
  std::this_thread::yield();
#endif
}

int64_t spin_budget_ns() {
  const char* e = std::getenv("OHM_POOL_SPIN_US");
  const long us = e ? std::strtol(e, nullptr, 10) : 100;
  return std::max<long>(0, us) * 1000;
}

// Spins until pred() holds or the budget is spent; true if pred() held.
template <class Pred>
bool spin_until(Pred pred, int64_t budget_ns) {
  if (budget_ns <= 0) return pred();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (pred()) return true;
    // A short pause-spin, then yield: on an oversubscribed machine the thread being waited for
    // may need this core.
    if (i < 128)
      cpu_relax();
    else
      std::this_thread::yield();
    if ((i & 15) == 15 && std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now() - start)
                                  .count() > budget_ns)
      return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : spin_ns_(spin_budget_ns()) {
  if (n_threads <= 0)
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  threads_.reserve(static_cast<size_t>(n_threads - 1));
  try {
    for (int i = 1; i < n_threads; ++i) threads_.emplace_back([this, i] { worker(i); });
  } catch (const std::system_error& e) {
    // Stop and join the threads already started (a joinable std::thread left in threads_ would
    // terminate the process), then report how far it got.
    const size_t started = threads_.size();
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_.store(true);
    }
    cv_start_.notify_all();
    for (auto& t : threads_) t.join();
    throw std::runtime_error("cannot start a pool of " + std::to_string(n_threads) +
                             " threads (started " + std::to_string(started + 1) + "): " + e.what() +
                             "; use fewer threads (--threads, OHM_NUM_THREADS)");
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto published = [&] { return stop_.load() || generation_.load() != seen; };
    if (!spin_until(published, spin_ns_)) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      cv_start_.wait(lk, published);
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load();
    const auto* job = job_.load();
    try {
      (*job)(index, n_threads_);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    if (pending_.fetch_sub(1) == 1) {
      // The last one out wakes the caller if it went to sleep (taking the lock orders this
      // after the caller's predicate check).
      std::lock_guard<std::mutex> lk(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_.store(&fn);
  pending_.store(n_threads_ - 1);
  error_ = nullptr;          // no worker is running a job here
  generation_.fetch_add(1);  // publishes job_ and pending_ (seq_cst)
  // A worker that checked the generation before the bump and is about to sleep has already
  // counted itself in sleepers_ (under mu_), so it is woken; one counting itself later sees the
  // new generation in its predicate and does not sleep.
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_start_.notify_all();
  }
  std::exception_ptr mine;
  try {
    fn(0, n_threads_);
  } catch (...) {
    mine = std::current_exception();
  }
  auto done = [&] { return pending_.load() == 0; };
  if (!spin_until(done, spin_ns_)) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, done);
  }
  job_.store(nullptr);
  if (mine) std::rethrow_exception(mine);
  std::lock_guard<std::mutex> lk(mu_);
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = std::min<int64_t>(n_threads_, (n + grain - 1) / grain);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  run([&](int t, int) {
    if (t >= chunks) return;
    const int64_t begin = n * t / chunks, end = n * (t + 1) / chunks;
    if (begin < end) fn(begin, end);
  });
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool([] {
    const char* e = std::getenv("OHM_NUM_THREADS");
    return e ? std::atoi(e) : 0;
  }());
  return pool;
}

}  // namespace ohm
