// The datasets module (ohm/datasets): readers and their errors, features <-> Arrow types, the
// directory layout rules, transforms. Interop with PyPI `datasets`: tests/datasets/.
#include <gtest/gtest.h>

#include <fstream>

#include "ohm/core/error.h"
#include "ohm/datasets/dataset.h"
#include "ohm/datasets/repo.h"
#include "ohm/datasets/transforms.h"
#include "test_util.h"

namespace ds = ohm::datasets;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ohm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::shared_ptr<arrow::Table> text_table(const std::vector<std::string>& texts) {
  arrow::StringBuilder b;
  for (const auto& t : texts) EXPECT_TRUE(b.Append(t).ok());
  std::shared_ptr<arrow::Array> a;
  EXPECT_TRUE(b.Finish(&a).ok());
  return arrow::Table::Make(arrow::schema({arrow::field("text", arrow::utf8())}), {a});
}

std::vector<std::string> texts_of(const std::shared_ptr<arrow::Table>& t) {
  std::vector<std::string> out;
  auto b = t->CombineChunksToBatch().ValueOrDie();
  const auto& a = static_cast<const arrow::StringArray&>(*b->column(0));
  for (int64_t i = 0; i < a.length(); ++i) out.emplace_back(a.GetView(i));
  return out;
}

}  // namespace

TEST(Datasets, ReadsJsonlCsvTextAndJsonArray) {
  ohm::test::TempDir tmp;
  write(tmp.path() / "a.jsonl", "{\"x\": 1, \"s\": \"a\"}\n{\"x\": 2, \"s\": \"b\"}\n");
  write(tmp.path() / "a.csv", "x,s\n1,a\n2,b\n3,c\n");
  write(tmp.path() / "a.txt", "one\r\ntwo\n\nfour");
  write(tmp.path() / "a.json", "[{\"x\": 1}, {\"x\": 5}]");
  EXPECT_EQ(ds::read_all(ds::open_file((tmp.path() / "a.jsonl").string()))->num_rows(), 2);
  EXPECT_EQ(ds::count_rows((tmp.path() / "a.csv").string()), 3);
  auto text = ds::read_all(ds::open_file((tmp.path() / "a.txt").string()));
  EXPECT_EQ(texts_of(text), (std::vector<std::string>{"one", "two", "", "four"}));
  auto arr = ds::read_all(ds::open_file((tmp.path() / "a.json").string()));
  EXPECT_EQ(arr->num_rows(), 2);
  EXPECT_EQ(arr->schema()->field(0)->type()->id(), arrow::Type::INT64);
}

TEST(Datasets, TextStreamsInBatches) {
  ohm::test::TempDir tmp;
  std::string s;
  for (int i = 0; i < 25; ++i) s += "line " + std::to_string(i) + "\n";
  write(tmp.path() / "t.txt", s);
  ds::ReadOptions ro;
  ro.batch_rows = 10;
  auto r = ds::open_file((tmp.path() / "t.txt").string(), ro);
  std::vector<int64_t> sizes;
  for (;;) {
    std::shared_ptr<arrow::RecordBatch> b;
    ASSERT_TRUE(r->ReadNext(&b).ok());
    if (!b) break;
    sizes.push_back(b->num_rows());
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{10, 10, 5}));
}

