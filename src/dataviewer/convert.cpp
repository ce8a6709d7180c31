// The parquet conversion of dataset repos (refs/convert/parquet) and its background worker.
//
// One conversion: the main commit's README.md and data files are copied out of the blob store
// into a work directory, resolved into configs and splits by the datasets module (README
// `configs:`, split-name patterns), each split streamed through Arrow into parquet shards of
// about shard_bytes (up to the cap), the shards stored as LFS blobs, and the branch updated in one
// commit. Any error leaves the branch as it was and is recorded in the status. A commit whose
// data files (paths, blob ids) did not change is not converted again.
#include <arrow/io/api.h>
#include <arrow/util/byte_size.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "ohm/core/error.h"
#include "ohm/datasets/dataset.h"
#include "ohm/datasets/repo.h"
#include "ohm/hub/hash.h"
#include "ohm/hub/validate.h"
#include "state.h"

namespace ohm::dataviewer {

namespace fs = std::filesystem;
using hub::BlobKind;
using hub::CommitOp;
using hub::FileEntry;
using hub::RepoInfo;
using hub::RepoType;

namespace {

constexpr int kFirstRows = 100;
constexpr size_t kFirstRowsBytes = 2u << 20;  // first rows kept per split, about
constexpr size_t kCellKeepBytes = 64u << 10;  // a longer string cell is kept cut (truncated)
constexpr const char* kBranch = "refs/convert/parquet";

// One split's conversion state across its shards.
struct SplitState {
  std::shared_ptr<arrow::RecordBatch> pending;  // rows for the next shard
  double pending_per_row = 0;                   // its Arrow bytes per row (slices share buffers)
  uint64_t bytes = 0, rows = 0;                 // converted so far
  bool capped = false, done = false;
  json first_rows = json::array(), first_cut = json::array();
  size_t first_bytes = 0;
};

// Hands out the source batches until the shard holds about `shard_bytes` of Arrow data (a batch
// over it is sliced, the rest kept for the next shard) or the split's cap is reached.
class ShardReader : public arrow::RecordBatchReader {
 public:
  ShardReader(arrow::RecordBatchReader& src, SplitState& st, const ViewerOptions& opt,
              const std::atomic<bool>& cancel)
      : src_(src), st_(st), opt_(opt), cancel_(cancel) {}
  std::shared_ptr<arrow::Schema> schema() const override { return src_.schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* out) override {
    out->reset();
    if (cancel_) return arrow::Status::Cancelled("the server is stopping");
    if (st_.done || st_.capped || shard_ >= opt_.shard_bytes) return arrow::Status::OK();
    std::shared_ptr<arrow::RecordBatch> b = std::move(st_.pending);
    double per_row = st_.pending_per_row;
    st_.pending.reset();
    while (!b || b->num_rows() == 0) {
      ARROW_RETURN_NOT_OK(src_.ReadNext(&b));
      if (!b) {
        st_.done = true;
        return arrow::Status::OK();
      }
      per_row = static_cast<double>(arrow::util::TotalBufferSize(*b)) /
                static_cast<double>(std::max<int64_t>(1, b->num_rows()));
    }
    const int64_t rows = b->num_rows();
    auto fit = [&](uint64_t room) {  // rows that fit in `room` bytes (at least one)
      return per_row <= 0
                 ? rows
                 : std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(room) / per_row));
    };
    // the split cap (bytes, rows)
    int64_t take = rows;
    const uint64_t cap_room =
        opt_.max_split_bytes > st_.bytes ? opt_.max_split_bytes - st_.bytes : 0;
    if (per_row * static_cast<double>(rows) > static_cast<double>(cap_room))
      take = cap_room ? std::min(take, fit(cap_room)) : 0;
    const uint64_t row_room = opt_.max_split_rows > st_.rows ? opt_.max_split_rows - st_.rows : 0;
    if (static_cast<uint64_t>(take) > row_room) take = static_cast<int64_t>(row_room);
    if (take == 0) {
      st_.capped = true;  // the rest of the split is left out (partial)
      return arrow::Status::OK();
    }
    // the shard size: the rest goes to the next shard (the cap applies to it again there)
    const uint64_t shard_room = opt_.shard_bytes - shard_;
    if (per_row * static_cast<double>(take) > static_cast<double>(shard_room))
      take = std::min(take, fit(shard_room));
    if (take < rows) {
      st_.pending = b->Slice(take);
      st_.pending_per_row = per_row;
      b = b->Slice(0, take);
    }
    const uint64_t used = static_cast<uint64_t>(static_cast<double>(take) * per_row);
    shard_ += std::max<uint64_t>(used, 1);
    st_.bytes += used;
    st_.rows += static_cast<uint64_t>(take);
    keep_first_rows(*b);
    *out = std::move(b);
    return arrow::Status::OK();
  }

