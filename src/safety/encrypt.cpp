// File encryption to X25519 recipients: sealed file keys + an XChaCha20-Poly1305 secretstream.
// Layout (docs/encryption.md):
//   0   6   magic "OHMENC"
//   6   1   version (1)
//   7   1   flags (0)
//   8   4   plaintext chunk size, little-endian (1 .. 16 MiB; 65536 by default)
//   12  2   recipient count n, little-endian (1 .. 1024)
//   14  2   reserved (0)
//   16  88n per recipient: key id (8 bytes: BLAKE2b-256 of the public key, truncated) and
//           crypto_box_seal of the 32-byte file key (80 bytes)
//   ..  24  secretstream header
//   then the chunks: chunk size + 17 bytes each, the last one shorter or equal and tagged FINAL;
//   the first chunk's additional data is every header byte above.
#include "ohm/safety/encrypt.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

namespace ohm::safety {

namespace fs = std::filesystem;

namespace {

constexpr size_t kFixedHeader = 16;
constexpr size_t kKeyIdBytes = 8;
constexpr size_t kSealedKeyBytes =
    crypto_secretstream_xchacha20poly1305_KEYBYTES + crypto_box_SEALBYTES;  // 80
constexpr size_t kStanzaBytes = kKeyIdBytes + kSealedKeyBytes;
constexpr size_t kStreamHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kTagBytes = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr size_t kMaxChunk = size_t{16} << 20;
constexpr std::string_view kSecretPrefix = "OHM-SECRET-KEY-1";
constexpr std::string_view kPublicPrefix = "ohm1";
constexpr std::string_view kPublicComment = "# public key: ";

static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == 32);
static_assert(crypto_box_PUBLICKEYBYTES == 32 && crypto_box_SECRETKEYBYTES == 32);

void init_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw IoError("libsodium: sodium_init failed");
}

std::array<uint8_t, 32> blake2b(const uint8_t* p, size_t n) {
  std::array<uint8_t, 32> h{};
  crypto_generichash(h.data(), h.size(), p, n, nullptr, 0);
  return h;
}

std::string b64url(const uint8_t* p, size_t n) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string s(sodium_base64_encoded_len(n, variant), '\0');
  sodium_bin2base64(s.data(), s.size(), p, n, variant);
  s.resize(std::strlen(s.c_str()));
  return s;
}

// 32 key bytes + 4 checksum bytes (BLAKE2b of the key) from base64url; false if malformed.
bool decode_key(std::string_view text, std::array<uint8_t, 32>& key) {
  std::array<uint8_t, 36> raw{};
  size_t len = 0;
  const char* end = nullptr;
  if (text.size() != 48 ||
      sodium_base642bin(raw.data(), raw.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      len != 36 || end != text.data() + text.size())
    return false;
  std::copy(raw.begin(), raw.begin() + 32, key.begin());
  const auto h = blake2b(key.data(), key.size());
  const bool ok = std::memcmp(h.data(), raw.data() + 32, 4) == 0;
  sodium_memzero(raw.data(), raw.size());
  return ok;
}

std::string encode_key(const std::array<uint8_t, 32>& key) {
  std::array<uint8_t, 36> raw{};
  std::copy(key.begin(), key.end(), raw.begin());
  const auto h = blake2b(key.data(), key.size());
  std::copy(h.begin(), h.begin() + 4, raw.begin() + 32);
  std::string s = b64url(raw.data(), raw.size());
  sodium_memzero(raw.data(), raw.size());
  return s;
}

std::array<uint8_t, kKeyIdBytes> key_id(const PublicKey& k) {
  const auto h = blake2b(k.bytes.data(), k.bytes.size());
  std::array<uint8_t, kKeyIdBytes> id{};
  std::copy(h.begin(), h.begin() + kKeyIdBytes, id.begin());
  return id;
}

std::string hex(const uint8_t* p, size_t n) {
  std::string s(2 * n + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), p, n);
  s.pop_back();
  return s;
}

void put_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

std::string errno_text() {
  return std::strerror(errno);
}

[[noreturn]] void fail(const std::string& file, const std::string& why) {
  throw DecryptError(ErrorContext().file(file), why);
}

// Reads until `n` bytes or end of file; returns the count.
size_t read_full(int fd, uint8_t* p, size_t n, const std::string& name) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw IoError(ErrorContext().file(name), "read failed: " + errno_text());
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

