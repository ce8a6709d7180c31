// Speculative decoding (ohm/generation/speculative.h): KV-cache rollback for every cache kind,
// prompt lookup and a draft model giving exactly the tokens of plain greedy decoding (EOS, stop
// strings and max_new_tokens inside an accepted run included), and speculative sampling
// keeping the target distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "invariant_kernels.h"
#include "ohm/core/error.h"
#include "ohm/generation/generate.h"
#include "ohm/generation/logits_process.h"
#include "ohm/generation/speculative.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"
#include "test_util.h"

namespace ohm::generation {
namespace {

// Every test here relies on rows that do not depend on how many share the forward: the
// batch-invariant kernel table, as speculative `ohm generate` selects it (on AVX-512 hosts the
// AVX-512 table's invariant variant).
const test::InvariantKernels kInvariant;

std::string demo_dir() {
  return (test::source_dir() / "models" / "ohm-demo").string();
}
std::string fixture(const std::string& arch) {
  return (test::fixtures_dir() / "models" / arch / "f32").string();
}

Tensor ids_tensor(const std::vector<TokenId>& ids) {
  Tensor t = Tensor::empty(DType::I64, {1, static_cast<int64_t>(ids.size())});
  std::copy(ids.begin(), ids.end(), t.mutable_data<int64_t>());
  return t;
}

std::vector<TokenId> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> u(1, vocab - 1);
  std::vector<TokenId> r;
  for (int64_t i = 0; i < n; ++i) r.push_back(static_cast<TokenId>(u(rng)));
  return r;
}

// ---- KV-cache rollback -------------------------------------------------------------------------

// Prefix P, then X run and rolled back, then Y: the logits of Y equal those of P then Y run on
// a fresh cache, for every architecture's cache path and KV type.
TEST(KVCacheRollback, MatchesAFreshCacheForEveryKvTypeAndArch) {
  struct Case {
    std::string path;
    std::vector<DType> kv;
  };
  const std::vector<Case> cases = {
      {demo_dir(), {DType::F32, DType::F16, DType::Q8_0}},
      {fixture("llama"), {DType::F32, DType::F16}},
      {fixture("mistral"), {DType::F32, DType::F16}},  // sliding window 16 on every layer
      {fixture("gemma2"), {DType::F32, DType::F16}},   // window on alternate layers, softcap
      {fixture("falcon_mq"), {DType::F32, DType::F16}},
      {fixture("gpt2"), {DType::F32, DType::F16}},
  };
  for (const auto& c : cases)
    for (DType kv : c.kv) {
      SCOPED_TRACE(c.path + " kv " + std::string(name(kv)));
      auto m = load_causal_lm(c.path, {.dtype = DType::F32, .threads = 2});
      m->set_kv_type(kv);
      const auto P = random_ids(24, m->vocab_size(), 1), X = random_ids(5, m->vocab_size(), 2),
                 Y = random_ids(3, m->vocab_size(), 3);
      auto a = m->make_cache(1), b = m->make_cache(1);
      m->forward(ids_tensor(P), {}, {}, a, true);
      m->forward(ids_tensor(X), {}, {}, a, true);
      ASSERT_TRUE(a.rollback(24));
      EXPECT_EQ(a.dropped() + a.size(), 24);
      const Tensor la = m->forward(ids_tensor(Y), {}, {}, a);
      m->forward(ids_tensor(P), {}, {}, b, true);
      const Tensor lb = m->forward(ids_tensor(Y), {}, {}, b);
      ASSERT_EQ(la.numel(), lb.numel());
      for (uint64_t i = 0; i < la.numel(); ++i)
        ASSERT_EQ(la.data<float>()[i], lb.data<float>()[i]) << "logit " << i;
    }
}

// CausalLM::set_prefill_chunk: a last_only forward of a long prompt runs in steps of the chunk
// (ubatch). On the batch-invariant kernels its logits, the cache it leaves and the next step's
// logits are those of one step, bit for bit, for every cache path (windowed caches run as one
// step), KV type and a model with length-dependent RoPE (Phi-3's longrope).
TEST(PrefillChunks, StepsGiveTheOneStepForwardBitForBit) {
  struct Case {
    std::string path;
    std::vector<DType> kv;
  };
  const std::vector<Case> cases = {
      {demo_dir(), {DType::F32, DType::F16, DType::Q8_0}},
      {fixture("llama"), {DType::F32}},
      {fixture("mistral"), {DType::F32}},  // sliding window on every layer: one step
      {fixture("gemma2"), {DType::F32}},   // window on alternate layers, softcap
      {fixture("falcon_mq"), {DType::F32}},
      {fixture("gpt2"), {DType::F32}},
      {fixture("phi3"), {DType::F32}},
  };
  for (const auto& c : cases)
    for (DType kv : c.kv) {
      SCOPED_TRACE(c.path + " kv " + std::string(name(kv)));
      auto m = load_causal_lm(c.path, {.dtype = DType::F32, .threads = 2});
      m->set_kv_type(kv);
      EXPECT_EQ(m->prefill_chunk(), 512);
      const auto P = random_ids(45, m->vocab_size(), 7), Y = random_ids(2, m->vocab_size(), 8);
      auto a = m->make_cache(1), b = m->make_cache(1);
      m->set_prefill_chunk(0);
      const Tensor pa = m->forward(ids_tensor(P), {}, {}, a, true);
      const Tensor ya = m->forward(ids_tensor(Y), {}, {}, a);
      m->set_prefill_chunk(8);  // 6 steps of 7 or 8 tokens
      const Tensor pb = m->forward(ids_tensor(P), {}, {}, b, true);
      EXPECT_EQ(a.dropped() + a.size(), 45 + 2);
      EXPECT_EQ(b.dropped() + b.size(), 45);
      const Tensor yb = m->forward(ids_tensor(Y), {}, {}, b);
      ASSERT_EQ(pa.shape(), pb.shape());
      for (uint64_t i = 0; i < pa.numel(); ++i)
        ASSERT_EQ(pa.data<float>()[i], pb.data<float>()[i]) << "prompt logit " << i;
      ASSERT_EQ(ya.numel(), yb.numel());
      for (uint64_t i = 0; i < ya.numel(); ++i)
        ASSERT_EQ(ya.data<float>()[i], yb.data<float>()[i]) << "next-step logit " << i;
    }
  auto m = load_causal_lm(demo_dir(), {.threads = 1});
  EXPECT_THROW(m->set_prefill_chunk(-1), InvalidArgument);
}

// On the AVX-512 table (not batch-invariant between M = 1 and M > 1) equal steps of 166 rows
// still give the one-step forward bit for bit: its batched GEMMs give a row the same arithmetic
// at every M from 8 rows (f32) or 2 (quantized).
TEST(PrefillChunks, EqualLargeStepsOnTheAvx512Table) {
  const kernels::KernelTable* t = kernels::table_for(kernels::Isa::Avx512);
  if (t == nullptr) GTEST_SKIP() << "this CPU has no AVX-512 table";
  const kernels::KernelTable* prev = kernels::set_active(t);
  for (auto q : {std::optional<DType>{}, std::optional<DType>{DType::Q8_0}}) {
    auto m = load_causal_lm(demo_dir(), {.dtype = DType::F32, .threads = 2, .quantize = q});
    const auto P = random_ids(500, m->vocab_size(), 9);
    auto a = m->make_cache(1), b = m->make_cache(1);
    m->set_prefill_chunk(0);
    const Tensor pa = m->forward(ids_tensor(P), {}, {}, a, true);
    m->set_prefill_chunk(200);  // 3 steps of 166-167
    const Tensor pb = m->forward(ids_tensor(P), {}, {}, b, true);
    ASSERT_EQ(pa.numel(), pb.numel());
    for (uint64_t i = 0; i < pa.numel(); ++i)
      ASSERT_EQ(pa.data<float>()[i], pb.data<float>()[i]) << (q ? "q8_0" : "f32") << " logit " << i;
  }
  kernels::set_active(prev);
}

TEST(KVCacheRollback, RefusesWhereTheWindowDroppedWhatTheQueryNeeds) {
  auto m = load_causal_lm(fixture("mistral"), {.dtype = DType::F32, .threads = 2});
  auto c = m->make_cache(1);
  m->forward(ids_tensor(random_ids(24, m->vocab_size(), 1)), {}, {}, c, true);
  m->forward(ids_tensor(random_ids(8, m->vocab_size(), 2)), {}, {}, c, true);
  ASSERT_GT(c.dropped(), 0);  // the window (16) dropped slots
  const int64_t seen = c.dropped() + c.size();
  EXPECT_FALSE(c.rollback(c.dropped() + 3));  // a query there sees 15 slots, 3 are held
  EXPECT_EQ(c.dropped() + c.size(), seen);    // unchanged
  EXPECT_TRUE(c.rollback(seen - 2));
  EXPECT_THROW(c.rollback(seen), InvalidArgument);  // past what is held
}

// ---- prompt-lookup candidates ------------------------------------------------------------------

TEST(PromptLookup, CandidatesAsTransformersFindsThem) {
  const std::vector<int64_t> no_eos;
  // The last 2-gram [1, 2] first occurs at 0: its continuation.
  std::vector<TokenId> s = {1, 2, 3, 4, 1, 2, 5, 6, 1, 2};
  EXPECT_EQ(prompt_lookup_candidates(s, 3, 2, 100, no_eos, nullptr, 1, 16),
            (std::vector<TokenId>{3, 4, 1}));
  EXPECT_EQ(prompt_lookup_candidates(s, 10, 2, 100, no_eos, nullptr, 1, 16),
            (std::vector<TokenId>{3, 4, 1, 2, 5, 6, 1, 2}));  // up to the sequence's end
  // max_length: no candidates when one token is left; else cut at the index max_length.
  EXPECT_TRUE(prompt_lookup_candidates(s, 3, 2, 11, no_eos, nullptr, 1, 16).empty());
  EXPECT_EQ(prompt_lookup_candidates(s, 10, 2, 4, no_eos, nullptr, 1, 16),
            (std::vector<TokenId>{3, 4}));
  // Before the first EOS.
  const std::vector<int64_t> eos = {4};
  EXPECT_EQ(prompt_lookup_candidates(s, 3, 2, 100, eos, nullptr, 1, 16), (std::vector<TokenId>{3}));
  // No 2-gram match: the 1-gram.
  s = {7, 3, 9, 8, 3};
  EXPECT_EQ(prompt_lookup_candidates(s, 2, 2, 100, no_eos, nullptr, 1, 16),
            (std::vector<TokenId>{9, 8}));
  // No match at all.
  s = {1, 2, 3};
  EXPECT_TRUE(prompt_lookup_candidates(s, 2, 2, 100, no_eos, nullptr, 1, 16).empty());
  // A candidate the processors forbid ends the list; none left: the next occurrence.
  GenerationConfig g;
  g.bad_words_ids = {{3}};
  const auto procs = build_logits_processors(g);
  s = {1, 3, 1, 4, 5, 1};
  EXPECT_EQ(prompt_lookup_candidates(s, 2, 2, 100, no_eos, &procs, 1, 16),
            (std::vector<TokenId>{4, 5}));
}

// ---- greedy: the tokens of plain greedy ---------------------------------------------------------

struct Demo {
  tokenizers::AutoTokenizer tok = tokenizers::AutoTokenizer::from_pretrained(demo_dir());
  std::unique_ptr<CausalLM> target =
      load_causal_lm(demo_dir(), {.dtype = DType::F32, .threads = 2});
  // The demo in Q4_0 blocks (quantized on load, as a Q4_0 GGUF of it holds them).
  std::unique_ptr<CausalLM> q4 =
      load_causal_lm(demo_dir(), {.dtype = DType::F32, .threads = 2, .quantize = DType::Q4_0});
  std::vector<std::vector<TokenId>> prompts;
  Demo() {
    for (const char* p :
         {"Once upon a time, there was a little girl named Lily. She loved to play outside.",
          "The cat sat on the mat. The cat sat on the mat. The cat",
          "Tom said: \"I like the red ball.\" Mom said: \"I like the red ball too.\" Tom said:",
          "A"})
      prompts.push_back(tok.encode(p));
  }
};

Demo& demo() {
  static Demo d;
  return d;
}

GenerateOutput run(CausalLM& m, const std::vector<TokenId>& prompt, GenerationConfig g,
                   const SpeculativeOptions& so,
                   std::function<bool(const std::vector<TokenId>&)> stop = {}) {
  GenerateOptions opt;
  opt.config = std::move(g);
  opt.speculative = so;
  opt.stop = std::move(stop);
  return generate(m, {prompt}, opt);
}

// Prompt lookup with several candidate counts and n-gram sizes; the q4_0 draft and the model
// as its own draft (every token accepted) with several draft lengths.
std::vector<std::pair<std::string, SpeculativeOptions>> modes(bool all = true) {
  std::vector<std::pair<std::string, SpeculativeOptions>> r;
  for (auto [n, ng] : std::vector<std::pair<int64_t, int64_t>>{{1, 2}, {3, 1}, {10, 2}, {10, 3}}) {
    SpeculativeOptions s;
    s.prompt_lookup = n;
    s.max_matching_ngram = ng;
    r.emplace_back("prompt_lookup " + std::to_string(n) + " ngram " + std::to_string(ng), s);
    if (!all) break;
  }
  for (auto [self, k] : std::vector<std::pair<bool, int64_t>>{{false, 4}, {true, 3}, {false, 1}}) {
    SpeculativeOptions s;
    s.draft = self ? demo().target.get() : demo().q4.get();
    s.draft_tokens = k;
    r.emplace_back(std::string(self ? "draft self" : "draft q4_0") + " k " + std::to_string(k), s);
    if (!all && !self) continue;
    if (!all) break;
  }
  return r;
}

void expect_same(const GenerateOutput& want, const GenerateOutput& got) {
  EXPECT_EQ(got.sequences, want.sequences);
  EXPECT_EQ(got.finish_reasons, want.finish_reasons);
  EXPECT_EQ(got.token_logprobs, want.token_logprobs);
  EXPECT_EQ(got.generated_tokens, want.generated_tokens);
}

TEST(Speculative, GreedyEqualsPlainGreedyOverPromptsAndLengths) {
  auto& d = demo();
  int64_t accepted = 0;
  // Every prompt at 33 new tokens (every mode for the first two, one lookup and one draft mode
  // for the others); two of them also at 1 and 7.
  for (size_t pi = 0; pi < d.prompts.size(); ++pi)
    for (int64_t n : {1, 7, 33}) {
      if (n != 33 && pi % 2 == 0) continue;
      const auto& prompt = d.prompts[pi];
      GenerationConfig g;
      g.max_new_tokens = n;
      g.eos_token_id = {0};
      const auto want = run(*d.target, prompt, g, {});
      for (const auto& [name, so] : modes(/*all=*/n == 33 && pi < 2)) {
        SCOPED_TRACE(name + ", max_new_tokens " + std::to_string(n));
        const auto got = run(*d.target, prompt, g, so);
        expect_same(want, got);
        EXPECT_LE(got.accepted_tokens, got.drafted_tokens);
        accepted += got.accepted_tokens;
      }
    }
  EXPECT_GT(accepted, 0);
}

TEST(Speculative, SelfDraftAcceptsEveryToken) {
  auto& d = demo();
  GenerationConfig g;
  g.max_new_tokens = 41;  // 8 rounds of 4 + 1, then 1: the last round is cut by max_new_tokens
  SpeculativeOptions so;
  so.draft = d.target.get();
  so.draft_tokens = 4;
  const auto got = run(*d.target, d.prompts[0], g, so);
  EXPECT_EQ(got.generated_tokens, 41);
  EXPECT_EQ(got.accepted_tokens, got.drafted_tokens);
  EXPECT_GE(got.accepted_tokens, 32);
}

// An EOS, a stop string or max_new_tokens that falls inside an accepted run ends generation
// there, as in plain decoding.
TEST(Speculative, StopsInsideAnAcceptedRun) {
  auto& d = demo();
  for (size_t pi : {0u, 1u}) {
    const auto& prompt = d.prompts[pi];
    GenerationConfig g;
    g.max_new_tokens = 20;
    const auto plain = run(*d.target, prompt, g, {});
    const std::vector<TokenId> gen(plain.sequences[0].begin() + plain.prompt_lengths[0],
                                   plain.sequences[0].end());
    ASSERT_EQ(gen.size(), 20u);
    for (size_t at : {6u, 13u}) {
      // EOS: the token generated at step `at` (its first occurrence ends plain decoding).
      GenerationConfig ge = g;
      ge.eos_token_id = {gen[at]};
      // A stop string ending inside the token generated at step `at`.
      const std::string upto =
          d.tok.decode(std::vector<TokenId>(gen.begin(), gen.begin() + at + 1));
      const std::string stop_s = upto.substr(upto.size() >= 3 ? upto.size() - 3 : 0);
      auto stop = stop_strings_criterion(
          {stop_s}, [&](const std::vector<TokenId>& ids) { return d.tok.decode(ids); });
      GenerationConfig gl = g;
      gl.max_new_tokens = static_cast<int64_t>(at);
      const auto want_eos = run(*d.target, prompt, ge, {});
      const auto want_stop = run(*d.target, prompt, g, {}, stop);
      const auto want_len = run(*d.target, prompt, gl, {});
      EXPECT_EQ(want_eos.finish_reasons[0], FinishReason::Eos);
      EXPECT_EQ(want_stop.finish_reasons[0], FinishReason::Stop);
      for (const auto& [name, so] : modes(/*all=*/false)) {
        SCOPED_TRACE(name + ", at " + std::to_string(at));
        expect_same(want_eos, run(*d.target, prompt, ge, so));
        expect_same(want_stop, run(*d.target, prompt, g, so, stop));
        expect_same(want_len, run(*d.target, prompt, gl, so));
      }
    }
  }
}

TEST(Speculative, CallbackCancelsAfterTheTokenAsPlain) {
  auto& d = demo();
  for (const auto& [name, so] : modes(/*all=*/false)) {
    SCOPED_TRACE(name);
    auto cancel_at = [](int n) {
      return [n, seen = 0](int64_t, TokenId) mutable { return ++seen < n; };
    };
    GenerateOptions a, b;
    a.config.max_new_tokens = b.config.max_new_tokens = 30;
    a.on_token = cancel_at(7);
    b.on_token = cancel_at(7);
    b.speculative = so;
    const auto want = generate(*d.target, {d.prompts[0]}, a);
    const auto got = generate(*d.target, {d.prompts[0]}, b);
    EXPECT_EQ(want.finish_reasons[0], FinishReason::Cancelled);
    expect_same(want, got);
    EXPECT_EQ(got.generated_tokens, 7);
  }
}

TEST(Speculative, GreedyEqualsPlainWithTypedKvCachesAndProcessors) {
  auto& d = demo();
  auto m = load_causal_lm(demo_dir(), {.dtype = DType::F32, .threads = 2});
  // f16 without processors, q8_0 with them (each path once: the runs are slow under ASan).
  for (DType kv : {DType::F16, DType::Q8_0}) {
    m->set_kv_type(kv);
    for (double rp : {kv == DType::F16 ? 1.0 : 1.3}) {
      GenerationConfig g;
      g.max_new_tokens = 30;
      g.repetition_penalty = rp;
      g.no_repeat_ngram_size = rp > 1 ? 4 : 0;
      for (size_t pi : {1u, 2u}) {
        const auto& prompt = d.prompts[pi];
        const auto want = run(*m, prompt, g, {});
        for (const auto& [name, so] : modes(/*all=*/false)) {
          SCOPED_TRACE(name + " kv " + std::string(ohm::name(kv)) + " rp " + std::to_string(rp));
          expect_same(want, run(*m, prompt, g, so));
        }
      }
    }
  }
}

TEST(Speculative, SlidingWindowModelEqualsPlainGreedy) {
  // mistral's window (16) drops slots during the run: rollback and recompute paths.
  auto m = load_causal_lm(fixture("mistral"), {.dtype = DType::F32, .threads = 2});
  for (int64_t plen : {3, 20}) {
    auto prompt = random_ids(plen, m->vocab_size(), 7);
    prompt.insert(prompt.end(), prompt.begin(), prompt.end());  // something to look up
    GenerationConfig g;
    g.max_new_tokens = 40;
    const auto want = run(*m, prompt, g, {});
    for (int64_t k : {2, 6}) {
      SpeculativeOptions pl, dr;
      pl.prompt_lookup = k;
      dr.draft = m.get();
      dr.draft_tokens = k;
      SCOPED_TRACE("prompt " + std::to_string(plen) + " k " + std::to_string(k));
      expect_same(want, run(*m, prompt, g, pl));
      expect_same(want, run(*m, prompt, g, dr));
    }
  }
}

TEST(Speculative, ChatSessionEqualsPlainSession) {
  auto& d = demo();
  GenerationConfig g;
  g.max_new_tokens = 24;
  g.eos_token_id = {0};
  Session plain(*d.target, g), pl(*d.target, g), dr(*d.target, g);
  SpeculativeOptions a, b;
  a.prompt_lookup = 5;
  b.draft = d.q4.get();
  b.draft_tokens = 3;
  pl.set_speculative(a);
  dr.set_speculative(b);
  std::vector<TokenId> ctx = d.prompts[1];
  for (int turn = 0; turn < 3; ++turn) {
    SCOPED_TRACE("turn " + std::to_string(turn));
    const auto want = plain.generate(ctx);
    EXPECT_EQ(pl.generate(ctx), want);
    EXPECT_EQ(dr.generate(ctx), want);
    EXPECT_EQ(pl.finish_reason(), plain.finish_reason());
    if (turn > 0) {
      EXPECT_GT(pl.reused_last(), 0);
      EXPECT_GT(dr.reused_last(), 0);
    }
    EXPECT_GT(dr.drafted_last(), 0);
    ctx.insert(ctx.end(), want.begin(), want.end());
    const auto more = d.tok.encode(" The dog said:");
    ctx.insert(ctx.end(), more.begin(), more.end());
  }
}

// ---- sampling
// ------------------------------------------------------------------------------------

// Pearson's chi-square of counts against probabilities.
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& p, int64_t n) {
  double x2 = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * static_cast<double>(n);
    if (e > 0)
      x2 += (static_cast<double>(counts[i]) - e) * (static_cast<double>(counts[i]) - e) / e;
  }
  return x2;
}

