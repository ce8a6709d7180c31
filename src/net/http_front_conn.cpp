// The front end's connection helpers (addresses, deadlines) and the worker's request context.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "http_front_internal.h"

namespace ohm::net::front_detail {

thread_local ReqCtx* tl_req = nullptr;

int ms_until(Clock::time_point t) {
  const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return d <= 0 ? 0 : static_cast<int>(std::min<int64_t>(d, 1 << 30));
}

std::string addr_string(const sockaddr_storage& ss, int& port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  std::string s = buf;
  if (s.starts_with("::ffff:") && s.find('.') != std::string::npos) s = s.substr(7);
  return s;
}

}  // namespace ohm::net::front_detail
