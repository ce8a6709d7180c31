// The hub's HTTP server (an epoll front end + cpp-httplib request handling): the Hugging Face Hub
// API as huggingface_hub and transformers use it, on top of ohm::hub::Hub. See docs/hub.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "ohm/net/limits.h"

namespace ohm::hub {

class Hub;
class HubExtension;

// Slow and hostile clients: see ohm/net/http_front.h and docs/hub.md, "Security".
using ConnectionLimits = net::ConnectionLimits;

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
  // Model signing (docs/safety.md): public keys (*.pub / *.pem) the hub trusts; with
  // require_signed, a commit to a model repo must carry a model.sig that verifies with one.
  std::string trusted_keys_dir;
  bool require_signed = false;
  ConnectionLimits limits;
};

class HubServer {
 public:
  explicit HubServer(ServerOptions opt);
  ~HubServer();
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  // The domain layer (for extensions: Hub::add_commit_hook) and request/page extensions
  // (ohm/hub/extension.h), asked in order before the route table. Add them before start().
  Hub& hub();
  void add_extension(std::shared_ptr<HubExtension> ext);

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
