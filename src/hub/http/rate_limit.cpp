#include "rate_limit.h"

#include <algorithm>
#include <cmath>

#include "ohm/hub/errors.h"
#include "ohm/hub/hash.h"

namespace ohm::hub::http {

void RateLimiter::take(const httplib::Request& req, httplib::Response& res) {
  if (per_minute_ <= 0) return;
  const std::string auth = req.get_header_value("Authorization");
  const std::string key =
      auth.empty() ? "ip:" + req.remote_addr : "tok:" + sha256_hex(auth).substr(0, 32);
  const double cap = per_minute_, per_s = per_minute_ / 60.0;
  const auto now = std::chrono::steady_clock::now();
  double wait_s = 0;
  {
    std::lock_guard l(mu_);
    if (buckets_.size() > 100000) {  // forget callers whose bucket has refilled
      for (auto it = buckets_.begin(); it != buckets_.end();) {
        const double t = std::chrono::duration<double>(now - it->second.at).count();
        it = it->second.tokens + t * per_s >= cap ? buckets_.erase(it) : std::next(it);
      }
    }
    auto [it, fresh] = buckets_.try_emplace(key, Bucket{cap, now});
    Bucket& b = it->second;
    if (!fresh) {
      const double t = std::chrono::duration<double>(now - b.at).count();
      b.tokens = std::min(cap, b.tokens + t * per_s);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    wait_s = (1 - b.tokens) / per_s;
  }
  const int64_t retry = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)));
  res.set_header("Retry-After", std::to_string(retry));
  res.set_header("RateLimit", "\"api\";r=0;t=" + std::to_string(retry));
  res.set_header("RateLimit-Policy",
                 "\"fixed window\";\"api\";q=" + std::to_string(per_minute_) + ";w=60");
  throw RateLimited("Rate limit exceeded: " + std::to_string(per_minute_) +
                    " requests per minute. Retry after " + std::to_string(retry) + " s.");
}

}  // namespace ohm::hub::http
