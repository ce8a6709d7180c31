// `ohm generate` and `ohm chat`: text generation with a model directory, GGUF file or Hub id,
// the model's tokenizer and generation_config.json defaults (transformers semantics).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "common.h"
#include "line_reader.h"
#include "ohm/chat/chat_template.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/formats/config.h"
#include "ohm/formats/model_source.h"
#include "ohm/generation/auto_model.h"
#include "ohm/generation/generate.h"
#include "ohm/generation/grammar.h"
#include "ohm/generation/watermark.h"
#include "ohm/guard/guard.h"
#include "ohm/kernels/kernels.h"
#include "ohm/models/causal_lm.h"
#include "ohm/quant/quantize.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxBeams = 64;
constexpr int64_t kMaxCtx = int64_t{1} << 20;  // when the model does not say

struct SamplingFlags {
  std::optional<int64_t> max_new_tokens, ctx_size;
  bool greedy = false, quiet = false;
  std::optional<double> temperature, top_p, min_p, typical_p, repetition_penalty;
  std::optional<int64_t> top_k, num_beams, no_repeat_ngram_size;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int threads = 0;
  std::string dtype, quantize, tokenizer, kv_type, verify_key;
  std::optional<std::string> watermark;  // --watermark [SPEC]
  // Speculative decoding.
  int64_t prompt_lookup = 0, prompt_lookup_ngram = 2, draft_tokens = 5;
  std::string draft;

  void add_to(CLI::App* cmd) {
    cmd->add_option("--max-new-tokens,-n", max_new_tokens,
                    "Tokens to generate, >= 1 (default: generation_config.json); cut to what "
                    "fits the context")
        ->check(int_range(1, std::numeric_limits<int32_t>::max()));
    cmd->add_option("--ctx-size,-c", ctx_size,
                    "Context length: prompt + generated tokens (default: the model's "
                    "max_position_embeddings; a longer prompt is an error)")
        ->check(int_range(1, kMaxCtx));
    auto* greedy_flag = cmd->add_flag("--greedy", greedy, "Greedy decoding (do_sample=false)");
    std::vector<CLI::Option*> sampling = {
        cmd->add_option("--temperature", temperature, "Sampling temperature (implies sampling)")
            ->check(in_range(0, 100, /*lo_open=*/true)),
        cmd->add_option("--top-k", top_k, "Top-k filtering (0 disables; implies sampling)")
            ->check(int_range(0, std::numeric_limits<int32_t>::max())),
        cmd->add_option("--top-p", top_p, "Nucleus filtering (implies sampling)")
            ->check(in_range(0, 1, /*lo_open=*/true)),
        cmd->add_option("--min-p", min_p, "Min-p filtering (implies sampling)")
            ->check(in_range(0, 1)),
        cmd->add_option("--typical-p", typical_p, "Locally typical filtering (implies sampling)")
            ->check(in_range(0, 1, /*lo_open=*/true))};
    for (auto* o : sampling) greedy_flag->excludes(o);
    cmd->add_option("--repetition-penalty", repetition_penalty, "HF repetition penalty")
        ->check(in_range(0, 100, /*lo_open=*/true));
    cmd->add_option("--no-repeat-ngram-size", no_repeat_ngram_size, "Ban repeated n-grams")
        ->check(int_range(0, 1 << 20));
    cmd->add_option("--num-beams", num_beams,
                    "Beam search with this many beams (1.." + std::to_string(kMaxBeams) + ")")
        ->check(int_range(1, kMaxBeams));
    cmd->add_option("--seed", seed,
                    "RNG seed for sampling (default: a random one, printed with the timings "
                    "and in --json)");
    cmd->add_option("--stop", stop, "Stop string (repeatable)");
    add_threads_option(cmd, threads);
    cmd->add_option("--dtype", dtype, "Weights in memory: f32, bf16 or f16 (default: as stored)")
        ->check(CLI::IsMember({"f32", "bf16", "f16"}));
    cmd->add_option("--quantize", quantize, "Quantize 2-D weights at load to this ggml block type")
        ->check(CLI::IsMember(quant::quantize_type_names()));
    cmd->add_option("--kv-type", kv_type,
                    "KV cache storage: f32 (default), f16 or q8_0 (head_dim a multiple of 32)")
        ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
    cmd->add_option("--tokenizer", tokenizer,
                    "Tokenizer: a tokenizer.json, tokenizer.model, .gguf or model directory "
                    "(default: the model's)");
    add_verify_key_option(cmd, verify_key);
    cmd->add_option("--watermark", watermark,
                    "Watermark the output as transformers' WatermarkLogitsProcessor does "
                    "(Kirchenbauer et al.): optional gamma=0.25,delta=2,seeding_scheme=lefthash|"
                    "selfhash,context_width=1,hashing_key=15485863 (docs/safety.md)")
        ->expected(0, 1)
        ->check(watermark_spec_validator());
    auto* pl = cmd->add_option("--prompt-lookup", prompt_lookup,
                               "Speculative decoding by prompt lookup: up to N candidate tokens "
                               "per step copied from the context after an earlier occurrence of "
                               "its last n-gram (transformers' prompt_lookup_num_tokens; same "
                               "output as without it)")
                   ->check(int_range(1, 1024));
    cmd->add_option("--prompt-lookup-ngram", prompt_lookup_ngram,
                    "Longest n-gram --prompt-lookup matches (max_matching_ngram_size, default 2)")
        ->check(int_range(1, 64));
    auto* dr = cmd->add_option("--draft", draft,
                               "Speculative decoding with this draft model (directory, .gguf or "
                               "Hub id; the same vocabulary): it proposes --draft-tokens tokens "
                               "per step, the model verifies them in one forward (same output "
                               "as without it when greedy; the model's distribution when "
                               "sampling)");
    dr->excludes(pl);
    cmd->add_option("--draft-tokens", draft_tokens,
                    "Tokens the --draft model proposes per step (default 5)")
        ->check(int_range(1, 256));
    cmd->add_flag("--quiet,-q", quiet, "No progress or timings on stderr (errors still)");
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
    if (watermark) g.watermarking_config = generation::parse_watermark_spec(*watermark);
  }
};

