#include "data.h"

#include <bzlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ohm/core/error.h"

namespace ohm::eval {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string bunzip2(const std::string& in, const std::string& path) {
  bz_stream strm{};
  if (BZ2_bzDecompressInit(&strm, 0, 0) != BZ_OK)
    throw IoError(ErrorContext().file(path), "cannot start bzip2 decompression");
  std::string out;
  std::vector<char> buf(1 << 20);
  strm.next_in = const_cast<char*>(in.data());
  strm.avail_in = static_cast<unsigned>(in.size());
  int rc = BZ_OK;
  while (rc != BZ_STREAM_END) {
    strm.next_out = buf.data();
    strm.avail_out = static_cast<unsigned>(buf.size());
    rc = BZ2_bzDecompress(&strm);
    if (rc != BZ_OK && rc != BZ_STREAM_END) {
      BZ2_bzDecompressEnd(&strm);
      throw FormatError(ErrorContext().file(path),
                        "bzip2 data is corrupt (error " + std::to_string(rc) + ")");
    }
    out.append(buf.data(), buf.size() - strm.avail_out);
    if (rc == BZ_OK && strm.avail_in == 0 && strm.avail_out != 0) {
      BZ2_bzDecompressEnd(&strm);
      throw FormatError(ErrorContext().file(path), "bzip2 data ends early");
    }
  }
  BZ2_bzDecompressEnd(&strm);
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string cur;
  std::istringstream in(text);
  while (std::getline(in, cur)) {
    if (!cur.empty() && cur.back() == '\r') cur.pop_back();
    lines.push_back(cur);
  }
  return lines;
}

std::vector<Row> parse_jsonl(const std::string& text, const std::string& path) {
  std::vector<Row> rows;
  int64_t line_no = 0, n = 0;
  for (const auto& line : split_lines(text)) {
    ++line_no;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw FormatError(ErrorContext().file(path).note("line", std::to_string(line_no)),
                        std::string("not a JSON object: ") + e.what());
    }
    if (!j.is_object())
      throw FormatError(ErrorContext().file(path).note("line", std::to_string(line_no)),
                        "each line must be a JSON object");
    rows.push_back({std::move(j), path, ++n});
  }
  return rows;
}

std::vector<Row> parse_json_array(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw FormatError(ErrorContext().file(path), std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_array()) throw FormatError(ErrorContext().file(path), "expected a JSON array of rows");
  std::vector<Row> rows;
  for (auto& x : j) {
    if (!x.is_object())
      throw FormatError(ErrorContext().file(path).note("row", std::to_string(rows.size() + 1)),
                        "each row must be a JSON object");
    rows.push_back({x, path, static_cast<int64_t>(rows.size()) + 1});
  }
  return rows;
}

// RFC 4180: quoted fields may hold commas, doubled quotes and newlines.
std::vector<Row> parse_csv(const std::string& text, const std::string& path) {
  std::vector<std::vector<std::string>> recs;
  std::vector<std::string> rec;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      rec.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        rec.push_back(std::move(field));
        recs.push_back(std::move(rec));
      }
      rec.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw FormatError(ErrorContext().file(path), "a quoted CSV field is not closed");
  if (any || !field.empty()) {
    rec.push_back(std::move(field));
    recs.push_back(std::move(rec));
  }
  if (recs.empty()) throw FormatError(ErrorContext().file(path), "the CSV file has no header");
  const auto& header = recs[0];
  std::vector<Row> rows;
  for (size_t r = 1; r < recs.size(); ++r) {
    if (recs[r].size() != header.size())
      throw FormatError(ErrorContext().file(path).note("row", std::to_string(r)),
                        "has " + std::to_string(recs[r].size()) + " fields, the header has " +
                            std::to_string(header.size()));
    json j = json::object();
    for (size_t c = 0; c < header.size(); ++c) j[header[c]] = recs[r][c];
    rows.push_back({std::move(j), path, static_cast<int64_t>(r)});
  }
  return rows;
}

// llama.cpp's --hellaswag text: 6 lines per task: "activity_label: context", the gold ending
// (0-3), the 4 endings. As HF's Rowan/hellaswag rows: ctx_a = the context, ctx_b = "".
std::vector<Row> parse_hellaswag_llamacpp(const std::string& text, const std::string& path) {
  auto lines = split_lines(text);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.size() % 6 != 0)
    throw FormatError(ErrorContext().file(path), "llama.cpp HellaSwag text has " +
                                                     std::to_string(lines.size()) +
                                                     " lines, not a multiple of 6");
  std::vector<Row> rows;
  for (size_t i = 0; i < lines.size(); i += 6) {
    const auto n = static_cast<int64_t>(i / 6 + 1);
    const std::string& q = lines[i];
    const size_t colon = q.find(": ");
    if (colon == std::string::npos)
      throw FormatError(ErrorContext().file(path).note("row", std::to_string(n)),
                        "the first line lacks 'activity_label: '");
    const std::string& lab = lines[i + 1];
    if (lab.size() != 1 || lab[0] < '0' || lab[0] > '3')
      throw FormatError(ErrorContext().file(path).note("row", std::to_string(n)),
                        "the gold line must be 0-3, got '" + lab + "'");
    json j = json::object();
    j["ind"] = n - 1;
    j["activity_label"] = q.substr(0, colon);
    j["ctx_a"] = q.substr(colon + 2);
    j["ctx_b"] = "";
    j["ctx"] = q.substr(colon + 2);
    j["endings"] = json::array({lines[i + 2], lines[i + 3], lines[i + 4], lines[i + 5]});
    j["label"] = lab;
    rows.push_back({std::move(j), path, n});
  }
  return rows;
}

