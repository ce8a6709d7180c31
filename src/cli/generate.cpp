// `ohm generate` and `ohm chat`: text generation with a model directory, GGUF file or Hub id,
// the model's tokenizer and generation_config.json defaults (transformers semantics).
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ohm/chat/chat_template.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/formats/config.h"
#include "ohm/formats/model_source.h"
#include "ohm/generation/auto_model.h"
#include "ohm/generation/generate.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct SamplingFlags {
  std::optional<int64_t> max_new_tokens;
  bool greedy = false;
  std::optional<double> temperature, top_p, min_p, typical_p, repetition_penalty;
  std::optional<int64_t> top_k, num_beams, no_repeat_ngram_size;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int threads = 0;
  std::string dtype, quantize;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--max-new-tokens,-n", max_new_tokens,
                    "Tokens to generate (default: "
                    "generation_config.json)");
    cmd->add_flag("--greedy", greedy, "Greedy decoding (do_sample=false)");
    cmd->add_option("--temperature", temperature, "Sampling temperature (implies sampling)");
    cmd->add_option("--top-k", top_k, "Top-k filtering (0 disables)");
    cmd->add_option("--top-p", top_p, "Nucleus filtering");
    cmd->add_option("--min-p", min_p, "Min-p filtering");
    cmd->add_option("--typical-p", typical_p, "Locally typical filtering");
    cmd->add_option("--repetition-penalty", repetition_penalty, "HF repetition penalty");
    cmd->add_option("--no-repeat-ngram-size", no_repeat_ngram_size, "Ban repeated n-grams");
    cmd->add_option("--num-beams", num_beams, "Beam search with this many beams");
    cmd->add_option("--seed", seed, "RNG seed for sampling (reproducible)");
    cmd->add_option("--stop", stop, "Stop string (repeatable)");
    cmd->add_option("--threads,-t", threads, "Threads (default: all cores / OHM_NUM_THREADS)");
    cmd->add_option("--dtype", dtype, "Weights in memory: f32, bf16 or f16 (default: as stored)")
        ->check(CLI::IsMember({"f32", "bf16", "f16"}));
    cmd->add_option("--quantize", quantize, "Quantize 2-D weights at load (ggml block formats)")
        ->check(CLI::IsMember({"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q6_k"}));
  }

  void apply(GenerationConfig& g) const {
    if (max_new_tokens) g.max_new_tokens = *max_new_tokens;
    const bool sampling_flag = temperature || top_p || min_p || typical_p || top_k;
    if (sampling_flag) g.do_sample = true;
    if (greedy) g.do_sample = false;
    if (temperature) g.temperature = *temperature;
    if (top_k) g.top_k = *top_k;
    if (top_p) g.top_p = *top_p;
    if (min_p) g.min_p = *min_p;
    if (typical_p) g.typical_p = *typical_p;
    if (repetition_penalty) g.repetition_penalty = *repetition_penalty;
    if (no_repeat_ngram_size) g.no_repeat_ngram_size = *no_repeat_ngram_size;
    if (num_beams) g.num_beams = *num_beams;
    if (seed) g.seed = *seed;
    for (const auto& s : stop) g.stop_strings.push_back(s);
  }
};

struct Loaded {
  tokenizers::AutoTokenizer tok;
  std::unique_ptr<CausalLM> model;
  GenerationConfig gen;
  ModelSource src;
  double load_seconds = 0;
};

Loaded load(const std::string& model, const SamplingFlags& f) {
  const auto t0 = Clock::now();
  Loaded l{tokenizers::AutoTokenizer::from_pretrained(model), nullptr, {}, resolve_model(model), 0};
  LoadOptions lo;
  lo.threads = f.threads;
  if (!f.dtype.empty()) lo.dtype = dtype_from_name(f.dtype);
  if (!f.quantize.empty()) lo.quantize = dtype_from_name(f.quantize);
  auto pretrained = AutoModelForCausalLM::from_pretrained(model, lo);
  l.gen = pretrained.generation_config();  // generation_config.json, else from the config
  l.model = std::move(pretrained).release();
  if (l.gen.eos_token_id.empty())
    if (auto e = l.tok.eos_token_id()) l.gen.eos_token_id = {*e};
  if (!l.gen.pad_token_id)
    if (auto p = l.tok.pad_token_id()) l.gen.pad_token_id = *p;
  f.apply(l.gen);
  l.load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto& c = l.model->decoder_config();
  std::cerr << "ohm: loaded " << model << " (" << c.model_type << ", " << c.num_hidden_layers
            << " layers, vocab " << c.vocab_size << ") in " << l.load_seconds << " s\n";
  return l;
}

std::vector<int64_t> to64(const std::vector<int32_t>& v) {
  return {v.begin(), v.end()};
}
std::vector<int32_t> to32(const std::vector<int64_t>& v) {
  return {v.begin(), v.end()};
}

std::function<bool(const std::vector<int64_t>&)> stop_for(const Loaded& l) {
  if (l.gen.stop_strings.empty()) return {};
  const tokenizers::AutoTokenizer* tok = &l.tok;
  return generation::stop_strings_criterion(
      l.gen.stop_strings,
      [tok](const std::vector<int64_t>& ids) { return tok->decode(to32(ids)); });
}

std::atomic<bool> g_interrupted{false};
void on_sigint(int) {
  g_interrupted = true;
}

// ---- ohm generate ----------------------------------------------------------------------------

struct GenerateCmd {
  std::string model, prompt;
  bool json = false;
  SamplingFlags f;
};

