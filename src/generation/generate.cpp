// generate(): greedy / sampling / beam search, mirroring transformers' GenerationMixin
// (_sample and the vectorised _beam_search of transformers 5.x) step for step.
#include "ohm/generation/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "decode.h"
#include "ohm/core/error.h"
#include "ohm/generation/logits_process.h"
#include "ohm/models/causal_lm.h"
#include "speculative_internal.h"

namespace ohm::generation {

const char* to_string(FinishReason r) {
  switch (r) {
    case FinishReason::Eos:
      return "eos";
    case FinishReason::Length:
      return "length";
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Cancelled:
      return "cancelled";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Rows of a left-padded batch: ids, attention mask and HF generate's position ids
// (cumsum(mask) - 1, padded slots at 1).
struct Batch {
  int64_t B = 0, T = 0;
  Tensor ids, mask, pos;
};

Batch left_pad(const std::vector<const std::vector<TokenId>*>& rows, TokenId pad) {
  Batch b;
  b.B = static_cast<int64_t>(rows.size());
  for (const auto* r : rows) b.T = std::max<int64_t>(b.T, static_cast<int64_t>(r->size()));
  b.ids = Tensor::empty(DType::I64, {b.B, b.T});
  b.mask = Tensor::empty(DType::I64, {b.B, b.T});
  b.pos = Tensor::empty(DType::I64, {b.B, b.T});
  auto* ids = b.ids.mutable_data<int64_t>();
  auto* mask = b.mask.mutable_data<int64_t>();
  auto* pos = b.pos.mutable_data<int64_t>();
  for (int64_t i = 0; i < b.B; ++i) {
    const auto& r = *rows[static_cast<size_t>(i)];
    const int64_t off = b.T - static_cast<int64_t>(r.size());
    for (int64_t t = 0; t < b.T; ++t) {
      const bool valid = t >= off;
      ids[i * b.T + t] = valid ? r[static_cast<size_t>(t - off)] : pad;
      mask[i * b.T + t] = valid ? 1 : 0;
      pos[i * b.T + t] = valid ? t - off : 1;
    }
  }
  return b;
}

// One decoding step's inputs: [B, 1] ids, ones mask, positions.
void step_inputs(const std::vector<TokenId>& tokens, const std::vector<int64_t>& positions,
                 Tensor& ids, Tensor& mask, Tensor& pos) {
  const int64_t B = static_cast<int64_t>(tokens.size());
  if (!ids.defined() || ids.dim(0) != B) {
    ids = Tensor::empty(DType::I64, {B, 1});
    mask = Tensor::empty(DType::I64, {B, 1});
    pos = Tensor::empty(DType::I64, {B, 1});
  }
  for (int64_t i = 0; i < B; ++i) {
    ids.mutable_data<int64_t>()[i] = tokens[static_cast<size_t>(i)];
    mask.mutable_data<int64_t>()[i] = 1;
    pos.mutable_data<int64_t>()[i] = positions[static_cast<size_t>(i)];
  }
}

// Re-runs whole rows from an empty cache: the left-padded prompt batch followed by `tails` (the
// tokens fed since, equal lengths). Used where transformers drops the cache in
// prepare_inputs_for_generation (CausalLM::recompute_cache_before: Phi-3's RoPE switch).
Tensor recompute(CausalLM& model, const Batch& prompt,
                 const std::vector<std::vector<TokenId>>& tails, nn::KVCache& cache) {
  const int64_t B = prompt.B, n = static_cast<int64_t>(tails.front().size()), T = prompt.T + n;
  Tensor ids = Tensor::empty(DType::I64, {B, T}), mask = Tensor::empty(DType::I64, {B, T}),
         pos = Tensor::empty(DType::I64, {B, T});
  for (int64_t b = 0; b < B; ++b) {
    int64_t seen = 0;
    for (int64_t t = 0; t < T; ++t) {
      const bool in_prompt = t < prompt.T;
      const int64_t id = in_prompt
                             ? prompt.ids.data<int64_t>()[b * prompt.T + t]
                             : tails[static_cast<size_t>(b)][static_cast<size_t>(t - prompt.T)];
      const int64_t m = in_prompt ? prompt.mask.data<int64_t>()[b * prompt.T + t] : 1;
      ids.mutable_data<int64_t>()[b * T + t] = id;
      mask.mutable_data<int64_t>()[b * T + t] = m;
      pos.mutable_data<int64_t>()[b * T + t] = m ? seen++ : 1;  // cumsum(mask) - 1, padding 1
    }
  }
  cache = model.make_cache(B, T + 1);
  return model.forward(ids, mask, pos, cache, /*last_only=*/true);
}

int64_t resolve_max_length(const GenerationConfig& g, int64_t prompt_len) {
  const int64_t max_len = g.max_new_tokens ? prompt_len + *g.max_new_tokens : g.max_length;
  return std::max(max_len, prompt_len + 1);  // transformers always generates at least one token
}

// The KV cache's initial capacity: the prompt and a first chunk of 256 new tokens (at most the
// whole generation); the cache grows by a quarter when generation goes on, so memory follows
// what is used rather than max_length or the model's context.
int64_t cache_capacity(const CausalLM&, int64_t prompt_len, int64_t max_length) {
  return std::min(max_length, prompt_len + 256);
}

void validate(const CausalLM& model, const std::vector<std::vector<TokenId>>& prompts,
              const GenerationConfig& g) {
  if (prompts.empty()) throw InvalidArgument("generate: no prompts");
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      throw InvalidArgument(ErrorContext().note("prompt", std::to_string(i)),
                            "generate: empty prompt (add a BOS token)");
    for (int64_t t : prompts[i])
      if (t < 0 || t >= model.vocab_size())
        throw InvalidArgument(ErrorContext().note("prompt", std::to_string(i)),
                              "token id " + std::to_string(t) + " outside the vocabulary (" +
                                  std::to_string(model.vocab_size()) + ")");
  }
  if (g.max_new_tokens && *g.max_new_tokens < 0)
    throw InvalidArgument(ErrorContext().key("max_new_tokens"), "must be >= 0");
  if (g.num_beams < 1)
    throw InvalidArgument(ErrorContext().key("num_beams"),
                          "must be >= 1, got " + std::to_string(g.num_beams));
  if (g.num_return_sequences < 1)
    throw InvalidArgument(ErrorContext().key("num_return_sequences"),
                          "must be >= 1, got " + std::to_string(g.num_return_sequences));
  if (g.do_sample && !(g.temperature > 0))
    throw InvalidArgument(ErrorContext().key("temperature"),
                          "must be > 0 when sampling (use greedy decoding instead)");
  if (g.num_return_sequences > 1 && !g.do_sample && g.num_beams == 1)
    throw InvalidArgument(ErrorContext().key("num_return_sequences"),
                          "greedy search returns one sequence per prompt; set do_sample or "
                          "num_beams");
  if (g.num_beams > 1 && g.num_return_sequences > g.num_beams)
    throw InvalidArgument(ErrorContext().key("num_return_sequences"), "must be <= num_beams");
}

TokenId pad_id(const GenerationConfig& g) {
  if (g.pad_token_id) return static_cast<TokenId>(*g.pad_token_id);
  if (!g.eos_token_id.empty()) return static_cast<TokenId>(g.eos_token_id[0]);
  return 0;
}

// ---- greedy and sampling --------------------------------------------------------------------

// GenerateOptions::constraint as the first stage of the chain.
class SharedProcessor : public LogitsProcessor {
 public:
  explicit SharedProcessor(std::shared_ptr<const LogitsProcessor> p) : p_(std::move(p)) {}
  void apply(std::span<const TokenId> seq, int64_t prompt_len,
             std::span<float> scores) const override {
    p_->apply(seq, prompt_len, scores);
  }
  std::string name() const override { return p_->name(); }

 private:
  std::shared_ptr<const LogitsProcessor> p_;
};

GenerateOutput sample_or_greedy(CausalLM& model, const std::vector<std::vector<TokenId>>& prompts,
                                const GenerateOptions& opt) {
  const GenerationConfig& g = opt.config;
  auto procs = build_logits_processors(g);
  if (opt.constraint) procs.add_front(std::make_unique<SharedProcessor>(opt.constraint));
  std::mt19937_64 rng(opt.seed.value_or(g.seed.value_or(0)));

  std::vector<const std::vector<TokenId>*> rows;
  for (const auto& p : prompts)
    for (int64_t r = 0; r < g.num_return_sequences; ++r) rows.push_back(&p);
  const TokenId pad = pad_id(g);
  Batch batch = left_pad(rows, pad);
  const int64_t B = batch.B;
  const int64_t max_length = resolve_max_length(g, batch.T);

  const detail::StoppingCriteria stopping{max_length, g.eos_token_id, opt.stop};
  detail::SampleStrategy strategy(g, procs, rng, stopping, pad, model.vocab_size());
  strategy.keep_scores = opt.output_scores;
  strategy.rows.resize(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) {
    strategy.rows[i].seq = *rows[static_cast<size_t>(i)];
    strategy.rows[i].prompt_len = static_cast<int64_t>(rows[static_cast<size_t>(i)]->size());
  }

  GenerateOutput out;
  nn::KVCache cache = model.make_cache(B, cache_capacity(model, batch.T, max_length));
  auto t0 = Clock::now();
  Tensor logits = model.forward(batch.ids, batch.mask, batch.pos, cache, /*last_only=*/true);
  out.prefill_seconds = seconds_since(t0);
  t0 = Clock::now();

  std::vector<std::vector<TokenId>> fed(static_cast<size_t>(B));  // tokens fed after the prompt
  Tensor ids, mask, pos;
  const detail::Feed feed = [&](const detail::StepOutput& step, int64_t cur_len) {
    // The token generated at cur_len sits at position prompt_len + (cur_len - T).
    std::vector<int64_t> positions(static_cast<size_t>(B));
    for (int64_t i = 0; i < B; ++i) positions[i] = strategy.rows[i].prompt_len + cur_len - batch.T;
    for (int64_t i = 0; i < B; ++i) fed[i].push_back(step.next[i]);
    if (model.recompute_cache_before(cur_len, cur_len + 1))
      return recompute(model, batch, fed, cache);
    step_inputs(step.next, positions, ids, mask, pos);
    return model.forward(ids, mask, pos, cache, /*last_only=*/true);
  };
  detail::LoopOptions lo;
  lo.start_len = batch.T;
  lo.max_length = max_length;
  lo.cancel = opt.cancel;
  lo.on_token = opt.on_token;
  detail::decode_loop(std::move(logits), strategy, feed, lo);
  out.decode_seconds = seconds_since(t0);

  out.generated_tokens = strategy.generated_tokens;
  for (auto& r : strategy.rows) {
    out.prompt_tokens += r.prompt_len;
    out.prompt_lengths.push_back(r.prompt_len);
    out.sequences.push_back(std::move(r.seq));
    out.finish_reasons.push_back(r.reason);
    out.token_logprobs.push_back(std::move(r.logprobs));
    if (opt.output_scores) out.scores.push_back(std::move(r.scores));
  }
  return out;
}

// ---- beam search (transformers 5 _beam_search) ------------------------------------------------

struct Beam {
  std::vector<TokenId> tokens;  // generated so far
  std::vector<float> logprobs;  // per generated token
  float score = 0;              // running sum of log-probs, or the finished normalised score
  bool finished = false;
};

// One step of the vectorised beam search for every batch item: the top candidates over
// (beam, token), the running and finished beams, and transformers' early-stop heuristic.
class BeamStrategy final : public detail::Strategy {
 public:
  static constexpr float kBig = 1.0e9f;

  BeamStrategy(const GenerationConfig& g, const std::vector<std::vector<TokenId>>& prompts,
               int64_t prompt_len, const detail::StoppingCriteria& stopping,
               const LogitsProcessorList& procs, std::mt19937_64& rng, int64_t vocab_size)
      : g(g),
        prompts(prompts),
        nb(g.num_beams),
        n_items(static_cast<int64_t>(prompts.size())),
        prompt_len(prompt_len),
        max_length(stopping.max_length),
        keep(std::max<int64_t>(2, 1 + static_cast<int64_t>(g.eos_token_id.size())) * nb),
        lp_pen(g.length_penalty),
        early_true(g.early_stopping == "true"),
        early_never(g.early_stopping == "never"),
        stopping(stopping),
        procs(procs),
        rng(rng),
        V(vocab_size),
        running(static_cast<size_t>(n_items), std::vector<Beam>(static_cast<size_t>(nb))),
        finished(static_cast<size_t>(n_items), std::vector<Beam>(static_cast<size_t>(nb))),
        unsatisfied(static_cast<size_t>(n_items), 1),
        lp(static_cast<size_t>(nb * vocab_size)) {
    for (auto& item : running)
      for (int64_t k = 1; k < nb; ++k) item[k].score = -kBig;
    for (auto& item : finished)
      for (auto& b : item) b.score = -kBig;
  }

  detail::StepOutput step(const Tensor& logits, int64_t cur_len, const detail::Emit&) override {
    bool all_candidates_stop = true;
    detail::StepOutput step;
    step.reorder.resize(static_cast<size_t>(n_items * nb));
    step.next.resize(static_cast<size_t>(n_items * nb));
    for (int64_t it = 0; it < n_items; ++it) {
      auto& run = running[it];
      const auto& prompt = prompts[static_cast<size_t>(it)];
      // log_softmax -> processors -> + running score, for each beam.
      for (int64_t k = 0; k < nb; ++k) {
        std::span<float> row(lp.data() + k * V, static_cast<size_t>(V));
        const float* src = logits.data<float>() + (it * nb + k) * V;
        std::copy(src, src + V, row.begin());
        log_softmax(row);
        std::vector<TokenId> seq(prompt);
        seq.insert(seq.end(), run[k].tokens.begin(), run[k].tokens.end());
        procs.apply(seq, static_cast<int64_t>(prompt.size()), row);
      }
      // Top `keep` continuations over (beam, token) of log_prob + running score.
      std::vector<int64_t> cand(static_cast<size_t>(keep));
      std::vector<float> acc(static_cast<size_t>(nb * V));
      for (int64_t k = 0; k < nb; ++k)
        for (int64_t v = 0; v < V; ++v) acc[k * V + v] = lp[k * V + v] + run[k].score;
      if (g.do_sample) {
        for (int64_t j = 0; j < keep; ++j) {
          const int64_t pick = sample_token(acc, rng);
          cand[j] = pick;
          acc[pick] = -std::numeric_limits<float>::infinity();  // without replacement
        }
        for (int64_t k = 0; k < nb; ++k)
          for (int64_t v = 0; v < V; ++v) acc[k * V + v] = lp[k * V + v] + run[k].score;
        std::stable_sort(cand.begin(), cand.end(),
                         [&](int64_t a, int64_t b) { return acc[a] > acc[b]; });
      } else {
        std::vector<int64_t> idx(acc.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), [&](int64_t a, int64_t b) {
          return acc[a] > acc[b] || (acc[a] == acc[b] && a < b);
        });
        std::copy(idx.begin(), idx.begin() + keep, cand.begin());
      }
      // Candidate beams and whether they hit a stopping criterion.
      std::vector<Beam> cb(static_cast<size_t>(keep));
      std::vector<int64_t> cb_src(static_cast<size_t>(keep));
      std::vector<char> hits(static_cast<size_t>(keep));
      for (int64_t j = 0; j < keep; ++j) {
        const int64_t k = cand[j] / V;
        const auto tok = static_cast<TokenId>(cand[j] % V);
        cb_src[j] = k;
        cb[j] = run[k];
        cb[j].tokens.push_back(tok);
        cb[j].logprobs.push_back(lp[cand[j]]);
        cb[j].score = acc[cand[j]];
        hits[j] = stopping.is_eos(tok) || stopping.reached(cur_len + 1) ||
                  (stopping.stop && stopping.stop(cb[j].tokens));
        if (!hits[j]) all_candidates_stop = false;
      }
      // Next running beams: best `nb` candidates that did not stop.
      std::vector<int64_t> order(static_cast<size_t>(keep));
      std::iota(order.begin(), order.end(), 0);
      auto run_score = [&](int64_t j) { return cb[j].score + (hits[j] ? -kBig : 0.0f); };
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return run_score(a) > run_score(b); });
      std::vector<Beam> next_run(static_cast<size_t>(nb));
      for (int64_t k = 0; k < nb; ++k) {
        next_run[k] = cb[order[k]];
        next_run[k].score = run_score(order[k]);
        step.reorder[it * nb + k] = it * nb + cb_src[order[k]];
        step.next[it * nb + k] = next_run[k].tokens.back();
      }
      // Finished beams: merge the old ones with the top-`nb` candidates that just stopped.
      auto& fin = finished[it];
      const bool full =
          std::all_of(fin.begin(), fin.end(), [](const Beam& b) { return b.finished; });
      const float denom = static_cast<float>(std::pow(cur_len + 1 - prompt_len, lp_pen));
      std::vector<Beam> merged(fin);
      for (int64_t j = 0; j < keep; ++j) {
        Beam b = cb[j];
        const bool just_finished = hits[j] && j < nb;
        b.score = cb[j].score / denom;
        if (full && early_true) b.score += -kBig;
        if (!unsatisfied[it]) b.score += -kBig;
        if (!just_finished) b.score += -kBig;
        b.finished = just_finished;
        merged.push_back(std::move(b));
      }
      std::stable_sort(merged.begin(), merged.end(),
                       [](const Beam& a, const Beam& b) { return a.score > b.score; });
      merged.resize(static_cast<size_t>(nb));
      fin = std::move(merged);
      run = std::move(next_run);
    }
    generated_tokens += n_items * nb;
    // Early-stop heuristic, then the loop condition.
    const int64_t next_len = cur_len + 1;
    for (int64_t it = 0; it < n_items; ++it) {
      const int64_t best_len =
          early_never && lp_pen > 0.0 ? max_length - prompt_len : next_len - prompt_len;
      const float best_possible =
          running[it][0].score / static_cast<float>(std::pow(best_len, lp_pen));
      float worst = std::numeric_limits<float>::infinity();
      for (const auto& b : finished[it]) worst = std::min(worst, b.score);
      bool any = false;
      for (const auto& b : finished[it]) any |= best_possible > (b.finished ? worst : -kBig);
      unsatisfied[it] = unsatisfied[it] && any;
    }
    const bool improvement =
        std::any_of(unsatisfied.begin(), unsatisfied.end(), [](char u) { return u != 0; });
    bool all_finished = true;
    for (const auto& item : finished)
      for (const auto& b : item) all_finished &= b.finished;
    step.finished = !improvement || (all_finished && early_true) || all_candidates_stop;
    return step;
  }

  const GenerationConfig& g;
  const std::vector<std::vector<TokenId>>& prompts;
  const int64_t nb, n_items, prompt_len, max_length, keep;
  const double lp_pen;
  const bool early_true, early_never;
  const detail::StoppingCriteria& stopping;
  const LogitsProcessorList& procs;
  std::mt19937_64& rng;
  const int64_t V;
  std::vector<std::vector<Beam>> running, finished;
  std::vector<char> unsatisfied;
  std::vector<float> lp;
  int64_t generated_tokens = 0;
};

