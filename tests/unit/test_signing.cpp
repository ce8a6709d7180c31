// ohm::safety signing: manifest order and root digest as model_signing computes them, sign and
// verify round trips, tampering (tests/safety/test_model_signing.py checks interop with the
// PyPI package itself).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ohm/safety/signing.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ohm::safety;

namespace {

std::string read(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

TEST(Signing, CanonicalOrderComparesPathComponents) {
  // Python sorts pathlib paths by their parts: "a/b" < "a.b" although '.' < '/' bytewise.
  std::vector<ManifestFile> f = {{"a.b", ""}, {"a/b", ""}, {"A", ""}, {"a/a/z", ""}, {"b", ""}};
  canonical_sort(f);
  std::vector<std::string> names;
  for (auto& x : f) names.push_back(x.name);
  EXPECT_EQ(names, (std::vector<std::string>{"A", "a/a/z", "a/b", "a.b", "b"}));
}

TEST(Signing, ManifestAndRootDigestMatchModelSigning) {
  // model_signing 1.1.1 (`model_signing sign key`) over a.txt = "hello\n", sub/b.bin =
  // "world\n" and an ignored .gitattributes gave this subject digest.
  ohm::test::TempDir d;
  write(d.path() / "m" / "a.txt", "hello\n");
  write(d.path() / "m" / "sub" / "b.bin", "world\n");
  write(d.path() / "m" / ".gitattributes", "x\n");
  const Manifest m = hash_model_dir((d.path() / "m").string(), default_ignore_paths(), false, 1);
  ASSERT_EQ(m.files.size(), 2u);
  EXPECT_EQ(m.files[0].name, "a.txt");
  EXPECT_EQ(m.files[0].sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  EXPECT_EQ(m.files[1].name, "sub/b.bin");
  EXPECT_EQ(m.root_digest(), "96cb8058ed58b58f8fc0ad459bacf81108599b403e91674460ccb089f8ebb9db");
  EXPECT_EQ(m.model_name, "m");
}

TEST(Signing, SignVerifyAndTamper) {
  ohm::test::TempDir d;
  const fs::path m = d.path() / "model";
  write(m / "config.json", "{}");
  write(m / "w.bin", std::string(3 << 20, 'w'));  // several read chunks
  write(m / ".git" / "HEAD", "ref");              // ignored
  const std::string key = (d.path() / "k.pem").string(), pub = (d.path() / "k.pub").string();
  generate_ec_key(key, pub);
  EXPECT_THROW(generate_ec_key(key, pub), ohm::InvalidArgument);  // never overwrites a key
  const SignResult s = sign_model(m.string(), key);
  EXPECT_EQ(s.manifest.files.size(), 2u);
  EXPECT_EQ(s.key_fingerprint, key_fingerprint(read(pub)));
  const VerifyResult v = verify_model(m.string(), pub);
  EXPECT_EQ(v.files, 2u);
  write(m / ".git" / "HEAD", "changed");  // still ignored
  EXPECT_NO_THROW(verify_model(m.string(), pub));
  write(m / "config.json", "{ }");
  try {
    verify_model(m.string(), pub);
    FAIL() << "a modified file verified";
  } catch (const SignatureError& e) {
    EXPECT_NE(std::string(e.what()).find("modified: config.json"), std::string::npos) << e.what();
  }
  // A signature elsewhere than MODEL_DIR/model.sig (which is then an ordinary file).
  fs::remove(m / "model.sig");
  SignOptions o;
  o.signature_path = (d.path() / "elsewhere.sig").string();
  sign_model(m.string(), key, o);
  EXPECT_EQ(verify_model(m.string(), pub, o.signature_path).files, 2u);
  EXPECT_EQ(signed_dir_of((m / "config.json").string()), m.string());
}

TEST(Signing, StatementMustBeConsistent) {
  ohm::test::TempDir d;
  const std::string key = (d.path() / "k.pem").string(), pub = (d.path() / "k.pub").string();
  generate_ec_key(key, pub);
  const std::string pem = read(pub);
  EXPECT_THROW(verify_signature("", pem), SignatureError);
  EXPECT_THROW(verify_signature("{\"mediaType\": 3}", pem), SignatureError);
  EXPECT_THROW(verify_signature("{\"mediaType\": \"application/json\"}", pem), SignatureError);
  EXPECT_THROW(verify_signature(
                   R"({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                       "verificationMaterial": {"certificate": {"rawBytes": "AA=="}}})",
                   pem),
               SignatureError);
}

}  // namespace
