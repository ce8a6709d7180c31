// The serving engine: scheduler, block manager with prefix caching, sampling and text streaming.
#include "ohm/serve/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <list>
#include <random>
#include <unordered_map>

#include "ohm/core/error.h"
#include "ohm/generation/logits_process.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::serve {

using Clock = std::chrono::steady_clock;

namespace {
double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
std::vector<double> latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
          1.0,   2.5,  5.0,   7.5,  10,    20,  40,   80,  160, 320, 640};
}
// FNV-1a over the block's token ids, chained on the parent block's hash.
uint64_t block_hash(uint64_t parent, const TokenId* t, int64_t n) {
  uint64_t h = parent ^ 0xcbf29ce484222325ull;
  for (int64_t i = 0; i < n; ++i) {
    auto v = static_cast<uint32_t>(t[i]);
    for (int b = 0; b < 4; ++b) {
      h ^= (v >> (8 * b)) & 0xff;
      h *= 0x100000001b3ull;
    }
  }
  return h == 0 ? 1 : h;
}
}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

// ---- events -------------------------------------------------------------------------------

void Stream::push(Event e) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    q_.push_back(std::move(e));
  }
  cv_.notify_one();
}

std::optional<Event> Stream::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!cv_.wait_for(lk, timeout, [&] { return !q_.empty(); })) return std::nullopt;
  Event e = std::move(q_.front());
  q_.pop_front();
  return e;
}

// ---- blocks -------------------------------------------------------------------------------

// Reference-counted KV blocks; full blocks carry the hash of their token prefix and stay
// cached (evictable, least recently used first) after their last user releases them.
struct Engine::Blocks {
  int64_t n = 0, bt = 0;
  std::vector<int32_t> ref;
  std::vector<uint64_t> hash;                // 0: not cached
  std::vector<std::vector<TokenId>> tokens;  // the block's tokens, for cached blocks
  std::vector<int32_t> free_list;            // ref 0, not cached
  std::list<int32_t> lru;                    // ref 0, cached; front = oldest
  std::vector<std::list<int32_t>::iterator> lru_pos;
  std::unordered_map<uint64_t, int32_t> by_hash;

  Blocks(int64_t n_blocks, int64_t block_tokens)
      : n(n_blocks),
        bt(block_tokens),
        ref(static_cast<size_t>(n_blocks), 0),
        hash(static_cast<size_t>(n_blocks), 0),
        tokens(static_cast<size_t>(n_blocks)),
        lru_pos(static_cast<size_t>(n_blocks)) {
    for (int64_t b = n_blocks - 1; b >= 0; --b) free_list.push_back(static_cast<int32_t>(b));
  }
  int64_t available() const { return static_cast<int64_t>(free_list.size() + lru.size()); }
  int64_t used() const { return n - available(); }
  std::optional<int32_t> alloc() {
    int32_t b;
    if (!free_list.empty()) {
      b = free_list.back();
      free_list.pop_back();
    } else if (!lru.empty()) {  // evict the least recently used cached block
      b = lru.front();
      lru.pop_front();
      by_hash.erase(hash[b]);
      hash[b] = 0;
      tokens[b].clear();
    } else {
      return std::nullopt;
    }
    ref[b] = 1;
    return b;
  }
  // A cached block holding exactly these tokens after this parent, referenced once more.
  std::optional<int32_t> lookup(uint64_t h, const TokenId* t) {
    auto it = by_hash.find(h);
    if (it == by_hash.end()) return std::nullopt;
    const int32_t b = it->second;
    if (!std::equal(tokens[b].begin(), tokens[b].end(), t)) return std::nullopt;
    if (ref[b]++ == 0) lru.erase(lru_pos[b]);
    return b;
  }
  void release(int32_t b) {
    if (--ref[b] > 0) return;
    if (hash[b] != 0) {
      lru.push_back(b);
      lru_pos[b] = std::prev(lru.end());
    } else {
      free_list.push_back(b);
    }
  }
  void cache(int32_t b, uint64_t h, const TokenId* t) {
    if (hash[b] != 0 || by_hash.count(h)) return;  // already cached, or another block holds it
    hash[b] = h;
    tokens[b].assign(t, t + bt);
    by_hash.emplace(h, b);
  }
};

