// The Hub's dataset side (docs/hub.md, "Dataset viewer"): every commit to a dataset repo's main
// branch is converted, in a background worker, to parquet on the repo's refs/convert/parquet
// branch (<config>/<split>/0000.parquet, 0001.parquet, ... as HF's parquet-converter lays it
// out; <config>/partial-<split>/ when the split was cut at the cap), and the datasets-server
// endpoints (/splits, /parquet, /first-rows, /rows, /size, /info, /is-valid) plus the Hub's
// /api/datasets/{id}/parquet[/{config}[/{split}[/{n}.parquet]]] answer from it, with the Hub's
// access rules (private and gated repos are exactly as visible as the repo). The repo's web page
// shows its splits, sizes and first rows.
//
// Sits above hub and datasets (Arrow): `ohm hub serve` installs it when the build has Arrow.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "ohm/hub/extension.h"
#include "ohm/hub/server.h"

namespace ohm::dataviewer {

struct ViewerOptions {
  std::string data_dir;  // the Hub's data dir; status files go to data_dir/viewer/
  // The cap (HF converts the first 5 GB of a split, "partial"): a split is converted up to this
  // many bytes of Arrow (in-memory) data or this many rows, whichever comes first; the rest is
  // left out and the split marked partial (its files under <config>/partial-<split>/).
  uint64_t max_split_bytes = 1ull << 30;
  uint64_t max_split_rows = 100'000'000;
  // Data files (the repo's original files) materialised for one conversion; over it the
  // conversion fails with a recorded error.
  uint64_t max_input_bytes = 8ull << 30;
  uint64_t shard_bytes = 256ull << 20;  // Arrow bytes per parquet file (and its row groups)
  bool log = true;                      // one stderr line per conversion
};

class DatasetViewer;

// Creates the viewer for `server`'s Hub (a commit hook and a worker thread that also converts
// dataset repos whose conversion is missing or stale) and adds it as an extension.
std::shared_ptr<DatasetViewer> install(hub::HubServer& server, ViewerOptions opt);

class DatasetViewer : public hub::HubExtension {
 public:
  DatasetViewer(hub::Hub& hub, ViewerOptions opt);
  ~DatasetViewer() override;
  DatasetViewer(const DatasetViewer&) = delete;
  DatasetViewer& operator=(const DatasetViewer&) = delete;

  bool claims(const std::vector<std::string>& seg, const std::string& host) const override;
  hub::ExtensionReply handle(hub::Hub& hub, const hub::ExtensionRequest& req) override;
  std::string repo_page_section(
      hub::Hub& hub, const hub::Caller& caller, const hub::RepoInfo& r,
      const std::function<std::string(const std::string&)>& param) override;

  // Queues a repo (by id) for conversion; the worker skips it when its data did not change.
  void enqueue(int64_t repo_id);
  // Blocks until the queue is empty and the worker idle (tests, shutdown).
  void wait_idle();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<std::atomic<Impl*>> alive_;
};

}  // namespace ohm::dataviewer
