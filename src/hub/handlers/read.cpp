// Read API: repo listings and info, file trees, paths-info, refs, commit history, file
// downloads (with byte ranges), whoami.
#include <functional>
#include <map>
#include <set>

#include "../http/range.h"
#include "../http/reply.h"
#include "handlers.h"
#include "ohm/hub/card.h"
#include "ohm/hub/hash.h"
#include "ohm/safety/encrypt.h"

namespace ohm::hub::handlers {

using namespace http;

void resolve(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  const RepoType t = c.type;
  const std::string& path = c.arg("path");
  RepoInfo r = hub.repo_for_read(c.caller, t, c.ns, c.name);
  hub.check_gate(c.caller, r);
  const std::string commit = hub.resolve(r, c.arg("revision"));
  if (auto e = check_file_path(path); !e.empty()) throw BadRequest("Invalid path: " + e);
  auto f = hub.file(r, commit, path);
  if (!f) throw entry_not_found("Entry not found: " + path, commit);
  const BlobKind kind = f->lfs ? BlobKind::Lfs : BlobKind::Git;
  const std::string key = f->lfs ? f->lfs->sha256 : f->oid;
  std::shared_ptr<BlobReader> rd = hub.blobs().open(kind, key);
  const uint64_t size = rd->size();
  auto& res = c.res;
  res.set_header("X-Repo-Commit", commit);
  res.set_header("ETag", "\"" + key + "\"");
  res.set_header("X-Linked-Etag", "\"" + key + "\"");
  res.set_header("X-Linked-Size", std::to_string(size));
  res.set_header("Accept-Ranges", "bytes");
  res.set_header("Cache-Control", "no-transform");
  const std::string base =
      path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  std::string ascii;
  for (unsigned char ch : base)
    ascii.push_back(ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' ? '_'
                                                                       : static_cast<char>(ch));
  res.set_header("Content-Disposition", "inline; filename*=UTF-8''" + percent_encode(base, false) +
                                            "; filename=\"" + ascii + "\";");
  uint64_t start = 0, end = size;  // [start, end)
  const std::string range = c.req.get_header_value("Range");
  const_cast<httplib::Request&>(c.req).ranges.clear();  // ranges are handled here, not by httplib
  int status = 200;
  if (!range.empty()) {
    auto br = http::parse_byte_range(range, size);
    if (!br) {
      res.set_header("Content-Range", "bytes */" + std::to_string(size));
      throw RangeNotSatisfiable("Requested Range Not Satisfiable: " + range);
    }
    start = br->start, end = br->end, status = 206;
    res.set_header("Content-Range", "bytes " + std::to_string(start) + "-" +
                                        std::to_string(end - 1) + "/" + std::to_string(size));
  }
  res.status = status;
  if (!c.head && start == 0 && Hub::counts_as_download(t, path)) hub.count_download(r);
  const uint64_t len = end - start;
  if (len == 0) {
    res.set_content("", "application/octet-stream");
    return;
  }
  res.set_content_provider(static_cast<size_t>(len), "application/octet-stream",
                           [rd, start, buf = std::make_shared<std::vector<char>>()](
                               size_t offset, size_t length, httplib::DataSink& sink) {
                             // one buffer per response, not one allocation per chunk
                             if (buf->empty()) buf->resize(std::min<size_t>(length, 1u << 20));
                             size_t n = rd->read_at(start + offset, buf->data(),
                                                    std::min(length, buf->size()));
                             if (n == 0) return false;
                             return sink.write(buf->data(), n);
                           });
}

static json sibling_json(const FileEntry& f) {
  json s = {{"rfilename", f.path}, {"size", f.size}, {"blobId", f.oid}};
  if (f.lfs)
    s["lfs"] = {
        {"sha256", f.lfs->sha256}, {"size", f.lfs->size}, {"pointerSize", f.lfs->pointer_size}};
  return s;
}

static json repo_summary(const RepoInfo& r) {
  json j;
  j["_id"] = "ohm" + std::to_string(r.id);
  j["id"] = r.full_id();
  if (r.type == RepoType::Model) j["modelId"] = r.full_id();
  j["author"] = r.ns;
  j["private"] = r.is_private;
  j["gated"] = r.gated.empty() ? json(false) : json(r.gated);
  j["disabled"] = false;
  j["downloads"] = r.downloads;
  j["downloadsAllTime"] = r.downloads;
  j["likes"] = r.likes;
  j["trendingScore"] = 0;
  j["createdAt"] = iso_date(r.created_ms);
  j["lastModified"] = iso_date(r.modified_ms);
  json tags = json::parse(r.tags_json, nullptr, false);
  j["tags"] = tags.is_array() ? tags : json::array();
  if (!r.pipeline_tag.empty()) j["pipeline_tag"] = r.pipeline_tag;
  if (!r.library_name.empty()) j["library_name"] = r.library_name;
  return j;
}

// `expand=evalResults` (or `expand[]=evalResults`): the card's model-index results in the shape
// huggingface_hub's ModelInfo.eval_results reads ({dataset: {id, task_id}, value}), with ohm's
// extra keys (task, metric, stderr, verified, modelName). `expand=model-index`: the card's
// model-index as written. Both are empty/absent for callers who may not read the repo's files
// (Hub::can_read_eval_results), and so is cardData's model-index.
static bool expands(Request& c, const char* field) {
  for (const char* k : {"expand", "expand[]"})
    for (auto& v : c.params(k))
      if (v == field) return true;
  return false;
}

static json eval_results_json(const RepoInfo& r) {
  json out = json::array();
  json rows = json::parse(r.eval_json, nullptr, false);
  if (!rows.is_array()) return out;
  auto member = [](const json& o, const char* k) { return o.contains(k) ? o[k] : json(); };
  for (auto& row : rows) {
    // the shape eval_results_from_card writes; anything else is skipped
    if (!row.is_object() || !row.contains("dataset") || !row["dataset"].is_object() ||
        !row.contains("value") || !row["value"].is_number())
      continue;
    const json& ds = row["dataset"];
    json e = {{"dataset",
               {{"id", member(ds, "type")},
                {"task_id", ds.contains("config") ? ds["config"] : member(ds, "type")},
                {"name", member(ds, "name")}}},
              {"value", row["value"]},
              {"task", member(row, "task")},
              {"metric", member(row, "metric")},
              {"verified", member(row, "verified") == true},
              {"modelName", member(row, "model")}};
    for (const char* k : {"split", "revision", "args"})
      if (ds.contains(k)) e["dataset"][k] = ds[k];
    if (row.contains("stderr")) e["stderr"] = row["stderr"];
    out.push_back(std::move(e));
  }
  return out;
}

// cardData / evalResults / model-index as the caller may see them.
static void add_card_fields(Request& c, Hub& hub, const RepoInfo& r, json& j,
                            const std::function<json()>& load_card, bool card_data) {
  const bool want_mi = expands(c, "model-index"), want_evals = expands(c, "evalResults");
  if (!card_data && !want_mi && !want_evals) return;
  json card = load_card();
  const bool evals = r.type == RepoType::Model && hub.can_read_eval_results(c.caller, r);
  if (!evals && card.is_object()) card.erase("model-index");
  if (want_mi && r.type == RepoType::Model)
    j["model-index"] = evals && card.is_object() && card.contains("model-index")
                           ? card["model-index"]
                           : json(nullptr);
  if (want_evals && r.type == RepoType::Model)
    j["evalResults"] = evals ? eval_results_json(r) : json::array();
  if (card_data) j["cardData"] = std::move(card);
}

void repo_info(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  const RepoType t = c.type;
  const std::string& rev = c.arg("revision");
  RepoInfo r = hub.repo_for_read(c.caller, t, c.ns, c.name);
  const std::string commit = hub.resolve(r, rev.empty() ? "main" : rev);
  auto files = hub.files(r, commit);
  json j = repo_summary(r);
  j["sha"] = commit;
  json card = hub.card(r, commit);
  add_card_fields(
      c, hub, r, j, [&] { return card; }, true);
  std::vector<std::string> paths;
  json sib = json::array();
  uint64_t used = 0;
  for (auto& f : files) {
    paths.push_back(f.path);
    sib.push_back(sibling_json(f));
    used += f.size;
  }
  j["tags"] = derive_tags(card, paths);
  if (card.contains("pipeline_tag") && card["pipeline_tag"].is_string())
    j["pipeline_tag"] = card["pipeline_tag"];
  if (card.contains("library_name") && card["library_name"].is_string())
    j["library_name"] = card["library_name"];
  j["siblings"] = sib;
  j["usedStorage"] = used;
  if (t == RepoType::Model) {
    // ohm's model signing (docs/safety.md): model.sig checked against the hub's trusted keys.
    const SignatureStatus st = hub.signature_status(r, commit);
    json s = {{"signed", st.is_signed}, {"verified", st.verified}};
    if (!st.key_fingerprint.empty()) s["keyFingerprint"] = st.key_fingerprint;
    if (!st.key_name.empty()) s["keyName"] = st.key_name;
    if (st.is_signed && !st.verified) s["reason"] = st.reason;
    j["signature"] = s;
  }
  j["spaces"] = json::array();
  j["xetEnabled"] = false;
  if (auto cf = hub.file(r, commit, "config.json");
      cf && !cf->lfs && cf->size < (1u << 20) && t == RepoType::Model) {
    json cfg = json::parse(hub.blobs().read_all(BlobKind::Git, cf->oid, 1u << 20), nullptr, false);
    if (cfg.is_object()) {
      json sub = json::object();
      for (const char* k : {"architectures", "model_type"})
        if (cfg.contains(k)) sub[k] = cfg[k];
      j["config"] = sub;
    }
  }
  if (t == RepoType::Dataset) {
    j["description"] = "";
    j["citation"] = "";
    j["paperswithcode_id"] = nullptr;
  }
  if (t == RepoType::Space && card.contains("sdk")) j["sdk"] = card["sdk"];
  send_json(c, j);
}

void list_repos(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  const RepoType t = c.type;
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    return s;
  };
  const std::string author = lower(c.param("author"));
  std::vector<std::string> searches, filters = c.params("filter");
  for (auto& s : c.params("search")) searches.push_back(lower(s));
  for (const char* k : {"pipeline_tag", "library", "language"})
    for (auto& v : c.params(k)) filters.push_back(v);
  const bool full = truthy(c.param("full"));
  const bool card_data = full || truthy(c.param("cardData"));
  std::vector<RepoInfo> out;
  for (auto& r : hub.meta().list_repos(t)) {
    if (!hub.can_read(c.caller, r)) continue;
    if (!author.empty() && lower(r.ns) != author) continue;
    const std::string id = lower(r.full_id());
    bool ok = true;
    for (auto& s : searches)
      if (id.find(s) == std::string::npos) ok = false;
    if (ok && !filters.empty()) {
      json tags = json::parse(r.tags_json, nullptr, false);
      std::set<std::string> ts;
      if (tags.is_array())
        for (auto& x : tags)
          if (x.is_string()) ts.insert(x.get<std::string>());
      ts.insert(r.pipeline_tag);
      ts.insert(r.library_name);
      for (auto& f : filters)
        if (!ts.count(f)) ok = false;
    }
    if (ok) out.push_back(std::move(r));
  }
  const std::string sort = c.param("sort");
  const bool asc = c.param("direction") == "1";
  auto key = [&](const RepoInfo& r) -> int64_t {
    if (sort == "downloads" || sort == "trendingScore" || sort == "trending_score")
      return r.downloads;
    if (sort == "likes") return r.likes;
    if (sort == "lastModified" || sort == "last_modified") return r.modified_ms;
    if (sort == "createdAt" || sort == "created_at") return r.created_ms;
    return 0;
  };
  if (!sort.empty())
    std::stable_sort(out.begin(), out.end(), [&](const RepoInfo& a, const RepoInfo& b) {
      return asc ? key(a) < key(b) : key(a) > key(b);
    });
  size_t page = svc.opt.page_size;
  if (std::string l = c.param("limit"); !l.empty()) {
    if (l.size() > 9 || l.find_first_not_of("0123456789") != std::string::npos)
      throw BadRequest("invalid limit");
    page = std::min<size_t>(page, std::max<size_t>(1, std::stoull(l)));
  }
  const size_t from = std::min(cursor(c), out.size());
  const size_t to = std::min(out.size(), from + page);
  json arr = json::array();
  for (size_t i = from; i < to; ++i) {
    json j = repo_summary(out[i]);
    add_card_fields(
        c, hub, out[i], j, [&] { return json::parse(out[i].card_json, nullptr, false); },
        card_data);
    if (full) {
      const std::string sha = hub.resolve(out[i], "main");
      j["sha"] = sha;
      json sib = json::array();
      for (auto& f : hub.files(out[i], sha)) sib.push_back({{"rfilename", f.path}});
      j["siblings"] = sib;
    }
    arr.push_back(std::move(j));
  }
  if (to < out.size()) set_next_link(c, to);
  send_json(c, arr);
}