struct Loaded {
  ModelSource src;  // the model argument, resolved once for the tokenizer, weights and template
  tokenizers::AutoTokenizer tok;
  std::unique_ptr<CausalLM> model;
  std::unique_ptr<CausalLM> draft;  // --draft
  generation::SpeculativeOptions spec;
  GenerationConfig gen;
  double load_seconds = 0;
  int64_t model_ctx = 0;  // max_position_embeddings (0: unknown)
  int64_t ctx = 0;        // the context in use: --ctx-size, else model_ctx, else kMaxCtx
};

// --draft: the draft model (weights as stored, the model's threads and KV type), whose
// tokenizer must be the model's: the same vocabulary size and the same token at every id.
std::unique_ptr<CausalLM> load_draft(const SamplingFlags& f, const Loaded& l) {
  const ModelSource src = resolve_model(f.draft);
  const tokenizers::AutoTokenizer dtok = load_tokenizer(src.path, "");
  const auto& a = l.tok.tokenizer();
  const auto& b = dtok.tokenizer();
  if (a.vocab_size() != b.vocab_size())
    throw UsageError("--draft " + f.draft + ": its vocabulary has " +
                     std::to_string(b.vocab_size()) + " tokens, the model's " +
                     std::to_string(a.vocab_size()) +
                     ": speculative decoding needs the model's tokenizer");
  for (size_t i = 0; i < a.vocab_size(); ++i) {
    const auto id = static_cast<TokenId>(i);
    if (a.id_to_token(id) != b.id_to_token(id))
      throw UsageError("--draft " + f.draft + ": token " + std::to_string(i) + " is " +
                       b.id_to_token(id).value_or("(none)") + " there and " +
                       a.id_to_token(id).value_or("(none)") +
                       " in the model: speculative decoding needs the model's tokenizer");
  }
  LoadOptions lo;
  lo.threads = f.threads;
  auto draft = AutoModelForCausalLM::from_pretrained(src, lo).release();
  if (!f.kv_type.empty()) draft->set_kv_type(*dtype_from_name(f.kv_type));
  if (draft->vocab_size() != l.model->vocab_size())
    throw UsageError("--draft " + f.draft + ": its vocabulary has " +
                     std::to_string(draft->vocab_size()) + " rows, the model's " +
                     std::to_string(l.model->vocab_size()) +
                     ": speculative decoding needs the same vocabulary");
  return draft;
}

