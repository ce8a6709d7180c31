#include "ohm/generation/logits_process.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ohm/core/error.h"
#include "ohm/generation/watermark.h"

namespace ohm::generation {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Indices of `x` sorted by value (ascending), ties by index (a stable sort, as torch.sort on
// CPU behaves for these sizes).
std::vector<int64_t> argsort(std::span<const float> x, bool descending) {
  std::vector<int64_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  if (descending)
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return x[a] > x[b]; });
  else
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return x[a] < x[b]; });
  return idx;
}

std::vector<double> softmax_of(std::span<const float> x) {
  double m = -std::numeric_limits<double>::infinity();
  for (float v : x) m = std::max<double>(m, v);
  std::vector<double> p(x.size());
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) sum += p[i] = std::isinf(m) ? 0.0 : std::exp(x[i] - m);
  for (auto& v : p) v /= sum;
  return p;
}

void mask_eos(std::span<float> scores, const std::vector<int64_t>& eos) {
  for (int64_t e : eos)
    if (e >= 0 && e < static_cast<int64_t>(scores.size())) scores[e] = kNegInf;
}
}  // namespace

void softmax(std::span<float> x) {
  const auto p = softmax_of(x);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(p[i]);
}

void log_softmax(std::span<float> x) {
  double m = -std::numeric_limits<double>::infinity();
  for (float v : x) m = std::max<double>(m, v);
  double sum = 0;
  for (float v : x) sum += std::exp(v - m);
  const double lse = m + std::log(sum);
  for (auto& v : x) v = static_cast<float>(v - lse);
}

// ---- processors ----------------------------------------------------------------------------

RepetitionPenalty::RepetitionPenalty(double penalty) : penalty_(static_cast<float>(penalty)) {
  if (!(penalty > 0))
    throw InvalidArgument(ErrorContext().key("repetition_penalty"), "must be > 0");
}
void RepetitionPenalty::apply(std::span<const TokenId> seq, int64_t, std::span<float> s) const {
  // Every distinct token once (torch.gather/scatter over input_ids).
  std::vector<TokenId> seen(seq.begin(), seq.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (TokenId t : seen) {
    if (t < 0 || t >= static_cast<int64_t>(s.size())) continue;
    s[t] = s[t] < 0 ? s[t] * penalty_ : s[t] / penalty_;
  }
}

NoRepeatNGram::NoRepeatNGram(int64_t n) : n_(n) {
  if (n <= 0) throw InvalidArgument(ErrorContext().key("no_repeat_ngram_size"), "must be > 0");
}
void NoRepeatNGram::apply(std::span<const TokenId> seq, int64_t, std::span<float> s) const {
  const int64_t len = static_cast<int64_t>(seq.size());
  if (len < n_) return;
  // The current (n-1)-gram prefix: the last n-1 tokens.
  const int64_t p = len - (n_ - 1);
  for (int64_t start = 0; start + n_ <= len; ++start) {
    bool match = true;
    for (int64_t j = 0; j < n_ - 1 && match; ++j) match = seq[start + j] == seq[p + j];
    if (match) {
      const int64_t banned = seq[start + n_ - 1];
      if (banned >= 0 && banned < static_cast<int64_t>(s.size())) s[banned] = kNegInf;
    }
  }
}

NoBadWords::NoBadWords(std::vector<std::vector<int64_t>> bad_words, std::vector<int64_t> eos) {
  // transformers drops bad word sequences equal to [eos].
  for (auto& w : bad_words) {
    if (w.empty()) throw InvalidArgument(ErrorContext().key("bad_words_ids"), "empty sequence");
    if (w.size() == 1 && std::find(eos.begin(), eos.end(), w[0]) != eos.end()) continue;
    bad_.push_back(std::move(w));
  }
}
void NoBadWords::apply(std::span<const TokenId> seq, int64_t, std::span<float> s) const {
  for (const auto& w : bad_) {
    const size_t pre = w.size() - 1;
    if (pre > seq.size()) continue;
    if (!std::equal(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(pre),
                    seq.end() - static_cast<std::ptrdiff_t>(pre)))
      continue;
    if (w.back() >= 0 && w.back() < static_cast<int64_t>(s.size())) s[w.back()] = kNegInf;
  }
}

MinLength::MinLength(int64_t min_length, std::vector<int64_t> eos)
    : min_length_(min_length), eos_(std::move(eos)) {}
void MinLength::apply(std::span<const TokenId> seq, int64_t, std::span<float> s) const {
  if (static_cast<int64_t>(seq.size()) < min_length_) mask_eos(s, eos_);
}

MinNewTokens::MinNewTokens(int64_t min_new_tokens, std::vector<int64_t> eos)
    : min_new_(min_new_tokens), eos_(std::move(eos)) {}
void MinNewTokens::apply(std::span<const TokenId> seq, int64_t prompt_len,
                         std::span<float> s) const {
  if (static_cast<int64_t>(seq.size()) - prompt_len < min_new_) mask_eos(s, eos_);
}

Temperature::Temperature(double t) : t_(static_cast<float>(t)) {
  if (!(t > 0))
    throw InvalidArgument(ErrorContext().key("temperature"), "must be > 0 when sampling");
}
void Temperature::apply(std::span<const TokenId>, int64_t, std::span<float> s) const {
  for (auto& v : s) v /= t_;
}

TopK::TopK(int64_t k, int64_t min_tokens_to_keep) : k_(std::max(k, min_tokens_to_keep)) {
  if (k <= 0) throw InvalidArgument(ErrorContext().key("top_k"), "must be > 0");
}
void TopK::apply(std::span<const TokenId>, int64_t, std::span<float> s) const {
  const int64_t k = std::min<int64_t>(k_, static_cast<int64_t>(s.size()));
  std::vector<float> tmp(s.begin(), s.end());
  std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end(), std::greater<float>());
  const float kth = tmp[static_cast<size_t>(k - 1)];
  for (auto& v : s)
    if (v < kth) v = kNegInf;
}

