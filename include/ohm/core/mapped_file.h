// A read-only memory map of a whole file (RAII). Mapped MAP_SHARED so that several processes
// loading the same checkpoint share its pages; nothing is read until a page is touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ohm {

class MappedFile {
 public:
  // Throws IoError naming the path on failure. An empty file maps to size 0, data nullptr.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  // An in-memory "file" (owned copy of `bytes`) named `name`: for tests and fuzzers, so the
  // parsers have a single code path.
  static std::shared_ptr<MappedFile> from_bytes(const std::string& name, const void* bytes,
                                                uint64_t size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints the kernel to read [offset, offset+len) ahead (MADV_WILLNEED); optional.
  void prefetch(uint64_t offset, uint64_t len) const;
  // Gives this process's pages of [offset, offset+len) back (MADV_DONTNEED; whole pages only):
  // the file keeps them, they fault back in when touched again, and the data never changes. For
  // bytes whose copy is used instead (packed weights: nn::Linear). No-op for from_bytes.
  void release(uint64_t offset, uint64_t len) const;

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace ohm
