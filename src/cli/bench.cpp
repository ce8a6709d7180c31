// `ohm bench MODEL [--prompt-tokens 512] [-n|--gen-tokens 128] [--depth D] [--threads N]
// [--repetitions R] [--ubatch 512] [--json]`: end-to-end speed, llama-bench style. pp = one
// forward over a prompt of random token ids (fresh cache; past --ubatch tokens it runs in steps
// of that many, CausalLM::set_prefill_chunk); tg = greedy single-token steps from an empty cache,
// as llama-bench's tgN (which starts at context 0, not after the prompt), starting from the
// prompt's argmax. With --depth D (llama-bench -d), both start after D tokens of context: one
// untimed forward fills the cache with D random tokens, and pp and tg each start from it (the
// cache is truncated back to D between them). Each repetition uses fresh caches; one small
// warm-up forward runs first. ttft = prompt forward + argmax of the first repetition (page
// cache warm, weights already loaded).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"
#include "ohm/kernels/kernels.h"
#include "ohm/models/causal_lm.h"
#include "ohm/quant/quantize.h"

namespace ohm::cli {
namespace {

struct BenchOptions {
  std::string model;
  int64_t prompt_tokens = 512;
  int64_t gen_tokens = 128;
  int64_t depth = 0;
  int64_t ubatch = 512;
  bool past_context = false;
  int threads = 0;
  int repetitions = 3;
  std::string dtype;
  std::string quantize;
  std::string kv_type, verify_key;
  bool json = false;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void mean_std(const std::vector<double>& v, double& mean, double& sd) {
  mean = 0;
  for (double x : v) mean += x;
  mean /= std::max<size_t>(1, v.size());
  sd = 0;
  for (double x : v) sd += (x - mean) * (x - mean);
  sd = v.size() > 1 ? std::sqrt(sd / static_cast<double>(v.size() - 1)) : 0.0;
}

int64_t argmax_last(const Tensor& logits) {
  const float* l = logits.data<float>();
  const int64_t V = logits.dim(2);
  return std::max_element(l, l + V) - l;
}

int run_bench(const BenchOptions& o) {
  LoadOptions lo;
  lo.threads = o.threads;
  if (!o.dtype.empty()) {
    if (o.dtype == "f32")
      lo.dtype = DType::F32;
    else if (o.dtype == "f16")
      lo.dtype = DType::F16;
    else if (o.dtype == "bf16")
      lo.dtype = DType::BF16;
    else
      throw InvalidArgument("bench: --dtype must be f32, f16 or bf16");
  }
  if (!o.quantize.empty()) lo.quantize = dtype_from_name(o.quantize);
  const double t0 = now_s();
  verify_model_if_asked(resolve_model(o.model).path, o.verify_key);
  auto model = load_causal_lm(o.model, lo);
  if (!o.kv_type.empty()) model->set_kv_type(*dtype_from_name(o.kv_type));
  model->set_prefill_chunk(o.ubatch);
  const double load_s = now_s() - t0;
  // Both phases start after `depth` tokens: each must fit the model's context, unless
  // --past-context (speed only, as llama-bench with a larger -c: positions past the trained ones).
  if (const int64_t ctx = model->decoder_config().max_position_embeddings; ctx > 0) {
    const std::string d = o.depth > 0 ? "--depth " + std::to_string(o.depth) + " + " : "";
    auto check = [&](const char* flag, int64_t n) {
      if (o.depth + n <= ctx) return;
      const std::string what = d + flag + " " + std::to_string(n);
      if (!o.past_context)
        throw UsageError(what + " exceeds the model's context length (" + std::to_string(ctx) +
                         "); --past-context measures it anyway");
      std::cerr << "ohm bench: note: " << what << " exceeds the model's context length (" << ctx
                << "); positions past it measure speed only\n";
    };
    check("--prompt-tokens", o.prompt_tokens);
    check("--gen-tokens", o.gen_tokens);
  }
  const int64_t V = model->vocab_size();
  std::mt19937_64 rng(1234);
  auto random_ids = [&](int64_t n) {
    std::vector<int64_t> ids(static_cast<size_t>(n));
    for (auto& id : ids)
      id = static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(1, V)));
    return ids;
  };
  const std::vector<int64_t> prompt = random_ids(o.prompt_tokens);
  const std::vector<int64_t> context = random_ids(o.depth);
  // A cache holding the `depth` context tokens (not in pp or tg; its rate is reported apart, as
  // the prompt processing of `depth` tokens from an empty cache).
  std::vector<double> fill;
  auto filled_cache = [&](int64_t extra) {
    auto cache = model->make_cache(1, o.depth + extra);
    if (o.depth > 0) {
      Tensor ids = Tensor::empty(DType::I64, {1, o.depth});
      std::copy(context.begin(), context.end(), ids.mutable_data<int64_t>());
      const double a = now_s();
      (void)model->forward(ids, Tensor(), Tensor(), cache, true);
      fill.push_back(static_cast<double>(o.depth) / (now_s() - a));
    }
    return cache;
  };

