// `ohm imatrix MODEL --file TEXT [--out imatrix.gguf] [--ctx-size 512] [--chunks N]
// [--process-output] [--threads N]`: an importance matrix as llama.cpp's llama-imatrix computes
// and writes it (tools/imatrix/imatrix.cpp): the text is cut into chunks of --ctx-size tokens
// (the first token of each replaced by BOS when the tokenizer adds one) and run chunk by chunk
// as llama-perplexity does; for every matrix multiplication by a weight blk.N.* (and
// output.weight with --process-output) the squares of its input rows are summed per input column
// (in f32, row after row) and the rows counted. The file is GGUF: general.type "imatrix",
// imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size, and per weight NAME.in_sum2
// (f32 [cols]) and NAME.counts (f32 [1]), names sorted. llama-quantize (and
// `ohm quantize --imatrix`) use in_sum2 / counts, the mean squared activation, as the weights of
// the quantizers' error.

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <string>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/atomic_file.h"
#include "ohm/core/error.h"
#include "ohm/eval/perplexity.h"
#include "ohm/formats/gguf.h"
#include "ohm/formats/gguf_writer.h"
#include "ohm/formats/model_source.h"
#include "ohm/models/causal_lm.h"
#include "ohm/nn/layers.h"
#include "ohm/tokenizers/tokenizer.h"
#include "quantize_common.h"

