// The decode loop and the greedy/sampling step (see decode.h).
#include "decode.h"

#include <algorithm>

namespace ohm::generation::detail {

bool StoppingCriteria::is_eos(TokenId tok) const {
  return std::find(eos.begin(), eos.end(), tok) != eos.end();
}

std::optional<FinishReason> StoppingCriteria::check(const std::vector<TokenId>& generated) const {
  if (!generated.empty() && is_eos(generated.back())) return FinishReason::Eos;
  if (stop && stop(generated)) return FinishReason::Stop;
  return std::nullopt;
}

bool decode_loop(Tensor logits, Strategy& strategy, const Feed& feed, const LoopOptions& opt) {
  bool stop_requested = false;
  const Emit emit = [&](int64_t row, TokenId tok) {
    if (opt.on_token && !opt.on_token(row, tok)) stop_requested = true;
    return !stop_requested;
  };
  for (int64_t cur_len = opt.start_len;; ++cur_len) {
    if (opt.cancel && opt.cancel->load()) {
      strategy.cancelled();
      return true;
    }
    const StepOutput step = strategy.step(logits, cur_len, emit);
    if (stop_requested) {
      strategy.cancelled();
      return true;
    }
    if (step.finished || cur_len + 1 >= opt.max_length) return false;
    logits = feed(step, cur_len);
  }
}

SampleStrategy::SampleStrategy(const GenerationConfig& g, const LogitsProcessorList& procs,
                               std::mt19937_64& rng, const StoppingCriteria& stopping, TokenId pad,
                               int64_t vocab_size)
    : do_sample_(g.do_sample),
      procs_(procs),
      rng_(rng),
      stopping_(stopping),
      pad_(pad),
      V_(vocab_size),
      scores_(static_cast<size_t>(vocab_size)) {}

StepOutput SampleStrategy::step(const Tensor& logits, int64_t, const Emit& emit) {
  StepOutput out;
  out.next.assign(rows.size(), pad_);
  for (size_t i = 0; i < rows.size(); ++i) {
    Row& r = rows[i];
    if (r.done) continue;
    const float* row = logits.data<float>() + static_cast<int64_t>(i) * V_;  // [B, 1, V]
    std::copy(row, row + V_, scores_.begin());
    procs_.apply(r.seq, r.prompt_len, scores_);
    const auto tok =
        static_cast<TokenId>(do_sample_ ? sample_token(scores_, rng_) : argmax(scores_));
    if (keep_logprobs) {
      lp_ = scores_;
      log_softmax(lp_);
      r.logprobs.push_back(lp_[static_cast<size_t>(tok)]);
    }
    if (keep_scores) r.scores.push_back(scores_);
    out.next[i] = tok;
    r.seq.push_back(tok);
    r.generated.push_back(tok);
    ++generated_tokens;
    if (auto reason = stopping_.check(r.generated)) {
      r.done = true;
      r.reason = *reason;
    }
    if (!emit(static_cast<int64_t>(i), tok)) return out;
  }
  out.finished = std::all_of(rows.begin(), rows.end(), [](const Row& r) { return r.done; });
  return out;
}

void SampleStrategy::cancelled() {
  for (Row& r : rows)
    if (!r.done) r.reason = FinishReason::Cancelled;
}

}  // namespace ohm::generation::detail
