// ohm serve MODEL: the OpenAI-compatible model server (docs/serving.md).
#include <pthread.h>
#include <csignal>
#include <iostream>
#include <memory>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/dtype.h"
#include "ohm/formats/model_source.h"
#include "ohm/generation/watermark.h"
#include "ohm/kernels/kernels.h"
#include "ohm/quant/quantize.h"
#include "ohm/serve/server.h"

namespace ohm::cli {

namespace {

struct ServeCliOptions {
  serve::ServerOptions s;
  std::string dtype, quantize, verify_key;
  std::optional<std::string> watermark;
  GuardFlags guard;
  int threads = 0;
  bool batch_invariant = true;
};

int serve_main(ServeCliOptions& o) {
  verify_model_if_asked(resolve_model(o.s.model).path, o.verify_key);
  if (o.watermark) o.s.watermark = generation::parse_watermark_spec(*o.watermark);
  o.s.guard = o.guard.options(o.threads);
  if (!o.dtype.empty()) o.s.load.dtype = dtype_from_name(o.dtype);
  if (!o.quantize.empty()) o.s.load.quantize = dtype_from_name(o.quantize);
  o.s.load.threads = o.threads;
  // Batch invariance is the default (docs/serving.md): the AVX-512 table's batched GEMMs sum in
  // another order than its decode kernels, so on such CPUs the server runs its batch-invariant
  // variant (the decode kernels' arithmetic at every batch size).
  if (o.batch_invariant && &kernels::batch_invariant_table() != &kernels::active()) {
    kernels::set_active(&kernels::batch_invariant_table());
    std::cerr << "ohm serve: batch-invariant AVX-512 kernels (--no-batch-invariance: the batched "
                 "GEMMs)\n";
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // every server thread inherits the mask
  serve::ModelServer server(o.s);
  server.start();
  std::cout << "ohm serve: " << server.model_name() << " on http://" << o.s.host << ":"
            << server.port() << "/v1" << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "ohm serve: stopping (running requests get " << o.s.drain_timeout_s
            << " s to finish)\n";
  server.stop();
  return 0;
}

const char* kServeFooter =
    "Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,\n"
    "POST /tokenize, POST /detokenize, GET /metrics (Prometheus), POST /v1/watermark/detect.\n"
    "OpenAI request and error "
    "shapes; streaming with server-sent events. --api-keys FILE: one key per line, optionally\n"
    "`rpm=N` (requests per minute) `tpd=N` (tokens per UTC day) `name=NAME`; # comments.\n"
    "SIGTERM/SIGINT: stop accepting, let running requests finish up to --drain-timeout, then\n"
    "cancel them, exit 0. docs/serving.md has the details.";

}  // namespace

const Register reg_serve("serve", [](CLI::App& app) {
  auto o = std::make_shared<ServeCliOptions>();
  // An application server sends many concurrent requests from one address: the per-IP cap
  // (against one client hoarding connections) sits well above --parallel's default.
  o->s.limits.max_conns_per_ip = 256;
  auto* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible model server with continuous batching (docs/serving.md)");
  cmd->add_option("model", o->s.model, "Model: directory, .gguf or Hub id")->required();
  cmd->add_option("--host", o->s.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->s.port, "Port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--served-model-name", o->s.served_model_name,
                  "The model name clients send (default: the model's directory or file name)");
  cmd->add_option("--api-keys", o->s.api_keys_file,
                  "File of API keys (Bearer) with per-key quotas; default: no authentication")
      ->check(readable_file());
  cmd->add_option("--parallel,--np", o->s.engine.parallel, "Sequences decoded at once")
      ->check(int_range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--ctx-size,-c", o->s.engine.ctx_size,
                  "Tokens per sequence, prompt + output (default: the model's context, at most "
                  "4096)")
      ->check(int_range(16, 1 << 22));
  cmd->add_option("--max-queue", o->s.engine.max_queue, "Requests waiting for a slot; more get 503")
      ->check(int_range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--max-batch-tokens", o->s.engine.max_batch_tokens,
                  "Tokens per engine step (decode rows + prompt chunks)")
      ->check(int_range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--block-size", o->s.engine.block_tokens, "KV cache block size in tokens")
      ->check(CLI::IsMember({8, 16, 32, 64, 128}))
      ->capture_default_str();
  cmd->add_option("--kv-blocks", o->s.engine.kv_blocks,
                  "KV cache blocks in the pool (default: --parallel sequences of --ctx-size)")
      ->check(int_range(1, int64_t{1} << 30));
  cmd->add_flag("!--no-prefix-cache", o->s.engine.prefix_cache,
                "Do not share prompt blocks across requests");
  cmd->add_flag("!--no-batch-invariance", o->batch_invariant,
                "On AVX-512 CPUs, use the batched AVX-512 GEMMs: faster prefill and batches, but a "
                "request's tokens may then depend on what else is in the batch (default: the "
                "batch-invariant AVX-512 kernels)");
  add_threads_option(cmd, o->threads);
  cmd->add_option("--http-threads", o->s.http_threads, "HTTP workers (open streams at most)")
      ->check(int_range(4, 4096))
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "Weights in memory: f32, bf16 or f16 (default: as stored)")
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  cmd->add_option("--quantize", o->quantize, "Quantize 2-D weights at load to this ggml block type")
      ->check(CLI::IsMember(quant::quantize_type_names()));
  cmd->add_option("--tokenizer", o->s.tokenizer, "Tokenizer (default: the model's)");
  add_verify_key_option(cmd, o->verify_key);
  cmd->add_option("--watermark", o->watermark,
                  "Watermark every output (transformers' WatermarkLogitsProcessor); optional "
                  "gamma=,delta=,seeding_scheme=lefthash|selfhash,context_width=,hashing_key=. "
                  "POST /v1/watermark/detect tests a text against it")
      ->expected(0, 1)
      ->check(watermark_spec_validator());
  o->guard.add_to(cmd);
  cmd->add_option("--max-body-bytes", o->s.max_body_bytes, "Largest request body; over it: 413")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 32))
      ->capture_default_str();
  cmd->add_option("--request-timeout", o->s.request_timeout_s,
                  "Seconds a request may run before it is cancelled")
      ->check(int_range(1, 86400))
      ->capture_default_str();
  cmd->add_option("--drain-timeout", o->s.drain_timeout_s,
                  "Seconds running requests get to finish on SIGTERM")
      ->check(int_range(0, 86400))
      ->capture_default_str();
  cmd->add_flag("--log-requests", o->s.log_requests, "Log prompts and outputs (off by default)");
  cmd->add_flag("--quiet", o->s.quiet, "No access log");
  cmd->add_option("--max-conns-per-ip", o->s.limits.max_conns_per_ip,
                  "Open connections per client IP (0: no limit); over it: 429")
      ->check(int_range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-connections", o->s.limits.max_connections,
                  "Open connections in total; over it: 503")
      ->check(int_range(1, 1000000))
      ->capture_default_str();
  cmd->footer(kServeFooter);
  return Command{cmd, [o] { return serve_main(*o); }};
});

}  // namespace ohm::cli
