// Generation: logits processors against transformers' own outputs, sampling distributions
// (chi-square), and generate() on the reference checkpoints (greedy, beam search, sampling);
// the shared decode loop's cancellation, greedy_generate and chat sessions.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "ohm/core/error.h"
#include "ohm/formats/safetensors.h"
#include "ohm/generation/generate.h"
#include "ohm/generation/logits_process.h"
#include "ohm/models/causal_lm.h"
#include "test_util.h"

using namespace ohm;
using namespace ohm::generation;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A reference to one parsed copy (range-for over a temporary's member would dangle).
const json& processors_fixture() {
  static const json j = json::parse(ohm::test::read_file(
      (ohm::test::fixtures_dir() / "generation" / "processors.json").string()));
  return j;
}

std::unique_ptr<LogitsProcessor> make_processor(const std::string& name, const json& p) {
  if (name == "repetition_penalty") return std::make_unique<RepetitionPenalty>(p["penalty"]);
  if (name == "no_repeat_ngram_size") return std::make_unique<NoRepeatNGram>(p["n"]);
  if (name == "bad_words_ids")
    return std::make_unique<NoBadWords>(p["bad_words_ids"].get<std::vector<std::vector<int64_t>>>(),
                                        p["eos"].get<std::vector<int64_t>>());
  if (name == "min_length")
    return std::make_unique<MinLength>(p["min_length"], p["eos"].get<std::vector<int64_t>>());
  if (name == "min_new_tokens")
    return std::make_unique<MinNewTokens>(p["min_new_tokens"],
                                          p["eos"].get<std::vector<int64_t>>());
  if (name == "temperature") return std::make_unique<Temperature>(p["temperature"]);
  if (name == "top_k") return std::make_unique<TopK>(p["top_k"]);
  if (name == "top_p") return std::make_unique<TopP>(p["top_p"]);
  if (name == "min_p") return std::make_unique<MinP>(p["min_p"]);
  if (name == "typical_p") return std::make_unique<Typical>(p["typical_p"]);
  throw std::runtime_error("unknown processor " + name);
}

// Chi-square critical value at p ~ 1e-4 (Wilson-Hilferty).
double chi2_critical(int df) {
  const double z = 3.719, d = df;
  return d * std::pow(1 - 2 / (9 * d) + z * std::sqrt(2 / (9 * d)), 3);
}

// Draws n tokens from `scores` and checks the counts against `expected` probabilities.
void expect_distribution(const std::vector<float>& scores, const std::vector<double>& expected,
                         uint64_t seed, int n = 10000) {
  std::mt19937_64 rng(seed);
  std::vector<int> counts(scores.size(), 0);
  for (int i = 0; i < n; ++i) counts[static_cast<size_t>(sample_token(scores, rng))]++;
  double chi2 = 0;
  int df = -1;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (expected[i] <= 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0 but was drawn";
      continue;
    }
    const double e = expected[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  if (df > 0) {
    EXPECT_LT(chi2, chi2_critical(df)) << "df " << df;
  }
}

}  // namespace

// ---- processors vs transformers ------------------------------------------------------------

TEST(LogitsProcessors, MatchTransformers) {
  const json fx = processors_fixture();
  ASSERT_GE(fx["cases"].size(), 40u);
  for (const auto& c : fx["cases"]) {
    SCOPED_TRACE(c["processor"].get<std::string>() + " " + c["params"].dump() + " ids " +
                 c["input_ids"].dump());
    auto proc = make_processor(c["processor"], c["params"]);
    std::vector<float> s = c["scores"].get<std::vector<float>>();
    const auto ids = c["input_ids"].get<std::vector<TokenId>>();
    const int64_t prompt_len =
        c["params"].contains("prompt_len") ? c["params"]["prompt_len"].get<int64_t>() : 0;
    proc->apply(ids, prompt_len, s);
    for (size_t i = 0; i < s.size(); ++i) {
      const auto& e = c["expected"][i];
      if (e.is_null()) {
        EXPECT_TRUE(std::isinf(s[i]) && s[i] < 0) << "token " << i << " should be removed";
      } else {
        EXPECT_NEAR(s[i], e.get<double>(), 1e-5 * std::max(1.0, std::fabs(e.get<double>())))
            << "token " << i;
      }
    }
  }
}

TEST(LogitsProcessors, ChainOrderFollowsTransformers) {
  GenerationConfig g;
  g.do_sample = true;
  g.temperature = 0.7;
  g.top_k = 10;
  g.top_p = 0.9;
  g.min_p = 0.05;
  g.typical_p = 0.95;
  g.repetition_penalty = 1.1;
  g.no_repeat_ngram_size = 3;
  g.min_new_tokens = 2;
  g.eos_token_id = {2};
  const auto names = build_logits_processors(g).names();
  EXPECT_EQ(names, (std::vector<std::string>{"repetition_penalty", "no_repeat_ngram_size",
                                             "min_new_tokens", "temperature", "top_k", "top_p",
                                             "min_p", "typical_p"}));
  g.do_sample = false;  // warpers only when sampling
  EXPECT_EQ(build_logits_processors(g).names().size(), 3u);
  g.temperature = -1;
  g.do_sample = true;
  EXPECT_THROW(build_logits_processors(g), InvalidArgument);
}

// ---- sampling distributions (chi-square over 10k draws) --------------------------------------

TEST(Sampling, ChainDistributionMatchesTransformers) {
  const json ch = processors_fixture()["chain"];
  GenerationConfig g;
  g.do_sample = true;
  g.temperature = ch["config"]["temperature"];
  g.top_k = ch["config"]["top_k"];
  g.top_p = ch["config"]["top_p"];
  g.min_p = ch["config"]["min_p"].get<double>();
  std::vector<float> s = ch["scores"].get<std::vector<float>>();
  const std::vector<TokenId> seq{1};
  build_logits_processors(g).apply(seq, 1, s);
  std::vector<float> p(s);
  softmax(p);
  const auto expected = ch["probs"].get<std::vector<double>>();
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(p[i], expected[i], 1e-6) << i;
  expect_distribution(s, expected, 1234);
}

TEST(Sampling, EachWarperDistribution) {
  uint64_t seed = 1;
  for (const auto& c : processors_fixture()["cases"]) {
    const std::string name = c["processor"];
    if (name != "temperature" && name != "top_k" && name != "top_p" && name != "min_p" &&
        name != "typical_p")
      continue;
    SCOPED_TRACE(name + " " + c["params"].dump());
    // Expected: softmax of transformers' processed scores.
    std::vector<double> expected;
    double m = -1e30, z = 0;
    for (const auto& e : c["expected"]) m = std::max(m, e.is_null() ? -1e30 : e.get<double>());
    for (const auto& e : c["expected"]) z += e.is_null() ? 0 : std::exp(e.get<double>() - m);
    for (const auto& e : c["expected"])
      expected.push_back(e.is_null() ? 0 : std::exp(e.get<double>() - m) / z);
    auto proc = make_processor(name, c["params"]);
    std::vector<float> s = c["scores"].get<std::vector<float>>();
    proc->apply(c["input_ids"].get<std::vector<TokenId>>(), 0, s);
    expect_distribution(s, expected, seed++);
  }
}

TEST(Sampling, SeededDrawsAreReproducible) {
  std::vector<float> s{0.1f, 2.0f, -1.0f, 0.5f, 1.5f};
  std::mt19937_64 a(42), b(42);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(sample_token(s, a), sample_token(s, b));
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 3, 2}), 1);  // first maximum, as torch.argmax
}