// ---- sequences ----------------------------------------------------------------------------

struct Engine::Seq {
  std::shared_ptr<Stream> stream;
  SamplingOptions so;
  std::unique_ptr<TokenConstraint> constraint;
  generation::LogitsProcessorList procs;
  std::mt19937_64 rng;
  std::vector<TokenId> tokens;  // prompt + generated
  int64_t prompt_len = 0;
  int64_t n_cached = 0;          // tokens whose K/V are in the blocks
  std::vector<int32_t> blocks;   // block table
  std::vector<uint64_t> hashes;  // hash of each full, registered block
  int64_t cached_tokens = 0;     // prompt tokens taken from the prefix cache
  // RoPE's dynamic / longrope frequencies follow the sequence length as one forward of this
  // request alone would see it: while (re)prefilling, the tokens it was (re)started with.
  int64_t prefill_len = 0;
  bool shareable = true;  // its K/V so far use short-sequence frequencies (prefix cache)
  std::unique_ptr<tokenizers::DecodeStream> ds;
  std::string text;               // decoded generated text
  size_t emitted = 0;             // bytes of `text` sent
  std::vector<TokenOut> pending;  // tokens not yet sent
  Clock::time_point arrival, scheduled, first_token, last_token;
  bool started = false, done = false;
  int64_t generated() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
};

// ---- engine -------------------------------------------------------------------------------

Engine::Engine(CausalLM& model, const tokenizers::Tokenizer& tok, EngineOptions opt)
    : model_(model), tok_(tok), opt_(opt) {
  if (opt_.parallel < 1) throw InvalidArgument(ErrorContext().key("parallel"), "must be >= 1");
  if (opt_.ctx_size < 2) throw InvalidArgument(ErrorContext().key("ctx_size"), "must be >= 2");
  if (opt_.max_batch_tokens < opt_.parallel)
    opt_.max_batch_tokens = opt_.parallel;  // room for one decode row per running sequence
  const int64_t per_seq = (opt_.ctx_size + opt_.block_tokens - 1) / opt_.block_tokens;
  if (opt_.kv_blocks <= 0) opt_.kv_blocks = per_seq * opt_.parallel;
  auto pool = model_.make_paged_pool(opt_.kv_blocks, opt_.block_tokens);
  pool_holder_ = std::move(pool);
  blocks_ = std::make_unique<Blocks>(opt_.kv_blocks, opt_.block_tokens);
  stats_.ttft = Histogram(latency_buckets());
  stats_.itl = Histogram(latency_buckets());
  stats_.e2e = Histogram(latency_buckets());
  stats_.queue = Histogram(latency_buckets());
  stats_.kv_blocks_total = opt_.kv_blocks;
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Engine::vocab_size() const {
  return model_.vocab_size();
}

std::shared_ptr<Stream> Engine::submit(std::vector<TokenId> prompt, SamplingOptions so,
                                       std::unique_ptr<TokenConstraint> constraint) {
  const auto n = static_cast<int64_t>(prompt.size());
  if (n == 0) throw InvalidArgument(ErrorContext().key("prompt"), "the prompt is empty");
  if (so.max_tokens < 1) so.max_tokens = 1;
  if (n + 1 > opt_.ctx_size)
    throw InvalidArgument(ErrorContext().key("prompt"),
                          "the prompt has " + std::to_string(n) + " tokens; the context is " +
                              std::to_string(opt_.ctx_size) + " (" +
                              std::to_string(n + 1 - opt_.ctx_size) + " too many)");
  // Admission needs the prompt's blocks and one spare (admit()).
  if ((n + opt_.block_tokens - 1) / opt_.block_tokens + 1 > opt_.kv_blocks)
    throw InvalidArgument(ErrorContext().key("prompt"),
                          "the prompt needs more KV blocks than the pool has (" +
                              std::to_string(opt_.kv_blocks) + " of " +
                              std::to_string(opt_.block_tokens) + " tokens)");
  for (TokenId t : prompt)
    if (t < 0 || t >= model_.vocab_size())
      throw InvalidArgument(ErrorContext().key("prompt"),
                            "token id " + std::to_string(t) + " outside the vocabulary (" +
                                std::to_string(model_.vocab_size()) + ")");
  auto s = std::make_unique<Seq>();
  s->stream = std::make_shared<Stream>();
  s->prompt_len = n;
  s->tokens = std::move(prompt);
  s->rng.seed(so.seed);
  s->procs = generation::build_logits_processors(so.config);
  s->ds = std::make_unique<tokenizers::DecodeStream>(tok_, so.skip_special_tokens);
  s->so = std::move(so);
  s->constraint = std::move(constraint);
  s->arrival = Clock::now();
  std::shared_ptr<Stream> out = s->stream;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (draining_ || stop_ || static_cast<int>(waiting_.size()) >= opt_.max_queue) return nullptr;
    out->id_ = next_id_++;
    waiting_.push_back(std::move(s));
    stats_.waiting = static_cast<int64_t>(waiting_.size());
  }
  cv_.notify_all();
  return out;
}

