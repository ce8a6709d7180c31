// `ohm make-bench-model --shape S --format F --out PATH [--seed N] [--layers N]`:
//   random-weight models of real shapes for benchmarks (no torch): S in tinyllama-1.1b,
//   llama2-7b, mixtral-small, mixtral-8x7b; F in safetensors-bf16 (an HF directory: config.json +
//   model.safetensors), f16, q8_0, q4_0, q4_k, q6_k (one GGUF file, llama.cpp's tensor names and
//   Q/K row order, a synthetic 32000-token SentencePiece-style vocabulary so llama.cpp loads it).
//   Weights are N(0, 0.02) from a per-tensor seeded generator, so every format of a shape holds
//   the same model (up to the format's rounding). Quantized GGUFs use ohm::quant::quantize;
//   matrices whose rows do not split into whole blocks fall back to F16 (as llama.cpp does).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/core/quant_traits.h"
#include "ohm/core/thread_pool.h"
#include "ohm/formats/gguf_writer.h"
#include "ohm/formats/safetensors.h"
#include "ohm/quant/dequant.h"
#include "ohm/quant/quantize.h"

namespace ohm::cli {
namespace {

struct Shape_ {
  std::string name;
  int64_t hidden, layers, heads, kv_heads, ffn, vocab, ctx;
  int64_t experts = 0, experts_used = 0;
};

const std::vector<Shape_>& shapes() {
  static const std::vector<Shape_> s = {
      {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048},
      {"llama2-7b", 4096, 32, 32, 32, 11008, 32000, 4096},
      {"mixtral-small", 1024, 8, 16, 4, 3584, 32000, 4096, 8, 2},
      // Mixtral-8x7B's layer (46.7B parameters at 32 layers); --layers keeps a run in memory.
      {"mixtral-8x7b", 4096, 32, 32, 8, 14336, 32000, 32768, 8, 2},
  };
  return s;
}

uint64_t fnv1a(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// N(0, std) values for element range [i0, i1) of the tensor `name` (splitmix64 + Box-Muller):
// element i depends only on (seed, name, i), so any split over threads gives the same values.
void fill_normal(const std::string& name, uint64_t seed, float std, int64_t i0, int64_t i1,
                 float* out) {
  const uint64_t base = fnv1a(name, seed);
  for (int64_t i = i0; i < i1; i += 2) {
    uint64_t z = base + static_cast<uint64_t>(i / 2) * 0x9E3779B97F4A7C15ull;
    auto next = [&z] {
      z += 0x9E3779B97F4A7C15ull;
      uint64_t x = z;
      x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
      x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
      return x ^ (x >> 31);
    };
    const double u1 = (static_cast<double>(next() >> 11) + 1.0) / 9007199254740993.0;
    const double u2 = static_cast<double>(next() >> 11) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(u1)), th = 6.283185307179586 * u2;
    out[i - i0] = static_cast<float>(r * std::cos(th)) * std;
    if (i + 1 < i1) out[i + 1 - i0] = static_cast<float>(r * std::sin(th)) * std;
  }
}

// One weight: HF name, llama.cpp name, row-major shape, whether it is a norm (ones), and the
// convert_hf_to_gguf Q/K permutation head count (0: none).
struct Spec {
  std::string hf, gg;
  std::vector<int64_t> shape;
  bool norm = false;
  int64_t permute_heads = 0;
  int expert = -1;  // mixtral: HF per-expert tensor e of the GGUF [n_expert, ...] tensor
};

std::vector<Spec> specs(const Shape_& s) {
  std::vector<Spec> v;
  const int64_t H = s.hidden, hd = H / s.heads, kv = s.kv_heads * hd;
  v.push_back({"model.embed_tokens.weight", "token_embd.weight", {s.vocab, H}});
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".",
                      b = "blk." + std::to_string(l) + ".";
    v.push_back({p + "input_layernorm.weight", b + "attn_norm.weight", {H}, true});
    v.push_back({p + "self_attn.q_proj.weight", b + "attn_q.weight", {H, H}, false, s.heads});
    v.push_back({p + "self_attn.k_proj.weight", b + "attn_k.weight", {kv, H}, false, s.kv_heads});
    v.push_back({p + "self_attn.v_proj.weight", b + "attn_v.weight", {kv, H}});
    v.push_back({p + "self_attn.o_proj.weight", b + "attn_output.weight", {H, H}});
    v.push_back({p + "post_attention_layernorm.weight", b + "ffn_norm.weight", {H}, true});
    if (s.experts) {
      v.push_back({p + "block_sparse_moe.gate.weight", b + "ffn_gate_inp.weight", {s.experts, H}});
      for (int e = 0; e < s.experts; ++e) {
        const std::string ep = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        v.push_back({ep + "w1.weight", b + "ffn_gate_exps.weight", {s.ffn, H}, false, 0, e});
        v.push_back({ep + "w2.weight", b + "ffn_down_exps.weight", {H, s.ffn}, false, 0, e});
        v.push_back({ep + "w3.weight", b + "ffn_up_exps.weight", {s.ffn, H}, false, 0, e});
      }
    } else {
      v.push_back({p + "mlp.gate_proj.weight", b + "ffn_gate.weight", {s.ffn, H}});
      v.push_back({p + "mlp.up_proj.weight", b + "ffn_up.weight", {s.ffn, H}});
      v.push_back({p + "mlp.down_proj.weight", b + "ffn_down.weight", {H, s.ffn}});
    }
  }
  v.push_back({"model.norm.weight", "output_norm.weight", {H}, true});
  v.push_back({"lm_head.weight", "output.weight", {s.vocab, H}});
  return v;
}

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// The HF-layout f32 values of a spec, generated in parallel.
std::vector<float> values(const Spec& sp, uint64_t seed) {
  const int64_t n = numel(sp.shape);
  std::vector<float> out(static_cast<size_t>(n));
  if (sp.norm) {
    std::fill(out.begin(), out.end(), 1.0f);
    return out;
  }
  ThreadPool::global().parallel_for(n / 2 + 1, 1 << 15, [&](int64_t a, int64_t b) {
    const int64_t i0 = 2 * a, i1 = std::min(n, 2 * b);
    if (i0 < i1) fill_normal(sp.hf, seed, 0.02f, i0, i1, out.data() + i0);
  });
  return out;
}

// convert_hf_to_gguf.py LlamaModel.permute on rows: HF row h*hd + i*hd/2 + j -> h*hd + 2j + i.
std::vector<float> permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols,
                                int64_t n_head) {
  std::vector<float> out(w.size());
  const int64_t hd = rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(&out[static_cast<size_t>((h * hd + 2 * j + i) * cols)],
                    &w[static_cast<size_t>((h * hd + i * half + j) * cols)],
                    static_cast<size_t>(cols) * 4);
  return out;
}

