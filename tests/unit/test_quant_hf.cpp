// GPTQ and AWQ checkpoints in Hugging Face's layout (tests/fixtures/quant_hf/<name>/, made by
// scripts/make_gptq_fixtures.py and loaded by transformers + GPTQModel there): logits against the
// reference, greedy continuations, the block type each case is repacked to, and bad input
// (config keys and tensor shapes named in the error).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/json_reader.h"
#include "ohm/formats/safetensors.h"
#include "ohm/generation/generate.h"
#include "ohm/models/arch.h"
#include "ohm/models/causal_lm.h"
#include "ohm/nn/quantized_source.h"
#include "test_util.h"

namespace ohm {
namespace {

namespace fs = std::filesystem;

fs::path quant_dir() {
  return test::fixtures_dir() / "quant_hf";
}

std::vector<std::string> all_fixtures() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(quant_dir()))
    if (fs::exists(e.path() / "reference.safetensors")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class QuantHF : public ::testing::TestWithParam<std::string> {
 protected:
  std::string dir() const { return (quant_dir() / GetParam()).string(); }
};

// max |ours - reference| / (reference's logit range), over positions and vocabulary.
// `key`: the reference logits tensor (prompt.logits: the exact dequantized weights in f32).
double logits_diff(CausalLM& model, const std::string& dir,
                   const std::string& key = "prompt.logits") {
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  const Tensor ids = ref.tensor("prompt.input_ids");
  const Tensor want = ref.tensor(key);
  auto cache = model.make_cache(1);
  const Tensor got = model.forward(ids, Tensor(), Tensor(), cache);
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() != want.shape()) return 1e30;
  const float* r = want.data<float>();
  const float* o = got.data<float>();
  float lo = 1e30f, hi = -1e30f;
  double max_abs = 0;
  for (uint64_t i = 0; i < want.numel(); ++i) {
    lo = std::min(lo, r[i]);
    hi = std::max(hi, r[i]);
    max_abs = std::max<double>(max_abs, std::fabs(o[i] - r[i]));
  }
  return max_abs / (hi - lo);
}

// Greedy tokens equal to the reference's (all of them).
void expect_greedy(CausalLM& model, const std::string& dir) {
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  const Tensor in = ref.tensor("greedy.input_ids");
  const Tensor want = ref.tensor("greedy.output_ids");
  const std::vector<TokenId> prompt(in.data<int64_t>(), in.data<int64_t>() + in.numel());
  const int64_t n_new = static_cast<int64_t>(want.numel() - in.numel());
  const auto got = generation::greedy_generate(model, prompt, n_new);
  ASSERT_EQ(got.size(), want.numel());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want.data<int64_t>()[i]) << i;
}

// The repacking is exact: with the integer blocks dequantized to f32 (LoadOptions::dtype), the
// logits are the reference's up to f32 rounding, and the greedy tokens are the same.
TEST_P(QuantHF, ExactThroughF32Weights) {
  auto model = load_causal_lm(dir(), {.dtype = DType::F32, .threads = 2});
  const double rel = logits_diff(*model, dir());
  std::printf("[measure] %s f32-weights max|diff|/range %.3g\n", GetParam().c_str(), rel);
  EXPECT_LE(rel, 1e-5);
  expect_greedy(*model, dir());
}

// As loaded (integer blocks). Q5_0 / F32 (GPTQ asym, AWQ) run f32-activation kernels; Q4_0 /
// Q8_0 (GPTQ sym) run the SIMD kernels, whose int8 activation rounding (0.7-1% of the logit
// range on these tiny random models) Matrix::fine_acts carries through a second product: all
// meet 1e-3 and the greedy tokens.
TEST_P(QuantHF, LogitsMatchReference) {
  auto model = load_causal_lm(dir(), {.threads = 2});
  const double rel = logits_diff(*model, dir());
  std::printf("[measure] %s max|diff|/range %.3g\n", GetParam().c_str(), rel);
  EXPECT_LE(rel, 1e-3);
  expect_greedy(*model, dir());
  // The fixtures made by GPTQModel itself (scripts/make_awq_fixtures.py) also keep transformers'
  // logits as it loads them (its CPU AWQ module rounds each weight to f16): 1e-3 of those too.
  const auto ref = safetensors::SafetensorsFile::open(dir() + "/reference.safetensors");
  if (ref.find("transformers_as_loaded.logits")) {
    const double rel2 = logits_diff(*model, dir(), "transformers_as_loaded.logits");
    std::printf("[measure] %s max|diff|/range against transformers as loaded %.3g\n",
                GetParam().c_str(), rel2);
    EXPECT_LE(rel2, 1e-3);
  }
}

