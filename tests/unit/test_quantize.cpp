// Reference quantizers: bit-exact with gguf-py's gguf.quants.quantize (itself bit-exact with
// ggml's quantize_row_*_ref) on tests/fixtures/quant (scripts/make_quantize_fixtures.py), whose
// gguf.quants.dequantize the to_float rows reproduce bit for bit; Q4_K and Q6_K bit-exact with
// ggml's reference quantizers restated in numpy (gguf-py has none) on tests/fixtures/quant/kquant
// (scripts/make_kquant_fixtures.py), plus error bounds / invariants; and the QuantTraits table's
// consumers.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/core/quant_traits.h"
#include "ohm/formats/gguf.h"
#include "ohm/kernels/kernels.h"
#include "ohm/quant/dequant.h"
#include "ohm/quant/quantize.h"
#include "test_util.h"

namespace ohm {
namespace {

constexpr int64_t kRows = 16, kCols = 256;

Tensor zeros(Shape shape) {
  Tensor t = Tensor::empty(DType::F32, std::move(shape));
  std::memset(t.mutable_raw(), 0, t.nbytes());
  return t;
}

Tensor input() {
  const std::string bytes = test::read_file((test::fixtures_dir() / "quant/input.f32").string());
  EXPECT_EQ(bytes.size(), static_cast<size_t>(kRows * kCols * 4));
  Tensor t = Tensor::empty(DType::F32, {kRows, kCols});
  std::memcpy(t.mutable_raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

class GgufPyReference : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufPyReference, BitExact) {
  const DType t = *quant::quant_type_from_name(GetParam());
  const std::string want = test::read_file(
      (test::fixtures_dir() / "quant" / (std::string(GetParam()) + ".bin")).string());
  const Tensor q = quant::quantize(input(), t);
  ASSERT_EQ(q.nbytes(), want.size());
  const uint8_t* got = static_cast<const uint8_t*>(q.raw());
  const size_t bs = traits(t).type_size;
  size_t bad = 0, first = SIZE_MAX;
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != static_cast<uint8_t>(want[i])) {
      ++bad;
      first = std::min(first, i);
    }
  EXPECT_EQ(bad, 0u) << GetParam() << ": first differing byte " << first << " (block " << first / bs
                     << ")";
}

// to_float of gguf-py's bytes gives gguf-py's dequantization, bit for bit.
TEST_P(GgufPyReference, DequantizeBitExact) {
  const DType t = *quant::quant_type_from_name(GetParam());
  const auto dir = test::fixtures_dir() / "quant";
  const std::string q = test::read_file((dir / (std::string(GetParam()) + ".bin")).string());
  const std::string want = test::read_file((dir / (std::string(GetParam()) + ".deq.f32")).string());
  ASSERT_EQ(q.size(), *row_bytes(t, kRows * kCols));
  ASSERT_EQ(want.size(), static_cast<size_t>(kRows * kCols * 4));
  std::vector<float> got(static_cast<size_t>(kRows * kCols));
  quant::dequantize_row(t, q.data(), got.data(), kRows * kCols);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size())) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Types, GgufPyReference,
                         ::testing::Values("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "tq2_0"));

// Q4_K and Q6_K against ggml's reference quantizers restated in numpy
// (scripts/make_kquant_fixtures.py; gguf-py has no K-quant quantizer): tests/fixtures/quant/kquant
// holds 24 rows x 512 (two super-blocks each) with zero, constant, outlier, tiny (f16-subnormal,
// underflowing and below GROUP_MAX_EPS), huge, one-signed, tied and mixed-magnitude rows, the
// reference bytes and gguf-py's dequantization of them.
constexpr int64_t kKRows = 24, kKCols = 512;

Tensor kquant_input() {
  const std::string bytes =
      test::read_file((test::fixtures_dir() / "quant/kquant/input.f32").string());
  EXPECT_EQ(bytes.size(), static_cast<size_t>(kKRows * kKCols * 4));
  Tensor t = Tensor::empty(DType::F32, {kKRows, kKCols});
  std::memcpy(t.mutable_raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

class GgmlKQuantReference : public ::testing::TestWithParam<const char*> {};

TEST_P(GgmlKQuantReference, BitExact) {
  const DType t = *quant::quant_type_from_name(GetParam());
  const std::string want = test::read_file(
      (test::fixtures_dir() / "quant/kquant" / (std::string(GetParam()) + ".bin")).string());
  const Tensor q = quant::quantize(kquant_input(), t);
  ASSERT_EQ(q.nbytes(), want.size());
  const uint8_t* got = static_cast<const uint8_t*>(q.raw());
  const size_t bs = traits(t).type_size;
  size_t bad = 0, first = SIZE_MAX;
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != static_cast<uint8_t>(want[i])) {
      ++bad;
      first = std::min(first, i);
    }
  EXPECT_EQ(bad, 0u) << GetParam() << ": " << bad << " differing bytes, first " << first << " (row "
                     << first / (bs * kKCols / 256) << ", block " << first / bs << ", byte "
                     << first % bs << " of the block)";
}

TEST_P(GgmlKQuantReference, DequantizeBitExact) {
  const DType t = *quant::quant_type_from_name(GetParam());
  const auto dir = test::fixtures_dir() / "quant/kquant";
  const std::string q = test::read_file((dir / (std::string(GetParam()) + ".bin")).string());
  const std::string want = test::read_file((dir / (std::string(GetParam()) + ".deq.f32")).string());
  ASSERT_EQ(q.size(), *row_bytes(t, kKRows * kKCols));
  ASSERT_EQ(want.size(), static_cast<size_t>(kKRows * kKCols * 4));
  std::vector<float> got(static_cast<size_t>(kKRows * kKCols));
  quant::dequantize_row(t, q.data(), got.data(), kKRows * kKCols);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size())) << GetParam();
}

// q2_k, q3_k and q5_k: bytes from ggml's own quantize_row_*_K_ref (libggml-base through ctypes,
// scripts/make_kquant_ggml_fixtures.py, which also checks that library against q4_k/q6_k.bin).
INSTANTIATE_TEST_SUITE_P(Types, GgmlKQuantReference,
                         ::testing::Values("q4_k", "q6_k", "q2_k", "q3_k", "q5_k"));

// The importance-weighted quantizers (llama-quantize --imatrix) against ggml's own
// quantize_<type>(src, dst, nrow, n_per_row, imatrix) bytes (libggml-base through ctypes,
// scripts/make_kquant_ggml_fixtures.py) on the kquant input with imatrix.f32's weights.
class GgmlWeightedReference : public ::testing::TestWithParam<const char*> {};

TEST_P(GgmlWeightedReference, BitExact) {
  const DType t = *quant::quant_type_from_name(GetParam());
  ASSERT_TRUE(quant::has_weighted_quantizer(t));
  const auto dir = test::fixtures_dir() / "quant/kquant";
  const std::string want =
      test::read_file((dir / (std::string(GetParam()) + ".imatrix.bin")).string());
  const std::string qw_bytes = test::read_file((dir / "imatrix.f32").string());
  ASSERT_EQ(qw_bytes.size(), static_cast<size_t>(kKCols * 4));
  std::vector<float> qw(static_cast<size_t>(kKCols));
  std::memcpy(qw.data(), qw_bytes.data(), qw_bytes.size());
  const Tensor x = kquant_input();
  const size_t rb = *row_bytes(t, kKCols);
  ASSERT_EQ(want.size(), rb * kKRows);
  std::vector<uint8_t> got(want.size());
  for (int64_t r = 0; r < kKRows; ++r)
    quant::quantize_row_weighted(t, x.data<float>() + r * kKCols, got.data() + r * rb, kKCols,
                                 qw.data());
  size_t bad = 0, first = SIZE_MAX;
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != static_cast<uint8_t>(want[i])) {
      ++bad;
      first = std::min(first, i);
    }
  EXPECT_EQ(bad, 0u) << GetParam() << ": " << bad << " differing bytes, first " << first << " (row "
                     << first / rb << ")";
  // Without weights it is the reference quantizer.
  std::vector<uint8_t> plain(rb), ref(rb);
  quant::quantize_row_weighted(t, x.data<float>(), plain.data(), kKCols, nullptr);
  quant::quantize_row(t, x.data<float>(), ref.data(), kKCols);
  EXPECT_EQ(plain, ref);
}