void write_full(int fd, const uint8_t* p, size_t n, const std::string& name) {
  while (n > 0) {
    const ssize_t r = ::write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw IoError(ErrorContext().file(name), "write failed: " + errno_text());
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
}

class InputFile {
 public:
  explicit InputFile(const std::string& path) : name(path) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const bool missing = errno == ENOENT;
      const std::string why = errno_text();
      if (missing) throw NotFoundError(ErrorContext().file(path), "no such file");
      throw IoError(ErrorContext().file(path), "cannot open: " + why);
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      throw InvalidArgument(ErrorContext().file(path), "is a directory, not a file");
    }
  }
  ~InputFile() { ::close(fd); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  int fd = -1;
  std::string name;
};

// The output through a temporary file in the same directory, renamed over `path` by commit();
// removed (or, unnamed, simply closed) otherwise. An unnamed O_TMPFILE is used where the file
// system has it, so a crash or a kill leaves nothing behind either.
class TempOutput {
 public:
  TempOutput(const std::string& path, mode_t mode) : path_(path), mode_(mode) {
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    if (!fs::is_directory(dir))
      throw NotFoundError(ErrorContext().file(path), "the output's directory does not exist");
    if (fs::is_directory(path))
      throw InvalidArgument(ErrorContext().file(path), "is a directory, not a file");
#ifdef O_TMPFILE
    if (::access("/proc/self/fd", X_OK) == 0)
      fd_ = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
#endif
    if (fd_ < 0) {
      std::string tmpl = path + ".ohmtmp-XXXXXX";
      fd_ = ::mkstemp(tmpl.data());
      if (fd_ < 0)
        throw IoError(ErrorContext().file(path), "cannot create a temporary file: " + errno_text());
      temp_name_ = tmpl;
    }
    // 0600 (plaintext) is set as it is; other modes are left to open() (under the umask;
    // mkstemp's fallback file stays 0600).
    if (mode_ == 0600 && ::fchmod(fd_, mode_) != 0) {
      const std::string why = errno_text();
      discard();
      throw IoError(ErrorContext().file(path), "chmod failed: " + why);
    }
  }
  ~TempOutput() {
    discard();
  }
  TempOutput(const TempOutput&) = delete;
  TempOutput& operator=(const TempOutput&) = delete;
  int fd() const {
    return fd_;
  }
  const std::string& name() const {
    return path_;
  }

  void commit() {
    if (::fsync(fd_) != 0)
      throw IoError(ErrorContext().file(path_), "fsync failed: " + errno_text());
    if (temp_name_.empty()) {
      // Give the unnamed file a random temporary name, then rename it over the output.
      uint8_t r[8];
      randombytes_buf(r, sizeof r);
      const std::string named = path_ + ".ohmtmp-" + hex(r, sizeof r);
      const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, named.c_str(), AT_SYMLINK_FOLLOW) != 0)
        throw IoError(ErrorContext().file(path_), "cannot link the output: " + errno_text());
      temp_name_ = named;
    }
    if (::rename(temp_name_.c_str(), path_.c_str()) != 0)
      throw IoError(ErrorContext().file(path_), "cannot rename the output: " + errno_text());
    temp_name_.clear();
    ::close(fd_);
    fd_ = -1;
  }

 private:
  void discard() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!temp_name_.empty()) ::unlink(temp_name_.c_str());
    temp_name_.clear();
  }
  std::string path_, temp_name_;
  mode_t mode_;
  int fd_ = -1;
};

// Wipes a buffer on destruction (the file key, plaintext chunks).
template <size_t N>
struct Secret {
  std::array<uint8_t, N> b{};
  ~Secret() { sodium_memzero(b.data(), b.size()); }
};
struct SecretBuf {
  explicit SecretBuf(size_t n) : b(n) {}
  ~SecretBuf() { sodium_memzero(b.data(), b.size()); }
  std::vector<uint8_t> b;
};

struct Header {
  std::vector<uint8_t> bytes;  // everything up to and including the secretstream header
  size_t chunk = 0, recipients = 0;
};

