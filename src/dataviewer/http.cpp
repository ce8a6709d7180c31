// The viewer's HTTP side: the datasets-server endpoints, the Hub's /api/datasets/{id}/parquet
// listing, and the repo page's viewer section. Every answer goes through the Hub's access rules
// first (repo_for_read, then the gate), so a private or gated dataset is exactly as visible here
// as through the repo endpoints.
#include <arrow/io/api.h>
#include <parquet/arrow/reader.h>

#include <algorithm>
#include <charconv>
#include <mutex>

#include "ohm/core/html.h"
#include "ohm/datasets/dataset.h"
#include "ohm/hub/errors.h"
#include "ohm/hub/validate.h"
#include "ohm/hub/webui.h"
#include "state.h"

namespace ohm::dataviewer {

using ojson = nlohmann::ordered_json;  // answers keep datasets' (column) order
using hub::ExtensionReply;
using hub::ExtensionRequest;
using hub::RepoInfo;
using hub::RepoType;

namespace {

constexpr const char* kServerPrefix = "datasets-server";
constexpr size_t kRowsMaxBytes = 1u << 20;  // a /first-rows or /rows answer, about
constexpr size_t kCellMinBytes = 100;       // truncated cells keep this much (as HF's viewer)
constexpr int64_t kMaxLength = 100;         // /rows ?length= at most (as HF's viewer)
const char* const kEndpoints[] = {"splits", "parquet", "first-rows", "rows",
                                  "size",   "info",    "is-valid"};

ExtensionReply reply_json(const ojson& j, int status = 200) {
  ExtensionReply r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

ExtensionReply error_reply(int status, const std::string& code, const std::string& msg) {
  ExtensionReply r = reply_json(ojson{{"error", msg}}, status);
  r.headers.emplace_back("X-Error-Code", code);
  r.headers.emplace_back("X-Error-Message", msg);
  return r;
}

// A parameter error (422 as the datasets-server answers a missing or invalid one).
[[noreturn]] void bad_param(const std::string& name, const std::string& what) {
  throw hub::Unprocessable("Parameter '" + name + "' " + what);
}

std::string resolve_url(const std::string& base, const std::string& repo, const std::string& path) {
  return base + "/datasets/" + hub::percent_encode(repo, true) +
         "/resolve/refs%2Fconvert%2Fparquet/" + hub::percent_encode(path, true);
}

struct Target {
  RepoInfo r;
  std::string commit;
  json st;
  std::string state;
};

// The dataset a request names, after the Hub's access checks; state "ok" | "error" | "pending".
Target target(DatasetViewer::Impl& v, const hub::Caller& caller, const std::string& id) {
  if (id.empty()) bad_param("dataset", "is required");
  const size_t slash = id.find('/');
  if (slash == std::string::npos || id.find('/', slash + 1) != std::string::npos || id.size() > 200)
    bad_param("dataset", "must be a dataset repo id, namespace/name");
  Target t;
  t.r = v.hub.repo_for_read(caller, RepoType::Dataset, id.substr(0, slash), id.substr(slash + 1));
  v.hub.check_gate(caller, t.r);
  t.commit = v.hub.resolve(t.r, "main");
  t.state = viewer_state(v, t.r, t.commit, t.st);
  return t;
}

// Not ready or failed: the datasets-server's answers for both.
std::optional<ExtensionReply> not_ok(const Target& t) {
  if (t.state == "pending")
    return error_reply(500, "ResponseNotReady",
                       "The parquet conversion of " + t.r.full_id() +
                           " is running; the response is not ready yet. Please retry later.");
  if (t.state == "error")
    return error_reply(500, "DatasetGenerationError",
                       "The parquet conversion of " + t.r.full_id() +
                           " failed: " + t.st.value("error", std::string("unknown error")));
  return std::nullopt;
}

// A requested name as error messages show it (bounded).
std::string shown(const std::string& name) {
  return name.size() <= 100 ? name : name.substr(0, 100) + "...";
}

const json* find_config(const json& st, const std::string& name, bool required) {
  if (name.empty()) {
    if (required) bad_param("config", "is required");
    return nullptr;
  }
  std::string names;
  for (const auto& c : st["configs"]) {
    if (c["config"] == name) return &c;
    names += (names.empty() ? "" : ", ") + c["config"].get<std::string>();
  }
  throw hub::NotFound("Parameter 'config': the dataset has no config '" + shown(name) +
                      "' (configs: " + names + ")");
}

const json& find_split(const json& c, const std::string& name) {
  if (name.empty()) bad_param("split", "is required");
  std::string names;
  for (const auto& s : c["splits"]) {
    if (s["split"] == name) return s;
    names += (names.empty() ? "" : ", ") + s["split"].get<std::string>();
  }
  throw hub::NotFound("Parameter 'split': config '" + c["config"].get<std::string>() +
                      "' has no split '" + shown(name) + "' (splits: " + names + ")");
}

int64_t int_param(const ExtensionRequest& q, const std::string& name, int64_t dflt, int64_t lo,
                  int64_t hi) {
  if (!q.has(name)) return dflt;
  const std::string v = q.param(name);
  int64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size())
    bad_param(name, "must be an integer");
  if (x < lo || x > hi)
    bad_param(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return x;
}

// A split's features in column order (the ordered text the conversion recorded).
ojson split_features(const json& s) {
  if (s.contains("features_json")) {
    ojson f = ojson::parse(s["features_json"].get<std::string>(), nullptr, false);
    if (!f.is_discarded()) return f;
  }
  return ojson(s.value("features", json::object()));
}

ojson feature_list(const ojson& features) {
  ojson out = ojson::array();
  int i = 0;
  for (auto it = features.begin(); it != features.end(); ++it)
    out.push_back({{"feature_idx", i++}, {"name", it.key()}, {"type", it.value()}});
  return out;
}

// One row with its cells in column order.
ojson ordered_row(const json& row, const json& columns) {
  if (!row.is_object() || !columns.is_array()) return ojson(row);
  ojson o = ojson::object();
  for (const auto& c : columns) {
    const std::string k = c.get<std::string>();
    o[k] = row.contains(k) ? ojson(row[k]) : ojson(nullptr);
  }
  return o;
}

// Rows in the datasets-server shape; over kRowsMaxBytes the cells are cut to kCellMinBytes (as
// strings, named in truncated_cells), and then rows are dropped.
// `cut`: per row, the cells already cut at conversion (first rows), or null.
ojson row_items(const json& rows, const json& columns, int64_t first_idx, bool& truncated,
                const json& cut0 = json()) {
  ojson out = ojson::array();
  size_t total = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    ojson row = ordered_row(rows[i], columns);
    ojson cut = cut0.is_array() && i < cut0.size() ? ojson(cut0[i]) : ojson::array();
    std::string d = row.dump(-1, ' ', false, json::error_handler_t::replace);
    if (total + d.size() > kRowsMaxBytes && row.is_object()) {
      for (auto it = row.begin(); it != row.end(); ++it) {
        std::string cell = it.value().is_string()
                               ? it.value().get<std::string>()
                               : it.value().dump(-1, ' ', false, json::error_handler_t::replace);
        if (cell.size() > kCellMinBytes) {
          size_t n = kCellMinBytes;
          while (n > 0 && (static_cast<unsigned char>(cell[n]) & 0xC0) == 0x80) --n;
          it.value() = cell.substr(0, n);
          if (std::find(cut.begin(), cut.end(), it.key()) == cut.end()) cut.push_back(it.key());
        }
      }
      d = row.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (total + d.size() > kRowsMaxBytes && !out.empty()) {
      truncated = true;
      break;
    }
    total += d.size();
    out.push_back({{"row_idx", first_idx + static_cast<int64_t>(i)},
                   {"row", std::move(row)},
                   {"truncated_cells", std::move(cut)}});
  }
  return out;
}

// An Arrow file over a blob of the Hub's store (parquet reads what it needs: footer, row groups).
class BlobFile : public arrow::io::RandomAccessFile {
 public:
  explicit BlobFile(std::unique_ptr<hub::BlobReader> rd) : rd_(std::move(rd)) {}
  arrow::Status Close() override {
    closed_ = true;
    return arrow::Status::OK();
  }
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return pos_; }
  arrow::Status Seek(int64_t p) override {
    pos_ = p;
    return arrow::Status::OK();
  }
  arrow::Result<int64_t> GetSize() override { return static_cast<int64_t>(rd_->size()); }
  arrow::Result<int64_t> Read(int64_t n, void* out) override {
    ARROW_ASSIGN_OR_RAISE(int64_t got, ReadAt(pos_, n, out));
    pos_ += got;
    return got;
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> Read(int64_t n) override {
    ARROW_ASSIGN_OR_RAISE(auto b, ReadAt(pos_, n));
    pos_ += b->size();
    return b;
  }
  arrow::Result<int64_t> ReadAt(int64_t pos, int64_t n, void* out) override {
    std::lock_guard l(mu_);
    int64_t got = 0;
    try {
      while (got < n) {
        const size_t k = rd_->read_at(static_cast<uint64_t>(pos + got),
                                      static_cast<char*>(out) + got, static_cast<size_t>(n - got));
        if (k == 0) break;
        got += static_cast<int64_t>(k);
      }
    } catch (const std::exception& e) {
      return arrow::Status::IOError(e.what());
    }
    return got;
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> ReadAt(int64_t pos, int64_t n) override {
    ARROW_ASSIGN_OR_RAISE(auto buf, arrow::AllocateResizableBuffer(n));
    ARROW_ASSIGN_OR_RAISE(int64_t got, ReadAt(pos, n, buf->mutable_data()));
    ARROW_RETURN_NOT_OK(buf->Resize(got));
    return std::shared_ptr<arrow::Buffer>(std::move(buf));
  }

 private:
  std::unique_ptr<hub::BlobReader> rd_;
  int64_t pos_ = 0;
  bool closed_ = false;
  std::mutex mu_;
};

// Rows [offset, offset + length) of a converted split, read from its parquet blobs.
json read_rows(hub::Hub& hub, const json& split, int64_t offset, int64_t length) {
  json rows = json::array();
  int64_t start = 0;
  for (const auto& f : split["files"]) {
    const int64_t n = f.value("num_rows", int64_t{0});
    if (offset >= start + n) {
      start += n;
      continue;
    }
    const std::string where = f.value("path", std::string());
    auto in = std::make_shared<BlobFile>(
        hub.blobs().open(hub::BlobKind::Lfs, f.value("sha256", std::string())));
    auto fr =
        datasets::value_or_throw(parquet::arrow::OpenFile(in, arrow::default_memory_pool()), where);
    int64_t g0 = start;
    for (int g = 0; g < fr->num_row_groups() && static_cast<int64_t>(rows.size()) < length; ++g) {
      const int64_t gn = fr->parquet_reader()->metadata()->RowGroup(g)->num_rows();
      if (offset + static_cast<int64_t>(rows.size()) >= g0 + gn) {
        g0 += gn;
        continue;
      }
      auto t = datasets::value_or_throw(fr->ReadRowGroup(g), where);
      auto b = datasets::value_or_throw(t->CombineChunksToBatch(), where);
      for (int64_t i = offset + static_cast<int64_t>(rows.size()) - g0;
           i < gn && static_cast<int64_t>(rows.size()) < length; ++i)
        rows.push_back(datasets::row_to_json(*b, i));
      g0 += gn;
    }
    start += n;
    if (static_cast<int64_t>(rows.size()) >= length) break;
  }
  return rows;
}

ojson split_entry(const std::string& ds, const json& c, const json& s) {
  return {{"dataset", ds}, {"config", ojson(c["config"])}, {"split", ojson(s["split"])}};
}

ojson info_of(const RepoInfo& r, const json& st, const json& c) {
  ojson splits = ojson::object();
  uint64_t mem = 0;
  for (const auto& s : c["splits"]) {
    splits[s["split"].get<std::string>()] = {{"name", s["split"]},
                                             {"num_bytes", s["num_bytes_memory"]},
                                             {"num_examples", s["num_rows"]},
                                             {"dataset_name", r.name}};
    mem += s.value("num_bytes_memory", uint64_t{0});
  }
  return {{"description", ""},
          {"citation", ""},
          {"homepage", ""},
          {"license", ""},
          {"features", c["splits"].empty() ? ojson::object() : split_features(c["splits"][0])},
          {"builder_name", st.value("builder_name", std::string("parquet"))},
          {"dataset_name", r.name},
          {"config_name", c["config"]},
          {"version", {{"version_str", "0.0.0"}, {"major", 0}, {"minor", 0}, {"patch", 0}}},
          {"splits", splits},
          {"download_size", c.value("num_bytes_original_files", uint64_t{0})},
          {"dataset_size", mem}};
}

bool any_partial(const json& st, const json* only) {
  for (const auto& c : st["configs"]) {
    if (only && &c != only) continue;
    for (const auto& s : c["splits"])
      if (s.value("partial", false)) return true;
  }
  return false;
}

// The datasets-server endpoints: /{endpoint}?dataset=...
ExtensionReply server_endpoint(DatasetViewer::Impl& v, const ExtensionRequest& q,
                               const std::string& ep) {
  if (ep == "is-valid") {
    Target t = target(v, q.caller, q.param("dataset"));
    const bool ok = t.state == "ok";
    return reply_json({{"preview", ok},
                       {"viewer", ok},
                       {"search", false},
                       {"filter", false},
                       {"statistics", false}});
  }
  Target t = target(v, q.caller, q.param("dataset"));
  if (auto e = not_ok(t)) return *e;
  const std::string ds = t.r.full_id();
  const json& st = t.st;
  ExtensionReply rep;
  auto with_rev = [&](ExtensionReply r) {
    r.headers.emplace_back("X-Revision", t.commit);
    return r;
  };
  if (ep == "splits") {
    const json* only = find_config(st, q.param("config"), false);
    ojson arr = ojson::array();
    for (const auto& c : st["configs"])
      if (!only || &c == only)
        for (const auto& s : c["splits"]) arr.push_back(split_entry(ds, c, s));
    return with_rev(
        reply_json({{"splits", arr}, {"pending", json::array()}, {"failed", json::array()}}));
  }
  if (ep == "parquet") {
    const json* only = find_config(st, q.param("config"), false);
    ojson arr = ojson::array();
    for (const auto& c : st["configs"])
      if (!only || &c == only)
        for (const auto& s : c["splits"])
          for (const auto& f : s["files"])
            arr.push_back({{"dataset", ds},
                           {"config", c["config"]},
                           {"split", s["split"]},
                           {"url", resolve_url(q.base_url, ds, f["path"])},
                           {"filename", f["filename"]},
                           {"size", f["size"]}});
    ojson j = {{"parquet_files", arr},
               {"pending", json::array()},
               {"failed", json::array()},
               {"partial", any_partial(st, only)}};
    if (only && !(*only)["splits"].empty()) j["features"] = split_features((*only)["splits"][0]);
    return with_rev(reply_json(j));
  }
  if (ep == "info") {
    const json* only = find_config(st, q.param("config"), false);
    if (only)
      return with_rev(reply_json(
          {{"dataset_info", info_of(t.r, st, *only)}, {"partial", any_partial(st, only)}}));
    ojson all = ojson::object();
    for (const auto& c : st["configs"]) all[c["config"].get<std::string>()] = info_of(t.r, st, c);
    return with_rev(reply_json({{"dataset_info", all},
                                {"pending", json::array()},
                                {"failed", json::array()},
                                {"partial", any_partial(st, nullptr)}}));
  }
  if (ep == "size") {
    const json* only = find_config(st, q.param("config"), false);
    ojson configs = ojson::array(), splits = ojson::array();
    uint64_t d_orig = 0, d_pq = 0, d_mem = 0, d_rows = 0;
    for (const auto& c : st["configs"]) {
      if (only && &c != only) continue;
      uint64_t pq = 0, mem = 0, rows = 0;
      const uint64_t ncol = c.value("features", json::object()).size();
      for (const auto& s : c["splits"]) {
        const uint64_t sp = s.value("num_bytes_parquet_files", uint64_t{0});
        const uint64_t sm = s.value("num_bytes_memory", uint64_t{0});
        const uint64_t sr = s.value("num_rows", uint64_t{0});
        pq += sp, mem += sm, rows += sr;
        splits.push_back({{"dataset", ds},
                          {"config", c["config"]},
                          {"split", s["split"]},
                          {"num_bytes_parquet_files", sp},
                          {"num_bytes_memory", sm},
                          {"num_rows", sr},
                          {"num_columns", ncol},
                          {"estimated_num_rows", nullptr}});
      }
      const uint64_t orig = c.value("num_bytes_original_files", uint64_t{0});
      configs.push_back({{"dataset", ds},
                         {"config", c["config"]},
                         {"num_bytes_original_files", orig},
                         {"num_bytes_parquet_files", pq},
                         {"num_bytes_memory", mem},
                         {"num_rows", rows},
                         {"num_columns", ncol},
                         {"estimated_num_rows", nullptr}});
      d_orig += orig, d_pq += pq, d_mem += mem, d_rows += rows;
    }
    ojson size = {{"configs", configs}, {"splits", splits}};
    if (only)
      size = ojson{{"config", configs[0]}, {"splits", splits}};
    else
      size["dataset"] = {{"dataset", ds},
                         {"num_bytes_original_files", d_orig},
                         {"num_bytes_parquet_files", d_pq},
                         {"num_bytes_memory", d_mem},
                         {"num_rows", d_rows},
                         {"estimated_num_rows", nullptr}};
    return with_rev(reply_json({{"size", size},
                                {"pending", json::array()},
                                {"failed", json::array()},
                                {"partial", any_partial(st, only)}}));
  }
  // first-rows, rows
  const json& c = *find_config(st, q.param("config"), true);
  const json& s = find_split(c, q.param("split"));
  const ojson features = split_features(s);
  const json& columns = s.contains("columns") ? s["columns"] : json();
  bool truncated = false;
  if (ep == "first-rows") {
    const json& first = s["first_rows"];
    ojson rows = row_items(first, columns, 0, truncated,
                           s.contains("first_rows_truncated") ? s["first_rows_truncated"] : json());
    truncated = truncated || s.value("num_rows", int64_t{0}) > static_cast<int64_t>(rows.size());
    return with_rev(reply_json({{"dataset", ds},
                                {"config", c["config"]},
                                {"split", s["split"]},
                                {"features", feature_list(features)},
                                {"rows", rows},
                                {"truncated", truncated}}));
  }
  const int64_t offset = int_param(q, "offset", 0, 0, int64_t{1} << 50);
  const int64_t length = int_param(q, "length", kMaxLength, 0, kMaxLength);
  const int64_t total = s.value("num_rows", int64_t{0});
  json rows = offset >= total ? json::array() : read_rows(v.hub, s, offset, length);
  return with_rev(reply_json({{"features", feature_list(features)},
                              {"rows", row_items(rows, columns, offset, truncated)},
                              {"num_rows_total", total},
                              {"num_rows_per_page", kMaxLength},
                              {"partial", s.value("partial", false)}}));
}

// GET /api/datasets/{ns}/{name}/parquet[/{config}[/{split}[/{n}.parquet]]]
ExtensionReply api_parquet(DatasetViewer::Impl& v, const ExtensionRequest& q) {
  const auto& seg = q.seg;
  Target t = target(v, q.caller, seg[2] + "/" + seg[3]);
  if (auto e = not_ok(t)) return *e;
  const std::string ds = t.r.full_id();
  auto api_url = [&](const std::string& c, const std::string& s, size_t n) {
    return q.base_url + "/api/datasets/" + hub::percent_encode(ds, true) + "/parquet/" +
           hub::percent_encode(c, false) + "/" + hub::percent_encode(s, false) + "/" +
           std::to_string(n) + ".parquet";
  };
  auto urls = [&](const json& c, const json& s) {
    ojson a = ojson::array();
    for (size_t i = 0; i < s["files"].size(); ++i) a.push_back(api_url(c["config"], s["split"], i));
    return a;
  };
  auto per_config = [&](const json& c) {
    ojson o = ojson::object();
    for (const auto& s : c["splits"]) o[s["split"].get<std::string>()] = urls(c, s);
    return o;
  };
  ExtensionReply r;
  if (seg.size() == 5) {
    ojson all = ojson::object();
    for (const auto& c : t.st["configs"]) all[c["config"].get<std::string>()] = per_config(c);
    r = reply_json(all);
  } else {
    const json& c = *find_config(t.st, seg[5], true);
    if (seg.size() == 6) {
      r = reply_json(per_config(c));
    } else {
      const json& s = find_split(c, seg[6]);
      if (seg.size() == 7) {
        r = reply_json(urls(c, s));
      } else {
        if (seg.size() != 8) throw hub::NotFound("not found");
        const std::string& f = seg[7];
        size_t n = 0;
        auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), n);
        if (ec != std::errc() || std::string_view(p) != ".parquet" || n >= s["files"].size())
          throw hub::NotFound("Parameter 'n': no parquet file '" + shown(f) + "' in split '" +
                              s["split"].get<std::string>() + "'");
        r.status = 302;
        r.content_type = "text/plain";
        r.headers.emplace_back("Location", resolve_url(q.base_url, ds, s["files"][n]["path"]));
      }
    }
  }
  r.headers.emplace_back("X-Revision", t.commit);
  return r;
}

std::string esc(std::string_view s) {
  return html_escape(s);
}
std::string qenc(const std::string& s) {
  return hub::percent_encode(s, false);
}

std::string cell_text(const json& v) {
  std::string s =
      v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 300) {
    size_t n = 300;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s = s.substr(0, n) + "\u2026";
  }
  return s;
}

std::string type_text(const ojson& f) {
  if (f.is_object() && f.contains("_type")) {
    const std::string t = f["_type"].get<std::string>();
    if (t == "Value") return f.value("dtype", std::string("?"));
    if (t == "ClassLabel") return "class label";
    if (t == "List" || t == "Sequence" || t == "LargeList") return "list";
    return t;
  }
  return f.is_object() ? "struct" : "?";
}

}  // namespace

