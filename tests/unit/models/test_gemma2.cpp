// Gemma 2's config binding, and that the fixture exercises what sets Gemma 2 apart: its logits
// (checked against transformers by the shared fixture tests in test_models.cpp /
// test_gguf_models.cpp) move when the attention or final soft-capping, the sliding window or
// query_pre_attn_scalar is switched off, so the shared tests cover each of them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/arch.h"
#include "ohm/models/causal_lm.h"
#include "test_util.h"

namespace ohm {
namespace {

using json = nlohmann::json;

std::string summary_value(const ModelConfig& mc, const std::string& key) {
  for (const auto& [k, v] : summarize(mc))
    if (k == key) return v;
  return "(absent)";
}

TEST(Gemma2, DefaultsMatchTransformers) {
  const ModelConfig mc = parse_model_config(json{{"model_type", "gemma2"}}, "config.json");
  const DecoderConfig& c = common(mc);
  EXPECT_EQ(c.vocab_size, 256000);
  EXPECT_EQ(c.hidden_size, 2304);
  EXPECT_EQ(c.num_hidden_layers, 26);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.hidden_act, "gelu_pytorch_tanh");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(summary_value(mc, "layer_types"), "13 full, 13 sliding");
  EXPECT_EQ(summary_value(mc, "query_pre_attn_scalar"), "256");
  EXPECT_EQ(summary_value(mc, "attn_logit_softcapping"), "50");
  EXPECT_EQ(summary_value(mc, "final_logit_softcapping"), "30");
}

TEST(Gemma2, NullSoftcapsMeanNone) {
  const ModelConfig mc = parse_model_config(json{{"model_type", "gemma2"},
                                                 {"attn_logit_softcapping", nullptr},
                                                 {"final_logit_softcapping", nullptr},
                                                 {"hidden_activation", "gelu"}},
                                            "config.json");
  EXPECT_EQ(summary_value(mc, "attn_logit_softcapping"), "none");
  EXPECT_EQ(summary_value(mc, "final_logit_softcapping"), "none");
  EXPECT_EQ(common(mc).hidden_act, "gelu");  // hidden_activation drives the MLP
}

TEST(Gemma2, BadValuesNameTheKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
           {"attn_logit_softcapping", -1.0},
           {"query_pre_attn_scalar", 0},
           {"layer_types", json{"sliding_attention", "chunked"}}}) {
    try {
      parse_model_config(json{{"model_type", "gemma2"}, {"num_hidden_layers", 2}, {key, value}},
                         "dir/config.json");
      ADD_FAILURE() << key << ": no error";
    } catch (const ConfigError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("dir/config.json"), std::string::npos) << m;
      EXPECT_NE(m.find(key), std::string::npos) << m;
    }
  }
}

// Max |logit - transformers| over the 64-token prompt, with `edit` applied to the fixture's
// config.json (same weights).
double diff_with(const std::function<void(json&)>& edit) {
  const auto src = test::fixtures_dir() / "models/gemma2/f32";
  test::TempDir dir;
  json cfg = json::parse(test::read_file((src / "config.json").string()));
  edit(cfg);
  test::write_file(dir.file("config.json"), cfg.dump());
  std::filesystem::copy_file(src / "model.safetensors", dir.path() / "model.safetensors");
  auto model = load_causal_lm(dir.path().string());
  const auto ref = safetensors::SafetensorsFile::open((src / "reference.safetensors").string());
  auto cache = model->make_cache(1);
  const Tensor ids = ref.tensor("prompt_len64.input_ids");
  const Tensor out = model->forward(ids, Tensor(), Tensor(), cache);
  const Tensor want = ref.tensor("prompt_len64.logits");
  double d = 0;
  for (uint64_t i = 0; i < want.numel(); ++i)
    d = std::max<double>(d, std::fabs(out.data<float>()[i] - want.data<float>()[i]));
  return d;
}

TEST(Gemma2, FixtureExercisesEachFeature) {
  EXPECT_LT(diff_with([](json&) {}), 1e-4);  // as committed: matches transformers
  EXPECT_GT(diff_with([](json& c) { c["attn_logit_softcapping"] = nullptr; }), 1e-2);
  EXPECT_GT(diff_with([](json& c) { c["final_logit_softcapping"] = nullptr; }), 1e-2);
  EXPECT_GT(diff_with([](json& c) { c["sliding_window"] = nullptr; }), 1e-2);  // 64 > 16
  EXPECT_GT(diff_with([](json& c) { c["query_pre_attn_scalar"] = 64; }), 1e-2);
}

}  // namespace
}  // namespace ohm