// The AVX2 table (CPUs without AVX-512): every fixture within 1e-3 and greedy-identical there
// too. Its 4-bit asym GPTQ / AWQ repack is Q8_0 (int8 q - zero) on the SIMD fine-activation
// kernel, where it was Q5_0 on the scalar reference kernel.
TEST_P(QuantHF, LogitsMatchReferenceOnAvx2Table) {
  const kernels::KernelTable* avx2 = kernels::table_for(kernels::Isa::Avx2);
  if (avx2 == nullptr) GTEST_SKIP() << "this CPU has no AVX2 table";
  const kernels::KernelTable* prev = kernels::set_active(avx2);
  EXPECT_EQ(nn::asym4_block_type(*avx2), DType::Q8_0);
  {
    auto model = load_causal_lm(dir(), {.threads = 2});
    const double rel = logits_diff(*model, dir());
    std::printf("[measure] %s on avx2: max|diff|/range %.3g\n", GetParam().c_str(), rel);
    EXPECT_LE(rel, 1e-3);
    expect_greedy(*model, dir());
  }
  kernels::set_active(prev);
}

// The block type each case is repacked to (ohm/nn/quantized_source.h), and act-order's column
// permutation.
TEST_P(QuantHF, RepacksToIntegerBlocks) {
  const ModelConfig cfg = load_model_config(dir() + "/config.json");
  const QuantizationConfig& q = *common(cfg).quantization;
  nn::CheckpointSource base(safetensors::Checkpoint::open(dir()), dir());
  nn::QuantizedSource src(base, q);
  const std::string name = "model.layers.0.mlp.down_proj.weight";
  const auto w = src.find(name);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->shape(), (Shape{common(cfg).hidden_size, common(cfg).intermediate_size}));
  const bool sym = q.quant_method == "gptq" && q.sym;
  DType want = DType::F32;
  if (q.bits == 4) want = sym ? DType::Q4_0 : nn::asym4_block_type(kernels::active());
  if (q.bits == 8 && sym) want = DType::Q8_0;
  EXPECT_EQ(w->dtype(), want) << name;
  EXPECT_EQ(src.find_input_permutation(name).has_value(), q.desc_act);
  // The unused-tensor list names the module's weight, not its parts.
  const auto names = src.names();
  EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "model.layers.0.mlp.down_proj.qweight"),
            names.end());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantHF, ::testing::ValuesIn(all_fixtures()),
                         [](const auto& info) { return info.param; });

// ---- bad input --------------------------------------------------------------------------------

QuantizationConfig parse_qc(const nlohmann::json& j) {
  return parse_quantization_config(JsonReader(j, "config.json", "quantization_config"));
}

template <class E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return "";
}

TEST(QuantConfig, ParsesGptqAndAwq) {
  const auto g = parse_qc({{"quant_method", "gptq"},
                           {"bits", 8},
                           {"group_size", -1},
                           {"desc_act", true},
                           {"sym", false},
                           {"checkpoint_format", "gptq_v2"}});
  EXPECT_EQ(g.quant_method, "gptq");
  EXPECT_EQ(g.bits, 8);
  EXPECT_EQ(g.group_size, -1);
  EXPECT_TRUE(g.desc_act);
  EXPECT_FALSE(g.sym);
  EXPECT_EQ(g.checkpoint_format, "gptq_v2");
  // TheBloke-era files: no quant_method, no checkpoint_format -> GPTQ v1.
  const auto old = parse_qc({{"bits", 4}, {"group_size", 128}});
  EXPECT_EQ(old.quant_method, "gptq");
  EXPECT_EQ(old.checkpoint_format, "gptq");
  const auto a =
      parse_qc({{"quant_method", "awq"}, {"bits", 4}, {"group_size", 64}, {"version", "GEMM"}});
  EXPECT_EQ(a.version, "gemm");
  EXPECT_EQ(a.group_size, 64);
  // AutoAWQ's own key names.
  const auto a2 = parse_qc({{"quant_method", "awq"}, {"w_bit", 4}, {"q_group_size", 32}});
  EXPECT_EQ(a2.group_size, 32);
}

