// GGUF model loading against the transformers fixtures: tests/fixtures/models/<arch>/gguf/
// holds the f32 fixture written by scripts/make_gguf_model_fixtures.py (gguf-py, the way
// llama.cpp's convert_hf_to_gguf.py writes it: Q/K rows permuted for llama/mistral, GPT-2's
// Conv1D weights transposed) as F16 and Q8_0; the reference logits are ../f32's.
//
// Acceptance: F16 gives the same 32 greedy tokens as the safetensors f32 path and as
// transformers, logits within 1e-2 of the reference range. Q8_0: "within the quantization
// error" is checked exactly: gguf/reference-q8_0.safetensors holds transformers' logits and
// greedy tokens with the file's weights (gguf.quants.dequantize, layout undone); ohm matches
// them to 1e-4 of the logit range and token for token. The distance of the Q8_0 logits to the
// f32 reference (the quantization error itself) is printed as [measure] lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "invariant_kernels.h"
#include "ohm/core/error.h"
#include "ohm/formats/gguf.h"
#include "ohm/formats/gguf_writer.h"
#include "ohm/formats/safetensors.h"
#include "ohm/generation/generate.h"
#include "ohm/hub/hash.h"
#include "ohm/models/causal_lm.h"
#include "ohm/models/gguf_loader.h"
#include "ohm/quant/quantize.h"
#include "test_util.h"

namespace {
// An architecture-specific config value, as `ohm inspect` shows it.
std::string summary_value(const ohm::ModelConfig& mc, const std::string& key) {
  for (const auto& [k, v] : ohm::summarize(mc))
    if (k == key) return v;
  return "(absent)";
}
}  // namespace

