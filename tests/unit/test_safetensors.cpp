#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/core/half.h"
#include "ohm/formats/safetensors.h"
#include "test_util.h"

using namespace ohm;
using namespace ohm::safetensors;
using ohm::test::make_safetensors;
using ohm::test::TempDir;
using ohm::test::write_file;
using json = nlohmann::json;

namespace {
std::string fixture(const std::string& name) {
  return (ohm::test::fixtures_dir() / "safetensors" / name).string();
}
}  // namespace

// ---- valid files written by the real safetensors library -----------------------------------

TEST(Safetensors, ReadsEveryDtypeHfWrites) {
  const auto f = SafetensorsFile::open(fixture("all_dtypes.safetensors"));
  const json expected = json::parse(ohm::test::read_file(fixture("all_dtypes.json")));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "ohm fixture");
  ASSERT_EQ(f.tensors().size(), expected["tensors"].size());
  const std::map<std::string, DType> torch_dtype = {{"float64", DType::F64},
                                                    {"float32", DType::F32},
                                                    {"float16", DType::F16},
                                                    {"bfloat16", DType::BF16},
                                                    {"float8_e4m3fn", DType::F8_E4M3},
                                                    {"float8_e5m2", DType::F8_E5M2},
                                                    {"int64", DType::I64},
                                                    {"int32", DType::I32},
                                                    {"int16", DType::I16},
                                                    {"int8", DType::I8},
                                                    {"uint8", DType::U8},
                                                    {"bool", DType::Bool}};
  for (auto it = expected["tensors"].begin(); it != expected["tensors"].end(); ++it) {
    SCOPED_TRACE(it.key());
    Tensor t = f.tensor(it.key());
    EXPECT_TRUE(t.is_mapped());
    EXPECT_EQ(t.dtype(), torch_dtype.at((*it)["dtype"].get<std::string>()));
    EXPECT_EQ(t.shape(), (*it)["shape"].get<Shape>());
    const auto values = (*it)["values"].get<std::vector<double>>();
    ASSERT_EQ(values.size(), t.numel());
    for (size_t i = 0; i < values.size(); ++i)
      ASSERT_EQ(element_as_double(t.raw(), t.dtype(), i), values[i]) << "element " << i;
  }
}

TEST(Safetensors, ShardedCheckpointFromHuggingfaceHub) {
  const auto ck = Checkpoint::open(fixture("sharded"));
  const json expected = json::parse(ohm::test::read_file(fixture("sharded.json")));
  ASSERT_EQ(ck.tensors().size(), expected["tensors"].size());
  EXPECT_EQ(ck.shards().size(), expected["files"].size());
  EXPECT_FALSE(ck.index_path().empty());
  EXPECT_TRUE(ck.metadata().count("total_size"));
  for (auto it = expected["tensors"].begin(); it != expected["tensors"].end(); ++it) {
    SCOPED_TRACE(it.key());
    const auto& info = ck.info(it.key());
    EXPECT_EQ(info.info.shape, (*it)["shape"].get<Shape>());
    EXPECT_EQ(std::filesystem::path(ck.shards()[info.shard].path()).filename(),
              (*it)["file"].get<std::string>());
    Tensor t = ck.tensor(it.key()).to(DType::F64);
    double sum = 0;
    for (uint64_t i = 0; i < t.numel(); ++i) sum += t.data<double>()[i];
    EXPECT_NEAR(sum, (*it)["sum"].get<double>(), 1e-9);
  }
  // Opening via the index file itself is the same.
  EXPECT_EQ(Checkpoint::open(fixture("sharded/model.safetensors.index.json")).tensors().size(),
            ck.tensors().size());
  EXPECT_THROW(ck.tensor("nope"), NotFoundError);
}

// ---- malformed files: each a clear error naming the file and tensor -------------------------

struct Malformed {
  std::string label;
  std::string bytes;
  std::vector<std::string> must_mention;
};

class SafetensorsMalformed : public ::testing::TestWithParam<Malformed> {};