namespace ohm::cli {

Imatrix load_imatrix(const std::string& path) {
  const auto f = gguf::GGUFFile::open(path);
  auto ctx = [&] { return ErrorContext().file(path); };
  Imatrix m;
  m.file = path;
  if (const auto t = f.get_string("general.type"); t && *t != "imatrix")
    throw FormatError(ctx().key("general.type"), "is '" + *t + "', not 'imatrix'");
  const auto datasets = f.get_string_array("imatrix.datasets");
  const auto chunks = f.get_int("imatrix.chunk_count");
  if (!datasets || !chunks || !f.get_int("imatrix.chunk_size"))
    throw FormatError(ctx().key(!datasets ? "imatrix.datasets"
                                : !chunks ? "imatrix.chunk_count"
                                          : "imatrix.chunk_size"),
                      "missing: not an importance matrix file from llama-imatrix or ohm imatrix "
                      "(the legacy .dat format is not read)");
  m.datasets = *datasets;
  m.chunk_count = *chunks;
  const std::string sums = ".in_sum2", counts = ".counts";
  auto ends = [](const std::string& s, const std::string& suf) {
    return s.size() > suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  for (const auto& ti : f.tensors()) {
    if (!ends(ti.name, sums)) {
      if (!ends(ti.name, counts))
        throw FormatError(ctx().tensor(ti.name), "neither NAME.in_sum2 nor NAME.counts");
      continue;
    }
    const std::string name = ti.name.substr(0, ti.name.size() - sums.size());
    const auto* ci = f.find_tensor(name + counts);
    if (!ci) throw FormatError(ctx().tensor(ti.name), "has no " + name + counts);
    // ggml writes [cols, n_mat] (ne order) with trailing 1s dropped: [cols] for one matrix.
    const int64_t n_mat = static_cast<int64_t>(ci->numel);
    if (ti.dtype != DType::F32 || ci->dtype != DType::F32 || n_mat < 1 ||
        ti.numel % static_cast<uint64_t>(n_mat) != 0 || ti.shape.size() > 2 ||
        (ti.shape.size() == 2 && ti.shape[0] != n_mat))
      throw FormatError(ctx().tensor(ti.name),
                        "in_sum2 must be f32 [n_mat, cols] with f32 counts of n_mat values");
    const Tensor s = f.tensor(ti.name), c = f.tensor(name + counts);
    const int64_t cols = static_cast<int64_t>(ti.numel) / n_mat;
    std::vector<float> v(static_cast<size_t>(n_mat * cols));
    for (int64_t j = 0; j < n_mat; ++j) {
      const float count = c.data<float>()[j];
      for (int64_t i = 0; i < cols; ++i)
        v[static_cast<size_t>(j * cols + i)] =
            count > 0.0f ? s.data<float>()[j * cols + i] / count : 1.0f;
    }
    for (float x : v)
      if (!std::isfinite(x)) throw FormatError(ctx().tensor(ti.name), "holds a non-finite value");
    m.values[name] = std::move(v);
  }
  if (m.values.empty()) throw FormatError(ctx(), "holds no importance data");
  return m;
}

namespace {

namespace fs = std::filesystem;

// Sums x^2 per input column of every observed weight, as llama-imatrix's collect_imatrix.
class Collector : public nn::LinearObserver {
 public:
  Collector(bool permute, bool output) : permute_(permute), output_(output) {}
  void on_linear(const std::string& prefix, const float* x, int64_t M, int64_t K) override {
    if (M < 16) return;  // llama-imatrix skips batches under 16 tokens
    auto it = names_.find(prefix);
    if (it == names_.end()) {
      std::string g;
      if (const auto m = hf_to_gguf_name(prefix + ".weight", permute_)) g = m->first;
      const bool want = g.rfind("blk.", 0) == 0 || (output_ && g == "output.weight");
      it = names_.emplace(prefix, want ? g : std::string()).first;
    }
    if (it->second.empty()) return;
    Stat& s = stats_[it->second];
    if (s.values.empty()) s.values.assign(static_cast<size_t>(K), 0.0f);
    if (static_cast<int64_t>(s.values.size()) != K)
      throw ShapeError(
          ErrorContext().tensor(it->second),
          "inputs of " + std::to_string(K) + " columns after " + std::to_string(s.values.size()));
    for (int64_t r = 0; r < M; ++r) {
      const float* row = x + r * K;
      for (int64_t j = 0; j < K; ++j) s.values[static_cast<size_t>(j)] += row[j] * row[j];
    }
    s.count += M;
  }
  struct Stat {
    std::vector<float> values;
    int64_t count = 0;
  };
  const std::map<std::string, Stat>& stats() const { return stats_; }

 private:
  bool permute_, output_;
  std::map<std::string, std::string> names_;  // Linear prefix -> GGUF name ("" ignored)
  std::map<std::string, Stat> stats_;         // by GGUF name (sorted, as llama-imatrix writes)
};

struct ImatrixOptions {
  std::string model, file, out = "imatrix.gguf", tokenizer, verify_key;
  int64_t ctx = 512, chunks = -1;
  int threads = 0;
  bool process_output = false, quiet = false;
};

int run_imatrix(const ImatrixOptions& o) {
  const std::string text = read_text("--file", o.file);
  if (fs::is_directory(o.out)) throw UsageError("--out '" + o.out + "' is a directory");
  LoadOptions lo;
  lo.threads = o.threads;
  const ModelSource src = resolve_model(o.model);
  verify_model_if_asked(src.path, o.verify_key);
  auto tok = load_tokenizer(src.path, o.tokenizer);
  auto model = load_causal_lm(src.path, lo);
  const std::vector<TokenId> ids = tok.encode(text, /*add_special_tokens=*/true);
  if (static_cast<int64_t>(ids.size()) < o.ctx)
    throw UsageError("--file '" + o.file + "' is " + std::to_string(ids.size()) +
                     " tokens, shorter than one chunk of --ctx-size " + std::to_string(o.ctx));
  eval::PerplexityOptions opt;
  opt.n_ctx = o.ctx;
  if (o.chunks > 0) opt.max_chunks = o.chunks;
  if (auto bos = tok.bos_token_id(); bos && !ids.empty() && ids.front() == *bos) opt.bos_id = *bos;
  if (!o.quiet)
    opt.on_chunk = [](int64_t c, double p) {
      std::cerr << "[" << c << "]" << std::fixed << std::setprecision(4) << p << " " << std::flush;
    };
  // The Linear prefixes are HF names for every source; LLaMA q/k names need no permutation
  // flag here (only the GGUF name is looked up).
  Collector col(/*permute=*/false, o.process_output);
  nn::LinearObserver* prev = nn::set_linear_observer(&col);
  eval::PerplexityResult r;
  try {
    r = eval::perplexity(*model, ids, opt);
  } catch (...) {
    nn::set_linear_observer(prev);
    throw;
  }
  nn::set_linear_observer(prev);
  if (!o.quiet) std::cerr << "\n";
  if (col.stats().empty())
    throw UnsupportedError(ErrorContext().file(src.path),
                           "no matrix multiplication by a blk.N weight was seen (the "
                           "architecture's names have no GGUF mapping)");

  gguf::GGUFWriter w;
  w.add_string("general.type", "imatrix");
  w.add_string_array("imatrix.datasets", {o.file});
  w.add_uint32("imatrix.chunk_count", static_cast<uint32_t>(r.chunks));
  w.add_uint32("imatrix.chunk_size", static_cast<uint32_t>(o.ctx));
  for (const auto& [name, s] : col.stats()) {
    // One matrix: [cols] and [1], as ggml writes [cols, 1] and [1, 1] (trailing 1s dropped).
    Tensor sums = Tensor::empty(DType::F32, {static_cast<int64_t>(s.values.size())});
    std::copy(s.values.begin(), s.values.end(), sums.mutable_data<float>());
    Tensor counts = Tensor::empty(DType::F32, {1});
    counts.mutable_data<float>()[0] = static_cast<float>(s.count);
    w.add_tensor(name + ".in_sum2", sums);
    w.add_tensor(name + ".counts", counts);
  }
  write_file_atomic(o.out, [&](const std::string& tmp) { w.write(tmp); });
  std::cout << "wrote " << o.out << ": " << col.stats().size() << " matrices, " << r.chunks
            << " chunks of " << o.ctx << " tokens; PPL = " << std::fixed << std::setprecision(4)
            << r.ppl << " +/- " << std::setprecision(5) << r.ppl_err << "\n";
  return 0;
}

const Register reg("imatrix", [](CLI::App& app) {
  auto o = std::make_shared<ImatrixOptions>();
  auto* cmd = app.add_subcommand(
      "imatrix",
      "Compute an importance matrix (llama-imatrix's GGUF format) for ohm quantize --imatrix");
  cmd->add_option("model", o->model, "Model directory, .gguf file or Hub id")->required();
  cmd->add_option("--file,-f", o->file, "Calibration text ('-': stdin)")
      ->required()
      ->check(readable_file(/*allow_stdin=*/true));
  cmd->add_option("--out,-o", o->out, "Output file (default imatrix.gguf)");
  cmd->add_option("--ctx-size,--ctx,-c", o->ctx, "Tokens per chunk (default 512)")
      ->check(int_range(16, int64_t{1} << 20));
  cmd->add_option("--chunks", o->chunks, "At most this many chunks (default: all)")
      ->check(int_range(1, std::numeric_limits<int32_t>::max()));
  cmd->add_flag("--process-output", o->process_output,
                "Also collect output.weight's inputs (llama-imatrix --process-output)");
  add_threads_option(cmd, o->threads);
  add_verify_key_option(cmd, o->verify_key);
  cmd->add_option("--tokenizer", o->tokenizer, "Tokenizer (default: the model's)");
  cmd->add_flag("--quiet,-q", o->quiet, "No progress on stderr");
  cmd->footer(
      "Runs the text chunk by chunk as `ohm perplexity` does and prints its perplexity; for each "
      "blk.N matrix it stores the sum of squared inputs per column and the number of rows "
      "(llama.cpp's tensor names, for any model ohm loads). docs/quantization.md has details.");
  return Command{cmd, [o] { return run_imatrix(*o); }};
});

}  // namespace
}  // namespace ohm::cli