Loaded load(const std::string& model, const SamplingFlags& f) {
  const auto t0 = Clock::now();
  ModelSource src = resolve_model(model);
  verify_model_if_asked(src.path, f.verify_key);  // before any file of the model is parsed
  // The tokenizer first: a missing one is reported before the weights are read.
  Loaded l{src, load_tokenizer(src.path, f.tokenizer), nullptr, nullptr, {}, {}, 0, 0, 0};
  LoadOptions lo;
  lo.threads = f.threads;
  if (!f.dtype.empty()) lo.dtype = dtype_from_name(f.dtype);
  if (!f.quantize.empty()) lo.quantize = dtype_from_name(f.quantize);
  // Speculative decoding gives plain greedy's output only where a verified row's logits do not
  // depend on how many rows share the forward: on AVX-512 CPUs the AVX-512 table's
  // batch-invariant variant, chosen before the weights load so that it packs them (one Q4_0
  // kernel at every M, docs/serving.md).
  if ((f.prompt_lookup > 0 || !f.draft.empty()) &&
      &kernels::batch_invariant_table() != &kernels::active()) {
    kernels::set_active(&kernels::batch_invariant_table());
    if (!f.quiet)
      std::cerr << "ohm: batch-invariant AVX-512 kernels for speculative decoding (the "
                   "output is plain greedy's)\n";
  }
  auto pretrained = AutoModelForCausalLM::from_pretrained(src, lo);
  l.gen = pretrained.generation_config();  // generation_config.json, else from the config
  l.model = std::move(pretrained).release();
  if (!f.kv_type.empty()) l.model->set_kv_type(*dtype_from_name(f.kv_type));
  if (l.gen.eos_token_id.empty())
    if (auto e = l.tok.eos_token_id()) l.gen.eos_token_id = {*e};
  if (!l.gen.pad_token_id)
    if (auto p = l.tok.pad_token_id()) l.gen.pad_token_id = *p;
  f.apply(l.gen);
  l.spec.prompt_lookup = f.prompt_lookup;
  l.spec.max_matching_ngram = f.prompt_lookup_ngram;
  l.spec.draft_tokens = f.draft_tokens;
  if (!f.draft.empty()) {
    l.draft = load_draft(f, l);
    l.spec.draft = l.draft.get();
  }
  // Sampling without a seed gets a random one (reported, so a run can be repeated).
  if (l.gen.do_sample && !l.gen.seed)
    l.gen.seed = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  const auto& c = l.model->decoder_config();
  l.model_ctx = std::max<int64_t>(0, c.max_position_embeddings);
  if (f.ctx_size && l.model_ctx > 0 && *f.ctx_size > l.model_ctx)
    throw UsageError("--ctx-size " + std::to_string(*f.ctx_size) +
                     " exceeds the model's context length (max_position_embeddings " +
                     std::to_string(l.model_ctx) + ")");
  l.ctx = f.ctx_size ? *f.ctx_size : l.model_ctx > 0 ? l.model_ctx : kMaxCtx;
  l.load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!f.quiet)
    std::cerr << "ohm: loaded " << model << " (" << c.model_type << ", " << c.num_hidden_layers
              << " layers, vocab " << c.vocab_size << ", context " << l.ctx << ") in "
              << fmt_seconds(l.load_seconds) << " s\n";
  return l;
}