// `ohm inspect` prints summarize(config): the quantization config is one line of it.
TEST(QuantConfig, InspectShowsIt) {
  const ModelConfig cfg = load_model_config(
      (quant_dir() / "llama_gptq_4bit_g32_asym_descact" / "config.json").string());
  std::string line;
  for (const auto& [k, v] : summarize(cfg))
    if (k == "quantization_config") line = v;
  EXPECT_EQ(line, "gptq 4-bit, group_size 32, asym, desc_act, checkpoint_format gptq");
  const ModelConfig awq =
      load_model_config((quant_dir() / "llama_awq_gemm_g128" / "config.json").string());
  line.clear();
  for (const auto& [k, v] : summarize(awq))
    if (k == "quantization_config") line = v;
  EXPECT_EQ(line, "awq 4-bit, group_size 128, zero_point, version gemm");
}

TEST(QuantConfig, ErrorsNameTheKey) {
  EXPECT_NE(error_of<UnsupportedError>([] {
              parse_qc({{"quant_method", "bitsandbytes"}});
            }).find("quantization_config.quant_method"),
            std::string::npos);
  EXPECT_NE(error_of<UnsupportedError>([] {
              parse_qc({{"quant_method", "gptq"}, {"bits", 3}});
            }).find("quantization_config.bits"),
            std::string::npos);
  EXPECT_NE(error_of<UnsupportedError>([] {
              parse_qc({{"quant_method", "awq"}, {"bits", 8}});
            }).find("quantization_config.bits"),
            std::string::npos);
  for (int g : {0, 48, -2, 16})
    EXPECT_NE(error_of<ConfigError>([g] {
                parse_qc({{"quant_method", "gptq"}, {"bits", 4}, {"group_size", g}});
              }).find("quantization_config.group_size"),
              std::string::npos)
        << g;
  EXPECT_NE(error_of<UnsupportedError>([] {
              parse_qc({{"quant_method", "gptq"}, {"checkpoint_format", "marlin"}});
            }).find("quantization_config.checkpoint_format"),
            std::string::npos);
  EXPECT_NE(error_of<UnsupportedError>([] {
              parse_qc({{"quant_method", "awq"}, {"version", "gemv"}});
            }).find("quantization_config.version"),
            std::string::npos);
}

// A copy of a fixture whose config.json's quantization_config is changed by `edit`.
std::string copy_fixture(const test::TempDir& tmp, const std::string& name,
                         const std::function<void(nlohmann::json&)>& edit) {
  const fs::path src = quant_dir() / name;
  const std::string d = tmp.file(name);
  fs::create_directories(d);
  fs::copy_file(src / "model.safetensors", fs::path(d) / "model.safetensors");
  nlohmann::json cfg = read_json_file((src / "config.json").string());
  edit(cfg["quantization_config"]);
  test::write_file(d + "/config.json", cfg.dump());
  return d;
}

