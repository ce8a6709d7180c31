// transformers' WatermarkLogitsProcessor / WatermarkDetector, bit for bit (see the header).
#include "ohm/generation/watermark.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>

#include "ohm/core/error.h"

namespace ohm::generation {
namespace {

constexpr int64_t kTableSize = 1'000'003;
constexpr int kSelfhashCandidates = 40;  // transformers' _score_rejection_sampling

// torch.Generator.manual_seed(seed) on CPU: MT19937 initialised with the seed's low 32 bits.
std::mt19937 torch_generator(uint64_t seed) {
  return std::mt19937(static_cast<uint32_t>(seed & 0xffffffffu));
}

// torch.randperm(n, generator) on CPU (n < 2^32 / 20): r = 0..n-1, then for i < n - 1 swap r[i]
// with r[i + random() % (n - i)]. Only the first `prefix` positions are produced (they are
// final once their step has run).
std::vector<int64_t> randperm_prefix(std::mt19937& g, int64_t n, int64_t prefix) {
  std::vector<int64_t> r(static_cast<size_t>(n));
  std::iota(r.begin(), r.end(), 0);
  const int64_t steps = std::min(prefix, n - 1);
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t z = static_cast<int64_t>(g()) % (n - i);
    std::swap(r[static_cast<size_t>(i)], r[static_cast<size_t>(i + z)]);
  }
  r.resize(static_cast<size_t>(std::min(prefix, n)));
  return r;
}

// Whether `token` lands in the first `prefix` positions of that permutation, without building
// it: follow the token's position through the swaps.
bool in_randperm_prefix(std::mt19937& g, int64_t n, int64_t prefix, int64_t token) {
  int64_t pos = token;
  const int64_t steps = std::min(prefix, n - 1);
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t j = i + static_cast<int64_t>(g()) % (n - i);
    if (pos == i)
      pos = j;
    else if (pos == j)
      pos = i;
    if (pos == i) return true;  // position i is final after step i
  }
  return pos < prefix;
}

// The fixed table of selfhash: randperm(1,000,003) seeded with the hashing key (cached per key).
const std::vector<int64_t>& fixed_table(uint64_t key) {
  static std::mutex mu;
  static std::map<uint64_t, std::shared_ptr<const std::vector<int64_t>>> cache;
  std::lock_guard<std::mutex> l(mu);
  auto& slot = cache[key];
  if (!slot) {
    std::mt19937 g = torch_generator(key);
    slot = std::make_shared<const std::vector<int64_t>>(randperm_prefix(g, kTableSize, kTableSize));
  }
  return *slot;
}

// WatermarkLogitsProcessor.set_seed: the generator seed for the context `seq` (its last
// context_width tokens), as `seed % (2**64 - 1)` in Python.
uint64_t watermark_seed(const WatermarkingConfig& w, std::span<const TokenId> seq) {
  const size_t cw = static_cast<size_t>(w.context_width);
  const std::span<const TokenId> win = seq.size() > cw ? seq.subspan(seq.size() - cw) : seq;
  const uint64_t m = ~uint64_t{0};  // 2^64 - 1
  if (w.seeding_scheme == "selfhash") {
    const auto& t = fixed_table(w.hashing_key);
    // torch int64 arithmetic: hashing_key * a * b wraps around.
    const uint64_t b = static_cast<uint64_t>(t[static_cast<size_t>(win.back() % kTableSize)] + 1);
    int64_t best = 0;
    for (size_t j = 0; j < win.size(); ++j) {
      const uint64_t a = static_cast<uint64_t>(t[static_cast<size_t>(win[j] % kTableSize)] + 1);
      const int64_t v = static_cast<int64_t>(w.hashing_key * a * b);
      if (j == 0 || v < best) best = v;
    }
    // Python's modulo of a negative int by 2^64 - 1 is non-negative: v + 2^64 - 1.
    return best >= 0 ? static_cast<uint64_t>(best) % m : static_cast<uint64_t>(best) - 1;
  }
  __extension__ typedef unsigned __int128 u128;
  const u128 s = static_cast<u128>(w.hashing_key) * static_cast<uint64_t>(win.back());
  return static_cast<uint64_t>(s % m);
}

int64_t greenlist_size(const WatermarkingConfig& w, int64_t vocab) {
  return static_cast<int64_t>(static_cast<double>(vocab) * w.greenlist_ratio);
}

bool is_green(const WatermarkingConfig& w, int64_t vocab, std::span<const TokenId> seq,
              TokenId target) {
  std::mt19937 g = torch_generator(watermark_seed(w, seq));
  return in_randperm_prefix(g, vocab, greenlist_size(w, vocab), target);
}

double number(const std::string& key, const std::string& v) {
  size_t pos = 0;
  double d = 0;
  try {
    d = std::stod(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != v.size()) throw InvalidArgument(key + "=" + v + " is not a number");
  return d;
}

}  // namespace