GenerateOutput beam_search(CausalLM& model, const std::vector<std::vector<TokenId>>& prompts,
                           const GenerateOptions& opt) {
  const GenerationConfig& g = opt.config;
  const int64_t nb = g.num_beams;
  const auto procs = build_logits_processors(g);
  std::mt19937_64 rng(opt.seed.value_or(g.seed.value_or(0)));

  std::vector<const std::vector<TokenId>*> rows;
  for (const auto& p : prompts)
    for (int64_t k = 0; k < nb; ++k) rows.push_back(&p);
  Batch batch = left_pad(rows, pad_id(g));
  const int64_t n_items = static_cast<int64_t>(prompts.size());
  const int64_t prompt_len = batch.T;  // decoder_prompt_len
  const int64_t max_length = resolve_max_length(g, prompt_len);
  const detail::StoppingCriteria stopping{max_length, g.eos_token_id, opt.stop};
  BeamStrategy beams(g, prompts, prompt_len, stopping, procs, rng, model.vocab_size());

  GenerateOutput out;
  nn::KVCache cache = model.make_cache(n_items * nb, cache_capacity(model, prompt_len, max_length));
  auto t0 = Clock::now();
  Tensor logits = model.forward(batch.ids, batch.mask, batch.pos, cache, /*last_only=*/true);
  out.prefill_seconds = seconds_since(t0);
  t0 = Clock::now();

  Tensor ids, mask, pos;
  const detail::Feed feed = [&](const detail::StepOutput& step, int64_t cur_len) {
    // Reorder the cache rows to follow the surviving beams and feed their last tokens.
    cache.reorder(step.reorder);
    std::vector<int64_t> positions(static_cast<size_t>(n_items * nb));
    for (int64_t r = 0; r < n_items * nb; ++r)
      positions[r] =
          static_cast<int64_t>(prompts[static_cast<size_t>(r / nb)].size()) + cur_len - prompt_len;
    if (model.recompute_cache_before(cur_len, cur_len + 1)) {
      std::vector<std::vector<TokenId>> tails;
      for (int64_t r = 0; r < n_items * nb; ++r)
        tails.push_back(beams.running[r / nb][r % nb].tokens);
      return recompute(model, batch, tails, cache);
    }
    step_inputs(step.next, positions, ids, mask, pos);
    return model.forward(ids, mask, pos, cache, /*last_only=*/true);
  };
  detail::LoopOptions lo;
  lo.start_len = prompt_len;
  lo.max_length = max_length;
  lo.cancel = opt.cancel;  // beams stream nothing: their tokens are only final at the end
  detail::decode_loop(std::move(logits), beams, feed, lo);
  out.decode_seconds = seconds_since(t0);
  out.generated_tokens = beams.generated_tokens;

  for (int64_t it = 0; it < n_items; ++it) {
    const auto& prompt = prompts[static_cast<size_t>(it)];
    for (int64_t k = 0; k < g.num_return_sequences; ++k) {
      const Beam& b = beams.finished[it][k];
      std::vector<TokenId> seq(prompt);
      seq.insert(seq.end(), b.tokens.begin(), b.tokens.end());
      out.sequences.push_back(std::move(seq));
      out.prompt_lengths.push_back(static_cast<int64_t>(prompt.size()));
      out.sequences_scores.push_back(b.score);
      out.token_logprobs.push_back(b.logprobs);
      const bool eos = !b.tokens.empty() && stopping.is_eos(b.tokens.back());
      out.finish_reasons.push_back(eos ? FinishReason::Eos : FinishReason::Length);
    }
    out.prompt_tokens += static_cast<int64_t>(prompt.size());
  }
  return out;
}