TEST(SpeculativeSampling, KeepsTheTargetDistribution) {
  // Draft tokens drawn from q, passed through speculative_accept: the output is distributed as
  // p. Chi-square with 5 degrees of freedom: 20.52 is the 0.999 quantile.
  const std::vector<std::pair<std::vector<double>, std::vector<double>>> cases = {
      {{0.05, 0.4, 0.1, 0.2, 0.15, 0.1}, {0.3, 0.1, 0.1, 0.3, 0.1, 0.1}},
      {{0.5, 0.5, 0.0, 0.0, 0.0, 0.0}, {0.0, 0.1, 0.2, 0.3, 0.2, 0.2}},  // q mostly off p
      {{0.2, 0.2, 0.2, 0.2, 0.1, 0.1}, {0.2, 0.2, 0.2, 0.2, 0.1, 0.1}},  // p == q
  };
  std::mt19937_64 rng(1234);
  for (const auto& [p, q] : cases) {
    const int64_t n = 200000;
    std::vector<int64_t> counts(p.size(), 0);
    int64_t accepted = 0;
    std::discrete_distribution<int> dq(q.begin(), q.end());
    for (int64_t i = 0; i < n; ++i) {
      const auto cand = static_cast<TokenId>(dq(rng));
      bool acc = false;
      const TokenId t = speculative_accept(p, q, cand, rng, &acc);
      ++counts[static_cast<size_t>(t)];
      accepted += acc ? 1 : 0;
      if (acc) {
        ASSERT_EQ(t, cand);
      }
    }
    EXPECT_LT(chi_square(counts, p, n), 20.52);
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] == 0) {
        EXPECT_EQ(counts[i], 0) << "token " << i << " has p = 0";
      }
    // The acceptance rate is sum_x min(p(x), q(x)).
    double want = 0;
    for (size_t i = 0; i < p.size(); ++i) want += std::min(p[i], q[i]);
    EXPECT_NEAR(static_cast<double>(accepted) / static_cast<double>(n), want, 0.005);
  }
  std::vector<double> p = {1.0}, q = {0.5, 0.5};
  bool acc = false;
  EXPECT_THROW(speculative_accept(p, q, 0, rng, &acc), InvalidArgument);
}

