#include "ohm/hub/hash.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ohm/core/error.h"

namespace ohm::hub {

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Hasher::Hasher(Algo a) : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (!impl_->ctx ||
      EVP_DigestInit_ex(impl_->ctx, a == Algo::Sha1 ? EVP_sha1() : EVP_sha256(), nullptr) != 1)
    throw IoError("hash: EVP init failed");
}

Hasher::~Hasher() {
  EVP_MD_CTX_free(impl_->ctx);
}

void Hasher::update(const void* data, size_t n) {
  if (n && EVP_DigestUpdate(impl_->ctx, data, n) != 1) throw IoError("hash: update failed");
}

static std::string to_hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

std::string Hasher::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, md, &len) != 1) throw IoError("hash: final failed");
  return to_hex(md, len);
}

std::string sha256_hex(std::string_view data) {
  Hasher h(Hasher::Algo::Sha256);
  h.update(data);
  return h.hex();
}

std::string sha1_hex(std::string_view data) {
  Hasher h(Hasher::Algo::Sha1);
  h.update(data);
  return h.hex();
}

std::string git_blob_oid(std::string_view content) {
  Hasher h(Hasher::Algo::Sha1);
  const std::string hdr = "blob " + std::to_string(content.size());
  h.update(hdr.c_str(), hdr.size() + 1);  // includes the NUL
  h.update(content);
  return h.hex();
}

std::string lfs_pointer(const std::string& sha256, uint64_t size) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha256 + "\nsize " +
         std::to_string(size) + "\n";
}

bool is_hex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string random_hex(size_t nbytes) {
  std::string buf(nbytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(buf.data()), static_cast<int>(nbytes)) != 1)
    throw IoError("RAND_bytes failed");
  return to_hex(reinterpret_cast<const unsigned char*>(buf.data()), nbytes);
}

}  // namespace ohm::hub
