// A persistent thread pool. The calling thread takes part as worker 0, so a pool of N threads
// starts N-1 OS threads. No allocation or lock per job on the hot path: a job is published by
// bumping an atomic generation; workers spin on it for a short while after each job (decode
// issues hundreds of small jobs per token, and a condition-variable wake costs tens of
// microseconds) and only then sleep on a condition variable. The caller spins the same way for
// the last worker to finish. OHM_POOL_SPIN_US sets the spin budget (default 100 us; 0 never
// spins, for oversubscribed machines).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ohm {

class ThreadPool {
 public:
  // n_threads <= 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) once on every thread and waits for all of them.
  // The first exception thrown by any thread is rethrown here.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into at most size() contiguous chunks of at least `grain` items and runs
  // fn(begin, end) on each.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool (sized by OHM_NUM_THREADS or the hardware).
  static ThreadPool& global();

 private:
  void worker(int index);

  int n_threads_;
  int64_t spin_ns_;
  std::vector<std::thread> threads_;
  std::mutex mu_;  // guards sleeping (with the condition variables) and error_
  std::condition_variable cv_start_, cv_done_;
  std::atomic<const std::function<void(int, int)>*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::exception_ptr error_;
};

}  // namespace ohm