void Engine::drain(Clock::time_point deadline) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    draining_ = true;
    deadline_ = deadline;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void Engine::release(Seq& s) {
  for (int32_t b : s.blocks) blocks_->release(b);
  s.blocks.clear();
  s.hashes.clear();
  s.n_cached = 0;
}

void Engine::finish(Seq& s, const std::string& reason, const std::string& error) {
  if (s.done) return;
  s.done = true;
  emit_text(s, true);
  Event e;
  e.text = s.text.substr(std::min(s.emitted, s.text.size()));
  s.emitted = s.text.size();
  e.tokens = std::move(s.pending);
  e.finished = true;
  e.finish_reason = reason;
  e.error = error;
  e.prompt_tokens = s.prompt_len;
  e.completion_tokens = s.generated();
  e.cached_tokens = s.cached_tokens;
  release(s);
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.finished[reason];
    stats_.e2e.observe(seconds(Clock::now() - s.arrival));
  }
  s.stream->push(std::move(e));
}

void Engine::loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || draining_ || !waiting_.empty() || !running_.empty(); });
      if (stop_) break;
      if (draining_ && waiting_.empty() && running_.empty()) break;
    }
    if (draining_ && Clock::now() >= deadline_) break;  // the rest is cancelled below
    try {
      step();
    } catch (const std::exception& ex) {
      // A failed step (out of memory, a model error) fails the requests in it, not the server.
      for (auto& s : running_) finish(*s, "error", ex.what());
      running_.clear();
    }
    refresh_stats();
  }
  // Stopped (or past the drain deadline): whatever is left is cancelled.
  std::deque<std::unique_ptr<Seq>> w;
  {
    std::lock_guard<std::mutex> lk(mu_);
    w.swap(waiting_);
  }
  for (auto& s : w) finish(*s, "cancelled");
  for (auto& s : running_) finish(*s, "cancelled");
  running_.clear();
  refresh_stats();
}

void Engine::refresh_stats() {
  std::lock_guard<std::mutex> lk(mu_);
  stats_.running = static_cast<int64_t>(running_.size());
  stats_.waiting = static_cast<int64_t>(waiting_.size());
  stats_.kv_blocks_used = blocks_->used();
  stats_.kv_blocks_free = blocks_->available();
  stats_.kv_blocks_cached = static_cast<int64_t>(blocks_->lru.size());
}

bool Engine::ensure_blocks(Seq& s, int64_t slots) {
  const int64_t need = (slots + blocks_->bt - 1) / blocks_->bt;
  while (static_cast<int64_t>(s.blocks.size()) < need) {
    auto b = blocks_->alloc();
    if (!b) return false;
    s.blocks.push_back(*b);
  }
  return true;
}