// Reads and checks the header; DecryptError naming `name` when malformed or short.
Header read_header(int fd, const std::string& name) {
  Header h;
  h.bytes.resize(kFixedHeader);
  const size_t got = read_full(fd, h.bytes.data(), kFixedHeader, name);
  if (got < kEncMagic.size() ||
      std::memcmp(h.bytes.data(), kEncMagic.data(), kEncMagic.size()) != 0)
    fail(name, "not an ohm encrypted file (no OHMENC magic)");
  if (got < kFixedHeader) fail(name, "truncated header");
  if (h.bytes[6] != kEncVersion)
    fail(name, "unsupported format version " + std::to_string(h.bytes[6]) + " (this ohm reads " +
                   std::to_string(kEncVersion) + ")");
  if (h.bytes[7] != 0 || get_le(&h.bytes[14], 2) != 0)
    fail(name, "malformed header (flags or reserved bytes are not zero)");
  h.chunk = static_cast<size_t>(get_le(&h.bytes[8], 4));
  h.recipients = static_cast<size_t>(get_le(&h.bytes[12], 2));
  if (h.chunk == 0 || h.chunk > kMaxChunk)
    fail(name, "malformed header (chunk size " + std::to_string(h.chunk) + ")");
  if (h.recipients == 0 || h.recipients > kEncMaxRecipients)
    fail(name, "malformed header (" + std::to_string(h.recipients) + " recipients)");
  const size_t rest = h.recipients * kStanzaBytes + kStreamHeaderBytes;
  h.bytes.resize(kFixedHeader + rest);
  if (read_full(fd, h.bytes.data() + kFixedHeader, rest, name) != rest)
    fail(name, "truncated header");
  return h;
}

}  // namespace

// ------------------------------------------------------------------ keys

std::string PublicKey::str() const {
  init_sodium();
  return std::string(kPublicPrefix) + encode_key(bytes);
}

std::string PublicKey::id() const {
  init_sodium();
  const auto i = key_id(*this);
  return hex(i.data(), i.size());
}

PublicKey PublicKey::parse(std::string_view text, std::string_view where) {
  init_sodium();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  PublicKey k;
  if (!text.starts_with(kPublicPrefix) || !decode_key(text.substr(kPublicPrefix.size()), k.bytes))
    throw InvalidArgument(ErrorContext().key(where),
                          "not an ohm public key: '" + std::string(text.substr(0, 64)) +
                              "' (expected ohm1 and 48 base64url characters, as `ohm keygen` "
                              "prints)");
  return k;
}

Identity::Identity(const Identity& o) : pub(o.pub), secret_(o.secret_) {}
Identity& Identity::operator=(const Identity& o) {
  pub = o.pub;
  secret_ = o.secret_;
  return *this;
}
Identity::~Identity() {
  sodium_memzero(secret_.data(), secret_.size());
}

Identity Identity::generate() {
  init_sodium();
  Identity id;
  crypto_box_keypair(id.pub.bytes.data(), id.secret_.data());
  return id;
}

Identity Identity::from_secret(const std::array<uint8_t, 32>& secret) {
  init_sodium();
  Identity id;
  id.secret_ = secret;
  crypto_scalarmult_base(id.pub.bytes.data(), id.secret_.data());
  return id;
}

std::string Identity::file_text() const {
  init_sodium();
  return "# ohm identity: an X25519 secret key (docs/encryption.md). Keep this file private.\n" +
         std::string(kPublicComment) + pub.str() + "\n" + std::string(kSecretPrefix) +
         encode_key(secret_) + "\n";
}

void Identity::save(const std::string& path) const {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST)
      throw InvalidArgument(ErrorContext().file(path),
                            "already exists; not overwriting an identity (choose another --out)");
    throw IoError(ErrorContext().file(path), "cannot create: " + errno_text());
  }
  std::string text = file_text();
  try {
    if (::fchmod(fd, 0600) != 0) throw IoError(ErrorContext().file(path), "chmod failed");
    write_full(fd, reinterpret_cast<const uint8_t*>(text.data()), text.size(), path);
    if (::fsync(fd) != 0) throw IoError(ErrorContext().file(path), "fsync failed");
  } catch (...) {
    sodium_memzero(text.data(), text.size());
    ::close(fd);
    ::unlink(path.c_str());
    throw;
  }
  sodium_memzero(text.data(), text.size());
  ::close(fd);
}

Identity Identity::load(const std::string& path) {
  init_sodium();
  std::ifstream f(path);
  if (!f) {
    if (!fs::exists(path)) throw NotFoundError(ErrorContext().file(path), "no such identity file");
    throw IoError(ErrorContext().file(path), "cannot open the identity file");
  }
  std::string line;
  int lineno = 0;
  std::optional<Identity> found;
  while (std::getline(f, line)) {
    ++lineno;
    std::string_view s = line;
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    if (s.empty() || s.front() == '#') continue;
    const auto where = path + ":" + std::to_string(lineno);
    std::array<uint8_t, 32> sk{};
    if (!s.starts_with(kSecretPrefix) || !decode_key(s.substr(kSecretPrefix.size()), sk)) {
      sodium_memzero(line.data(), line.size());
      throw InvalidArgument(ErrorContext().file(where),
                            "not an ohm identity line (expected OHM-SECRET-KEY-1 and 48 "
                            "base64url characters, as `ohm keygen` writes)");
    }
    if (found)
      throw InvalidArgument(ErrorContext().file(where), "more than one secret key in the file");
    found = from_secret(sk);
    sodium_memzero(sk.data(), sk.size());
    sodium_memzero(line.data(), line.size());
  }
  if (!found)
    throw InvalidArgument(ErrorContext().file(path),
                          "no secret key in the file (an identity file from `ohm keygen` has an "
                          "OHM-SECRET-KEY-1 line)");
  return *found;
}