 private:
  void keep_first_rows(const arrow::RecordBatch& b) {
    for (int64_t i = 0;
         i < b.num_rows() && static_cast<int64_t>(st_.first_rows.size()) < kFirstRows &&
         st_.first_bytes < kFirstRowsBytes;
         ++i) {
      json row = datasets::row_to_json(b, i);
      json cut = json::array();
      if (row.is_object())
        for (auto it = row.begin(); it != row.end(); ++it)
          if (it.value().is_string() &&
              it.value().get_ref<const std::string&>().size() > kCellKeepBytes) {
            std::string v = it.value().get<std::string>();
            size_t n = kCellKeepBytes;
            while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
            it.value() = v.substr(0, n);
            cut.push_back(it.key());
          }
      st_.first_bytes += row.dump(-1, ' ', false, json::error_handler_t::replace).size();
      st_.first_rows.push_back(std::move(row));
      st_.first_cut.push_back(std::move(cut));
    }
  }
  arrow::RecordBatchReader& src_;
  SplitState& st_;
  const ViewerOptions& opt_;
  const std::atomic<bool>& cancel_;
  uint64_t shard_ = 0;
};

// A feature (datasets' JSON) with its dict keys in the Arrow schema's order: nlohmann::json
// sorts keys, but datasets' Features (and the columns of a table) are ordered.
nlohmann::ordered_json ordered_feature(const json& f, const std::shared_ptr<arrow::DataType>& t) {
  using ojson = nlohmann::ordered_json;
  if (f.is_object() && !f.contains("_type") && t->id() == arrow::Type::STRUCT) {
    ojson o = ojson::object();
    for (const auto& fld : t->fields())
      if (f.contains(fld->name())) o[fld->name()] = ordered_feature(f[fld->name()], fld->type());
    return o;
  }
  if (f.is_object() && f.contains("_type")) {
    ojson o = ojson::object();
    const bool list = t->id() == arrow::Type::LIST || t->id() == arrow::Type::LARGE_LIST ||
                      t->id() == arrow::Type::FIXED_SIZE_LIST;
    for (auto it = f.begin(); it != f.end(); ++it)
      o[it.key()] = it.key() == "feature" && list
                        ? ordered_feature(it.value(),
                                          static_cast<const arrow::BaseListType&>(*t).value_type())
                        : ojson(it.value());
    return o;
  }
  return nlohmann::ordered_json(f);
}

std::string ordered_features(const json& features, const arrow::Schema& schema) {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  for (const auto& fld : schema.fields())
    if (features.contains(fld->name()))
      o[fld->name()] = ordered_feature(features[fld->name()], fld->type());
  return o.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string file_sha256(const std::string& path) {
  hub::Hasher h(hub::Hasher::Algo::Sha256);
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.hex();
}

void put_lfs(hub::Hub& hub, const std::string& path, const std::string& sha256, uint64_t size) {
  if (hub.blobs().has(BlobKind::Lfs, sha256)) return;
  auto w = hub.blobs().lfs_writer();
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) w->write(buf.data(), static_cast<size_t>(in.gcount()));
  }
  w->commit(sha256, size);
}

void copy_blob(hub::Hub& hub, const FileEntry& f, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  auto rd = hub.blobs().open(f.lfs ? BlobKind::Lfs : BlobKind::Git, f.lfs ? f.lfs->sha256 : f.oid);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  for (;;) {
    const size_t n = rd->read_at(off, buf.data(), buf.size());
    if (n == 0) break;
    out.write(buf.data(), static_cast<std::streamsize>(n));
    off += n;
  }
  if (!out) throw IoError(ErrorContext().file(to), "cannot write a work file");
}

// A config or split name that can be a path component of the parquet branch.
void check_component(const std::string& kind, const std::string& name) {
  if (name.empty() || name.size() > 200 || name == "." || name == ".." ||
      name.find('/') != std::string::npos || name.find('\\') != std::string::npos ||
      !hub::check_file_path(name).empty())
    throw InvalidArgument(ErrorContext(),
                          kind + " name '" + name + "' cannot name a folder of the parquet branch");
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

}  // namespace

