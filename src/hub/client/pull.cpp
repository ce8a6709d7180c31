// ohm pull: a repo snapshot into the huggingface_hub cache layout (resumable, verified,
// parallel downloads; offline mode from the cache).
#include "ohm/hub/client.h"

#include "transport.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <thread>

#include "ohm/core/atomic_file.h"
#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"
#include "ohm/hub/hash.h"

namespace ohm::hub {

using namespace client_detail;

namespace {

void write_atomic(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  {
    std::ifstream in(p, std::ios::binary);
    std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.good() || in.eof())
      if (old == content) return;
  }
  write_file_atomic(p.string(), content);
}

std::string repo_folder(RepoType t, const std::string& id) {
  std::string folder = std::string(plural(t)) + "--" + id;
  folder.replace(folder.find('/'), 1, "--");
  return folder;
}

PullResult pull_offline(const PullOptions& opt, const fs::path& cache, const fs::path& repo_dir) {
  std::string commit;
  if (is_hex(opt.revision, 40)) {
    commit = opt.revision;
  } else {
    std::ifstream f(repo_dir / "refs" / opt.revision);
    std::getline(f, commit);
  }
  const std::string where =
      std::string(to_string(opt.type)) + " " + opt.repo_id + " at revision '" + opt.revision + "'";
  const fs::path snap = repo_dir / "snapshots" / commit;
  if (!is_hex(commit, 40) || !fs::is_directory(snap))
    throw NotFoundError("offline mode (HF_HUB_OFFLINE): " + where + " is not in the cache " +
                        cache.string() + "; run without HF_HUB_OFFLINE to download it");
  PullResult res;
  res.commit = commit;
  res.snapshot_dir = snap.string();
  for (auto it = fs::recursive_directory_iterator(snap); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_directory()) continue;
    const std::string rel = it->path().lexically_relative(snap).generic_string();
    if (!opt.include.empty() && !glob_match(opt.include, rel)) continue;
    if (!fs::exists(it->path()))
      throw NotFoundError("offline mode (HF_HUB_OFFLINE): " + where + ": " + rel +
                          " points to a missing blob");
    ++res.files;
    if (opt.log) *opt.log << rel << "\n";
  }
  if (res.files == 0)
    throw NotFoundError("offline mode (HF_HUB_OFFLINE): " + where + ": no cached file matches in " +
                        snap.string());
  return res;
}

// Appends to a file and hashes on a second thread while the network thread fills the next buffer
// (so receiving, writing and hashing overlap).
class BlobSink {
 public:
  BlobSink(const fs::path& p, Hasher& h) : path_(p), h_(h) {
    fd_ = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(ErrorContext().file(p.string()), "cannot open for writing");
    cur_.reserve(kBuf);
    work_.reserve(kBuf);
    th_ = std::thread([this] { loop(); });
  }
  ~BlobSink() {
    try {
      finish();
    } catch (...) {
    }
  }
  bool write(const char* d, size_t n) {
    cur_.append(d, n);
    return cur_.size() < kBuf || hand_over();
  }
  // Flushes everything; throws IoError when a write failed.
  void finish() {
    if (fd_ < 0) return;
    hand_over();
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return !pending_; });
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
    ::close(fd_);
    fd_ = -1;
    if (!error_.empty()) throw IoError(ErrorContext().file(path_.string()), error_);
  }

 private:
  static constexpr size_t kBuf = 4u << 20;
  bool hand_over() {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return !pending_; });
    if (!error_.empty()) return false;
    if (cur_.empty()) return true;
    std::swap(cur_, work_);
    cur_.clear();
    pending_ = true;
    cv_.notify_all();
    return true;
  }
  void loop() {
    std::unique_lock l(mu_);
    while (true) {
      cv_.wait(l, [&] { return pending_ || stop_; });
      if (!pending_) return;
      l.unlock();
      std::string err;
      for (size_t off = 0; off < work_.size() && err.empty();) {
        const ssize_t w = ::write(fd_, work_.data() + off, work_.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = std::string("write failed: ") + std::strerror(errno);
        off += w > 0 ? static_cast<size_t>(w) : 0;
      }
      if (err.empty()) h_.update(work_.data(), work_.size());
      l.lock();
      if (!err.empty()) error_ = err;
      pending_ = false;
      cv_.notify_all();
    }
  }

  fs::path path_;
  Hasher& h_;
  int fd_ = -1;
  std::string cur_, work_;  // filled by the caller / written by the thread
  std::thread th_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, stop_ = false;
  std::string error_;
};

