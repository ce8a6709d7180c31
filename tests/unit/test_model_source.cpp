#include <gtest/gtest.h>
#include <stdlib.h>

#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"
#include "test_util.h"

using namespace ohm;
namespace fs = std::filesystem;

class EnvGuard {
 public:
  explicit EnvGuard(std::vector<std::string> names) : names_(std::move(names)) {
    for (const auto& n : names_) {
      const char* v = getenv(n.c_str());
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(n.c_str());
    }
  }
  ~EnvGuard() {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (saved_[i])
        setenv(names_[i].c_str(), saved_[i]->c_str(), 1);
      else
        unsetenv(names_[i].c_str());
    }
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::optional<std::string>> saved_;
};

TEST(ModelSource, CacheDirFromEnvironment) {
  EnvGuard g({"HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME"});
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/home/u/.cache/huggingface/hub");
  setenv("HF_HOME", "/data/hf", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/data/hf/hub");
  setenv("HF_HUB_CACHE", "/cache", 1);
  EXPECT_EQ(hf_hub_cache_dir(), "/cache");
}

TEST(ModelSource, RepoIdValidation) {
  EXPECT_TRUE(is_valid_repo_id("meta-llama/Llama-2-7b-hf"));
  EXPECT_TRUE(is_valid_repo_id("gpt2"));
  EXPECT_TRUE(is_valid_repo_id("org/model.v1_2"));
  EXPECT_FALSE(is_valid_repo_id("a/b/c"));
  EXPECT_FALSE(is_valid_repo_id("org/../x"));
  EXPECT_FALSE(is_valid_repo_id("org--x/y"));
  EXPECT_FALSE(is_valid_repo_id("org/name-"));
  EXPECT_FALSE(is_valid_repo_id(""));
}

TEST(ModelSource, LocalPaths) {
  ohm::test::TempDir d;
  ohm::test::write_file(d.file("m.gguf"), "GGUF");
  ohm::test::write_file(d.file("w.safetensors"), "");
  ohm::test::write_file(d.file("config.json"), "{}");
  EXPECT_EQ(resolve_model(d.path().string()).kind, SourceKind::Directory);
  EXPECT_TRUE(resolve_model(d.path().string()).file("config.json").has_value());
  EXPECT_FALSE(resolve_model(d.path().string()).file("nope.json").has_value());
  EXPECT_EQ(resolve_model(d.file("m.gguf")).kind, SourceKind::GgufFile);
  EXPECT_EQ(resolve_model(d.file("w.safetensors")).kind, SourceKind::SafetensorsFile);
  EXPECT_THROW(resolve_model(d.file("config.json")), InvalidArgument);
  EXPECT_THROW(resolve_model("./does/not/exist"), NotFoundError);
}

TEST(ModelSource, HubIdInStandardCacheLayout) {
  EnvGuard g({"HF_HUB_CACHE", "HF_HOME"});
  ohm::test::TempDir d;
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  const std::string commit2 = "89abcdef0123456789abcdef0123456789abcdef";
  const fs::path repo = d.path() / "hub" / "models--org--tiny";
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "snapshots" / commit);
  fs::create_directories(repo / "snapshots" / commit2);
  ohm::test::write_file((repo / "refs" / "main").string(), commit + "\n");
  ohm::test::write_file((repo / "refs" / "v1").string(), commit2);
  setenv("HF_HOME", d.path().c_str(), 1);

  auto s = resolve_model("org/tiny");
  EXPECT_EQ(s.repo_id, "org/tiny");
  EXPECT_EQ(s.revision, "main");
  EXPECT_EQ(s.commit, commit);
  EXPECT_EQ(s.path, (repo / "snapshots" / commit).string());
  EXPECT_EQ(resolve_model("org/tiny@v1").commit, commit2);
  EXPECT_EQ(resolve_model("org/tiny@" + commit2).path, (repo / "snapshots" / commit2).string());

  try {
    resolve_model("org/tiny@nope");
    FAIL();
  } catch (const NotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find("revision 'nope'"), std::string::npos) << e.what();
  }
  try {
    resolve_model("org/other");
    FAIL();
  } catch (const NotFoundError& e) {
    EXPECT_NE(std::string(e.what()).find("org/other"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ohm pull"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_model("org/tiny@../../x"), InvalidArgument);
  // HF_HUB_CACHE wins over HF_HOME.
  setenv("HF_HUB_CACHE", (d.path() / "elsewhere").c_str(), 1);
  EXPECT_THROW(resolve_model("org/tiny"), NotFoundError);
}
