// Requests per minute per token (per client IP for anonymous callers), as a token bucket holding
// one minute's worth. Private to src/hub.
#pragma once

#include <httplib.h>

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ohm::hub::http {

class RateLimiter {
 public:
  explicit RateLimiter(int per_minute) : per_minute_(per_minute) {}  // 0: no limit
  // Takes one token from the caller's bucket; when it is empty, sets Retry-After and the
  // RateLimit headers on `res` and throws RateLimited.
  void take(const httplib::Request& req, httplib::Response& res);

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  int per_minute_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace ohm::hub::http