// Downloads one file into blobs/<etag> (resuming <etag>.incomplete), verifying its hash.
void download_blob(Client& c, const std::string& url, const RemoteFile& f, const fs::path& blob,
                   Progress& progress, std::atomic<uint64_t>& bytes) {
  const fs::path part = blob.string() + ".incomplete";
  uint64_t have = fs::exists(part) ? fs::file_size(part) : 0;
  if (have > f.size) fs::resize_file(part, 0), have = 0;
  auto new_hasher = [&] {
    auto h = std::make_unique<Hasher>(f.lfs ? Hasher::Algo::Sha256 : Hasher::Algo::Sha1);
    if (!f.lfs) {
      const std::string hdr = "blob " + std::to_string(f.size);
      h->update(hdr.c_str(), hdr.size() + 1);
    }
    return h;
  };
  auto hs = new_hasher();
  if (have > 0) hash_file(*hs, part, have), progress.add(have);
  std::string last_error;
  for (int attempt = 0; attempt < 5 && (have < f.size || (f.size == 0 && attempt == 0));
       ++attempt) {
    httplib::Headers h;
    if (have > 0) h.emplace("Range", "bytes=" + std::to_string(have) + "-");
    bool restart = false;
    std::optional<httplib::Result> res;
    {
      BlobSink out(part, *hs);
      res.emplace(c.Get(
          url, h,
          [&](const httplib::Response& resp) {
            if (have > 0 && resp.status == 200) {  // range ignored: start over
              restart = true;
              return false;
            }
            return resp.status == 200 || resp.status == 206;
          },
          [&](const char* d, size_t n) {
            if (have + n > f.size) return false;  // more than announced
            have += n;
            bytes += n;
            progress.add(n);
            return out.write(d, n);
          }));
      out.finish();
    }
    const httplib::Result& r = *res;
    if (restart) {
      fs::resize_file(part, 0);
      have = 0;
      hs = new_hasher();
      continue;
    }
    if (r && r->status != 200 && r->status != 206) http_fail(c, "GET " + url, r);
    if (!r) last_error = ": " + network_error(r.error(), c.origin());
    if (r && f.size == 0) break;
  }
  if (have != f.size)
    throw IoError("download of " + f.path + " incomplete: " + std::to_string(have) + " of " +
                  std::to_string(f.size) + " bytes" + last_error + " (rerun to resume)");
  const std::string got = hs->hex();
  if (got != f.etag) {
    fs::remove(part);
    throw FormatError(f.path + ": checksum mismatch (expected " + f.etag + ", got " + got + ")");
  }
  fs::rename(part, blob);
}

}  // namespace

PullResult pull(const PullOptions& opt) {
  check_repo_id(opt.repo_id);
  if (auto e = check_revision(opt.revision); !e.empty()) throw InvalidArgument(e);
  const fs::path cache = opt.cache_dir.empty() ? hf_hub_cache_dir() : opt.cache_dir;
  const fs::path repo_dir = cache / repo_folder(opt.type, opt.repo_id);
  if (opt.offline || offline_mode()) return pull_offline(opt, cache, repo_dir);

  const Endpoint ep = parse_endpoint(opt.endpoint.empty() ? default_endpoint() : opt.endpoint);
  const std::string token = opt.token.empty() ? default_token() : opt.token;
  auto cli = make_client(ep.origin, token);
  const std::string api = ep.prefix + "/api/" + plural(opt.type) + "/" + opt.repo_id;
  const std::string commit =
      get_json(*cli, api + "/revision/" + percent_encode(opt.revision, false), nullptr)
          .at("sha")
          .get<std::string>();
  if (!is_hex(commit, 40)) throw FormatError("server returned an invalid commit '" + commit + "'");

  std::vector<RemoteFile> files;
  for (auto& f : list_tree(*cli, ep, api, commit))
    if (opt.include.empty() || glob_match(opt.include, f.path)) files.push_back(std::move(f));

  PullResult res;
  res.commit = commit;
  res.snapshot_dir = (repo_dir / "snapshots" / commit).string();
  res.files = files.size();
  fs::create_directories(repo_dir / "blobs");
  uint64_t total = 0;
  size_t missing = 0;
  for (auto& f : files)
    if (!fs::exists(repo_dir / "blobs" / f.etag)) total += f.size, ++missing;
  std::atomic<size_t> downloaded{0};
  std::atomic<uint64_t> bytes{0};
  std::mutex mu;
  Progress progress(opt.progress && missing > 0, "Downloading", total, missing);
  std::vector<std::unique_ptr<Client>> clients;
  std::mutex cmu;
  parallel_for(files.size(), opt.parallel, [&](size_t i) {
    const RemoteFile& f = files[i];
    const fs::path blob = repo_dir / "blobs" / f.etag;
    if (!fs::exists(blob)) {
      std::unique_ptr<Client> c;
      {
        std::lock_guard l(cmu);
        if (!clients.empty()) c = std::move(clients.back()), clients.pop_back();
      }
      if (!c) c = make_client(ep.origin, token);
      const std::string url = ep.prefix + "/" + url_prefix(opt.type) + opt.repo_id + "/resolve/" +
                              commit + "/" + percent_encode(f.path, true);
      download_blob(*c, url, f, blob, progress, bytes);
      {
        std::lock_guard l(cmu);
        clients.push_back(std::move(c));
      }
      ++downloaded;
      progress.file_done();
    }
    const fs::path link = repo_dir / "snapshots" / commit / f.path;
    fs::create_directories(link.parent_path());
    std::error_code ec;
    fs::remove(link, ec);
    fs::create_symlink(fs::relative(blob, link.parent_path()), link);
    if (opt.log) {
      std::lock_guard l(mu);
      *opt.log << f.path << "\n";
    }
  });
  progress.finish();
  fs::create_directories(res.snapshot_dir);
  if (opt.revision != commit) write_atomic(repo_dir / "refs" / opt.revision, commit);
  res.downloaded = downloaded;
  res.bytes = bytes;
  return res;
}

}  // namespace ohm::hub
