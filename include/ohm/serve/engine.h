// The serving engine: continuous batching over a paged KV cache (docs/serving.md, "Engine").
//
//   Engine engine(model, tokenizer, opts);                 // starts its step thread
//   auto stream = engine.submit(prompt_ids, sampling);     // nullptr: queue full (503)
//   while (auto ev = stream->next(1s)) { ... ev->text ... if (ev->finished) break; }
//
// Every step the scheduler re-forms the batch: running sequences that wait for a token get one
// row each, then sequences still in their prompt get chunks of it (prefill) from what is left of
// max_batch_tokens, so long prompts never stall running streams. New requests join when a slot
// (`parallel`) and KV blocks for their prompt are free. K/V live in fixed-size blocks
// (block_tokens) addressed through per-sequence block tables; full blocks are hashed by their
// token prefix and shared across requests (automatic prefix caching; unreferenced cached blocks
// are evicted least recently used first). When a sequence needs a block and none is free, the
// most recently admitted other sequence is preempted: its blocks are freed and it is recomputed
// from its tokens when it is readmitted. A cancelled request (client gone) leaves at the next
// step and its blocks go back to the pool.
//
// Batch invariance: a sequence's tokens do not depend on what else is in the batch. Attention
// runs per sequence over its keys in the order forward() uses, and the batch-invariant matmul
// kernels (kernels::batch_invariant_table(): the scalar and AVX2 tables, the AVX-512 table's
// invariant variant) give every row the same arithmetic at any M (Q4_0 weights packed at load
// run one panel kernel at every M; unpacked Q4_0/Q8_0 run each row through the decode kernel's
// arithmetic), so greedy output equals `ohm generate --greedy` for the same prompt.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "ohm/core/token_id.h"
#include "ohm/formats/config.h"

namespace ohm::generation {
class LogitsProcessorList;
}

namespace ohm {
class CausalLM;
namespace nn {
class PagedKVPool;
}
namespace tokenizers {
class Tokenizer;
}
}  // namespace ohm

namespace ohm::serve {

struct EngineOptions {
  int parallel = 16;               // sequences decoding at once
  int64_t ctx_size = 4096;         // prompt + output tokens per sequence, at most
  int64_t block_tokens = 16;       // KV block size (a power of two)
  int64_t kv_blocks = 0;           // 0: enough for `parallel` sequences of ctx_size
  int64_t max_batch_tokens = 128;  // tokens per step (decode rows + prefill chunks)
  int max_queue = 64;              // waiting requests; more: submit() returns nullptr
  bool prefix_cache = true;
};

// Restricts one request's tokens (structured output, forced tool calls).
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets the scores of tokens that may not come next to -inf (EOS until the output is whole).
  virtual void mask(std::span<float> scores) = 0;
  virtual void accept(TokenId id) = 0;
  // The output is whole and nothing may follow: the sequence ends (finish reason "stop").
  virtual bool done() const = 0;
};

struct SamplingOptions {
  // do_sample, temperature, top_k, top_p, min_p, repetition_penalty, eos_token_id (as
  // transformers applies them; build_logits_processors).
  GenerationConfig config;
  uint64_t seed = 0;
  int64_t max_tokens = 16;
  // Applied to the raw logits before the transformers chain (OpenAI's frequency/presence
  // penalties and logit_bias: serve/penalties.h).
  std::shared_ptr<const generation::LogitsProcessorList> pre;
  std::vector<std::string> stop;  // stop strings (cut from the text)
  std::vector<TokenId> stop_token_ids;
  bool ignore_eos = false;
  int top_logprobs = -1;  // < 0: no logprobs; 0: the chosen token's; k: and the top k
  bool skip_special_tokens = true;
};

struct TokenOut {
  TokenId id = 0;
  float logprob = 0;                           // log-softmax of the model's logits
  std::vector<std::pair<TokenId, float>> top;  // top_logprobs, best first
};

// What the consumer receives: new text and tokens, and at the end the finish reason and usage.
struct Event {
  std::string text;  // decoded text (stop strings and what may become one held back)
  std::vector<TokenOut> tokens;
  bool finished = false;
  std::string finish_reason;  // "stop", "length", "cancelled", "error"
  std::string error;
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};

// One request's event channel.
class Stream {
 public:
  // The next event, waiting up to `timeout`; nullopt when none came in time.
  std::optional<Event> next(std::chrono::milliseconds timeout);
  // The consumer is gone: the engine drops the request at its next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  uint64_t id() const { return id_; }

 private:
  friend class Engine;
  void push(Event e);
  uint64_t id_ = 0;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> q_;
};

// Prometheus-style histogram (cumulative buckets in seconds or tokens).
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bound, then +Inf
  double sum = 0;
  uint64_t count = 0;
  explicit Histogram(std::vector<double> b = {})
      : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
  void observe(double v);
};

struct EngineStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_free = 0, kv_blocks_cached = 0;
  uint64_t prompt_tokens = 0, generation_tokens = 0;
  uint64_t prefix_queries = 0, prefix_hits = 0;  // in tokens
  uint64_t preemptions = 0, steps = 0;
  std::map<std::string, uint64_t> finished;  // by finish reason
  Histogram ttft, itl, e2e, queue;
};

class Engine {
 public:
  // `model` and `tok` must outlive the engine. Starts the step thread.
  Engine(CausalLM& model, const tokenizers::Tokenizer& tok, EngineOptions opt);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. nullptr when the queue is full or the engine is draining. Throws
  // InvalidArgument when prompt + max_tokens cannot fit ctx_size or the KV pool.
  std::shared_ptr<Stream> submit(std::vector<TokenId> prompt, SamplingOptions s,
                                 std::unique_ptr<TokenConstraint> constraint = nullptr);
  // Stops admitting, lets running and queued requests finish until `deadline`, then cancels
  // what is left; returns when the step thread has stopped.
  void drain(std::chrono::steady_clock::time_point deadline);

  EngineStats stats() const;
  const EngineOptions& options() const { return opt_; }
  int64_t vocab_size() const;

 private:
  struct Seq;
  struct Blocks;
  void loop();
  bool step();
  void admit();
  bool ensure_blocks(Seq& s, int64_t slots);
  void preempt(Seq& victim);
  void finish(Seq& s, const std::string& reason, const std::string& error = {});
  void release(Seq& s);
  void sample(Seq& s, const float* logits);
  void emit_text(Seq& s, bool final);
  void register_full_blocks(Seq& s);
  void refresh_stats();

  CausalLM& model_;
  const tokenizers::Tokenizer& tok_;
  EngineOptions opt_;
  std::unique_ptr<nn::PagedKVPool> pool_holder_;
  std::unique_ptr<Blocks> blocks_;
  mutable std::mutex mu_;  // waiting_, stats_, draining_
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Seq>> waiting_;
  std::vector<std::unique_ptr<Seq>> running_;  // admission order
  EngineStats stats_;
  bool draining_ = false, stop_ = false;
  std::chrono::steady_clock::time_point deadline_{};
  uint64_t next_id_ = 1;
  std::thread thread_;
};

}  // namespace ohm::serve
