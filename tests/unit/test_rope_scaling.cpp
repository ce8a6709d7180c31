// RoPE scaling variants and Falcon ALiBi against transformers (tests/fixtures/rope/<variant>/,
// made by scripts/make_rope_fixtures.py): linear, dynamic NTK (max_position_embeddings 24,
// exceeded by the prompts and during decoding), llama3, yarn (truncated and not), Phi-3
// longrope (short -> long factors, with transformers' cache recompute at the switch) and
// Falcon with alibi=True (reference from transformers' SDPA path, its default for Falcon: the
// eager path adds the ALiBi bias twice). Logits for prompts of 1, 7 and 64 tokens and a left-padded
// batch (f32, scaled max |diff| <= 1e-4); greedy generation through ohm::generation::generate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "ohm/formats/safetensors.h"
#include "ohm/generation/generate.h"
#include "ohm/models/causal_lm.h"
#include "test_util.h"

namespace ohm {
namespace {

std::string dir_of(const std::string& v) {
  return (test::fixtures_dir() / "rope" / v).string();
}

// max |ours - ref| / range(ref) over positions where mask (if given) is 1.
double scaled_diff(const Tensor& ours, const Tensor& ref, const Tensor* mask = nullptr) {
  const float* r = ref.data<float>();
  const float* o = ours.data<float>();
  const auto [lo, hi] = std::minmax_element(r, r + ref.numel());
  const int64_t BT = ref.dim(0) * ref.dim(1), V = ref.dim(2);
  double worst = 0;
  for (int64_t bt = 0; bt < BT; ++bt) {
    if (mask && mask->data<int64_t>()[bt] == 0) continue;
    for (int64_t v = 0; v < V; ++v)
      worst = std::max<double>(worst, std::fabs(o[bt * V + v] - r[bt * V + v]));
  }
  return worst / (*hi - *lo);
}

class RopeFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = load_causal_lm(dir_of(GetParam()), {.threads = 2});
    ref_ = safetensors::SafetensorsFile::open(dir_of(GetParam()) + "/reference.safetensors");
  }
  std::unique_ptr<CausalLM> model_;
  std::optional<safetensors::SafetensorsFile> ref_;
};

TEST_P(RopeFixture, PromptLogits) {
  for (int len : {1, 7, 64}) {
    const std::string k = "prompt_len" + std::to_string(len);
    auto cache = model_->make_cache(1);
    const Tensor logits =
        model_->forward(ref_->tensor(k + ".input_ids"), Tensor(), Tensor(), cache);
    const double d = scaled_diff(logits, ref_->tensor(k + ".logits"));
    std::printf("[measure] %s %s.scaled_diff %.3g\n", GetParam().c_str(), k.c_str(), d);
    EXPECT_LE(d, 1e-4) << k;
  }
}

TEST_P(RopeFixture, LeftPaddedBatch) {
  const Tensor mask = ref_->tensor("batch.attention_mask");
  auto cache = model_->make_cache(mask.dim(0));
  const Tensor logits = model_->forward(ref_->tensor("batch.input_ids"), mask,
                                        ref_->tensor("batch.position_ids"), cache);
  const double d = scaled_diff(logits, ref_->tensor("batch.logits"), &mask);
  std::printf("[measure] %s batch.scaled_diff %.3g\n", GetParam().c_str(), d);
  EXPECT_LE(d, 1e-4);
}

TEST_P(RopeFixture, GreedyGenerate) {
  for (const std::string k : {"greedy", "greedy_long"}) {
    const Tensor in = ref_->tensor(k + ".input_ids");
    const Tensor want = ref_->tensor(k + ".output_ids");
    const std::vector<TokenId> prompt(in.data<int64_t>(), in.data<int64_t>() + in.numel());
    generation::GenerateOptions opt;
    opt.config.do_sample = false;
    opt.config.max_new_tokens = 32;
    opt.config.min_new_tokens = 32;
    opt.config.eos_token_id = {2};
    const auto out = generation::generate(*model_, {prompt}, opt);
    const std::vector<TokenId> expect(want.data<int64_t>(), want.data<int64_t>() + want.numel());
    int same = 0;
    for (size_t i = prompt.size(); i < std::min(expect.size(), out.sequences[0].size()); ++i)
      same += out.sequences[0][i] == expect[i];
    std::printf("[measure] %s %s_matches_of_32 %d\n", GetParam().c_str(), k.c_str(), same);
    EXPECT_EQ(out.sequences[0], expect) << k;
  }
}

// Long-context Phi-3 as convert_hf_to_gguf writes it (rope_factors_{long,short}.weight, attn
// factor key): the same logits and greedy tokens as the safetensors weights cast to F16.
TEST(RopeGguf, Phi3LongropeMatchesSafetensorsF16) {
  const std::string dir = dir_of("phi3_longrope");
  auto g = load_causal_lm(dir + "/model-f16.gguf", {.threads = 2});
  auto st = load_causal_lm(dir, {.dtype = DType::F16, .threads = 2});
  ASSERT_TRUE(g->decoder_config().rope_scaling.has_value());
  const auto& rs = *g->decoder_config().rope_scaling;
  EXPECT_EQ(rs.rope_type, "longrope");
  const auto& want = st->decoder_config().rope_scaling->long_factor;
  ASSERT_EQ(rs.long_factor.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)  // stored as F32 in the GGUF
    EXPECT_NEAR(rs.long_factor[i], want[i], 1e-6 * want[i]);
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  const Tensor ids = ref.tensor("prompt_len64.input_ids");
  auto c1 = g->make_cache(1), c2 = st->make_cache(1);
  const Tensor a = g->forward(ids, Tensor(), Tensor(), c1);
  const Tensor b = st->forward(ids, Tensor(), Tensor(), c2);
  EXPECT_LE(scaled_diff(a, b), 1e-5);
  for (const std::string k : {"greedy", "greedy_long"}) {
    const Tensor in = ref.tensor(k + ".input_ids");
    const std::vector<TokenId> prompt(in.data<int64_t>(), in.data<int64_t>() + in.numel());
    generation::GenerateOptions opt;
    opt.config.max_new_tokens = 32;
    EXPECT_EQ(generation::generate(*g, {prompt}, opt).sequences,
              generation::generate(*st, {prompt}, opt).sequences)
        << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Rope, RopeFixture,
                         ::testing::Values("llama_linear", "llama_dynamic", "llama_llama3",
                                           "llama_yarn", "qwen2_yarn_nt", "phi3_longrope",
                                           "falcon_alibi"));

}  // namespace
}  // namespace ohm