namespace ohm {
namespace {

// Loader exactness is measured with the scalar reference kernels (dequantize the row, f32 dot),
// which compute what transformers computes on the dequantized weights. Set before the first
// kernel call; an explicit OHM_ISA wins. The same file builds test_gguf_models_simd
// (OHM_GGUF_SIMD): the host's SIMD table end to end, where the block-quantized matmuls quantize
// activations to int8 (llama.cpp-style), so its tolerances are those of that rounding.
#ifndef OHM_GGUF_SIMD
const bool kScalarKernels = [] { return setenv("OHM_ISA", "scalar", /*overwrite=*/0) == 0; }();
constexpr bool kSimd = false;
#else
constexpr bool kSimd = true;
#endif

using Param = std::tuple<std::string, std::string>;  // arch, "f16" | "q8_0"

std::string f32_dir(const std::string& arch) {
  return (test::fixtures_dir() / "models" / arch / "f32").string();
}
std::string mixtral_f16_path();
std::string gguf_path(const std::string& arch, const std::string& type) {
  if (arch == "mixtral" && type == "f16") return mixtral_f16_path();
  return (test::fixtures_dir() / "models" / arch / "gguf" / ("model-" + type + ".gguf")).string();
}

// The Mixtral F16 file (577 KB, over the committed-fixture cap) written at test time: the
// committed Q8_0 file's metadata (file_type F16) and tensor order, each tensor converted from the
// f32 safetensors the way convert_hf_to_gguf.py's LlamaModel does (q/k rows permuted, experts
// stacked [E, rows, cols]) and stored F16 where the Q8_0 file has Q8_0. This restates the
// converter independently of the loader; scripts/make_gguf_model_fixtures.py writes the same
// bytes with gguf-py.
Tensor permute_rows_like_converter(const Tensor& w, int64_t n_head) {
  const int64_t rows = w.dim(0), hd = rows / n_head, half = hd / 2;
  const int64_t cols = w.numel() / static_cast<uint64_t>(rows);
  Tensor out = Tensor::empty(DType::F32, w.shape());
  const float* s = w.data<float>();
  float* d = out.mutable_data<float>();
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(d + (h * hd + 2 * j + i) * cols, s + (h * hd + i * half + j) * cols,
                    static_cast<size_t>(cols) * sizeof(float));
  return out;
}

std::string mixtral_f16_path() {
  static test::TempDir dir;
  static const std::string path = [] {
    const std::string q8 =
        (test::fixtures_dir() / "models" / "mixtral" / "gguf" / "model-q8_0.gguf").string();
    const auto f = gguf::GGUFFile::open(q8);
    const auto st = safetensors::SafetensorsFile::open(f32_dir("mixtral") + "/model.safetensors");
    const int64_t nh = *f.get_int("llama.attention.head_count");
    const int64_t nkv = *f.get_int("llama.attention.head_count_kv");
    const int64_t E = *f.get_int("llama.expert_count");
    gguf::GGUFWriter w;
    for (const auto& [k, v] : f.metadata()) {
      switch (v.type()) {
        case gguf::ValueType::STRING:
          w.add_string(k, std::string(*v.as_string()));
          break;
        case gguf::ValueType::UINT32:
          w.add_uint32(k, k == "general.file_type" ? 1u /* MOSTLY_F16 */
                                                   : static_cast<uint32_t>(*v.as_uint()));
          break;
        case gguf::ValueType::INT32:
          w.add_int32(k, static_cast<int32_t>(*v.as_int()));
          break;
        case gguf::ValueType::FLOAT32:
          w.add_float32(k, static_cast<float>(*v.as_double()));
          break;
        default:
          throw std::runtime_error("unexpected metadata type for " + k);
      }
    }
    const std::map<std::string, std::string> per_layer = {
        {"attn_norm", "input_layernorm"},         {"ffn_norm", "post_attention_layernorm"},
        {"attn_q", "self_attn.q_proj"},           {"attn_k", "self_attn.k_proj"},
        {"attn_v", "self_attn.v_proj"},           {"attn_output", "self_attn.o_proj"},
        {"ffn_gate_inp", "block_sparse_moe.gate"}};
    const std::map<std::string, std::string> stacked = {
        {"ffn_gate_exps", "w1"}, {"ffn_down_exps", "w2"}, {"ffn_up_exps", "w3"}};
    for (const auto& t : f.tensors()) {
      Tensor data;
      if (t.name == "token_embd.weight")
        data = st.tensor("model.embed_tokens.weight").to(DType::F32);
      else if (t.name == "output.weight")
        data = st.tensor("lm_head.weight").to(DType::F32);
      else if (t.name == "output_norm.weight")
        data = st.tensor("model.norm.weight").to(DType::F32);
      else {
        // blk.L.<what>.weight
        const size_t a = t.name.find('.', 4), b = t.name.rfind('.');
        const std::string L = t.name.substr(4, a - 4), what = t.name.substr(a + 1, b - a - 1);
        const std::string hp = "model.layers." + L + ".";
        if (auto it = stacked.find(what); it != stacked.end()) {
          std::vector<Tensor> xs;
          for (int64_t e = 0; e < E; ++e)
            xs.push_back(st.tensor(hp + "block_sparse_moe.experts." + std::to_string(e) + "." +
                                   it->second + ".weight")
                             .to(DType::F32));
          const Shape es = xs[0].shape();
          data = Tensor::empty(DType::F32, {E, es[0], es[1]});
          for (int64_t e = 0; e < E; ++e)
            std::memcpy(data.mutable_data<float>() + e * xs[0].numel(), xs[e].data<float>(),
                        xs[e].nbytes());
        } else {
          data = st.tensor(hp + per_layer.at(what) + ".weight").to(DType::F32);
          if (what == "attn_q") data = permute_rows_like_converter(data, nh);
          if (what == "attn_k") data = permute_rows_like_converter(data, nkv);
        }
      }
      w.add_tensor(t.name, t.dtype == DType::F32 ? data : data.to(DType::F16));
    }
    const std::string out = dir.file("mixtral-f16.gguf");
    w.write(out);
    return out;
  }();
  return path;
}

// Scaled logits tolerance. F16 weights: rounding of 2-byte floats (the bf16 fixtures use 2e-2);
// Q8_0: 8-bit blocks with an f16 scale.
double tolerance(const std::string& type) {
  // SIMD Q8_0 also quantizes the activations to int8 per 32 values: on these 64-wide random
  // models that moves the logits by up to 0.07 of their range (measured; scalar: below 1e-4).
  if (kSimd && type == "q8_0") return 0.1;
  return type == "f16" ? 1e-2 : 1e-4;
}

double scaled_diff(const Tensor& ours, const Tensor& ref) {
  const float* o = ours.data<float>();
  const float* r = ref.data<float>();
  float lo = 1e30f, hi = -1e30f;
  double m = 0;
  for (uint64_t i = 0; i < ref.numel(); ++i) {
    lo = std::min(lo, r[i]);
    hi = std::max(hi, r[i]);
    m = std::max<double>(m, std::fabs(o[i] - r[i]));
  }
  return hi > lo ? m / (hi - lo) : m;
}

void report(const Param& p, const std::string& what, double v) {
  std::printf("[measure] gguf %s/%s %s %.3g\n", std::get<0>(p).c_str(), std::get<1>(p).c_str(),
              what.c_str(), v);
}

class GGUFModel : public ::testing::TestWithParam<Param> {
 protected:
  CausalLM& model() {
    static std::map<std::string, std::unique_ptr<CausalLM>> models;
    const std::string path = gguf_path(std::get<0>(GetParam()), std::get<1>(GetParam()));
    auto& m = models[path];
    if (!m) m = load_causal_lm(path, {.threads = 2});
    return *m;
  }
  bool q8() const { return std::get<1>(GetParam()) == "q8_0"; }
  // The f32 fixture's reference (inputs; logits of the f32 weights).
  const safetensors::SafetensorsFile& ref() {
    return open_ref(f32_dir(std::get<0>(GetParam())) + "/reference.safetensors");
  }
  // Logits/tokens to match: the f32 reference for F16 files, transformers-on-Q8_0 for Q8_0.
  const safetensors::SafetensorsFile& want() {
    if (!q8()) return ref();
    return open_ref((test::fixtures_dir() / "models" / std::get<0>(GetParam()) / "gguf" /
                     "reference-q8_0.safetensors")
                        .string());
  }
  static const safetensors::SafetensorsFile& open_ref(const std::string& d) {
    static std::map<std::string, safetensors::SafetensorsFile> refs;
    auto it = refs.find(d);
    if (it == refs.end()) it = refs.emplace(d, safetensors::SafetensorsFile::open(d)).first;
    return it->second;
  }
};

TEST_P(GGUFModel, ConfigMatchesConfigJson) {
  const DecoderConfig& g = model().decoder_config();
  const ModelConfig hf = load_model_config(f32_dir(std::get<0>(GetParam())) + "/config.json");
  const DecoderConfig& h = common(hf);
  EXPECT_EQ(g.model_type, h.model_type);
  EXPECT_EQ(g.vocab_size, h.vocab_size);
  EXPECT_EQ(g.hidden_size, h.hidden_size);
  EXPECT_EQ(g.intermediate_size, h.intermediate_size);
  EXPECT_EQ(g.num_hidden_layers, h.num_hidden_layers);
  EXPECT_EQ(g.num_attention_heads, h.num_attention_heads);
  EXPECT_EQ(g.num_key_value_heads, h.num_key_value_heads);
  EXPECT_EQ(g.head_dim, h.head_dim);
  EXPECT_EQ(g.sliding_window, h.sliding_window);
  EXPECT_NEAR(g.norm_eps, h.norm_eps, 1e-12);
  EXPECT_DOUBLE_EQ(g.rope_theta, h.rope_theta);
}

TEST_P(GGUFModel, WeightsStayInFileType) {
  // Nothing is dequantized at load: matrices keep the file's ggml type (zero-copy).
  const auto f = gguf::GGUFFile::open(gguf_path(std::get<0>(GetParam()), std::get<1>(GetParam())));
  const auto* t = f.find_tensor("blk.0.ffn_down.weight");
  if (!t) t = f.find_tensor("blk.0.ffn_down_exps.weight");  // mixtral
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, std::get<1>(GetParam()) == "f16" ? DType::F16 : DType::Q8_0);
}

TEST_P(GGUFModel, PromptLogits) {
  for (int len : {1, 7, 64}) {
    const std::string k = "prompt_len" + std::to_string(len);
    auto cache = model().make_cache(1);
    const Tensor logits =
        model().forward(ref().tensor(k + ".input_ids"), Tensor(), Tensor(), cache);
    ASSERT_EQ(logits.shape(), want().tensor(k + ".logits").shape());
    const double d = scaled_diff(logits, want().tensor(k + ".logits"));
    report(GetParam(), k + ".scaled_diff", d);
    EXPECT_LE(d, tolerance(std::get<1>(GetParam()))) << k;
    if (q8())
      report(GetParam(), k + ".scaled_diff_vs_f32",
             scaled_diff(logits, ref().tensor(k + ".logits")));
  }
}

TEST_P(GGUFModel, Greedy32) {
  // The load paths may group a forward's rows differently (Mixtral's experts: the GGUF file's
  // stacked expert tensors against per-expert safetensors), so agreement needs rows that do not
  // depend on their batch: the batch-invariant table (on AVX-512 hosts the AVX-512 table's
  // invariant variant).
  const test::InvariantKernels invariant;
  const Tensor in = ref().tensor("greedy.input_ids");
  const Tensor want = this->want().tensor("greedy.output_ids");
  const std::vector<TokenId> prompt(in.data<int64_t>(), in.data<int64_t>() + in.numel());
  const auto got = generation::greedy_generate(model(), prompt, 32);
  ASSERT_EQ(got.size(), want.numel());
  int same = 0;
  for (size_t i = prompt.size(); i < got.size(); ++i) same += got[i] == want.data<int64_t>()[i];
  report(GetParam(), "greedy_matches_of_32", same);
  if (std::get<1>(GetParam()) == "f16") {
    // Same tokens as the safetensors path with the same (f16) weights: the f32 checkpoint
    // converted to f16 at load. Against transformers' f32 reference all 32 tokens match except
    // for Mixtral, whose f16-rounded weights flip a near-tie expert routing at step 27
    // (reported above, not asserted).
    auto st = load_causal_lm(f32_dir(std::get<0>(GetParam())), {.dtype = DType::F16, .threads = 2});
    EXPECT_EQ(got, generation::greedy_generate(*st, prompt, 32));
    if (std::get<0>(GetParam()) != "mixtral") {
      EXPECT_EQ(same, 32);
    }
  } else if (!kSimd) {
    EXPECT_EQ(same, 32);  // = transformers with the Q8_0 weights
  } else {
    // SIMD: int8 activations flip the near-ties of these random models against transformers'
    // f32 activations (8-32 of 32 match, reported above). The loader is checked instead: the
    // f32 safetensors quantized to Q8_0 at load hold the same bytes as the gguf-py file and run
    // through the same kernels, up to the order in which attention sums the head dimensions
    // (the GGUF model keeps q/k in the file's interleaved RoPE order; see
    // QuantizeOnLoadFromGGUFAndSafetensors). So every token the GGUF model picks is the
    // safetensors model's argmax on the same prefix, up to a near-tie: teacher-forced on the GGUF
    // model's sequence, the picked token's logit is within 1e-2 of the row's range of the row's
    // maximum. (The int8 activations turn a last-bit difference into a one-step flip of a
    // rounded activation: Mixtral q8_0 on the AVX-512 invariant table, 2.7e-3; 0 for the other
    // models; a wrong weight byte moves logits by far more. Token-for-token equality of the two
    // greedy runs held on the AVX2 table by luck; there Mixtral took the same side of that tie.)
    auto st =
        load_causal_lm(f32_dir(std::get<0>(GetParam())), {.threads = 2, .quantize = DType::Q8_0});
    const int64_t T = static_cast<int64_t>(got.size());
    Tensor ids = Tensor::empty(DType::I64, {1, T});
    for (int64_t t = 0; t < T; ++t) ids.mutable_data<int64_t>()[t] = got[static_cast<size_t>(t)];
    auto cache = st->make_cache(1);
    const Tensor logits = st->forward(ids, Tensor(), Tensor(), cache);
    ASSERT_EQ(logits.ndim(), 3);
    ASSERT_EQ(logits.shape()[1], T);
    const int64_t V = logits.shape()[2];
    double worst = 0;
    for (int64_t t = static_cast<int64_t>(prompt.size()); t < T; ++t) {
      const float* row = logits.data<float>() + (t - 1) * V;
      const auto [lo, hi] = std::minmax_element(row, row + V);
      const double gap = (*hi - row[got[static_cast<size_t>(t)]]) / std::max(1e-30f, *hi - *lo);
      worst = std::max(worst, gap);
      EXPECT_LE(gap, 1e-2) << "step " << t - static_cast<int64_t>(prompt.size()) << ": token "
                           << got[static_cast<size_t>(t)] << " is not the safetensors argmax";
    }
    report(GetParam(), "greedy_teacher_forced_worst_gap", worst);
  }
}

// Every fixture with GGUF files (picked up without editing this file).
std::vector<Param> all_fixtures() {
  std::vector<Param> out;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(test::fixtures_dir() / "models"))
    if (std::filesystem::exists(e.path() / "gguf" / "model-q8_0.gguf"))
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& a : names)
    for (const char* t : {"f16", "q8_0"}) out.emplace_back(a, t);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GGUFModel, ::testing::ValuesIn(all_fixtures()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param);
                         });