TEST(Datasets, BadInputNamesFileLineAndColumn) {
  ohm::test::TempDir tmp;
  const auto p = [&](const char* n) { return (tmp.path() / n).string(); };
  write(p("bad.jsonl"), "{\"a\": 1}\n{\"a\": 2\n");
  auto e = error_of([&] { ds::read_all(ds::open_file(p("bad.jsonl"))); });
  EXPECT_NE(e.find("bad.jsonl"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
  write(p("ragged.csv"), "a,b\n1,2\n3\n");
  e = error_of([&] { ds::read_all(ds::open_file(p("ragged.csv"))); });
  EXPECT_NE(e.find("ragged.csv: row 3: expected 2 columns (a, b), got 1"), std::string::npos) << e;
  write(p("s1.jsonl"), "{\"v\": 1}\n");
  write(p("s2.jsonl"), "{\"v\": \"x\"}\n");
  e = error_of([&] { ds::read_all(ds::open_files({p("s1.jsonl"), p("s2.jsonl")})); });
  EXPECT_NE(e.find("s2.jsonl: key 'v'"), std::string::npos) << e;
  EXPECT_NE(e.find("s1.jsonl"), std::string::npos) << e;
  e = error_of([&] { ds::open_file(p("missing.parquet")); });
  EXPECT_NE(e.find("missing.parquet: no such file"), std::string::npos) << e;
  write(p("junk.parquet"), "not parquet at all");
  e = error_of([&] { ds::read_all(ds::open_file(p("junk.parquet"))); });
  EXPECT_NE(e.find("junk.parquet"), std::string::npos) << e;
}

TEST(Datasets, FeaturesRoundTripThroughParquetAndArrow) {
  const json features = json::parse(R"({
    "text": {"dtype": "string", "_type": "Value"},
    "label": {"names": ["neg", "pos"], "_type": "ClassLabel"},
    "ids": {"feature": {"dtype": "int32", "_type": "Value"}, "_type": "List"},
    "meta": {"a": {"dtype": "float32", "_type": "Value"}, "ok": {"dtype": "bool", "_type": "Value"}},
    "when": {"dtype": "timestamp[us, tz=UTC]", "_type": "Value"}
  })");
  auto schema = ds::schema_of(features);
  EXPECT_EQ(schema->GetFieldByName("label")->type()->id(), arrow::Type::INT64);
  EXPECT_EQ(ds::features_from_arrow(*schema)["label"],
            (json{{"dtype", "int64"}, {"_type", "Value"}}));
  EXPECT_EQ(ds::features_from_arrow(*schema)["when"], features["when"]);
  auto batch = arrow::RecordBatch::MakeEmpty(schema).ValueOrDie();
  ohm::test::TempDir tmp;
  for (auto fmt : {ds::FileFormat::Parquet, ds::FileFormat::Arrow}) {
    const auto path = (tmp.path() / (std::string("f.") + ds::to_string(fmt))).string();
    auto reader = arrow::RecordBatchReader::Make({batch}, schema).ValueOrDie();
    ds::WriteOptions wo;
    wo.format = fmt;
    wo.features = features;
    EXPECT_EQ(ds::write_file(*reader, path, wo), 0);
    EXPECT_EQ(ds::features_of(*ds::open_file(path)->schema()), features) << path;
  }
  EXPECT_THROW(ds::arrow_type_of(json{{"dtype", "int3"}, {"_type", "Value"}}), ohm::FormatError);
}

TEST(Datasets, DirectoryLayoutAndConfigs) {
  ohm::test::TempDir tmp;
  const auto& root = tmp.path();
  for (const char* f : {"data/train-00000-of-00002.jsonl", "data/train-00001-of-00002.jsonl",
                        "data/validation-00000-of-00001.jsonl", "test.jsonl", "notes.md"})
    write(root / f, "{\"a\": 1}\n");
  auto d = ds::resolve_local(root.string());
  ASSERT_EQ(d.configs.size(), 1u);
  const auto& c = ds::select_config(d, "");
  ASSERT_EQ(c.splits.size(), 3u);
  EXPECT_EQ(c.splits[0].name, "train");
  EXPECT_EQ(c.splits[0].files.size(), 2u);
  EXPECT_EQ(c.splits[1].name, "validation");
  EXPECT_EQ(c.splits[2].name, "test");
  EXPECT_NE(
      error_of([&] { ds::select_split(d, c, "dev"); }).find("splits: train, validation, test"),
      std::string::npos);

  write(root / "README.md",
        "---\nconfigs:\n- config_name: a\n  data_files: data/train-*\n- config_name: b\n"
        "  default: true\n  data_files:\n  - split: eval\n    path: [test.jsonl, "
        "\"data/val*\"]\n---\n");
  d = ds::resolve_local(root.string());
  ASSERT_EQ(d.configs.size(), 2u);
  EXPECT_EQ(ds::select_config(d, "").name, "b");
  EXPECT_EQ(ds::select_config(d, "b").splits[0].files.size(), 2u);
  EXPECT_EQ(ds::select_config(d, "a").splits[0].name, "train");
  EXPECT_NE(error_of([&] { ds::select_config(d, "zz"); }).find("no config 'zz' (configs: a, b)"),
            std::string::npos);
  write(root / "README.md", "---\nconfigs:\n- config_name: a\n  data_files: nothing/*\n---\n");
  EXPECT_NE(error_of([&] { ds::resolve_local(root.string()); }).find("matches no data file"),
            std::string::npos);
}

TEST(Datasets, Glob) {
  EXPECT_TRUE(ds::glob_match("data/train-*", "data/train-0.parquet"));
  EXPECT_FALSE(ds::glob_match("*.parquet", "data/x.parquet"));
  EXPECT_TRUE(ds::glob_match("**/*.parquet", "data/x.parquet"));
  EXPECT_TRUE(ds::glob_match("**/*.parquet", "x.parquet"));
  EXPECT_TRUE(ds::glob_match("d?ta/**", "data/a/b.csv"));
}

TEST(Datasets, ShuffleSplitSelectFilterConcatenate) {
  std::vector<std::string> v;
  for (int i = 0; i < 100; ++i) v.push_back(std::to_string(i));
  auto t = text_table(v);
  auto a = ds::shuffle(t, 7), b = ds::shuffle(t, 7), c = ds::shuffle(t, 8);
  EXPECT_EQ(texts_of(a), texts_of(b));
  EXPECT_NE(texts_of(a), texts_of(c));
  auto sorted = texts_of(a);
  std::sort(sorted.begin(), sorted.end());
  auto all = v;
  std::sort(all.begin(), all.end());
  EXPECT_EQ(sorted, all);
  auto [train, test] = ds::train_test_split(t, 0.2, 1);
  EXPECT_EQ(train->num_rows(), 80);
  EXPECT_EQ(test->num_rows(), 20);
  EXPECT_EQ(texts_of(ds::select(t, {3, 1})), (std::vector<std::string>{"3", "1"}));
  EXPECT_THROW(ds::select(t, {100}), ohm::InvalidArgument);
  auto even = ds::filter(t, [](const arrow::RecordBatch& b) {
    std::vector<bool> k;
    const auto& a = static_cast<const arrow::StringArray&>(*b.column(0));
    for (int64_t i = 0; i < a.length(); ++i)
      k.push_back(std::stoi(std::string(a.GetView(i))) % 2 == 0);
    return k;
  });
  EXPECT_EQ(even->num_rows(), 50);
  EXPECT_EQ(ds::concatenate({t, even})->num_rows(), 150);
  auto other = arrow::Table::Make(
      arrow::schema({arrow::field("text", arrow::int64())}),
      std::vector<std::shared_ptr<arrow::Array>>{std::make_shared<arrow::Int64Array>(
          0, arrow::Buffer::FromVector(std::vector<int64_t>{}))});
  EXPECT_NE(error_of([&] { ds::concatenate({t, other}); }).find("'text'"), std::string::npos);
}

TEST(Datasets, DedupExactAndNear) {
  const std::string base =
      "the cat sat on the mat while the dog slept by the warm fire all night long";
  auto t =
      text_table({base, "other text entirely", base, base + " tonight", "other text entirely"});
  ds::DedupOptions o;
  auto exact = ds::dedup(t, o);
  EXPECT_EQ(exact.removed, 2);
  EXPECT_EQ(texts_of(exact.table),
            (std::vector<std::string>{base, "other text entirely", base + " tonight"}));
  o.near = true;
  o.columns = {"text"};
  o.threshold = 0.7;
  auto near = ds::dedup(t, o);
  EXPECT_EQ(texts_of(near.table), (std::vector<std::string>{base, "other text entirely"}));
  auto [bands, rows] = ds::lsh_params(0.8, 128);
  EXPECT_LE(bands * rows, 128);
  EXPECT_GT(rows, 1);
}

TEST(Datasets, MapKeepsOrderAcrossThreads) {
  std::vector<std::string> v;
  for (int i = 0; i < 1000; ++i) v.push_back(std::to_string(i));
  auto t = text_table(v);
  auto in = std::make_shared<arrow::TableBatchReader>(t);
  ds::MapOptions mo;
  mo.threads = 3;
  mo.batch_rows = 7;
  auto out = ds::read_all(ds::map(
      in, [](const arrow::RecordBatch& b) { return b.Slice(0); }, mo));
  EXPECT_EQ(texts_of(out), v);
}