// ---- speculative decoding (one sequence) ----------------------------------------------------

GenerateOutput speculative_generate(CausalLM& model, const std::vector<TokenId>& prompt,
                                    const GenerateOptions& opt) {
  const GenerationConfig& g = opt.config;
  const auto procs = build_logits_processors(g);
  std::mt19937_64 rng(opt.seed.value_or(g.seed.value_or(0)));
  const auto prompt_len = static_cast<int64_t>(prompt.size());
  const int64_t max_length = resolve_max_length(g, prompt_len);
  const detail::StoppingCriteria stopping{max_length, g.eos_token_id, opt.stop};
  detail::SampleStrategy::Row row;
  row.seq = prompt;
  row.prompt_len = prompt_len;

  nn::KVCache cache = model.make_cache(1, cache_capacity(model, prompt_len, max_length));
  std::vector<TokenId> held;
  detail::CachedModel target{model, cache, held};
  nn::KVCache draft_cache;
  std::vector<TokenId> draft_held;
  std::optional<detail::CachedModel> draft;
  if (opt.speculative.draft) {
    draft_cache = opt.speculative.draft->make_cache(
        1, cache_capacity(*opt.speculative.draft, prompt_len, max_length));
    draft.emplace(detail::CachedModel{*opt.speculative.draft, draft_cache, draft_held});
  }
  detail::SpecLoop lo{g, procs, rng, stopping, opt.speculative};
  lo.cancel = opt.cancel;
  if (opt.on_token) lo.on_token = [&](TokenId tok) { return opt.on_token(0, tok); };
  lo.keep_scores = opt.output_scores;
  const detail::SpecStats st =
      detail::speculative_decode(target, draft ? &*draft : nullptr, row, lo);

  GenerateOutput out;
  out.prefill_seconds = st.prefill_seconds;
  out.decode_seconds = st.decode_seconds;
  out.drafted_tokens = st.drafted;
  out.accepted_tokens = st.accepted;
  out.prompt_tokens = prompt_len;
  out.generated_tokens = static_cast<int64_t>(row.generated.size());
  out.prompt_lengths.push_back(prompt_len);
  out.sequences.push_back(std::move(row.seq));
  out.finish_reasons.push_back(row.reason);
  out.token_logprobs.push_back(std::move(row.logprobs));
  if (opt.output_scores) out.scores.push_back(std::move(row.scores));
  return out;
}

}  // namespace