// The generation budget of one prompt against the context: a prompt that leaves no room is a
// usage error; more new tokens than fit are cut to the context's end (noted unless --quiet).
GenerationConfig fit_context(const Loaded& l, const SamplingFlags& f, int64_t prompt_len,
                             const char* what) {
  GenerationConfig g = l.gen;
  if (prompt_len >= l.ctx) {
    const bool can_grow = l.model_ctx > 0 ? l.ctx < l.model_ctx : l.ctx < kMaxCtx;
    throw UsageError(std::string(what) + " is " + std::to_string(prompt_len) +
                     " tokens, but the context holds " + std::to_string(l.ctx) + " (" +
                     (f.ctx_size ? "--ctx-size " + std::to_string(*f.ctx_size)
                                 : std::string("the model's context length, --ctx-size")) +
                     (l.model_ctx > 0 && f.ctx_size
                          ? "; the model's context length is " + std::to_string(l.model_ctx)
                          : std::string()) +
                     ") and at least one token must be generated: shorten it" +
                     (can_grow ? " or raise --ctx-size" : ""));
  }
  const int64_t room = l.ctx - prompt_len;
  const int64_t want = g.max_new_tokens ? *g.max_new_tokens : g.max_length - prompt_len;
  if (want > room) {
    if (f.max_new_tokens && !f.quiet)
      std::cerr << "ohm: note: --max-new-tokens " << want << " does not fit the context ("
                << prompt_len << " prompt tokens of " << l.ctx << "): at most " << room
                << " tokens are generated\n";
    g.max_new_tokens = room;
  }
  return g;
}

std::function<bool(const std::vector<TokenId>&)> stop_for(const Loaded& l) {
  if (l.gen.stop_strings.empty()) return {};
  const tokenizers::AutoTokenizer* tok = &l.tok;
  return generation::stop_strings_criterion(
      l.gen.stop_strings, [tok](const std::vector<TokenId>& ids) { return tok->decode(ids); });
}

std::atomic<bool> g_interrupted{false};
void on_sigint(int) {
  g_interrupted = true;
}

// "accepted A of D drafted tokens (P%)".
std::string acceptance(int64_t accepted, int64_t drafted) {
  return "accepted " + std::to_string(accepted) + " of " + std::to_string(drafted) +
         " drafted tokens (" +
         fmt_rate(drafted > 0 ? 100.0 * static_cast<double>(accepted) / static_cast<double>(drafted)
                              : 0.0) +
         "%)";
}

// ---- ohm generate ----------------------------------------------------------------------------

struct GenerateCmd {
  std::string model, prompt, file, json_schema;
  bool json = false, have_prompt = false, json_object = false;
  int json_whitespace = 20;
  SamplingFlags f;
};

// --json-schema FILE / --json-object: the output is constrained to the schema (structured
// output, docs/serving.md). Compiled before the model loads, so schema errors come first; they
// name the file and the JSON pointer.
std::optional<generation::Grammar> output_grammar(const GenerateCmd& o) {
  const generation::JsonGrammarOptions jo{o.json_whitespace};
  if (o.json_object) return generation::Grammar::any_json_object(jo);
  if (o.json_schema.empty()) return std::nullopt;
  const std::string text = read_text("--json-schema", o.json_schema);
  try {
    return generation::Grammar::json_schema_cached(text, jo);
  } catch (const InvalidArgument& e) {
    throw UsageError("--json-schema " + o.json_schema + ": " + e.what());
  }
}

void constrain_output(const std::optional<generation::Grammar>& g, const Loaded& l,
                      generation::GenerateOptions& opt) {
  if (!g) return;
  if (l.gen.num_beams > 1)
    throw UsageError("--json-schema / --json-object decode one sequence: not with --num-beams");
  std::vector<TokenId> eos(opt.config.eos_token_id.begin(), opt.config.eos_token_id.end());
  if (eos.empty())
    throw UsageError(
        "--json-schema / --json-object need an EOS token (generation_config.json "
        "eos_token_id) to end the output");
  opt.constraint = std::make_shared<generation::GrammarLogitsProcessor>(
      *g, generation::TokenBytes::from_tokenizer(l.tok.tokenizer()), std::move(eos));
}

