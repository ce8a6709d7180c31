// Perplexity (llama-perplexity's procedure) of the demo model on held-out Shakespeare against
// transformers (tests/fixtures/demo/perplexity.json, scripts/make_perplexity_fixture.py), and
// the quantization bars of the performance issue: Q8_0 within 0.5% and Q4_0 within 5% of f32.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/eval/perplexity.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"
#include "test_util.h"

namespace {

struct Demo {
  nlohmann::json ref;
  std::vector<ohm::TokenId> ids;
  std::string dir;
};

const Demo& demo() {
  static const Demo d = [] {
    Demo x;
    x.dir = (ohm::test::source_dir() / "models" / "ohm-demo").string();
    x.ref = nlohmann::json::parse(
        ohm::test::read_file((ohm::test::fixtures_dir() / "demo" / "perplexity.json").string()));
    const auto text =
        ohm::test::read_file((ohm::test::fixtures_dir() / "demo" / "heldout.txt").string());
    x.ids = ohm::tokenizers::AutoTokenizer::from_pretrained(x.dir).encode(text);
    return x;
  }();
  return d;
}

double ppl_of(const ohm::LoadOptions& lo) {
  auto model = ohm::load_causal_lm(demo().dir, lo);
  ohm::eval::PerplexityOptions opt;
  opt.n_ctx = demo().ref["n_ctx"].get<int64_t>();
  opt.max_chunks = demo().ref["chunks"].get<int64_t>();
  const auto r = ohm::eval::perplexity(*model, demo().ids, opt);
  EXPECT_EQ(r.tokens_scored, demo().ref["tokens_scored"].get<int64_t>());
  return r.ppl;
}

TEST(Perplexity, DemoMatchesTransformers) {
  ASSERT_EQ(static_cast<int64_t>(demo().ids.size()), demo().ref["tokens"].get<int64_t>());
  const double ppl = ppl_of({.dtype = ohm::DType::F32, .threads = 2});
  const double want = demo().ref["ppl"].get<double>();
  std::printf("[measure] demo ppl f32 %.5f (transformers %.5f)\n", ppl, want);
  EXPECT_NEAR(ppl, want, 1e-4 * want);
}

TEST(Perplexity, QuantizedWithinTheBars) {
  const double f32 = ppl_of({.dtype = ohm::DType::F32, .threads = 2});
  const double q8 = ppl_of({.threads = 2, .quantize = ohm::DType::Q8_0});
  const double q4 = ppl_of({.threads = 2, .quantize = ohm::DType::Q4_0});
  std::printf("[measure] demo ppl f32 %.4f q8_0 %.4f (%+.3f%%) q4_0 %.4f (%+.3f%%)\n", f32, q8,
              100 * (q8 / f32 - 1), q4, 100 * (q4 / f32 - 1));
  EXPECT_LE(std::fabs(q8 / f32 - 1), 0.005);
  EXPECT_LE(std::fabs(q4 / f32 - 1), 0.05);
}

TEST(Perplexity, TooShortTextIsAClearError) {
  auto model = ohm::load_causal_lm(demo().dir);
  ohm::eval::PerplexityOptions opt;
  opt.n_ctx = 4096;
  try {
    ohm::eval::perplexity(*model, demo().ids, opt);
    FAIL() << "expected InvalidArgument";
  } catch (const ohm::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("one chunk needs 4096"), std::string::npos) << e.what();
  }
}

}  // namespace
