// The demo model end to end against transformers (tests/fixtures/demo/reference.json, written
// by scripts/train_demo_model.py): tokenization, last-position logits, greedy continuation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ohm/generation/generate.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"
#include "test_util.h"

using json = nlohmann::json;

TEST(Demo, MatchesTransformersEndToEnd) {
  const auto dir = (ohm::test::source_dir() / "models" / "ohm-demo").string();
  const json ref = json::parse(
      ohm::test::read_file((ohm::test::fixtures_dir() / "demo" / "reference.json").string()));
  auto tok = ohm::tokenizers::AutoTokenizer::from_pretrained(dir);
  const std::vector<ohm::TokenId> ids = tok.encode(ref["prompt"].get<std::string>());
  EXPECT_EQ(ids, ref["input_ids"].get<std::vector<ohm::TokenId>>());

  auto model = ohm::load_causal_lm(dir, {.dtype = ohm::DType::F32});
  auto cache = model->make_cache(1);
  ohm::Tensor in = ohm::Tensor::empty(ohm::DType::I64, {1, static_cast<int64_t>(ids.size())});
  std::copy(ids.begin(), ids.end(), in.mutable_data<int64_t>());
  ohm::Tensor logits = model->forward(in, {}, {}, cache, /*last_only=*/true);
  const auto want = ref["last_prompt_position_logits"].get<std::vector<float>>();
  ASSERT_EQ(logits.numel(), want.size());
  float lo = want[0], hi = want[0], maxdiff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    lo = std::min(lo, want[i]);
    hi = std::max(hi, want[i]);
    maxdiff = std::max(maxdiff, std::fabs(logits.data<float>()[i] - want[i]));
  }
  EXPECT_LE(maxdiff / (hi - lo), 1e-4);

  ohm::generation::GenerateOptions opt;
  opt.config.max_new_tokens = ref["max_new_tokens"].get<int64_t>();
  opt.config.eos_token_id = {0};
  auto out = ohm::generation::generate(*model, {ids}, opt);
  const std::vector<ohm::TokenId> gen(out.sequences[0].begin() + ids.size(),
                                      out.sequences[0].end());
  // Step 18 has a top-2 margin of 0.0014 in the reference: require exact tokens up to it and
  // report the rest (it matched when the fixture was made).
  const auto want_ids = ref["generated_ids"].get<std::vector<ohm::TokenId>>();
  ASSERT_GE(gen.size(), 18u);
  EXPECT_EQ(std::vector<ohm::TokenId>(gen.begin(), gen.begin() + 18),
            std::vector<ohm::TokenId>(want_ids.begin(), want_ids.begin() + 18));
  if (gen == want_ids) {
    EXPECT_EQ(tok.decode(gen, /*skip_special_tokens=*/true),
              ref["generated_text"].get<std::string>());
  }
}
