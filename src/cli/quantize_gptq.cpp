// `ohm quantize MODEL OUT --method gptq|rtn --bits 4|8 --group-size N [--desc-act] [--sym]
// --calibration FILE [--samples 128] [--seq-len 2048] [--damp 0.01] [--threads N]`: an HF GPTQ
// checkpoint (v1 layout, ohm/quant/gptq.h) from an f32/f16/bf16 HF checkpoint.
//
// GPTQ goes block by block, as GPTQModel does. The calibration samples are embedded once and
// their activations [samples, seq_len, hidden] f32 kept between blocks. For block L: the samples
// run through block L of the model as stored (CausalLM::run_layer), and H = 2 X^T X is
// accumulated (f64, threaded) for every linear of block L from its real inputs (linears fed the
// same input, q/k/v or gate/up, share one H); each linear is quantized (rows in parallel) and its
// packed tensors written to the output at once; then the activations go through block L again,
// now with its dequantized GPTQ weights, and become block L+1's inputs. So memory is the
// activations, one block's weights in f32 and its Hessians (plus the input file's mmapped pages);
// nothing of the earlier blocks is kept. The result is bit for bit what running the whole model
// with blocks 0..L-1 replaced by their dequantized weights gives (run_layer's contract).
//
// The calibration text is tokenized without special tokens and cut into consecutive windows of
// --seq-len tokens from its start, --samples of them at most.
//
// Output: OUT/model.safetensors (per linear qweight/qzeros/scales/g_idx and its bias as stored;
// every other tensor copied as stored; the header, with every tensor's shape known in advance,
// is written first and each tensor at its offset as it is made), config.json with
// quantization_config, quantize_config.json, and the tokenizer and generation files copied. The
// directory is built as OUT.partial-PID and renamed to OUT at the end: on any error nothing is
// left at OUT.
#include "quantize_gptq.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common.h"
#include "ohm/core/error.h"
#include "ohm/core/thread_pool.h"
#include "ohm/formats/model_source.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/arch.h"
#include "ohm/models/causal_lm.h"
#include "ohm/nn/layers.h"
#include "ohm/nn/weights.h"
#include "ohm/quant/dequant.h"
#include "ohm/quant/gptq.h"
#include "ohm/tokenizers/tokenizer.h"
#include "quantize_common.h"

