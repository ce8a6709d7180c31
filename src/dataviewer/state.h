// The viewer's shared state: the conversion queue and worker, and the per-repo status records
// (data_dir/viewer/status/<repo id>.json). Private to src/dataviewer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "ohm/dataviewer/viewer.h"
#include "ohm/hub/hub.h"

namespace ohm::dataviewer {

using json = nlohmann::json;

// A status record (one per dataset repo, JSON):
//   repo, created_ms        the repo it belongs to (a re-created repo with the same id is new)
//   revision                the main commit it describes
//   digest                  sha256 over the data files' paths and ids (and README.md's)
//   state                   "ok" | "error"
//   error                   the conversion error (state "error")
//   parquet_commit          the refs/convert/parquet commit
//   builder_name            the original files' format ("json", "csv", "parquet", ...)
//   num_bytes_original_files
//   configs: [{config, default, features, num_bytes_original_files, splits: [{split, dir,
//             num_rows, num_bytes_parquet_files, num_bytes_memory, partial,
//             files: [{filename, path, size, num_rows, sha256}], first_rows: [row...]}]}]
struct DatasetViewer::Impl {
  Impl(hub::Hub& h, ViewerOptions o);
  hub::Hub& hub;
  ViewerOptions opt;

  std::mutex mu;
  std::condition_variable cv, idle_cv;
  std::deque<int64_t> queue;
  std::set<int64_t> queued;
  int64_t running = 0;
  bool stopping = false;
  std::atomic<bool> cancel{false};  // set at stop(): a running conversion gives up (not recorded)
  std::map<int64_t, json> cache;
  std::thread worker;

  void start();
  void stop();
  void enqueue(int64_t id);
  void run();
  void convert(int64_t id);
  // The status of repo `r` (null when none is stored or it belongs to another repo).
  json status(const hub::RepoInfo& r);
  void save(int64_t id, const json& st);
  bool busy(int64_t id);
  std::string status_path(int64_t id) const;
};

// "ok": `st` describes `commit`; "error": it does, and the conversion failed; "pending": a
// conversion is queued or running (or was just queued because none was stored).
std::string viewer_state(DatasetViewer::Impl& v, const hub::RepoInfo& r, const std::string& commit,
                         json& st);

}  // namespace ohm::dataviewer
