// Reference dequantization: hand-built blocks with known values, and random blocks checked
// bit-for-bit against independent per-element formulations of ggml's block layouts.
// (The comparison against gguf-py's numpy dequantizer lives in test_gguf.cpp.)
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/quant/dequant.h"

using ohm::DType;
using ohm::quant::dequantize;
using ohm::quant::dequantize_row;

namespace {

uint16_t f16_bits(float f) {
  return ohm::f32_to_f16(f);
}
void put_f16(uint8_t* p, float f) {
  const uint16_t h = f16_bits(f);
  p[0] = static_cast<uint8_t>(h);
  p[1] = static_cast<uint8_t>(h >> 8);
}
float get_f16(const uint8_t* p) {
  return ohm::f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8)));
}

// Random blocks with small finite f16 (or f32 for q8_k) scale fields.
std::vector<uint8_t> random_blocks(DType t, int n_blocks, std::mt19937& rng) {
  const size_t ts = ohm::traits(t).type_size;
  std::vector<uint8_t> b(ts * static_cast<size_t>(n_blocks));
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (auto& x : b) x = static_cast<uint8_t>(byte(rng));
  std::vector<size_t> f16_fields;
  switch (t) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
      f16_fields = {0};
      break;
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q8_1:
    case DType::Q4_K:
    case DType::Q5_K:
      f16_fields = {0, 2};
      break;
    case DType::Q2_K:
      f16_fields = {80, 82};
      break;
    case DType::Q3_K:
      f16_fields = {108};
      break;
    case DType::Q6_K:
      f16_fields = {208};
      break;
    default:
      break;
  }
  for (int i = 0; i < n_blocks; ++i) {
    uint8_t* blk = b.data() + ts * static_cast<size_t>(i);
    for (size_t off : f16_fields) put_f16(blk + off, nd(rng));
    if (t == DType::Q8_K) {
      const float d = nd(rng);
      std::memcpy(blk, &d, 4);
    }
  }
  return b;
}

std::vector<float> run(DType t, const std::vector<uint8_t>& src) {
  const int64_t n =
      static_cast<int64_t>(src.size() / ohm::traits(t).type_size) * ohm::traits(t).block_size;
  std::vector<float> out(static_cast<size_t>(n));
  dequantize_row(t, src.data(), out.data(), n);
  return out;
}

void expect_bits_eq(const std::vector<float>& got, const std::vector<float>& want,
                    const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << what << " element " << i << ": got " << got[i] << " want " << want[i];
  }
}

// ---- independent per-element formulations (from the layouts in ggml-common.h) ----------------

