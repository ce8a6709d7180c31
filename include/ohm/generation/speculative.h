// Speculative decoding with exact semantics (transformers' assisted generation): candidate
// tokens, from the sequence itself (prompt lookup, transformers' prompt_lookup_num_tokens) or
// from a smaller draft model (assistant_model), are verified by the model in one forward over
// all of them, and the KV caches are rolled back past the rejected ones.
//
//   GenerateOptions opt;
//   opt.speculative.prompt_lookup = 10;      // or: opt.speculative.draft = draft_model.get();
//   auto out = generate(model, {prompt}, opt);
//   out.drafted_tokens, out.accepted_tokens  // acceptance rate
//
// Greedy decoding gives the tokens plain greedy gives (each verified row is the target's own
// argmax; the kernels are batch invariant, so a row's logits do not depend on how many tokens
// share the forward: true of the scalar and AVX2 tables, not of AVX-512's, so on AVX-512 CPUs
// select kernels::batch_invariant_table() first, as `ohm generate` does: its invariant variant).
// Sampling keeps the target distribution: with prompt lookup each row is a
// plain draw from the target, accepted while it equals the candidate; with a draft model, the
// speculative sampling of Leviathan et al. 2023 / Chen et al. 2023 (accept a drafted token x
// with probability min(1, p(x) / q(x)), else draw from max(p - q, 0) normalised), p and q
// being the target's and the draft's distributions after the same logits processors.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "ohm/core/token_id.h"

namespace ohm {
class CausalLM;
}

namespace ohm::generation {

class LogitsProcessorList;

struct SpeculativeOptions {
  // Prompt lookup: up to this many candidate tokens per step copied from the sequence after an
  // earlier occurrence of its last n-gram (transformers' prompt_lookup_num_tokens; 0: off).
  int64_t prompt_lookup = 0;
  // The longest n-gram matched (transformers' max_matching_ngram_size, default 2).
  int64_t max_matching_ngram = 2;
  // A draft model (transformers' assistant_model) with the target's vocabulary: it proposes
  // draft_tokens tokens per step. Not owned; must outlive generation.
  CausalLM* draft = nullptr;
  int64_t draft_tokens = 5;

  bool enabled() const { return prompt_lookup > 0 || draft != nullptr; }
};

// PromptLookupCandidateGenerator.get_candidates for one sequence `seq` (prompt + generated):
// for n-gram sizes from min(max_ngram, len - 1) down to 1, the first earlier occurrence (left
// to right) of the sequence's last n tokens with a continuation gives up to num_tokens
// candidates (cut at max_length, at the first token `procs` forbid on all-ones scores, where
// none is left the next occurrence is tried, and before the first EOS). Empty: no match (or
// max_length == len + 1). `procs` may be null (no forbidden-token check).
std::vector<TokenId> prompt_lookup_candidates(std::span<const TokenId> seq, int64_t num_tokens,
                                              int64_t max_ngram, int64_t max_length,
                                              std::span<const int64_t> eos,
                                              const LogitsProcessorList* procs, int64_t prompt_len,
                                              int64_t vocab_size);

// One position of speculative sampling: `cand` was drawn from the draft distribution q; it is
// accepted with probability min(1, p[cand] / q[cand]) (*accepted = true, returns cand), else
// a token is drawn from max(p - q, 0) normalised (from p where that is all zero, which only
// rounding can cause). p and q are probability vectors of the same size. The returned token
// is distributed as p whatever q is.
TokenId speculative_accept(std::span<const double> p, std::span<const double> q, TokenId cand,
                           std::mt19937_64& rng, bool* accepted);

}  // namespace ohm::generation