// ---- K-quants end to end ---------------------------------------------------------------------
//
// tests/fixtures/models/llama_kquant/gguf (scripts/make_kquant_fixtures.py model): a random
// 1-layer llama 256 wide (K-quant rows are whole 256-blocks) whose matrices were quantized by
// ggml's Q4_K / Q6_K reference quantizers (restated in numpy, bit-exact with ohm's on
// tests/fixtures/quant/kquant) in llama.cpp's Q4_K_M pattern, and transformers' logits and 32
// greedy tokens on the file's weights (gguf.quants.dequantize, q/k permutation undone). Scalar
// kernels: dequantized rows and f32 dots, the reference's arithmetic up to summation order. SIMD
// kernels (test_gguf_models_simd): int8 activations per 256 values against the Q4_K/Q6_K blocks.
std::string kquant_path() {
  return (test::fixtures_dir() / "models/llama_kquant/gguf/model-q4_k_m.gguf").string();
}
const safetensors::SafetensorsFile& kquant_ref() {
  static const auto f = safetensors::SafetensorsFile::open(
      (test::fixtures_dir() / "models/llama_kquant/gguf/reference-q4_k_m.safetensors").string());
  return f;
}
CausalLM& kquant_model() {
  static const auto m = load_causal_lm(kquant_path(), {.threads = 2});
  return *m;
}
// Logits tolerance (of the reference logit range). Scalar: f32 summation order only (measured
// below 2e-7). SIMD: rounding the activations to int8 (step delta = amax/127 per 256 values)
// moves each logit by a random walk of the per-value errors: for the output matmul alone
// ||w_row|| * delta / sqrt(12), about 1.2e-3 of the range here, and the largest of 256 x 72
// logits sits near 5 of those; measured 6.3e-3 (AVX2), all layers included. The greedy path's
// smallest top-1/top-2 gap (stored with the reference; 0.118 of the range) must exceed twice the
// tolerance, so that the token check is decisive.
constexpr double kKQuantTol = kSimd ? 1e-2 : 1e-5;

