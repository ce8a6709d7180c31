// Streaming SHA-1 / SHA-256 (OpenSSL EVP) and the git object ids the Hub exposes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace ohm::hub {

class Hasher {
 public:
  enum class Algo { Sha1, Sha256 };
  explicit Hasher(Algo a);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finalises; lower-case hex

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
std::string sha1_hex(std::string_view data);
// git blob id: sha1("blob {len}\0" + content).
std::string git_blob_oid(std::string_view content);
// The git-lfs pointer file for a sha256/size pair.
std::string lfs_pointer(const std::string& sha256, uint64_t size);
bool is_hex(std::string_view s, size_t len);  // exactly len lower-case hex digits
std::string random_hex(size_t nbytes);        // from the OS CSPRNG

}  // namespace ohm::hub
