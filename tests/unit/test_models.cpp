// Every architecture against its transformers fixture (tests/fixtures/models/<arch>/<dtype>/,
// made by scripts/make_fixtures.py): logits for prompts of length 1, 7 and 64, a left-padded
// batch, incremental decoding through the KV cache, and 32 greedy tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "ohm/core/error.h"
#include "ohm/formats/safetensors.h"
#include "ohm/generation/generate.h"
#include "ohm/models/arch.h"
#include "ohm/models/causal_lm.h"
#include "test_util.h"

namespace ohm {
namespace {

using Param = std::tuple<std::string, std::string>;  // arch, dtype

std::string fixture_dir(const Param& p) {
  return (test::fixtures_dir() / "models" / std::get<0>(p) / std::get<1>(p)).string();
}

// Logits tolerance, scaled by the reference logit range.
double tolerance(const Param& p) {
  return std::get<1>(p) == "f32" ? 1e-4 : 2e-2;
}

struct Diff {
  double max_abs = 0, range = 0;
  double scaled() const { return range > 0 ? max_abs / range : max_abs; }
};

// Compares ours [B, T, V] with ref [B, T, V] at positions where mask (if any) is 1.
Diff compare(const Tensor& ours, const Tensor& ref, const Tensor* mask = nullptr,
             int64_t t_offset = 0) {
  Diff d;
  const int64_t B = ours.dim(0), T = ours.dim(1), V = ours.dim(2);
  const int64_t RT = ref.dim(1);
  float lo = 1e30f, hi = -1e30f;
  const float* r = ref.data<float>();
  for (uint64_t i = 0; i < ref.numel(); ++i) {
    lo = std::min(lo, r[i]);
    hi = std::max(hi, r[i]);
  }
  d.range = hi - lo;
  const float* o = ours.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      if (mask && mask->data<int64_t>()[b * RT + t + t_offset] == 0) continue;
      for (int64_t v = 0; v < V; ++v)
        d.max_abs = std::max<double>(
            d.max_abs, std::fabs(o[(b * T + t) * V + v] - r[(b * RT + t + t_offset) * V + v]));
    }
  return d;
}

Tensor slice_tokens(const Tensor& ids, int64_t t0, int64_t t1) {
  const int64_t B = ids.dim(0), T = ids.dim(1);
  Tensor out = Tensor::empty(DType::I64, {B, t1 - t0});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = t0; t < t1; ++t)
      out.mutable_data<int64_t>()[b * (t1 - t0) + t - t0] = ids.data<int64_t>()[b * T + t];
  return out;
}

// A report line per measurement, collected in build dir for the summary.
void report(const Param& p, const std::string& what, double v) {
  std::printf("[measure] %s/%s %s %.3g\n", std::get<0>(p).c_str(), std::get<1>(p).c_str(),
              what.c_str(), v);
}

class ModelFixture : public ::testing::TestWithParam<Param> {
 protected:
  static std::map<std::string, std::unique_ptr<CausalLM>>& models() {
    static std::map<std::string, std::unique_ptr<CausalLM>> m;
    return m;
  }
  CausalLM& model() {
    auto& m = models()[fixture_dir(GetParam())];
    if (!m) m = load_causal_lm(fixture_dir(GetParam()), {.threads = 2});
    return *m;
  }
  const safetensors::SafetensorsFile& ref() {
    static std::map<std::string, safetensors::SafetensorsFile> refs;
    const std::string d = fixture_dir(GetParam());
    auto it = refs.find(d);
    if (it == refs.end())
      it = refs.emplace(d, safetensors::SafetensorsFile::open(d + "/reference.safetensors")).first;
    return it->second;
  }
};

TEST_P(ModelFixture, PromptLogits) {
  for (int len : {1, 7, 64}) {
    const std::string k = "prompt_len" + std::to_string(len);
    const Tensor ids = ref().tensor(k + ".input_ids");
    auto cache = model().make_cache(1);
    const Tensor logits = model().forward(ids, Tensor(), Tensor(), cache);
    ASSERT_EQ(logits.shape(), ref().tensor(k + ".logits").shape());
    const Diff d = compare(logits, ref().tensor(k + ".logits"));
    report(GetParam(), k + ".scaled_diff", d.scaled());
    EXPECT_LE(d.scaled(), tolerance(GetParam())) << k << " max|diff| " << d.max_abs;
  }
}