bool DatasetViewer::claims(const std::vector<std::string>& seg, const std::string& host) const {
  if (!seg.empty() && seg[0] == kServerPrefix) return true;
  if (host.starts_with("datasets-server.") && seg.size() == 1)
    for (const char* e : kEndpoints)
      if (seg[0] == e) return true;
  return seg.size() >= 5 && seg[0] == "api" && seg[1] == "datasets" && seg[4] == "parquet";
}

ExtensionReply DatasetViewer::handle(hub::Hub&, const ExtensionRequest& q) {
  if (q.method != "GET" && q.method != "HEAD") throw hub::MethodNotAllowed("method not allowed");
  if (q.seg[0] == "api") return api_parquet(*impl_, q);
  const bool prefixed = q.seg[0] == kServerPrefix;
  if (prefixed && q.seg.size() != 2) throw hub::NotFound("not found");
  const std::string& ep = q.seg[prefixed ? 1 : 0];
  for (const char* e : kEndpoints)
    if (ep == e) return server_endpoint(*impl_, q, ep);
  throw hub::NotFound(
      "not found: the dataset viewer answers /splits, /parquet, /first-rows, "
      "/rows, /size, /info and /is-valid");
}

std::string DatasetViewer::repo_page_section(
    hub::Hub& hub, const hub::Caller& caller, const RepoInfo& r,
    const std::function<std::string(const std::string&)>& param) {
  if (r.type != RepoType::Dataset) return {};
  std::string h = "<section class=\"dv\" id=\"dataset-viewer\"><h2>Dataset viewer</h2>";
  if (!hub.has_gate_access(caller, r))
    return h +
           "<p class=\"dv-note\" id=\"dv-gated\">The viewer shows this gated dataset after "
           "its owners grant you access.</p></section>";
  std::string commit;
  try {
    commit = hub.resolve(r, "main");
  } catch (const std::exception&) {
    return {};
  }
  json st;
  const std::string state = viewer_state(*impl_, r, commit, st);
  if (state == "pending")
    return h +
           "<p class=\"dv-note\" id=\"dv-pending\">The conversion to Parquet is running; "
           "reload the page in a moment.</p></section>";
  if (state == "error" && st.value("empty", false)) return {};
  if (state == "error")
    return h +
           "<p class=\"dv-note dv-error\" id=\"dv-error\">The dataset viewer is not "
           "available for this dataset: " +
           esc(st.value("error", std::string())) + "</p></section>";
  const json& configs = st["configs"];
  if (configs.empty()) return {};
  // the chosen config (default: the one marked default, else the first) and split
  const json* c = &configs[0];
  for (const auto& x : configs)
    if (x.value("default", false)) c = &x;
  const std::string want_c = param("config"), want_s = param("split");
  for (const auto& x : configs)
    if (x["config"] == want_c) c = &x;
  const json* s = &(*c)["splits"][0];
  for (const auto& x : (*c)["splits"])
    if (x["split"] == want_s) s = &x;
  const std::string cname = (*c)["config"], sname = (*s)["split"];
  const std::string base = "/datasets/" + hub::percent_encode(r.full_id(), true);
  uint64_t rows_total = 0, pq_total = 0;
  for (const auto& x : configs)
    for (const auto& y : x["splits"]) {
      rows_total += y.value("num_rows", uint64_t{0});
      pq_total += y.value("num_bytes_parquet_files", uint64_t{0});
    }
  h += "<div class=\"dv-meta\"><span class=\"badge\">Auto-converted to Parquet</span> "
       "<span id=\"dv-total-rows\">" +
       std::to_string(rows_total) + " rows</span> &middot; <span id=\"dv-parquet-size\">" +
       esc(hub::human_size(pq_total)) + " of Parquet</span> &middot; <a href=\"" +
       esc(base + "/tree/refs%2Fconvert%2Fparquet") + "\">refs/convert/parquet</a></div>";
  h += "<div class=\"dv-pick\"><span class=\"dv-label\">Subset</span>";
  for (const auto& x : configs) {
    const std::string n = x["config"];
    h += "<a class=\"dv-config" + std::string(&x == c ? " active" : "") + "\" data-config=\"" +
         esc(n) + "\" href=\"" + esc(base + "?config=" + qenc(n)) + "\">" + esc(n) + "</a>";
  }
  h += "</div><div class=\"dv-pick\" id=\"dv-splits\"><span class=\"dv-label\">Split</span>";
  for (const auto& y : (*c)["splits"]) {
    const std::string n = y["split"];
    h += "<a class=\"dv-split" + std::string(&y == s ? " active" : "") + "\" data-split=\"" +
         esc(n) + "\" data-rows=\"" + std::to_string(y.value("num_rows", uint64_t{0})) +
         "\" href=\"" + esc(base + "?config=" + qenc(cname) + "&split=" + qenc(n)) + "\">" +
         esc(n) + " <small>" + std::to_string(y.value("num_rows", uint64_t{0})) +
         " rows &middot; " + esc(hub::human_size(y.value("num_bytes_parquet_files", uint64_t{0}))) +
         (y.value("partial", false) ? " &middot; partial" : "") + "</small></a>";
  }
  h += "</div>";
  const ojson features = split_features(*s);
  h += "<div class=\"dv-scroll\"><table class=\"dv-table\" id=\"dv-rows\" data-config=\"" +
       esc(cname) + "\" data-split=\"" + esc(sname) + "\"><thead><tr><th class=\"dv-idx\">#</th>";
  for (auto it = features.begin(); it != features.end(); ++it)
    h += "<th data-col=\"" + esc(it.key()) + "\">" + esc(it.key()) + "<small>" +
         esc(type_text(it.value())) + "</small></th>";
  h += "</tr></thead><tbody>";
  int i = 0;
  for (const auto& row : (*s)["first_rows"]) {
    h += "<tr class=\"dv-row\"><td class=\"dv-idx\">" + std::to_string(i++) + "</td>";
    for (auto it = features.begin(); it != features.end(); ++it)
      h += "<td>" +
           esc(cell_text(row.is_object() && row.contains(it.key()) ? row[it.key()]
                                                                   : json(nullptr))) +
           "</td>";
    h += "</tr>";
  }
  h += "</tbody></table></div>";
  if (s->value("num_rows", int64_t{0}) > i)
    h += "<p class=\"dv-note\">First " + std::to_string(i) + " rows of " +
         std::to_string(s->value("num_rows", int64_t{0})) +
         ". All rows: <code>GET /datasets-server/rows?dataset=" + esc(r.full_id()) +
         "&amp;config=" + esc(cname) + "&amp;split=" + esc(sname) +
         "&amp;offset=100&amp;length=100</code></p>";
  return h + "</section>";
}

}  // namespace ohm::dataviewer