DatasetViewer::Impl::Impl(hub::Hub& h, ViewerOptions o) : hub(h), opt(std::move(o)) {
  // as private as the rest of the data dir (0700 folders, 0600 files), whatever the umask
  hub::make_private_dir((fs::path(opt.data_dir) / "viewer").string());
  hub::make_private_dir((fs::path(opt.data_dir) / "viewer" / "status").string());
  std::error_code ec;
  fs::remove_all(fs::path(opt.data_dir) / "viewer" / "work", ec);
  hub::make_private_dir((fs::path(opt.data_dir) / "viewer" / "work").string());
}

std::string DatasetViewer::Impl::status_path(int64_t id) const {
  return (fs::path(opt.data_dir) / "viewer" / "status" / (std::to_string(id) + ".json")).string();
}

json DatasetViewer::Impl::status(const RepoInfo& r) {
  json st;
  {
    std::lock_guard l(mu);
    auto it = cache.find(r.id);
    if (it != cache.end()) st = it->second;
  }
  if (st.is_null()) {
    std::ifstream in(status_path(r.id));
    if (in) st = json::parse(in, nullptr, false);
    if (st.is_discarded()) st = nullptr;
    if (!st.is_null()) {
      std::lock_guard l(mu);
      cache[r.id] = st;
    }
  }
  if (!st.is_object() || st.value("repo", "") != r.full_id() ||
      st.value("created_ms", int64_t{0}) != r.created_ms)
    return nullptr;
  return st;
}

