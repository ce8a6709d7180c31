// `ohm perplexity MODEL (--file F | --text T) [--ctx-size 512] [--chunks N] [--threads N]
// [--dtype f32|f16|bf16] [--quantize q8_0|q4_0|...] [--json]`: perplexity as llama.cpp's
// llama-perplexity computes it (see ohm/eval/perplexity.h), so the two compare on one file.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/eval/perplexity.h"
#include "ohm/formats/model_source.h"
#include "ohm/models/causal_lm.h"
#include "ohm/quant/quantize.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::cli {
namespace {

struct PplOptions {
  std::string model, file, text, dtype, quantize, tokenizer, verify_key;
  int64_t ctx = 512;
  int64_t chunks = -1;
  int threads = 0;
  bool json = false, quiet = false;
};

int run_ppl(const PplOptions& o) {
  const std::string text = o.file.empty() ? o.text : read_text("--file", o.file);
  if (text.empty()) throw UsageError("give a non-empty --file or --text");
  LoadOptions lo;
  lo.threads = o.threads;
  if (!o.dtype.empty()) lo.dtype = dtype_from_name(o.dtype);
  if (!o.quantize.empty()) lo.quantize = dtype_from_name(o.quantize);
  const ModelSource src = resolve_model(o.model);  // once, for the tokenizer and the weights
  verify_model_if_asked(src.path, o.verify_key);
  auto tok = load_tokenizer(src.path, o.tokenizer);
  auto model = load_causal_lm(src.path, lo);
  if (const int64_t ctx = model->decoder_config().max_position_embeddings; ctx > 0 && o.ctx > ctx)
    throw UsageError("--ctx-size " + std::to_string(o.ctx) +
                     " exceeds the model's context length (max_position_embeddings " +
                     std::to_string(ctx) + ")");
  const std::vector<TokenId> ids = tok.encode(text, /*add_special_tokens=*/true);
  eval::PerplexityOptions opt;
  opt.n_ctx = o.ctx;
  if (o.chunks > 0) opt.max_chunks = o.chunks;
  // llama.cpp replaces each chunk's first token with BOS when the vocabulary adds one.
  if (auto bos = tok.bos_token_id(); bos && !ids.empty() && ids.front() == *bos) opt.bos_id = *bos;
  if (!o.json && !o.quiet)
    opt.on_chunk = [](int64_t c, double p) {
      std::cerr << "[" << c << "]" << std::fixed << std::setprecision(4) << p << " " << std::flush;
    };
  if (static_cast<int64_t>(ids.size()) < o.ctx)
    throw UsageError("the text is " + std::to_string(ids.size()) +
                     " tokens, shorter than one chunk of --ctx-size " + std::to_string(o.ctx) +
                     " (use a longer text or a smaller --ctx-size)");
  if (!o.quiet) std::cerr << "ohm: " << ids.size() << " tokens, n_ctx " << o.ctx << "\n";
  const auto r = eval::perplexity(*model, ids, opt);
  if (o.json) {
    nlohmann::json j = {{"ppl", r.ppl},
                        {"ppl_err", r.ppl_err},
                        {"nll", r.nll},
                        {"tokens", ids.size()},
                        {"tokens_scored", r.tokens_scored},
                        {"chunks", r.chunks},
                        {"n_ctx", r.n_ctx},
                        {"seconds", round_to(r.seconds, 3)},
                        {"chunk_ppl", r.chunk_ppl}};
    std::cout << j.dump() << "\n";
  } else {
    if (!o.quiet) std::cerr << "\n";
    std::cout << "Final estimate: PPL = " << std::fixed << std::setprecision(4) << r.ppl << " +/- "
              << std::setprecision(5) << r.ppl_err << "\n";
  }
  return 0;
}

const Register reg_ppl("perplexity", [](CLI::App& app) {
  auto opt = std::make_shared<PplOptions>();
  auto* cmd = app.add_subcommand(
      "perplexity", "Perplexity of a text, computed as llama.cpp's llama-perplexity does");
  cmd->add_option("model", opt->model, "Model directory, .gguf file or Hub id")->required();
  auto* f = cmd->add_option("--file,-f", opt->file, "Text file ('-': stdin)")
                ->check(readable_file(/*allow_stdin=*/true));
  cmd->add_option("--text", opt->text, "Text")->excludes(f);
  cmd->add_option("--ctx-size,--ctx,-c", opt->ctx,
                  "Context per chunk, at most the model's context length (default 512; the "
                  "second half of each chunk is scored)")
      ->check(int_range(4, int64_t{1} << 20));
  cmd->add_option("--chunks", opt->chunks, "At most this many chunks (default: all)")
      ->check(int_range(1, std::numeric_limits<int32_t>::max()));
  add_threads_option(cmd, opt->threads);
  add_verify_key_option(cmd, opt->verify_key);
  cmd->add_option("--tokenizer", opt->tokenizer,
                  "Tokenizer: a tokenizer.json, tokenizer.model, .gguf or model directory "
                  "(default: the model's)");
  cmd->add_flag("--quiet,-q", opt->quiet, "No progress on stderr");
  cmd->add_option("--dtype", opt->dtype, "Convert weights at load: f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  cmd->add_option("--quantize", opt->quantize,
                  "Quantize 2-D weights at load to this ggml block type")
      ->check(CLI::IsMember(quant::quantize_type_names()));
  cmd->add_flag("--json", opt->json,
                "One JSON object: ppl, ppl_err, nll, tokens, tokens_scored, chunks, n_ctx, "
                "seconds, chunk_ppl");
  cmd->footer(
      "MODEL: a local directory, a .gguf or .safetensors file, or a Hub id in the HF cache.\n"
      "The text must hold at least --ctx-size tokens (one chunk); text after the last whole\n"
      "chunk is not scored.");
  return Command{cmd, [opt] { return run_ppl(*opt); }};
});

}  // namespace
}  // namespace ohm::cli