float spec_q4_0(const uint8_t* b, int e) {
  const uint8_t byte = b[2 + e % 16];
  const int q = e < 16 ? (byte & 15) : (byte >> 4);
  return static_cast<float>(q - 8) * get_f16(b);
}
float spec_q4_1(const uint8_t* b, int e) {
  const uint8_t byte = b[4 + e % 16];
  const int q = e < 16 ? (byte & 15) : (byte >> 4);
  return static_cast<float>(q) * get_f16(b) + get_f16(b + 2);
}
int q5_code(const uint8_t* qh, const uint8_t* qs, int e) {
  const uint32_t h = static_cast<uint32_t>(qh[0] | (qh[1] << 8) | (qh[2] << 16)) |
                     (static_cast<uint32_t>(qh[3]) << 24);
  const uint8_t byte = qs[e % 16];
  const int lo = e < 16 ? (byte & 15) : (byte >> 4);
  return lo | static_cast<int>(((h >> e) & 1u) << 4);
}
float spec_q5_0(const uint8_t* b, int e) {
  return static_cast<float>(q5_code(b + 2, b + 6, e) - 16) * get_f16(b);
}
float spec_q5_1(const uint8_t* b, int e) {
  return static_cast<float>(q5_code(b + 4, b + 8, e)) * get_f16(b) + get_f16(b + 2);
}
float spec_q8_0(const uint8_t* b, int e) {
  return static_cast<float>(static_cast<int8_t>(b[2 + e])) * get_f16(b);
}
float spec_q8_1(const uint8_t* b, int e) {
  return static_cast<float>(static_cast<int8_t>(b[4 + e])) * get_f16(b);
}
float spec_q2_k(const uint8_t* b, int e) {
  const int half = e / 128, r = e % 128, j = r / 32, w = r % 32;
  const int q = (b[16 + 32 * half + w] >> (2 * j)) & 3;
  const uint8_t sc = b[8 * half + 2 * j + (w >= 16)];
  const float d = get_f16(b + 80), dmin = get_f16(b + 82);
  return d * static_cast<float>(sc & 15) * static_cast<float>(q) -
         dmin * static_cast<float>(sc >> 4);
}
float spec_q3_k(const uint8_t* b, int e) {
  const int half = e / 128, r = e % 128, j = r / 32, w = r % 32;
  const int k = 8 * half + 2 * j + (w >= 16);  // scale index
  const uint8_t* s = b + 96;
  const int lo = k < 8 ? (s[k] & 15) : (s[k - 8] >> 4);
  const int hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
  const int scale = (lo | (hi << 4)) - 32;
  const int q2 = (b[32 + 32 * half + w] >> (2 * j)) & 3;
  const int hbit = (b[w] >> (4 * half + j)) & 1;
  return get_f16(b + 108) * static_cast<float>(scale) * static_cast<float>(q2 - (hbit ? 0 : 4));
}
void scale_min_k4(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}
float spec_q4_k(const uint8_t* b, int e) {
  const int c = e / 64, w = e % 64, sub = 2 * c + (w >= 32);
  const uint8_t byte = b[16 + 32 * c + w % 32];
  const int q = w < 32 ? (byte & 15) : (byte >> 4);
  int sc, m;
  scale_min_k4(b + 4, sub, sc, m);
  return get_f16(b) * static_cast<float>(sc) * static_cast<float>(q) -
         get_f16(b + 2) * static_cast<float>(m);
}
float spec_q5_k(const uint8_t* b, int e) {
  const int c = e / 64, w = e % 64, sub = 2 * c + (w >= 32);
  const uint8_t byte = b[48 + 32 * c + w % 32];
  const int q = (w < 32 ? (byte & 15) : (byte >> 4)) + (((b[16 + w % 32] >> sub) & 1) ? 16 : 0);
  int sc, m;
  scale_min_k4(b + 4, sub, sc, m);
  return get_f16(b) * static_cast<float>(sc) * static_cast<float>(q) -
         get_f16(b + 2) * static_cast<float>(m);
}
float spec_q6_k(const uint8_t* b, int e) {
  const int h = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
  const uint8_t lbyte = b[64 * h + l + ((quarter & 1) ? 32 : 0)];
  const int lo = quarter < 2 ? (lbyte & 15) : (lbyte >> 4);
  const int hi = (b[128 + 32 * h + l] >> (2 * quarter)) & 3;
  const int q = (lo | (hi << 4)) - 32;
  const auto scale = static_cast<int8_t>(b[192 + 8 * h + l / 16 + 2 * quarter]);
  return get_f16(b + 208) * static_cast<float>(scale) * static_cast<float>(q);
}
float spec_q8_k(const uint8_t* b, int e) {
  float d;
  std::memcpy(&d, b, 4);
  return d * static_cast<float>(static_cast<int8_t>(b[4 + e]));
}

struct SpecCase {
  DType t;
  float (*fn)(const uint8_t*, int);
};

}  // namespace

TEST(Dequant, Q4_0KnownValues) {
  uint8_t blk[18];
  put_f16(blk, 0.5f);
  for (int j = 0; j < 16; ++j) blk[2 + j] = static_cast<uint8_t>((j & 15) | ((15 - j) << 4));
  float out[32];
  dequantize_row(DType::Q4_0, blk, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * static_cast<float>(j - 8));
    EXPECT_EQ(out[j + 16], 0.5f * static_cast<float>(15 - j - 8));
  }
}