TEST_P(ModelFixture, LeftPaddedBatch) {
  const Tensor ids = ref().tensor("batch.input_ids");
  const Tensor mask = ref().tensor("batch.attention_mask");
  const Tensor pos = ref().tensor("batch.position_ids");
  auto cache = model().make_cache(ids.dim(0));
  const Tensor logits = model().forward(ids, mask, pos, cache);
  const Diff d = compare(logits, ref().tensor("batch.logits"), &mask);
  report(GetParam(), "batch.scaled_diff", d.scaled());
  EXPECT_LE(d.scaled(), tolerance(GetParam())) << "max|diff| " << d.max_abs;

  // Same batch, incrementally: 12 tokens, then one at a time, default position ids.
  auto cache2 = model().make_cache(ids.dim(0));
  double worst = 0;
  for (int64_t t0 = 0; t0 < ids.dim(1);) {
    const int64_t t1 = t0 == 0 ? 12 : t0 + 1;
    const Tensor part =
        model().forward(slice_tokens(ids, t0, t1), slice_tokens(mask, 0, t1), Tensor(), cache2);
    worst = std::max(worst, compare(part, ref().tensor("batch.logits"), &mask, t0).scaled());
    t0 = t1;
  }
  report(GetParam(), "batch_incremental.scaled_diff", worst);
  EXPECT_LE(worst, tolerance(GetParam()));
}

TEST_P(ModelFixture, IncrementalDecodeMatchesFullForward) {
  // prompt_len64 fed as 40 tokens then 24 single steps through the KV cache (for Mistral this
  // crosses the sliding window inside the cache).
  const Tensor ids = ref().tensor("prompt_len64.input_ids");
  auto cache = model().make_cache(1);
  double worst = 0;
  for (int64_t t0 = 0; t0 < 64;) {
    const int64_t t1 = t0 == 0 ? 40 : t0 + 1;
    const Tensor part = model().forward(slice_tokens(ids, t0, t1), Tensor(), Tensor(), cache);
    worst =
        std::max(worst, compare(part, ref().tensor("prompt_len64.logits"), nullptr, t0).scaled());
    t0 = t1;
  }
  report(GetParam(), "incremental64.scaled_diff", worst);
  EXPECT_LE(worst, tolerance(GetParam()));
}

TEST_P(ModelFixture, Greedy32) {
  const Tensor in = ref().tensor("greedy.input_ids");
  const Tensor want = ref().tensor("greedy.output_ids");
  const std::vector<TokenId> prompt(in.data<int64_t>(), in.data<int64_t>() + in.numel());
  const auto got = generation::greedy_generate(model(), prompt, 32);
  ASSERT_EQ(got.size(), want.numel());
  int same = 0;
  for (size_t i = prompt.size(); i < got.size(); ++i) same += got[i] == want.data<int64_t>()[i];
  report(GetParam(), "greedy_matches_of_32", same);
  if (std::get<1>(GetParam()) == "f32")
    EXPECT_EQ(same, 32);
  else
    EXPECT_GE(same, 30);
}

// Every fixture directory with f32 and bf16 checkpoints (a new architecture's fixture is picked
// up without editing this file).
std::vector<Param> all_fixtures() {
  std::vector<Param> out;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(test::fixtures_dir() / "models"))
    if (std::filesystem::exists(e.path() / "f32" / "reference.safetensors"))
      names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& a : names)
    for (const char* d : {"f32", "bf16"}) out.emplace_back(a, d);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelFixture, ::testing::ValuesIn(all_fixtures()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param);
                         });

// ---- architecture-specific checks ---------------------------------------------------------