void Engine::preempt(Seq& victim) {
  release(victim);
  victim.started = false;
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.preemptions;
}

void Engine::admit() {
  const int64_t bt = blocks_->bt;
  while (static_cast<int>(running_.size()) < opt_.parallel) {
    std::unique_ptr<Seq> s;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (waiting_.empty()) return;
      if (waiting_.front()->stream->cancelled()) {
        s = std::move(waiting_.front());
        waiting_.pop_front();
      }
    }
    if (s) {
      finish(*s, "cancelled");
      continue;
    }
    Seq& w = [&]() -> Seq& {
      std::lock_guard<std::mutex> lk(mu_);
      return *waiting_.front();
    }();
    const auto len = static_cast<int64_t>(w.tokens.size());
    // Prefix cache: full blocks strictly before the last token (one token is always computed,
    // for its logits).
    int64_t matched = 0;
    uint64_t parent = 0;
    w.prefill_len = len;
    w.shareable = model_.rope_base_at(len);
    if (opt_.prefix_cache && w.shareable) {
      for (int64_t b = 0; (b + 1) * bt <= len - 1; ++b) {
        const uint64_t h = block_hash(parent, w.tokens.data() + b * bt, bt);
        auto blk = blocks_->lookup(h, w.tokens.data() + b * bt);
        if (!blk) break;
        w.blocks.push_back(*blk);
        w.hashes.push_back(h);
        parent = h;
        matched += bt;
      }
    }
    const int64_t need = (len + bt - 1) / bt - static_cast<int64_t>(w.blocks.size());
    if (need + 1 > blocks_->available()) {  // wait for blocks (keep one spare for decoding)
      release(w);
      return;
    }
    ensure_blocks(w, len);
    w.n_cached = matched;
    if (!w.started && w.generated() == 0) w.cached_tokens = matched;
    w.scheduled = Clock::now();
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (w.generated() == 0) {
        stats_.prefix_queries += static_cast<uint64_t>(len);
        stats_.prefix_hits += static_cast<uint64_t>(matched);
        stats_.queue.observe(seconds(w.scheduled - w.arrival));
      }
      w.started = true;
      running_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
  }
}

void Engine::register_full_blocks(Seq& s) {
  if (!opt_.prefix_cache || !s.shareable) return;
  const int64_t bt = blocks_->bt;
  while (static_cast<int64_t>(s.hashes.size() + 1) * bt <= s.n_cached) {
    const size_t b = s.hashes.size();
    const uint64_t parent = b == 0 ? 0 : s.hashes[b - 1];
    const TokenId* t = s.tokens.data() + static_cast<int64_t>(b) * bt;
    const uint64_t h = block_hash(parent, t, bt);
    blocks_->cache(s.blocks[b], h, t);
    s.hashes.push_back(h);
  }
}

