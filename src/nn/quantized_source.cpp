// GPTQ / AWQ tensors -> ohm's block types (see ohm/nn/quantized_source.h for the mapping).
//
// Layouts (../shared/docs/runtime-formats-and-peers.md §2.1, §2.2):
//   GPTQ qweight int32 [K*b/32, N]: word [r, n] holds input rows r*(32/b) + k in bits b*k...
//        qzeros  int32 [G, N*b/32]: word [g, c] holds the zero of column c*(32/b) + k in bits b*k
//        scales  f16   [G, N];  g_idx int32 [K] (optional; i / group_size when absent)
//        v1 ("gptq") stores zero - 1: the zero is (stored + 1) mod 2^b, as AutoGPTQ unpacks it
//   AWQ  qweight int32 [K, N/8]: word [i, c] nibble k holds column 8c + kAwqOrder[k]
//        qzeros  int32 [G, N/8] (same interleave), scales f16 [G, N]; zeros stored as is
// W[n, i] = scales[g(i), n] * (q[i, n] - zero[g(i), n]).
#include "ohm/nn/quantized_source.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/core/thread_pool.h"

namespace ohm::nn {

namespace {

constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
constexpr int64_t kBlock = 32;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// One quantized linear's tensors, unpacked to one byte per value.
struct Unpacked {
  int64_t K = 0, N = 0, groups = 0;
  std::vector<uint8_t> q;       // [K, N]
  std::vector<int32_t> zero;    // [groups, N]
  std::vector<uint16_t> scale;  // [groups, N] f16 bits
  std::vector<int32_t> g_idx;   // [K]
};

// Gives a mapped tensor's whole pages back to the page cache (MappedFile::release).
void release_pages(const Tensor& t) {
  if (const auto& st = t.storage(); st && st->is_mapped())
    st->file()->release(
        static_cast<uint64_t>(static_cast<const uint8_t*>(t.raw()) - st->file()->data()),
        t.nbytes());
}

}  // namespace

DType asym4_block_type(const kernels::KernelTable& kt) {
  const auto q5 = static_cast<int>(DType::Q5_0), q8 = static_cast<int>(DType::Q8_0);
  if (kt.pack_fine[q5] || kt.matmul_fine[q5] || !kt.matmul_fine[q8]) return DType::Q5_0;
  return DType::Q8_0;
}

QuantizedSource::QuantizedSource(const WeightSource& base, QuantizationConfig q)
    : base_(base), q_(std::move(q)) {}

std::string QuantizedSource::stored_as(const std::string& name) const {
  if (ends_with(name, ".weight")) {
    const std::string prefix = name.substr(0, name.size() - 7);
    if (base_.find(prefix + ".qweight")) return prefix + ".qweight";
  }
  return name;
}

std::optional<Tensor> QuantizedSource::find(const std::string& name) const {
  if (ends_with(name, ".weight")) {
    if (const Repacked* r = repack(name.substr(0, name.size() - 7))) return r->weight;
  }
  return base_.find(name);
}

std::optional<std::vector<int32_t>> QuantizedSource::find_input_permutation(
    const std::string& name) const {
  if (!ends_with(name, ".weight")) return std::nullopt;
  const Repacked* r = repack(name.substr(0, name.size() - 7));
  if (!r || r->perm.empty()) return std::nullopt;
  return r->perm;
}

bool QuantizedSource::find_float_activations(const std::string& name) const {
  return ends_with(name, ".weight") && repack(name.substr(0, name.size() - 7)) != nullptr;
}

std::vector<std::string> QuantizedSource::names() const {
  std::vector<std::string> out;
  for (const std::string& n : base_.names()) {
    if (ends_with(n, ".qweight")) {
      out.push_back(n.substr(0, n.size() - 8) + ".weight");
    } else if (ends_with(n, ".qzeros") || ends_with(n, ".scales") || ends_with(n, ".g_idx")) {
      const std::string prefix = n.substr(0, n.rfind('.'));
      if (!base_.find(prefix + ".qweight")) out.push_back(n);
    } else {
      out.push_back(n);
    }
  }
  return out;
}

void QuantizedSource::release(const std::string& name) const {
  if (!ends_with(name, ".weight")) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = cache_.find(name.substr(0, name.size() - 7)); it != cache_.end())
    it->second.weight = Tensor();
}