INSTANTIATE_TEST_SUITE_P(Types, GgmlWeightedReference,
                         ::testing::Values("q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k",
                                           "q5_k", "q6_k"));

// Round-trip error relative to the row's RMS, for every fixture row with a non-zero RMS.
// Rows whose RMS is below 1e-4 are skipped: a k-quant super-block scale (d = max/63 or
// max/128 of sub-block scales) then underflows f16, as it does in ggml.
double worst_relative_rmse(DType t, const Tensor& x) {
  const Tensor back = quant::dequantize(quant::quantize(x, t));
  double worst = 0;
  for (int64_t r = 0; r < x.dim(0); ++r) {
    double se = 0, s = 0;
    for (int64_t c = 0; c < x.dim(1); ++c) {
      const double a = x.data<float>()[r * x.dim(1) + c], b = back.data<float>()[r * x.dim(1) + c];
      se += (a - b) * (a - b);
      s += a * a;
    }
    if (s > 0 && std::sqrt(s / static_cast<double>(x.dim(1))) >= 1e-4) {
      worst = std::max(worst, std::sqrt(se / s));
    }
  }
  return worst;
}

TEST(Quantize, KQuantsRoundTripWithinFormatError) {
  // Gaussian rows: ggml's own figures are ~4-5% RMSE for Q4_K and ~1% for Q6_K.
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  Tensor x = Tensor::empty(DType::F32, {32, 512});
  for (uint64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = nd(rng) * 0.05f;
  const double q4k = worst_relative_rmse(DType::Q4_K, x);
  const double q6k = worst_relative_rmse(DType::Q6_K, x);
  const double q4_0 = worst_relative_rmse(DType::Q4_0, x);
  const double q8_0 = worst_relative_rmse(DType::Q8_0, x);
  std::printf("[measure] relative rmse q8_0 %.4f q6_k %.4f q4_k %.4f q4_0 %.4f\n", q8_0, q6k, q4k,
              q4_0);
  EXPECT_LT(q8_0, 0.01);
  EXPECT_LT(q6k, 0.02);
  EXPECT_LT(q4k, 0.08);
  EXPECT_LT(q4k, q4_0);  // the k-quant's min/scale search beats the plain 4-bit format
  EXPECT_LT(q6k, q4k);
  // The fixture's odd rows (outliers, ties, constants, tiny values) too.
  EXPECT_LT(worst_relative_rmse(DType::Q6_K, input()), 0.05);
  EXPECT_LT(worst_relative_rmse(DType::Q4_K, input()), 0.25);
}

TEST(Quantize, ZeroRowsGiveZeroBlocks) {
  Tensor z = zeros({1, 256});
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K,
                  DType::Q6_K}) {
    const Tensor back = quant::dequantize(quant::quantize(z, t));
    for (int i = 0; i < 256; ++i) ASSERT_EQ(back.data<float>()[i], 0.0f) << name(t);
  }
}