std::vector<PublicKey> read_recipients_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    if (!fs::exists(path)) throw NotFoundError(ErrorContext().file(path), "no such file");
    throw IoError(ErrorContext().file(path), "cannot open");
  }
  std::vector<PublicKey> keys;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    std::string_view s = line;
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    // An identity file's public key is its "# public key:" comment (its secret line is skipped).
    if (s.starts_with(kPublicComment))
      s.remove_prefix(kPublicComment.size());
    else if (s.empty() || s.front() == '#' || s.starts_with(kSecretPrefix))
      continue;
    keys.push_back(PublicKey::parse(s, path + ":" + std::to_string(lineno)));
  }
  if (keys.empty()) throw InvalidArgument(ErrorContext().file(path), "no public keys in the file");
  return keys;
}

// ------------------------------------------------------------------ files

uint64_t encrypted_size(uint64_t plain, size_t recipients, size_t chunk_size) {
  const uint64_t chunks = plain == 0 ? 1 : (plain + chunk_size - 1) / chunk_size;
  return kFixedHeader + recipients * kStanzaBytes + kStreamHeaderBytes + chunks * kTagBytes + plain;
}

bool is_encrypted(std::string_view head) {
  return head.starts_with(kEncMagic);
}

uint64_t encrypt_file(const std::string& in, const std::string& out,
                      const std::vector<PublicKey>& recipients, size_t chunk_size) {
  init_sodium();
  if (chunk_size == 0 || chunk_size > kMaxChunk)
    throw InvalidArgument("encrypt: chunk size " + std::to_string(chunk_size) +
                          " is not in 1 .. 16 MiB");
  std::vector<PublicKey> to;
  for (const auto& k : recipients)
    if (std::find(to.begin(), to.end(), k) == to.end()) to.push_back(k);
  if (to.empty()) throw InvalidArgument(ErrorContext().file(out), "encrypt: no recipients");
  if (to.size() > kEncMaxRecipients)
    throw InvalidArgument(ErrorContext().file(out), "encrypt: " + std::to_string(to.size()) +
                                                        " recipients (at most " +
                                                        std::to_string(kEncMaxRecipients) + ")");
  InputFile src(in);
  TempOutput dst(out, static_cast<mode_t>(0644));

  Secret<crypto_secretstream_xchacha20poly1305_KEYBYTES> key;
  crypto_secretstream_xchacha20poly1305_keygen(key.b.data());
  std::vector<uint8_t> header(kFixedHeader + to.size() * kStanzaBytes + kStreamHeaderBytes);
  std::memcpy(header.data(), kEncMagic.data(), kEncMagic.size());
  header[6] = kEncVersion;
  header[7] = 0;
  put_le(&header[8], chunk_size, 4);
  put_le(&header[12], to.size(), 2);
  put_le(&header[14], 0, 2);
  for (size_t i = 0; i < to.size(); ++i) {
    uint8_t* st = &header[kFixedHeader + i * kStanzaBytes];
    const auto id = key_id(to[i]);
    std::copy(id.begin(), id.end(), st);
    if (crypto_box_seal(st + kKeyIdBytes, key.b.data(), key.b.size(), to[i].bytes.data()) != 0)
      throw InvalidArgument(ErrorContext().file(out),
                            "encrypt: recipient " + to[i].str() + " is not a valid X25519 key");
  }
  crypto_secretstream_xchacha20poly1305_state st;
  crypto_secretstream_xchacha20poly1305_init_push(&st, &header[header.size() - kStreamHeaderBytes],
                                                  key.b.data());
  write_full(dst.fd(), header.data(), header.size(), out);
  uint64_t written = header.size();

  // Two plaintext buffers: a chunk is sealed once the next read tells whether it is the last.
  SecretBuf cur(chunk_size), next(chunk_size);
  std::vector<uint8_t> cipher(chunk_size + kTagBytes);
  size_t cur_n = read_full(src.fd, cur.b.data(), chunk_size, in);
  bool first = true;
  for (;;) {
    const size_t next_n =
        cur_n == chunk_size ? read_full(src.fd, next.b.data(), chunk_size, in) : 0;
    const bool last = next_n == 0;
    unsigned long long clen = 0;
    crypto_secretstream_xchacha20poly1305_push(
        &st, cipher.data(), &clen, cur.b.data(), cur_n, first ? header.data() : nullptr,
        first ? header.size() : 0,
        last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
             : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    write_full(dst.fd(), cipher.data(), static_cast<size_t>(clen), out);
    written += clen;
    first = false;
    if (last) break;
    std::swap(cur.b, next.b);
    cur_n = next_n;
  }
  sodium_memzero(&st, sizeof st);
  dst.commit();
  return written;
}

uint64_t decrypt_file(const std::string& in, const std::string& out, const Identity& identity) {
  init_sodium();
  InputFile src(in);
  const Header h = read_header(src.fd, in);

  // The stanza for this identity, by key id.
  const auto my_id = key_id(identity.pub);
  const uint8_t* stanza = nullptr;
  std::string ids;
  for (size_t i = 0; i < h.recipients; ++i) {
    const uint8_t* s = &h.bytes[kFixedHeader + i * kStanzaBytes];
    if (std::memcmp(s, my_id.data(), kKeyIdBytes) == 0) stanza = s;
    if (i < 8) ids += (ids.empty() ? "" : ", ") + hex(s, kKeyIdBytes);
  }
  if (h.recipients > 8) ids += ", ...";
  if (!stanza)
    fail(in, "not encrypted to this identity (key id " + identity.pub.id() + "; the file's " +
                 std::to_string(h.recipients) + " recipient(s): " + ids + ")");
  Secret<crypto_secretstream_xchacha20poly1305_KEYBYTES> key;
  if (crypto_box_seal_open(key.b.data(), stanza + kKeyIdBytes, kSealedKeyBytes,
                           identity.pub.bytes.data(), identity.secret().data()) != 0)
    fail(in,
         "authentication failed: the file key sealed to this identity does not open (the header "
         "was changed)");
  crypto_secretstream_xchacha20poly1305_state st;
  if (crypto_secretstream_xchacha20poly1305_init_pull(
          &st, &h.bytes[h.bytes.size() - kStreamHeaderBytes], key.b.data()) != 0)
    fail(in, "malformed stream header");

  TempOutput dst(out, static_cast<mode_t>(0600));
  std::vector<uint8_t> cipher(h.chunk + kTagBytes);
  SecretBuf plain(h.chunk);
  uint64_t offset = h.bytes.size(), total = 0;
  for (uint64_t index = 0;; ++index) {
    const size_t n = read_full(src.fd, cipher.data(), cipher.size(), in);
    if (n < kTagBytes)
      fail(in, "truncated: the file ends " + std::string(n == 0 ? "at" : "inside") + " chunk " +
                   std::to_string(index) + " (byte " + std::to_string(offset + n) +
                   ") before the final chunk");
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    const bool first = index == 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&st, plain.b.data(), &mlen, &tag, cipher.data(),
                                                   n, first ? h.bytes.data() : nullptr,
                                                   first ? h.bytes.size() : 0) != 0)
      fail(in, "authentication failed at chunk " + std::to_string(index) + " (bytes " +
                   std::to_string(offset) + ".." + std::to_string(offset + n) +
                   "): the file was changed, truncated or extended" +
                   (first ? " (or its header was)" : std::string()));
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE &&
        tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL)
      fail(in,
           "unexpected chunk tag " + std::to_string(tag) + " at chunk " + std::to_string(index));
    write_full(dst.fd(), plain.b.data(), static_cast<size_t>(mlen), out);
    total += mlen;
    offset += n;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
      uint8_t extra = 0;
      if (read_full(src.fd, &extra, 1, in) != 0)
        fail(in, "trailing data after the final chunk (byte " + std::to_string(offset) + ")");
      break;
    }
    if (n < cipher.size())
      fail(in, "truncated: the file ends after chunk " + std::to_string(index) + " (byte " +
                   std::to_string(offset) + ") before the final chunk");
  }
  sodium_memzero(&st, sizeof st);
  dst.commit();
  return total;
}

std::vector<std::string> recipient_ids(const std::string& path) {
  init_sodium();
  InputFile src(path);
  const Header h = read_header(src.fd, path);
  std::vector<std::string> ids;
  for (size_t i = 0; i < h.recipients; ++i)
    ids.push_back(hex(&h.bytes[kFixedHeader + i * kStanzaBytes], kKeyIdBytes));
  return ids;
}

}  // namespace ohm::safety