int run_generate(const GenerateCmd& o) {
  if (!o.have_prompt)
    throw UsageError("give the prompt: --prompt TEXT, --prompt - (stdin) or --file FILE");
  std::string prompt = !o.file.empty()   ? read_text("--file", o.file)
                       : o.prompt == "-" ? read_text("--prompt", "-")
                                         : o.prompt;
  // A file's (or a pipe's) final newline is not part of the prompt, as llama.cpp's -f.
  if (!o.file.empty() || o.prompt == "-") {
    if (prompt.ends_with("\n")) prompt.pop_back();
    if (prompt.ends_with("\r")) prompt.pop_back();
  }
  const auto grammar = output_grammar(o);
  Loaded l = load(o.model, o.f);
  const std::vector<TokenId> prompt_ids = l.tok.encode(prompt, /*add_special_tokens=*/true);
  generation::GenerateOptions opt;
  opt.config = fit_context(l, o.f, static_cast<int64_t>(prompt_ids.size()), "the prompt");
  opt.stop = stop_for(l);
  opt.cancel = &g_interrupted;
  constrain_output(grammar, l, opt);
  if (l.spec.enabled()) {
    if (l.gen.num_beams > 1)
      throw UsageError("--prompt-lookup / --draft decode one sequence: not with --num-beams");
    if (grammar)
      throw UsageError("--prompt-lookup / --draft: not with --json-schema / --json-object");
    opt.speculative = l.spec;
  }
  std::signal(SIGINT, on_sigint);
  const bool stream = !o.json && l.gen.num_beams == 1;
  tokenizers::DecodeStream ds(l.tok.tokenizer(), /*skip_special_tokens=*/true);
  if (stream) {
    std::cout << prompt << std::flush;
    opt.on_token = [&](int64_t, TokenId tok) {
      if (auto piece = ds.step(tok)) std::cout << *piece << std::flush;
      return true;
    };
  }
  const auto out = generation::generate(*l.model, {prompt_ids}, opt);
  const std::vector<TokenId> gen(out.sequences[0].begin() + out.prompt_lengths[0],
                                 out.sequences[0].end());
  const std::string text = l.tok.decode(gen, /*skip_special_tokens=*/true);
  const double n_gen = static_cast<double>(gen.size());
  const double n_prompt = static_cast<double>(prompt_ids.size());
  const double decode_rate = out.decode_seconds > 0 ? n_gen / out.decode_seconds : 0;
  if (o.json) {
    json j = {{"text", text},
              {"tokens", gen},
              {"prompt_tokens", prompt_ids.size()},
              {"finish_reason", generation::to_string(out.finish_reasons[0])},
              {"seed", l.gen.do_sample ? json(*l.gen.seed) : json(nullptr)},
              {"timings",
               {{"load_s", round_to(l.load_seconds, 4)},
                {"prefill_s", round_to(out.prefill_seconds, 4)},
                {"decode_s", round_to(out.decode_seconds, 4)},
                {"prefill_tok_s",
                 round_to(out.prefill_seconds > 0 ? n_prompt / out.prefill_seconds : 0, 2)},
                {"decode_tok_s", round_to(decode_rate, 2)}}}};
    if (l.spec.enabled()) {
      j["timings"]["drafted_tokens"] = out.drafted_tokens;
      j["timings"]["accepted_tokens"] = out.accepted_tokens;
      j["timings"]["acceptance_rate"] = round_to(
          out.drafted_tokens > 0
              ? static_cast<double>(out.accepted_tokens) / static_cast<double>(out.drafted_tokens)
              : 0.0,
          4);
    }
    if (l.gen.num_beams > 1) j["sequence_score"] = out.sequences_scores[0];
    std::cout << j.dump() << "\n";
  } else {
    if (!stream) std::cout << prompt << text;
    std::cout << "\n";
    if (!o.f.quiet)
      std::cerr << "ohm: " << prompt_ids.size() << " prompt tokens in "
                << fmt_seconds(out.prefill_seconds) << " s, " << gen.size() << " tokens in "
                << fmt_seconds(out.decode_seconds) << " s (" << fmt_rate(decode_rate) << " tok/s), "
                << generation::to_string(out.finish_reasons[0])
                << (l.gen.do_sample ? ", seed " + std::to_string(*l.gen.seed) : std::string())
                << (l.spec.enabled() ? ", " + acceptance(out.accepted_tokens, out.drafted_tokens)
                                     : std::string())
                << "\n";
  }
  if (out.finish_reasons[0] == generation::FinishReason::Cancelled) return 130;
  return 0;
}

