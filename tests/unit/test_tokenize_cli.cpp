// `ohm tokenize` / `ohm detokenize` through ohm::cli::run (expected ids from HF tokenizers 0.23.3
// on the committed component fixture comp_bytelevel_added.json).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
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

// --batch: one answer a line, in order, with the same ids as the single-text path (the HF ids
// above); blank lines skipped; escaped and plain JSON strings both accepted; the answers are
// JSON even when the tokens or the decoded text need escapes.
TEST(TokenizeCli, BatchLines) {
  ohm::test::TempDir d;
  const std::string in = d.file("in.jsonl");
  ohm::test::write_file(in,
                        "\"Hello world\"\n"
                        "\n"
                        "{\"text\": \"na\\u00efve caf\\u00e9 123\"}\n"
                        "\"tab\\there \\\"q\\\" \\\\ end\"\n");
  for (const char* raw : {"", "--raw"}) {
    std::vector<std::string> args = {"ohm",      "tokenize",     fixture(),   "--batch", in,
                                     "--decode", "--no-special", "--threads", "2"};
    if (*raw) args.push_back(raw);
    std::string out, err;
    ASSERT_EQ(run_cli(args, &out, &err), 0) << err;
    std::istringstream ss(out);
    std::vector<nlohmann::json> got;
    for (std::string line; std::getline(ss, line);) got.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(got.size(), 3u) << out;
    // HF tokenizers 0.23.3 on the same file: encode(s, add_special_tokens=False).ids/.offsets
    // and decode(ids) (the fixture lowercases and adds a prefix space)
    const auto want = nlohmann::json::parse(R"([
      {"ids": [602, 474], "offsets": [[0, 5], [6, 11]], "decoded": "hello world"},
      {"ids": [289, 382, 107, 402, 276, 64, 528, 461, 18],
       "offsets": [[0, 1], [1, 3], [2, 3], [3, 5], [6, 7], [7, 8], [8, 10], [11, 13], [13, 14]],
       "decoded": " na\u00efve caf\u00e9 123"},
      {"ids": [272, 257, 197, 452, 220, 1, 80, 1, 220, 59, 323, 77, 67],
       "offsets": [[0, 1], [1, 3], [3, 4], [4, 8], [9, 9], [9, 10], [10, 11], [11, 12], [13, 13],
                   [13, 14], [15, 16], [16, 17], [17, 18]],
       "decoded": " tab\there \"q\" \\ end"}])");
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(got[i]["ids"], want[i]["ids"]) << i;
      EXPECT_EQ(got[i]["offsets"], want[i]["offsets"]) << i;
      EXPECT_EQ(got[i]["decoded"], want[i]["decoded"]) << i;
      EXPECT_EQ(got[i]["tokens"].size(), got[i]["ids"].size()) << i;
    }
  }
}

// A bad line is an error naming the file and the line; nothing is guessed.
TEST(TokenizeCli, BatchBadLines) {
  ohm::test::TempDir d;
  const std::string in = d.file("bad.jsonl");
  std::string out, err;
  ohm::test::write_file(in, "\"ok\"\nnot json\n");
  EXPECT_EQ(run_cli({"ohm", "tokenize", fixture(), "--batch", in}, &out, &err), 1);
  EXPECT_NE(err.find("bad.jsonl"), std::string::npos) << err;
  EXPECT_NE(err.find("line"), std::string::npos) << err;
  EXPECT_NE(err.find("2"), std::string::npos) << err;
  ohm::test::write_file(in, "42\n");
  EXPECT_EQ(run_cli({"ohm", "tokenize", fixture(), "--batch", in}, &out, &err), 1);
  EXPECT_NE(err.find("expected a JSON string"), std::string::npos) << err;
  ohm::test::write_file(in, "\"unterminated\n");
  EXPECT_EQ(run_cli({"ohm", "tokenize", fixture(), "--batch", in}, &out, &err), 1);
  EXPECT_NE(err.find("not JSON"), std::string::npos) << err;
  // usage errors: a missing file, --batch with --text, --decode without --batch
  EXPECT_EQ(run_cli({"ohm", "tokenize", fixture(), "--batch", d.file("none.jsonl")}, &out, &err),
            2);
  EXPECT_EQ(run_cli({"ohm", "tokenize", fixture(), "--batch", in, "--text", "x"}, &out, &err), 2);
  EXPECT_EQ(run_cli({"ohm", "tokenize", fixture(), "--text", "x", "--decode"}, &out, &err), 2);
}

}  // namespace