bool Engine::step() {
  // Cancelled requests leave first, so their blocks are free for this step.
  for (auto& s : running_)
    if (s->stream->cancelled()) finish(*s, "cancelled");
  std::erase_if(running_, [](const auto& s) { return s->done; });
  if (!draining_ || Clock::now() < deadline_) admit();
  if (running_.empty()) return false;

  // A model whose RoPE switches frequencies past a length (Phi-3's longrope) recomputes the
  // whole sequence when a decode step crosses it, as its transformers generation does
  // (CausalLM::recompute_cache_before).
  for (auto& sp : running_) {
    Seq& s = *sp;
    if (s.done || !s.started || static_cast<int64_t>(s.tokens.size()) - s.n_cached != 1) continue;
    if (!model_.recompute_cache_before(s.n_cached, s.n_cached + 1)) continue;
    release(s);
    s.prefill_len = static_cast<int64_t>(s.tokens.size());
    s.shareable = false;
  }

  // Rows: every sequence gets what it has left to compute, decode rows (1 token) first, then
  // prompt chunks in admission order, within max_batch_tokens.
  struct Plan {
    Seq* s;
    int64_t n;
  };
  std::vector<Plan> plan;
  int64_t budget = opt_.max_batch_tokens;
  for (int pass = 0; pass < 2; ++pass)
    for (auto& sp : running_) {
      Seq& s = *sp;
      if (s.done || !s.started) continue;  // !started: preempted in this step
      const int64_t left = static_cast<int64_t>(s.tokens.size()) - s.n_cached;
      if ((pass == 0) != (left == 1) || left <= 0 || budget <= 0) continue;
      const int64_t n = std::min(left, budget);
      // Blocks for the new slots; preempt the newest other sequences when none are free.
      while (!ensure_blocks(s, s.n_cached + n)) {
        Seq* victim = nullptr;
        for (auto it = running_.rbegin(); it != running_.rend(); ++it)
          if (it->get() != &s && !(*it)->done && !(*it)->blocks.empty()) {
            victim = it->get();
            break;
          }
        if (!victim) break;
        std::erase_if(plan, [&](const Plan& p) { return p.s == victim; });
        preempt(*victim);
      }
      if (static_cast<int64_t>(s.blocks.size()) * blocks_->bt < s.n_cached + n) {
        finish(s, "length");  // cannot grow even alone: the pool is too small
        continue;
      }
      plan.push_back({&s, n});
      budget -= n;
    }
  // Preempted sequences go back to the front of the queue (recomputed from their tokens).
  {
    std::vector<std::unique_ptr<Seq>> keep;
    std::lock_guard<std::mutex> lk(mu_);
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      if (!(*it)->done && !(*it)->started)
        waiting_.push_front(std::move(*it));
      else
        keep.push_back(std::move(*it));
    }
    std::reverse(keep.begin(), keep.end());
    running_ = std::move(keep);
  }
  std::erase_if(running_, [](const auto& s) { return s->done; });
  if (plan.empty()) return false;

  std::vector<TokenId> ids;
  std::vector<int32_t> pos;
  std::vector<nn::PagedSeq> seqs;
  std::vector<int64_t> logit_rows;
  std::vector<Seq*> logit_seqs;
  for (const Plan& p : plan) {
    Seq& s = *p.s;
    nn::PagedSeq ps;
    ps.offset = static_cast<int64_t>(ids.size());
    ps.n_new = p.n;
    ps.n_past = s.n_cached;
    ps.blocks = s.blocks.data();
    ps.n_blocks = static_cast<int64_t>(s.blocks.size());
    ps.rope_len = std::max(s.n_cached + p.n, s.prefill_len);
    if (s.shareable && !model_.rope_base_at(ps.rope_len)) s.shareable = false;
    for (int64_t t = 0; t < p.n; ++t) {
      ids.push_back(s.tokens[static_cast<size_t>(s.n_cached + t)]);
      pos.push_back(static_cast<int32_t>(s.n_cached + t));
    }
    seqs.push_back(ps);
    if (s.n_cached + p.n == static_cast<int64_t>(s.tokens.size())) {
      logit_rows.push_back(ps.offset + p.n - 1);
      logit_seqs.push_back(&s);
    }
  }
  Tensor logits = model_.forward_paged(ids, pos, *pool_holder_, seqs, logit_rows);
  for (const Plan& p : plan) {
    p.s->n_cached += p.n;
    register_full_blocks(*p.s);
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.steps;
    for (const Plan& p : plan)
      if (p.s->n_cached <= p.s->prompt_len) stats_.prompt_tokens += static_cast<uint64_t>(p.n);
  }
  const int64_t V = logits.dim(1);
  for (size_t i = 0; i < logit_seqs.size(); ++i)
    sample(*logit_seqs[i], logits.data<float>() + static_cast<int64_t>(i) * V);
  std::erase_if(running_, [](const auto& s) { return s->done; });
  return true;
}