void quantize_rows_parallel(DType t, const float* src, uint8_t* dst, int64_t rows, int64_t cols) {
  const size_t rb = *row_bytes(t, static_cast<uint64_t>(cols));
  ThreadPool::global().parallel_for(rows, 1, [&](int64_t a, int64_t b) {
    for (int64_t r = a; r < b; ++r) quant::quantize_row(t, src + r * cols, dst + r * rb, cols);
  });
}

void add_vocab(gguf::GGUFWriter& w, int64_t vocab) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  tokens = {"<unk>", "<s>", "</s>"};
  types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.emplace_back(buf);
    types.push_back(6);
  }
  for (int64_t i = static_cast<int64_t>(tokens.size()); i < vocab; ++i) {
    tokens.push_back("\xE2\x96\x81t" + std::to_string(i));
    types.push_back(1);
  }
  for (int64_t i = 0; i < vocab; ++i) scores.push_back(-static_cast<float>(i));
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_float32_array("tokenizer.ggml.scores", scores);
  w.add_int32_array("tokenizer.ggml.token_type", types);
  w.add_uint32("tokenizer.ggml.bos_token_id", 1);
  w.add_uint32("tokenizer.ggml.eos_token_id", 2);
  w.add_uint32("tokenizer.ggml.unknown_token_id", 0);
}

uint32_t file_type(DType t) {  // llama_ftype
  if (t == DType::F16) return 1;
  const QuantTraits* q = quant_traits(t);
  return q && q->file_type != kNoFileType ? q->file_type : 0;
}

void write_gguf(const Shape_& s, DType type, uint64_t seed, const std::string& out) {
  gguf::GGUFWriter w("llama");
  w.add_string("general.name", "ohm-bench-" + s.name);
  w.add_uint32("llama.context_length", static_cast<uint32_t>(s.ctx));
  w.add_uint32("llama.embedding_length", static_cast<uint32_t>(s.hidden));
  w.add_uint32("llama.block_count", static_cast<uint32_t>(s.layers));
  w.add_uint32("llama.feed_forward_length", static_cast<uint32_t>(s.ffn));
  w.add_uint32("llama.attention.head_count", static_cast<uint32_t>(s.heads));
  w.add_uint32("llama.attention.head_count_kv", static_cast<uint32_t>(s.kv_heads));
  w.add_float32("llama.rope.freq_base", 10000.0f);
  w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.add_uint32("llama.rope.dimension_count", static_cast<uint32_t>(s.hidden / s.heads));
  w.add_uint32("llama.vocab_size", static_cast<uint32_t>(s.vocab));
  if (s.experts) {
    w.add_uint32("llama.expert_count", static_cast<uint32_t>(s.experts));
    w.add_uint32("llama.expert_used_count", static_cast<uint32_t>(s.experts_used));
  }
  w.add_uint32("general.file_type", file_type(type));
  w.add_uint32("general.quantization_version", 2);
  add_vocab(w, s.vocab);
  const auto all = specs(s);
  for (size_t k = 0; k < all.size(); ++k) {
    const Spec& sp = all[k];
    if (sp.expert > 0) continue;  // merged into the expert-0 entry's tensor
    const bool is_matrix = sp.shape.size() == 2 && !sp.norm;
    // Router stays f32 (as the converter keeps ffn_gate_inp); norms f32.
    DType t = is_matrix && sp.gg.find("ffn_gate_inp") == std::string::npos ? type : DType::F32;
    if (is_quantized(t) && sp.shape.back() % traits(t).block_size != 0) t = DType::F16;
    std::vector<int64_t> shape = sp.shape;
    std::vector<const Spec*> parts = {&sp};
    if (sp.expert == 0) {
      shape.insert(shape.begin(), s.experts);
      for (size_t j = k + 1; j < all.size() && parts.size() < static_cast<size_t>(s.experts); ++j)
        if (all[j].gg == sp.gg) parts.push_back(&all[j]);
    }
    w.add_tensor_lazy(sp.gg, t, Shape(shape.begin(), shape.end()), [parts, t, seed](uint8_t* dst) {
      for (const Spec* p : parts) {
        std::vector<float> v = values(*p, seed);
        const int64_t rows = p->shape.size() == 2 ? p->shape[0] : 1, cols = p->shape.back();
        if (p->permute_heads) v = permute_rows(v, rows, cols, p->permute_heads);
        quantize_rows_parallel(t, v.data(), dst, rows, cols);
        dst += *row_bytes(t, static_cast<uint64_t>(rows * cols));
      }
    });
  }
  w.write(out);
}

