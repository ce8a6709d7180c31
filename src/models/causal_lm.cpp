// CausalLM's shared front end (input checks, masks, default positions, lm_head),
// load_causal_lm and greedy decoding. The registry is src/models/registry.cpp.
#include "ohm/models/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/json_reader.h"
#include "ohm/formats/model_source.h"
#include "ohm/formats/safetensors.h"
#include "ohm/models/arch.h"
#include "ohm/models/gguf_loader.h"
#include "ohm/nn/quantized_source.h"

namespace ohm {

CausalLM::CausalLM(ModelConfig config, const LoadOptions& opts) : config_(std::move(config)) {
  backends::Backend& backend =
      opts.backend ? *opts.backend : backends::backend_for(opts.device_map);
  if (opts.threads > 0) own_pool_ = std::make_unique<ThreadPool>(opts.threads);
  ctx_ =
      std::make_unique<backends::Context>(own_pool_ ? *own_pool_ : ThreadPool::global(), backend);
}

CausalLM::~CausalLM() = default;

int64_t CausalLM::kv_dim() const {
  const auto& c = decoder_config();
  return c.num_key_value_heads * c.head_dim;
}

nn::KVCache CausalLM::make_cache(int64_t batch, int64_t capacity_hint) const {
  // A window model never needs more than window - 1 old slots plus the step: cap the hint so a
  // long max_length does not reserve memory the window makes unnecessary.
  if (cache_window_ > 0) capacity_hint = std::min(capacity_hint, 2 * cache_window_);
  nn::KVCache cache(*ctx_, decoder_config().num_hidden_layers, batch, kv_dim(), capacity_hint,
                    kv_type_);
  cache.set_window(cache_window_);
  return cache;
}

void CausalLM::set_kv_type(DType t) {
  (void)kernels::kv_row_bytes(t, kv_dim());  // the type and, for q8_0, the head geometry
  if (t == DType::Q8_0 && decoder_config().head_dim % 32 != 0)
    throw InvalidArgument(ErrorContext().op("kv cache"),
                          "a q8_0 KV cache needs head_dim to be a multiple of 32 (got " +
                              std::to_string(decoder_config().head_dim) + ")");
  kv_type_ = t;
}

void CausalLM::embed_layers(std::span<const int64_t> ids, float* hidden) {
  (void)ids;
  (void)hidden;
  throw UnsupportedError(
      ErrorContext().op("embed_layers"),
      "model_type '" + decoder_config().model_type + "' has no layer-by-layer forward");
}

void CausalLM::run_layer(int64_t layer, int64_t T, float* hidden) {
  (void)layer;
  (void)T;
  (void)hidden;
  throw UnsupportedError(
      ErrorContext().op("run_layer"),
      "model_type '" + decoder_config().model_type + "' has no layer-by-layer forward");
}

namespace {
int64_t int_at(const Tensor& t, uint64_t i) {
  return static_cast<int64_t>(element_as_double(t.raw(), t.dtype(), i));
}
}  // namespace

void CausalLM::softcap_logits(Tensor& logits) const {
  if (final_logit_softcap_ == 0.0f) return;
  // Gemma 2: logits = cap * tanh(logits / cap)
  float* l = logits.mutable_data<float>();
  const float cap = final_logit_softcap_;
  for (uint64_t i = 0; i < logits.numel(); ++i) l[i] = cap * std::tanh(l[i] / cap);
}

Tensor CausalLM::forward(const Tensor& input_ids, const Tensor& attention_mask,
                         const Tensor& position_ids, nn::KVCache& cache, bool last_only) {
  if (!input_ids.defined() || input_ids.ndim() != 2 || !input_ids.is_contiguous())
    throw ShapeError(ErrorContext().op("forward").shape("input_ids", input_ids.shape()),
                     "input_ids must be a contiguous [batch, seq] tensor");
  const int64_t B = input_ids.dim(0), T = input_ids.dim(1);
  if (B != cache.batch())
    throw ShapeError(
        ErrorContext().op("forward"),
        "KV cache batch " + std::to_string(cache.batch()) + " != input batch " + std::to_string(B));
  if (T <= 0) throw ShapeError(ErrorContext().op("forward"), "empty input");
  const int64_t past = cache.size();
  const int64_t past_total = cache.dropped() + past;  // tokens seen, incl. dropped window slots
  const int64_t n = B * T;
  ids_.resize(static_cast<size_t>(n));
  pos_.resize(static_cast<size_t>(n));
  valid_.assign(static_cast<size_t>(n), 1);
  if (input_ids.dtype() == DType::I64)
    std::copy(input_ids.data<int64_t>(), input_ids.data<int64_t>() + n, ids_.begin());
  else
    for (int64_t i = 0; i < n; ++i) ids_[i] = int_at(input_ids, static_cast<uint64_t>(i));

  if (attention_mask.defined()) {
    if (attention_mask.ndim() != 2 || attention_mask.dim(0) != B ||
        (attention_mask.dim(1) != T && attention_mask.dim(1) != past_total + T))
      throw ShapeError(ErrorContext().op("forward").shape("attention_mask", attention_mask.shape()),
                       "attention_mask must be [batch, seq] or [batch, past + seq]");
    const int64_t L = attention_mask.dim(1);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        valid_[b * T + t] = int_at(attention_mask, static_cast<uint64_t>(b * L + L - T + t)) != 0;
  }
  if (position_ids.defined()) {
    if (position_ids.shape() != Shape{B, T})
      throw ShapeError(ErrorContext().op("forward").shape("position_ids", position_ids.shape()),
                       "position_ids must be [batch, seq]");
    for (int64_t i = 0; i < n; ++i)
      pos_[i] = static_cast<int32_t>(int_at(position_ids, static_cast<uint64_t>(i)));
  } else {
    // transformers' generate: position_ids = cumsum(attention_mask) - 1, padding set to 1.
    for (int64_t b = 0; b < B; ++b) {
      auto seen = static_cast<int32_t>(cache.dropped_valid(b));
      const uint8_t* v = cache.valid(b);
      for (int64_t j = 0; j < past; ++j) seen += v[j] ? 1 : 0;
      for (int64_t t = 0; t < T; ++t) {
        if (valid_[b * T + t])
          pos_[b * T + t] = seen++;
        else
          pos_[b * T + t] = 1;
      }
    }
  }

  const int64_t H = decoder_config().hidden_size, V = lm_head_.out_features();
  if (last_only && B == 1 && prefill_chunk_ > 0 && T > prefill_chunk_ && cache.window() == 0) {
    // Consecutive steps of at most prefill_chunk_ tokens (see the header), of equal sizes (no
    // short last step, whose matmuls could take another kernel than the rest); the RoPE length
    // of every row is the whole step's, max(pos) + 1, as one forward would choose it.
    const int64_t steps = (T + prefill_chunk_ - 1) / prefill_chunk_;
    rope_len_.assign(static_cast<size_t>(T), *std::max_element(pos_.begin(), pos_.end()) + 1);
    float* hidden = hidden_.get(static_cast<size_t>((T + steps - 1) / steps * H));
    const int64_t past0 = cache.size();
    int64_t len = 0;
    try {
      for (int64_t i = 0, t0 = 0; i < steps; ++i, t0 += len) {
        len = T * (i + 1) / steps - t0;
        cache.append(len, valid_.data() + t0, pos_.data() + t0);
        forward_hidden(Step{1, len, ids_.data() + t0, pos_.data() + t0, rope_len_.data() + t0},
                       cache, hidden);
      }
    } catch (...) {
      cache.truncate(past0);  // undo every chunk of this step
      throw;
    }
    Tensor logits = Tensor::empty(DType::F32, {1, 1, V});
    lm_head_.forward(hidden + (len - 1) * H, 1, logits.mutable_data<float>(), *ctx_);
    softcap_logits(logits);
    return logits;
  }
  cache.append(T, valid_.data(), pos_.data());
  float* hidden = hidden_.get(static_cast<size_t>(n * H));
  try {
    forward_hidden(Step{B, T, ids_.data(), pos_.data()}, cache, hidden);
  } catch (...) {
    cache.truncate(cache.size() - T);  // undo this step (a window drop stays)
    throw;
  }
  if (last_only) {
    float* last = last_.get(static_cast<size_t>(B * H));
    ctx_->copy_2d(last, H, hidden + (T - 1) * H, T * H, B, H);  // row b: hidden[b, T - 1]
    Tensor logits = Tensor::empty(DType::F32, {B, 1, V});
    lm_head_.forward(last, B, logits.mutable_data<float>(), *ctx_);
    softcap_logits(logits);
    return logits;
  }
  Tensor logits = Tensor::empty(DType::F32, {B, T, V});
  lm_head_.forward(hidden, n, logits.mutable_data<float>(), *ctx_);
  softcap_logits(logits);
  return logits;
}

void CausalLM::set_prefill_chunk(int64_t tokens) {
  if (tokens < 0)
    throw InvalidArgument(
        ErrorContext().op("set_prefill_chunk"),
        "prefill chunk must be >= 0 (0: one step), got " + std::to_string(tokens));
  prefill_chunk_ = tokens;
}

std::unique_ptr<nn::PagedKVPool> CausalLM::make_paged_pool(int64_t n_blocks,
                                                           int64_t block_tokens) const {
  return std::make_unique<nn::PagedKVPool>(*ctx_, decoder_config().num_hidden_layers, kv_dim(),
                                           n_blocks, block_tokens);
}

Tensor CausalLM::forward_paged(std::span<const TokenId> ids, std::span<const int32_t> pos,
                               nn::PagedKVPool& pool, std::span<const nn::PagedSeq> seqs,
                               std::span<const int64_t> logit_rows) {
  const auto n = static_cast<int64_t>(ids.size());
  if (n <= 0 || pos.size() != ids.size())
    throw ShapeError(ErrorContext().op("forward_paged"), "ids and pos must be non-empty and equal");
  if (pool.kv_dim() != kv_dim() || pool.n_layer() != decoder_config().num_hidden_layers)
    throw ShapeError(ErrorContext().op("forward_paged"), "paged pool geometry does not match");
  for (const auto& s : seqs)
    if (s.offset < 0 || s.n_new < 0 || s.offset + s.n_new > n || s.n_past < 0)
      throw ShapeError(ErrorContext().op("forward_paged"), "sequence rows outside the step");
  for (int64_t r : logit_rows)
    if (r < 0 || r >= n) throw ShapeError(ErrorContext().op("forward_paged"), "logit row outside");
  ids_.assign(ids.begin(), ids.end());
  pos_.assign(pos.begin(), pos.end());
  // Per row, the length its sequence's RoPE frequencies follow (dynamic / longrope): the rows
  // of one sequence must not see another's length.
  std::vector<int32_t> rope_len(static_cast<size_t>(n), 0);
  for (const auto& s : seqs)
    for (int64_t t = 0; t < s.n_new; ++t)
      rope_len[static_cast<size_t>(s.offset + t)] =
          static_cast<int32_t>(s.rope_len > 0 ? s.rope_len : s.n_past + s.n_new);
  for (int64_t t = 0; t < n; ++t)
    if (rope_len[static_cast<size_t>(t)] == 0) rope_len[static_cast<size_t>(t)] = pos[t] + 1;
  nn::KVCache view(pool, seqs);
  const int64_t H = decoder_config().hidden_size, V = lm_head_.out_features();
  float* hidden = hidden_.get(static_cast<size_t>(n * H));
  forward_hidden(Step{1, n, ids_.data(), pos_.data(), rope_len.data()}, view, hidden);
  const auto R = static_cast<int64_t>(logit_rows.size());
  Tensor logits = Tensor::empty(DType::F32, {R, V});
  if (R == 0) return logits;
  float* last = last_.get(static_cast<size_t>(R * H));
  for (int64_t i = 0; i < R; ++i)
    ctx_->copy_2d(last + i * H, H, hidden + logit_rows[i] * H, H, 1, H);
  lm_head_.forward(last, R, logits.mutable_data<float>(), *ctx_);
  softcap_logits(logits);
  return logits;
}

std::unique_ptr<CausalLM> load_causal_lm(const std::string& path_or_id, const LoadOptions& opts) {
  namespace fs = std::filesystem;
  const ModelSource src = resolve_model(path_or_id);
  if (src.kind == SourceKind::GgufFile) return load_gguf_causal_lm(src.path, opts);
  const std::string dir =
      src.kind == SourceKind::Directory ? src.path : fs::path(src.path).parent_path().string();
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path))
    throw NotFoundError(ErrorContext().file(cfg_path), "config.json not found beside the weights");
  const ModelConfig config = load_model_config(cfg_path);
  nn::CheckpointSource source(safetensors::Checkpoint::open(src.path), src.path);
  // GPTQ / AWQ: the quantized linears' qweight/qzeros/scales are read as `<module>.weight`.
  // AutoGPTQ's quantize_config.json stands in when config.json has no quantization_config.
  std::optional<QuantizationConfig> qc = common(config).quantization;
  if (const fs::path qf = fs::path(dir) / "quantize_config.json"; !qc && fs::exists(qf)) {
    const nlohmann::json j = read_json_file(qf.string());
    qc = parse_quantization_config(JsonReader(j, qf.string()));
  }
  std::optional<nn::QuantizedSource> quantized;
  if (qc) quantized.emplace(source, *qc);
  nn::Weights weights(quantized ? static_cast<const nn::WeightSource&>(*quantized) : source,
                      opts.dtype);
  weights.set_quantize(opts.quantize);
  return build_causal_lm(config, weights, opts);
}

}  // namespace ohm