void Engine::sample(Seq& s, const float* logits) {
  const int64_t V = model_.vocab_size();
  std::vector<float> scores(logits, logits + V);
  TokenOut out;
  std::vector<float> lp;
  if (s.so.top_logprobs >= 0) {
    lp = scores;
    generation::log_softmax(lp);
  }
  if (s.constraint) s.constraint->mask(scores);
  if (s.so.pre) s.so.pre->apply(s.tokens, s.prompt_len, scores);
  if (s.so.ignore_eos)
    for (int64_t e : s.so.config.eos_token_id)
      if (e >= 0 && e < V) scores[static_cast<size_t>(e)] = -std::numeric_limits<float>::infinity();
  if (!s.procs.empty()) s.procs.apply(s.tokens, s.prompt_len, scores);
  const TokenId tok = static_cast<TokenId>(
      s.so.config.do_sample ? generation::sample_token(scores, s.rng) : generation::argmax(scores));
  out.id = tok;
  if (!lp.empty()) {
    out.logprob = lp[static_cast<size_t>(tok)];
    if (s.so.top_logprobs > 0) {
      std::vector<int32_t> idx(static_cast<size_t>(V));
      for (int64_t i = 0; i < V; ++i) idx[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      const auto k = std::min<int64_t>(s.so.top_logprobs, V);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
        return lp[a] > lp[b] || (lp[a] == lp[b] && a < b);
      });
      for (int64_t i = 0; i < k; ++i) out.top.emplace_back(idx[i], lp[idx[i]]);
    }
  }
  const auto now = Clock::now();
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.generation_tokens;
    if (s.generated() == 0)
      stats_.ttft.observe(seconds(now - s.arrival));
    else
      stats_.itl.observe(seconds(now - s.last_token));
  }
  s.last_token = now;
  s.tokens.push_back(tok);
  if (s.constraint) s.constraint->accept(tok);
  s.pending.push_back(std::move(out));

  const bool eos = !s.so.ignore_eos &&
                   std::find(s.so.config.eos_token_id.begin(), s.so.config.eos_token_id.end(),
                             tok) != s.so.config.eos_token_id.end();
  const bool stop_id = std::find(s.so.stop_token_ids.begin(), s.so.stop_token_ids.end(), tok) !=
                       s.so.stop_token_ids.end();
  if (!eos && !stop_id) {
    if (auto d = s.ds->step(tok)) s.text += *d;
  }
  // Stop strings: the earliest match that ends in the new text cuts the output there.
  if (!s.so.stop.empty()) {
    size_t cut = std::string::npos;
    for (const auto& st : s.so.stop) {
      if (st.empty()) continue;
      const size_t from = s.emitted >= st.size() ? s.emitted - st.size() + 1 : 0;
      const size_t p = s.text.find(st, from);
      if (p != std::string::npos) cut = std::min(cut, p);
    }
    if (cut != std::string::npos) {
      s.text.resize(std::max(cut, s.emitted));
      return finish(s, "stop");
    }
  }
  if (eos || stop_id || (s.constraint && s.constraint->done())) return finish(s, "stop");
  if (s.generated() >= s.so.max_tokens || static_cast<int64_t>(s.tokens.size()) >= opt_.ctx_size)
    return finish(s, "length");
  emit_text(s, false);
}

void Engine::emit_text(Seq& s, bool final) {
  size_t upto = s.text.size();
  if (!final) {
    // Hold back a tail that may still become a stop string.
    for (const auto& st : s.so.stop)
      for (size_t k = std::min(st.size() - 1, s.text.size()); k > 0; --k)
        if (s.text.compare(s.text.size() - k, k, st, 0, k) == 0) {
          upto = std::min(upto, s.text.size() - k);
          break;
        }
  }
  if (final) return;  // finish() sends the rest with the final event
  if (upto <= s.emitted && s.pending.empty()) return;
  Event e;
  if (upto > s.emitted) e.text = s.text.substr(s.emitted, upto - s.emitted);
  s.emitted = std::max(s.emitted, upto);
  e.tokens = std::move(s.pending);
  s.pending.clear();
  s.stream->push(std::move(e));
}

}  // namespace ohm::serve
