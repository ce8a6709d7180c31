// Writing a file so that readers see either the old content or the whole new content, never a
// part: the data goes to a temporary file in the same directory (same file system), which is
// renamed over the target only when it is complete. On any failure the temporary file is removed
// and the target is left as it was.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace ohm {

// Calls write(tmp) with a fresh temporary path beside `path` ("<path>.partial-<pid>-<n>"), then
// renames tmp to path. If write throws or the rename fails, tmp is removed and the error is
// rethrown (a failed rename as IoError naming `path`).
void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string& tmp)>& write);

// The same for content held in memory. Throws IoError naming `path` on failure.
void write_file_atomic(const std::string& path, std::string_view data);

}  // namespace ohm
