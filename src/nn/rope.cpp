// RoPE inverse frequencies, ported from transformers modeling_rope_utils.py (same formulas,
// f32 where HF uses f32 tensors, double where HF uses Python floats).
#include "ohm/nn/rope.h"

#include <algorithm>
#include <cmath>

#include "ohm/core/error.h"

namespace ohm::nn {

namespace {
constexpr double kPi = 3.14159265358979323846;
}

Rope::Rope(const DecoderConfig& c, std::optional<int64_t> original_max_pos) {
  rot_dim_ = static_cast<int64_t>(static_cast<double>(c.head_dim) * c.partial_rotary_factor);
  rot_dim_ -= rot_dim_ % 2;
  theta_ = c.rope_theta;
  max_pos_ = c.max_position_embeddings;
  if (c.rope_scaling) {
    s_ = *c.rope_scaling;
    type_ = s_.rope_type;
  }
  orig_max_pos_ = s_.original_max_position_embeddings.value_or(original_max_pos.value_or(max_pos_));
  const int64_t half = rot_dim_ / 2;

  if (type_ == "default" || type_ == "dynamic" || type_ == "longrope") {
    fixed_ = base_inv_freq(theta_);
  } else if (type_ == "linear") {
    fixed_ = base_inv_freq(theta_);
    for (auto& f : fixed_) f /= static_cast<float>(s_.factor);
  } else if (type_ == "llama3") {
    const auto inv = base_inv_freq(theta_);
    const double factor = s_.factor;
    const double lo = s_.low_freq_factor.value_or(1.0), hi = s_.high_freq_factor.value_or(4.0);
    const double old_ctx = static_cast<double>(orig_max_pos_);
    const double lo_wl = old_ctx / lo, hi_wl = old_ctx / hi;
    fixed_.resize(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const float f = inv[i];
      const float wl = static_cast<float>(2 * kPi) / f;
      const float f_llama = wl > lo_wl ? f / static_cast<float>(factor) : f;
      const float smooth = static_cast<float>((old_ctx / wl - lo) / (hi - lo));
      const float smoothed = (1 - smooth) * f_llama / static_cast<float>(factor) + smooth * f_llama;
      const bool medium = !(wl < hi_wl) && !(wl > lo_wl);
      fixed_[i] = medium ? smoothed : f_llama;
    }
  } else if (type_ == "yarn") {
    const double factor = s_.factor;
    auto get_mscale = [](double scale, double m) {
      return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
    };
    if (s_.attention_factor)
      attention_scaling_ = static_cast<float>(*s_.attention_factor);
    else if (s_.mscale && s_.mscale_all_dim && *s_.mscale != 0 && *s_.mscale_all_dim != 0)
      attention_scaling_ = static_cast<float>(get_mscale(factor, *s_.mscale) /
                                              get_mscale(factor, *s_.mscale_all_dim));
    else
      attention_scaling_ = static_cast<float>(get_mscale(factor, 1.0));
    const double beta_fast = s_.beta_fast.value_or(32.0), beta_slow = s_.beta_slow.value_or(1.0);
    const double dim = static_cast<double>(rot_dim_);
    auto corr_dim = [&](double rot) {
      return (dim * std::log(static_cast<double>(orig_max_pos_) / (rot * 2 * kPi))) /
             (2 * std::log(theta_));
    };
    double low = corr_dim(beta_fast), high = corr_dim(beta_slow);
    if (s_.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, dim - 1);
    if (low == high) high += 0.001;
    const auto extrap = base_inv_freq(theta_);
    fixed_.resize(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const float pos_freq = 1.0f / extrap[i];
      const float interp = 1.0f / (static_cast<float>(factor) * pos_freq);
      float ramp = static_cast<float>((static_cast<float>(i) - low) / (high - low));
      ramp = std::clamp(ramp, 0.0f, 1.0f);
      const float ef = 1.0f - ramp;
      fixed_[i] = interp * (1 - ef) + extrap[i] * ef;
    }
  } else {
    throw UnsupportedError(ErrorContext().key("rope_type"), "unsupported rope type " + type_);
  }

  if (type_ == "longrope") {
    if (static_cast<int64_t>(s_.short_factor.size()) != half ||
        static_cast<int64_t>(s_.long_factor.size()) != half)
      throw ConfigError(ErrorContext().key("rope_scaling"),
                        "longrope short_factor/long_factor must have rot_dim/2 = " +
                            std::to_string(half) + " entries");
    // HF: factor defaults to max_position_embeddings / original_max_position_embeddings.
    double factor = s_.factor;
    if (factor == 1.0 && orig_max_pos_ > 0)
      factor = static_cast<double>(max_pos_) / static_cast<double>(orig_max_pos_);
    if (s_.attention_factor)
      attention_scaling_ = static_cast<float>(*s_.attention_factor);
    else if (factor <= 1.0)
      attention_scaling_ = 1.0f;
    else
      attention_scaling_ = static_cast<float>(
          std::sqrt(1 + std::log(factor) / std::log(static_cast<double>(orig_max_pos_))));
  }
}

std::vector<float> Rope::base_inv_freq(double base) const {
  const int64_t half = rot_dim_ / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv[i] = 1.0f / std::pow(static_cast<float>(base),
                             static_cast<float>(2 * i) / static_cast<float>(rot_dim_));
  return inv;
}

std::vector<float> Rope::inv_freq(int64_t seq_len) const {
  if (type_ == "dynamic") {
    if (seq_len <= max_pos_) return fixed_;
    const double dim = static_cast<double>(rot_dim_);
    const double base =
        theta_ * std::pow(s_.factor * static_cast<double>(seq_len) / static_cast<double>(max_pos_) -
                              (s_.factor - 1),
                          dim / (dim - 2));
    return base_inv_freq(base);
  }
  if (type_ == "longrope") {
    const auto& ext = seq_len > orig_max_pos_ ? s_.long_factor : s_.short_factor;
    std::vector<float> inv(fixed_.size());
    for (size_t i = 0; i < inv.size(); ++i)
      inv[i] = 1.0f / (static_cast<float>(ext[i]) *
                       std::pow(static_cast<float>(theta_),
                                static_cast<float>(2 * i) / static_cast<float>(rot_dim_)));
    return inv;
  }
  return fixed_;
}

bool Rope::base_at(int64_t seq_len) const {
  if (type_ == "dynamic") return seq_len <= max_pos_;
  if (type_ == "longrope") return seq_len <= orig_max_pos_;
  return true;
}

void Rope::tables(const int32_t* pos, int64_t n, float* cos, float* sin,
                  const int32_t* seq_len) const {
  const int64_t half = rot_dim_ / 2;
  int64_t max_p = 0;
  for (int64_t t = 0; t < n; ++t) max_p = std::max<int64_t>(max_p, pos[t]);
  const bool varies = type_ == "dynamic" || type_ == "longrope";
  std::vector<float> tmp;
  int64_t tmp_len = -1;  // the seq_len tmp holds
  for (int64_t t = 0; t < n; ++t) {
    if (varies) {
      const int64_t len = seq_len ? seq_len[t] : max_p + 1;
      if (len != tmp_len) {
        tmp = inv_freq(len);
        tmp_len = len;
      }
    }
    const std::vector<float>& inv = varies ? tmp : fixed_;
    for (int64_t i = 0; i < half; ++i) {
      const float f = static_cast<float>(pos[t]) * inv[i];
      cos[t * half + i] = std::cos(f) * attention_scaling_;
      sin[t * half + i] = std::sin(f) * attention_scaling_;
    }
  }
}

}  // namespace ohm::nn