WatermarkingConfig parse_watermark_spec(const std::string& spec) {
  WatermarkingConfig w;
  std::stringstream ss(spec);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string::npos) throw InvalidArgument("'" + part + "' is not KEY=VALUE");
    const std::string k = part.substr(0, eq), v = part.substr(eq + 1);
    if (k == "gamma" || k == "greenlist_ratio") {
      w.greenlist_ratio = number(k, v);
    } else if (k == "delta" || k == "bias") {
      w.bias = number(k, v);
    } else if (k == "seeding_scheme") {
      w.seeding_scheme = v;
    } else if (k == "context_width") {
      const double d = number(k, v);
      if (d != std::floor(d) || d < 1 || d > 128)
        throw InvalidArgument("context_width=" + v + " must be an integer in 1..128");
      w.context_width = static_cast<int64_t>(d);
    } else if (k == "hashing_key") {
      size_t pos = 0;
      uint64_t key = 0;
      try {
        key = std::stoull(v, &pos);
      } catch (const std::exception&) {
        pos = 0;
      }
      if (pos == 0 || pos != v.size() || v[0] == '-')
        throw InvalidArgument("hashing_key=" + v + " is not a non-negative integer");
      w.hashing_key = key;
    } else {
      throw InvalidArgument("unknown key '" + k +
                            "' (gamma, delta, seeding_scheme, context_width, hashing_key)");
    }
  }
  validate_watermarking_config(w, "");
  return w;
}

std::vector<TokenId> watermark_greenlist(const WatermarkingConfig& w, int64_t vocab_size,
                                         std::span<const TokenId> seq) {
  std::mt19937 g = torch_generator(watermark_seed(w, seq));
  const auto p = randperm_prefix(g, vocab_size, greenlist_size(w, vocab_size));
  return std::vector<TokenId>(p.begin(), p.end());
}

WatermarkProcessor::WatermarkProcessor(WatermarkingConfig w) : w_(std::move(w)) {
  validate_watermarking_config(w_, "watermarking_config");
  if (w_.seeding_scheme == "selfhash") fixed_table(w_.hashing_key);  // built once, up front
}

void WatermarkProcessor::apply(std::span<const TokenId> seq, int64_t,
                               std::span<float> scores) const {
  // transformers skips the step (with a warning) while the sequence is shorter than the window.
  if (seq.empty() || static_cast<int64_t>(seq.size()) < w_.context_width) return;
  const int64_t vocab = static_cast<int64_t>(scores.size());
  const float bias = static_cast<float>(w_.bias);
  if (w_.seeding_scheme == "lefthash") {
    for (TokenId t : watermark_greenlist(w_, vocab, seq))
      scores[static_cast<size_t>(t)] = scores[static_cast<size_t>(t)] + bias;
    return;
  }
  // selfhash: the best candidates, each green under the seed that includes it.
  std::vector<TokenId> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(kSelfhashCandidates, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](TokenId a, TokenId b) {
                      const float sa = scores[static_cast<size_t>(a)],
                                  sb = scores[static_cast<size_t>(b)];
                      return sa > sb || (sa == sb && a < b);
                    });
  std::vector<TokenId> ctx(seq.begin(), seq.end());
  ctx.push_back(0);
  std::vector<TokenId> green;
  for (size_t i = 0; i < k; ++i) {
    ctx.back() = order[i];
    if (is_green(w_, vocab, ctx, order[i])) green.push_back(order[i]);
  }
  for (TokenId t : green) scores[static_cast<size_t>(t)] = scores[static_cast<size_t>(t)] + bias;
}

WatermarkDetection detect_watermark(const WatermarkingConfig& w, int64_t vocab_size,
                                    std::vector<TokenId> ids, std::optional<int64_t> bos_token_id,
                                    double z_threshold, bool ignore_repeated_ngrams) {
  validate_watermarking_config(w, "watermark detection");
  if (!ids.empty() && bos_token_id && ids.front() == *bos_token_id) ids.erase(ids.begin());
  if (static_cast<int64_t>(ids.size()) - w.context_width < 1)
    throw InvalidArgument(
        "watermark detection needs at least " + std::to_string(w.context_width + 1) +
        " tokens (the seeding window plus one scored token); got " + std::to_string(ids.size()));
  for (TokenId t : ids)
    if (t < 0 || t >= vocab_size)
      throw InvalidArgument("watermark detection: token id " + std::to_string(t) +
                            " is outside the vocabulary (" + std::to_string(vocab_size) + ")");
  const bool selfhash = w.seeding_scheme == "selfhash";
  const size_t n = static_cast<size_t>(w.context_width + 1 - (selfhash ? 1 : 0));
  std::map<std::vector<TokenId>, int64_t> freq;
  for (size_t i = 0; i + n <= ids.size(); ++i)
    ++freq[std::vector<TokenId>(ids.begin() + static_cast<std::ptrdiff_t>(i),
                                ids.begin() + static_cast<std::ptrdiff_t>(i + n))];
  WatermarkDetection d;
  for (const auto& [ngram, count] : freq) {
    const std::span<const TokenId> prefix(ngram.data(), selfhash ? n : n - 1);
    const bool green = is_green(w, vocab_size, prefix, ngram.back());
    d.num_tokens_scored += ignore_repeated_ngrams ? 1 : count;
    d.num_green_tokens += green ? (ignore_repeated_ngrams ? 1 : count) : 0;
  }
  const double T = static_cast<double>(d.num_tokens_scored), g = w.greenlist_ratio;
  d.green_fraction = static_cast<double>(d.num_green_tokens) / T;
  d.z_score = (static_cast<double>(d.num_green_tokens) - g * T) / std::sqrt(T * g * (1 - g));
  d.p_value = 0.5 * std::erfc(d.z_score / std::sqrt(2.0));
  d.prediction = d.z_score > z_threshold;
  return d;
}

}  // namespace ohm::generation
