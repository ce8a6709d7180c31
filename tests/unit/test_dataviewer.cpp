// The dataset viewer's conversion and endpoints in process (no HTTP, no Python): parquet shards
// and their boundaries, /rows across shards, the split cap, idempotence, hostile parameters and
// the recorded error of a malformed file. The end-to-end checks with PyPI datasets and a browser
// are tests/hub/test_hub_dataviewer.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "ohm/dataviewer/viewer.h"
#include "ohm/hub/errors.h"
#include "ohm/hub/hash.h"
#include "ohm/hub/hub.h"

namespace fs = std::filesystem;
using namespace ohm::hub;
using ohm::dataviewer::DatasetViewer;
using ohm::dataviewer::ViewerOptions;
using json = nlohmann::json;

namespace {

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("ohm-dataviewer-test-" + random_hex(6));
  Hub hub{dir.string()};
  Caller alice, bob, anon;
  Fixture() {
    hub.add_user("alice", false);
    hub.add_user("bob", false);
    alice = hub.authenticate("Bearer " + hub.create_token("alice", "write", "t"));
    bob = hub.authenticate("Bearer " + hub.create_token("bob", "write", "t"));
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  ExtensionReply get(DatasetViewer& v, const Caller& c, const std::string& ep,
                     std::multimap<std::string, std::string> q) {
    ExtensionRequest r;
    r.method = "GET";
    r.seg = {"datasets-server", ep};
    r.query = std::move(q);
    r.base_url = "http://hub";
    r.caller = c;
    return v.handle(hub, r);
  }
};

std::string jsonl(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i)
    s += "{\"i\": " + std::to_string(i) + ", \"t\": \"row " + std::to_string(i) + "\"}\n";
  return s;
}

CommitOp file(const std::string& path, const std::string& content) {
  return {CommitOp::Kind::File, path, content, "", std::nullopt};
}

}  // namespace

TEST(DataViewer, ShardsRowsCapAndIdempotence) {
  Fixture f;
  ViewerOptions o;
  o.data_dir = f.dir.string();
  o.shard_bytes = 64 << 10;  // many small parquet files
  o.max_split_rows = 30000;
  o.log = false;
  DatasetViewer v(f.hub, o);
  RepoInfo r = f.hub.create_repo(f.alice, RepoType::Dataset, "alice", "d", false);
  f.hub.commit(
      "alice", r, "main", "data", "", "",
      {file("data/train.jsonl", jsonl(0, 20000)), file("data/test.jsonl", jsonl(0, 40000))});
  v.wait_idle();
  const std::string tip = f.hub.resolve(r, "refs/convert/parquet");
  std::vector<std::string> paths;
  for (auto& e : f.hub.files(r, tip))
    if (e.path != ".gitattributes") paths.push_back(e.path);
  ASSERT_GT(paths.size(), 3u);                                    // several shards
  EXPECT_EQ(paths.front(), "default/partial-test/0000.parquet");  // 40000 rows > the cap
  EXPECT_NE(std::find(paths.begin(), paths.end(), "default/train/0001.parquet"), paths.end());

  auto sz = json::parse(f.get(v, f.alice, "size", {{"dataset", "alice/d"}}).body);
  EXPECT_EQ(sz["size"]["dataset"]["num_rows"], 20000 + 30000);
  EXPECT_EQ(sz["partial"], true);
  // /rows across every shard boundary of train
  auto pq = json::parse(f.get(v, f.alice, "parquet", {{"dataset", "alice/d"}}).body);
  int train_files = 0;
  for (auto& e : pq["parquet_files"]) train_files += e["split"] == "train";
  EXPECT_GT(train_files, 1);
  for (int off : {0, 99, 5000, 9990, 19950, 19999}) {
    auto rows = json::parse(f.get(v, f.alice, "rows",
                                  {{"dataset", "alice/d"},
                                   {"config", "default"},
                                   {"split", "train"},
                                   {"offset", std::to_string(off)},
                                   {"length", "100"}})
                                .body);
    const int want = std::min(100, 20000 - off);
    ASSERT_EQ(static_cast<int>(rows["rows"].size()), want) << off;
    for (int k = 0; k < want; ++k) {
      EXPECT_EQ(rows["rows"][k]["row_idx"], off + k);
      EXPECT_EQ(rows["rows"][k]["row"]["i"], off + k);
    }
  }
  // re-push without a data change: no convert commit
  const size_t n0 = f.hub.history(r, tip, 100).size();
  f.hub.commit("alice", r, "main", "notes", "", "", {file("notes.txt", "n")});
  v.wait_idle();
  EXPECT_EQ(f.hub.resolve(r, "refs/convert/parquet"), tip);
  EXPECT_EQ(f.hub.history(r, f.hub.resolve(r, "refs/convert/parquet"), 100).size(), n0);
  auto sp = f.get(v, f.alice, "splits", {{"dataset", "alice/d"}});
  bool rev = false;
  for (auto& [k, val] : sp.headers) rev |= k == "X-Revision" && val == f.hub.resolve(r, "main");
  EXPECT_TRUE(rev);
}

