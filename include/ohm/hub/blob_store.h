// Content-addressed blob storage. Two namespaces: Git (key = git blob sha1 of the content; small
// regular files and LFS pointers) and Lfs (key = sha256 of the content). Writes are atomic: a blob
// becomes visible only after it was fully written, hash-checked, fsynced and renamed into place,
// so an interrupted upload never leaves a partial blob.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ohm::hub {

enum class BlobKind { Git, Lfs };

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual uint64_t size() const = 0;
  // Reads up to n bytes at offset; returns bytes read (0 at end). Throws IoError.
  virtual size_t read_at(uint64_t offset, char* buf, size_t n) = 0;
};

// Streams an LFS object in; commit() checks size and sha256 and publishes it.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;  // discards the temp file unless committed
  virtual void write(const char* data, size_t n) = 0;
  virtual uint64_t written() const = 0;
  // Throws InvalidArgument (hash/size mismatch, temp file removed) or IoError.
  virtual void commit(const std::string& expected_sha256, uint64_t expected_size) = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  virtual bool has(BlobKind k, const std::string& oid) const = 0;
  virtual std::optional<uint64_t> size(BlobKind k, const std::string& oid) const = 0;
  virtual std::unique_ptr<BlobReader> open(BlobKind k, const std::string& oid) const = 0;
  // Stores a small blob; returns its key (git blob sha1 or sha256).
  virtual std::string put(BlobKind k, std::string_view data) = 0;
  virtual std::unique_ptr<BlobWriter> lfs_writer() = 0;
  // Whole blob into memory (for small files: README, config.json). Throws if over max_bytes.
  std::string read_all(BlobKind k, const std::string& oid, uint64_t max_bytes) const;
};

// Blobs under root/{git,lfs}/ab/<oid>, temp files under root/tmp (cleared on open).
std::unique_ptr<BlobStore> open_disk_blob_store(const std::string& root);

}  // namespace ohm::hub
