#include "ohm/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ohm/core/error.h"

namespace ohm {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw IoError(ErrorContext().file(path), std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw IoError(ErrorContext().file(path), std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(ErrorContext().file(path), "not a regular file");
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<uint64_t>(st.st_size);
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw IoError(ErrorContext().file(path), std::string("mmap failed: ") + std::strerror(e));
    }
    m->data_ = static_cast<const uint8_t*>(p);
    m->mapped_ = true;
  }
  ::close(fd);  // the mapping keeps the file alive
  return m;
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(const std::string& name, const void* bytes,
                                                   uint64_t size) {
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = name;
  m->size_ = size;
  if (size > 0) {
    auto* p = new uint8_t[size];
    std::memcpy(p, bytes, size);
    m->data_ = p;
  }
  return m;
}

MappedFile::~MappedFile() {
  if (mapped_)
    ::munmap(const_cast<uint8_t*>(data_), size_);
  else
    delete[] data_;
}

void MappedFile::prefetch(uint64_t offset, uint64_t len) const {
  if (!data_ || !mapped_ || offset >= size_) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t start = offset / page * page;
  uint64_t end = std::min(size_, offset + len);
  ::madvise(const_cast<uint8_t*>(data_) + start, end - start, MADV_WILLNEED);
}

void MappedFile::release(uint64_t offset, uint64_t len) const {
  if (!data_ || !mapped_ || offset >= size_) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Only the pages wholly inside the range: a page shared with a neighbour stays.
  const uint64_t start = (offset + page - 1) / page * page;
  const uint64_t end = std::min(size_, offset + len) / page * page;
  if (end > start) ::madvise(const_cast<uint8_t*>(data_) + start, end - start, MADV_DONTNEED);
}

}  // namespace ohm
