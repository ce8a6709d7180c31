#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <vector>

#include "ohm/core/atomic_file.h"
#include "ohm/core/dtype.h"
#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/core/mapped_file.h"
#include "ohm/core/tensor.h"
#include "ohm/core/thread_pool.h"

using namespace ohm;

TEST(DType, TraitsAndNames) {
  EXPECT_EQ(traits(DType::F32).type_size, 4u);
  EXPECT_EQ(traits(DType::BF16).type_size, 2u);
  EXPECT_EQ(traits(DType::Q4_0).block_size, 32);
  EXPECT_EQ(traits(DType::Q4_K).type_size, 144u);
  EXPECT_EQ(dtype_from_name("BF16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("bfloat16"), DType::BF16);
  EXPECT_EQ(dtype_from_name("F8_E4M3"), DType::F8_E4M3);
  EXPECT_EQ(dtype_from_name("q6_k"), DType::Q6_K);
  EXPECT_FALSE(dtype_from_name("f7").has_value());
  EXPECT_EQ(safetensors_name(DType::Bool), "BOOL");
  EXPECT_EQ(row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_FALSE(row_bytes(DType::Q8_0, 33).has_value());
  EXPECT_FALSE(row_bytes(DType::F64, UINT64_MAX / 2).has_value());
}

TEST(Half, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << "h=" << h;
  }
}

TEST(Half, F16KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                          // rounds to inf
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);             // tie to even zero
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
}

TEST(Half, BF16) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h);
  }
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Half, F8) {
  EXPECT_EQ(f8e4m3_to_f32(0x38), 1.0f);    // exp 7, man 0
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.0f);  // max finite
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(0x7f)));
  EXPECT_EQ(f8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(f8e4m3_to_f32(0xb8), -1.0f);
  EXPECT_EQ(f8e5m2_to_f32(0x3c), 1.0f);
  EXPECT_EQ(f8e5m2_to_f32(0x7b), 57344.0f);
}

TEST(Tensor, EmptyViewReshapeConvert) {
  Tensor t = Tensor::empty(DType::F32, {2, 3});
  EXPECT_EQ(t.numel(), 6u);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.strides(), (Shape{3, 1}));
  EXPECT_TRUE(t.is_contiguous());
  float* p = t.mutable_data<float>();
  std::iota(p, p + 6, 1.0f);
  Tensor r = t.reshape({3, 2});
  EXPECT_EQ(r.data<float>()[5], 6.0f);
  EXPECT_THROW(t.reshape({4, 2}), ShapeError);
  Tensor b = t.to(DType::BF16);
  EXPECT_EQ(b.nbytes(), 12u);
  Tensor back = b.to(DType::F32);
  EXPECT_EQ(back.data<float>()[4], 5.0f);
  Tensor i = t.to(DType::I64);
  EXPECT_EQ(i.data<int64_t>()[2], 3);
  EXPECT_EQ(t.str(), "f32[2, 3]");
  EXPECT_EQ(t.dim(-1), 3);
  EXPECT_THROW(t.dim(2), InvalidArgument);
}

TEST(Tensor, QuantizedShapesNeedWholeBlocks) {
  EXPECT_NO_THROW(Tensor::empty(DType::Q4_0, {2, 64}));
  EXPECT_EQ(Tensor::empty(DType::Q4_0, {2, 64}).nbytes(), 2u * 2 * 18);
  EXPECT_THROW(Tensor::empty(DType::Q4_0, {2, 40}), ShapeError);
  EXPECT_THROW(Tensor::empty(DType::F32, {-1}), ShapeError);
  EXPECT_THROW(Tensor::empty(DType::F32, {INT64_MAX, INT64_MAX}), ShapeError);
}

TEST(Tensor, ViewBoundsChecked) {
  auto s = Storage::allocate(16);
  EXPECT_NO_THROW(Tensor::view(s, DType::F32, {4}, 0));
  EXPECT_THROW(Tensor::view(s, DType::F32, {4}, 4), ShapeError);
  EXPECT_THROW(Tensor::view(s, DType::F32, {5}, 0), ShapeError);
}

