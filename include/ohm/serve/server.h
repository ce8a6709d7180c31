// `ohm serve`: an OpenAI-compatible HTTP server over the engine (docs/serving.md).
//
//   POST /v1/chat/completions   POST /v1/completions   GET /v1/models   GET /health
//   POST /tokenize   POST /detokenize   GET /metrics (Prometheus text)
//
// Connections go through the shared front end (ohm/net/http_front.h: slow-client and bad-length
// protection, per-IP caps); requests through the engine's queue. Errors use OpenAI's JSON error
// shape (serve/openai.h). Prompts and outputs are logged only with log_requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ohm/formats/config.h"
#include "ohm/guard/guard.h"
#include "ohm/models/causal_lm.h"
#include "ohm/net/limits.h"
#include "ohm/serve/engine.h"

namespace ohm::serve {

struct ServerOptions {
  std::string model;              // directory, .gguf or Hub id (ohm::resolve_model)
  std::string tokenizer;          // tokenizer path; empty: the model's
  LoadOptions load;               // dtype, quantize, threads
  std::string served_model_name;  // the `model` clients name; empty: the model's directory name
  std::string host = "127.0.0.1";
  int port = 8000;            // 0: any free port
  std::string api_keys_file;  // empty: no authentication
  int http_threads = 64;      // HTTP workers (streams held open at once)
  uint64_t max_body_bytes = 8u << 20;
  int request_timeout_s = 600;  // a request still running after this is cancelled (408)
  int drain_timeout_s = 30;     // SIGTERM: running streams get this long to finish
  bool log_requests = false;    // log prompts and outputs
  bool quiet = false;           // no access log
  net::ConnectionLimits limits;
  EngineOptions engine{.ctx_size = 0};  // ctx_size 0: the model's context, at most 4096
  // Every request's output carries this watermark (transformers' WatermarkLogitsProcessor;
  // ohm/generation/watermark.h); POST /v1/watermark/detect tests texts against it.
  std::optional<WatermarkingConfig> watermark;
  // Content filtering (ohm/guard/guard.h): a Llama Guard-format model and/or a rules file for
  // prompts (400, code "content_filter") and responses (finish_reason "content_filter").
  std::optional<guard::GuardOptions> guard;
};

// One API key (a line of the keys file: `KEY [rpm=N] [tpd=N] [name=NAME]`; # comments).
struct ApiKey {
  std::string key, name;
  int64_t requests_per_minute = 0;  // 0: no limit
  int64_t tokens_per_day = 0;       // prompt + completion tokens per UTC day; 0: no limit
};
// Parses a keys file (InvalidArgument naming the file and line).
std::vector<ApiKey> load_api_keys(const std::string& path);

class ModelServer {
 public:
  // Loads the model, tokenizer, chat template and generation defaults of opt.model.
  explicit ModelServer(ServerOptions opt);
  ~ModelServer();
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  int bind();    // binds host:port; returns the port (IoError naming the address)
  void run();    // serves until stop()
  void start();  // bind() + run() on a background thread
  // Stops accepting requests (new ones get 503), lets running ones finish until the drain
  // deadline, cancels the rest, then stops the HTTP front end.
  void stop();
  int port() const;
  const std::string& model_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ohm::serve