namespace ohm::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// "model.layers.12.mlp.down_proj" -> 12; -1 outside model.layers.N.
int64_t block_of(const std::string& name) {
  const std::string pre = "model.layers.";
  if (name.rfind(pre, 0) != 0) return -1;
  const size_t dot = name.find('.', pre.size());
  if (dot == std::string::npos || dot == pre.size()) return -1;
  int64_t v = 0;
  for (size_t i = pre.size(); i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

// The source checkpoint with some weights replaced (the dequantized blocks).
class OverlaySource : public nn::WeightSource {
 public:
  OverlaySource(const nn::WeightSource& base, const std::map<std::string, Tensor>& over)
      : base_(base), over_(over) {}
  std::optional<Tensor> find(const std::string& name) const override {
    if (auto it = over_.find(name); it != over_.end()) return it->second;
    return base_.find(name);
  }
  std::vector<std::string> names() const override { return base_.names(); }
  std::string describe() const override { return base_.describe(); }

 private:
  const nn::WeightSource& base_;
  const std::map<std::string, Tensor>& over_;
};

// Accumulates H for the linears of one block (the observer of run_layer on that block).
class HessianCollector : public nn::LinearObserver {
 public:
  HessianCollector(int64_t block, ThreadPool& pool) : block_(block), pool_(pool) {}
  void on_linear(const std::string& name, const float* x, int64_t M, int64_t K) override {
    if (block_of(name) != block_) return;
    auto it = index_.find(name);
    if (it == index_.end()) {
      // The same input as the previous linear (q/k/v, gate/up): share its H.
      size_t h = hs_.size();
      if (same_input(x, M, K) && !order_.empty())
        h = index_.at(order_.back());
      else
        hs_.emplace_back();
      it = index_.emplace(name, h).first;
      order_.push_back(name);
    }
    const bool same = last_h_ == it->second && same_input(x, M, K);
    last_x_ = x;
    last_m_ = M;
    last_k_ = K;
    last_h_ = it->second;
    last_copy_.assign(x, x + M * K);
    if (same) return;  // already added for this input
    quant::accumulate_hessian(hs_[it->second], x, M, K, pool_);
  }
  void new_sample() { last_x_ = nullptr; }
  // The previous linear's input, same buffer and same values (a reused buffer is not enough).
  bool same_input(const float* x, int64_t M, int64_t K) const {
    return last_x_ == x && last_m_ == M && last_k_ == K &&
           std::memcmp(last_copy_.data(), x, static_cast<size_t>(M * K) * sizeof(float)) == 0;
  }
  const std::vector<std::string>& order() const { return order_; }
  std::vector<double>& hessian(const std::string& name) { return hs_[index_.at(name)]; }
  // Frees the H of `name` once no linear after it in `names` shares it.
  void release_after(const std::string& name, const std::vector<std::string>& names) {
    const size_t h = index_.at(name);
    bool later = false, past = false;
    for (const auto& n : names) {
      if (past && index_.count(n) && index_.at(n) == h) later = true;
      if (n == name) past = true;
    }
    if (!later) std::vector<double>().swap(hs_[h]);
  }

 private:
  int64_t block_;
  ThreadPool& pool_;
  std::map<std::string, size_t> index_;
  std::vector<std::string> order_;
  std::vector<std::vector<double>> hs_;
  const float* last_x_ = nullptr;
  int64_t last_m_ = 0, last_k_ = 0;
  size_t last_h_ = 0;
  std::vector<float> last_copy_;
};

// A safetensors file whose tensors (names, dtypes, shapes) are all known before any is made:
// open() writes the header (__metadata__ {"format": "pt"}, tensors sorted by name, offsets in
// that order), put() writes one tensor's bytes at its offset, finish() checks that every tensor
// was written and flushes. The file is the one writing them all at once would give.
class SafetensorsStream {
 public:
  void plan(const std::string& name, DType dt, const Shape& shape) {
    if (safetensors_name(dt).empty())
      throw UnsupportedError(ErrorContext().tensor(name),
                             "dtype " + std::string(ohm::name(dt)) + " has no safetensors name");
    plan_[name] = Slot{dt, shape, 0, 0, false};
  }
  void open(const std::string& path) {
    path_ = path;
    json header = json::object();
    header["__metadata__"] = {{"format", "pt"}};
    uint64_t off = 0;
    for (auto& [name, sl] : plan_) {
      uint64_t n = dtype_size_bytes(sl.dtype, sl.shape);
      sl.begin = off;
      sl.nbytes = n;
      header[name] = {{"dtype", std::string(safetensors_name(sl.dtype))},
                      {"shape", sl.shape},
                      {"data_offsets", {off, off + n}}};
      off += n;
    }
    std::string h = header.dump();
    h.resize((h.size() + 7) / 8 * 8, ' ');
    f_.reset(std::fopen(path.c_str(), "wb"));
    if (!f_) throw IoError(ErrorContext().file(path), "cannot open for writing");
    const uint64_t hl = h.size();
    data_ = 8 + hl;
    if (std::fwrite(&hl, 8, 1, f_.get()) != 1 ||
        std::fwrite(h.data(), 1, h.size(), f_.get()) != h.size())
      throw IoError(ErrorContext().file(path), "write failed");
  }
  void put(const std::string& name, const Tensor& t) {
    auto it = plan_.find(name);
    OHM_ASSERT(it != plan_.end() && it->second.dtype == t.dtype() &&
                   it->second.shape == t.shape() && it->second.nbytes == t.nbytes() &&
                   !it->second.done,
               "a tensor not planned for the output");
    if (fseeko(f_.get(), static_cast<off_t>(data_ + it->second.begin), SEEK_SET) != 0 ||
        std::fwrite(t.raw(), 1, t.nbytes(), f_.get()) != t.nbytes())
      throw IoError(ErrorContext().file(path_).tensor(name), "write failed");
    it->second.done = true;
  }
  void finish() {
    for (const auto& [name, sl] : plan_) OHM_ASSERT(sl.done, "an output tensor never written");
    if (std::fflush(f_.get()) != 0) throw IoError(ErrorContext().file(path_), "write failed");
    FILE* f = f_.release();
    if (std::fclose(f) != 0) throw IoError(ErrorContext().file(path_), "write failed");
  }

 private:
  static uint64_t dtype_size_bytes(DType dt, const Shape& shape) {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    const std::optional<uint64_t> b = row_bytes(dt, n);
    OHM_ASSERT(b.has_value(), "tensor bytes");
    return *b;
  }
  struct Slot {
    DType dtype;
    Shape shape;
    uint64_t begin, nbytes;
    bool done;
  };
  std::string path_;
  std::map<std::string, Slot> plan_;
  uint64_t data_ = 0;
  std::unique_ptr<FILE, int (*)(FILE*)> f_{nullptr, &std::fclose};
};

Tensor to_f32(const Tensor& t) {
  return t.dtype() == DType::F32 ? t : quant::dequantize(t);
}

Tensor f32_tensor(const std::vector<float>& v, Shape shape) {
  Tensor t = Tensor::empty(DType::F32, std::move(shape));
  std::memcpy(t.mutable_raw(), v.data(), v.size() * sizeof(float));
  return t;
}

struct LinearRow {
  std::string name;
  int64_t rows = 0, cols = 0;
  double err = -1, err_rtn = -1, damp = 0;
  int64_t dead = 0;
};

}  // namespace

int run_quantize_gptq(const GptqCliOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool gptq = o.method == "gptq";
  if (!gptq && o.method != "rtn")
    throw UsageError("--method '" + o.method + "': choose gptq or rtn (or --type for GGUF)");
  if (o.bits != 4 && o.bits != 8)
    throw UsageError("--bits " + std::to_string(o.bits) + ": the GPTQ writer takes 4 or 8");
  if (o.group_size == 0 || o.group_size < -1)
    throw UsageError("--group-size " + std::to_string(o.group_size) +
                     ": give -1 (one group per row) or a positive number of input columns");
  if (gptq && o.calibration.empty())
    throw UsageError("--method gptq needs --calibration FILE (text to run through the model)");
  if (!gptq && !o.calibration.empty())
    throw UsageError("--calibration is for --method gptq (rtn uses no data)");
  if (!gptq && o.desc_act) throw UsageError("--desc-act is for --method gptq");
  const fs::path out = fs::absolute(o.out).lexically_normal();
  if (fs::exists(out) && !(fs::is_directory(out) && fs::is_empty(out)))
    throw UsageError(
        "OUT '" + o.out +
        "' exists: give a new directory (an empty one is replaced) for the checkpoint");
  if (!fs::is_directory(out.parent_path()))
    throw UsageError("OUT '" + o.out + "': the directory " + out.parent_path().string() +
                     " does not exist");

  const ModelSource src = resolve_model(o.in);
  if (src.kind == SourceKind::GgufFile)
    throw UnsupportedError(
        ErrorContext().file(src.path),
        "--method " + o.method + " reads HF checkpoints (config.json + safetensors), not GGUF");
  verify_model_if_asked(src.path, o.verify_key);
  const std::string dir =
      src.kind == SourceKind::Directory ? src.path : fs::path(src.path).parent_path().string();
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path))
    throw NotFoundError(ErrorContext().file(cfg_path), "config.json not found beside the weights");
  json raw_cfg = read_json_as<json>(cfg_path);
  if (raw_cfg.contains("quantization_config"))
    throw UnsupportedError(ErrorContext().file(cfg_path).key("quantization_config"),
                           "the checkpoint is already quantized; give an f32/f16/bf16 one");
  const ModelConfig config = load_model_config(cfg_path);

  nn::CheckpointSource base(safetensors::Checkpoint::open(src.path), src.path);
  const auto ckpt = safetensors::Checkpoint::open(src.path);

  // The linears: 2-D NAME.weight inside model.layers.N (norms aside), by block.
  std::map<int64_t, std::vector<std::string>> by_block;
  std::set<std::string> linears;
  for (const auto& ct : ckpt.tensors()) {
    const std::string& n = ct.info.name;
    const std::string suf = ".weight";
    if (ct.info.shape.size() != 2 || n.size() <= suf.size() ||
        n.compare(n.size() - suf.size(), suf.size(), suf) != 0 ||
        n.find("norm") != std::string::npos)
      continue;
    const int64_t b = block_of(n);
    if (b < 0) continue;
    const DType dt = ct.info.dtype;
    if (dt != DType::F32 && dt != DType::F16 && dt != DType::BF16)
      throw UnsupportedError(
          ErrorContext().file(src.path).tensor(n),
          "dtype " + std::string(name(dt)) + " (only f32/f16/bf16 checkpoints are quantized)");
    const int64_t rows = ct.info.shape[0], cols = ct.info.shape[1], pw = 32 / o.bits;
    if (cols % pw != 0 || rows % pw != 0)
      throw ShapeError(ErrorContext().file(src.path).tensor(n),
                       "shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                           "]: in and out features must be multiples of " + std::to_string(pw) +
                           " to pack " + std::to_string(o.bits) + "-bit values");
    const std::string prefix = n.substr(0, n.size() - suf.size());
    by_block[b].push_back(prefix);
    linears.insert(prefix);
  }
  if (linears.empty())
    throw UnsupportedError(ErrorContext().file(src.path),
                           "no 2-D model.layers.N.*.weight tensors to quantize");

  std::unique_ptr<ThreadPool> own_pool;
  if (o.threads > 0) own_pool = std::make_unique<ThreadPool>(o.threads);
  ThreadPool& pool = own_pool ? *own_pool : ThreadPool::global();
  quant::GptqOptions qo;
  qo.bits = o.bits;
  qo.group_size = o.group_size;
  qo.desc_act = o.desc_act;
  qo.sym = o.sym;
  qo.damp = o.damp;
  qo.pool = &pool;

  // Calibration samples.
  std::vector<std::vector<int64_t>> samples;
  if (gptq) {
    const std::string text = read_text("--calibration", o.calibration);
    auto tok = load_tokenizer(src.path, o.tokenizer);
    const std::vector<TokenId> ids = tok.encode(text, /*add_special_tokens=*/false);
    const int64_t n = static_cast<int64_t>(ids.size());
    if (n < o.seq_len)
      throw UsageError("--calibration '" + o.calibration + "' is " + std::to_string(n) +
                       " tokens, shorter than one sample of --seq-len " +
                       std::to_string(o.seq_len));
    const int64_t ns = std::min(o.samples, n / o.seq_len);
    for (int64_t s = 0; s < ns; ++s)
      samples.emplace_back(ids.begin() + s * o.seq_len, ids.begin() + (s + 1) * o.seq_len);
    if (!o.quiet && ns < o.samples)
      std::cerr << "note: --calibration '" << o.calibration << "' holds " << ns << " samples of "
                << o.seq_len << " tokens (asked for " << o.samples << ")\n";
  }

  // The output checkpoint's tensors, all known before any is made.
  const int64_t pw = 32 / o.bits;
  SafetensorsStream st;
  std::vector<std::string> copied;  // written as stored
  for (const auto& ct : ckpt.tensors()) {
    const std::string& n = ct.info.name;
    const std::string pre = n.substr(0, n.rfind('.'));
    if (linears.count(pre) && n == pre + ".weight") {
      const int64_t rows = ct.info.shape[0], cols = ct.info.shape[1];
      const int64_t groups = o.group_size < 0 ? 1 : (cols + o.group_size - 1) / o.group_size;
      st.plan(pre + ".qweight", DType::I32, {cols / pw, rows});
      st.plan(pre + ".qzeros", DType::I32, {groups, rows / pw});
      st.plan(pre + ".scales", DType::F16, {groups, rows});
      st.plan(pre + ".g_idx", DType::I32, {cols});
      continue;
    }
    if (n.find("rotary_emb.inv_freq") != std::string::npos) continue;
    st.plan(n, ct.info.dtype, ct.info.shape);
    copied.push_back(n);
  }

  // quantization_config as GPTQModel 7.7 writes it (v1 checkpoint format; the quantizer's
  // settings under "meta").
  json qc = json::object();
  qc["bits"] = o.bits;
  qc["checkpoint_format"] = "gptq";
  qc["desc_act"] = o.desc_act;
  qc["format"] = "gptq";
  qc["group_size"] = o.group_size;
  qc["lm_head"] = false;
  qc["meta"] = {{"damp_auto_increment", qo.damp_step},
                {"damp_percent", o.damp},
                {"mse", 0.0},
                {"quantizer", {std::string("ohm quantize --method ") + o.method}},
                {"static_groups", false},
                {"true_sequential", false},
                {"calibration_samples", static_cast<int64_t>(samples.size())},
                {"calibration_seq_len", gptq ? o.seq_len : 0}};
  qc["method"] = "gptq";
  qc["pack_dtype"] = "int32";
  qc["quant_method"] = "gptq";
  qc["sym"] = o.sym;
  raw_cfg["quantization_config"] = qc;

  std::vector<LinearRow> report;
  LoadOptions lo;
  lo.threads = o.threads;
  const bool progress = !o.quiet;
  const fs::path tmp = out.parent_path() / (out.filename().string() + ".partial-" +
                                            std::to_string(static_cast<long>(::getpid())));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    fs::create_directory(tmp);
    st.open((tmp / "model.safetensors").string());

    // The model as stored (zero-copy) and the samples' activations at the current block.
    std::unique_ptr<CausalLM> model;
    const int64_t hidden = common(config).hidden_size;
    std::vector<std::vector<float>> acts;
    std::vector<float> x;  // one sample's activations, run through the stored block
    if (gptq) {
      nn::Weights ws(base, std::nullopt);
      model = build_causal_lm(config, ws, lo);
      const int64_t n_layers = model->layerwise_layers();
      if (n_layers == 0)
        throw UnsupportedError(ErrorContext().file(cfg_path).key("model_type"),
                               "--method gptq: model_type '" + common(config).model_type +
                                   "' has no layer-by-layer forward");
      if (by_block.rbegin()->first >= n_layers)
        throw UnsupportedError(
            ErrorContext().file(src.path).tensor(by_block.rbegin()->second.front() + ".weight"),
            "block " + std::to_string(by_block.rbegin()->first) + " but the model has " +
                std::to_string(n_layers) + " layers");
      acts.resize(samples.size());
      for (size_t i = 0; i < samples.size(); ++i) {
        acts[i].resize(static_cast<size_t>(o.seq_len * hidden));
        model->embed_layers(samples[i], acts[i].data());
      }
    }

    const int64_t last_block = by_block.rbegin()->first;
    for (int64_t block = 0; block <= last_block; ++block) {
      const auto bit = by_block.find(block);
      if (bit == by_block.end()) {  // no linears here: the stored layer feeds the next block
        if (gptq)
          for (auto& a : acts) model->run_layer(block, o.seq_len, a.data());
        continue;
      }
      const std::vector<std::string>& names = bit->second;
      std::unique_ptr<HessianCollector> col;
      if (gptq) {
        col = std::make_unique<HessianCollector>(block, pool);
        nn::LinearObserver* prev = nn::set_linear_observer(col.get());
        try {
          for (const auto& a : acts) {
            x = a;
            col->new_sample();
            model->run_layer(block, o.seq_len, x.data());
          }
        } catch (...) {
          nn::set_linear_observer(prev);
          throw;
        }
        nn::set_linear_observer(prev);
        for (const auto& n : names)
          if (std::find(col->order().begin(), col->order().end(), n) == col->order().end())
            throw UnsupportedError(ErrorContext().file(src.path).tensor(n + ".weight"),
                                   "the model's forward never multiplies by this weight, so it "
                                   "has no calibration inputs");
      }
      std::map<std::string, Tensor> over;  // this block's dequantized weights
      for (const auto& n : names) {
        const Tensor w = to_f32(ckpt.tensor(n + ".weight"));
        const int64_t rows = w.shape()[0], cols = w.shape()[1];
        LinearRow row{n, rows, cols};
        quant::GptqResult r;
        try {
          if (gptq) {
            std::vector<double>& h = col->hessian(n);
            quant::symmetrize_hessian(h, cols);
            r = quant::gptq_quantize(w.data<float>(), rows, cols, h, qo);
            row.err = quant::relative_output_error(w.data<float>(), r, h, pool);
            row.err_rtn = quant::relative_output_error(
                w.data<float>(), quant::rtn_quantize(w.data<float>(), rows, cols, qo), h, pool);
            row.damp = r.damp;
            row.dead = r.dead;
            col->release_after(n, names);
          } else {
            r = quant::rtn_quantize(w.data<float>(), rows, cols, qo);
          }
        } catch (const Error& e) {
          throw InvalidArgument(ErrorContext().tensor(n + ".weight"), e.detail());
        }
        {
          const quant::GptqPacked p = quant::pack_gptq_v1(r);
          st.put(n + ".qweight", p.qweight);
          st.put(n + ".qzeros", p.qzeros);
          st.put(n + ".scales", p.scales);
          st.put(n + ".g_idx", p.g_idx);
        }
        if (gptq && block < last_block)
          over[n + ".weight"] = f32_tensor(r.dequantize(), {rows, cols});
        if (progress) {
          std::cerr << "block " << block + 1 << "/" << by_block.size() << " " << n << " " << rows
                    << "x" << cols;
          if (gptq)
            std::cerr << std::scientific << std::setprecision(3) << "  out.err " << row.err
                      << " (rtn " << row.err_rtn << ")" << std::defaultfloat;
          std::cerr << "\n";
        }
        report.push_back(row);
      }
      col.reset();
      // The activations through the quantized block: the next block's inputs.
      if (gptq && block < last_block) {
        OverlaySource os(base, over);
        nn::Weights ws(os, std::nullopt);
        auto qmodel = build_causal_lm(config, ws, lo);
        for (auto& a : acts) qmodel->run_layer(block, o.seq_len, a.data());
      }
    }
    model.reset();
    std::vector<std::vector<float>>().swap(acts);
    // Every other tensor as stored (biases of the linears too).
    for (const auto& n : copied) st.put(n, ckpt.tensor(n));
    st.finish();

    std::ofstream(tmp / "config.json") << raw_cfg.dump(2) << "\n";
    std::ofstream(tmp / "quantize_config.json") << qc.dump(2) << "\n";
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                          "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
                          "generation_config.json", "chat_template.jinja", "chat_template.json"})
      if (fs::exists(fs::path(dir) / f)) fs::copy_file(fs::path(dir) / f, tmp / f);
    if (fs::exists(out)) fs::remove(out);  // an empty directory (checked above)
    fs::rename(tmp, out);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw IoError(ErrorContext().file(out.string()), e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cout << std::left << std::setw(40) << "linear" << std::setw(12) << "shape";
  if (gptq) std::cout << std::right << std::setw(12) << "out.err" << std::setw(12) << "rtn.err";
  std::cout << "\n";
  double sum = 0, sum_rtn = 0;
  for (const auto& r : report) {
    std::cout << std::left << std::setw(40) << r.name << std::setw(12)
              << (std::to_string(r.rows) + "x" + std::to_string(r.cols));
    if (gptq) {
      std::cout << std::right << std::scientific << std::setprecision(3) << std::setw(12) << r.err
                << std::setw(12) << r.err_rtn << std::defaultfloat;
      if (r.dead) std::cout << "  " << r.dead << " dead input(s)";
      if (r.damp != o.damp) std::cout << "  damp raised to " << r.damp;
      sum += r.err;
      sum_rtn += r.err_rtn;
    }
    std::cout << "\n";
  }
  std::cout << "wrote " << o.out << ": " << report.size() << " linears, " << o.method << " "
            << o.bits << "-bit, group size " << o.group_size << (o.sym ? ", sym" : ", asym")
            << (o.desc_act ? ", desc_act" : "");
  if (gptq)
    std::cout << ", " << samples.size() << " samples of " << o.seq_len
              << " tokens; mean relative output error " << std::scientific << std::setprecision(3)
              << sum / static_cast<double>(report.size()) << " (round-to-nearest "
              << sum_rtn / static_cast<double>(report.size()) << ")" << std::defaultfloat;
  std::cout << " in " << fmt_seconds(secs) << " s\n";
  return 0;
}

}  // namespace ohm::cli