int run_generate(const GenerateCmd& o) {
  Loaded l = load(o.model, o.f);
  const auto prompt_ids = to64(l.tok.encode(o.prompt, /*add_special_tokens=*/true));
  generation::GenerateOptions opt;
  opt.config = l.gen;
  opt.stop = stop_for(l);
  opt.cancel = &g_interrupted;
  std::signal(SIGINT, on_sigint);
  const bool stream = !o.json && l.gen.num_beams == 1;
  tokenizers::DecodeStream ds(l.tok.tokenizer(), /*skip_special_tokens=*/true);
  if (stream) {
    std::cout << o.prompt << std::flush;
    opt.on_token = [&](int64_t, int64_t tok) {
      if (auto piece = ds.step(static_cast<int32_t>(tok))) std::cout << *piece << std::flush;
      return true;
    };
  }
  const auto out = generation::generate(*l.model, {prompt_ids}, opt);
  const std::vector<int64_t> gen(out.sequences[0].begin() + out.prompt_lengths[0],
                                 out.sequences[0].end());
  const std::string text = l.tok.decode(to32(gen), /*skip_special_tokens=*/true);
  const double n_gen = static_cast<double>(gen.size());
  if (o.json) {
    json j = {
        {"text", text},
        {"tokens", gen},
        {"prompt_tokens", prompt_ids.size()},
        {"finish_reason", generation::to_string(out.finish_reasons[0])},
        {"timings",
         {{"load_s", l.load_seconds},
          {"prefill_s", out.prefill_seconds},
          {"decode_s", out.decode_seconds},
          {"prefill_tok_s", out.prefill_seconds > 0 ? prompt_ids.size() / out.prefill_seconds : 0},
          {"decode_tok_s", out.decode_seconds > 0 ? n_gen / out.decode_seconds : 0}}}};
    if (l.gen.num_beams > 1) j["sequence_score"] = out.sequences_scores[0];
    std::cout << j.dump() << "\n";
  } else {
    if (!stream) std::cout << o.prompt << text;
    std::cout << "\n";
    std::cerr << "ohm: " << prompt_ids.size() << " prompt tokens in " << out.prefill_seconds
              << " s, " << gen.size() << " tokens in " << out.decode_seconds << " s ("
              << (out.decode_seconds > 0 ? n_gen / out.decode_seconds : 0) << " tok/s), "
              << generation::to_string(out.finish_reasons[0]) << "\n";
  }
  return 0;
}

// ---- ohm chat --------------------------------------------------------------------------------

struct ChatCmd {
  std::string model, system;
  SamplingFlags f;
};

int run_chat(const ChatCmd& o) {
  Loaded l = load(o.model, o.f);
  const auto tmpl = chat::ChatTemplate::load(o.model);
  generation::Session session(*l.model, l.gen, l.gen.seed.value_or(0));
  chat::ojson messages = chat::ojson::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  std::signal(SIGINT, on_sigint);
  const bool tty = ::isatty(STDIN_FILENO);
  if (tty) std::cerr << "ohm chat: type a message; /reset clears the conversation, /exit quits\n";
  std::string line;
  for (;;) {
    std::cout << "> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages = chat::ojson::array();
      if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    chat::ChatOptions copt;
    copt.add_generation_prompt = true;
    const std::string prompt = tmpl.apply(messages, copt);
    const auto ids = to64(l.tok.encode(prompt, /*add_special_tokens=*/false));
    tokenizers::DecodeStream ds(l.tok.tokenizer(), /*skip_special_tokens=*/true);
    g_interrupted = false;
    const auto t0 = Clock::now();
    const auto gen = session.generate(
        ids,
        [&](int64_t tok) {
          if (auto piece = ds.step(static_cast<int32_t>(tok))) std::cout << *piece << std::flush;
          return true;
        },
        stop_for(l), &g_interrupted);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cout << "\n";
    std::cerr << "ohm: " << gen.size() << " tokens, " << (dt > 0 ? gen.size() / dt : 0)
              << " tok/s, " << session.reused_last() << " context tokens reused from the cache\n";
    messages.push_back({{"role", "assistant"},
                        {"content", l.tok.decode(to32(gen), /*skip_special_tokens=*/true)}});
  }
  return 0;
}

const Register reg_generate("generate", [](CLI::App& app) {
  auto o = std::make_shared<GenerateCmd>();
  auto* cmd =
      app.add_subcommand("generate", "Generate text from a prompt (transformers semantics)");
  cmd->add_option("model", o->model, "Model directory, .gguf file or Hub id")->required();
  cmd->add_option("--prompt,-p", o->prompt, "The prompt")->required();
  cmd->add_flag("--json", o->json,
                "Print {\"text\", \"tokens\", \"prompt_tokens\", \"finish_reason\", \"timings\"}");
  o->f.add_to(cmd);
  return Command{cmd, [o] { return run_generate(*o); }};
});

const Register reg_chat("chat", [](CLI::App& app) {
  auto o = std::make_shared<ChatCmd>();
  auto* cmd = app.add_subcommand(
      "chat",
      "Interactive chat with the model's chat template (streams tokens, keeps the KV cache)");
  cmd->add_option("model", o->model, "Model directory, .gguf file or Hub id")->required();
  cmd->add_option("--system", o->system, "System message");
  o->f.add_to(cmd);
  return Command{cmd, [o] { return run_chat(*o); }};
});

}  // namespace

}  // namespace ohm::cli