TEST(DataViewer, ErrorsAccessAndParameters) {
  Fixture f;
  ViewerOptions o;
  o.data_dir = f.dir.string();
  o.log = false;
  DatasetViewer v(f.hub, o);
  RepoInfo bad = f.hub.create_repo(f.alice, RepoType::Dataset, "alice", "bad", true);
  f.hub.commit("alice", bad, "main", "data", "", "",
               {file("train.jsonl", "{\"a\": 1}\n{\"a\": 2\n")});
  v.wait_idle();
  auto e = f.get(v, f.alice, "splits", {{"dataset", "alice/bad"}});
  EXPECT_EQ(e.status, 500);
  const std::string msg = json::parse(e.body)["error"];
  EXPECT_NE(msg.find("train.jsonl"), std::string::npos) << msg;
  EXPECT_EQ(msg.find(f.dir.string()), std::string::npos) << msg;       // no server paths
  EXPECT_THROW(f.hub.resolve(bad, "refs/convert/parquet"), NotFound);  // no partial branch
  // private: exactly the repo's visibility
  EXPECT_THROW(f.get(v, f.anon, "splits", {{"dataset", "alice/bad"}}), HubError);
  try {
    f.get(v, f.bob, "splits", {{"dataset", "alice/bad"}});
    FAIL();
  } catch (const HubError& x) {
    EXPECT_EQ(x.hub_kind(), HubErrorKind::NotFound);
  }
  // parameters
  RepoInfo r = f.hub.create_repo(f.alice, RepoType::Dataset, "alice", "ok", false);
  f.hub.commit("alice", r, "main", "data", "", "", {file("train.jsonl", jsonl(0, 10))});
  v.wait_idle();
  auto kind = [&](std::multimap<std::string, std::string> q) {
    try {
      f.get(v, f.alice, "rows", std::move(q));
    } catch (const HubError& x) {
      return x.hub_kind();
    }
    return HubErrorKind::RateLimited;  // "no error"
  };
  using M = std::multimap<std::string, std::string>;
  EXPECT_EQ(kind(M{{"dataset", "alice/ok"}}), HubErrorKind::Unprocessable);
  EXPECT_EQ(kind(M{{"dataset", "alice/ok"}, {"config", "x/../../"}, {"split", "train"}}),
            HubErrorKind::NotFound);
  EXPECT_EQ(
      kind(M{{"dataset", "alice/ok"}, {"config", "default"}, {"split", "train"}, {"offset", "-5"}}),
      HubErrorKind::Unprocessable);
  EXPECT_EQ(
      kind(
          M{{"dataset", "alice/ok"}, {"config", "default"}, {"split", "train"}, {"length", "101"}}),
      HubErrorKind::Unprocessable);
  EXPECT_EQ(kind(M{{"dataset", "alice/ok"},
                   {"config", "default"},
                   {"split", "train"},
                   {"offset", "999999999999"}}),
            HubErrorKind::RateLimited);
}