TEST(StopStrings, EndWithinTheLastToken) {
  // A toy "tokenizer": token i decodes to pieces[i].
  const std::vector<std::string> pieces{"Hel", "lo", " wor", "ld", "###", "#", "##"};
  auto decode = [&](const std::vector<TokenId>& ids) {
    std::string s;
    for (auto i : ids) s += pieces[static_cast<size_t>(i)];
    return s;
  };
  auto stop = stop_strings_criterion({"world", "###"}, decode);
  EXPECT_FALSE(stop({0, 1}));
  EXPECT_FALSE(stop({0, 1, 2}));
  EXPECT_TRUE(stop({0, 1, 2, 3}));  // "world" completed by "ld"
  EXPECT_TRUE(stop({5, 6}));        // "###" spanning tokens
  EXPECT_TRUE(stop({4}));
  EXPECT_FALSE(stop({4, 0}));  // already ended before the last token
}

// ---- generate() on the reference checkpoints ---------------------------------------------------

namespace {

fs::path fixture(const std::string& arch, const std::string& dtype) {
  return ohm::test::fixtures_dir() / "models" / arch / dtype;
}

std::vector<TokenId> ids_of(const safetensors::SafetensorsFile& ref, const std::string& name) {
  Tensor t = ref.tensor(name).to(DType::I64);
  return std::vector<TokenId>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

GenerationConfig greedy_config(int64_t max_new) {
  GenerationConfig g;
  g.max_new_tokens = max_new;
  g.min_new_tokens = max_new;
  g.eos_token_id = {2};
  g.pad_token_id = 0;
  return g;
}

}  // namespace

TEST(Generate, GreedyMatchesTransformersOnEveryArchitecture) {
  for (const std::string arch : {"llama", "mistral", "mixtral", "falcon_mq", "falcon_nda", "qwen2",
                                 "gemma", "phi3", "gpt2"}) {
    SCOPED_TRACE(arch);
    const auto dir = fixture(arch, "f32");
    auto model = load_causal_lm(dir.string());
    const auto ref = safetensors::SafetensorsFile::open((dir / "reference.safetensors").string());
    const auto prompt = ids_of(ref, "greedy.input_ids");
    const auto expected = ids_of(ref, "greedy.output_ids");
    GenerateOptions opt;
    opt.config = greedy_config(32);
    const auto out = generate(*model, {prompt}, opt);
    ASSERT_EQ(out.sequences.size(), 1u);
    EXPECT_EQ(out.sequences[0], expected);
    EXPECT_EQ(out.token_logprobs[0].size(), 32u);
    EXPECT_EQ(out.finish_reasons[0], FinishReason::Length);
  }
}

TEST(Generate, BatchedGreedyEqualsOneByOne) {
  auto model = load_causal_lm(fixture("llama", "f32").string());
  const std::vector<std::vector<TokenId>> prompts{{5, 6, 7}, {9, 10, 11, 12, 13, 14, 15}, {100}};
  GenerateOptions opt;
  opt.config = greedy_config(12);
  const auto batched = generate(*model, prompts, opt);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto single = generate(*model, {prompts[i]}, opt);
    EXPECT_EQ(batched.sequences[i], single.sequences[0]) << "prompt " << i;
  }
}

