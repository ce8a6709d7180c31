// Connection limits of the HTTP front end (ohm/net/http_front.h), as servers expose them.
#pragma once

#include <cstddef>

namespace ohm::net {

// Slow and hostile clients (docs/hub.md, "Security"): the request head must arrive within
// header_timeout_s, be at most max_header_bytes with at most max_headers fields; a body gets
// body_timeout_s plus one second per KiB received; idle keep-alive connections are closed after
// keepalive_timeout_s; a stalled reader after write_timeout_s.
struct ConnectionLimits {
  int header_timeout_s = 10;
  int body_timeout_s = 30;
  int keepalive_timeout_s = 15;
  int write_timeout_s = 60;
  size_t max_header_bytes = 64u << 10;
  int max_headers = 100;
  int max_conns_per_ip = 32;  // 0: no limit
  int max_connections = 4096;
};

}  // namespace ohm::net