TEST(GGUFKQuantModel, WeightsStayQ4KAndQ6K) {
  const auto f = gguf::GGUFFile::open(kquant_path());
  std::map<std::string, DType> want = {{"token_embd.weight", DType::Q4_K},
                                       {"blk.0.attn_q.weight", DType::Q4_K},
                                       {"blk.0.attn_k.weight", DType::Q4_K},
                                       {"blk.0.attn_v.weight", DType::Q6_K},
                                       {"blk.0.attn_output.weight", DType::Q4_K},
                                       {"blk.0.ffn_gate.weight", DType::Q4_K},
                                       {"blk.0.ffn_up.weight", DType::Q4_K},
                                       {"blk.0.ffn_down.weight", DType::Q6_K},
                                       {"output.weight", DType::Q6_K}};
  for (const auto& [n, t] : want) {
    const auto* info = f.find_tensor(n);
    ASSERT_NE(info, nullptr) << n;
    EXPECT_EQ(info->dtype, t) << n;
  }
  EXPECT_EQ(kquant_model().decoder_config().hidden_size, 256);
}

TEST(GGUFKQuantModel, PromptLogitsMatchTransformersOnDequantizedWeights) {
  for (int len : {1, 7, 64}) {
    const std::string k = "prompt_len" + std::to_string(len);
    auto cache = kquant_model().make_cache(1);
    const Tensor logits =
        kquant_model().forward(kquant_ref().tensor(k + ".input_ids"), Tensor(), Tensor(), cache);
    ASSERT_EQ(logits.shape(), kquant_ref().tensor(k + ".logits").shape());
    const double d = scaled_diff(logits, kquant_ref().tensor(k + ".logits"));
    std::printf("[measure] gguf llama_kquant/q4_k_m%s %s.scaled_diff %.3g\n",
                kSimd ? " (simd)" : "", k.c_str(), d);
    EXPECT_LE(d, kKQuantTol) << k;
  }
}