TopP::TopP(double p, int64_t min_tokens_to_keep) : p_(p), min_keep_(min_tokens_to_keep) {
  if (p < 0 || p > 1) throw InvalidArgument(ErrorContext().key("top_p"), "must be in [0, 1]");
}
void TopP::apply(std::span<const TokenId>, int64_t, std::span<float> s) const {
  const auto order = argsort(s, /*descending=*/false);
  std::vector<float> sorted(s.size());
  for (size_t i = 0; i < s.size(); ++i) sorted[i] = s[order[i]];
  const auto p = softmax_of(sorted);
  const int64_t n = static_cast<int64_t>(s.size());
  double cum = 0;
  for (int64_t i = 0; i < n; ++i) {
    cum += p[i];
    const bool keep_tail = i >= n - min_keep_;
    if (cum <= 1.0 - p_ && !keep_tail) s[order[i]] = kNegInf;
  }
}

MinP::MinP(double p, int64_t min_tokens_to_keep) : p_(p), min_keep_(min_tokens_to_keep) {
  if (p < 0 || p > 1) throw InvalidArgument(ErrorContext().key("min_p"), "must be in [0, 1]");
}
void MinP::apply(std::span<const TokenId>, int64_t, std::span<float> s) const {
  const auto p = softmax_of(s);
  const double top = *std::max_element(p.begin(), p.end());
  const double thr = p_ * top;
  std::vector<char> keep(s.size(), 0);
  const auto order = argsort(s, /*descending=*/true);
  for (int64_t i = 0; i < std::min<int64_t>(min_keep_, static_cast<int64_t>(s.size())); ++i)
    keep[order[i]] = 1;
  for (size_t i = 0; i < s.size(); ++i)
    if (p[i] < thr && !keep[i]) s[i] = kNegInf;
}