// WikiText's raw text (wiki.test.raw) as EleutherAI/wikitext_document_level's pages: a line
// that is a level-1 heading (" = Title = ") starts a new page; pages are their lines joined by
// "\n", blank pages dropped.
std::vector<Row> parse_wikitext_raw(const std::string& text, const std::string& path) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    const size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  auto replace_all = [](std::string s, const std::string& a, const std::string& b) {
    for (size_t i = 0; (i = s.find(a, i)) != std::string::npos; i += b.size())
      s.replace(i, a.size(), b);
    return s;
  };
  auto strip = [](const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n\f\v");
    if (b == std::string::npos) return std::string();
    return s.substr(b, s.find_last_not_of(" \t\r\n\f\v") - b + 1);
  };
  std::vector<Row> rows;
  std::vector<std::string> cur;
  auto page_of = [&] {
    std::string p;
    for (size_t i = 0; i < cur.size(); ++i) p += (i ? "\n" : "") + cur[i];
    return p;
  };
  for (const auto& line : lines) {
    const std::string r = strip(replace_all(replace_all(line, "= = =", "==="), "= =", "=="));
    if (r.size() >= 3 && r.compare(0, 2, "= ") == 0 && r.compare(r.size() - 2, 2, " =") == 0) {
      const std::string page = page_of();
      if (!strip(page).empty()) {
        json j = json::object();
        j["page"] = page;
        rows.push_back({std::move(j), path, static_cast<int64_t>(rows.size()) + 1});
      }
      cur.clear();
    }
    cur.push_back(line);
  }
  json j = json::object();
  j["page"] = page_of();
  rows.push_back({std::move(j), path, static_cast<int64_t>(rows.size()) + 1});
  return rows;
}

}  // namespace

std::string read_data_file(const std::string& path) {
  if (!fs::exists(path)) throw NotFoundError(ErrorContext().file(path), "data file not found");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(ErrorContext().file(path), "cannot open the data file");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return ends_with(path, ".bz2") ? bunzip2(s, path) : s;
}

std::vector<Row> load_split(const json& spec, const std::string& data_dir,
                            const std::string& where) {
  json s = spec.is_string() ? json{{"path", spec}} : spec;
  if (!s.is_object() || !s.contains("path") || !s["path"].is_string())
    throw FormatError(ErrorContext().key("data_files").note("split", where),
                      "each split needs a path (a string or {path: ...})");
  auto resolve = [&](const std::string& p) {
    return fs::path(p).is_absolute() || data_dir.empty() ? p : (fs::path(data_dir) / p).string();
  };
  const std::string path = resolve(s["path"].get<std::string>());
  std::string base = ends_with(path, ".bz2") ? path.substr(0, path.size() - 4) : path;
  std::string format = s.value("format", "");
  if (format.empty()) {
    if (ends_with(base, ".jsonl"))
      format = "jsonl";
    else if (ends_with(base, ".json"))
      format = "json";
    else if (ends_with(base, ".csv"))
      format = "csv";
    else if (ends_with(base, ".raw"))
      format = "wikitext_raw";
    else
      throw FormatError(ErrorContext().file(path).note("split", where),
                        "unknown data format (use .jsonl, .json, .csv, .raw or give format:)");
  }
  const std::string text = read_data_file(path);
  std::vector<Row> rows;
  if (format == "jsonl")
    rows = parse_jsonl(text, path);
  else if (format == "json")
    rows = parse_json_array(text, path);
  else if (format == "csv")
    rows = parse_csv(text, path);
  else if (format == "hellaswag_llamacpp")
    rows = parse_hellaswag_llamacpp(text, path);
  else if (format == "wikitext_raw")
    rows = parse_wikitext_raw(text, path);
  else
    throw FormatError(
        ErrorContext().file(path).key("format"),
        "unknown format '" + format + "' (jsonl, json, csv, hellaswag_llamacpp, wikitext_raw)");
  if (s.contains("add_columns")) {
    for (const auto& [col, file] : s["add_columns"].items()) {
      const std::string p = resolve(file.get<std::string>());
      auto lines = split_lines(read_data_file(p));
      while (!lines.empty() && lines.back().empty()) lines.pop_back();
      if (lines.size() != rows.size())
        throw FormatError(ErrorContext().file(p).key(col),
                          "has " + std::to_string(lines.size()) + " lines for " +
                              std::to_string(rows.size()) + " rows of " + path);
      for (size_t i = 0; i < rows.size(); ++i) rows[i].doc[col] = lines[i];
    }
  }
  if (s.contains("list_columns")) {
    for (const auto& [col, cols] : s["list_columns"].items()) {
      for (auto& r : rows) {
        json list = json::array();
        for (const auto& c : cols) {
          const std::string name = c.get<std::string>();
          if (!r.doc.contains(name))
            throw FormatError(
                ErrorContext().file(r.file).key(name).note("row", std::to_string(r.row)),
                "the row has no field '" + name + "' (list_columns." + col + ")");
          list.push_back(r.doc[name]);
        }
        r.doc[col] = std::move(list);
      }
    }
  }
  return rows;
}

}  // namespace ohm::eval