TEST(Models, MixtralRoutesToEveryExpert) {
  const std::string dir = (test::fixtures_dir() / "models/mixtral/f32").string();
  auto model = load_causal_lm(dir);
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  auto cache = model->make_cache(1);
  model->forward(ref.tensor("prompt_len64.input_ids"), Tensor(), Tensor(), cache);
  const auto counts = model->router_counts();
  ASSERT_EQ(counts.size(), 2u);
  for (const auto& [name, c] : counts) {
    ASSERT_EQ(c.size(), 4u) << name;
    int64_t total = 0;
    for (size_t e = 0; e < c.size(); ++e) {
      EXPECT_GT(c[e], 0) << name << " expert " << e;
      total += c[e];
    }
    EXPECT_EQ(total, 64 * 2) << name;  // top-2 of 64 tokens
  }
}

TEST(Models, MistralPromptLongerThanSlidingWindow) {
  const std::string dir = (test::fixtures_dir() / "models/mistral/f32").string();
  auto model = load_causal_lm(dir);
  ASSERT_TRUE(model->decoder_config().sliding_window.has_value());
  const int64_t window = *model->decoder_config().sliding_window;
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  const Tensor ids = ref.tensor("prompt_len64.input_ids");
  ASSERT_GT(ids.dim(1), 2 * window);
  auto cache = model->make_cache(1);
  const Diff d =
      compare(model->forward(ids, Tensor(), Tensor(), cache), ref.tensor("prompt_len64.logits"));
  EXPECT_LE(d.scaled(), 1e-4);
}

// --kv-type: the demo model (head_dim 32) with f16 and q8_0 KV caches, prefill then token by
// token (batch 2 with padding, past the first cache allocation so the cache regrows), against
// the f32 cache. f16 rounds K/V to 11 bits, q8_0 to 8 bits per 32 values: the logits move by a
// small fraction of their range. A head_dim off 32 (the llama fixture's 16) refuses q8_0.
TEST(Models, TypedKVCacheFollowsF32) {
  auto model = load_causal_lm((test::source_dir() / "models" / "ohm-demo").string());
  EXPECT_EQ(model->kv_type(), DType::F32);
  const int64_t B = 2, T = 40, steps = 30;
  Tensor ids = Tensor::empty(DType::I64, {B, T + steps});
  Tensor mask = Tensor::empty(DType::I64, {B, T + steps});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T + steps; ++t) {
      ids.mutable_data<int64_t>()[b * (T + steps) + t] = (7 * t + 13 * b + 1) % 200 + 3;
      mask.mutable_data<int64_t>()[b * (T + steps) + t] = (b == 1 && t < 5) ? 0 : 1;
    }
  auto run = [&](DType kv) {
    model->set_kv_type(kv);
    auto cache = model->make_cache(B, T + 1);
    EXPECT_EQ(cache.kv_type(), kv);
    std::vector<Tensor> out;
    out.push_back(
        model->forward(slice_tokens(ids, 0, T), slice_tokens(mask, 0, T), Tensor(), cache));
    for (int64_t t = T; t < T + steps; ++t)
      out.push_back(model->forward(slice_tokens(ids, t, t + 1), slice_tokens(mask, 0, t + 1),
                                   Tensor(), cache));
    EXPECT_GT(cache.capacity(), T + 1);  // grew
    return out;
  };
  const auto ref = run(DType::F32);
  for (auto [kv, tol] : {std::pair{DType::F16, 2e-3}, std::pair{DType::Q8_0, 2e-2}}) {
    SCOPED_TRACE(name(kv));
    const auto got = run(kv);
    ASSERT_EQ(got.size(), ref.size());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, compare(got[i], ref[i]).scaled());
    EXPECT_LE(worst, tol);
    EXPECT_GT(worst, 0.0);  // the cache really is stored in that type
  }
  model->set_kv_type(DType::F32);
  EXPECT_THROW(model->set_kv_type(DType::BF16), InvalidArgument);
  auto llama = load_causal_lm((test::fixtures_dir() / "models/llama/f32").string());
  try {
    llama->set_kv_type(DType::Q8_0);
    ADD_FAILURE() << "q8_0 with head_dim 16 was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 32"), std::string::npos) << e.what();
  }
}