TEST(SpeculativeSampling, PromptLookupDrawsAsPlainSampling) {
  // With prompt lookup every row is a draw from the model's own distribution (accepted while it
  // equals the candidate), one draw per token as plain sampling: same seed, same tokens.
  auto& d = demo();
  GenerationConfig g;
  g.do_sample = true;
  g.temperature = 0.8;
  g.top_k = 40;
  g.max_new_tokens = 40;
  SpeculativeOptions so;
  so.prompt_lookup = 4;
  for (uint64_t seed : {1u, 2u, 3u}) {
    g.seed = seed;
    expect_same(run(*d.target, d.prompts[1], g, {}), run(*d.target, d.prompts[1], g, so));
  }
}

TEST(SpeculativeSampling, DraftModelSamplingMatchesTheModelsTokenFrequencies) {
  // End to end on the demo pair (q4_0 draft): the first two generated tokens follow the same
  // distribution as plain sampling (a two-sample chi-square on the pairs). max_new_tokens 3:
  // the second token goes through the rejection step, the third is the model's own. Sessions
  // keep the prompt's K/V, so each draw runs only the generated tokens.
  auto& d = demo();
  GenerationConfig g;
  g.do_sample = true;
  g.top_k = 4;
  g.max_new_tokens = 3;
  SpeculativeOptions so;
  so.draft = d.q4.get();
  so.draft_tokens = 2;
  Session plain(*d.target, g, 1), spec(*d.target, g, 2);
  spec.set_speculative(so);
  std::map<std::pair<TokenId, TokenId>, std::pair<int64_t, int64_t>> counts;
  const int n = 300;
  int64_t drafted = 0, accepted = 0;
  for (int s = 0; s < n; ++s) {
    const auto a = plain.generate(d.prompts[2]);
    const auto b = spec.generate(d.prompts[2]);
    ASSERT_GE(a.size(), 2u);
    ASSERT_GE(b.size(), 2u);
    ++counts[{a[0], a[1]}].first;
    ++counts[{b[0], b[1]}].second;
    drafted += spec.drafted_last();
    accepted += spec.accepted_last();
  }
  // Two-sample chi-square over the pairs seen at least 10 times in all; the rest pooled.
  double x2 = 0;
  int df = -1;
  int64_t ra = 0, rb = 0;
  for (const auto& [k, c] : counts) {
    if (c.first + c.second < 10) {
      ra += c.first;
      rb += c.second;
      continue;
    }
    const double e = (c.first + c.second) / 2.0;
    x2 += (c.first - e) * (c.first - e) / e + (c.second - e) * (c.second - e) / e;
    ++df;
  }
  if (ra + rb > 0) {
    const double e = static_cast<double>(ra + rb) / 2.0;
    x2 += (static_cast<double>(ra) - e) * (static_cast<double>(ra) - e) / e +
          (static_cast<double>(rb) - e) * (static_cast<double>(rb) - e) / e;
    ++df;
  }
  ASSERT_GT(df, 0);
  // Wilson-Hilferty 0.999 quantile of chi-square(df).
  const double z = 3.09, h = 2.0 / (9.0 * df);
  const double crit = df * std::pow(1 - h + z * std::sqrt(h), 3);
  EXPECT_LT(x2, crit) << "df " << df;
  EXPECT_GT(accepted, drafted / 4) << "the demo's q4_0 draft is accepted often";
}