TEST(Tensor, MappedViewsAreReadOnly) {
  const char bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  auto f = MappedFile::from_bytes("mem", bytes, sizeof(bytes));
  auto s = Storage::map_view(f, 4, 4);
  EXPECT_TRUE(s->is_mapped());
  EXPECT_EQ(s->data()[0], 5);
  EXPECT_THROW(s->mutable_data(), InvalidArgument);
  EXPECT_THROW(Storage::map_view(f, 6, 4), FormatError);
}

// release() gives the pages back (MADV_DONTNEED) but never the data: a mapped file reads the same
// bytes after it, and an in-memory one (from_bytes) is left alone.
TEST(MappedFile, ReleaseKeepsTheBytes) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("ohm_release_" + std::to_string(::getpid()) + ".bin");
  std::vector<char> bytes(5 * 4096 + 123);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 4096);
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  {
    auto f = MappedFile::open(path.string());
    ASSERT_EQ(std::memcmp(f->data(), bytes.data(), bytes.size()), 0);
    f->release(100, 3 * 4096 + 50);
    f->release(0, bytes.size());
    f->release(bytes.size() + 10, 5);  // past the end: nothing
    EXPECT_EQ(std::memcmp(f->data(), bytes.data(), bytes.size()), 0);
    auto m = MappedFile::from_bytes("mem", bytes.data(), bytes.size());
    m->release(0, bytes.size());
    EXPECT_EQ(std::memcmp(m->data(), bytes.data(), bytes.size()), 0);
  }
  std::filesystem::remove(path);
}

TEST(Error, MessagesCarryContext) {
  try {
    throw FormatError(ErrorContext().file("a.safetensors").tensor("w").shape("shape", {2, 3}),
                      "bad");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "a.safetensors: tensor 'w' (shape=[2, 3]): bad");
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_EQ(e.context().tensor_name(), "w");
    EXPECT_EQ(e.detail(), "bad");
  }
}

TEST(ThreadPool, RunsEveryThreadAndPropagatesErrors) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  std::atomic<int> mask{0};
  pool.run([&](int i, int n) {
    EXPECT_EQ(n, 3);
    mask |= 1 << i;
  });
  EXPECT_EQ(mask.load(), 7);
  for (int rep = 0; rep < 200; ++rep) {  // reuse without deadlock
    std::vector<int> hits(1000, 0);
    pool.parallel_for(1000, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
    });
    for (int h : hits) ASSERT_EQ(h, 1);
  }
  EXPECT_THROW(pool.run([](int i, int) {
    if (i == 2) throw InvalidArgument("boom");
  }),
               InvalidArgument);
  int calls = 0;
  pool.parallel_for(5, 100, [&](int64_t b, int64_t e) {
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 5);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

TEST(AtomicFile, ReplacesWholeOrLeavesTheTargetAsItWas) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ohm_atomic_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "out.bin").string();
  auto read = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  auto leftovers = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.path() != path;
    return n;
  };
  write_file_atomic(path, std::string_view("first"));
  EXPECT_EQ(read(path), "first");
  // A writer that fails half way: the target keeps its old content, no temporary file remains.
  EXPECT_THROW(write_file_atomic(path,
                                 [](const std::string& tmp) {
                                   std::ofstream(tmp) << "half";
                                   throw IoError(ErrorContext().file(tmp), "disk full");
                                 }),
               IoError);
  EXPECT_EQ(read(path), "first");
  EXPECT_EQ(leftovers(), 0);
  write_file_atomic(path, [](const std::string& tmp) { std::ofstream(tmp) << "second"; });
  EXPECT_EQ(read(path), "second");
  // The rename cannot replace a directory: an IoError naming the target, nothing left behind.
  const std::string sub = (dir / "sub").string();
  std::filesystem::create_directories(std::filesystem::path(sub) / "x");
  try {
    write_file_atomic(sub, std::string_view("data"));
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(sub), std::string::npos) << e.what();
  }
  EXPECT_EQ(leftovers(), 1);  // the directory itself
  std::filesystem::remove_all(dir);
}