  {  // warm-up
    auto cache = model->make_cache(1, 8);
    Tensor ids = Tensor::empty(DType::I64, {1, 1});
    ids.mutable_data<int64_t>()[0] = prompt[0];
    (void)model->forward(ids, Tensor(), Tensor(), cache, true);
  }
  std::vector<double> pp, tg;
  double ttft = 0;
  for (int r = 0; r < o.repetitions; ++r) {
    int64_t next = 0;
    auto cache = filled_cache(std::max(o.prompt_tokens, o.gen_tokens));
    {
      Tensor ids = Tensor::empty(DType::I64, {1, o.prompt_tokens});
      std::copy(prompt.begin(), prompt.end(), ids.mutable_data<int64_t>());
      const double a = now_s();
      const Tensor logits = model->forward(ids, Tensor(), Tensor(), cache, true);
      next = argmax_last(logits);
      const double b = now_s();
      if (r == 0) ttft = b - a;
      pp.push_back(static_cast<double>(o.prompt_tokens) / (b - a));
    }
    if (o.gen_tokens > 0) {
      // The prompt's slots are dropped: tg starts at `depth` (0: an empty cache).
      cache.truncate(o.depth);
      auto& tg_cache = cache;
      Tensor step = Tensor::empty(DType::I64, {1, 1});
      const double c = now_s();
      for (int64_t i = 0; i < o.gen_tokens; ++i) {
        step.mutable_data<int64_t>()[0] = next;
        next = argmax_last(model->forward(step, Tensor(), Tensor(), tg_cache, true));
      }
      tg.push_back(static_cast<double>(o.gen_tokens) / (now_s() - c));
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double peak_rss_mb = static_cast<double>(ru.ru_maxrss) / 1024.0;
  double pp_m, pp_s, tg_m = 0, tg_s = 0, fill_m = 0, fill_s = 0;
  mean_std(pp, pp_m, pp_s);
  if (!fill.empty()) mean_std(fill, fill_m, fill_s);
  if (!tg.empty()) mean_std(tg, tg_m, tg_s);
  const int threads = model->pool().size();
  const std::string format =
      std::string(o.model.size() > 5 && o.model.substr(o.model.size() - 5) == ".gguf"
                      ? "gguf"
                      : "safetensors") +
      (o.dtype.empty() ? "" : ":" + o.dtype);
  if (o.json) {
    nlohmann::json j = {{"pp_tok_s", round_to(pp_m, 2)},
                        {"pp_std", round_to(pp_s, 2)},
                        {"tg_tok_s", round_to(tg_m, 2)},
                        {"tg_std", round_to(tg_s, 2)},
                        {"load_s", round_to(load_s, 4)},
                        {"ttft_s", round_to(ttft, 4)},
                        {"peak_rss_mb", round_to(peak_rss_mb, 1)},
                        {"depth", o.depth},
                        {"depth_fill_tok_s", round_to(fill_m, 2)},
                        {"kv_type", o.kv_type.empty() ? "f32" : o.kv_type},
                        {"threads", threads},
                        {"format", format}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << std::fixed << std::setprecision(2);
    std::cout << "model      " << o.model << " (" << format << ", kernels "
              << kernels::isa_name(kernels::active().isa) << ", " << threads << " threads, KV "
              << (o.kv_type.empty() ? "f32" : o.kv_type) << ")\n";
    const std::string at = o.depth > 0 ? " @ d" + std::to_string(o.depth) : "";
    std::cout << "pp" << o.prompt_tokens << at << "      " << pp_m << " ± " << pp_s << " tok/s\n";
    std::cout << "tg" << o.gen_tokens << at << "      " << tg_m << " ± " << tg_s << " tok/s\n";
    if (o.depth > 0)
      std::cout << "fill       " << fill_m << " ± " << fill_s << " tok/s (the " << o.depth
                << "-token context from an empty cache: pp" << o.depth << ")\n";
    std::cout << std::setprecision(3) << "load       " << load_s << " s\nttft       " << ttft
              << " s (" << o.prompt_tokens << "-token prompt)\n"
              << std::setprecision(1) << "peak RSS   " << peak_rss_mb << " MB\n";
  }
  return 0;
}

const Register reg_bench("bench", [](CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  auto* cmd =
      app.add_subcommand("bench", "Prompt-processing and generation speed (llama-bench style)");
  cmd->add_option("model", opt->model, "Model directory, .safetensors/.gguf file or Hub id")
      ->required();
  // No -p: that is the prompt in generate (llama-bench's -p is --prompt-tokens here).
  cmd->add_option("--prompt-tokens", opt->prompt_tokens,
                  "Prompt length; depth + it at most the model's context (default 512)")
      ->check(int_range(1, int64_t{1} << 20));
  cmd->add_option("--gen-tokens,-n", opt->gen_tokens,
                  "Generated tokens, depth + them at most the model's context; 0 skips tg "
                  "(default 128)")
      ->check(int_range(0, int64_t{1} << 20));
  cmd->add_option("--depth,-d", opt->depth,
                  "Measure pp and tg after this many tokens of context, as llama-bench -d "
                  "(default 0)")
      ->check(int_range(0, int64_t{1} << 20));
  cmd->add_option("--ubatch", opt->ubatch,
                  "Prompt tokens per forward step, as llama-bench -ub: a longer prompt (and the "
                  "--depth fill) runs in equal steps of at most this many; 0: one step "
                  "(default 512)")
      ->check(int_range(0, int64_t{1} << 20));
  cmd->add_flag("--past-context", opt->past_context,
                "Allow depth + tokens past the model's context length (speed only)");
  add_threads_option(cmd, opt->threads);
  cmd->add_option("--repetitions,-r", opt->repetitions, "Repetitions (default 3)")
      ->check(int_range(1, 1000));
  cmd->add_option("--dtype", opt->dtype, "Convert weights at load: f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--quantize", opt->quantize,
                  "Quantize 2-D weights at load to this ggml block type")
      ->check(CLI::IsMember(quant::quantize_type_names()));
  add_verify_key_option(cmd, opt->verify_key);
  cmd->add_option("--kv-type", opt->kv_type,
                  "KV cache storage: f32 (default), f16 or q8_0 (head_dim a multiple of 32)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
  cmd->add_flag("--json", opt->json,
                "One JSON object: pp_tok_s, pp_std, tg_tok_s, tg_std, load_s, ttft_s, "
                "peak_rss_mb, depth, depth_fill_tok_s, kv_type, threads, format");
  cmd->footer(
      "MODEL: a local directory, a .safetensors or .gguf file, or a Hub id in the HF cache.\n"
      "--json rounds rates to 0.01 tok/s and times to 0.1 ms.\n"
      "--depth D: one untimed forward fills the cache with D tokens; pp and tg start from it.");
  return Command{cmd, [opt] { return run_bench(*opt); }};
});

}  // namespace
}  // namespace ohm::cli