// ---- bad input ----------------------------------------------------------------------------------

TEST(Speculative, RejectsBadOptions) {
  auto& d = demo();
  auto other = load_causal_lm(fixture("llama"), {.dtype = DType::F32});  // vocabulary 512
  GenerationConfig g;
  g.max_new_tokens = 4;
  SpeculativeOptions so;
  so.draft = other.get();
  try {
    run(*d.target, d.prompts[0], g, so);
    FAIL() << "a draft with another vocabulary was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary (512 tokens) differs from the model's (4096)"),
              std::string::npos)
        << e.what();
  }
  Session s(*d.target, g);
  EXPECT_THROW(s.set_speculative(so), InvalidArgument);
  so.draft = d.q4.get();
  so.prompt_lookup = 3;
  EXPECT_THROW(run(*d.target, d.prompts[0], g, so), InvalidArgument);  // both
  so.prompt_lookup = 0;
  so.draft_tokens = 0;
  EXPECT_THROW(run(*d.target, d.prompts[0], g, so), InvalidArgument);
  so.draft_tokens = 3;
  g.num_beams = 2;
  EXPECT_THROW(run(*d.target, d.prompts[0], g, so), InvalidArgument);  // one sequence only
}

// ---- verification rows ---------------------------------------------------------------------

// The premise of exact verification: a token's logits in a several-token forward are the ones
// a one-token decode step gives (bit for bit), for the weight types the demo pair uses.
TEST(Verification, RowsEqualOneTokenDecodeSteps) {
  struct W {
    std::optional<DType> dtype, quantize;
  };
  for (const W w : {W{DType::F32, std::nullopt}, W{DType::F16, std::nullopt},
                    W{DType::F32, DType::Q4_0}, W{DType::F32, DType::Q8_0}}) {
    auto m = load_causal_lm(demo_dir(), {.dtype = w.dtype, .threads = 2, .quantize = w.quantize});
    // Short, and across the attention's first KV split boundary (fixed 512-key ranges; the
    // rows see 511 to 514 keys) for two of the weight types.
    for (int64_t plen : {20, 510}) {
      if (plen > 20 && (w.dtype == DType::F16 || w.quantize == DType::Q8_0)) continue;
      const auto P = random_ids(plen, m->vocab_size(), 1), X = random_ids(4, m->vocab_size(), 2);
      auto a = m->make_cache(1), b = m->make_cache(1);
      m->forward(ids_tensor(P), {}, {}, a, true);
      m->forward(ids_tensor(P), {}, {}, b, true);
      const Tensor all = m->forward(ids_tensor(X), {}, {}, b);  // [1, 4, V]
      const int64_t V = m->vocab_size();
      for (int64_t t = 0; t < 4; ++t) {
        const Tensor one = m->forward(ids_tensor({X[static_cast<size_t>(t)]}), {}, {}, a, true);
        for (int64_t i = 0; i < V; ++i)
          ASSERT_EQ(one.data<float>()[i], all.data<float>()[t * V + i])
              << "prefix " << plen << " row " << t << " logit " << i << " dtype "
              << std::string(name(w.dtype.value_or(DType::F32))) << " quantize "
              << (w.quantize ? std::string(name(*w.quantize)) : "none");
      }
    }
  }
}

}  // namespace
}  // namespace ohm::generation
