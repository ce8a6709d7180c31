// Every reference checkpoint written by transformers (scripts/make_fixtures.py) loads with the
// exact tensor names, shapes and dtypes the Python safetensors library reads back
// (tensors.json), and its config.json parses into the right typed config.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ohm/cli/cli.h"
#include "ohm/formats/config.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/arch.h"
#include "test_util.h"

namespace {
// An architecture-specific config value, as `ohm inspect` shows it.
std::string summary_value(const ohm::ModelConfig& mc, const std::string& key) {
  for (const auto& [k, v] : ohm::summarize(mc))
    if (k == key) return v;
  return "(absent)";
}
}  // namespace

using namespace ohm;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
std::vector<fs::path> checkpoint_dirs() {
  std::vector<fs::path> dirs;
  const fs::path root = ohm::test::fixtures_dir() / "models";
  if (!fs::exists(root)) return dirs;
  for (const auto& arch : fs::directory_iterator(root)) {
    if (!arch.is_directory()) continue;
    for (const auto& d : fs::directory_iterator(arch.path()))
      if (fs::exists(d.path() / "tensors.json")) dirs.push_back(d.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}
}  // namespace

TEST(Fixtures, EveryCheckpointMatchesWhatTransformersWrote) {
  const auto dirs = checkpoint_dirs();
  ASSERT_GE(dirs.size(), 18u) << "expected 9 architectures x {f32, bf16}";
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.string());
    const json ref = json::parse(ohm::test::read_file((dir / "tensors.json").string()));
    const json& list = ref.is_array() ? ref : ref.at("tensors");
    const auto ck = safetensors::Checkpoint::open(dir.string());
    ASSERT_EQ(ck.tensors().size(), list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& t = ck.tensors()[i].info;
      EXPECT_EQ(t.name, list[i]["name"].get<std::string>());
      EXPECT_EQ(safetensors_name(t.dtype), list[i]["dtype"].get<std::string>()) << t.name;
      EXPECT_EQ(t.shape, list[i]["shape"].get<Shape>()) << t.name;
    }
    if (ref.is_object() && ref.contains("metadata") && ref["metadata"].is_object()) {
      for (auto it = ref["metadata"].begin(); it != ref["metadata"].end(); ++it)
        EXPECT_EQ(ck.metadata().at(it.key()), it->get<std::string>());
    }

    const ModelConfig mc = load_model_config((dir / "config.json").string());
    const DecoderConfig& c = common(mc);
    // 2 layers, unless the fixture's spec asks for more (Gemma 3's 5:1 pattern needs 6).
    int64_t layers = 2;
    if (const auto spec = dir.parent_path() / "fixture.json"; fs::exists(spec))
      layers = json::parse(ohm::test::read_file(spec.string()))
                   .value("config", json::object())
                   .value("num_hidden_layers", int64_t{2});
    EXPECT_EQ(c.num_hidden_layers, layers);
    EXPECT_EQ(c.hidden_size, 64);
    EXPECT_EQ(c.vocab_size, 512);
    EXPECT_EQ(c.torch_dtype, dir.filename() == "bf16" ? "bfloat16" : "float32");
    if (fs::exists(dir / "generation_config.json")) {
      EXPECT_NO_THROW(load_generation_config((dir / "generation_config.json").string()));
    }
  }
}

TEST(Fixtures, ArchitectureSpecificConfigs) {
  const fs::path root = ohm::test::fixtures_dir() / "models";
  auto load = [&](const std::string& name) {
    return load_model_config((root / name / "f32" / "config.json").string());
  };
  OHM_REQUIRE_FIXTURE(fs::exists(root / "gpt2"), root / "gpt2");
  EXPECT_EQ(common(load("mistral")).sliding_window, 16);
  EXPECT_EQ(summary_value(load("mixtral"), "num_local_experts"), "4");
  const auto fmq = load("falcon_mq");
  EXPECT_EQ(summary_value(fmq, "new_decoder_architecture"), "false");
  EXPECT_EQ(common(fmq).num_key_value_heads, 1);
  const auto fnda = load("falcon_nda");
  EXPECT_EQ(summary_value(fnda, "new_decoder_architecture"), "true");
  EXPECT_EQ(common(fnda).num_key_value_heads, 2);
  for (const char* t : {"gpt2", "gemma", "phi3", "qwen2", "llama"})
    EXPECT_EQ(common(load(t)).model_type, t);
}

// The same, through `ohm inspect --json` (what a user sees).
TEST(Fixtures, InspectReportsExactTensorList) {
  const auto dirs = checkpoint_dirs();
  ASSERT_FALSE(dirs.empty());
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir.string());
    const json ref = json::parse(ohm::test::read_file((dir / "tensors.json").string()));
    const json& list = ref.is_array() ? ref : ref.at("tensors");
    std::ostringstream out;
    ohm::cli::inspect({.model = dir.string(), .json = true}, out);
    const json rep = json::parse(out.str());
    ASSERT_EQ(rep["tensors"].size(), list.size());
    uint64_t params = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      EXPECT_EQ(rep["tensors"][i]["name"], list[i]["name"]);
      EXPECT_EQ(rep["tensors"][i]["shape"], list[i]["shape"]);
      const std::string dt = list[i]["dtype"].get<std::string>();
      EXPECT_EQ(rep["tensors"][i]["dtype"], dt == "F32" ? "f32" : dt == "BF16" ? "bf16" : dt);
      uint64_t n = 1;
      for (const auto& d : list[i]["shape"]) n *= d.get<uint64_t>();
      params += n;
    }
    EXPECT_EQ(rep["parameters"], params);
    EXPECT_EQ(rep["format"], "safetensors");
    EXPECT_TRUE(rep.contains("config"));
    EXPECT_TRUE(rep.contains("architecture"));
  }
}
