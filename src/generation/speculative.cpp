// Speculative decoding: prompt-lookup candidates, the speculative sampling step and the
// draft / verify / roll back loop (transformers' _assisted_decoding for one sequence).
#include "ohm/generation/speculative.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "ohm/core/error.h"
#include "ohm/generation/logits_process.h"
#include "ohm/models/causal_lm.h"
#include "speculative_internal.h"

namespace ohm::generation {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// softmax in double (as sample_token draws).
void softmax_to(std::span<const float> x, std::vector<double>& p) {
  double m = -std::numeric_limits<double>::infinity();
  for (float v : x) m = std::max<double>(m, v);
  p.resize(x.size());
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += p[i] = std::isinf(m) ? 0.0 : std::exp(x[i] - m);
  if (sum > 0)
    for (auto& v : p) v /= sum;
}

// A draw from the weights w (summing to `total` > 0).
TokenId draw(std::span<const double> w, double total, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = u(rng) * total;
  double cum = 0;
  int64_t last_nonzero = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i) {
    if (w[i] <= 0) continue;
    last_nonzero = i;
    cum += w[i];
    if (r < cum) return static_cast<TokenId>(i);
  }
  return static_cast<TokenId>(last_nonzero);  // rounding: the sum fell just short of total
}

bool forbidden(float s) {
  return s == -std::numeric_limits<float>::infinity() || s == std::numeric_limits<float>::lowest();
}

}  // namespace

std::vector<TokenId> prompt_lookup_candidates(std::span<const TokenId> seq, int64_t num_tokens,
                                              int64_t max_ngram, int64_t max_length,
                                              std::span<const int64_t> eos,
                                              const LogitsProcessorList* procs, int64_t prompt_len,
                                              int64_t vocab_size) {
  const auto L = static_cast<int64_t>(seq.size());
  std::vector<TokenId> chosen;
  if (max_length == L + 1 || num_tokens <= 0 || max_ngram <= 0) return chosen;
  bool match_found = false;
  std::vector<float> fake;
  std::vector<TokenId> with_cand;
  for (int64_t n = std::min(max_ngram, L - 1); n > 0 && !match_found; --n) {
    const auto* ngram = seq.data() + (L - n);
    // Windows [idx, idx + n) left to right that equal the last n tokens.
    for (int64_t idx = 0; idx + n <= L; ++idx) {
      if (!std::equal(ngram, ngram + n, seq.data() + idx)) continue;
      const int64_t start = idx + n;
      const int64_t end = std::min({start + num_tokens, L, max_length});
      if (start >= end) continue;
      chosen.assign(seq.begin() + start, seq.begin() + end);
      if (procs) {
        // The logits processors on all-ones scores: a candidate they forbid (-inf or the
        // lowest float) ends the candidates.
        with_cand.assign(seq.begin(), seq.end());
        for (size_t c = 0; c < chosen.size(); ++c) {
          fake.assign(static_cast<size_t>(vocab_size), 1.0f);
          procs->apply(with_cand, prompt_len, fake);
          const TokenId t = chosen[c];
          if (t < 0 || t >= vocab_size || forbidden(fake[static_cast<size_t>(t)])) {
            chosen.resize(c);
            break;
          }
          with_cand.push_back(t);
        }
        if (chosen.empty()) continue;  // no valid candidate: the next occurrence
      }
      match_found = true;
      // Cut before the first EOS, or the model could accept EOS and go on after it.
      for (size_t c = 0; c < chosen.size(); ++c)
        if (std::find(eos.begin(), eos.end(), chosen[c]) != eos.end()) {
          chosen.resize(c);
          break;
        }
      break;
    }
  }
  if (!match_found) chosen.clear();
  return chosen;
}

