// GGUF reader: the fixture written by scripts/make_gguf_fixtures.py (metadata of every type,
// one tensor per ggml type, dequantized bit-for-bit against gguf-py), the real vocab files in the
// shared data directory, and a suite of malformed files built in memory.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ohm/core/error.h"
#include "ohm/formats/gguf.h"
#include "ohm/formats/gguf_writer.h"
#include "ohm/quant/dequant.h"
#include "test_util.h"

#ifndef OHM_SOURCE_DIR
#define OHM_SOURCE_DIR "."
#endif

namespace fs = std::filesystem;
using ohm::DType;
using ohm::gguf::GGUFFile;
using ohm::gguf::ValueType;

namespace {

fs::path fixture_dir() {
  return fs::path(OHM_SOURCE_DIR) / "tests" / "fixtures" / "gguf";
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

bool contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

// ---- a tiny GGUF writer for the malformed-file suite -----------------------------------------

struct Buf {
  std::string b;
  Buf& u8(uint8_t v) {
    b.push_back(static_cast<char>(v));
    return *this;
  }
  Buf& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Buf& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Buf& str(std::string_view s) {
    u64(s.size());
    b.append(s);
    return *this;
  }
  Buf& raw(std::string_view s) {
    b.append(s);
    return *this;
  }
};

// key + type + value payload
std::string kv(std::string_view key, ValueType t, std::string_view payload) {
  return Buf().str(key).u32(static_cast<uint32_t>(t)).raw(payload).b;
}
std::string kv_u32(std::string_view key, uint32_t v) {
  return kv(key, ValueType::UINT32, Buf().u32(v).b);
}
std::string kv_str(std::string_view key, std::string_view v) {
  return kv(key, ValueType::STRING, Buf().str(v).b);
}
// array payload: elem type + count + elements
std::string arr(ValueType elem, uint64_t count, std::string_view elems) {
  return Buf().u32(static_cast<uint32_t>(elem)).u64(count).raw(elems).b;
}

struct TI {
  std::string name;
  std::vector<int64_t> dims;  // ne0 first
  uint32_t type;
  uint64_t offset;
};

struct Spec {
  uint32_t version = 3;
  std::vector<std::string> kvs = {kv_str("general.architecture", "test"), kv_u32("test.value", 7)};
  std::vector<TI> tis = {{"a", {32, 2}, 0, 0}, {"b", {64}, 8, 256}};  // f32 [2,32]; q8_0 [64]
  uint64_t alignment = 32;    // for the padding (set general.alignment in kvs to change it)
  uint64_t data_bytes = 324;  // 256 + 68
  std::optional<uint64_t> n_tensors, n_kv;
};

std::string build(const Spec& s) {
  Buf w;
  w.raw("GGUF")
      .u32(s.version)
      .u64(s.n_tensors.value_or(s.tis.size()))
      .u64(s.n_kv.value_or(s.kvs.size()));
  for (const auto& k : s.kvs) w.raw(k);
  for (const auto& t : s.tis) {
    w.str(t.name).u32(static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) w.u64(static_cast<uint64_t>(d));
    w.u32(t.type).u64(t.offset);
  }
  while (w.b.size() % s.alignment) w.u8(0);
  for (uint64_t i = 0; i < s.data_bytes; ++i) w.u8(static_cast<uint8_t>(i * 7));
  return w.b;
}

GGUFFile parse(const std::string& bytes, const std::string& name = "case.gguf") {
  return GGUFFile::parse_buffer(bytes.data(), bytes.size(), name);
}

// Parses and expects an exception of type E; returns its message (empty on failure).
template <class E>
std::string expect_error(const std::string& bytes, const std::string& name) {
  try {
    parse(bytes, name);
  } catch (const E& e) {
    EXPECT_TRUE(contains(e.what(), name)) << "message does not name the file: " << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << name << ": wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << name << ": parsed without error";
  return "";
}

#define EXPECT_MSG(msg, sub) \
  EXPECT_TRUE(contains(msg, sub)) << "\"" << (msg) << "\" lacks \"" << (sub) << "\""

std::vector<float> read_f32(const fs::path& p) {
  std::string s = read_file(p);
  std::vector<float> v(s.size() / 4);
  std::memcpy(v.data(), s.data(), v.size() * 4);
  return v;
}

}  // namespace

// ---- the fixture -----------------------------------------------------------------------------

class GGUFFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = (fixture_dir() / "fixture.gguf").string();
    manifest_ = nlohmann::json::parse(read_file(fixture_dir() / "manifest.json"));
  }
  static std::string path_;
  static nlohmann::json manifest_;
};
std::string GGUFFixture::path_;
nlohmann::json GGUFFixture::manifest_;