TEST(GGUFKQuantModel, Greedy32MatchesTransformers) {
  const float margin = kquant_ref().tensor("greedy.min_margin").data<float>()[0];
  EXPECT_GT(margin, 2 * kKQuantTol);  // the tolerance cannot flip a greedy token
  const Tensor in = kquant_ref().tensor("greedy.input_ids");
  const Tensor want = kquant_ref().tensor("greedy.output_ids");
  const std::vector<TokenId> prompt(in.data<int64_t>(), in.data<int64_t>() + in.numel());
  const auto got = generation::greedy_generate(kquant_model(), prompt, 32);
  ASSERT_EQ(got.size(), want.numel());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want.data<int64_t>()[i]) << "at " << i;
}

// ---- mapping details ------------------------------------------------------------------------

TEST(GGUFModels, QKPermutationIsUndone) {
  // The GGUF F16 q_proj/k_proj, unpermuted, equal the safetensors weights rounded to f16.
  const auto f = gguf::GGUFFile::open(gguf_path("llama", "f16"));
  const ModelConfig cfg = gguf_model_config(f);
  GGUFWeightSource src(gguf::GGUFFile::open(gguf_path("llama", "f16")), cfg);
  const auto st = safetensors::SafetensorsFile::open(f32_dir("llama") + "/model.safetensors");
  for (const char* n :
       {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight"}) {
    auto g = src.find(n);
    ASSERT_TRUE(g.has_value()) << n;
    const Tensor want = st.tensor(n).to(DType::F16).to(DType::F32);
    const Tensor got = g->to(DType::F32);
    ASSERT_EQ(got.shape(), want.shape()) << n;
    EXPECT_EQ(0, std::memcmp(got.raw(), want.raw(), want.nbytes())) << n;
  }
  // Raw (permuted) rows differ: the test above is not vacuous.
  const Tensor raw = f.tensor("blk.0.attn_q.weight").to(DType::F32);
  const Tensor hf =
      st.tensor("model.layers.0.self_attn.q_proj.weight").to(DType::F16).to(DType::F32);
  EXPECT_NE(0, std::memcmp(raw.raw(), hf.raw(), hf.nbytes()));
}

TEST(GGUFModels, EveryTensorIsUsed) {
  for (const char* arch : {"llama", "mistral", "qwen2", "gpt2", "mixtral", "gemma", "phi3",
                           "falcon_mq", "falcon_nda"}) {
    const std::string p = gguf_path(arch, "q8_0");
    const ModelConfig cfg = gguf_model_config(gguf::GGUFFile::open(p));
    GGUFWeightSource src(gguf::GGUFFile::open(p), cfg);
    std::set<std::string> sources;  // every tensor mapped (mixtral's experts: one per E names)
    for (const auto& n : src.names()) sources.insert(*src.gguf_name(n));
    EXPECT_EQ(sources.size(), src.file().n_tensors()) << arch;
    nn::Weights ws(src, std::nullopt);
    build_causal_lm(cfg, ws, {});
    EXPECT_TRUE(ws.unused().empty()) << arch;
  }
}

TEST(GGUFModels, QuantizeOnLoadFromGGUFAndSafetensors) {
  // --quantize q8_0 from the f32 safetensors equals the gguf-py Q8_0 file bit for bit (same
  // reference quantizer), so the logits agree to f32 rounding (not bit for bit: the GGUF model
  // keeps q/k in the file's interleaved RoPE order, so the attention dot products sum the head
  // dimensions in another order).
  const auto ref = safetensors::SafetensorsFile::open(f32_dir("llama") + "/reference.safetensors");
  const Tensor ids = ref.tensor("prompt_len7.input_ids");
  auto a = load_causal_lm(f32_dir("llama"), {.threads = 1, .quantize = DType::Q8_0});
  auto b = load_causal_lm(gguf_path("llama", "q8_0"), {.threads = 1});
  auto ca = a->make_cache(1), cb = b->make_cache(1);
  const Tensor la = a->forward(ids, Tensor(), Tensor(), ca);
  const Tensor lb = b->forward(ids, Tensor(), Tensor(), cb);
  ASSERT_EQ(la.shape(), lb.shape());
  EXPECT_LE(scaled_diff(la, lb), 1e-5);

  // q4_0 / q4_k on load run (64-wide rows: q4_k needs 256, so those matrices are kept as
  // stored and the logits equal the F16 ones; q4_0 quantizes all).
  for (DType q : {DType::Q4_0, DType::Q4_K}) {
    auto m = load_causal_lm(gguf_path("llama", "f16"), {.threads = 1, .quantize = q});
    auto c = m->make_cache(1);
    const double d =
        scaled_diff(m->forward(ids, Tensor(), Tensor(), c), ref.tensor("prompt_len7.logits"));
    std::printf("[measure] gguf llama/f16 --quantize %s prompt_len7.scaled_diff %.3g\n",
                std::string(name(q)).c_str(), d);
    EXPECT_LE(d, 0.5);  // 4-bit on a 64-wide random model: loose; the point is it runs
  }
}

TEST(GGUFModels, WriterReproducesGgufPyFilesByteForByte) {
  // Re-writing each gguf-py fixture (metadata in order, tensors in order, alignment 32) with
  // ohm's GGUFWriter gives the identical file.
  for (const char* arch :
       {"llama", "mistral", "qwen2", "gpt2", "gemma", "phi3", "falcon_mq", "falcon_nda", "mixtral"})
    for (const char* type : {"f16", "q8_0"}) {
      const std::string p = gguf_path(arch, type);
      const auto f = gguf::GGUFFile::open(p);
      gguf::GGUFWriter w;
      for (const auto& [k, v] : f.metadata()) {
        switch (v.type()) {
          case gguf::ValueType::STRING:
            w.add_string(k, std::string(*v.as_string()));
            break;
          case gguf::ValueType::UINT32:
            w.add_uint32(k, static_cast<uint32_t>(*v.as_uint()));
            break;
          case gguf::ValueType::INT32:
            w.add_int32(k, static_cast<int32_t>(*v.as_int()));
            break;
          case gguf::ValueType::FLOAT32:
            w.add_float32(k, static_cast<float>(*v.as_double()));
            break;
          default:
            FAIL() << "unexpected metadata type for " << k;
        }
      }
      for (const auto& t : f.tensors()) w.add_tensor(t.name, f.tensor(t.name));
      test::TempDir d;
      w.write(d.file("out.gguf"));
      const std::string a = test::read_file(p), b = test::read_file(d.file("out.gguf"));
      EXPECT_EQ(a.size(), b.size()) << p;
      EXPECT_TRUE(a == b) << p;
    }
}

TEST(GGUFModels, MixtralF16BuiltAtTestTimeEqualsGgufPy) {
  // gguf-py's file (scripts/make_gguf_model_fixtures.py mixtral) is over the fixture size cap:
  // its sha256 is committed, and the test-time file must have the same bytes.
  const auto sum = test::fixtures_dir() / "models" / "mixtral" / "gguf" / "model-f16.gguf.sha256";
  OHM_REQUIRE_FIXTURE(std::filesystem::exists(sum), sum);
  const std::string want = test::read_file(sum.string()).substr(0, 64);
  EXPECT_EQ(hub::sha256_hex(test::read_file(mixtral_f16_path())), want);
}

TEST(GGUFModels, LayoutsAreUndone) {
  // F16 files: what the loader hands the model equals the safetensors weight rounded to f16
  // (gemma's norms: f32, within the rounding of 1 + w); the raw GGUF tensor differs, so the
  // check is not vacuous.
  struct Case {
    const char* arch;
    const char* hf;
    const char* gguf;
  };
  for (const Case& k :
       {Case{"falcon_nda", "transformer.h.1.self_attention.query_key_value.weight",
             "blk.1.attn_qkv.weight"},
        Case{"mixtral", "model.layers.1.block_sparse_moe.experts.3.w2.weight", ""},
        Case{"mixtral", "model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight"},
        Case{"gemma", "model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
        Case{"gemma", "model.norm.weight", "output_norm.weight"}}) {
    const std::string p = gguf_path(k.arch, "f16");
    const auto f = gguf::GGUFFile::open(p);
    GGUFWeightSource src(gguf::GGUFFile::open(p), gguf_model_config(f));
    const auto st = safetensors::SafetensorsFile::open(f32_dir(k.arch) + "/model.safetensors");
    auto g = src.find(k.hf);
    ASSERT_TRUE(g.has_value()) << k.hf;
    const Tensor got = g->to(DType::F32);
    const bool norm = std::string(k.arch) == "gemma";
    const Tensor want =
        norm ? st.tensor(k.hf).to(DType::F32) : st.tensor(k.hf).to(DType::F16).to(DType::F32);
    ASSERT_EQ(got.shape(), want.shape()) << k.hf;
    if (norm) {
      for (uint64_t i = 0; i < want.numel(); ++i)
        EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], 1.2e-7) << k.hf << " " << i;
    } else {
      EXPECT_EQ(0, std::memcmp(got.raw(), want.raw(), want.nbytes())) << k.hf;
    }
    if (*k.gguf) {
      const Tensor raw = f.tensor(k.gguf).to(DType::F32);
      EXPECT_NE(0, std::memcmp(raw.raw(), want.raw(), want.nbytes())) << k.gguf;
    }
  }
}