const QuantizedSource::Repacked* QuantizedSource::repack(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = cache_.find(prefix); it != cache_.end()) {
    if (it->second.weight.defined()) return &it->second;
    cache_.erase(it);  // released (release()): repack again
  }
  const std::optional<Tensor> qweight = base_.find(prefix + ".qweight");
  if (!qweight) return nullptr;

  const std::string file = base_.describe();
  const bool awq = q_.quant_method == "awq";
  const int64_t bits = q_.bits;
  const int64_t per_word = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  const auto need = [&](const std::string& suffix) {
    std::optional<Tensor> t = base_.find(prefix + suffix);
    if (!t)
      throw NotFoundError(ErrorContext().file(file).tensor(prefix + suffix),
                          "missing (" + q_.quant_method + " module " + prefix + " has a qweight)");
    return *t;
  };
  const auto check = [&](const Tensor& t, const std::string& suffix, DType dtype,
                         const Shape& shape) {
    if (t.dtype() != dtype)
      throw DTypeError(ErrorContext().file(file).tensor(prefix + suffix),
                       "stored as " + std::string(ohm::name(t.dtype())) + ", expected " +
                           std::string(ohm::name(dtype)));
    if (t.shape() != shape)
      throw ShapeError(ErrorContext()
                           .file(file)
                           .tensor(prefix + suffix)
                           .shape("expected", shape)
                           .shape("found", t.shape()),
                       "shape disagrees with quantization_config (" + q_.quant_method + ", bits " +
                           std::to_string(bits) + ", group_size " + std::to_string(q_.group_size) +
                           ")");
  };

  if (qweight->ndim() != 2 || qweight->dtype() != DType::I32)
    throw ShapeError(ErrorContext().file(file).tensor(prefix + ".qweight"),
                     "expected a 2-D int32 tensor, found " +
                         std::string(ohm::name(qweight->dtype())) + " " +
                         shape_str(qweight->shape()));
  Unpacked u;
  if (awq) {
    u.K = qweight->dim(0);
    u.N = qweight->dim(1) * per_word;
  } else {
    u.K = qweight->dim(0) * per_word;
    u.N = qweight->dim(1);
  }
  const int64_t G = q_.group_size == -1 ? u.K : q_.group_size;
  u.groups = (u.K + G - 1) / G;
  if (u.K % kBlock != 0)
    throw UnsupportedError(ErrorContext().file(file).tensor(prefix + ".qweight"),
                           "input size " + std::to_string(u.K) + " is not a multiple of 32");
  const Tensor scales = need(".scales");
  const Tensor qzeros = need(".qzeros");
  check(scales, ".scales", DType::F16, {u.groups, u.N});
  if (u.N % per_word != 0)
    throw ShapeError(ErrorContext().file(file).tensor(prefix + ".scales"),
                     "output size " + std::to_string(u.N) + " is not a multiple of " +
                         std::to_string(per_word) + " (qzeros packing)");
  check(qzeros, ".qzeros", DType::I32, {u.groups, u.N / per_word});

  // Unpack to q[n, i] (one byte per value, output-major so that the packing below reads rows),
  // in parallel over output columns.
  const size_t KN = static_cast<size_t>(u.K * u.N);
  u.q.resize(KN);
  const auto* qw = qweight->data<uint32_t>();
  ThreadPool& pool = ThreadPool::global();
  const int64_t K = u.K, N = u.N;
  if (awq) {
    pool.parallel_for(N / 8, 8, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t i = 0; i < K; ++i) {
          const uint32_t w = qw[i * (N / 8) + c];
          for (int k = 0; k < 8; ++k)
            u.q[static_cast<size_t>((c * 8 + kAwqOrder[k]) * K + i)] =
                static_cast<uint8_t>((w >> (4 * k)) & 0xF);
        }
    });
  } else {
    pool.parallel_for(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t r = 0; r < K / per_word; ++r) {
          const uint32_t w = qw[r * N + n];
          for (int64_t k = 0; k < per_word; ++k)
            u.q[static_cast<size_t>(n * K + r * per_word + k)] =
                static_cast<uint8_t>((w >> (bits * k)) & mask);
        }
    });
  }
  u.zero.resize(static_cast<size_t>(u.groups * u.N));
  const auto* qz = qzeros.data<uint32_t>();
  const int64_t zw = u.N / per_word;
  const bool v1 = !awq && q_.checkpoint_format == "gptq";
  for (int64_t g = 0; g < u.groups; ++g)
    for (int64_t c = 0; c < zw; ++c) {
      const uint32_t w = qz[g * zw + c];
      for (int64_t k = 0; k < per_word; ++k) {
        const int64_t n = c * per_word + (awq ? kAwqOrder[k] : k);
        uint32_t z = (w >> (bits * k)) & mask;
        if (v1) z = (z + 1) & mask;  // AutoGPTQ packs zero - 1 and adds 1 back (mod 2^bits)
        u.zero[static_cast<size_t>(g * u.N + n)] = static_cast<int32_t>(z);
      }
    }
  u.scale.resize(static_cast<size_t>(u.groups * u.N));
  std::memcpy(u.scale.data(), scales.raw(), u.scale.size() * sizeof(uint16_t));

  u.g_idx.resize(static_cast<size_t>(u.K));
  bool identity_groups = true;
  if (std::optional<Tensor> gi = awq ? std::nullopt : base_.find(prefix + ".g_idx")) {
    check(*gi, ".g_idx", DType::I32, {u.K});
    const auto* p = gi->data<int32_t>();
    for (int64_t i = 0; i < u.K; ++i) {
      if (p[i] < 0 || p[i] >= u.groups)
        throw ShapeError(ErrorContext().file(file).tensor(prefix + ".g_idx"),
                         "g_idx[" + std::to_string(i) + "] = " + std::to_string(p[i]) +
                             " is outside [0, " + std::to_string(u.groups) + ")");
      u.g_idx[static_cast<size_t>(i)] = p[i];
      if (p[i] != i / G) identity_groups = false;
    }
  } else {
    for (int64_t i = 0; i < u.K; ++i) u.g_idx[static_cast<size_t>(i)] = static_cast<int32_t>(i / G);
  }

  Repacked out;
  std::vector<int32_t> order(static_cast<size_t>(u.K));
  std::iota(order.begin(), order.end(), 0);
  if (!identity_groups) {
    // Act-order: sort the input columns by group (stable), then every 32-column block must
    // lie in one group, which holds when each group has a multiple of 32 members.
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return u.g_idx[static_cast<size_t>(a)] < u.g_idx[static_cast<size_t>(b)];
    });
    out.perm = order;
  }
  const int64_t nblocks = u.K / kBlock;
  std::vector<int32_t> block_group(static_cast<size_t>(nblocks));
  for (int64_t b = 0; b < nblocks; ++b) {
    const int32_t g0 = u.g_idx[static_cast<size_t>(order[static_cast<size_t>(b * kBlock)])];
    for (int64_t j = 1; j < kBlock; ++j)
      if (u.g_idx[static_cast<size_t>(order[static_cast<size_t>(b * kBlock + j)])] != g0)
        throw UnsupportedError(ErrorContext().file(file).tensor(prefix + ".g_idx"),
                               "a group's input columns do not fill whole blocks of 32 (each "
                               "group needs a multiple of 32 members)");
    block_group[static_cast<size_t>(b)] = g0;
  }

  const int32_t mid = 1 << (bits - 1);
  const bool all_mid =
      std::all_of(u.zero.begin(), u.zero.end(), [&](int32_t z) { return z == mid; });
  const auto qv = [&](int64_t n, int64_t j) {  // the value of input column order[j], row n
    return static_cast<int32_t>(u.q[static_cast<size_t>(n * K + order[static_cast<size_t>(j)])]);
  };
  if (bits == 8 && !all_mid) {
    // No int8 block holds q - zero in [-255, 255]: exact f32 values instead.
    out.weight = Tensor::empty(DType::F32, {N, K});
    float* w = out.weight.mutable_data<float>();
    pool.parallel_for(N, 16, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t j = 0; j < K; ++j) {
          const size_t gi =
              static_cast<size_t>(block_group[static_cast<size_t>(j / kBlock)] * N + n);
          w[n * K + j] = f16_to_f32(u.scale[gi]) * static_cast<float>(qv(n, j) - u.zero[gi]);
        }
    });
  } else {
    const DType dt = bits == 8 ? DType::Q8_0
                     : all_mid ? DType::Q4_0
                               : asym4_block_type(kernels::active());
    out.weight = Tensor::empty(dt, {N, K});
    const size_t bb = traits(dt).type_size;
    auto* dst = static_cast<uint8_t*>(out.weight.mutable_raw());
    pool.parallel_for(N, 16, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t b = 0; b < nblocks; ++b) {
          uint8_t* blk = dst + static_cast<size_t>(n * nblocks + b) * bb;
          const size_t gi = static_cast<size_t>(block_group[static_cast<size_t>(b)] * N + n);
          std::memcpy(blk, &u.scale[gi], 2);  // d: the group's f16 scale, bit for bit
          const int32_t z = u.zero[gi];
          const int64_t j0 = b * kBlock;
          if (dt == DType::Q8_0) {  // {d, int8 qs[32]}: q - zero (8-bit sym: zero 128)
            for (int64_t j = 0; j < kBlock; ++j)
              blk[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(qv(n, j0 + j) - z));
          } else if (dt == DType::Q4_0) {  // {d, qs[16]}: element j low nibble, j + 16 high
            for (int64_t j = 0; j < 16; ++j)
              blk[2 + j] = static_cast<uint8_t>(qv(n, j0 + j) | (qv(n, j0 + j + 16) << 4));
          } else {  // Q5_0 {d, qh[4], qs[16]}: value v = q - zero + 16 in [1, 31] (z in [0, 15])
            uint32_t qh = 0;
            for (int64_t j = 0; j < 16; ++j) {
              const auto v0 = static_cast<uint32_t>(qv(n, j0 + j) - z + 16);
              const auto v1v = static_cast<uint32_t>(qv(n, j0 + j + 16) - z + 16);
              blk[6 + j] = static_cast<uint8_t>((v0 & 0xF) | ((v1v & 0xF) << 4));
              qh |= ((v0 >> 4) & 1u) << j;
              qh |= ((v1v >> 4) & 1u) << (j + 16);
            }
            std::memcpy(blk + 2, &qh, 4);
          }
        }
    });
  }
  // The checkpoint's pages of this module go back to the page cache: the repacked copy is what
  // runs (resident memory stays near one copy of the weights).
  for (const Tensor* t : {&*qweight, &scales, &qzeros}) release_pages(*t);
  if (std::optional<Tensor> gi = base_.find(prefix + ".g_idx")) release_pages(*gi);
  return &cache_.emplace(prefix, std::move(out)).first->second;
}

}  // namespace ohm::nn