TEST(Dequant, Q8_0AndQ8_1KnownValues) {
  uint8_t q80[34], q81[36];
  put_f16(q80, 0.25f);
  put_f16(q81, 0.25f);
  put_f16(q81 + 2, 123.0f);  // s is ignored
  for (int j = 0; j < 32; ++j) q80[2 + j] = q81[4 + j] = static_cast<uint8_t>(j * 8 - 128);
  float a[32], b[32];
  dequantize_row(DType::Q8_0, q80, a, 32);
  dequantize_row(DType::Q8_1, q81, b, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(a[j], 0.25f * static_cast<float>(j * 8 - 128));
    EXPECT_EQ(b[j], a[j]);
  }
}

TEST(Dequant, Q4_1AndQ5KnownValues) {
  uint8_t q41[20];
  put_f16(q41, 2.0f);
  put_f16(q41 + 2, -1.0f);
  for (int j = 0; j < 16; ++j) q41[4 + j] = static_cast<uint8_t>(0x30 | (j & 15));
  float out[32];
  dequantize_row(DType::Q4_1, q41, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 2.0f * static_cast<float>(j) - 1.0f);
    EXPECT_EQ(out[j + 16], 2.0f * 3.0f - 1.0f);
  }
  // q5_0: all high bits set -> codes 16..31 -> values 0..15 times d
  uint8_t q50[22];
  put_f16(q50, 1.0f);
  std::memset(q50 + 2, 0xFF, 4);
  for (int j = 0; j < 16; ++j) q50[6 + j] = static_cast<uint8_t>(j | (j << 4));
  dequantize_row(DType::Q5_0, q50, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], static_cast<float>(j));
    EXPECT_EQ(out[j + 16], static_cast<float>(j));
  }
}

TEST(Dequant, RandomBlocksMatchPerElementSpec) {
  std::mt19937 rng(1234);
  const SpecCase cases[] = {
      {DType::Q4_0, spec_q4_0}, {DType::Q4_1, spec_q4_1}, {DType::Q5_0, spec_q5_0},
      {DType::Q5_1, spec_q5_1}, {DType::Q8_0, spec_q8_0}, {DType::Q8_1, spec_q8_1},
      {DType::Q2_K, spec_q2_k}, {DType::Q3_K, spec_q3_k}, {DType::Q4_K, spec_q4_k},
      {DType::Q5_K, spec_q5_k}, {DType::Q6_K, spec_q6_k}, {DType::Q8_K, spec_q8_k},
  };
  for (const auto& c : cases) {
    const auto& tr = ohm::traits(c.t);
    const int n_blocks = 7;
    auto src = random_blocks(c.t, n_blocks, rng);
    auto got = run(c.t, src);
    std::vector<float> want;
    for (int i = 0; i < n_blocks; ++i)
      for (int e = 0; e < tr.block_size; ++e)
        want.push_back(c.fn(src.data() + tr.type_size * static_cast<size_t>(i), e));
    expect_bits_eq(got, want, std::string(tr.name).c_str());
  }
}

TEST(Dequant, RowsAreIndependentOfSplitting) {
  // Dequantizing block by block gives the same result as one call (no state across blocks).
  std::mt19937 rng(99);
  for (DType t : {DType::Q3_K, DType::Q5_1, DType::Q6_K}) {
    const auto& tr = ohm::traits(t);
    auto src = random_blocks(t, 4, rng);
    auto whole = run(t, src);
    std::vector<float> parts(whole.size());
    for (int i = 0; i < 4; ++i)
      dequantize_row(t, src.data() + tr.type_size * static_cast<size_t>(i),
                     parts.data() + tr.block_size * i, tr.block_size);
    expect_bits_eq(parts, whole, std::string(tr.name).c_str());
  }
}

