#include <gtest/gtest.h>

#include <unistd.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ohm/cli/cli.h"
#include "ohm/kernels/kernels.h"
#include "test_util.h"

using json = nlohmann::json;
namespace fs = std::filesystem;

static json inspect_json(const std::string& model) {
  std::ostringstream out;
  ohm::cli::inspect({.model = model, .json = true}, out);
  return json::parse(out.str());
}

static int run_cli(std::vector<std::string> args, std::string* out = nullptr,
                   std::string* err = nullptr) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int rc = ohm::cli::run(static_cast<int>(argv.size()), argv.data());
  std::string o = testing::internal::GetCapturedStdout();
  std::string e = testing::internal::GetCapturedStderr();
  if (out) *out = o;
  if (err) *err = e;
  return rc;
}

TEST(CliInspect, ShardedCheckpointJson) {
  const auto j = inspect_json((ohm::test::fixtures_dir() / "safetensors" / "sharded").string());
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["files"].size(), 4u);
  EXPECT_EQ(j["tensors"].size(), 7u);
  EXPECT_EQ(j["parameters"], 6 * 16 * 16 + 32 * 16);
  EXPECT_EQ(j["dtypes"]["bf16"]["tensors"], 6);
  EXPECT_EQ(j["dtypes"]["f32"]["parameters"], 32 * 16);
}

TEST(CliInspect, FixtureCheckpointText) {
  const auto dir = ohm::test::fixtures_dir() / "models" / "llama" / "bf16";
  OHM_REQUIRE_FIXTURE(fs::exists(dir / "config.json"), dir);
  std::string out;
  ASSERT_EQ(run_cli({"ohm", "inspect", dir.string()}, &out), 0);
  EXPECT_NE(out.find("architecture: LlamaForCausalLM"), std::string::npos) << out;
  EXPECT_NE(out.find("model.embed_tokens.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("bf16"), std::string::npos);
  const auto j = inspect_json(dir.string());
  EXPECT_EQ(j["model_type"], "llama");
  EXPECT_EQ(j["config"]["num_key_value_heads"], "2");
}

TEST(CliInspect, GgufVocabWithAllMetadata) {
  const auto path = ohm::test::shared_data_dir() / "gguf-vocab" / "ggml-vocab-llama-spm.gguf";
  OHM_REQUIRE_SHARED(fs::exists(path), path);
  const auto j = inspect_json(path.string());
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["gguf"]["version"], 3);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["gguf"]["metadata"]["tokenizer.ggml.model"], "llama");
  EXPECT_EQ(j["gguf"]["metadata_count"], j["gguf"]["metadata"].size());
  EXPECT_EQ(j["tensors"].size(), 0u);
}

TEST(CliInspect, ErrorsAreReportedNotThrown) {
  std::string err;
  EXPECT_EQ(run_cli({"ohm", "inspect", "/nonexistent/model.gguf"}, nullptr, &err), 1);
  EXPECT_NE(err.find("ohm: "), std::string::npos);
  EXPECT_NE(err.find("/nonexistent/model.gguf"), std::string::npos) << err;
  ohm::test::TempDir d;
  ohm::test::write_file(d.file("bad.safetensors"), std::string("\x10\0\0\0\0\0\0\0{", 9));
  EXPECT_EQ(run_cli({"ohm", "inspect", d.file("bad.safetensors")}, nullptr, &err), 1);
  EXPECT_NE(err.find("bad.safetensors"), std::string::npos) << err;
  EXPECT_EQ(run_cli({"ohm", "frobnicate"}, nullptr, &err), 2);  // usage error
  std::string out;
  EXPECT_EQ(run_cli({"ohm", "--help"}, &out), 0);
  EXPECT_NE(out.find("inspect"), std::string::npos);
}

TEST(CliVersion, PrintsTheKernelTableAndCpuFeatures) {
  std::string out;
  EXPECT_EQ(run_cli({"ohm", "--version"}, &out), 0);
  EXPECT_EQ(out.rfind("ohm 0.1.0\n", 0), 0u) << out;
  EXPECT_NE(out.find(std::string("kernels: ") + ohm::kernels::isa_name(ohm::kernels::active().isa)),
            std::string::npos)
      << out;
#if defined(__x86_64__)
  EXPECT_NE(out.find("cpu: "), std::string::npos) << out;
  for (const char* f : {"avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"})
    EXPECT_NE(out.find(std::string(f)), std::string::npos) << f << "\n" << out;
#endif
  // the AMX line: in use, emulated, available but off, or why not
  std::string amx_line = ohm::kernels::amx_status();
  amx_line.insert(amx_line.begin(), '\n');
  amx_line.push_back('\n');
  EXPECT_NE(out.find(amx_line), std::string::npos) << out;
}

// The demo model (bf16) and its Q8_0 / Q4_K_M GGUFs through the AMX kernels on the emulated tile
// unit (what OHM_AMX=emulate selects): the same greedy text as the AVX-512 table. Prefill runs the
// batched matmuls on tiles (AMX-BF16 for bf16 weights, AMX-INT8 for the block types).
TEST(CliAmx, EmulatedTilesGiveTheSameGreedyText) {
  const ohm::kernels::KernelTable* emu = ohm::kernels::amx_table(true);
  if (emu == nullptr) GTEST_SKIP() << "no AVX-512 table on this CPU (the AMX tables extend it)";
  const std::string demo = (ohm::test::source_dir() / "models" / "ohm-demo").string();
  const auto dir = fs::temp_directory_path() / ("ohm_amx_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<std::string> models = {demo};
  for (const char* type : {"q8_0", "q4_k_m"}) {
    const std::string out = (dir / (std::string(type) + ".gguf")).string();
    ASSERT_EQ(run_cli({"ohm", "quantize", demo, out, "--type", type}), 0) << type;
    models.push_back(out);
  }
  const ohm::kernels::KernelTable* avx512 = ohm::kernels::table_for(ohm::kernels::Isa::Avx512);
  for (const std::string& m : models) {
    std::string want, got;
    const std::vector<std::string> args = {"ohm",
                                           "generate",
                                           m,
                                           "--greedy",
                                           "--prompt",
                                           "ROMEO: What light through yonder window",
                                           "--max-new-tokens",
                                           "24"};
    const auto* prev = ohm::kernels::set_active(avx512);
    ASSERT_EQ(run_cli(args, &want), 0) << m;
    ohm::kernels::set_active(emu);
    ASSERT_EQ(run_cli(args, &got), 0) << m;
    ohm::kernels::set_active(prev);
    EXPECT_FALSE(want.empty()) << m;
    EXPECT_EQ(got, want) << m;
  }
  fs::remove_all(dir);
}