static std::string dir_oid(const std::vector<FileEntry>& files, const std::string& dir) {
  Hasher h(Hasher::Algo::Sha1);
  const std::string pre = dir + "/";
  for (auto& f : files)
    if (f.path.starts_with(pre)) h.update(f.path + ":" + f.oid + "\n");
  return h.hex();
}

static json entry_json(Hub& hub, const RepoInfo& r, const std::string& commit,
                       const std::vector<FileEntry>& files, const std::string& path,
                       const FileEntry* f, bool expand) {
  json e;
  if (f) {
    e = {{"type", "file"}, {"oid", f->oid}, {"size", f->size}, {"path", f->path}};
    if (f->lfs)
      e["lfs"] = {
          {"oid", f->lfs->sha256}, {"size", f->lfs->size}, {"pointerSize", f->lfs->pointer_size}};
    // ohm-encrypted (`ohm push --encrypt` names them *.ohmenc; docs/encryption.md). An extra key
    // that huggingface_hub's RepoFile ignores.
    if (f->path.ends_with(safety::kEncSuffix)) e["encrypted"] = true;
  } else {
    e = {{"type", "directory"}, {"oid", dir_oid(files, path)}, {"size", 0}, {"path", path}};
  }
  if (expand) {
    if (auto lc = hub.last_change(r, commit, path))
      e["lastCommit"] = {{"id", lc->id}, {"title", lc->title}, {"date", iso_date(lc->date_ms)}};
  }
  return e;
}