TEST_P(SafetensorsMalformed, GivesClearError) {
  const Malformed& m = GetParam();
  TempDir dir;
  const std::string path = dir.file(m.label + ".safetensors");
  write_file(path, m.bytes);
  try {
    SafetensorsFile::open(path);
    FAIL() << "expected an error for " << m.label;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    for (const auto& s : m.must_mention) EXPECT_NE(what.find(s), std::string::npos) << what;
  }
}

static std::string st(const std::string& header, size_t data = 0) {
  return make_safetensors(header, std::string(data, '\x01'));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsMalformed,
    ::testing::Values(
        Malformed{"empty", "", {"too short"}}, Malformed{"short", "abc", {"too short"}},
        Malformed{"header_past_eof",
                  std::string("\xff\x00\x00\x00\x00\x00\x00\x00{}", 10),
                  {"past the end", "truncated"}},
        Malformed{"header_huge", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10), {"limit"}},
        Malformed{"not_object_start", st("[1,2]"), {"'{'"}},
        Malformed{"bad_json", st("{\"a\": "), {"invalid safetensors header"}},
        Malformed{"non_utf8_name",
                  st("{\"w\xff\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                  {"UTF-8"}},
        Malformed{"duplicate_name",
                  st(R"({"w": {"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                     R"( "w": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     8),
                  {"duplicate", "'w'"}},
        Malformed{"unknown_dtype",
                  st(R"({"w": {"dtype":"F7","shape":[1],"data_offsets":[0,1]}})", 1),
                  {"tensor 'w'", "F7"}},
        Malformed{"missing_dtype",
                  st(R"({"w": {"shape":[1],"data_offsets":[0,4]}})", 4),
                  {"tensor 'w'", "dtype"}},
        Malformed{"missing_offsets",
                  st(R"({"w": {"dtype":"F32","shape":[1]}})", 4),
                  {"tensor 'w'", "data_offsets"}},
        Malformed{"negative_dim",
                  st(R"({"w": {"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                  {"tensor 'w'", "shape"}},
        Malformed{"float_dim",
                  st(R"({"w": {"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
                  {"tensor 'w'", "shape"}},
        Malformed{"begin_after_end",
                  st(R"({"w": {"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
                  {"tensor 'w'", "begin"}},
        Malformed{"data_past_eof",
                  st(R"({"w": {"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                  {"tensor 'w'", "past the end"}},
        Malformed{"size_mismatch",
                  st(R"({"w": {"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                  {"tensor 'w'", "mismatch", "12", "8"}},
        Malformed{"overlap",
                  st(R"({"a": {"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"( "b": {"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     12),
                  {"tensor 'b'", "overlaps tensor 'a'"}},
        Malformed{"shape_overflow",
                  st(R"({"w": {"dtype":"F32","shape":[4294967296,4294967296,16],)"
                     R"("data_offsets":[0,4]}})",
                     4),
                  {"tensor 'w'", "overflow"}},
        Malformed{"offsets_huge",
                  st(R"({"w": {"dtype":"U8","shape":[1],"data_offsets":)"
                     R"([18446744073709551615,18446744073709551615]}})",
                     1),
                  {"tensor 'w'"}},
        Malformed{"metadata_not_string",
                  st(R"({"__metadata__": {"n": 1}})"),
                  {"__metadata__.n", "strings"}},
        Malformed{"entry_not_object", st(R"({"w": 3})"), {"tensor 'w'", "not an object"}}),
    [](const auto& info) { return info.param.label; });

TEST(SafetensorsMalformedPrefix, EveryTruncationOfAValidFileFailsCleanly) {
  const std::string good = ohm::test::read_file(fixture("all_dtypes.safetensors"));
  // Every prefix that cuts the header or the data must be rejected (never read past the end).
  for (size_t n = 0; n < good.size(); n += (n < 600 ? 1 : 7)) {
    auto f = MappedFile::from_bytes("cut.safetensors", good.data(), n);
    EXPECT_THROW(SafetensorsFile::parse(f), FormatError) << "prefix " << n;
  }
  EXPECT_NO_THROW(SafetensorsFile::parse(MappedFile::from_bytes("ok", good.data(), good.size())));
}

// ---- shard index problems -------------------------------------------------------------------

TEST(SafetensorsIndex, MissingShardIsNamed) {
  TempDir dir;
  write_file(dir.file("model-00001-of-00002.safetensors"),
             st(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  write_file(dir.file("model.safetensors.index.json"),
             R"({"metadata": {"total_size": 8}, "weight_map": {"a": )"
             R"("model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  try {
    Checkpoint::open(dir.path().string());
    FAIL();
  } catch (const NotFoundError& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("model.safetensors.index.json"), std::string::npos) << w;
    EXPECT_NE(w.find("tensor 'b'"), std::string::npos) << w;
    EXPECT_NE(w.find("model-00002-of-00002.safetensors"), std::string::npos) << w;
  }
}

TEST(SafetensorsIndex, TensorAbsentFromItsShard) {
  TempDir dir;
  write_file(dir.file("s1.safetensors"),
             st(R"({"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  write_file(dir.file("model.safetensors.index.json"),
             R"({"weight_map": {"a": "s1.safetensors", "z": "s1.safetensors"}})");
  try {
    Checkpoint::open(dir.path().string());
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'z'"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsIndex, RejectsPathTraversalAndBadJson) {
  TempDir dir;
  const std::string idx = dir.file("model.safetensors.index.json");
  write_file(idx, R"({"weight_map": {"a": "../../etc/passwd"}})");
  EXPECT_THROW(Checkpoint::open(dir.path().string()), FormatError);
  write_file(idx, R"({"weight_map": {"a": "/etc/passwd"}})");
  EXPECT_THROW(Checkpoint::open(dir.path().string()), FormatError);
  write_file(idx, R"({"weight_map": [1]})");
  EXPECT_THROW(Checkpoint::open(dir.path().string()), FormatError);
  write_file(idx, R"({"weight_map": )");
  EXPECT_THROW(Checkpoint::open(dir.path().string()), FormatError);
  write_file(idx, R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})");
  EXPECT_THROW(Checkpoint::open(dir.path().string()), FormatError);
}

TEST(SafetensorsIndex, DirectoryWithoutWeights) {
  TempDir dir;
  try {
    Checkpoint::open(dir.path().string());
    FAIL();
  } catch (const NotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path().string()), std::string::npos);
  }
}

// ---- zero copy ------------------------------------------------------------------------------

static long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST(SafetensorsZeroCopy, OneGiBFileOpensWithoutReadingIt) {
  TempDir dir;
  const std::string path = dir.file("big.safetensors");
  const uint64_t n = 1ull << 30;
  const std::string header =
      R"({"big": {"dtype":"U8","shape":[1073741824],"data_offsets":[0,1073741824]},)"
      R"( "__metadata__": {"format": "pt"}})";
  {
    write_file(path, make_safetensors(header, ""));
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(8 + header.size() + n)), 0);  // sparse
    ::close(fd);
  }
  const long before = rss_kib();
  auto f = SafetensorsFile::open(path);
  Tensor t = f.tensor("big");
  const long after_open = rss_kib();
  EXPECT_EQ(t.nbytes(), n);
  EXPECT_TRUE(t.is_mapped());
  EXPECT_LT(after_open - before, 16 * 1024) << "RSS grew by " << (after_open - before) << " KiB";
  // Touching 64 MiB of the tensor brings (only) those pages in.
  uint64_t sum = 0;
  const uint8_t* p = t.data<uint8_t>();
  for (uint64_t i = 0; i < (64ull << 20); i += 4096) sum += p[i];
  EXPECT_EQ(sum, 0u);
  const long after_touch = rss_kib();
  EXPECT_GT(after_touch - after_open, 32 * 1024);
  std::printf("RSS KiB: before %ld, after open %ld, after touching 64 MiB %ld\n", before,
              after_open, after_touch);
}