GenerateOutput generate(CausalLM& model, const std::vector<std::vector<TokenId>>& prompts,
                        const GenerateOptions& opt) {
  validate(model, prompts, opt.config);
  if (opt.constraint &&
      (prompts.size() != 1 || opt.config.num_return_sequences != 1 || opt.config.num_beams > 1))
    throw InvalidArgument(ErrorContext().key("constraint"),
                          "a constraint (structured output) applies to one sequence: one prompt, "
                          "num_return_sequences 1, no beam search");
  if (opt.speculative.enabled()) {
    detail::check_speculative(model, opt.speculative);
    if (prompts.size() != 1 || opt.config.num_return_sequences != 1 || opt.config.num_beams > 1 ||
        opt.constraint)
      throw InvalidArgument(ErrorContext().key("speculative"),
                            "speculative decoding (prompt lookup, a draft model) decodes one "
                            "sequence: one prompt, num_return_sequences 1, no beam search, no "
                            "constraint");
    return speculative_generate(model, prompts[0], opt);
  }
  if (opt.config.num_beams > 1) return beam_search(model, prompts, opt);
  return sample_or_greedy(model, prompts, opt);
}

std::vector<TokenId> greedy_generate(CausalLM& model, const std::vector<TokenId>& input_ids,
                                     int64_t max_new_tokens,
                                     const std::vector<TokenId>& eos_token_ids) {
  if (input_ids.empty()) throw InvalidArgument("greedy_generate: empty prompt");
  if (max_new_tokens <= 0) return input_ids;
  GenerateOptions opt;
  opt.config.max_new_tokens = max_new_tokens;
  opt.config.eos_token_id.assign(eos_token_ids.begin(), eos_token_ids.end());
  return std::move(generate(model, {input_ids}, opt).sequences[0]);
}