Typical::Typical(double mass, int64_t min_tokens_to_keep)
    : mass_(mass), min_keep_(min_tokens_to_keep) {
  if (!(mass > 0 && mass < 1))
    throw InvalidArgument(ErrorContext().key("typical_p"), "must be in (0, 1)");
}
void Typical::apply(std::span<const TokenId>, int64_t, std::span<float> s) const {
  const int64_t n = static_cast<int64_t>(s.size());
  const auto p = softmax_of(s);
  double ent = 0;
  for (double v : p)
    if (v > 0) ent -= v * std::log(v);
  std::vector<float> shifted(s.size());
  for (int64_t i = 0; i < n; ++i)
    shifted[i] = p[i] > 0 ? static_cast<float>(std::fabs(-std::log(p[i]) - ent))
                          : std::numeric_limits<float>::infinity();
  const auto order = argsort(shifted, /*descending=*/false);
  std::vector<float> sorted_logits(s.size());
  for (int64_t i = 0; i < n; ++i) sorted_logits[i] = s[order[i]];
  const auto sp = softmax_of(sorted_logits);
  int64_t last_ind = 0;
  double cum = 0;
  for (int64_t i = 0; i < n; ++i) {
    cum += sp[i];
    if (cum < mass_) ++last_ind;
  }
  last_ind = std::min(last_ind, n - 1);
  const float cutoff = shifted[order[last_ind]];
  for (int64_t i = 0; i < n; ++i)
    if (shifted[order[i]] > cutoff && i >= min_keep_) s[order[i]] = kNegInf;
}

int64_t argmax(std::span<const float> s) {
  int64_t best = 0;
  for (int64_t i = 1; i < static_cast<int64_t>(s.size()); ++i)
    if (s[i] > s[best]) best = i;
  return best;
}

int64_t sample_token(std::span<const float> scores, std::mt19937_64& rng) {
  const auto p = softmax_of(scores);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = u(rng);
  double cum = 0;
  int64_t last_nonzero = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(p.size()); ++i) {
    if (p[i] <= 0) continue;
    last_nonzero = i;
    cum += p[i];
    if (r < cum) return i;
  }
  return last_nonzero;  // rounding: the sum fell just short of 1
}

std::vector<std::string> LogitsProcessorList::names() const {
  std::vector<std::string> r;
  for (const auto& s : stages_) r.push_back(s->name());
  return r;
}

LogitsProcessorList build_logits_processors(const GenerationConfig& g) {
  LogitsProcessorList l;
  if (g.repetition_penalty != 1.0) l.add(std::make_unique<RepetitionPenalty>(g.repetition_penalty));
  if (g.no_repeat_ngram_size > 0) l.add(std::make_unique<NoRepeatNGram>(g.no_repeat_ngram_size));
  if (!g.bad_words_ids.empty())
    l.add(std::make_unique<NoBadWords>(g.bad_words_ids, g.eos_token_id));
  if (g.min_length > 0 && !g.eos_token_id.empty())
    l.add(std::make_unique<MinLength>(g.min_length, g.eos_token_id));
  if (g.min_new_tokens && *g.min_new_tokens > 0 && !g.eos_token_id.empty())
    l.add(std::make_unique<MinNewTokens>(*g.min_new_tokens, g.eos_token_id));
  if (g.do_sample) {
    const int64_t keep = g.num_beams > 1 ? static_cast<int64_t>(g.eos_token_id.size()) + 1 : 1;
    if (g.temperature != 1.0) l.add(std::make_unique<Temperature>(g.temperature));
    if (g.top_k != 0) l.add(std::make_unique<TopK>(g.top_k, keep));
    if (g.top_p < 1.0) l.add(std::make_unique<TopP>(g.top_p, keep));
    if (g.min_p) l.add(std::make_unique<MinP>(*g.min_p, keep));
    if (g.typical_p < 1.0) l.add(std::make_unique<Typical>(g.typical_p, keep));
  }
  // After every other processor and warper, as transformers orders it (its #34630).
  if (g.watermarking_config) l.add(std::make_unique<WatermarkProcessor>(*g.watermarking_config));
  return l;
}

}  // namespace ohm::generation
