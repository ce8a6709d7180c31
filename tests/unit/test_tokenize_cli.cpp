// `ohm tokenize` / `ohm detokenize` through ohm::cli::run (expected ids from HF tokenizers 0.23.3
// on the committed component fixture comp_bytelevel_added.json).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ohm/cli/cli.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

int run_cli(std::vector<std::string> args, std::string* out = nullptr, std::string* err = nullptr) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int rc = ohm::cli::run(static_cast<int>(argv.size()), argv.data());
  std::string o = testing::internal::GetCapturedStdout();
  std::string e = testing::internal::GetCapturedStderr();
  if (out) *out = o;
  if (err) *err = e;
  return rc;
}

std::string fixture() {
  return (ohm::test::fixtures_dir() / "tokenizers" / "comp_bytelevel_added.json").string();
}

TEST(TokenizeCli, TextToIds) {
  std::string out, err;
  ASSERT_EQ(run_cli({"ohm", "tokenize", fixture(), "--text", "Hello world"}, &out, &err), 0) << err;
  EXPECT_EQ(out, "602 474\n");
  ASSERT_EQ(
      run_cli({"ohm", "tokenize", fixture(), "--text", "na\xC3\xAFve caf\xC3\xA9 123", "--json"},
              &out, &err),
      0)
      << err;
  EXPECT_EQ(out, "[289,382,107,402,276,64,528,461,18]\n");
}

TEST(TokenizeCli, FileInput) {
  fs::path f = fs::temp_directory_path() / "ohm_tokenize_cli_input.txt";
  { std::ofstream(f, std::ios::binary) << "Hello world"; }
  std::string out, err;
  ASSERT_EQ(
      run_cli({"ohm", "tokenize", fixture(), "--file", f.string(), "--no-special"}, &out, &err), 0)
      << err;
  EXPECT_EQ(out, "602 474\n");
  fs::remove(f);
}

TEST(TokenizeCli, Detokenize) {
  std::string out, err;
  ASSERT_EQ(run_cli({"ohm", "detokenize", fixture(), "--ids", "289 382 107 402 276 64 528 461 18"},
                    &out, &err),
            0)
      << err;
  EXPECT_EQ(out, " na\xC3\xAFve caf\xC3\xA9 123\n");
  ASSERT_EQ(run_cli({"ohm", "detokenize", fixture(), "--json", "[602,474]"}, &out, &err), 0) << err;
  EXPECT_EQ(out, "hello world\n");
}

// A SentencePiece tokenizer.model (Unigram, precompiled charsmap, user-defined "<mask>"): ids from
// sentencepiece 0.2 and transformers 5.24 (AutoTokenizer on a directory with only this file).
TEST(TokenizeCli, SentencePieceModel) {
  std::string model = (ohm::test::fixtures_dir() / "tokenizers" / "spm_unigram.model").string();
  std::string out, err;
  ASSERT_EQ(run_cli({"ohm", "tokenize", model, "--text", "\xEF\xAC\x81ne  \xEF\xBC\xA6ull <mask>"},
                    &out, &err),
            0)
      << err;
  EXPECT_EQ(out, "261 345 264 271 267 261 244 193 171 288 297 261 3\n");
  ASSERT_EQ(run_cli({"ohm", "detokenize", model, "--ids",
                     "261 345 264 271 267 261 244 193 171 288 297 261 3"},
                    &out, &err),
            0)
      << err;
  EXPECT_EQ(out, "fine \xEF\xBC\xA6ull <mask>\n");
}

TEST(TokenizeCli, Errors) {
  std::string out, err;
  EXPECT_NE(run_cli({"ohm", "tokenize", fixture()}, &out, &err), 0);
  EXPECT_NE(run_cli({"ohm", "detokenize", fixture(), "--ids", "1 x"}, &out, &err), 0);
  EXPECT_NE(err.find("--ids"), std::string::npos) << err;
  EXPECT_NE(run_cli({"ohm", "detokenize", fixture(), "--json", "{}"}, &out, &err), 0);
}

}  // namespace