// ---- Session -----------------------------------------------------------------------------------

struct Session::State {
  nn::KVCache cache;
  std::mt19937_64 rng;
  LogitsProcessorList procs;
  nn::KVCache draft_cache;  // the draft model's (speculative decoding)
  std::vector<TokenId> draft_held;
};

Session::Session(CausalLM& model, GenerationConfig config, uint64_t seed)
    : model_(model), config_(std::move(config)), st_(std::make_unique<State>()) {
  st_->cache = model_.make_cache(1, 256);
  st_->rng.seed(seed);
}

Session::~Session() = default;

void Session::set_speculative(const SpeculativeOptions& s) {
  if (s.enabled()) detail::check_speculative(model_, s);
  if (s.draft != spec_.draft) {
    st_->draft_cache = s.draft ? s.draft->make_cache(1, 256) : nn::KVCache();
    st_->draft_held.clear();
  }
  spec_ = s;
}

std::vector<TokenId> Session::generate(const std::vector<TokenId>& context,
                                       const std::function<bool(TokenId)>& on_token,
                                       const std::function<bool(const std::vector<TokenId>&)>& stop,
                                       const std::atomic<bool>* cancel) {
  validate(model_, {context}, config_);
  if (config_.num_beams > 1)
    throw UnsupportedError(ErrorContext().key("num_beams"), "chat sessions decode one beam");
  st_->procs = build_logits_processors(config_);
  drafted_ = accepted_ = 0;
  if (spec_.enabled()) {
    const auto prompt_len = static_cast<int64_t>(context.size());
    const detail::StoppingCriteria stopping{resolve_max_length(config_, prompt_len),
                                            config_.eos_token_id, stop};
    detail::SampleStrategy::Row row;
    row.seq = context;
    row.prompt_len = prompt_len;
    detail::CachedModel target{model_, st_->cache, tokens_};
    std::optional<detail::CachedModel> draft;
    if (spec_.draft)
      draft.emplace(detail::CachedModel{*spec_.draft, st_->draft_cache, st_->draft_held});
    detail::SpecLoop lo{config_, st_->procs, st_->rng, stopping, spec_};
    lo.cancel = cancel;
    lo.on_token = on_token;
    lo.keep_logprobs = false;
    const detail::SpecStats s =
        detail::speculative_decode(target, draft ? &*draft : nullptr, row, lo);
    reused_ = s.reused;
    drafted_ = s.drafted;
    accepted_ = s.accepted;
    reason_ = row.reason;
    return std::move(row.generated);
  }
  // Reuse the cached prefix; at least the last context token is run again for its logits.
  size_t common = 0;
  while (common < tokens_.size() && common < context.size() && tokens_[common] == context[common])
    ++common;
  common = std::min(common, context.size() - 1);
  auto& cache = st_->cache;
  if (cache.dropped() > 0 && static_cast<int64_t>(common) < cache.dropped() + cache.size()) {
    // A sliding window dropped slots: the cache can't be cut back to an earlier point.
    cache.reset();
    common = 0;
  } else {
    cache.truncate(static_cast<int64_t>(common) - cache.dropped());
  }
  tokens_.assign(context.begin(), context.begin() + static_cast<std::ptrdiff_t>(common));
  reused_ = static_cast<int64_t>(common);

  auto feed = [&](const std::vector<TokenId>& toks) {
    const int64_t T = static_cast<int64_t>(toks.size());
    Tensor ids = Tensor::empty(DType::I64, {1, T});
    Tensor pos = Tensor::empty(DType::I64, {1, T});
    for (int64_t t = 0; t < T; ++t) {
      ids.mutable_data<int64_t>()[t] = toks[static_cast<size_t>(t)];
      pos.mutable_data<int64_t>()[t] = static_cast<int64_t>(tokens_.size()) + t;
    }
    const auto n_cached = static_cast<int64_t>(tokens_.size());
    if (n_cached > 0 && model_.recompute_cache_before(n_cached, n_cached + T)) {
      std::vector<TokenId> all(tokens_);
      all.insert(all.end(), toks.begin(), toks.end());
      st_->cache.reset();
      tokens_.clear();
      ids = Tensor::empty(DType::I64, {1, static_cast<int64_t>(all.size())});
      pos = Tensor::empty(DType::I64, {1, static_cast<int64_t>(all.size())});
      for (size_t t = 0; t < all.size(); ++t) {
        ids.mutable_data<int64_t>()[t] = all[t];
        pos.mutable_data<int64_t>()[t] = static_cast<int64_t>(t);
      }
      Tensor logits = model_.forward(ids, Tensor(), pos, st_->cache, /*last_only=*/true);
      tokens_ = std::move(all);
      return logits;
    }
    Tensor logits = model_.forward(ids, Tensor(), pos, st_->cache, /*last_only=*/true);
    tokens_.insert(tokens_.end(), toks.begin(), toks.end());
    return logits;
  };
  Tensor logits = feed(
      std::vector<TokenId>(context.begin() + static_cast<std::ptrdiff_t>(common), context.end()));
  const int64_t prompt_len = static_cast<int64_t>(context.size());
  const detail::StoppingCriteria stopping{resolve_max_length(config_, prompt_len),
                                          config_.eos_token_id, stop};
  detail::SampleStrategy strategy(config_, st_->procs, st_->rng, stopping, /*pad=*/0,
                                  model_.vocab_size());
  strategy.keep_logprobs = false;
  strategy.rows.resize(1);
  strategy.rows[0].seq = context;
  strategy.rows[0].prompt_len = prompt_len;
  detail::LoopOptions lo;
  lo.start_len = prompt_len;
  lo.max_length = stopping.max_length;
  lo.cancel = cancel;
  if (on_token) lo.on_token = [&](int64_t, TokenId tok) { return on_token(tok); };
  // The final token is returned but not fed: its K/V is computed by the next call.
  detail::decode_loop(
      std::move(logits), strategy,
      [&](const detail::StepOutput& step, int64_t) { return feed({step.next[0]}); }, lo);
  reason_ = strategy.rows[0].reason;
  return std::move(strategy.rows[0].generated);
}

std::function<bool(const std::vector<TokenId>&)> stop_strings_criterion(
    std::vector<std::string> stops,
    std::function<std::string(const std::vector<TokenId>&)> decode) {
  return [stops = std::move(stops), decode = std::move(decode)](const std::vector<TokenId>& gen) {
    if (gen.empty() || stops.empty()) return false;
    const std::string text = decode(gen);
    const std::string prev = decode(std::vector<TokenId>(gen.begin(), gen.end() - 1));
    for (const auto& s : stops) {
      if (s.empty()) continue;
      // The stop string must end inside the last token: an occurrence starting at or after
      // prev.size() + 1 - s.size() does.
      const size_t from = prev.size() + 1 > s.size() ? prev.size() + 1 - s.size() : 0;
      if (text.find(s, from) != std::string::npos) return true;
    }
    return false;
  };
}

}  // namespace ohm::generation
