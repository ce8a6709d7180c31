#include "ohm/hub/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ohm/core/error.h"
#include "ohm/hub/hash.h"

namespace ohm::hub {

namespace fs = std::filesystem;

std::string BlobStore::read_all(BlobKind k, const std::string& oid, uint64_t max_bytes) const {
  auto r = open(k, oid);
  if (r->size() > max_bytes) throw InvalidArgument("blob " + oid + " is too large to read");
  std::string s(r->size(), '\0');
  size_t off = 0;
  while (off < s.size()) {
    size_t n = r->read_at(off, s.data() + off, s.size() - off);
    if (n == 0) throw IoError("blob " + oid + ": short read");
    off += n;
  }
  return s;
}

namespace {

[[noreturn]] void sys_fail(const std::string& what, const std::string& path) {
  throw IoError(ErrorContext().file(path), what + ": " + std::strerror(errno));
}

void write_all(int fd, const char* p, size_t n, const std::string& path) {
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      sys_fail("write", path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Owner-only directories and files whatever the umask (blobs may be private weights).
void private_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(ErrorContext().file(dir), "cannot create directory: " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0 && errno != EPERM) sys_fail("chmod", dir);
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

class FdReader : public BlobReader {
 public:
  FdReader(int fd, uint64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  ~FdReader() override { ::close(fd_); }
  uint64_t size() const override { return size_; }
  size_t read_at(uint64_t offset, char* buf, size_t n) override {
    while (true) {
      ssize_t r = ::pread(fd_, buf, n, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) sys_fail("pread", path_);
      return static_cast<size_t>(r);
    }
  }

 private:
  int fd_;
  uint64_t size_;
  std::string path_;
};

class DiskBlobStore;

class DiskWriter : public BlobWriter {
 public:
  DiskWriter(const DiskBlobStore& store, std::string tmp, int fd)
      : store_(store), tmp_(std::move(tmp)), fd_(fd), hasher_(Hasher::Algo::Sha256) {}
  ~DiskWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  void write(const char* data, size_t n) override {
    write_all(fd_, data, n, tmp_);
    hasher_.update(data, n);
    written_ += n;
  }
  uint64_t written() const override { return written_; }
  void commit(const std::string& expected_sha256, uint64_t expected_size) override;

 private:
  const DiskBlobStore& store_;
  std::string tmp_;
  int fd_;
  Hasher hasher_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

class DiskBlobStore : public BlobStore {
 public:
  explicit DiskBlobStore(std::string root) : root_(std::move(root)) {
    private_dir(root_);
    private_dir(root_ + "/git");
    private_dir(root_ + "/lfs");
    std::error_code ec;
    fs::remove_all(root_ + "/tmp", ec);  // leftovers of interrupted uploads
    if (ec) throw IoError(ErrorContext().file(root_), "cannot clear tmp: " + ec.message());
    private_dir(root_ + "/tmp");
  }

  std::string path_of(BlobKind k, const std::string& oid) const {
    const size_t len = k == BlobKind::Git ? 40 : 64;
    if (!is_hex(oid, len)) throw InvalidArgument("invalid blob id '" + oid + "'");
    return root_ + (k == BlobKind::Git ? "/git/" : "/lfs/") + oid.substr(0, 2) + "/" + oid;
  }

  bool has(BlobKind k, const std::string& oid) const override { return size(k, oid).has_value(); }

  std::optional<uint64_t> size(BlobKind k, const std::string& oid) const override {
    struct stat st {};
    if (::stat(path_of(k, oid).c_str(), &st) != 0) return std::nullopt;
    return static_cast<uint64_t>(st.st_size);
  }

  std::unique_ptr<BlobReader> open(BlobKind k, const std::string& oid) const override {
    const std::string p = path_of(k, oid);
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) throw NotFoundError(ErrorContext().file(p), "blob not found");
      sys_fail("open", p);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      sys_fail("fstat", p);
    }
    return std::make_unique<FdReader>(fd, static_cast<uint64_t>(st.st_size), p);
  }

  std::pair<std::string, int> temp_file() const {
    for (int i = 0; i < 8; ++i) {
      std::string t = root_ + "/tmp/" + random_hex(12);
      int fd = ::open(t.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd >= 0) {
        if (::fchmod(fd, 0600) != 0) {
          ::close(fd);
          ::unlink(t.c_str());
          sys_fail("fchmod", t);
        }
        return {t, fd};
      }
      if (errno != EEXIST) sys_fail("create temp file", t);
    }
    throw IoError("cannot create a temp file in " + root_ + "/tmp");
  }

  // fsync + rename the temp file into place (an existing blob with that key is identical).
  void publish(int fd, const std::string& tmp, BlobKind k, const std::string& oid) const {
    if (::fsync(fd) != 0) sys_fail("fsync", tmp);
    const std::string dst = path_of(k, oid);
    const std::string dir = dst.substr(0, dst.rfind('/'));
    if (!fs::is_directory(dir)) private_dir(dir);
    if (::rename(tmp.c_str(), dst.c_str()) != 0) sys_fail("rename", dst);
    fsync_dir(dir);
  }

  std::string put(BlobKind k, std::string_view data) override {
    const std::string oid = k == BlobKind::Git ? git_blob_oid(data) : sha256_hex(data);
    if (has(k, oid)) return oid;
    auto [tmp, fd] = temp_file();
    try {
      write_all(fd, data.data(), data.size(), tmp);
      publish(fd, tmp, k, oid);
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
    ::close(fd);
    return oid;
  }

  std::unique_ptr<BlobWriter> lfs_writer() override {
    auto [tmp, fd] = temp_file();
    return std::make_unique<DiskWriter>(*this, tmp, fd);
  }

 private:
  std::string root_;
};

void DiskWriter::commit(const std::string& expected_sha256, uint64_t expected_size) {
  if (committed_) throw InvalidArgument("blob already committed");
  if (written_ != expected_size)
    throw InvalidArgument("size mismatch: expected " + std::to_string(expected_size) +
                          " bytes, received " + std::to_string(written_));
  const std::string got = hasher_.hex();
  if (got != expected_sha256)
    throw InvalidArgument("sha256 mismatch: expected " + expected_sha256 + ", content has " + got);
  store_.publish(fd_, tmp_, BlobKind::Lfs, got);
  ::close(fd_);
  fd_ = -1;
  committed_ = true;
}

}  // namespace

std::unique_ptr<BlobStore> open_disk_blob_store(const std::string& root) {
  return std::make_unique<DiskBlobStore>(root);
}

}  // namespace ohm::hub
