// File encryption to X25519 recipients (libsodium), for encrypted uploads to a Hub
// (`ohm push --encrypt`, `ohm pull --decrypt`, `ohm encrypt|decrypt|keygen`).
//
// A random 32-byte file key encrypts the file as an XChaCha20-Poly1305 secretstream
// (crypto_secretstream_xchacha20poly1305) in fixed plaintext chunks (64 KiB), the last one tagged
// FINAL, so a file of any size streams through constant memory and a truncated file is detected.
// The file key is sealed (crypto_box_seal: ephemeral X25519 + XSalsa20-Poly1305) once per
// recipient public key. The whole header is the additional data of the first chunk, so a changed
// header byte fails authentication as a changed body byte does. docs/encryption.md has the byte
// layout and the threat model: confidentiality and integrity, not sender authenticity (anyone
// with a recipient's public key can make a file that decrypts; `ohm sign` covers provenance).
//
//   auto id = ohm::safety::Identity::generate();  id.save("me.key");  // prints id.pub.str()
//   ohm::safety::encrypt_file("data.bin", "data.bin.ohmenc", {id.pub});
//   ohm::safety::decrypt_file("data.bin.ohmenc", "data.bin", id);  // throws DecryptError
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/core/error.h"

namespace ohm::safety {

// The first bytes of every encrypted file; the format version (1) follows.
inline constexpr std::string_view kEncMagic{"OHMENC"};
inline constexpr uint8_t kEncVersion = 1;
// The suffix `ohm push --encrypt` gives an encrypted file's name in the repo.
inline constexpr std::string_view kEncSuffix{".ohmenc"};
// Plaintext bytes per chunk (each ciphertext chunk is 17 bytes longer).
inline constexpr size_t kEncChunkSize = 64 * 1024;
inline constexpr size_t kEncMaxRecipients = 1024;

// An encrypted file that does not decrypt: not encrypted to this identity, a changed byte
// (header, body or tag), a truncation, trailing data, a malformed header. what() names the file
// and the cause. Nothing of the output is left behind when it is thrown.
class DecryptError : public Error {
 public:
  DecryptError(const ErrorContext& ctx, const std::string& what)
      : Error(ErrorKind::Format, ctx, what) {}
};

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  // "ohm1" + base64url (no padding) of the 32 key bytes and a 4-byte checksum: 52 characters.
  std::string str() const;
  // 16 hex digits: the first 8 bytes of BLAKE2b-256 of the key (stored in the file header).
  std::string id() const;
  // Parses str()'s form; InvalidArgument naming `where` (an option, a file:line) if malformed.
  static PublicKey parse(std::string_view text, std::string_view where = "recipient");
  bool operator==(const PublicKey&) const = default;
};

// An X25519 key pair. The identity file is text: '#' comment lines (one names the public key)
// and one line "OHM-SECRET-KEY-1" + base64url of the secret key and a 4-byte checksum.
class Identity {
 public:
  Identity() = default;
  Identity(const Identity&);
  Identity& operator=(const Identity&);
  ~Identity();  // wipes the secret key
  static Identity generate();
  static Identity from_secret(const std::array<uint8_t, 32>& secret);
  // Reads an identity file; IoError / InvalidArgument naming the file.
  static Identity load(const std::string& path);
  // Writes a new identity file with mode 0600; refuses to overwrite an existing file.
  void save(const std::string& path) const;
  // The identity file's text (what save writes).
  std::string file_text() const;
  const std::array<uint8_t, 32>& secret() const { return secret_; }
  PublicKey pub;

 private:
  std::array<uint8_t, 32> secret_{};
};

// Public keys from a file: one per line, blank lines and '#' comments ignored; an identity
// file's "# public key: ohm1..." comment line counts too, so a key file is its own recipient file.
std::vector<PublicKey> read_recipients_file(const std::string& path);

// Encrypts `in` to `out` for the recipients (1..kEncMaxRecipients, duplicates dropped), through
// a temporary file beside `out` renamed at the end (no partial `out` on failure). Returns the
// encrypted size. chunk_size is for tests (1 .. 16 MiB).
uint64_t encrypt_file(const std::string& in, const std::string& out,
                      const std::vector<PublicKey>& recipients, size_t chunk_size = kEncChunkSize);

// Decrypts and verifies `in` into `out`: the plaintext goes to an unnamed temporary file
// (O_TMPFILE; else a 0600 temporary name) that becomes `out` only after the FINAL chunk
// authenticated and the input ended there. Throws DecryptError (the cause; `out` is not
// created or changed) or IoError. Returns the plaintext size. `out` is created with mode 0600.
uint64_t decrypt_file(const std::string& in, const std::string& out, const Identity& identity);

// The encrypted size of a plaintext of `plain` bytes.
uint64_t encrypted_size(uint64_t plain, size_t recipients, size_t chunk_size = kEncChunkSize);

// Whether `head` (the first bytes of a file) starts with kEncMagic.
bool is_encrypted(std::string_view head);

// The recipient key ids (PublicKey::id()) an encrypted file's header lists. DecryptError if the
// header is malformed.
std::vector<std::string> recipient_ids(const std::string& path);

}  // namespace ohm::safety
