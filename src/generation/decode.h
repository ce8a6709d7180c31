// The decode loop shared by generate() (greedy, sampling, beam search) and Session (chat):
//
//   logits = prefill(prompt)
//   loop:  cancelled?  -> strategy.cancelled(), stop
//          step = strategy.step(logits)       // picks tokens, applies the stopping criteria,
//                                             // streams each new token through `emit`
//          emit returned false -> strategy.cancelled(), stop
//          step.finished or max length reached -> stop
//          logits = feed(step)                // reorder the cache (beams), run the model
//
// A Strategy is the per-step token chooser: SampleStrategy (greedy or multinomial, one token
// per row) here, the beam-search step in generate.cpp. The Feed owns the model side (positions,
// the KV cache, re-running it where the model asks to), so one-shot generation and a chat
// session with a reused cache share the same loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

#include "ohm/core/tensor.h"
#include "ohm/generation/generate.h"
#include "ohm/generation/logits_process.h"

namespace ohm::generation::detail {

// Stopping criteria of one sequence (transformers' StoppingCriteriaList): the maximum length,
// the EOS ids and a custom criterion on the generated ids (stop strings).
struct StoppingCriteria {
  int64_t max_length = 0;    // prompt + generated
  std::vector<int64_t> eos;  // as GenerationConfig holds them
  std::function<bool(const std::vector<TokenId>& generated)> stop;

  bool is_eos(TokenId tok) const;
  // Why a sequence whose last generated token is generated.back() ends (Eos before Stop);
  // nullopt: it goes on. The length is the loop's business (reached()).
  std::optional<FinishReason> check(const std::vector<TokenId>& generated) const;
  // Whether a sequence that is `len` long after this step's token has reached max_length.
  bool reached(int64_t len) const { return len >= max_length; }
};

// What one step chose.
struct StepOutput {
  std::vector<TokenId> next;     // the next input token of every cache row
  std::vector<int64_t> reorder;  // cache rows to gather before feeding (beams); empty: none
  bool finished = false;         // nothing left to generate: the loop ends without feeding
};

// Streams a generated token of row `row`; false cancels generation.
using Emit = std::function<bool(int64_t row, TokenId tok)>;

class Strategy {
 public:
  virtual ~Strategy() = default;
  // Chooses the next tokens from the logits [rows, 1, V] of sequences `cur_len` long (for a
  // left-padded batch: the padded length). Calls `emit` for each token it makes final, and
  // stops choosing (returning what it has) as soon as `emit` returns false.
  virtual StepOutput step(const Tensor& logits, int64_t cur_len, const Emit& emit) = 0;
  // Generation was cancelled (flag or callback): unfinished sequences end as Cancelled.
  virtual void cancelled() {}
};

// Runs the model on the step's tokens (after gathering the cache rows in step.reorder) and
// returns the logits [rows, 1, V] of the next step; `cur_len` is the step's cur_len.
using Feed = std::function<Tensor(const StepOutput& step, int64_t cur_len)>;

struct LoopOptions {
  int64_t start_len = 0;   // cur_len of the first step (the prompt's, padded)
  int64_t max_length = 0;  // no step starts at or beyond this length
  const std::atomic<bool>* cancel = nullptr;
  std::function<bool(int64_t row, TokenId tok)> on_token;  // streaming; false cancels
};

// The loop. `logits` are the prefill's. Returns true when it was cancelled.
bool decode_loop(Tensor logits, Strategy& strategy, const Feed& feed, const LoopOptions& opt);

// Greedy or multinomial sampling, one token per row (transformers' _sample): logits
// processors, then argmax or a draw, then the stopping criteria; finished rows are fed `pad`.
class SampleStrategy final : public Strategy {
 public:
  struct Row {
    std::vector<TokenId> seq;  // prompt (unpadded) + generated
    int64_t prompt_len = 0;
    std::vector<TokenId> generated;
    std::vector<float> logprobs;             // with keep_logprobs
    std::vector<std::vector<float>> scores;  // with keep_scores
    FinishReason reason = FinishReason::Length;
    bool done = false;
  };

  SampleStrategy(const GenerationConfig& g, const LogitsProcessorList& procs, std::mt19937_64& rng,
                 const StoppingCriteria& stopping, TokenId pad, int64_t vocab_size);

  StepOutput step(const Tensor& logits, int64_t cur_len, const Emit& emit) override;
  void cancelled() override;

  std::vector<Row> rows;
  bool keep_logprobs = true, keep_scores = false;
  int64_t generated_tokens = 0;

 private:
  bool do_sample_;
  const LogitsProcessorList& procs_;
  std::mt19937_64& rng_;
  const StoppingCriteria& stopping_;
  TokenId pad_;
  int64_t V_;
  std::vector<float> scores_, lp_;
};

}  // namespace ohm::generation::detail
