// Causal language models: the common interface every architecture implements, the registry
// (model_type -> builder) and load_causal_lm (decoding is in ohm/generation/generate.h).
//
//   auto model = ohm::load_causal_lm("org/name", {.dtype = ohm::DType::F32});
//   auto cache = model->make_cache(/*batch=*/1);
//   ohm::Tensor logits = model->forward(ids, {}, {}, cache);   // [B, T, vocab] f32
//
// Numerics follow transformers' eager path in f32 whatever the weight dtype (weights are
// converted row by row inside the matmul kernels).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ohm/backends/context.h"
#include "ohm/core/tensor.h"
#include "ohm/core/thread_pool.h"
#include "ohm/core/token_id.h"
#include "ohm/formats/config.h"
#include "ohm/nn/kv_cache.h"
#include "ohm/nn/layers.h"
#include "ohm/nn/paged_kv.h"
#include "ohm/nn/weights.h"

namespace ohm {

struct LoadOptions {
  // Convert 2-D weights to this dtype at load (f32, f16, bf16); nullopt keeps them as stored
  // (zero-copy from the mmap). Compute is f32 either way.
  std::optional<DType> dtype;
  // The backend: "cpu", "auto" (the best registered; the CPU today) or a registered backend's
  // name (ohm::backends::backend_names()); UnsupportedError naming them otherwise.
  std::string device_map = "cpu";
  // Run on this backend instead of device_map's (embedders, tests); it must outlive the model.
  backends::Backend* backend = nullptr;
  int threads = 0;  // 0: the process-wide pool (OHM_NUM_THREADS or all cores)
  // Quantize-on-load: every 2-D weight (after `dtype`) to this GGUF block type (q8_0, q4_0,
  // q4_k, ...; ohm::quant::quantize), from safetensors or GGUF; nullopt keeps the weights.
  std::optional<DType> quantize;
};

class CausalLM {
 public:
  virtual ~CausalLM();
  CausalLM(const CausalLM&) = delete;
  CausalLM& operator=(const CausalLM&) = delete;

  const ModelConfig& config() const { return config_; }
  const DecoderConfig& decoder_config() const { return common(config_); }
  int64_t vocab_size() const { return decoder_config().vocab_size; }
  // Where the model runs: backend (device, allocator, ops) and thread pool.
  const backends::Context& context() const { return *ctx_; }
  ThreadPool& pool() const { return ctx_->pool(); }

  // An empty KV cache for `batch` sequences (grows as needed; capacity_hint avoids regrowth).
  nn::KVCache make_cache(int64_t batch, int64_t capacity_hint = 0) const;
  // The storage type of the caches make_cache returns: F32 (default), F16 or Q8_0 (then
  // num_key_value_heads * head_dim must be a multiple of 32); InvalidArgument otherwise. The
  // serving engine's paged pool stays f32.
  void set_kv_type(DType t);
  DType kv_type() const { return kv_type_; }

  // input_ids [B, T] (i64 or i32) appended after what `cache` holds.
  // attention_mask: [B, T] or [B, past+T] (HF style; only the last T columns are read), any
  //   integer/bool dtype; undefined = all ones. Padded slots are never attended to.
  // position_ids [B, T]; undefined = HF generate's cumsum(mask) - 1 (padding at 1).
  // Returns f32 logits [B, T, vocab], or [B, 1, vocab] for the last position when last_only.
  // A last_only forward of one sequence longer than prefill_chunk() tokens (on a cache without
  // a sliding window) runs as consecutive steps of equal sizes, at most that many tokens each,
  // as llama.cpp's ubatch does: the activation buffers then hold one chunk, not the whole prompt (a
  // 16k-token prompt's MLP activations alone are 0.7 GB on a 1.1B model), and each chunk attends to
  // the cached ones. Every row keeps the RoPE length of the whole step (dynamic / longrope tables).
  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask, const Tensor& position_ids,
                 nn::KVCache& cache, bool last_only = false);
  // Tokens per step of a long last_only forward (above); 0 runs it as one step. Default 512.
  void set_prefill_chunk(int64_t tokens);
  int64_t prefill_chunk() const { return prefill_chunk_; }

  // Continuous batching: one step over a ragged batch whose K/V live in `pool` (see
  // nn::PagedKVPool). ids/pos hold the step's tokens (sum of seqs[i].n_new), sequence i's at
  // rows [seqs[i].offset, + n_new); positions are the slot indices (no padding). Returns f32
  // logits [logit_rows.size(), vocab] for the step rows `logit_rows`. Each row's numbers are
  // those forward() gives for the same token and context: attention per sequence, matmuls row
  // by row.
  Tensor forward_paged(std::span<const TokenId> ids, std::span<const int32_t> pos,
                       nn::PagedKVPool& pool, std::span<const nn::PagedSeq> seqs,
                       std::span<const int64_t> logit_rows);
  // An empty paged pool for this model (n_blocks of block_tokens slots each).
  std::unique_ptr<nn::PagedKVPool> make_paged_pool(int64_t n_blocks, int64_t block_tokens) const;
  // Bytes of K and V per token (all layers).
  int64_t kv_bytes_per_token() const {
    return 2 * decoder_config().num_hidden_layers * kv_dim() * 4;
  }

