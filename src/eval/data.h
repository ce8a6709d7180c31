// Task data: rows of the local files a task's data_files name (JSON lines, a JSON array, CSV
// with a header, llama.cpp's HellaSwag text; .bz2 compressed or not), as JSON objects that
// remember their file and row for error messages.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ohm::eval {

struct Row {
  nlohmann::ordered_json doc;
  std::string file;
  int64_t row = 0;  // 1-based data row (CSV: not counting the header)
};

// `spec`: a path string or {path, format, add_columns: {col: file}, list_columns: {col: [cols]}}
// relative to data_dir. `where` names the task and split in errors.
std::vector<Row> load_split(const nlohmann::ordered_json& spec, const std::string& data_dir,
                            const std::string& where);

// The whole file, bzip2-decompressed when it ends in .bz2 (NotFoundError / IoError naming it).
std::string read_data_file(const std::string& path);

}  // namespace ohm::eval