TEST(GGUFModels, FalconLayoutFromTensors) {
  const auto mq = gguf_model_config(gguf::GGUFFile::open(gguf_path("falcon_mq", "q8_0")));
  const auto nda = gguf_model_config(gguf::GGUFFile::open(gguf_path("falcon_nda", "q8_0")));
  EXPECT_EQ(summary_value(mq, "new_decoder_architecture"), "false");
  EXPECT_EQ(common(mq).num_key_value_heads, 1);
  EXPECT_EQ(summary_value(nda, "new_decoder_architecture"), "true");
  EXPECT_EQ(common(nda).num_key_value_heads, 2);
  EXPECT_EQ(summary_value(nda, "num_ln_in_parallel_attn"), "2");
}

TEST(GGUFModels, UnsupportedArchitectureIsNamed) {
  test::TempDir d;
  // A minimal GGUF v3 with general.architecture = "mamba".
  std::string b = "GGUF";
  auto u32 = [&](uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [&](uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& s) {
    u64(s.size());
    b += s;
  };
  u32(3);
  u64(0);
  u64(1);
  str("general.architecture");
  u32(8);
  str("mamba");
  test::write_file(d.file("m.gguf"), b);
  try {
    load_causal_lm(d.file("m.gguf"));
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("mamba"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ohm