TEST_F(GGUFFixture, Header) {
  GGUFFile f = GGUFFile::open(path_);
  EXPECT_EQ(f.path(), path_);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.n_kv(), manifest_["n_kv"].get<size_t>());
  EXPECT_EQ(f.n_tensors(), manifest_["tensors"].size());
  // metadata keeps the file order
  const auto keys = manifest_["keys"].get<std::vector<std::string>>();
  ASSERT_EQ(f.metadata().size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(f.metadata()[i].first, keys[i]);
}

TEST_F(GGUFFixture, ScalarMetadata) {
  GGUFFile f = GGUFFile::open(path_);
  auto type = [&](const char* k) { return f.at(k).type(); };
  EXPECT_EQ(type("test.uint8"), ValueType::UINT8);
  EXPECT_EQ(type("test.int8"), ValueType::INT8);
  EXPECT_EQ(type("test.uint16"), ValueType::UINT16);
  EXPECT_EQ(type("test.int16"), ValueType::INT16);
  EXPECT_EQ(type("test.uint32"), ValueType::UINT32);
  EXPECT_EQ(type("test.int32"), ValueType::INT32);
  EXPECT_EQ(type("test.float32"), ValueType::FLOAT32);
  EXPECT_EQ(type("test.bool_true"), ValueType::BOOL);
  EXPECT_EQ(type("test.string"), ValueType::STRING);
  EXPECT_EQ(type("test.uint64"), ValueType::UINT64);
  EXPECT_EQ(type("test.int64"), ValueType::INT64);
  EXPECT_EQ(type("test.float64"), ValueType::FLOAT64);
  EXPECT_EQ(type("general.alignment"), ValueType::UINT32);

  EXPECT_EQ(f.get_int("test.uint8"), 200);
  EXPECT_EQ(f.get_int("test.int8"), -100);
  EXPECT_EQ(f.get_int("test.uint16"), 60000);
  EXPECT_EQ(f.get_int("test.int16"), -30000);
  EXPECT_EQ(f.get_int("test.uint32"), 4000000000LL);
  EXPECT_EQ(f.get_int("test.int32"), -2000000000LL);
  EXPECT_EQ(f.get_uint("test.uint64"), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(f.get_int("test.int64"), -(int64_t{1} << 62) - 7);
  EXPECT_EQ(f.get_float("test.float32"), 0.15625);
  EXPECT_EQ(f.get_float("test.float64"), 3.141592653589793);
  EXPECT_EQ(f.get_float("test.uint32"), 4e9);  // integers widen to double
  EXPECT_EQ(f.get_bool("test.bool_true"), true);
  EXPECT_EQ(f.get_bool("test.bool_false"), false);
  EXPECT_EQ(f.get_string("test.string"), "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");
  EXPECT_EQ(f.get_string("test.string_empty"), "");
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("general.name"), "ohm gguf fixture");
  EXPECT_EQ(f.get_uint("llama.context_length"), 4096u);
  EXPECT_EQ(f.get_float("llama.rope.freq_base"), 10000.0);

  // absent -> nullopt; present with the wrong type -> FormatError naming file and key
  EXPECT_EQ(f.get_int("no.such.key"), std::nullopt);
  EXPECT_EQ(f.get_string_array("no.such.key"), std::nullopt);
  EXPECT_FALSE(f.has("no.such.key"));
  EXPECT_THROW(f.at("no.such.key"), ohm::NotFoundError);
  try {
    f.get_int("test.string");
    FAIL();
  } catch (const ohm::FormatError& e) {
    EXPECT_MSG(std::string(e.what()), path_);
    EXPECT_MSG(std::string(e.what()), "key 'test.string'");
    EXPECT_MSG(std::string(e.what()), "found string");
  }
  EXPECT_THROW(f.get_int("test.uint64"), ohm::FormatError);  // > INT64_MAX
  EXPECT_THROW(f.get_uint("test.int64"), ohm::FormatError);  // negative
  EXPECT_THROW(f.get_string("test.uint8"), ohm::FormatError);
  EXPECT_THROW(f.get_bool("test.uint8"), ohm::FormatError);
  EXPECT_THROW(f.get_float("test.string"), ohm::FormatError);
  EXPECT_THROW(f.get_string_array("test.array.int32"), ohm::FormatError);
  EXPECT_THROW(f.get_int_array("test.array.float32"), ohm::FormatError);
}