std::string load_error(const std::string& dir) {
  try {
    load_causal_lm(dir, {.threads = 1});
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded " << dir;
  return "";
}

// AutoGPTQ's quantize_config.json (no quant_method) when config.json has no
// quantization_config: the same model.
TEST(QuantHFConfig, QuantizeConfigJson) {
  test::TempDir tmp;
  const std::string d = copy_fixture(tmp, "qwen2_gptq_4bit_g128_asym", [](nlohmann::json&) {});
  nlohmann::json cfg = read_json_file(d + "/config.json");
  nlohmann::json q = cfg["quantization_config"];
  q.erase("quant_method");
  q.erase("checkpoint_format");
  cfg.erase("quantization_config");
  test::write_file(d + "/config.json", cfg.dump());
  test::write_file(d + "/quantize_config.json", q.dump());
  fs::copy_file(quant_dir() / "qwen2_gptq_4bit_g128_asym" / "reference.safetensors",
                fs::path(d) / "reference.safetensors");
  auto model = load_causal_lm(d, {.threads = 1});
  EXPECT_LE(logits_diff(*model, d), 1e-3);
}

TEST(QuantHFBadInput, ShapesDisagreeingWithConfigNameTheTensor) {
  test::TempDir tmp;
  // 4-bit tensors read as 8-bit: qweight's rows give the wrong input size.
  const std::string e1 =
      load_error(copy_fixture(tmp, "llama_gptq_4bit_g128_sym", [](auto& q) { q["bits"] = 8; }));
  EXPECT_NE(e1.find("model.layers.0.self_attn.q_proj.q"), std::string::npos) << e1;  // qzeros
  EXPECT_NE(e1.find("quantization_config"), std::string::npos) << e1;
  // group_size 64 on g128 tensors: scales has half the groups it should.
  const std::string e2 = load_error(
      copy_fixture(tmp, "llama_gptq_8bit_g32_sym", [](auto& q) { q["group_size"] = 64; }));
  EXPECT_NE(e2.find(".scales"), std::string::npos) << e2;
  EXPECT_NE(e2.find("quantization_config"), std::string::npos) << e2;
}

TEST(QuantHFBadInput, UnknownMethodNamesTheKey) {
  test::TempDir tmp;
  const std::string e = load_error(
      copy_fixture(tmp, "llama_awq_gemm_g128", [](auto& q) { q["quant_method"] = "fp8"; }));
  EXPECT_NE(e.find("quantization_config.quant_method"), std::string::npos) << e;
}

TEST(QuantHFBadInput, GIdxOutOfRangeNamesTheTensor) {
  test::TempDir tmp;
  const std::string d =
      copy_fixture(tmp, "llama_gptq_4bit_g32_asym_descact", [](nlohmann::json&) {});
  const std::string file = d + "/model.safetensors";
  uint64_t at = 0;
  {
    const auto f = safetensors::SafetensorsFile::open(file);
    const std::string hdr_len_bytes = test::read_file(file).substr(0, 8);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(hdr_len_bytes[i])) << (8 * i);
    at = 8 + n + f.find("model.layers.0.self_attn.o_proj.g_idx")->begin + 4 * 5;
  }
  std::string bytes = test::read_file(file);
  const int32_t bad = 1000;
  std::memcpy(bytes.data() + at, &bad, 4);
  test::write_file(file, bytes);
  const std::string e = load_error(d);
  EXPECT_NE(e.find("model.layers.0.self_attn.o_proj.g_idx"), std::string::npos) << e;
  EXPECT_NE(e.find("1000"), std::string::npos) << e;
}

TEST(QuantHFBadInput, MissingScalesIsNamed) {
  nlohmann::json cfg =
      read_json_file((quant_dir() / "llama_gptq_4bit_g128_sym" / "config.json").string());
  const ModelConfig mc = parse_model_config(cfg, "config.json");
  // A source whose module has a qweight and nothing else.
  struct OnlyQweight : nn::WeightSource {
    Tensor q = Tensor::empty(DType::I32, {16, 128});
    std::optional<Tensor> find(const std::string& n) const override {
      if (n == "m.qweight") return q;
      return std::nullopt;
    }
    std::vector<std::string> names() const override { return {"m.qweight"}; }
    std::string describe() const override { return "test"; }
  } base;
  nn::QuantizedSource src(base, *common(mc).quantization);
  const std::string e = error_of<NotFoundError>([&] { (void)src.find("m.weight"); });
  EXPECT_NE(e.find("m.scales"), std::string::npos) << e;
}

}  // namespace
}  // namespace ohm