TEST(Quantize, KQuantsAreDeterministicAndExactOnTheirGrid) {
  // Same input, same bytes; and Q8_0 values are a fixed point of quantize -> dequantize.
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  Tensor x = Tensor::empty(DType::F32, {4, 256});
  for (uint64_t i = 0; i < x.numel(); ++i) x.mutable_data<float>()[i] = nd(rng);
  const Tensor a = quant::quantize(x, DType::Q4_K), b = quant::quantize(x, DType::Q4_K);
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
  const Tensor once = quant::dequantize(quant::quantize(x, DType::Q8_0));
  const Tensor twice = quant::dequantize(quant::quantize(once, DType::Q8_0));
  EXPECT_EQ(0, std::memcmp(once.raw(), twice.raw(), once.nbytes()));
}

TEST(Quantize, FromOtherDtypesAndErrors) {
  const Tensor x = input();
  // f16 input is dequantized first: same as quantizing its f32 conversion.
  const Tensor h = x.to(DType::F16);
  const Tensor a = quant::quantize(h, DType::Q8_0),
               b = quant::quantize(h.to(DType::F32), DType::Q8_0);
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
  EXPECT_THROW(quant::quantize(zeros({2, 100}), DType::Q4_K), ShapeError);
  EXPECT_THROW(quant::quantize(x, DType::Q8_K), InvalidArgument);  // no quantizer
  EXPECT_EQ(quant::quant_type_from_name("Q4_K"), DType::Q4_K);
  EXPECT_EQ(quant::quant_type_from_name("q8_0"), DType::Q8_0);
  EXPECT_EQ(quant::quant_type_from_name("q2_k"), DType::Q2_K);
  EXPECT_EQ(quant::quant_type_from_name("q8_k"), std::nullopt);
  EXPECT_EQ(quant::quant_type_from_name("nope"), std::nullopt);
}