TEST(Generate, BeamSearchMatchesTransformers) {
  for (const std::string arch : {"llama", "gpt2"}) {
    for (const std::string dtype : {"f32"}) {
      SCOPED_TRACE(arch + "/" + dtype);
      const auto dir = fixture(arch, dtype);
      auto model = load_causal_lm(dir.string());
      const auto ref = safetensors::SafetensorsFile::open((dir / "reference.safetensors").string());
      const json rj = json::parse(ohm::test::read_file((dir / "reference.json").string()));
      const auto prompt = ids_of(ref, "greedy.input_ids");
      Tensor seqs = ref.tensor("beam.output_ids").to(DType::I64);
      Tensor scores = ref.tensor("beam.sequences_scores").to(DType::F32);
      GenerateOptions opt;
      opt.config.num_beams = 4;
      opt.config.num_return_sequences = 4;
      opt.config.max_new_tokens = 16;
      opt.config.length_penalty = 1.0;
      opt.config.early_stopping = "true";
      opt.config.eos_token_id = {2};
      opt.config.pad_token_id = 0;
      const auto out = generate(*model, {prompt}, opt);
      ASSERT_EQ(out.sequences.size(), 4u);
      const int64_t L = seqs.dim(1);
      for (int64_t k = 0; k < 4; ++k) {
        std::vector<TokenId> want(seqs.data<int64_t>() + k * L, seqs.data<int64_t>() + (k + 1) * L);
        EXPECT_EQ(out.sequences[k], want) << "beam " << k;
        EXPECT_NEAR(out.sequences_scores[k], scores.data<float>()[k], 2e-5) << "beam " << k;
      }
    }
  }
}

