// ohm::safety file encryption: round trips at the chunk edges, and every kind of damage
// (a flipped header, body or tag byte, truncation at and inside a chunk, appended bytes, a wrong
// identity) fails with a DecryptError naming the cause and leaves no output file behind.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "ohm/safety/encrypt.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace ohm::safety;

namespace {

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

// The directory's entries (to check that nothing but the expected files is there).
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> v;
  for (auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

// Header size for one recipient: 16 fixed + 88 per recipient + 24 stream header.
constexpr size_t kHeader1 = 16 + 88 + 24;
constexpr size_t kChunk = kEncChunkSize;

class Encrypt : public ::testing::Test {
 protected:
  ohm::test::TempDir d;
  Identity alice = Identity::generate(), bob = Identity::generate();
  fs::path in() { return d.path() / "in.bin"; }
  fs::path enc() { return d.path() / "in.bin.ohmenc"; }
  fs::path out() { return d.path() / "out.bin"; }

  // Decryption of the (damaged) encrypted file fails with a message containing `what`; no
  // output and no temporary file is left.
  void expect_fails(const std::string& what, const Identity& who) {
    const auto before = entries(d.path());
    try {
      decrypt_file(enc().string(), out().string(), who);
      ADD_FAILURE() << "decrypted; expected: " << what;
    } catch (const DecryptError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(enc().string()), std::string::npos)
          << "names the file: " << e.what();
    }
    EXPECT_FALSE(fs::exists(out()));
    EXPECT_EQ(entries(d.path()), before);
  }
  void expect_fails(const std::string& what) { expect_fails(what, alice); }
};

TEST_F(Encrypt, RoundTripAtChunkEdges) {
  for (size_t n : {size_t{0}, size_t{1}, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk + 12345}) {
    SCOPED_TRACE(n);
    const std::string plain = random_bytes(n, static_cast<uint32_t>(n));
    write(in(), plain);
    const uint64_t size = encrypt_file(in().string(), enc().string(), {alice.pub});
    EXPECT_EQ(size, fs::file_size(enc()));
    EXPECT_EQ(size, encrypted_size(n, 1));
    const std::string c = read(enc());
    EXPECT_TRUE(is_encrypted(c));
    if (n >= 64) {
      EXPECT_EQ(c.find(plain.substr(0, 64)), std::string::npos);
    }
    EXPECT_EQ(decrypt_file(enc().string(), out().string(), alice), n);
    EXPECT_EQ(read(out()), plain);
    struct stat st {};
    ASSERT_EQ(::stat(out().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    fs::remove(out());
    EXPECT_EQ(entries(d.path()), (std::vector<std::string>{"in.bin", "in.bin.ohmenc"}));
  }
}

TEST_F(Encrypt, SmallChunksAndSizeFormula) {
  const std::string plain = random_bytes(1000, 7);
  write(in(), plain);
  for (size_t chunk : {size_t{1}, size_t{10}, size_t{999}, size_t{1000}, size_t{1001}}) {
    SCOPED_TRACE(chunk);
    EXPECT_EQ(encrypt_file(in().string(), enc().string(), {alice.pub, bob.pub}, chunk),
              encrypted_size(1000, 2, chunk));
    decrypt_file(enc().string(), out().string(), bob);
    EXPECT_EQ(read(out()), plain);
  }
  EXPECT_THROW(encrypt_file(in().string(), enc().string(), {alice.pub}, 0), ohm::InvalidArgument);
  EXPECT_THROW(encrypt_file(in().string(), enc().string(), {}), ohm::InvalidArgument);
}

TEST_F(Encrypt, SameInputEncryptsDifferently) {
  write(in(), "same");
  encrypt_file(in().string(), enc().string(), {alice.pub});
  const std::string a = read(enc());
  encrypt_file(in().string(), enc().string(), {alice.pub});
  EXPECT_NE(a, read(enc()));  // a fresh file key and ephemeral key each time
}

TEST_F(Encrypt, TwoRecipientsEachDecryptAThirdCannot) {
  const std::string plain = random_bytes(2 * kChunk + 3, 1);
  write(in(), plain);
  encrypt_file(in().string(), enc().string(), {alice.pub, bob.pub, alice.pub});  // dup dropped
  EXPECT_EQ(fs::file_size(enc()), encrypted_size(plain.size(), 2));
  EXPECT_EQ(recipient_ids(enc().string()),
            (std::vector<std::string>{alice.pub.id(), bob.pub.id()}));
  decrypt_file(enc().string(), out().string(), alice);
  EXPECT_EQ(read(out()), plain);
  fs::remove(out());
  decrypt_file(enc().string(), out().string(), bob);
  EXPECT_EQ(read(out()), plain);
  fs::remove(out());
  const Identity eve = Identity::generate();
  expect_fails("not encrypted to this identity (key id " + eve.pub.id(), eve);
}

TEST_F(Encrypt, FailureKeepsAnExistingOutput) {
  write(in(), random_bytes(5000, 2));
  encrypt_file(in().string(), enc().string(), {alice.pub});
  write(out(), "previous");
  EXPECT_THROW(decrypt_file(enc().string(), out().string(), bob), DecryptError);
  EXPECT_EQ(read(out()), "previous");
}

class Damage : public Encrypt {
 protected:
  std::string c;  // the encrypted file of a 2-chunk-and-a-bit plaintext (3 chunks)
  void SetUp() override {
    write(in(), random_bytes(2 * kChunk + 100, 3));
    encrypt_file(in().string(), enc().string(), {alice.pub, bob.pub});
    c = read(enc());
    ASSERT_EQ(c.size(), 16 + 2 * 88 + 24 + 3 * 17 + 2 * kChunk + 100);
  }
  void flip(size_t at) {
    std::string x = c;
    x[at] = static_cast<char>(x[at] ^ 0x01);
    write(enc(), x);
  }
  void keep(size_t n) { write(enc(), c.substr(0, n)); }
  size_t header() const { return 16 + 2 * 88 + 24; }
};

TEST_F(Damage, FlippedHeaderBytes) {
  flip(0);
  expect_fails("not an ohm encrypted file");
  flip(6);
  expect_fails("unsupported format version 0");
  flip(7);
  expect_fails("malformed header");
  flip(8);  // chunk size 65537: the chunk boundaries no longer match
  expect_fails("authentication failed at chunk 0");
  flip(12);  // 3 recipients: the stream header is read from the first chunk
  expect_fails("authentication failed");
  flip(16);  // alice's key id
  expect_fails("not encrypted to this identity");
  flip(16 + 8 + 40);  // alice's sealed file key
  expect_fails("the file key sealed to this identity does not open");
  flip(16 + 88 + 8 + 40);  // bob's sealed file key: alice's chunk-0 additional data differs
  expect_fails("authentication failed at chunk 0");
  flip(16 + 88);  // bob's key id
  expect_fails("authentication failed at chunk 0");
  flip(header() - 1);  // the secretstream header (nonce)
  expect_fails("authentication failed at chunk 0");
}

TEST_F(Damage, FlippedBodyAndTagBytes) {
  flip(header());  // chunk 0's encrypted tag byte
  expect_fails("authentication failed at chunk 0");
  flip(header() + 17 + 1000);  // chunk 0 body
  expect_fails("authentication failed at chunk 0");
  flip(header() + (kChunk + 17) + 5);  // chunk 1
  expect_fails("authentication failed at chunk 1");
  flip(c.size() - 1);  // the final chunk's MAC
  expect_fails("authentication failed at chunk 2");
  flip(c.size() - 17 - 100);  // the final chunk's encrypted tag byte
  expect_fails("authentication failed at chunk 2");
}

TEST_F(Damage, Truncation) {
  keep(header() + 2 * (kChunk + 17));  // at a chunk boundary: the final chunk is missing
  expect_fails("truncated: the file ends at chunk 2");
  keep(header() + (kChunk + 17));
  expect_fails("truncated: the file ends at chunk 1");
  keep(header() + 2 * (kChunk + 17) + 50);  // inside the final chunk
  expect_fails("authentication failed at chunk 2");
  keep(header() + (kChunk + 17) + 10);  // inside chunk 1: too short to be a chunk
  expect_fails("truncated: the file ends inside chunk 1");
  keep(header() + 1000);  // inside chunk 0
  expect_fails("authentication failed at chunk 0");
  keep(header());  // no chunk at all
  expect_fails("truncated: the file ends at chunk 0");
  keep(100);
  expect_fails("truncated header");
  keep(10);
  expect_fails("truncated header");
  keep(0);
  expect_fails("not an ohm encrypted file");
}

TEST_F(Damage, AppendedBytes) {
  // The final chunk is short here: appended bytes become part of it and its MAC fails.
  write(enc(), c + "x");
  expect_fails("authentication failed at chunk 2");
  write(enc(), c + c);
  expect_fails("authentication failed at chunk 2");
  // A full final chunk authenticates; the bytes after it are refused.
  write(in(), random_bytes(2 * kChunk, 4));
  encrypt_file(in().string(), enc().string(), {alice.pub});
  const std::string full = read(enc());
  write(enc(), full + "x");
  expect_fails("trailing data after the final chunk (byte " + std::to_string(full.size()) + ")");
  write(enc(), full + full);
  expect_fails("trailing data after the final chunk");
}

TEST_F(Damage, SwappedChunks) {
  std::string x = c;
  const size_t a = header(), b = header() + kChunk + 17;
  std::copy(c.begin() + static_cast<long>(b), c.begin() + static_cast<long>(b + kChunk + 17),
            x.begin() + static_cast<long>(a));
  std::copy(c.begin() + static_cast<long>(a), c.begin() + static_cast<long>(a + kChunk + 17),
            x.begin() + static_cast<long>(b));
  write(enc(), x);
  expect_fails("authentication failed at chunk 0");
}

TEST(EncryptKeys, PublicKeyTextRoundTripsAndIsChecked) {
  const Identity id = Identity::generate();
  const std::string s = id.pub.str();
  EXPECT_EQ(s.size(), 52u);
  EXPECT_EQ(s.substr(0, 4), "ohm1");
  EXPECT_EQ(PublicKey::parse(" " + s + "\n"), id.pub);
  EXPECT_EQ(id.pub.id().size(), 16u);
  std::string typo = s;
  typo[10] = typo[10] == 'A' ? 'B' : 'A';
  EXPECT_THROW(PublicKey::parse(typo), ohm::InvalidArgument);  // the checksum catches it
  EXPECT_THROW(PublicKey::parse(s.substr(0, 51)), ohm::InvalidArgument);
  EXPECT_THROW(PublicKey::parse("age1" + s.substr(4)), ohm::InvalidArgument);
  try {
    PublicKey::parse("nonsense", "--recipient");
    FAIL();
  } catch (const ohm::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("--recipient"), std::string::npos) << e.what();
  }
}

TEST(EncryptKeys, IdentityFileSaveLoad) {
  ohm::test::TempDir d;
  const Identity id = Identity::generate();
  const std::string p = (d.path() / "me.key").string();
  id.save(p);
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string text = read(p);
  EXPECT_NE(text.find("# public key: " + id.pub.str()), std::string::npos);
  const Identity back = Identity::load(p);
  EXPECT_EQ(back.pub, id.pub);
  EXPECT_EQ(back.secret(), id.secret());
  EXPECT_THROW(id.save(p), ohm::InvalidArgument);  // never overwrites
  EXPECT_EQ(read(p), text);
  // The identity file is also a recipients file (its public-key comment).
  EXPECT_EQ(read_recipients_file(p), (std::vector<PublicKey>{id.pub}));

  const std::string bad = (d.path() / "bad.key").string();
  write(bad, "# comment\nOHM-SECRET-KEY-1AAAA\n");
  try {
    Identity::load(bad);
    FAIL();
  } catch (const ohm::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ":2"), std::string::npos) << e.what();
  }
  write(bad, "# only comments\n");
  EXPECT_THROW(Identity::load(bad), ohm::InvalidArgument);
  EXPECT_THROW(Identity::load((d.path() / "missing").string()), ohm::NotFoundError);
}

TEST(EncryptKeys, RecipientsFile) {
  ohm::test::TempDir d;
  const Identity a = Identity::generate(), b = Identity::generate();
  const std::string p = (d.path() / "team.txt").string();
  write(p, "# team\n" + a.pub.str() + "\n\n  " + b.pub.str() + "  \n");
  EXPECT_EQ(read_recipients_file(p), (std::vector<PublicKey>{a.pub, b.pub}));
  write(p, a.pub.str() + "\nnot-a-key\n");
  try {
    read_recipients_file(p);
    FAIL();
  } catch (const ohm::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(p + ":2"), std::string::npos) << e.what();
  }
  write(p, "# none\n");
  EXPECT_THROW(read_recipients_file(p), ohm::InvalidArgument);
}

}  // namespace