void tree(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  RepoInfo r = hub.repo_for_read(c.caller, c.type, c.ns, c.name);
  const std::string commit = hub.resolve(r, c.arg("revision"));
  std::string path = c.arg("path");
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (!path.empty())
    if (auto e = check_file_path(path); !e.empty()) throw BadRequest("Invalid path: " + e);
  const bool recursive = truthy(c.param("recursive"));
  const bool expand = truthy(c.param("expand"));
  auto files = hub.files(r, commit);
  const std::string pre = path.empty() ? "" : path + "/";
  std::map<std::string, const FileEntry*> entries;  // path -> file (nullptr: directory)
  for (auto& f : files) {
    if (!f.path.starts_with(pre)) continue;
    const std::string rel = f.path.substr(pre.size());
    size_t slash = rel.find('/');
    if (!recursive) {
      if (slash == std::string::npos)
        entries[f.path] = &f;
      else
        entries.emplace(pre + rel.substr(0, slash), nullptr);
    } else {
      entries[f.path] = &f;
      while (slash != std::string::npos) {
        entries.emplace(pre + rel.substr(0, slash), nullptr);
        slash = rel.find('/', slash + 1);
      }
    }
  }
  if (entries.empty() && !path.empty()) throw entry_not_found("Entry not found: " + path, commit);
  std::vector<std::pair<std::string, const FileEntry*>> list(entries.begin(), entries.end());
  const size_t from = std::min(cursor(c), list.size());
  const size_t to = std::min(list.size(), from + svc.opt.page_size);
  json arr = json::array();
  for (size_t i = from; i < to; ++i)
    arr.push_back(entry_json(hub, r, commit, files, list[i].first, list[i].second, expand));
  if (to < list.size()) set_next_link(c, to);
  send_json(c, arr);
}

