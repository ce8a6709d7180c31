// The hub's HTTP server (an epoll front end + cpp-httplib request handling): the Hugging Face Hub
// API as huggingface_hub and transformers use it, on top of ohm::hub::Hub. See docs/hub.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace ohm::hub {

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

struct ServerOptions {
  std::string data_dir;
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port
  std::string public_url;   // base for absolute URLs; default http://{Host header}
  size_t page_size = 1000;  // list, tree and commit pages
  size_t max_json_bytes = 16u << 20;
  size_t max_commit_bytes = 512u << 20;  // NDJSON commit bodies (regular files inline, base64)
  uint64_t max_lfs_bytes = 50ull << 30;
  int threads = 64;
  // Requests per minute per token (per client IP for anonymous callers), as a token bucket
  // holding one minute's worth; over it: 429 with Retry-After. 0: no limit.
  int rate_limit = 0;
  bool quiet = false;  // no access log
  ConnectionLimits limits;
};

class HubServer {
 public:
  explicit HubServer(ServerOptions opt);
  ~HubServer();
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  int bind();    // binds host:port; returns the port (throws IoError)
  void run();    // serves until stop()
  void start();  // bind() + run() on a background thread
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ohm::hub