// Every consumer of the QuantTraits table sees the same row: DType's traits, the GGUF ids, the
// quantize / dequantize dispatch, the kernel tables and the CLI's choices.
TEST(QuantTraits, EveryConsumerReadsTheRow) {
  std::vector<std::string> quantizable;
  for (const QuantTraits& q : quant_types()) {
    SCOPED_TRACE(std::string(q.name));
    EXPECT_EQ(quant_traits(q.dtype), &q);
    EXPECT_EQ(name(q.dtype), q.name);
    EXPECT_EQ(traits(q.dtype).block_size, q.block_size);
    EXPECT_EQ(traits(q.dtype).type_size, q.block_bytes);
    EXPECT_TRUE(is_quantized(q.dtype));
    EXPECT_EQ(dtype_from_name(q.name), q.dtype);
    EXPECT_EQ(gguf::ggml_type_of(q.dtype), q.ggml_type);
    EXPECT_EQ(gguf::dtype_from_ggml(q.ggml_type), q.dtype);
    std::string upper(q.name);
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(gguf::ggml_type_name(q.ggml_type), upper);
    EXPECT_EQ(quant::can_quantize(q.dtype), q.from_float != nullptr);
    if (q.from_float) quantizable.emplace_back(q.name);
    EXPECT_NE(q.to_float, nullptr);
    EXPECT_NE(kernels::reference().matmul[static_cast<int>(q.dtype)], nullptr);
    for (kernels::Isa isa : {kernels::Isa::Avx2, kernels::Isa::Avx512}) {
      const kernels::KernelTable* kt = kernels::table_for(isa);
      if (!kt) continue;
      EXPECT_EQ(kt->matmul[static_cast<int>(q.dtype)] !=
                    kernels::reference().matmul[static_cast<int>(q.dtype)],
                q.simd != SimdKernel::None)
          << kernels::isa_name(isa);
    }
    // The reference matmul entry computes with the row's to_float.
    if (q.from_float) {
      std::mt19937 rng(7);
      std::normal_distribution<float> nd;
      Tensor w = Tensor::empty(DType::F32, {2, q.block_size});
      std::vector<float> x(static_cast<size_t>(q.block_size)), scratch(x.size());
      for (uint64_t i = 0; i < w.numel(); ++i) w.mutable_data<float>()[i] = nd(rng);
      for (float& v : x) v = nd(rng);
      const Tensor wq = quant::quantize(w, q.dtype), wd = quant::dequantize(wq);
      float y[2] = {0, 0};
      kernels::reference().matmul[static_cast<int>(q.dtype)](
          x.data(), 1, q.block_size, kernels::matrix_view(wq), 0, 2, y, 2, scratch.data());
      for (int n = 0; n < 2; ++n) {
        double want = 0, mag = 0;
        for (int64_t k = 0; k < q.block_size; ++k) {
          want += static_cast<double>(wd.data<float>()[n * q.block_size + k]) * x[k];
          mag += std::fabs(static_cast<double>(wd.data<float>()[n * q.block_size + k]) * x[k]);
        }
        EXPECT_NEAR(y[n], want, 1e-5 * mag + 1e-6);
      }
    }
    // dequantize_row dispatches to the row (one block of zeros stays zero).
    const std::vector<uint8_t> zero(q.block_bytes, 0);
    std::vector<float> out(static_cast<size_t>(q.block_size), 1.0f);
    quant::dequantize_row(q.dtype, zero.data(), out.data(), q.block_size);
    for (float v : out) EXPECT_EQ(v, 0.0f);
  }
  EXPECT_EQ(quant::quantize_type_names(), quantizable);
  std::string joined;
  for (const std::string& n : quantizable) joined += (joined.empty() ? "" : "|") + n;
  EXPECT_EQ(quant::quantize_type_list(), joined);
  EXPECT_EQ(quant_traits(DType::F16), nullptr);
  EXPECT_FALSE(gguf::dtype_from_ggml(20).has_value());  // IQ4_NL: not implemented
  EXPECT_EQ(gguf::ggml_type_name(20), "IQ4_NL");
  EXPECT_EQ(gguf::ggml_type_name(1000), "");
}

// docs/quantization.md's table of block types is the QuantTraits table, row for row.
TEST(QuantTraits, DocsTableMatches) {
  const std::string doc = test::read_file((test::source_dir() / "docs/quantization.md").string());
  const std::string begin = "<!-- quant-types:begin -->\n", end = "<!-- quant-types:end -->";
  const size_t a = doc.find(begin), b = doc.find(end);
  ASSERT_TRUE(a != std::string::npos && b != std::string::npos && a < b);
  std::string want =
      "| type | GGUF id | block | bytes | bits/weight | from_float | dot activations | SIMD "
      "kernels |\n|---|---|---|---|---|---|---|---|\n";
  for (const QuantTraits& q : quant_types()) {
    char bpw[32];
    std::snprintf(bpw, sizeof bpw, "%g", static_cast<double>(q.block_bytes) * 8 / q.block_size);
    const char* simd[] = {"reference", "q4_0", "q8_0", "q4_k", "q6_k"};
    want +=
        "| " + std::string(q.name) + " | " + std::to_string(q.ggml_type) + " | " +
        std::to_string(q.block_size) + " | " + std::to_string(q.block_bytes) + " | " + bpw + " | " +
        (q.from_float ? "yes" : "no") + " | " +
        (q.vec_dot_type == DType::F32 ? std::string("f32") : std::string(name(q.vec_dot_type))) +
        " | " + simd[static_cast<int>(q.simd)] + " |\n";
  }
  EXPECT_EQ(doc.substr(a + begin.size(), b - a - begin.size()), want)
      << "docs/quantization.md's table differs from kQuantTypes; expected:\n"
      << want;
}

}  // namespace
}  // namespace ohm
