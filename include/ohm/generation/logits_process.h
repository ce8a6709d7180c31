// Logits processors and warpers with transformers' semantics (generation/logits_process.py),
// composed as a chain in the order GenerationMixin._get_logits_processor builds it:
//   repetition_penalty -> no_repeat_ngram -> bad_words -> min_length / min_new_tokens
//   then, when sampling: temperature -> top_k -> top_p -> min_p -> typical_p
// Each stage rewrites the scores of one sequence in place; removed tokens become -inf.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ohm/core/token_id.h"
#include "ohm/formats/config.h"

namespace ohm::generation {

class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  // `seq`: the whole sequence so far (prompt + generated, without padding); `prompt_len`: how
  // many of those are prompt. `scores`: one row of vocab scores, rewritten in place.
  virtual void apply(std::span<const TokenId> seq, int64_t prompt_len,
                     std::span<float> scores) const = 0;
  virtual std::string name() const = 0;
};

// score < 0 ? score * penalty : score / penalty for every token already in `seq`.
class RepetitionPenalty : public LogitsProcessor {
 public:
  explicit RepetitionPenalty(double penalty);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "repetition_penalty"; }

 private:
  float penalty_;
};

// Bans tokens that would repeat an n-gram already in `seq`.
class NoRepeatNGram : public LogitsProcessor {
 public:
  explicit NoRepeatNGram(int64_t n);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "no_repeat_ngram_size"; }

 private:
  int64_t n_;
};

// Bans the last token of each bad word sequence whose prefix ends `seq`.
class NoBadWords : public LogitsProcessor {
 public:
  NoBadWords(std::vector<std::vector<int64_t>> bad_words, std::vector<int64_t> eos);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "bad_words_ids"; }

 private:
  std::vector<std::vector<int64_t>> bad_;
};

// EOS gets -inf until the sequence reaches min_length (whole sequence) tokens.
class MinLength : public LogitsProcessor {
 public:
  MinLength(int64_t min_length, std::vector<int64_t> eos);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "min_length"; }

 private:
  int64_t min_length_;
  std::vector<int64_t> eos_;
};

// EOS gets -inf until min_new_tokens tokens were generated.
class MinNewTokens : public LogitsProcessor {
 public:
  MinNewTokens(int64_t min_new_tokens, std::vector<int64_t> eos);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "min_new_tokens"; }

 private:
  int64_t min_new_;
  std::vector<int64_t> eos_;
};

class Temperature : public LogitsProcessor {
 public:
  explicit Temperature(double t);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "temperature"; }

 private:
  float t_;
};

// Keeps the top_k scores (ties with the k-th are kept, as torch's `scores < kth` does).
class TopK : public LogitsProcessor {
 public:
  TopK(int64_t k, int64_t min_tokens_to_keep = 1);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "top_k"; }

 private:
  int64_t k_;
};

// Nucleus: removes the low tail whose cumulative probability is <= 1 - top_p.
class TopP : public LogitsProcessor {
 public:
  TopP(double p, int64_t min_tokens_to_keep = 1);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "top_p"; }

 private:
  double p_;
  int64_t min_keep_;
};

// Removes tokens with probability < min_p * max probability.
class MinP : public LogitsProcessor {
 public:
  MinP(double p, int64_t min_tokens_to_keep = 1);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "min_p"; }

 private:
  double p_;
  int64_t min_keep_;
};

// Locally typical sampling (Meister et al.): keeps the tokens whose surprisal is closest to
// the entropy until their mass reaches typical_p.
class Typical : public LogitsProcessor {
 public:
  Typical(double mass, int64_t min_tokens_to_keep = 1);
  void apply(std::span<const TokenId>, int64_t, std::span<float>) const override;
  std::string name() const override { return "typical_p"; }

 private:
  double mass_;
  int64_t min_keep_;
};

class LogitsProcessorList {
 public:
  void add(std::unique_ptr<LogitsProcessor> p) { stages_.push_back(std::move(p)); }
  void add_front(std::unique_ptr<LogitsProcessor> p) {
    stages_.insert(stages_.begin(), std::move(p));
  }
  void apply(std::span<const TokenId> seq, int64_t prompt_len, std::span<float> scores) const {
    for (const auto& s : stages_) s->apply(seq, prompt_len, scores);
  }
  bool empty() const { return stages_.empty(); }
  std::vector<std::string> names() const;

 private:
  std::vector<std::unique_ptr<LogitsProcessor>> stages_;
};

// The chain transformers builds for `g` (warpers only when g.do_sample).
LogitsProcessorList build_logits_processors(const GenerationConfig& g);

// The first index of the largest score (torch.argmax).
int64_t argmax(std::span<const float> scores);
// A multinomial draw from softmax(scores) (tokens at -inf are never drawn).
int64_t sample_token(std::span<const float> scores, std::mt19937_64& rng);

// In-place log_softmax of one row (float accumulation in double for stability).
void log_softmax(std::span<float> x);
// In-place softmax of one row.
void softmax(std::span<float> x);

}  // namespace ohm::generation