// ---- ohm chat --------------------------------------------------------------------------------

struct ChatCmd {
  std::string model, system, history;
  bool no_history = false;
  SamplingFlags f;
  GuardFlags guard;
};

// The chat's conversation as the content filter's turns.
std::vector<guard::Turn> turns_of(const chat::ojson& messages) {
  std::vector<guard::Turn> t;
  for (const auto& m : messages)
    t.push_back({m.value("role", ""), m.contains("content") && m["content"].is_string()
                                          ? m["content"].get<std::string>()
                                          : std::string()});
  return t;
}

std::string blocked_note(const guard::Decision& d) {
  std::string s = "[blocked by the content filter";
  for (size_t i = 0; i < d.categories.size(); ++i)
    s += (i ? ", " : ": ") + d.categories[i] + " " + guard::category_name(d.categories[i]);
  if (d.malformed) s += d.categories.empty() ? ": unreadable guard verdict" : "; unreadable";
  return s + "]";
}

int run_chat(const ChatCmd& o) {
  if (o.f.num_beams && *o.f.num_beams > 1)
    throw UsageError("--num-beams " + std::to_string(*o.f.num_beams) +
                     ": chat decodes one sequence (beam search is in `ohm generate`)");
  Loaded l = load(o.model, o.f);
  l.gen.num_beams = 1;  // a generation_config.json's beams do not apply to a chat session
  const auto tmpl = chat::ChatTemplate::load(l.src.path);
  generation::Session session(*l.model, l.gen, l.gen.seed.value_or(0));
  session.set_speculative(l.spec);
  std::unique_ptr<guard::ContentFilter> filter;
  if (auto g = o.guard.options(o.f.threads)) filter = std::make_unique<guard::ContentFilter>(*g);
  // Responses the filter checks are shown once checked (not streamed).
  const bool hold = filter && filter->checks_response();
  chat::ojson messages = chat::ojson::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  std::signal(SIGINT, on_sigint);
  const bool tty = ::isatty(STDIN_FILENO);
  LineReader reader(tty, o.no_history        ? std::string()
                         : o.history.empty() ? default_chat_history()
                                             : o.history);
  if (tty && !o.f.quiet)
    std::cerr << "ohm chat: type a message; /reset clears the conversation, /exit quits"
              << (reader.editing() ? " (line editing and history on)" : "") << "\n";
  if (l.gen.do_sample && !o.f.quiet) std::cerr << "ohm chat: seed " << *l.gen.seed << "\n";
  std::string line;
  for (;;) {
    g_interrupted = false;
    if (!reader.read("> ", line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages = chat::ojson::array();
      if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({{"role", "user"}, {"content", line}});
    if (filter && filter->checks_prompt()) {
      const guard::Decision d = filter->check_prompt(turns_of(messages));
      if (!d.allowed) {
        std::cout << blocked_note(d) << "\n";
        messages.erase(messages.size() - 1);  // the turn is dropped
        continue;
      }
    }
    chat::ChatOptions copt;
    copt.add_generation_prompt = true;
    const std::string prompt = tmpl.apply(messages, copt);
    const std::vector<TokenId> ids = l.tok.encode(prompt, /*add_special_tokens=*/false);
    try {
      session.config() = fit_context(l, o.f, static_cast<int64_t>(ids.size()), "the conversation");
    } catch (const UsageError& e) {
      // Not fatal in a chat: the turn is dropped and the user can /reset.
      std::cerr << "ohm chat: " << e.what() << "; /reset starts a new conversation\n";
      messages.erase(messages.size() - 1);
      continue;
    }
    tokenizers::DecodeStream ds(l.tok.tokenizer(), /*skip_special_tokens=*/true);
    const auto t0 = Clock::now();
    const auto gen = session.generate(
        ids,
        [&](TokenId tok) {
          if (auto piece = ds.step(tok); piece && !hold) std::cout << *piece << std::flush;
          return true;
        },
        stop_for(l), &g_interrupted);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    std::string reply = l.tok.decode(gen, /*skip_special_tokens=*/true);
    if (hold) {
      const guard::Decision d = filter->check_response(turns_of(messages), reply);
      if (!d.allowed) reply = blocked_note(d);  // the history keeps the note, not the text
      std::cout << reply;
    }
    std::cout << "\n";
    if (!o.f.quiet)
      std::cerr << "ohm: " << gen.size() << " tokens, "
                << fmt_rate(dt > 0 ? static_cast<double>(gen.size()) / dt : 0) << " tok/s, "
                << session.reused_last() << " context tokens reused from the cache"
                << (l.spec.enabled()
                        ? ", " + acceptance(session.accepted_last(), session.drafted_last())
                        : std::string())
                << "\n";
    messages.push_back({{"role", "assistant"}, {"content", reply}});
  }
  return 0;
}

const char* kModelFooter =
    "MODEL: a local directory (config.json + safetensors), a .gguf or .safetensors file, or a\n"
    "Hub id org/name[@revision] in the HF cache. The prompt and generated tokens must fit the\n"
    "context (--ctx-size, default the model's max_position_embeddings): a longer prompt is an\n"
    "error, and generation stops at the context's end. Exit status: 0, 1 runtime error, 2 usage\n"
    "error, 130 interrupted (Ctrl-C).";

const Register reg_generate("generate", [](CLI::App& app) {
  auto o = std::make_shared<GenerateCmd>();
  auto* cmd =
      app.add_subcommand("generate", "Generate text from a prompt (transformers semantics)");
  cmd->add_option("model", o->model, "Model directory, .gguf file or Hub id")->required();
  auto* p = cmd->add_option("--prompt,-p", o->prompt,
                            "The prompt ('-': read it from stdin, without its final newline)");
  auto* f = cmd->add_option("--file,-f", o->file,
                            "Read the prompt from a file ('-': stdin), without its final newline")
                ->check(readable_file(/*allow_stdin=*/true));
  p->excludes(f);
  cmd->add_flag("--json", o->json,
                "Print {\"text\", \"tokens\", \"prompt_tokens\", \"finish_reason\", \"seed\", "
                "\"timings\"}");
  auto* js = cmd->add_option("--json-schema", o->json_schema,
                             "Constrain the output to JSON valid against this JSON schema file "
                             "(structured output; the subset in docs/serving.md)")
                 ->check(readable_file());
  cmd->add_flag("--json-object", o->json_object, "Constrain the output to a JSON object")
      ->excludes(js);
  cmd->add_option("--json-whitespace", o->json_whitespace,
                  "With --json-schema/--json-object: spaces or tabs allowed after each line "
                  "break JSON may have (default 20; 0: compact JSON)")
      ->check(int_range(0, 64));
  o->f.add_to(cmd);
  cmd->footer(kModelFooter);
  return Command{cmd, [o, p, f] {
                   o->have_prompt = p->count() > 0 || f->count() > 0;
                   return run_generate(*o);
                 }};
});

const Register reg_chat("chat", [](CLI::App& app) {
  auto o = std::make_shared<ChatCmd>();
  auto* cmd = app.add_subcommand(
      "chat",
      "Interactive chat with the model's chat template (streams tokens, keeps the KV cache)");
  cmd->add_option("model", o->model, "Model directory, .gguf file or Hub id")->required();
  cmd->add_option("--system", o->system, "System message");
  cmd->add_option("--history", o->history,
                  "History file of the line editor (default: ~/.ohm_chat_history)");
  cmd->add_flag("--no-history", o->no_history, "Do not read or write a history file");
  o->f.add_to(cmd);
  o->guard.add_to(cmd);
  cmd->footer(std::string(kModelFooter) +
              "\nOn a terminal, lines are edited with libedit (arrows, Ctrl-R search, history).");
  return Command{cmd, [o] { return run_chat(*o); }};
});

}  // namespace

}  // namespace ohm::cli