TEST(Generate, SamplingIsReproducibleAndRespectsOptions) {
  auto model = load_causal_lm(fixture("llama", "f32").string());
  GenerateOptions opt;
  opt.config.do_sample = true;
  opt.config.temperature = 1.3;
  opt.config.top_k = 20;
  opt.config.max_new_tokens = 16;
  opt.config.num_return_sequences = 3;
  opt.seed = 7;
  const auto a = generate(*model, {{5, 6, 7}}, opt);
  const auto b = generate(*model, {{5, 6, 7}}, opt);
  ASSERT_EQ(a.sequences.size(), 3u);
  EXPECT_EQ(a.sequences, b.sequences);
  opt.seed = 8;
  const auto c = generate(*model, {{5, 6, 7}}, opt);
  EXPECT_NE(a.sequences, c.sequences);
  for (const auto& s : a.sequences) EXPECT_LE(s.size(), 3u + 16u);
}

TEST(Generate, EosStreamingAndCancellation) {
  auto model = load_causal_lm(fixture("llama", "f32").string());
  const auto ref = safetensors::SafetensorsFile::open(
      (fixture("llama", "f32") / "reference.safetensors").string());
  const auto prompt = ids_of(ref, "greedy.input_ids");
  const auto expected = ids_of(ref, "greedy.output_ids");
  // Make the 5th greedy token an EOS: generation stops right after it.
  GenerateOptions opt;
  opt.config = greedy_config(32);
  opt.config.min_new_tokens.reset();
  opt.config.eos_token_id = {expected[prompt.size() + 4]};
  std::vector<TokenId> streamed;
  opt.on_token = [&](int64_t seq, TokenId tok) {
    EXPECT_EQ(seq, 0);
    streamed.push_back(tok);
    return true;
  };
  auto out = generate(*model, {prompt}, opt);
  ASSERT_EQ(out.sequences[0].size(), prompt.size() + 5) << "stops at the first EOS";
  EXPECT_EQ(out.finish_reasons[0], FinishReason::Eos);
  EXPECT_EQ(streamed,
            std::vector<TokenId>(out.sequences[0].begin() + prompt.size(), out.sequences[0].end()));
  // min_new_tokens keeps EOS away.
  opt.config.min_new_tokens = 8;
  out = generate(*model, {prompt}, opt);
  EXPECT_GE(out.sequences[0].size(), prompt.size() + 8);
  // Cancellation from the callback.
  opt.config = greedy_config(32);
  int n = 0;
  opt.on_token = [&](int64_t, TokenId) { return ++n < 3; };
  out = generate(*model, {prompt}, opt);
  EXPECT_EQ(out.sequences[0].size(), prompt.size() + 3);
  EXPECT_EQ(out.finish_reasons[0], FinishReason::Cancelled);
  // Bad input is an error, not a crash.
  EXPECT_THROW(generate(*model, {{}}, opt), InvalidArgument);
  EXPECT_THROW(generate(*model, {{1, 99999}}, opt), InvalidArgument);
  opt.config.num_return_sequences = 2;
  EXPECT_THROW(generate(*model, {{1}}, opt), InvalidArgument);
}

TEST(Generate, CancelFlagStopsBeforeTheNextStep) {
  auto model = load_causal_lm(fixture("llama", "f32").string());
  const auto ref = safetensors::SafetensorsFile::open(
      (fixture("llama", "f32") / "reference.safetensors").string());
  const auto prompt = ids_of(ref, "greedy.input_ids");
  const auto expected = ids_of(ref, "greedy.output_ids");
  std::atomic<bool> cancel{false};
  GenerateOptions opt;
  opt.config = greedy_config(32);
  opt.cancel = &cancel;
  int n = 0;
  opt.on_token = [&](int64_t, TokenId) {
    if (++n == 2) cancel = true;  // as a SIGINT handler would, between two steps
    return true;
  };
  auto out = generate(*model, {prompt}, opt);
  ASSERT_EQ(out.sequences[0].size(), prompt.size() + 2);
  EXPECT_EQ(out.sequences[0],
            std::vector<TokenId>(expected.begin(), expected.begin() + prompt.size() + 2));
  EXPECT_EQ(out.finish_reasons[0], FinishReason::Cancelled);
  // Set before the first step: nothing is generated.
  out = generate(*model, {prompt}, opt);
  EXPECT_EQ(out.sequences[0], prompt);
  EXPECT_EQ(out.finish_reasons[0], FinishReason::Cancelled);
  // Beam search stops too (its finished beams so far, here none).
  opt.on_token = {};
  opt.config.num_beams = 2;
  EXPECT_EQ(generate(*model, {prompt}, opt).sequences[0], prompt);
}

