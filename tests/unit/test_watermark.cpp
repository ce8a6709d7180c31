// Watermarking against transformers (tests/fixtures/watermark/cases.json, made by
// scripts/make_watermark_fixtures.py): green lists, greedy generate(..., watermarking_config)
// on the demo model, and WatermarkDetector's counts and z-scores, for lefthash and selfhash.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ohm/generation/watermark.h"
#include "ohm/ohm.h"
#include "test_util.h"

using json = nlohmann::json;
using ohm::generation::detect_watermark;
using ohm::generation::parse_watermark_spec;
using ohm::generation::watermark_greenlist;

namespace {

json cases() {
  std::ifstream f(ohm::test::source_dir() / "tests" / "fixtures" / "watermark" / "cases.json");
  return json::parse(f);
}

ohm::WatermarkingConfig config_of(const json& c) {
  ohm::WatermarkingConfig w;
  w.greenlist_ratio = c["greenlist_ratio"].get<double>();
  w.bias = c["bias"].get<double>();
  w.seeding_scheme = c["seeding_scheme"].get<std::string>();
  w.context_width = c["context_width"].get<int64_t>();
  w.hashing_key = c["hashing_key"].get<uint64_t>();
  return w;
}

std::string name(const ohm::WatermarkingConfig& w) {
  return w.seeding_scheme + " gamma=" + std::to_string(w.greenlist_ratio) +
         " cw=" + std::to_string(w.context_width);
}

TEST(Watermark, GreenlistsMatchTransformers) {
  const json f = cases();
  const int64_t vocab = f["vocab_size"].get<int64_t>();
  for (const auto& c : f["cases"]) {
    const auto w = config_of(c["config"]);
    for (const auto& g : c["greenlists"]) {
      const auto ctx = g["context"].get<std::vector<ohm::TokenId>>();
      const auto gl = watermark_greenlist(w, vocab, ctx);
      EXPECT_EQ(static_cast<int64_t>(gl.size()), g["size"].get<int64_t>()) << name(w);
      const auto first = g["first"].get<std::vector<ohm::TokenId>>();
      ASSERT_GE(gl.size(), first.size());
      EXPECT_EQ(std::vector<ohm::TokenId>(gl.begin(), gl.begin() + static_cast<long>(first.size())),
                first)
          << name(w) << " context " << g["context"].dump();
    }
  }
}

TEST(Watermark, DetectorMatchesTransformers) {
  const json f = cases();
  const int64_t vocab = f["vocab_size"].get<int64_t>();
  const int64_t bos = f["bos_token_id"].get<int64_t>();
  int n = 0;
  for (const auto& c : f["cases"]) {
    const auto w = config_of(c["config"]);
    for (const auto& d : c["detect"]) {
      SCOPED_TRACE(name(w) + " " + d["name"].get<std::string>());
      const auto r = detect_watermark(w, vocab, d["ids"].get<std::vector<ohm::TokenId>>(), bos, 3.0,
                                      d["ignore_repeated_ngrams"].get<bool>());
      EXPECT_EQ(r.num_tokens_scored, d["num_tokens_scored"].get<int64_t>());
      EXPECT_EQ(r.num_green_tokens, d["num_green_tokens"].get<int64_t>());
      EXPECT_NEAR(r.z_score, d["z_score"].get<double>(), 1e-6);
      EXPECT_NEAR(r.p_value, d["p_value"].get<double>(), 1e-6);
      EXPECT_EQ(r.prediction, d["prediction"].get<bool>());
      ++n;
    }
  }
  EXPECT_GE(n, 50);
}

TEST(Watermark, GreedyGenerationMatchesTransformers) {
  const json f = cases();
  const std::string dir = (ohm::test::source_dir() / "models" / "ohm-demo").string();
  auto tok = ohm::AutoTokenizer::from_pretrained(dir);
  auto model = ohm::AutoModelForCausalLM::from_pretrained(dir, {.threads = 2});
  int changed = 0;
  for (const auto& c : f["cases"]) {
    const auto w = config_of(c["config"]);
    for (const auto& g : c["greedy"]) {
      SCOPED_TRACE(name(w) + " prompt " + g["prompt"].get<std::string>());
      auto cfg = model.generation_config();
      cfg.max_new_tokens = f["new_tokens"].get<int64_t>();
      cfg.do_sample = false;
      cfg.watermarking_config = w;
      const auto in = tok(g["prompt"].get<std::string>());
      const auto want_in = g["input_ids"].get<std::vector<int64_t>>();
      ASSERT_EQ(std::vector<int64_t>(in.input_ids[0].begin(), in.input_ids[0].end()), want_in);
      const auto out = model.generate(in, cfg)[0];
      const std::vector<int64_t> got(out.begin() + static_cast<long>(want_in.size()), out.end());
      EXPECT_EQ(got, g["watermarked"].get<std::vector<int64_t>>());
      changed += g["watermarked"] != g["plain"];
    }
  }
  EXPECT_GT(changed, 0);  // the bias changes the argmax somewhere
}

TEST(Watermark, SpecParsingAndRanges) {
  const auto w =
      parse_watermark_spec("gamma=0.5,delta=1.5,seeding_scheme=selfhash,context_width=4");
  EXPECT_EQ(w.greenlist_ratio, 0.5);
  EXPECT_EQ(w.bias, 1.5);
  EXPECT_EQ(w.seeding_scheme, "selfhash");
  EXPECT_EQ(w.context_width, 4);
  EXPECT_EQ(parse_watermark_spec("").hashing_key, 15485863u);
  for (const char* bad :
       {"gamma=1", "gamma=0", "gamma=-0.1", "delta=-1", "delta=nan", "seeding_scheme=minhash",
        "context_width=0", "context_width=1.5", "hashing_key=-3", "foo=1", "gamma", "gamma=abc"})
    EXPECT_THROW(parse_watermark_spec(bad), ohm::InvalidArgument) << bad;
  // Too short to score after the seeding window.
  EXPECT_THROW(detect_watermark(parse_watermark_spec("context_width=4"), 4096, {1, 5, 6, 7}, 1),
               ohm::InvalidArgument);
}

}  // namespace
