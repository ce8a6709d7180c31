// Causal LMs from GGUF files (llama.cpp's format): metadata -> ModelConfig, llama.cpp tensor
// names -> HF names, and the layout changes llama.cpp's convert_hf_to_gguf.py makes undone.
//
//   auto model = ohm::load_causal_lm("model-q8_0.gguf");  // routes here
//
// Architectures (general.architecture): "llama" (LLaMA, and Mistral and Mixtral, which the
// converter writes as llama; `llama.attention.sliding_window`, when present, makes it
// model_type "mistral", `llama.expert_count` "mixtral"), "qwen2", "gemma", "phi3", "falcon"
// (both layouts), "gpt2". Undone on load:
//   - llama: q_proj/k_proj rows (and biases) permuted by convert_hf_to_gguf.py's
//     LlamaModel.permute into ggml's interleaved-pair RoPE order. find() applies the inverse row
//     permutation to a copy (any dtype: a row is a whole number of blocks); the models load
//     them as stored instead (find_rope_interleaved, zero-copy) and rotate interleaved pairs,
//     which gives the same attention scores without a second copy of q/k in memory.
//   - mixtral: as llama, and the experts stacked into blk.N.ffn_{gate,down,up}_exps
//     [E, rows, cols] are handed out per expert (block_sparse_moe.experts.E.w1/w2/w3) as
//     zero-copy views;
//   - gemma: norm weights stored as 1 + w (GemmaModel.modify_tensors) get 1 subtracted;
//   - falcon: query_key_value rows re-ordered by FalconModel.modify_tensors into
//     [all q | all k | all v] go back to HF's per-KV-group order (new_decoder_architecture);
//     the layout (7B multi-query, 40B with ln_attn/ln_mlp, one-norm NDA) is told by the tensors;
//   - phi3: nothing (fused qkv / gate_up stored as in HF, not permuted).
//   - gpt2: Conv1D weights stored as [out, in] (transposed by the converter) are handed to the
//     model as is through WeightSource::find_pretransposed (quantized ones included).
// Block-quantized weights stay quantized (zero-copy views of the mmap) unless LoadOptions asks
// for a dtype.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ohm/formats/config.h"
#include "ohm/formats/gguf.h"
#include "ohm/models/arch.h"
#include "ohm/models/causal_lm.h"
#include "ohm/nn/weights.h"

namespace ohm {

// The config.json equivalent of a GGUF file's `{arch}.*` metadata (HF key names), and its
// parsed form. UnsupportedError naming the architecture for ones ohm cannot map.
nlohmann::json gguf_hf_config(const gguf::GGUFFile& f);
ModelConfig gguf_model_config(const gguf::GGUFFile& f);

// The GGUF tensors under HF names (see the header comment for the undone transformations).
class GGUFWeightSource : public nn::WeightSource {
 public:
  GGUFWeightSource(gguf::GGUFFile file, const ModelConfig& config);
  std::optional<Tensor> find(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return file_.path(); }
  std::optional<Tensor> find_pretransposed(const std::string& name) const override;
  // LLaMA files: q/k rows as stored (ggml's interleaved-pair RoPE order), zero-copy views.
  bool has_rope_interleaved_qk() const override;
  std::optional<Tensor> find_rope_interleaved(const std::string& name) const override;

  // The GGUF tensor an HF name comes from (nullopt if none).
  std::optional<std::string> gguf_name(const std::string& hf_name) const;
  const gguf::GGUFFile& file() const { return file_; }

  using Kind = GgufTensorKind;
  struct Entry {
    std::string gguf;
    Kind kind = Kind::Plain;
    int64_t n_head = 0;  // UnpermuteRows (heads of the tensor), FalconQKV (query heads)
    int64_t n_kv = 0;    // FalconQKV
    int64_t index = 0;   // ExpertSlice: the expert
  };

 private:
  gguf::GGUFFile file_;
  std::map<std::string, Entry> map_;  // HF name -> source
};

// Loads a GGUF causal LM (load_causal_lm calls this for .gguf files).
std::unique_ptr<CausalLM> load_gguf_causal_lm(const std::string& path, const LoadOptions& opts);

}  // namespace ohm
