// The Hub client's shared plumbing (pull and push): endpoints, an httplib client with readable
// network errors, JSON requests whose HTTP errors become ohm errors, file hashing, a progress bar
// and a small parallel loop. Private to src/hub/client.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ohm/hub/hash.h"

namespace ohm::hub::client_detail {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Endpoint {
  std::string origin;  // scheme://host[:port]
  std::string prefix;  // path prefix without trailing '/'
};

// An httplib client that remembers its origin, for error messages.
class Client : public httplib::Client {
 public:
  explicit Client(const std::string& origin) : httplib::Client(origin), origin_(origin) {}
  const std::string& origin() const { return origin_; }

 private:
  std::string origin_;
};

// A failed request (no HTTP answer) in words.
std::string network_error(httplib::Error e, const std::string& origin);
Endpoint parse_endpoint(const std::string& url);
std::unique_ptr<Client> make_client(const std::string& origin, const std::string& token,
                                    int timeout_s = 60);
// Throws the ohm error for a failed request or an HTTP error answer (AuthError for 401,
// NotFoundError for 404, InvalidArgument for 400/403/409/412, IoError otherwise).
[[noreturn]] void http_fail(const Client& c, const std::string& what, const httplib::Result& r);
json parse_body(const std::string& what, const std::string& body);
// GET a JSON answer; `next` (when given) receives the Link rel="next" URL or "".
json get_json(Client& c, const std::string& path, std::string* next);
json post_json(Client& c, const std::string& path, const json& body,
               const char* type = "application/json");
void check_repo_id(const std::string& id);
struct RemoteFile {
  std::string path, etag;
  uint64_t size = 0;
  bool lfs = false;
};

// Every file of a commit (recursive tree, following Link pagination).
std::vector<RemoteFile> list_tree(Client& c, const Endpoint& ep, const std::string& api,
                                  const std::string& commit);
// Whether `path` matches one of the fnmatch globs (a trailing '/' matches a folder).
bool glob_match(const std::vector<std::string>& globs, const std::string& path);
// Hash of a file's bytes into h.
void hash_file(Hasher& h, const fs::path& p, uint64_t limit = UINT64_MAX);
std::string human_bytes(double b);

// One aggregate progress bar on stderr, redrawn every 200 ms (only when enabled).
class Progress {
 public:
  Progress(bool on, std::string verb, uint64_t total, size_t files)
      : on_(on), verb_(std::move(verb)), total_(total), files_(files) {
    if (on_) th_ = std::thread([this] { loop(); });
  }
  ~Progress() { finish(); }
  void add(uint64_t n) { done_ += n; }
  void file_done() { ++files_done_; }
  void finish() {
    if (!on_) return;
    {
      std::lock_guard l(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
    draw();
    std::fputc('\n', stderr);
  }

 private:
  void loop() {
    std::unique_lock l(mu_);
    while (!cv_.wait_for(l, std::chrono::milliseconds(200), [&] { return stop_; })) draw();
  }
  void draw() {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const uint64_t done = std::min<uint64_t>(done_, total_);
    const double frac = total_ ? double(done) / double(total_) : 1.0;
    const int width = 30, fill = static_cast<int>(frac * width);
    std::string bar = std::string(static_cast<size_t>(fill), '#') +
                      std::string(static_cast<size_t>(width - fill), '.');
    std::fprintf(stderr, "\r%s %zu/%zu files [%s] %3d%% %s/%s %s/s   ", verb_.c_str(),
                 files_done_.load(), files_, bar.c_str(), static_cast<int>(frac * 100),
                 human_bytes(double(done)).c_str(), human_bytes(double(total_)).c_str(),
                 human_bytes(secs > 0 ? double(done) / secs : 0).c_str());
    std::fflush(stderr);
  }

  bool on_;
  std::string verb_;
  uint64_t total_;
  size_t files_;
  std::atomic<uint64_t> done_{0};
  std::atomic<size_t> files_done_{0};
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::thread th_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the first error.
template <class F>
void parallel_for(size_t n, int threads, F fn) {
  std::atomic<size_t> idx{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::exception_ptr error;
  auto worker = [&] {
    while (!failed) {
      const size_t i = idx++;
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard l(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t nt = std::min<size_t>(n, static_cast<size_t>(std::max(1, threads)));
  for (size_t t = 1; t < nt; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace ohm::hub::client_detail