TEST(Generate, GreedyGenerateIsGenerateWithoutProcessors) {
  auto model = load_causal_lm(fixture("llama", "f32").string());
  const auto ref = safetensors::SafetensorsFile::open(
      (fixture("llama", "f32") / "reference.safetensors").string());
  const auto prompt = ids_of(ref, "greedy.input_ids");
  const auto expected = ids_of(ref, "greedy.output_ids");
  EXPECT_EQ(ohm::generation::greedy_generate(*model, prompt, 32), expected);
  EXPECT_EQ(ohm::generation::greedy_generate(*model, prompt, 0), prompt);
  // Stops after the first EOS (here: the 5th token).
  const auto eos = expected[prompt.size() + 4];
  EXPECT_EQ(ohm::generation::greedy_generate(*model, prompt, 32, {eos}),
            std::vector<TokenId>(expected.begin(), expected.begin() + prompt.size() + 5));
  EXPECT_THROW(ohm::generation::greedy_generate(*model, {}, 4), InvalidArgument);
}

TEST(Session, SharesTheLoopAndReusesTheCache) {
  auto model = load_causal_lm(fixture("llama", "f32").string());
  const auto ref = safetensors::SafetensorsFile::open(
      (fixture("llama", "f32") / "reference.safetensors").string());
  const auto prompt = ids_of(ref, "greedy.input_ids");
  const auto expected = ids_of(ref, "greedy.output_ids");
  Session s(*model, greedy_config(16));
  std::vector<TokenId> streamed;
  const auto first = s.generate(prompt, [&](TokenId t) {
    streamed.push_back(t);
    return true;
  });
  EXPECT_EQ(first, std::vector<TokenId>(expected.begin() + prompt.size(),
                                        expected.begin() + prompt.size() + 16));
  EXPECT_EQ(streamed, first);
  EXPECT_EQ(s.finish_reason(), FinishReason::Length);
  EXPECT_EQ(s.reused_last(), 0);
  // The next turn extends the context: the cached prefix is reused and the result is what
  // one-shot generation gives on the whole context.
  std::vector<TokenId> ctx(prompt);
  ctx.insert(ctx.end(), first.begin(), first.end());
  ctx.insert(ctx.end(), {5, 6, 7});
  const auto second = s.generate(ctx);
  EXPECT_EQ(s.reused_last(), static_cast<int64_t>(prompt.size() + 15));  // the last token unfed
  GenerateOptions opt;
  opt.config = greedy_config(16);
  const auto oneshot = generate(*model, {ctx}, opt);
  EXPECT_EQ(second, std::vector<TokenId>(oneshot.sequences[0].begin() + ctx.size(),
                                         oneshot.sequences[0].end()));
  // EOS and stop criteria end the turn; the callback and the flag cancel it.
  s.config().min_new_tokens.reset();
  s.config().eos_token_id = {expected[prompt.size() + 2]};
  EXPECT_EQ(s.generate(prompt).size(), 3u);
  EXPECT_EQ(s.finish_reason(), FinishReason::Eos);
  s.config().eos_token_id = {};
  EXPECT_EQ(
      s.generate(prompt, {}, [](const std::vector<TokenId>& g) { return g.size() == 4; }).size(),
      4u);
  EXPECT_EQ(s.finish_reason(), FinishReason::Stop);
  EXPECT_EQ(s.generate(prompt, [](TokenId) { return false; }).size(), 1u);
  EXPECT_EQ(s.finish_reason(), FinishReason::Cancelled);
  std::atomic<bool> cancel{true};
  EXPECT_TRUE(s.generate(prompt, {}, {}, &cancel).empty());
  EXPECT_EQ(s.finish_reason(), FinishReason::Cancelled);
}