TEST_F(GGUFFixture, ArrayMetadata) {
  GGUFFile f = GGUFFile::open(path_);
  EXPECT_EQ(f.get_int_array("test.array.int32"), (std::vector<int64_t>{1, -2, 3, 2147483647}));
  EXPECT_EQ(f.at("test.array.int32").array_type(), ValueType::INT32);
  EXPECT_EQ(f.get_int_array("test.array.uint8"), (std::vector<int64_t>{0, 1, 255}));
  EXPECT_EQ(f.at("test.array.uint8").array_type(), ValueType::UINT8);
  EXPECT_EQ(f.get_int_array("test.array.int64"), (std::vector<int64_t>{-(int64_t{1} << 40), 5}));
  EXPECT_EQ(f.at("test.array.uint64").at(0).as_uint(), UINT64_MAX);
  EXPECT_THROW(f.get_int_array("test.array.uint64"), ohm::FormatError);
  EXPECT_EQ(f.get_float_array("test.array.float32"),
            (std::vector<double>{0.5, -1.25, static_cast<double>(1e-3f)}));
  EXPECT_EQ(f.get_float_array("test.array.float64"), (std::vector<double>{0.1, -2.5}));
  const auto& b = f.at("test.array.bool");
  EXPECT_EQ(b.array_type(), ValueType::BOOL);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b.at(0).as_bool(), true);
  EXPECT_EQ(b.at(1).as_bool(), false);
  EXPECT_EQ(f.get_string_array("test.array.string"),
            (std::vector<std::string>{"a", "", "\xc3\xbcn\xc3\xaf", "<0x0A>"}));
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens")->size(), 5u);

  // nested arrays
  const auto& n = f.at("test.array.nested");
  EXPECT_EQ(n.array_type(), ValueType::ARRAY);
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n.at(0).to_int_vector(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(n.at(1).to_int_vector(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(n.at(1).array_type(), ValueType::INT32);
  const auto& ns = f.at("test.array.nested_string");
  EXPECT_EQ(ns.at(1).to_string_vector(), (std::vector<std::string>{"y", "z"}));
  EXPECT_THROW(ns.at(2), ohm::InvalidArgument);
  EXPECT_EQ(f.at("test.array.float32").raw_array_data() != nullptr, true);
}

TEST_F(GGUFFixture, Json) {
  GGUFFile f = GGUFFile::open(path_);
  nlohmann::json j = f.to_json(3);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["alignment"], 64);
  const auto& md = j["metadata"];
  EXPECT_EQ(md["test.uint64"].get<uint64_t>(), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(md["test.int8"], -100);
  EXPECT_EQ(md["test.bool_true"], true);
  EXPECT_EQ(md["test.float32"], 0.15625);
  EXPECT_EQ(md["test.string"], "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");
  EXPECT_EQ(md["test.array.nested"], nlohmann::json::parse("[[1,2],[3,4,5]]"));
  EXPECT_EQ(md["test.array.bool"], nlohmann::json::parse("[true,false,true]"));
  // 4 strings > 3 -> summarised
  EXPECT_EQ(md["test.array.string"]["count"], 4);
  EXPECT_EQ(md["test.array.string"]["element_type"], "string");
  EXPECT_EQ(md["test.array.string"]["head"].size(), 3u);
  EXPECT_EQ(j["metadata_types"]["test.array.nested"], "array[array[int32]]");
  EXPECT_EQ(j["metadata_types"]["test.array.string"], "array[string]");
  EXPECT_EQ(j["tensors"].size(), f.n_tensors());
  EXPECT_EQ(j["tensors"][0]["name"], "plain.f32");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json::parse("[2,3,40]"));
  // full arrays by default
  EXPECT_EQ(f.at("test.array.string").to_json().size(), 4u);
  EXPECT_NO_THROW((void)j.dump());
  EXPECT_EQ(f.at("test.array.int32").to_string(2), "[int32 x 4: 1, -2, ...]");
}

TEST_F(GGUFFixture, TensorsMatchManifestAndReference) {
  GGUFFile f = GGUFFile::open(path_);
  const auto& tensors = manifest_["tensors"];
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& m = tensors[i];
    const std::string name = m["name"];
    SCOPED_TRACE(name);
    const auto& ti = f.tensors()[i];
    EXPECT_EQ(ti.name, name);
    EXPECT_EQ(&f.tensor_info(name), &ti);
    EXPECT_EQ(ti.ggml_type, m["ggml_type"].get<uint32_t>());
    EXPECT_EQ(ohm::gguf::ggml_type_name(ti.ggml_type), m["type_name"].get<std::string>());
    EXPECT_EQ(ohm::gguf::dtype_from_ggml(ti.ggml_type), ti.dtype);
    EXPECT_EQ(ohm::gguf::ggml_type_of(ti.dtype), ti.ggml_type);
    EXPECT_EQ(ti.dims, m["dims"].get<std::vector<int64_t>>());
    EXPECT_EQ(ti.shape, m["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(ti.offset, m["offset"].get<uint64_t>());
    EXPECT_EQ(ti.relative_offset, ti.offset - f.data_offset());
    EXPECT_EQ(ti.nbytes, m["nbytes"].get<uint64_t>());
    EXPECT_EQ(ti.offset % f.alignment(), 0u);

    ohm::Tensor t = f.tensor(name);
    EXPECT_EQ(t.dtype(), ti.dtype);
    EXPECT_EQ(t.shape(), ti.shape);
    EXPECT_EQ(t.nbytes(), ti.nbytes);
    EXPECT_TRUE(t.is_mapped());  // zero copy
    EXPECT_EQ(static_cast<const uint8_t*>(t.raw()), t.storage()->data() + ti.offset);

    ohm::Tensor d = ohm::quant::dequantize(t);
    EXPECT_EQ(d.shape(), ti.shape);
    const auto ref = read_f32(fixture_dir() / m["ref"].get<std::string>());
    ASSERT_EQ(ref.size(), d.numel());
    const float* got = d.data<float>();
    for (size_t k = 0; k < ref.size(); ++k) {
      uint32_t a, b;
      std::memcpy(&a, &got[k], 4);
      std::memcpy(&b, &ref[k], 4);
      ASSERT_EQ(a, b) << "element " << k << ": got " << got[k] << ", gguf-py " << ref[k];
    }
  }
  // tensors keep the mapping alive
  ohm::Tensor keep;
  {
    GGUFFile g = GGUFFile::open(path_);
    keep = g.tensor("quant.q6_k");
  }
  EXPECT_EQ(ohm::quant::dequantize(keep).numel(), 3u * 512u);
  EXPECT_THROW(f.tensor("missing"), ohm::NotFoundError);
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
}

// GGUFWriter::add_value (ohm quantize copies an input file's metadata with it): every key of the
// fixture -- all scalar types, arrays of each, string arrays, nested arrays -- comes back with its
// type and value.
TEST_F(GGUFFixture, WriterCopiesEveryValue) {
  GGUFFile f = GGUFFile::open(path_);
  ohm::gguf::GGUFWriter w("", f.alignment());
  for (const auto& [key, value] : f.metadata())
    if (key != "general.alignment") w.add_value(key, value);
  const auto out =
      fs::temp_directory_path() / ("ohm_gguf_copy_" + std::to_string(::getpid()) + ".gguf");
  w.write(out.string());
  const GGUFFile g = GGUFFile::open(out.string());
  const auto a = f.to_json(UINT64_MAX), b = g.to_json(UINT64_MAX);
  fs::remove(out);
  EXPECT_EQ(a["metadata"], b["metadata"]);
  EXPECT_EQ(a["metadata_types"], b["metadata_types"]);
}

TEST_F(GGUFFixture, InMemoryParseMatchesMapped) {
  GGUFFile a = GGUFFile::open(path_);
  const std::string bytes = read_file(path_);
  GGUFFile b = GGUFFile::parse_buffer(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(b.path(), "mem.gguf");
  nlohmann::json jb = b.to_json();
  EXPECT_EQ(jb["file"], "mem.gguf");
  jb["file"] = path_;
  EXPECT_EQ(a.to_json(), jb);
  ohm::Tensor ta = a.tensor("quant.q5_k"), tb = b.tensor("quant.q5_k");
  EXPECT_EQ(std::memcmp(ta.raw(), tb.raw(), ta.nbytes()), 0);
  GGUFFile c = GGUFFile::parse(ohm::MappedFile::open(path_));
  EXPECT_EQ(c.n_tensors(), a.n_tensors());
}

TEST_F(GGUFFixture, EveryTruncationIsAFormatError) {
  const std::string bytes = read_file(path_);
  GGUFFile f = parse(bytes);
  uint64_t end = 0;
  for (const auto& t : f.tensors()) end = std::max(end, t.offset + t.nbytes);
  // every prefix inside the header, then a stride through the data section
  for (uint64_t len = 0; len < end; len += (len < f.data_offset() + 64 ? 1 : 61)) {
    std::string cut = bytes.substr(0, len);
    try {
      parse(cut, "cut.gguf");
      ADD_FAILURE() << "prefix of " << len << " bytes parsed";
    } catch (const ohm::FormatError& e) {
      ASSERT_TRUE(contains(e.what(), "cut.gguf")) << e.what();
    }
  }
  // without the trailing padding the file is still valid
  EXPECT_NO_THROW(parse(bytes.substr(0, end)));
}

TEST_F(GGUFFixture, RandomCorruptionNeverCrashes) {
  // Flip bytes in the header region: the parser must either succeed or throw ohm::Error.
  const std::string bytes = read_file(path_);
  const uint64_t header = GGUFFile::parse_buffer(bytes.data(), bytes.size()).data_offset();
  std::mt19937 rng(42);
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string m = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t pos = rng() % header;
      m[pos] = static_cast<char>(rng() % 3 == 0 ? 0xFF : (rng() & 0xFF));
    }
    try {
      GGUFFile g = parse(m, "flip.gguf");
      for (const auto& t : g.tensors()) (void)ohm::quant::dequantize(g.tensor(t.name));
      (void)g.to_json(4).dump();
    } catch (const ohm::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

// ---- real vocab files ------------------------------------------------------------------------

TEST(GGUFVocab, AllVocabFilesLoad) {
  const fs::path dir = ohm::test::shared_data_dir() / "gguf-vocab";
  OHM_REQUIRE_SHARED(fs::is_directory(dir), dir << " (set OHM_SHARED_DATA)");
  nlohmann::json expect;
  if (fs::exists(fixture_dir() / "vocab_expect.json"))
    expect = nlohmann::json::parse(read_file(fixture_dir() / "vocab_expect.json"));
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".gguf") continue;
    ++n;
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    GGUFFile f = GGUFFile::open(entry.path().string());
    EXPECT_TRUE(f.version() == 2 || f.version() == 3);
    ASSERT_TRUE(f.get_string("general.architecture").has_value());
    const auto tokens = f.get_string_array("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.has_value());
    EXPECT_GT(tokens->size(), 1000u);
    if (auto scores = f.get_float_array("tokenizer.ggml.scores")) {
      EXPECT_EQ(scores->size(), tokens->size());
    }
    if (auto types = f.get_int_array("tokenizer.ggml.token_type")) {
      EXPECT_EQ(types->size(), tokens->size());
    }
    EXPECT_NO_THROW((void)f.to_json(8).dump());
    for (const auto& [k, v] : f.metadata()) (void)v.to_string();

    if (!expect.contains(name)) continue;
    const auto& e = expect.at(name);
    EXPECT_EQ(f.version(), e.at("version").get<uint32_t>());
    EXPECT_EQ(f.n_tensors(), e.at("n_tensors").get<size_t>());
    const auto& keys = e.at("keys");
    EXPECT_EQ(f.n_kv(), keys.size());
    const auto types = f.to_json(0)["metadata_types"];
    for (const auto& [k, t] : keys.items()) {
      ASSERT_TRUE(f.has(k)) << k;
      EXPECT_EQ(types.at(k), t) << k;
    }
    EXPECT_EQ(tokens->size(), e.at("n_tokens").get<size_t>());
    const auto first = e.at("first_tokens").get<std::vector<std::string>>();
    for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ((*tokens)[i], first[i]);
    if (e.contains("n_merges")) {
      EXPECT_EQ(f.get_string_array("tokenizer.ggml.merges")->size(),
                e.at("n_merges").get<size_t>());
    }
  }
  EXPECT_GT(n, 0);
}

// ---- malformed files -------------------------------------------------------------------------

TEST(GGUFMalformed, BaselineIsValid) {
  GGUFFile f = parse(build(Spec{}));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_uint("test.value"), 7u);
  ASSERT_EQ(f.n_tensors(), 2u);
  EXPECT_EQ(f.tensor("a").shape(), (ohm::Shape{2, 32}));
  EXPECT_EQ(f.tensor("b").dtype(), DType::Q8_0);
  EXPECT_EQ(f.tensor_info("b").offset, f.data_offset() + 256);
  Spec v2;
  v2.version = 2;
  EXPECT_EQ(parse(build(v2)).version(), 2u);
  Spec none;  // no tensors and no padding after the metadata (like the vocab files)
  none.tis.clear();
  none.data_bytes = 0;
  none.alignment = 1;
  std::string b = build(none);
  GGUFFile g = parse(b);
  EXPECT_EQ(g.n_tensors(), 0u);
  EXPECT_GT(g.data_offset(), b.size());
}

TEST(GGUFMalformed, Header) {
  std::string b = build(Spec{});
  std::string bad = b;
  bad[3] = 'X';
  EXPECT_MSG(expect_error<ohm::FormatError>(bad, "magic.gguf"), "bad magic");
  EXPECT_MSG(expect_error<ohm::FormatError>("", "empty.gguf"), "truncated");
  EXPECT_MSG(expect_error<ohm::FormatError>("GGU", "short.gguf"), "truncated");

  Spec s;
  s.version = 1;
  EXPECT_MSG(expect_error<ohm::UnsupportedError>(build(s), "v1.gguf"), "version 1");
  s.version = 4;
  EXPECT_MSG(expect_error<ohm::UnsupportedError>(build(s), "v4.gguf"), "version 4");
  s.version = 0x03000000;
  EXPECT_MSG(expect_error<ohm::UnsupportedError>(build(s), "be.gguf"), "big-endian");
  s.version = 0;
  EXPECT_MSG(expect_error<ohm::FormatError>(build(s), "v0.gguf"), "version 0");

  Spec c;
  c.n_kv = uint64_t{1} << 60;
  EXPECT_MSG(expect_error<ohm::FormatError>(build(c), "nkv.gguf"), "count");
  c.n_kv = UINT64_MAX;
  EXPECT_MSG(expect_error<ohm::FormatError>(build(c), "nkvneg.gguf"), "negative");
  Spec t;
  t.n_tensors = uint64_t{1} << 40;
  EXPECT_MSG(expect_error<ohm::FormatError>(build(t), "nt.gguf"), "tensor count");
  t.n_tensors = 3;  // one more than present: runs into the data
  expect_error<ohm::FormatError>(build(t), "nt3.gguf");
}

TEST(GGUFMalformed, KeyValues) {
  auto with_kv = [](std::string extra) {
    Spec s;
    s.kvs.push_back(std::move(extra));
    return build(s);
  };
  std::string m;
  // a string length past EOF, in the key and in the value
  m = expect_error<ohm::FormatError>(with_kv(Buf().u64(uint64_t{1} << 62).raw("k").b), "klen.gguf");
  EXPECT_MSG(m, "metadata key #2");
  EXPECT_MSG(m, "truncated");
  m = expect_error<ohm::FormatError>(
      with_kv(kv("big.str", ValueType::STRING, Buf().u64(UINT64_MAX - 3).raw("abc").b)),
      "vlen.gguf");
  EXPECT_MSG(m, "key 'big.str'");
  EXPECT_MSG(m, "truncated");

  m = expect_error<ohm::FormatError>(with_kv(Buf().str("bad.type").u32(13).u32(0).b), "vt.gguf");
  EXPECT_MSG(m, "key 'bad.type'");
  EXPECT_MSG(m, "invalid value type 13");

  m = expect_error<ohm::FormatError>(
      with_kv(kv("huge.arr", ValueType::ARRAY, arr(ValueType::UINT32, uint64_t{1} << 61, ""))),
      "arr.gguf");
  EXPECT_MSG(m, "key 'huge.arr'");
  EXPECT_MSG(m, "array element count");
  m = expect_error<ohm::FormatError>(
      with_kv(kv("huge.sarr", ValueType::ARRAY, arr(ValueType::STRING, uint64_t{1} << 58, ""))),
      "sarr.gguf");
  EXPECT_MSG(m, "key 'huge.sarr'");
  m = expect_error<ohm::FormatError>(
      with_kv(kv("bad.elem", ValueType::ARRAY, arr(static_cast<ValueType>(77), 1, "x"))),
      "ae.gguf");
  EXPECT_MSG(m, "key 'bad.elem'");
  EXPECT_MSG(m, "array element type 77");

  m = expect_error<ohm::FormatError>(with_kv(kv("flag", ValueType::BOOL, "\x02")), "bool.gguf");
  EXPECT_MSG(m, "key 'flag'");
  EXPECT_MSG(m, "invalid bool");
  m = expect_error<ohm::FormatError>(
      with_kv(
          kv("flags", ValueType::ARRAY, arr(ValueType::BOOL, 3, std::string("\x01\x00\x05", 3)))),
      "bools.gguf");
  EXPECT_MSG(m, "key 'flags'");
  EXPECT_MSG(m, "index 2");

  m = expect_error<ohm::FormatError>(with_kv(kv_u32("test.value", 8)), "dup.gguf");
  EXPECT_MSG(m, "key 'test.value'");
  EXPECT_MSG(m, "duplicate");

  m = expect_error<ohm::FormatError>(with_kv(kv_u32("bad\xff\xfe.key", 1)), "utf8.gguf");
  EXPECT_MSG(m, "bad\\xff\\xfe.key");
  EXPECT_MSG(m, "UTF-8");
  m = expect_error<ohm::FormatError>(with_kv(kv_u32("over\xc0\xaflong", 1)), "overlong.gguf");
  EXPECT_MSG(m, "UTF-8");

  // nesting: depth kMaxArrayDepth is fine, one more level is not
  auto nested = [](int depth) {
    std::string v = arr(ValueType::INT32, 1, Buf().u32(5).b);
    for (int d = 1; d < depth; ++d) v = arr(ValueType::ARRAY, 1, v);
    return v;
  };
  {
    Spec s;
    s.kvs.push_back(kv("deep", ValueType::ARRAY, nested(ohm::gguf::kMaxArrayDepth)));
    GGUFFile f = parse(build(s));
    ohm::gguf::Value v = f.at("deep");
    for (int d = 1; d < ohm::gguf::kMaxArrayDepth; ++d) {
      ASSERT_TRUE(v.is_array());
      EXPECT_EQ(v.array_type(), ValueType::ARRAY);
      ohm::gguf::Value next = v.at(0);
      v = next;
    }
    EXPECT_EQ(v.to_int_vector(), std::vector<int64_t>{5});
  }
  m = expect_error<ohm::FormatError>(
      with_kv(kv("too.deep", ValueType::ARRAY, nested(ohm::gguf::kMaxArrayDepth + 1))),
      "deep.gguf");
  EXPECT_MSG(m, "key 'too.deep'");
  EXPECT_MSG(m, "nested");

  // empty arrays of every kind and an empty key are valid
  {
    Spec s;
    s.kvs.push_back(kv("e.u8", ValueType::ARRAY, arr(ValueType::UINT8, 0, "")));
    s.kvs.push_back(kv("e.str", ValueType::ARRAY, arr(ValueType::STRING, 0, "")));
    s.kvs.push_back(kv("e.arr", ValueType::ARRAY, arr(ValueType::ARRAY, 0, "")));
    s.kvs.push_back(kv_u32("", 3));
    GGUFFile f = parse(build(s));
    EXPECT_EQ(f.get_int_array("e.u8"), std::vector<int64_t>{});
    EXPECT_EQ(f.get_string_array("e.str"), std::vector<std::string>{});
    EXPECT_EQ(f.at("e.arr").size(), 0u);
    EXPECT_EQ(f.get_uint(""), 3u);
    EXPECT_NO_THROW((void)f.to_json().dump());
  }
  // invalid UTF-8 in string values is kept as bytes (and replaced in JSON)
  {
    Spec s;
    s.kvs.push_back(kv_str("raw", "a\xff"));
    GGUFFile f = parse(build(s));
    EXPECT_EQ(f.get_string("raw"), "a\xff");
    EXPECT_EQ(f.to_json()["metadata"]["raw"], "a\xef\xbf\xbd");
  }
}

TEST(GGUFMalformed, Alignment) {
  Spec s;
  s.kvs.push_back(kv_u32("general.alignment", 48));
  std::string m = expect_error<ohm::FormatError>(build(s), "align48.gguf");
  EXPECT_MSG(m, "key 'general.alignment'");
  EXPECT_MSG(m, "power of two");
  s.kvs.back() = kv_u32("general.alignment", 0);
  EXPECT_MSG(expect_error<ohm::FormatError>(build(s), "align0.gguf"), "general.alignment");
  s.kvs.back() = kv_str("general.alignment", "32");
  m = expect_error<ohm::FormatError>(build(s), "alignstr.gguf");
  EXPECT_MSG(m, "general.alignment");
  EXPECT_MSG(m, "string");

  // a valid custom alignment moves the data section and constrains the offsets
  Spec a;
  a.kvs.push_back(kv_u32("general.alignment", 256));
  a.alignment = 256;
  GGUFFile f = parse(build(a));
  EXPECT_EQ(f.alignment(), 256u);
  EXPECT_EQ(f.data_offset() % 256, 0u);
  EXPECT_EQ(f.tensor_info("b").offset, f.data_offset() + 256);
  a.tis[1].offset = 288;  // aligned to 32, not to 256
  m = expect_error<ohm::FormatError>(build(a), "offalign.gguf");
  EXPECT_MSG(m, "tensor 'b'");
  EXPECT_MSG(m, "not a multiple of the alignment 256");
}

TEST(GGUFMalformed, TensorInfos) {
  auto with_ti = [](TI t, uint64_t data = 324) {
    Spec s;
    s.tis.push_back(std::move(t));
    s.data_bytes = data;
    return build(s);
  };
  std::string m;
  m = expect_error<ohm::FormatError>(with_ti({"t5", {32, 1, 1, 1, 1}, 0, 384}), "ndims.gguf");
  EXPECT_MSG(m, "tensor 't5'");
  EXPECT_MSG(m, "n_dims 5");
  m = expect_error<ohm::FormatError>(with_ti({"z", {32, 0}, 0, 384}), "zero.gguf");
  EXPECT_MSG(m, "tensor 'z'");
  EXPECT_MSG(m, "dimension 1 is 0");
  m = expect_error<ohm::FormatError>(with_ti({"neg", {-32}, 0, 384}), "neg.gguf");
  EXPECT_MSG(m, "tensor 'neg'");
  EXPECT_MSG(m, "dimension 0 is -32");
  m = expect_error<ohm::FormatError>(with_ti({"ovf", {int64_t{1} << 32, int64_t{1} << 32}, 0, 384}),
                                     "ovf.gguf");
  EXPECT_MSG(m, "tensor 'ovf'");
  EXPECT_MSG(m, "overflow");
  m = expect_error<ohm::FormatError>(
      with_ti({"ovfb", {int64_t{1} << 31, int64_t{1} << 31}, 0, 384}), "ovfb.gguf");
  EXPECT_MSG(m, "tensor 'ovfb'");  // 2^62 elements fit, 2^64 bytes do not
  m = expect_error<ohm::FormatError>(with_ti({"q", {48}, 8, 384}), "block.gguf");
  EXPECT_MSG(m, "tensor 'q'");
  EXPECT_MSG(m, "not a multiple of the Q8_0 block size 32");
  m = expect_error<ohm::FormatError>(with_ti({"q0", {}, 12, 384}), "block0.gguf");
  EXPECT_MSG(m, "tensor 'q0'");

  m = expect_error<ohm::UnsupportedError>(with_ti({"unk", {32}, 99, 384}), "type99.gguf");
  EXPECT_MSG(m, "tensor 'unk'");
  EXPECT_MSG(m, "99");
  m = expect_error<ohm::UnsupportedError>(with_ti({"iq", {256}, 16, 384}), "iq.gguf");
  EXPECT_MSG(m, "tensor 'iq'");
  EXPECT_MSG(m, "IQ2_XXS");

  m = expect_error<ohm::FormatError>(with_ti({"a", {32}, 0, 384}), "duptensor.gguf");
  EXPECT_MSG(m, "tensor 'a'");
  EXPECT_MSG(m, "duplicate");
  m = expect_error<ohm::FormatError>(with_ti({"bad\x80name", {32}, 0, 384}), "tutf8.gguf");
  EXPECT_MSG(m, "bad\\x80name");
  EXPECT_MSG(m, "UTF-8");

  m = expect_error<ohm::FormatError>(with_ti({"mis", {32}, 0, 400}, 600), "misaligned.gguf");
  EXPECT_MSG(m, "tensor 'mis'");
  EXPECT_MSG(m, "alignment 32");
  m = expect_error<ohm::FormatError>(with_ti({"past", {32}, 0, 384}, 400), "eof.gguf");
  EXPECT_MSG(m, "tensor 'past'");
  EXPECT_MSG(m, "past the end");
  m = expect_error<ohm::FormatError>(with_ti({"far", {32}, 0, UINT64_MAX - 31}), "far.gguf");
  EXPECT_MSG(m, "tensor 'far'");
  m = expect_error<ohm::FormatError>(with_ti({"over", {32}, 0, 224}, 400), "overlap.gguf");
  EXPECT_MSG(m, "overlaps");
  EXPECT_MSG(m, "'a'");
  EXPECT_MSG(m, "'over'");
  // zero-dim tensor (a scalar) of a plain type is fine
  GGUFFile f = parse(with_ti({"scalar", {}, 0, 384}, 388));
  EXPECT_EQ(f.tensor("scalar").shape(), ohm::Shape{});
  EXPECT_EQ(f.tensor_info("scalar").numel, 1u);

  // truncation inside the tensor infos names the tensor
  Spec s;
  s.alignment = 1;
  s.data_bytes = 0;
  const std::string b = build(s);
  m = expect_error<ohm::FormatError>(b.substr(0, b.size() - 5), "cutinfo.gguf");
  EXPECT_MSG(m, "tensor 'b'");
}

TEST(GGUFMalformed, OpenNamesThePath) {
  EXPECT_THROW(GGUFFile::open("/nonexistent/dir/x.gguf"), ohm::IoError);
  const fs::path p =
      fs::temp_directory_path() / ("ohm_gguf_bad_" + std::to_string(::getpid()) + ".gguf");
  {
    Spec s;
    s.kvs.push_back(kv("flag", ValueType::BOOL, "\x07"));
    std::ofstream(p, std::ios::binary) << build(s);
  }
  try {
    GGUFFile::open(p.string());
    ADD_FAILURE() << "parsed";
  } catch (const ohm::FormatError& e) {
    EXPECT_MSG(std::string(e.what()), p.string());
    EXPECT_MSG(std::string(e.what()), "key 'flag'");
    EXPECT_EQ(e.context().file_name(), p.string());
    EXPECT_EQ(e.context().key_name(), "flag");
  }
  fs::remove(p);
}