TokenId speculative_accept(std::span<const double> p, std::span<const double> q, TokenId cand,
                           std::mt19937_64& rng, bool* accepted) {
  if (p.size() != q.size() || cand < 0 || cand >= static_cast<TokenId>(p.size()))
    throw InvalidArgument(ErrorContext().op("speculative_accept"),
                          "p and q must have one probability per token, cand inside them");
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = u(rng);
  const auto c = static_cast<size_t>(cand);
  // Accept with probability min(1, p/q): r < p/q, written without the division (q = 0 cannot
  // have drawn cand; it accepts where p > 0).
  if (r * q[c] < p[c]) {
    if (accepted) *accepted = true;
    return cand;
  }
  if (accepted) *accepted = false;
  std::vector<double> residual(p.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += residual[i] = std::max(p[i] - q[i], 0.0);
  if (!(total > 0)) {  // p == q up to rounding: the residual is empty, p itself is the answer
    double sp = 0;
    for (double v : p) sp += v;
    return draw(p, sp, rng);
  }
  return draw(residual, total, rng);
}

namespace detail {

namespace {

// The logits rows of one forward: row i is the distribution after the fed tokens' first
// (T - rows + i + 1).
struct Rows {
  Tensor logits;
  int64_t first = 0, V = 0;
  const float* row(int64_t i) const { return logits.data<float>() + (first + i) * V; }
};

// Brings m's cache to seq followed by `extra` and returns the logits of the last
// 1 + extra.size() positions: the cache is rolled back to the longest prefix it shares with
// seq (at most seq.size() - 1 tokens, so the last one is run for its logits) and the rest is
// run in one forward. A window that dropped what the rollback needs, or a model that asks for
// it (CausalLM::recompute_cache_before), runs everything again from an empty cache.
Rows advance(CachedModel& m, const std::vector<TokenId>& seq, std::span<const TokenId> extra,
             int64_t* reused = nullptr) {
  size_t common = 0;
  while (common < m.held.size() && common < seq.size() && m.held[common] == seq[common]) ++common;
  common = std::min(common, seq.size() - 1);
  if (!m.cache.rollback(static_cast<int64_t>(common))) {
    m.cache.reset();
    common = 0;
  }
  m.held.resize(common);
  std::vector<TokenId> feed(seq.begin() + static_cast<std::ptrdiff_t>(common), seq.end());
  feed.insert(feed.end(), extra.begin(), extra.end());
  if (common > 0 && m.model.recompute_cache_before(static_cast<int64_t>(common),
                                                   static_cast<int64_t>(common + feed.size()))) {
    m.cache.reset();
    m.held.clear();
    feed.assign(seq.begin(), seq.end());
    feed.insert(feed.end(), extra.begin(), extra.end());
    common = 0;
  }
  if (reused) *reused = static_cast<int64_t>(common);
  const auto T = static_cast<int64_t>(feed.size());
  const int64_t rows = 1 + static_cast<int64_t>(extra.size());
  Tensor ids = Tensor::empty(DType::I64, {1, T}), pos = Tensor::empty(DType::I64, {1, T});
  for (int64_t t = 0; t < T; ++t) {
    ids.mutable_data<int64_t>()[t] = feed[static_cast<size_t>(t)];
    pos.mutable_data<int64_t>()[t] = static_cast<int64_t>(common) + t;
  }
  const bool last_only = rows == 1;
  Rows r{m.model.forward(ids, Tensor(), pos, m.cache, last_only), last_only ? 0 : T - rows,
         m.model.vocab_size()};
  m.held.insert(m.held.end(), feed.begin(), feed.end());
  return r;
}

// The draft model's k candidates after seq, each from its processed scores (argmax, or a
// draw whose distribution goes to q when sampling); it stops after an EOS.
std::vector<TokenId> propose(CachedModel& d, const std::vector<TokenId>& seq, int64_t prompt_len,
                             int64_t k, const SpecLoop& o, std::vector<std::vector<double>>& q) {
  std::vector<TokenId> ext(seq), cands;
  const int64_t V = d.model.vocab_size();
  std::vector<float> scores(static_cast<size_t>(V));
  q.clear();
  Rows rows = advance(d, ext, {});
  for (int64_t j = 0; j < k; ++j) {
    const float* row = rows.row(0);
    std::copy(row, row + V, scores.begin());
    o.procs.apply(ext, prompt_len, scores);
    TokenId tok;
    if (o.g.do_sample) {
      auto& qj = q.emplace_back();
      softmax_to(scores, qj);
      tok = draw(qj, 1.0, o.rng);
    } else {
      tok = static_cast<TokenId>(argmax(scores));
    }
    cands.push_back(tok);
    ext.push_back(tok);
    if (o.stopping.is_eos(tok) || j + 1 == k) break;
    rows = advance(d, ext, {});
  }
  return cands;
}

}  // namespace

void check_speculative(const CausalLM& model, const SpeculativeOptions& so) {
  if (so.prompt_lookup < 0)
    throw InvalidArgument(ErrorContext().key("prompt_lookup"),
                          "must be >= 0, got " + std::to_string(so.prompt_lookup));
  if (so.max_matching_ngram < 1)
    throw InvalidArgument(ErrorContext().key("max_matching_ngram"),
                          "must be >= 1, got " + std::to_string(so.max_matching_ngram));
  if (so.prompt_lookup > 0 && so.draft)
    throw InvalidArgument(ErrorContext().key("draft"),
                          "prompt lookup and a draft model exclude each other: use one");
  if (!so.draft) return;
  if (so.draft_tokens < 1)
    throw InvalidArgument(ErrorContext().key("draft_tokens"),
                          "must be >= 1, got " + std::to_string(so.draft_tokens));
  if (so.draft->vocab_size() != model.vocab_size())
    throw InvalidArgument(
        ErrorContext().key("draft"),
        "the draft model's vocabulary (" + std::to_string(so.draft->vocab_size()) +
            " tokens) differs from the model's (" + std::to_string(model.vocab_size()) +
            "): speculative decoding needs the same tokenizer");
}

SpecStats speculative_decode(CachedModel& target, CachedModel* draft, SampleStrategy::Row& r,
                             const SpecLoop& o) {
  SpecStats st;
  const int64_t V = target.model.vocab_size();
  const bool sample = o.g.do_sample;
  std::vector<float> scores(static_cast<size_t>(V)), lp;
  std::vector<double> p;
  auto t0 = Clock::now();
  Rows rows = advance(target, r.seq, {}, &st.reused);
  st.prefill_seconds = seconds_since(t0);
  t0 = Clock::now();
  std::vector<TokenId> cands;
  std::vector<std::vector<double>> q;  // draft distributions (sampling with a draft)
  for (;;) {
    if (o.cancel && o.cancel->load()) {
      r.reason = FinishReason::Cancelled;
      break;
    }
    // Verify: row i is the model's distribution after the candidates before i. Each chosen
    // token goes through the stopping criteria as in plain decoding, so an EOS, a stop string
    // or max_length inside an accepted run ends generation there.
    bool go_on = true;
    for (size_t i = 0; i <= cands.size(); ++i) {
      const float* row = rows.row(static_cast<int64_t>(i));
      std::copy(row, row + V, scores.begin());
      o.procs.apply(r.seq, r.prompt_len, scores);
      TokenId tok;
      bool match = false;
      if (sample && i < q.size()) {
        softmax_to(scores, p);
        tok = speculative_accept(p, q[i], cands[i], o.rng, &match);
      } else {
        tok = static_cast<TokenId>(sample ? sample_token(scores, o.rng) : argmax(scores));
        match = i < cands.size() && tok == cands[i];
      }
      if (match) ++st.accepted;
      if (o.keep_logprobs) {
        lp = scores;
        log_softmax(lp);
        r.logprobs.push_back(lp[static_cast<size_t>(tok)]);
      }
      if (o.keep_scores) r.scores.push_back(scores);
      r.seq.push_back(tok);
      r.generated.push_back(tok);
      if (auto reason = o.stopping.check(r.generated)) {
        r.done = true;
        r.reason = *reason;
      }
      // A callback's false or the cancel flag (set while the step ran) stop after this token.
      const bool cancelled = (o.on_token && !o.on_token(tok)) || (o.cancel && o.cancel->load());
      if (r.done) {
        go_on = false;
      } else if (cancelled) {
        r.reason = FinishReason::Cancelled;
        go_on = false;
      } else if (o.stopping.reached(static_cast<int64_t>(r.seq.size()))) {
        r.reason = FinishReason::Length;
        go_on = false;
      }
      if (!go_on || !match) break;
    }
    if (!go_on) break;
    // The next candidates: at most what fits before max_length with the model's own token.
    const auto len = static_cast<int64_t>(r.seq.size());
    const int64_t room = o.stopping.max_length - len - 1;
    cands.clear();
    q.clear();
    if (room > 0) {
      if (o.so.prompt_lookup > 0)
        cands = prompt_lookup_candidates(r.seq, o.so.prompt_lookup, o.so.max_matching_ngram,
                                         o.stopping.max_length, o.stopping.eos,
                                         o.procs.empty() ? nullptr : &o.procs, r.prompt_len, V);
      else if (draft)
        cands = propose(*draft, r.seq, r.prompt_len, std::min(o.so.draft_tokens, room), o, q);
      if (static_cast<int64_t>(cands.size()) > room) cands.resize(static_cast<size_t>(room));
      if (q.size() > cands.size()) q.resize(cands.size());
      // Rows verified together share the RoPE frequencies of the step's longest length: exact
      // only while those are the base ones (dynamic / longrope scaling switches past a length).
      if (!target.model.rope_base_at(len + static_cast<int64_t>(cands.size()))) {
        cands.clear();
        q.clear();
      }
    }
    st.drafted += static_cast<int64_t>(cands.size());
    rows = advance(target, r.seq, cands);
  }
  st.decode_seconds = seconds_since(t0);
  return st;
}

}  // namespace detail

}  // namespace ohm::generation