void write_safetensors(const Shape_& s, uint64_t seed, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  nlohmann::json cfg = {{"architectures", {s.experts ? "MixtralForCausalLM" : "LlamaForCausalLM"}},
                        {"model_type", s.experts ? "mixtral" : "llama"},
                        {"hidden_size", s.hidden},
                        {"intermediate_size", s.ffn},
                        {"num_hidden_layers", s.layers},
                        {"num_attention_heads", s.heads},
                        {"num_key_value_heads", s.kv_heads},
                        {"vocab_size", s.vocab},
                        {"max_position_embeddings", s.ctx},
                        {"rms_norm_eps", 1e-5},
                        {"rope_theta", 10000.0},
                        {"hidden_act", "silu"},
                        {"tie_word_embeddings", false},
                        {"bos_token_id", 1},
                        {"eos_token_id", 2},
                        {"torch_dtype", "bfloat16"}};
  if (s.experts) {
    cfg["num_local_experts"] = s.experts;
    cfg["num_experts_per_tok"] = s.experts_used;
  }
  std::ofstream(fs::path(dir) / "config.json") << cfg.dump(2) << "\n";
  const auto all = specs(s);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t off = 0;
  for (const auto& sp : all) {
    const uint64_t nb = static_cast<uint64_t>(numel(sp.shape)) * 2;
    header[sp.hf] = {{"dtype", "BF16"}, {"shape", sp.shape}, {"data_offsets", {off, off + nb}}};
    off += nb;
  }
  std::string h = header.dump();
  h.resize((h.size() + 7) / 8 * 8, ' ');
  const std::string path = (fs::path(dir) / "model.safetensors").string();
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw IoError(ErrorContext().file(path), "cannot open for writing");
  const uint64_t hl = h.size();
  bool ok = std::fwrite(&hl, 8, 1, f.get()) == 1 &&
            std::fwrite(h.data(), 1, h.size(), f.get()) == h.size();
  for (const auto& sp : all) {
    const std::vector<float> v = values(sp, seed);
    std::vector<uint16_t> b(v.size());
    for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
    ok = ok && std::fwrite(b.data(), 2, b.size(), f.get()) == b.size();
  }
  if (!ok || std::fflush(f.get()) != 0) throw IoError(ErrorContext().file(path), "write failed");
}

struct BenchOptions {
  std::string shape, format, out;
  uint64_t seed = 0;
  int64_t layers = 0;
};

const Register reg_bench("make-bench-model", [](CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("make-bench-model",
                                 "Write a random-weight model of a real shape (benchmarks)");
  cmd->add_option("--shape", opt->shape,
                  "tinyllama-1.1b | llama2-7b | mixtral-small | mixtral-8x7b")
      ->required();
  cmd->add_option("--format", opt->format,
                  "safetensors-bf16 | f32 | f16 | " + quant::quantize_type_list(" | "))
      ->required();
  cmd->add_option("--out", opt->out, "Output .gguf file, or directory for safetensors")->required();
  cmd->add_option("--seed", opt->seed, "Random seed (default 0)");
  cmd->add_option("--layers", opt->layers, "Override the layer count (quick tests)");
  return Command{cmd, [opt] {
                   const Shape_* s = nullptr;
                   for (const auto& x : shapes())
                     if (x.name == opt->shape) s = &x;
                   if (!s) throw InvalidArgument("unknown --shape '" + opt->shape + "'");
                   Shape_ shape = *s;
                   if (opt->layers > 0) shape.layers = opt->layers;
                   if (opt->format == "safetensors-bf16") {
                     write_safetensors(shape, opt->seed, opt->out);
                   } else {
                     const auto t = quant::quant_type_from_name(opt->format);
                     if (!t || *t == DType::BF16)
                       throw InvalidArgument("unknown --format '" + opt->format + "'");
                     write_gguf(shape, *t, opt->seed, opt->out);
                   }
                   std::cerr << "wrote " << opt->out << "\n";
                   return 0;
                 }};
});

}  // namespace
}  // namespace ohm::cli