void paths_info(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  RepoInfo r = hub.repo_for_read(c.caller, c.type, c.ns, c.name);
  const std::string commit = hub.resolve(r, c.arg("revision"));
  const std::string body = read_body(c, svc.opt.max_json_bytes);
  std::vector<std::string> paths;
  bool expand = false;
  if (c.req.get_header_value("Content-Type").starts_with("application/json")) {
    json j = parse_object(body, "paths-info body");
    if (j.contains("paths") && j["paths"].is_array())
      for (auto& p : j["paths"])
        if (p.is_string()) paths.push_back(p.get<std::string>());
    expand = j.value("expand", false) == true;
  } else {
    for (auto& [k, v] : parse_form(body)) {
      if (k == "paths") paths.push_back(v);
      if (k == "expand") expand = truthy(v);
    }
  }
  auto files = hub.files(r, commit);
  json arr = json::array();
  for (auto p : paths) {
    while (!p.empty() && p.back() == '/') p.pop_back();
    if (!check_file_path(p).empty()) continue;
    const FileEntry* hit = nullptr;
    bool dir = false;
    for (auto& f : files) {
      if (f.path == p)
        hit = &f;
      else if (f.path.starts_with(p + "/"))
        dir = true;
    }
    if (hit || dir) arr.push_back(entry_json(hub, r, commit, files, p, hit, expand));
  }
  send_json(c, arr);
}