  // Whether generation must drop the KV cache and re-run the whole sequence before the step
  // that grows it from `cached` to `total` tokens (transformers' Phi-3 does at the switch from
  // short to long RoPE factors, in prepare_inputs_for_generation).
  // Whether K/V computed for a sequence of seq_len tokens use the same RoPE frequencies as a
  // short sequence's (nn::Rope::base_at for every rotary table), so they can be shared across
  // sequences (the serving engine's prefix cache).
  virtual bool rope_base_at(int64_t seq_len) const {
    (void)seq_len;
    return true;
  }
  virtual bool recompute_cache_before(int64_t cached, int64_t total) const {
    (void)cached;
    (void)total;
    return false;
  }

  // Layer by layer, for calibration (`ohm quantize --method gptq`): one unpadded sequence at
  // positions 0..T-1, as forward() runs it on a fresh cache. embed_layers writes layer 0's input
  // [T, hidden_size] for ids [T]; run_layer(l, T, hidden) runs decoder layer l in place on it,
  // with a KV cache of its own. Running layers 0..n-1 in order gives, bit for bit, the residual
  // stream forward() has before the final norm, so a caller can keep just the activations
  // between layers. layerwise_layers() is n, or 0 where the architecture does not support it
  // (the others then throw UnsupportedError).
  virtual int64_t layerwise_layers() const { return 0; }
  virtual void embed_layers(std::span<const int64_t> ids, float* hidden);
  virtual void run_layer(int64_t layer, int64_t T, float* hidden);

  // MoE statistics: tokens routed to each expert per router (HF module name); empty otherwise.
  virtual std::map<std::string, std::vector<int64_t>> router_counts() const { return {}; }

 protected:
  CausalLM(ModelConfig config, const LoadOptions& opts);

  struct Step {
    int64_t B = 0, T = 0;
    const int64_t* ids = nullptr;  // [B*T]
    const int32_t* pos = nullptr;  // [B*T]
    // [B*T] or null: per row, the sequence length RoPE's dynamic / longrope frequencies are
    // chosen for (rows of several sequences in one step); null: max(pos) + 1 over the step.
    const int32_t* rope_len = nullptr;
  };
  // Runs the decoder for one step (the cache already has the step's slots open) and writes
  // the final hidden states [B*T, hidden_size], after the final norm, to `hidden`.
  virtual void forward_hidden(const Step& step, nn::KVCache& cache, float* hidden) = 0;
  // Per-token K (or V) width of the cache: n_kv_head * head_dim by default.
  virtual int64_t kv_dim() const;

  nn::Linear lm_head_;  // set by the architecture (tied or not)
  // Final logit soft-capping, logits = cap * tanh(logits / cap) (Gemma 2; 0: none).
  float final_logit_softcap_ = 0.0f;
  // Sliding window applied on EVERY layer (0: none or not all layers): the KV cache then drops
  // slots beyond it (nn::KVCache::set_window).
  int64_t cache_window_ = 0;
  DType kv_type_ = DType::F32;

 private:
  void softcap_logits(Tensor& logits) const;
  ModelConfig config_;
  std::unique_ptr<ThreadPool> own_pool_;
  std::unique_ptr<backends::Context> ctx_;
  std::vector<int64_t> ids_;
  std::vector<int32_t> pos_;
  std::vector<uint8_t> valid_;
  std::vector<int32_t> rope_len_;
  nn::Buffer hidden_, last_;
  int64_t prefill_chunk_ = 512;
};

// Builds the model for config.model_type from weights (UnsupportedError naming it if unknown;
// NotFoundError naming every missing tensor).
std::unique_ptr<CausalLM> build_causal_lm(const ModelConfig& config, nn::Weights& weights,
                                          const LoadOptions& opts);
// The model_type values with a builder.
std::vector<std::string> registered_model_types();

// Loads a causal LM: `path_or_id` is a local directory with config.json + safetensors, a .gguf
// file, or a Hub id in the HF cache (ohm::resolve_model). The transformers-style entry point,
// ohm::AutoModelForCausalLM::from_pretrained (ohm/generation/auto_model.h), wraps this together
// with the generation config.
std::unique_ptr<CausalLM> load_causal_lm(const std::string& path_or_id,
                                         const LoadOptions& opts = {});

}  // namespace ohm