void DatasetViewer::Impl::save(int64_t id, const json& st) {
  const std::string p = status_path(id);
  {
    std::ofstream out(p + ".tmp", std::ios::trunc);
    out << st.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  std::error_code ec;
  fs::permissions(p + ".tmp", fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace, ec);
  fs::rename(p + ".tmp", p, ec);
  std::lock_guard l(mu);
  cache[id] = st;
}

bool DatasetViewer::Impl::busy(int64_t id) {
  std::lock_guard l(mu);
  return running == id || queued.count(id);
}

void DatasetViewer::Impl::enqueue(int64_t id) {
  std::lock_guard l(mu);
  if (queued.insert(id).second) queue.push_back(id);
  cv.notify_one();
}

void DatasetViewer::Impl::start() {
  worker = std::thread([this] { run(); });
  // Catch up: repos pushed while the viewer was not running (or before it existed).
  for (auto& r : hub.meta().list_repos(RepoType::Dataset)) enqueue(r.id);
}

void DatasetViewer::Impl::stop() {
  cancel = true;
  {
    std::lock_guard l(mu);
    stopping = true;
    cv.notify_all();
  }
  if (worker.joinable()) worker.join();
}

void DatasetViewer::Impl::run() {
  for (;;) {
    int64_t id = 0;
    {
      std::unique_lock l(mu);
      cv.wait(l, [&] { return stopping || !queue.empty(); });
      if (stopping) return;
      id = queue.front();
      queue.pop_front();
      queued.erase(id);
      running = id;
    }
    try {
      convert(id);
    } catch (...) {  // recorded by convert(); never kills the worker
    }
    std::lock_guard l(mu);
    running = 0;
    if (queue.empty()) idle_cv.notify_all();
  }
}

void DatasetViewer::Impl::convert(int64_t id) {
  auto ro = hub.meta().get_repo_by_id(id);
  if (!ro || ro->type != RepoType::Dataset) return;
  const RepoInfo r = *ro;
  std::string commit;
  try {
    commit = hub.resolve(r, "main");
  } catch (const std::exception&) {
    return;  // no main branch
  }
  const auto files = hub.files(r, commit);
  std::vector<FileEntry> inputs;
  uint64_t original = 0;
  hub::Hasher dh(hub::Hasher::Algo::Sha256);
  for (const auto& f : files) {
    datasets::FileFormat ff;
    const bool readme = f.path == "README.md";
    if (!readme && !datasets::format_of(f.path, ff)) continue;
    inputs.push_back(f);
    dh.update(f.path + '\0' + f.oid + '\n');
    if (!readme) original += f.size;
  }
  const std::string digest = dh.hex();
  json old = status(r);
  if (old.is_object() && old.value("digest", "") == digest) {
    if (old.value("revision", "") != commit) {
      old["revision"] = commit;  // same data: no new convert commit
      save(id, old);
    }
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  json st = {{"repo", r.full_id()},     {"created_ms", r.created_ms},
             {"revision", commit},      {"digest", digest},
             {"state", "ok"},           {"num_bytes_original_files", original},
             {"configs", json::array()}};
  const fs::path work =
      fs::path(opt.data_dir) / "viewer" / "work" / (std::to_string(id) + "-" + hub::random_hex(6));
  hub::make_private_dir(work.string());
  const std::string root = work.string() + "/in";
  auto clean = [&] {
    std::error_code ec;
    fs::remove_all(work, ec);
  };
  uint64_t total_rows = 0;
  // no data files at all (a new repo, a card only): an error for the endpoints, no page section
  st["empty"] = std::none_of(inputs.begin(), inputs.end(),
                             [](const FileEntry& f) { return f.path != "README.md"; });
  try {
    if (original > opt.max_input_bytes)
      throw InvalidArgument(ErrorContext(), "the data files hold " + std::to_string(original) +
                                                " bytes, over this hub's conversion limit of " +
                                                std::to_string(opt.max_input_bytes));
    for (const auto& f : inputs) {
      if (cancel) throw Error(ErrorKind::Invalid, ErrorContext(), "the server is stopping");
      copy_blob(hub, f, root + "/" + f.path);
    }
    const datasets::DatasetLayout layout = datasets::resolve_local(root);
    std::string builder;
    struct Out {
      std::string path, local, sha256;
      uint64_t size;
    };
    std::vector<Out> outs;
    for (const auto& c : layout.configs) {
      check_component("config", c.name);
      json cj = {{"config", c.name},
                 {"default", c.is_default},
                 {"splits", json::array()},
                 {"num_bytes_original_files", 0}};
      uint64_t c_orig = 0;
      for (const auto& s : c.splits) {
        check_component("split", s.name);
        for (const auto& f : s.files) {
          std::error_code ec;
          c_orig += static_cast<uint64_t>(fs::file_size(f, ec));
          datasets::FileFormat ff;
          if (builder.empty() && datasets::format_of(f, ff)) builder = datasets::to_string(ff);
        }
        auto reader = datasets::open_files(s.files);
        const json features = datasets::features_of(*reader->schema());
        SplitState ss;
        struct Shard {
          std::string local;
          uint64_t rows;
        };
        std::vector<Shard> shards;
        for (int n = 0; !ss.done && !ss.capped; ++n) {
          ShardReader sr(*reader, ss, opt, cancel);
          char name[32];
          std::snprintf(name, sizeof name, "%04d.parquet", n);
          const std::string local = work.string() + "/out/" + c.name + "/" + s.name + "/" + name;
          datasets::WriteOptions wo;
          wo.features = features;
          const int64_t rows = datasets::write_file(sr, local, wo);
          if (rows == 0 && n > 0) break;                           // nothing left for this shard
          shards.push_back({local, static_cast<uint64_t>(rows)});  // an empty split: one file
        }
        // when the cap cut the split, say so in the folder name as HF's converter does
        const bool capped = ss.capped;
        const std::string dir = c.name + "/" + (capped ? "partial-" + s.name : s.name);
        json sj = {{"split", s.name},
                   {"dir", dir},
                   {"num_rows", ss.rows},
                   {"num_bytes_memory", ss.bytes},
                   {"partial", capped},
                   {"features", features},
                   {"features_json", ordered_features(features, *reader->schema())},
                   {"columns", json::array()},
                   {"files", json::array()},
                   {"first_rows", ss.first_rows},
                   {"first_rows_truncated", ss.first_cut}};
        for (const auto& fld : reader->schema()->fields()) sj["columns"].push_back(fld->name());
        uint64_t pq = 0;
        for (const auto& sh : shards) {
          const std::string fname = fs::path(sh.local).filename().string();
          Out o{dir + "/" + fname, sh.local, file_sha256(sh.local), fs::file_size(sh.local)};
          pq += o.size;
          sj["files"].push_back({{"filename", fname},
                                 {"path", o.path},
                                 {"size", o.size},
                                 {"num_rows", sh.rows},
                                 {"sha256", o.sha256}});
          outs.push_back(std::move(o));
        }
        sj["num_bytes_parquet_files"] = pq;
        total_rows += ss.rows;
        if (!cj.contains("features")) cj["features"] = features;
        cj["splits"].push_back(std::move(sj));
      }
      cj["num_bytes_original_files"] = c_orig;
      st["configs"].push_back(std::move(cj));
    }
    st["builder_name"] = builder.empty() ? "parquet" : builder;
    // The branch: exactly these files (and .gitattributes); one commit, or none when equal.
    hub.ensure_convert_branch(r, "parquet", commit);
    const std::string tip = hub.resolve(r, kBranch);
    std::map<std::string, std::string> have;  // path -> sha256 ("" for non-LFS files)
    for (const auto& f : hub.files(r, tip)) have[f.path] = f.lfs ? f.lfs->sha256 : "";
    std::vector<CommitOp> ops;
    std::set<std::string> want;
    for (const auto& o : outs) {
      want.insert(o.path);
      auto it = have.find(o.path);
      if (it != have.end() && it->second == o.sha256) continue;
      put_lfs(hub, o.local, o.sha256, o.size);
      CommitOp op;
      op.kind = CommitOp::Kind::LfsFile;
      op.path = o.path;
      op.sha256 = o.sha256;
      op.size = o.size;
      ops.push_back(std::move(op));
    }
    for (const auto& [p, sha] : have)
      if (!want.count(p) && p != ".gitattributes") {
        CommitOp op;
        op.kind = CommitOp::Kind::DeleteFile;
        op.path = p;
        ops.push_back(std::move(op));
      }
    st["parquet_commit"] = tip;
    if (!ops.empty()) {
      auto ci = hub.commit("parquet-converter", r, kBranch, "Update parquet files",
                           "Converted from " + commit + " (ohm dataset viewer)", tip, ops);
      st["parquet_commit"] = ci.id;
    }
  } catch (const std::exception& e) {
    if (cancel) {  // not a verdict on the data: converted again at the next start
      clean();
      return;
    }
    // the work directory is internal: name the repo's files as the repo does
    std::string msg = replace_all(e.what(), root + "/", "");
    msg = replace_all(msg, work.string() + "/out/", "");
    msg = replace_all(msg, root, ".");
    st["state"] = "error";
    st["error"] = msg;
    st["configs"] = json::array();
  }
  clean();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  st["duration_ms"] = ms;
  save(id, st);
  if (opt.log) {
    if (st["state"] == "ok")
      std::cerr << "parquet-converter: " << r.full_id() << "@" << commit.substr(0, 8) << ": "
                << total_rows << " rows in " << static_cast<int64_t>(ms) << " ms\n";
    else
      std::cerr << "parquet-converter: " << r.full_id() << "@" << commit.substr(0, 8)
                << ": failed: " << st["error"].get<std::string>() << "\n";
  }
}

std::string viewer_state(DatasetViewer::Impl& v, const RepoInfo& r, const std::string& commit,
                         json& st) {
  st = v.status(r);
  if (st.is_object() && st.value("revision", "") == commit)
    return st.value("state", "") == "ok" ? "ok" : "error";
  if (!v.busy(r.id)) v.enqueue(r.id);
  return "pending";
}

// ------------------------------------------------------------------ the public class

DatasetViewer::DatasetViewer(hub::Hub& hub, ViewerOptions opt)
    : impl_(std::make_unique<Impl>(hub, std::move(opt))) {
  // The hook may outlive the viewer (the Hub is destroyed after its extensions).
  alive_ = std::make_shared<std::atomic<Impl*>>(impl_.get());
  std::shared_ptr<std::atomic<Impl*>> alive = alive_;
  hub.add_commit_hook(
      [alive](const RepoInfo& r, const std::string& branch, const hub::CommitInfo&) {
        Impl* im = alive->load();
        if (im && r.type == RepoType::Dataset && branch == "main") im->enqueue(r.id);
      });
  impl_->start();
}

DatasetViewer::~DatasetViewer() {
  alive_->store(nullptr);
  impl_->stop();
}

void DatasetViewer::enqueue(int64_t repo_id) {
  impl_->enqueue(repo_id);
}

void DatasetViewer::wait_idle() {
  std::unique_lock l(impl_->mu);
  impl_->idle_cv.wait(l, [&] { return impl_->queue.empty() && impl_->running == 0; });
}

std::shared_ptr<DatasetViewer> install(hub::HubServer& server, ViewerOptions opt) {
  auto v = std::make_shared<DatasetViewer>(server.hub(), std::move(opt));
  server.add_extension(v);
  return v;
}

}  // namespace ohm::dataviewer