void refs(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  RepoInfo r = hub.repo_for_read(c.caller, c.type, c.ns, c.name);
  json branches = json::array(), tags = json::array(), converts = json::array();
  for (auto& ref : hub.meta().refs(r.id)) {
    if (!ref.is_tag && Hub::is_convert_ref(ref.name)) {  // refs/convert/parquet
      converts.push_back(
          {{"name", ref.name.substr(13)}, {"ref", ref.name}, {"targetCommit", ref.commit}});
      continue;
    }
    json e = {{"name", ref.name},
              {"ref", (ref.is_tag ? "refs/tags/" : "refs/heads/") + ref.name},
              {"targetCommit", ref.commit}};
    (ref.is_tag ? tags : branches).push_back(e);
  }
  json j = {{"branches", branches}, {"converts", converts}, {"tags", tags}};
  if (truthy(c.param("include_prs"))) j["pullRequests"] = json::array();
  send_json(c, j);
}

void commits(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  RepoInfo r = hub.repo_for_read(c.caller, c.type, c.ns, c.name);
  const std::string commit = hub.resolve(r, c.arg("revision"));
  const size_t page = svc.opt.page_size;
  const size_t from = cursor(c);
  auto hist = hub.history(r, commit, from + page + 1);
  const bool formatted = !c.params("expand[]").empty() || !c.params("expand").empty();
  json arr = json::array();
  for (size_t i = from; i < hist.size() && i < from + page; ++i) {
    const auto& h = hist[i];
    json e = {{"id", h.id},
              {"title", h.title},
              {"message", h.message},
              {"date", iso_date(h.date_ms)},
              {"authors", json::array({{{"user", h.author}}})}};
    if (formatted) e["formatted"] = {{"title", h.title}, {"message", h.message}};
    arr.push_back(e);
  }
  if (hist.size() > from + page) set_next_link(c, from + page);
  send_json(c, arr);
}

void whoami(Service& svc, Request& c) {
  if (c.caller.anonymous()) throw Unauthorized("Invalid user token. Please provide a valid token.");
  auto u = svc.hub.meta().get_user(c.caller.user);
  json orgs = json::array();
  for (auto& o : c.caller.orgs)
    orgs.push_back({{"type", "org"}, {"name", o}, {"fullname", o}, {"roleInOrg", "write"}});
  send_json(
      c, {{"type", "user"},
          {"id", "ohm-" + c.caller.user},
          {"name", c.caller.user},
          {"fullname", u ? u->fullname : ""},
          {"email", u && !u->email.empty() ? json(u->email) : json(nullptr)},
          {"emailVerified", true},
          {"isPro", false},
          {"canPay", false},
          {"orgs", orgs},
          {"auth",
           {{"type", "access_token"},
            {"accessToken", {{"displayName", c.caller.token_name}, {"role", c.caller.scope}}}}}});
}

// GET .../auth-check (HfApi.auth_check): {} when the caller may read the repo, its gate included;
// otherwise the errors a download would get (RepoNotFound, GatedRepo).
void auth_check(Service& svc, Request& c) {
  RepoInfo r = svc.hub.repo_for_read(c.caller, c.type, c.ns, c.name);
  svc.hub.check_gate(c.caller, r);
  send_json(c, json::object());
}

// GET .../auth-check/write (auth_check(write=True)): {} when the caller may write to the repo.
void auth_check_write(Service& svc, Request& c) {
  svc.hub.repo_for_write(c.caller, c.type, c.ns, c.name);
  send_json(c, json::object());
}

}  // namespace ohm::hub::handlers