TEST(Dequant, PlainTypes) {
  const uint16_t f16[] = {0x3C00, 0xC000, 0x7C00, 0x0001, 0x8000, 0x7E00};
  float out[6];
  dequantize_row(DType::F16, f16, out, 6);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_TRUE(std::isinf(out[2]));
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::signbit(out[4]) && out[4] == 0.0f);
  EXPECT_TRUE(std::isnan(out[5]));

  const uint16_t bf16[] = {0x3F80, 0xC0A0};
  dequantize_row(DType::BF16, bf16, out, 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -5.0f);

  const double f64[] = {1e300, -1e39,  double{FLT_MAX} + std::ldexp(1.0, 102),
                        0.1,   -1e-50, double{FLT_MAX} + std::ldexp(1.0, 103)};
  dequantize_row(DType::F64, f64, out, 6);
  EXPECT_EQ(out[0], INFINITY);
  EXPECT_EQ(out[1], -INFINITY);
  EXPECT_EQ(out[2], FLT_MAX);
  EXPECT_EQ(out[3], 0.1f);
  EXPECT_TRUE(std::signbit(out[4]) && out[4] == 0.0f);
  EXPECT_EQ(out[5], INFINITY);  // exactly half an ulp above FLT_MAX: ties to even -> inf

  const int64_t i64[] = {INT64_MIN, -3, (int64_t{1} << 40) + 1};
  dequantize_row(DType::I64, i64, out, 3);
  EXPECT_EQ(out[0], -9.223372036854775808e18f);
  EXPECT_EQ(out[1], -3.0f);
  EXPECT_EQ(out[2], static_cast<float>((int64_t{1} << 40) + 1));

  const uint8_t b[] = {0, 1, 7};
  dequantize_row(DType::U8, b, out, 3);
  EXPECT_EQ(out[2], 7.0f);

  // unaligned source
  alignas(8) uint8_t buf[9] = {};
  const float v = 3.5f;
  std::memcpy(buf + 1, &v, 4);
  dequantize_row(DType::F32, buf + 1, out, 1);
  EXPECT_EQ(out[0], 3.5f);
}

TEST(Dequant, RejectsBadCounts) {
  uint8_t blk[210] = {};
  float out[256];
  EXPECT_THROW(dequantize_row(DType::Q4_0, blk, out, 31), ohm::InvalidArgument);
  EXPECT_THROW(dequantize_row(DType::Q6_K, blk, out, 128), ohm::InvalidArgument);
  EXPECT_THROW(dequantize_row(DType::F32, blk, out, -1), ohm::InvalidArgument);
  EXPECT_NO_THROW(dequantize_row(DType::Q6_K, blk, out, 0));
  try {
    dequantize_row(DType::Q4_K, blk, out, 100);
    FAIL();
  } catch (const ohm::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("q4_k"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("256"), std::string::npos) << e.what();
  }
}

TEST(Dequant, TensorDequantize) {
  std::mt19937 rng(7);
  auto src = random_blocks(DType::Q4_K, 6, rng);
  ohm::Tensor q = ohm::Tensor::empty(DType::Q4_K, {3, 512});
  ASSERT_EQ(q.nbytes(), src.size());
  std::memcpy(q.mutable_raw(), src.data(), src.size());
  ohm::Tensor f = dequantize(q);
  EXPECT_EQ(f.dtype(), DType::F32);
  EXPECT_EQ(f.shape(), (ohm::Shape{3, 512}));
  EXPECT_TRUE(f.is_contiguous());
  auto want = run(DType::Q4_K, src);
  expect_bits_eq(std::vector<float>(f.data<float>(), f.data<float>() + f.numel()), want, "q4_k");

  // plain dtypes, incl. an f32 copy that does not alias the input
  ohm::Tensor h = ohm::Tensor::empty(DType::F16, {2, 2});
  auto* hp = h.mutable_data<uint16_t>();
  hp[0] = 0x3C00;
  hp[3] = 0xBC00;
  ohm::Tensor hf = dequantize(h);
  EXPECT_EQ(hf.data<float>()[0], 1.0f);
  EXPECT_EQ(hf.data<float>()[3], -1.0f);
  ohm::Tensor c = dequantize(hf);
  EXPECT_NE(c.raw(), hf.raw());
  EXPECT_EQ(c.data<float>()[3], -1.0f);

  ohm::Tensor empty = ohm::Tensor::empty(DType::Q8_0, {0, 32});
  EXPECT_EQ(dequantize(empty).numel(), 0u);
  EXPECT_THROW(dequantize(ohm::Tensor()), ohm::InvalidArgument);
}
