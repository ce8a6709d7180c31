#include "ohm/core/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "ohm/core/error.h"

namespace fs = std::filesystem;

namespace ohm {

namespace {

std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string& tmp)>& write) {
  const std::string tmp = temp_name(path);
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw IoError(ErrorContext().file(path), "cannot replace the file: " + ec.message());
  }
}

void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, [&](const std::string& tmp) {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f) throw IoError(ErrorContext().file(path), "cannot write");
  });
}

}  // namespace ohm
