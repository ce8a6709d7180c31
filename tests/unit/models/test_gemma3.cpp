// Gemma 3 text's config binding (both RoPE layouts: transformers 4's rope_theta /
// rope_local_base_freq / rope_scaling and transformers 5's rope_parameters per layer type), and
// that the fixture exercises what sets Gemma 3 apart: its logits (checked against transformers
// by the shared fixture tests in test_models.cpp / test_gguf_models.cpp) move when the local
// RoPE base, the global rope scaling, the sliding window or the 5:1 pattern changes.
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

TEST(Gemma3, DefaultsMatchTransformers) {
  const ModelConfig mc = parse_model_config(json{{"model_type", "gemma3_text"}}, "config.json");
  const DecoderConfig& c = common(mc);
  EXPECT_EQ(c.vocab_size, 262208);
  EXPECT_EQ(c.num_hidden_layers, 26);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.hidden_act, "gelu_pytorch_tanh");
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);  // global layers
  EXPECT_FALSE(c.rope_scaling.has_value());
  EXPECT_EQ(summary_value(mc, "rope_local_theta"), "10000");
  EXPECT_EQ(summary_value(mc, "layer_types"), "4 full, 22 sliding");  // layers 5, 11, 17, 23
  EXPECT_EQ(summary_value(mc, "attn_logit_softcapping"), "none");
  EXPECT_EQ(summary_value(mc, "final_logit_softcapping"), "none");
  EXPECT_EQ(
      common(parse_model_config(json{{"architectures", {"Gemma3ForCausalLM"}}}, "c")).model_type,
      "gemma3_text");
}

TEST(Gemma3, Transformers4RopeKeys) {
  const ModelConfig mc =
      parse_model_config(json{{"model_type", "gemma3_text"},
                              {"num_hidden_layers", 8},
                              {"sliding_window_pattern", 4},
                              {"rope_theta", 500000.0},
                              {"rope_local_base_freq", 20000.0},
                              {"rope_scaling", {{"rope_type", "linear"}, {"factor", 8.0}}}},
                         "config.json");
  const DecoderConfig& c = common(mc);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->rope_type, "linear");
  EXPECT_EQ(summary_value(mc, "rope_local_theta"), "20000");
  EXPECT_EQ(summary_value(mc, "layer_types"), "2 full, 6 sliding");
}

TEST(Gemma3, Transformers5RopeParametersPerLayerType) {
  const ModelConfig mc = parse_model_config(
      json{{"model_type", "gemma3_text"},
           {"rope_parameters",
            {{"full_attention", {{"rope_type", "linear"}, {"factor", 4.0}, {"rope_theta", 2e6}}},
             {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 5000.0}}}}}},
      "config.json");
  const DecoderConfig& c = common(mc);
  EXPECT_DOUBLE_EQ(c.rope_theta, 2e6);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->rope_type, "linear");
  EXPECT_EQ(summary_value(mc, "rope_local_theta"), "5000");
}

TEST(Gemma3, BadValuesNameTheKey) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, json>>{{"sliding_window_pattern", 0},
                                                 {"query_pre_attn_scalar", -1},
                                                 {"final_logit_softcapping", 0.0},
                                                 {"layer_types", json{"sliding_attention"}}}) {
    try {
      parse_model_config(
          json{{"model_type", "gemma3_text"}, {"num_hidden_layers", 2}, {key, value}},
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
  const auto src = test::fixtures_dir() / "models/gemma3/f32";
  test::TempDir dir;
  json cfg = json::parse(test::read_file((src / "config.json").string()));
  edit(cfg);
  test::write_file(dir.file("config.json"), cfg.dump());
  std::filesystem::copy_file(src / "model.safetensors", dir.path() / "model.safetensors");
  auto model = load_causal_lm(dir.path().string());
  const auto ref = safetensors::SafetensorsFile::open((src / "reference.safetensors").string());
  auto cache = model->make_cache(1);
  const Tensor out =
      model->forward(ref.tensor("prompt_len64.input_ids"), Tensor(), Tensor(), cache);
  const Tensor want = ref.tensor("prompt_len64.logits");
  double d = 0;
  for (uint64_t i = 0; i < want.numel(); ++i)
    d = std::max<double>(d, std::fabs(out.data<float>()[i] - want.data<float>()[i]));
  return d;
}

TEST(Gemma3, FixtureExercisesEachFeature) {
  EXPECT_LT(diff_with([](json&) {}), 1e-4);  // as committed: matches transformers
  // The committed fixture: 6 layers, 5 sliding (window 16) then 1 global.
  EXPECT_GT(
      diff_with([](json& c) { c["rope_parameters"]["sliding_attention"]["rope_theta"] = 1e6; }),
      1e-2);
  EXPECT_GT(
      diff_with([](json& c) {
        c["rope_parameters"]["full_attention"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
      }),
      1e-2);
  EXPECT_GT(diff_with([](json& c) { c["sliding_window"] = nullptr; }), 1e-2);
  EXPECT_GT(diff_with([](json& c) {
              c["layer_types"] = json(std::vector<std::string>(6, "full_attention"));
            }),
            1e-2);
}

}  // namespace
}  // namespace ohm