TEST(Models, SlidingWindowCacheHoldsOnlyTheWindow) {
  // Token-by-token decoding of the 64-token prompt: the cache drops what the window hides, keeps
  // at most 2 * window slots, and the logits still match transformers at every position.
  const std::string dir = (test::fixtures_dir() / "models/mistral/f32").string();
  auto model = load_causal_lm(dir);
  const int64_t window = *model->decoder_config().sliding_window;
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  const Tensor ids = ref.tensor("prompt_len64.input_ids");
  auto cache = model->make_cache(1, /*capacity_hint=*/1000);
  EXPECT_LE(cache.capacity(), 2 * window);
  double worst = 0;
  for (int64_t t = 0; t < 64; ++t) {
    const Tensor part = model->forward(slice_tokens(ids, t, t + 1), Tensor(), Tensor(), cache);
    worst = std::max(worst, compare(part, ref.tensor("prompt_len64.logits"), nullptr, t).scaled());
    EXPECT_LE(cache.size(), 2 * window);
    EXPECT_LE(cache.capacity(), 2 * window);
  }
  EXPECT_EQ(cache.dropped() + cache.size(), 64);
  EXPECT_GT(cache.dropped(), 0);
  EXPECT_LE(worst, 1e-4);
  // Models without a window on every layer keep everything.
  auto llama = load_causal_lm((test::fixtures_dir() / "models/llama/f32").string());
  EXPECT_EQ(llama->make_cache(1).window(), 0);
}

// A weight source that hides one tensor.
class HidingSource : public nn::WeightSource {
 public:
  HidingSource(const nn::WeightSource& inner, std::string hidden)
      : inner_(inner), hidden_(std::move(hidden)) {}
  std::optional<Tensor> find(const std::string& n) const override {
    return n == hidden_ ? std::nullopt : inner_.find(n);
  }
  std::vector<std::string> names() const override { return inner_.names(); }
  std::string describe() const override { return inner_.describe(); }

 private:
  const nn::WeightSource& inner_;
  std::string hidden_;
};

TEST(Models, MissingTensorIsNamed) {
  const std::string dir = (test::fixtures_dir() / "models/llama/f32").string();
  const ModelConfig cfg = load_model_config(dir + "/config.json");
  nn::CheckpointSource src(safetensors::Checkpoint::open(dir), dir);
  HidingSource hiding(src, "model.layers.1.mlp.up_proj.weight");
  nn::Weights ws(hiding, std::nullopt);
  try {
    build_causal_lm(cfg, ws, {});
    FAIL() << "expected NotFoundError";
  } catch (const NotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.mlp.up_proj.weight"), std::string::npos)
        << e.what();
  }
  nn::Weights all(src, std::nullopt);
  build_causal_lm(cfg, all, {});
  EXPECT_TRUE(all.unused().empty());
}

TEST(Models, LoadsWithDtypeConversion) {
  // bf16 checkpoint converted to f32 at load computes the same logits as reading bf16 rows.
  const std::string dir = (test::fixtures_dir() / "models/llama/bf16").string();
  auto a = load_causal_lm(dir);
  auto b = load_causal_lm(dir, {.dtype = DType::F32, .threads = 1});
  const auto ref = safetensors::SafetensorsFile::open(dir + "/reference.safetensors");
  auto ca = a->make_cache(1), cb = b->make_cache(1);
  const Tensor la = a->forward(ref.tensor("prompt_len7.input_ids"), Tensor(), Tensor(), ca);
  const Tensor lb = b->forward(ref.tensor("prompt_len7.input_ids"), Tensor(), Tensor(), cb);
  EXPECT_LE(compare(la, lb).max_abs, 1e-5);
}

TEST(Models, ErrorsNameTheProblem) {
  const std::string dir = (test::fixtures_dir() / "models/llama/f32").string();
  auto model = load_causal_lm(dir);
  auto cache = model->make_cache(1);
  Tensor bad = Tensor::empty(DType::I64, {1, 1});
  bad.mutable_data<int64_t>()[0] = 100000;
  EXPECT_THROW(model->forward(bad, Tensor(), Tensor(), cache), InvalidArgument);
  EXPECT_EQ(cache.size(), 0);  // a failed step leaves the cache as it was
  auto cache2 = model->make_cache(2);
  EXPECT_THROW(model->forward(bad, Tensor(), Tensor(), cache2), ShapeError);
  EXPECT_THROW(load_causal_lm(dir, {.device_map = "cuda"}), UnsupportedError);
}

}  // namespace
}  // namespace ohm
