// The web UI's pages: repo lists, repo pages (card, files, commits, blobs), login and admin.
#include "ohm/hub/webui.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "../http/errors.h"
#include "assets.h"
#include "ohm/core/error.h"
#include "ohm/safety/encrypt.h"

namespace ohm::hub {

namespace {

using json = nlohmann::json;

std::string esc(std::string_view s) {
  return html_escape(s);
}
std::string enc(const std::string& s) {
  return percent_encode(s, false);
}
std::string enc_path(const std::string& s) {
  return percent_encode(s, true);
}
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
std::string short_date(int64_t ms) {
  const std::string d = iso_date(ms);
  return "<time datetime=\"" + d + "\">" + d.substr(0, 10) + " " + d.substr(11, 5) + "</time>";
}
std::string repo_path(const RepoInfo& r) {
  return "/" + std::string(url_prefix(r.type)) + enc(r.ns) + "/" + enc(r.name);
}
const char* type_title(RepoType t) {
  return t == RepoType::Model ? "Models" : t == RepoType::Dataset ? "Datasets" : "Spaces";
}
const char* card_title(RepoType t) {
  return t == RepoType::Model ? "Model card" : t == RepoType::Dataset ? "Dataset card" : "App card";
}

// The page being rendered (set by the public entry points for the duration of one render).
thread_local const Caller* t_caller = nullptr;
thread_local const WebContext* t_ctx = nullptr;
struct RenderScope {
  RenderScope(const Caller& c, const WebContext& x) {
    t_caller = &c;
    t_ctx = &x;
  }
  ~RenderScope() {
    t_caller = nullptr;
    t_ctx = nullptr;
  }
};

std::string csrf_field() {
  return t_ctx ? "<input type=\"hidden\" name=\"csrf\" value=\"" + esc(t_ctx->csrf) + "\">"
               : std::string();
}

// Who is browsing: a login link, or the user (admins: an Admin link) and a logout form.
std::string user_area() {
  if (!t_caller || t_caller->anonymous()) return "<a id=\"login-link\" href=\"/login\">Log in</a>";
  std::string h = "<span id=\"current-user\">" + esc(t_caller->user) + "</span>";
  if (t_caller->admin) h += "<a id=\"admin-link\" href=\"/admin\">Admin</a>";
  if (t_ctx && !t_ctx->csrf.empty())
    h += "<form class=\"inline\" method=\"post\" action=\"/logout\">" + csrf_field() +
         "<button type=\"submit\" id=\"logout\">Log out</button></form>";
  return h;
}

std::string layout(const std::string& title, const std::string& body) {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>" +
         esc(title) +
         " · ohm hub</title><link rel=\"stylesheet\" href=\"/static/ohm.css\">"
         "<script src=\"/static/ohm.js\" defer></script></head><body>"
         "<header class=\"top\"><a class=\"brand\" href=\"/\">ohm <span>hub</span></a><nav>"
         "<a href=\"/models\">Models</a><a href=\"/datasets\">Datasets</a>"
         "<a href=\"/spaces\">Spaces</a><a href=\"/leaderboard\">Leaderboard</a></nav><div "
         "class=\"user\">" +
         user_area() + "</div></header><main>" + body +
         "</main><footer>ohm hub · Hugging Face Hub compatible "
         "(HF_ENDPOINT)</footer></body></html>\n";
}

WebPage error_page(int status, const std::string& msg) {
  WebPage p;
  p.status = status;
  p.body = layout(std::to_string(status), "<h1 class=\"page\">" + std::to_string(status) +
                                              "</h1><p class=\"empty\">" + esc(msg) + "</p>");
  return p;
}

std::string badges(const RepoInfo& r) {
  std::string b;
  if (r.is_private) b += " <span class=\"badge private\">private</span>";
  if (!r.gated.empty()) b += " <span class=\"badge gated\">gated</span>";
  return b;
}

// ------------------------------------------------------------------ lists
WebPage list_page(Hub& hub, const Caller& c, RepoType t, const std::string& author,
                  const std::function<std::string(const std::string&)>& param) {
  const std::string search = param("search");
  std::string sort = param("sort");
  if (sort != "likes" && sort != "lastModified" && sort != "downloads" && sort != "createdAt")
    sort = "downloads";
  size_t pageno = 0;
  if (std::string p = param("p");
      !p.empty() && p.size() < 7 && p.find_first_not_of("0123456789") == std::string::npos)
    pageno = std::stoul(p);
  const std::string needle = lower(search);
  std::vector<RepoInfo> rows;
  for (auto& r : hub.meta().list_repos(t)) {
    if (!hub.can_read(c, r)) continue;
    if (!author.empty() && lower(r.ns) != lower(author)) continue;
    if (!needle.empty() && lower(r.full_id()).find(needle) == std::string::npos) continue;
    rows.push_back(std::move(r));
  }
  auto key = [&](const RepoInfo& r) {
    if (sort == "likes") return r.likes;
    if (sort == "lastModified") return r.modified_ms;
    if (sort == "createdAt") return r.created_ms;
    return r.downloads;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const RepoInfo& a, const RepoInfo& b) {
    if (key(a) != key(b)) return key(a) > key(b);
    return a.modified_ms > b.modified_ms;
  });
  constexpr size_t kPage = 100;
  const size_t from = std::min(rows.size(), pageno * kPage);
  const size_t to = std::min(rows.size(), from + kPage);
  const std::string self = author.empty() ? "/" + std::string(plural(t)) : "/" + enc(author);
  std::string h =
      "<h1 class=\"page\">" +
      (author.empty()
           ? std::string(type_title(t))
           : esc(author) + " <span class=\"count\">" + esc(lower(type_title(t))) + "</span>") +
      " <span class=\"count\" id=\"shown-count\">" + std::to_string(to - from) + "</span></h1>";
  h += "<form class=\"filters\" method=\"get\" action=\"" + esc(self) +
       "\"><input type=\"search\" id=\"search\" name=\"search\" placeholder=\"Filter by name\" "
       "value=\"" +
       esc(search) + "\" autocomplete=\"off\"><select id=\"sort\" name=\"sort\">";
  for (auto [v, label] : {std::pair{"downloads", "Most downloads"},
                          {"likes", "Most likes"},
                          {"lastModified", "Recently updated"},
                          {"createdAt", "Recently created"}})
    h += std::string("<option value=\"") + v + "\"" + (sort == v ? " selected" : "") + ">" + label +
         "</option>";
  h += "</select><button type=\"submit\">Search</button></form>";
  if (from == to) {
    h += "<p class=\"empty\">No " + lower(type_title(t)) + " found.</p>";
  } else {
    h += "<ul class=\"repo-list\" id=\"repo-list\">";
    for (size_t i = from; i < to; ++i) {
      const RepoInfo& r = rows[i];
      h += "<li class=\"repo-row\" data-id=\"" + esc(r.full_id()) +
           "\"><a class=\"repo-id\" href=\"" + esc(repo_path(r)) + "\">" + esc(r.full_id()) +
           "</a><div class=\"meta\">";
      if (!r.pipeline_tag.empty()) h += "<span>" + esc(r.pipeline_tag) + "</span>";
      h += "<span>Updated " + short_date(r.modified_ms) + "</span>";
      h += "<span title=\"downloads\">&#8595; " + std::to_string(r.downloads) + "</span>";
      h += "<span title=\"likes\">&#9825; " + std::to_string(r.likes) + "</span>" + badges(r);
      h += "</div></li>";
    }
    h += "</ul>";
  }
  auto page_link = [&](size_t n, const char* label) {
    return "<a class=\"btn\" href=\"" +
           esc(self + "?search=" + enc(search) + "&sort=" + sort + "&p=" + std::to_string(n)) +
           "\">" + label + "</a>";
  };
  if (pageno > 0 || to < rows.size()) {
    h += "<div class=\"pager\">";
    if (pageno > 0) h += page_link(pageno - 1, "&larr; Previous");
    if (to < rows.size()) h += page_link(pageno + 1, "Next &rarr;");
    h += "</div>";
  }
  WebPage p;
  p.body = layout(author.empty() ? type_title(t) : author, h);
  return p;
}

// ------------------------------------------------------------------ repo pages
struct RepoCtx {
  Hub& hub;
  const Caller& caller;
  RepoInfo r;
};

std::string repo_header(RepoCtx& x, const std::string& active, const std::string& rev) {
  const RepoInfo& r = x.r;
  std::string h = "<div class=\"repo-head\"><h1><span class=\"kind\">" +
                  std::string(to_string(r.type)) + "</span><a href=\"/" + esc(enc(r.ns)) + "\">" +
                  esc(r.ns) + "</a>/<b>" + esc(r.name) + "</b></h1><div class=\"meta\">";
  h += "<span title=\"likes\">&#9825; " + std::to_string(r.likes) + " likes</span>";
  h += "<span title=\"downloads\">&#8595; " + std::to_string(r.downloads) + " downloads</span>";
  h += "<span>Updated " + short_date(r.modified_ms) + "</span>" + badges(r);
  if (r.type == RepoType::Model) {
    SignatureStatus st;
    try {
      st = x.hub.signature_status(r, x.hub.resolve(r, rev.empty() ? "main" : rev));
    } catch (const std::exception&) {
    }
    if (st.verified)
      h += " <span class=\"badge verified\" title=\"model.sig verifies with trusted key " +
           esc(st.key_name) + " (SHA-256 " + esc(st.key_fingerprint) +
           ")\">&#10003; signed &middot; " + esc(st.key_name) + " " +
           esc(st.key_fingerprint.substr(0, 16)) + "</span>";
    else if (st.is_signed)
      h += " <span class=\"badge unverified\" title=\"" + esc(st.reason) +
           "\">signature not verified</span>";
  }
  h += "</div>";
  json tags = json::parse(r.tags_json, nullptr, false);
  if (tags.is_array() && !tags.empty()) {
    h += "<div class=\"tags\">";
    size_t n = 0;
    for (auto& tg : tags)
      if (tg.is_string() && n++ < 30)
        h += "<span class=\"badge tag\">" + esc(tg.get<std::string>()) + "</span>";
    h += "</div>";
  }
  h += "</div>";
  const std::string base = repo_path(r);
  auto tab = [&](const std::string& id, const std::string& href, const std::string& label) {
    return "<a id=\"tab-" + id + "\"" + (active == id ? " class=\"active\"" : "") + " href=\"" +
           esc(href) + "\">" + label + "</a>";
  };
  h += "<nav class=\"tabs\">" + tab("card", base, card_title(r.type)) +
       tab("files", base + "/tree/" + enc(rev), "Files and versions") +
       tab("history", base + "/commits/" + enc(rev), "History") +
       (r.type == RepoType::Model ? tab("eval", base + "/eval", "Evaluation") : std::string()) +
       "</nav>";
  return h;
}

std::string read_text(Hub& hub, const FileEntry& f, uint64_t max) {
  if (f.lfs || f.size > max) return {};
  return hub.blobs().read_all(BlobKind::Git, f.oid, max);
}

WebPage repo_page(RepoCtx& x, const std::function<std::string(const std::string&)>& param) {
  const RepoInfo& r = x.r;
  const std::string commit = x.hub.resolve(r, "main");
  auto files = x.hub.files(r, commit);
  std::string body = repo_header(x, "card", "main");
  if (t_ctx && t_ctx->repo_section) body += t_ctx->repo_section(r, param);
  body += "<div class=\"layout\"><article class=\"markdown\" id=\"card\">";
  std::string readme;
  for (auto& f : files)
    if (f.path == "README.md") readme = read_text(x.hub, f, 4u << 20);
  if (readme.empty())
    body += "<p class=\"empty\">No " + lower(card_title(r.type)) + " yet.</p>";
  else
    body += render_markdown(readme);
  body += "</article><aside>";
  if (!r.gated.empty() && !x.hub.has_gate_access(x.caller, r))
    body +=
        "<div class=\"notice\"><b>Gated repo.</b> Its files are available after the owners "
        "grant you access: <code>POST /api/" +
        std::string(plural(r.type)) + "/" + esc(r.full_id()) +
        "/user-access-request</code> with your token.</div>";
  uint64_t total = 0;
  for (auto& f : files) total += f.size;
  json card = json::parse(r.card_json, nullptr, false);
  body += "<div class=\"box\"><h3>About</h3><dl>";
  auto row = [&](const std::string& k, const std::string& v) {
    if (!v.empty()) body += "<dt>" + k + "</dt><dd>" + esc(v) + "</dd>";
  };
  if (card.is_object() && card.contains("license") && card["license"].is_string())
    row("License", card["license"].get<std::string>());
  row("Pipeline", r.pipeline_tag);
  row("Library", r.library_name);
  row("Files", std::to_string(files.size()));
  row("Size", human_size(total));
  row("Created", iso_date(r.created_ms).substr(0, 10));
  body += "</dl></div>";
  const std::string dl_cmd =
      std::string("hf download ") +
      (r.type == RepoType::Model ? "" : std::string("--repo-type ") + to_string(r.type) + " ") +
      r.full_id();
  body +=
      "<div class=\"box\"><h3>Download</h3><pre class=\"snippet\" id=\"download-snippet\">export "
      "HF_ENDPOINT=" +
      (t_ctx && !t_ctx->base_url.empty() ? esc(t_ctx->base_url) : std::string("&lt;this hub&gt;")) +
      "\n" + esc(dl_cmd) + "</pre><p><a class=\"btn primary\" id=\"browse-files\" href=\"" +
      esc(repo_path(r) + "/tree/main") + "\">Browse and download files</a></p></div>";
  body += "</aside></div>";
  WebPage p;
  p.body = layout(r.full_id(), body);
  return p;
}

std::string rev_selector(RepoCtx& x, const std::string& rev, const std::string& commit,
                         const std::string& what, const std::string& path) {
  auto refs = x.hub.meta().refs(x.r.id);
  const std::string base = repo_path(x.r) + "/" + what + "/";
  const std::string tail = path.empty() ? "" : "/" + enc_path(path);
  std::string h = "<select id=\"rev-select\" aria-label=\"branch or tag\">";
  bool found = false;
  for (int tags = 0; tags < 2; ++tags) {
    std::string group;
    for (auto& ref : refs) {
      if (ref.is_tag != (tags == 1)) continue;
      const bool sel = ref.name == rev;
      found |= sel;
      group += "<option value=\"" + esc(base + enc(ref.name) + tail) + "\"" +
               (sel ? " selected" : "") + ">" + esc(ref.name) + "</option>";
    }
    if (!group.empty())
      h += std::string("<optgroup label=\"") + (tags ? "Tags" : "Branches") + "\">" + group +
           "</optgroup>";
  }
  if (!found)
    h += "<option value=\"" + esc(base + enc(commit) + tail) + "\" selected>" +
         esc(commit.substr(0, 10)) + "</option>";
  return h + "</select>";
}

WebPage tree_page(RepoCtx& x, const std::string& rev, std::string path) {
  const RepoInfo& r = x.r;
  const std::string commit = x.hub.resolve(r, rev);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (!path.empty())
    if (auto e = check_file_path(path); !e.empty()) throw BadRequest("Invalid path: " + e);
  auto files = x.hub.files(r, commit);
  const std::string pre = path.empty() ? "" : path + "/";
  std::map<std::string, uint64_t> dirs;  // name -> total size
  std::vector<const FileEntry*> here;
  for (auto& f : files) {
    if (!f.path.starts_with(pre)) continue;
    const std::string rel = f.path.substr(pre.size());
    const size_t slash = rel.find('/');
    if (slash == std::string::npos)
      here.push_back(&f);
    else
      dirs[rel.substr(0, slash)] += f.size;
  }
  if (!path.empty() && dirs.empty() && here.empty())
    throw entry_not_found("Entry not found: " + path);
  const std::string base = repo_path(r);
  std::string body = repo_header(x, "files", rev);
  body += "<div class=\"toolbar\">" + rev_selector(x, rev, commit, "tree", path) +
          "<span class=\"crumbs\"><a href=\"" + esc(base + "/tree/" + enc(rev)) + "\">" +
          esc(r.name) + "</a>";
  if (!path.empty()) {
    size_t pos = 0;
    while (pos <= path.size()) {
      size_t e = path.find('/', pos);
      if (e == std::string::npos) e = path.size();
      body += " / <a href=\"" +
              esc(base + "/tree/" + enc(rev) + "/" + enc_path(path.substr(0, e))) + "\">" +
              esc(path.substr(pos, e - pos)) + "</a>";
      pos = e + 1;
    }
  }
  body += "</span><a class=\"btn\" href=\"" + esc(base + "/commits/" + enc(rev)) +
          "\">History</a></div>";
  if (auto c = x.hub.meta().get_commit(r.id, commit))
    body += "<div class=\"commit-line\"><b>" + esc(c->author) +
            "</b><span class=\"commit-title\">" + esc(c->title) + "</span><span class=\"sha\">" +
            esc(commit.substr(0, 7)) + "</span><span class=\"sha\">" + short_date(c->date_ms) +
            "</span></div>";
  body += "<table class=\"files\" id=\"files\"><tbody>";
  for (auto& [d, size] : dirs)
    body += "<tr class=\"dir\"><td class=\"name\"><span class=\"icon dir\"></span><a href=\"" +
            esc(base + "/tree/" + enc(rev) + "/" + enc_path(pre + d)) + "\">" + esc(d) +
            "/</a></td><td class=\"size\">" + human_size(size) + "</td><td class=\"dl\"></td></tr>";
  for (auto* f : here) {
    const std::string name = f->path.substr(pre.size());
    body += "<tr class=\"file\" data-path=\"" + esc(f->path) +
            "\"><td class=\"name\"><span class=\"icon\"></span><a href=\"" +
            esc(base + "/blob/" + enc(rev) + "/" + enc_path(f->path)) + "\">" + esc(name) + "</a>" +
            (f->lfs ? " <span class=\"badge\">LFS</span>" : "") +
            (f->path.ends_with(safety::kEncSuffix)
                 ? " <span class=\"badge encrypted\" title=\"Encrypted with ohm: only its "
                   "recipients can read it\">encrypted</span>"
                 : "") +
            "</td><td class=\"size\">" + human_size(f->size) +
            "</td><td class=\"dl\"><a class=\"download\" title=\"Download\" href=\"" +
            esc(base + "/resolve/" + enc(commit) + "/" + enc_path(f->path) + "?download=true") +
            "\" download=\"" + esc(name) + "\">&#8595;</a></td></tr>";
  }
  body += "</tbody></table>";
  WebPage p;
  p.body = layout(r.full_id() + (path.empty() ? "" : " / " + path) + " at " + rev, body);
  return p;
}

WebPage commits_page(RepoCtx& x, const std::string& rev,
                     const std::function<std::string(const std::string&)>& param) {
  const RepoInfo& r = x.r;
  const std::string commit = x.hub.resolve(r, rev);
  size_t pageno = 0;
  if (std::string p = param("p");
      !p.empty() && p.size() < 7 && p.find_first_not_of("0123456789") == std::string::npos)
    pageno = std::stoul(p);
  constexpr size_t kPage = 50;
  auto hist = x.hub.history(r, commit, (pageno + 1) * kPage + 1);
  const std::string base = repo_path(r);
  std::string body = repo_header(x, "history", rev);
  body += "<div class=\"toolbar\">" + rev_selector(x, rev, commit, "commits", "") + "</div>";
  body += "<ol class=\"commits\" id=\"commits\">";
  for (size_t i = pageno * kPage; i < hist.size() && i < (pageno + 1) * kPage; ++i) {
    const CommitInfo& c = hist[i];
    body += "<li class=\"commit\" data-id=\"" + esc(c.id) + "\"><div><div class=\"commit-title\">" +
            esc(c.title) + "</div>";
    if (!c.message.empty()) body += "<pre class=\"commit-msg\">" + esc(c.message) + "</pre>";
    body += "<div class=\"meta\"><b>" + esc(c.author) + "</b> committed " + short_date(c.date_ms) +
            "</div></div><div><a class=\"btn sha\" href=\"" + esc(base + "/tree/" + enc(c.id)) +
            "\" title=\"Browse files at this commit\">" + esc(c.id.substr(0, 7)) +
            "</a></div></li>";
  }
  body += "</ol>";
  auto link = [&](size_t n, const char* label) {
    return "<a class=\"btn\" href=\"" +
           esc(base + "/commits/" + enc(rev) + "?p=" + std::to_string(n)) + "\">" + label + "</a>";
  };
  if (pageno > 0 || hist.size() > (pageno + 1) * kPage) {
    body += "<div class=\"pager\">";
    if (pageno > 0) body += link(pageno - 1, "&larr; Newer");
    if (hist.size() > (pageno + 1) * kPage) body += link(pageno + 1, "Older &rarr;");
    body += "</div>";
  }
  WebPage p;
  p.body = layout("History of " + r.full_id(), body);
  return p;
}

WebPage blob_page(RepoCtx& x, const std::string& rev, const std::string& path) {
  const RepoInfo& r = x.r;
  const std::string commit = x.hub.resolve(r, rev);
  if (auto e = check_file_path(path); !e.empty()) throw BadRequest("Invalid path: " + e);
  auto f = x.hub.file(r, commit, path);
  if (!f) throw entry_not_found("Entry not found: " + path);
  const std::string base = repo_path(r);
  std::string body = repo_header(x, "files", rev);
  body += "<div class=\"toolbar\">" + rev_selector(x, rev, commit, "blob", path) +
          "<span class=\"crumbs\">" + esc(path) + "</span><a class=\"btn primary\" href=\"" +
          esc(base + "/resolve/" + enc(commit) + "/" + enc_path(path) + "?download=true") +
          "\" download=\"" + esc(path.substr(path.rfind('/') + 1)) + "\">Download</a></div>";
  body += "<div class=\"commit-line\"><span>" + human_size(f->size) + "</span>" +
          (f->lfs ? "<span class=\"badge\">LFS</span><span class=\"sha\">sha256: " +
                        esc(f->lfs->sha256) + "</span>"
                  : "<span class=\"sha\">git oid: " + esc(f->oid) + "</span>") +
          "</div>";
  std::string text;
  const bool allowed = x.hub.has_gate_access(x.caller, r);
  if (allowed) text = read_text(x.hub, *f, 512u << 10);
  const bool binary = text.find('\0') != std::string::npos;
  // An ohm-encrypted file (docs/encryption.md), by the magic at the start of its blob.
  bool encrypted = false;
  if (allowed && f->size >= safety::kEncMagic.size()) {
    char head[8] = {};
    try {
      auto rd = x.hub.blobs().open(f->lfs ? BlobKind::Lfs : BlobKind::Git,
                                   f->lfs ? f->lfs->sha256 : f->oid);
      const size_t n = rd->read_at(0, head, safety::kEncMagic.size());
      encrypted = safety::is_encrypted(std::string_view(head, n));
    } catch (const Error&) {
      // a missing blob: the page shows the file without the note
    }
  }
  if (!allowed)
    body += "<pre class=\"code\">This repo is gated: request access to see its files.</pre>";
  else if (encrypted)
    body +=
        "<pre class=\"code\" id=\"encrypted\"><span class=\"badge encrypted\">encrypted</span> "
        "Encrypted with ohm: only its recipients can read it (ohm pull --decrypt "
        "--identity KEYFILE).</pre>";
  else if (text.empty() || binary)
    body += "<pre class=\"code\">" +
            std::string(f->size == 0 ? "(empty file)" : "(binary or large file: download it)") +
            "</pre>";
  else
    body += "<pre class=\"code\" id=\"blob\">" + esc(text) + "</pre>";
  WebPage p;
  p.body = layout(path + " · " + r.full_id(), body);
  return p;
}

// ------------------------------------------------------------------ evaluation results
// The rows of a model's card model-index (RepoInfo::eval_json, card.h eval_results_from_card).
json eval_rows(const RepoInfo& r) {
  json rows = json::parse(r.eval_json, nullptr, false), out = json::array();
  if (!rows.is_array()) return out;
  for (auto& row : rows)  // the shape eval_results_from_card writes; anything else is skipped
    if (row.is_object() && row.contains("dataset") && row["dataset"].is_object() &&
        row.contains("metric") && row["metric"].is_object() && row.contains("value") &&
        row["value"].is_number())
      out.push_back(std::move(row));
  return out;
}
std::string jstr(const json& o, const char* k) {
  if (!o.is_object()) return {};
  auto it = o.find(k);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}
std::string fmt_score(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}
// Metrics where lower is better never count towards a leaderboard average.
bool lower_is_better(const std::string& metric) {
  return metric.find("perplexity") != std::string::npos || metric == "bits_per_byte" ||
         metric.ends_with("_loss") || metric == "loss";
}
std::string n_shot(const json& ds) {
  if (!ds.is_object() || !ds.contains("args") || !ds["args"].is_object()) return {};
  const json& a = ds["args"];
  for (const char* k : {"num_few_shot", "num_fewshot", "n_shot"})
    if (a.contains(k) && a[k].is_number_integer()) return std::to_string(a[k].get<int64_t>());
  return {};
}

WebPage eval_page(RepoCtx& x) {
  const RepoInfo& r = x.r;
  std::string body = repo_header(x, "eval", "main");
  const bool allowed = x.hub.can_read_eval_results(x.caller, r);
  const json rows = allowed ? eval_rows(r) : json::array();
  body += "<h2>Evaluation results <span class=\"count\" id=\"eval-count\">" +
          std::to_string(rows.size()) + "</span></h2>";
  if (!allowed) {
    body +=
        "<p class=\"empty\" id=\"eval-gated\">This repo is gated: its evaluation results are "
        "shown to those granted access.</p>";
  } else if (rows.empty()) {
    body +=
        "<p class=\"empty\">No evaluation results in this model card's <code>model-index</code> "
        "yet. <code>ohm eval MODEL --tasks T1,T2 --push-to-hub " +
        esc(r.full_id()) + "</code> writes them.</p>";
  } else {
    body +=
        "<table class=\"admin sortable\" id=\"eval-results\"><thead><tr><th>Task</th><th>Dataset"
        "</th><th>Split</th><th>n-shot</th><th>Metric</th><th data-sort=\"num\">Value</th>"
        "<th data-sort=\"num\">&plusmn; stderr</th><th>Verified</th></tr></thead><tbody>";
    for (const json& row : rows) {
      const json& ds = row["dataset"];
      const json& m = row["metric"];
      const double v = row["value"].get<double>();
      body += "<tr class=\"eval-row\" data-task=\"" + esc(jstr(ds, "type")) + "\" data-metric=\"" +
              esc(jstr(m, "type")) + "\"><td>" +
              esc(jstr(row.value("task", json::object()), "name")) + "</td><td><b>" +
              esc(jstr(ds, "name")) + "</b> <span class=\"sha\">" + esc(jstr(ds, "type")) +
              (jstr(ds, "config").empty() ? "" : " / " + esc(jstr(ds, "config"))) +
              "</span></td><td>" + esc(jstr(ds, "split")) + "</td><td>" + esc(n_shot(ds)) +
              "</td><td>" + esc(jstr(m, "name")) + "</td><td data-value=\"" + fmt_score(v) + "\">" +
              fmt_score(v) + "</td>";
      if (row.contains("stderr") && row["stderr"].is_number()) {
        const std::string se = fmt_score(row["stderr"].get<double>());
        body += "<td data-value=\"" + se + "\">" + se + "</td>";
      } else {
        body += "<td data-value=\"\"></td>";
      }
      body += std::string("<td>") +
              (row.contains("verified") && row["verified"] == true ? "yes" : "no") + "</td></tr>";
    }
    body += "</tbody></table>";
  }
  body +=
      "<p class=\"meta\"><a href=\"/leaderboard\">Leaderboard</a> &middot; <code>GET /api/models/" +
      esc(r.full_id()) + "?expand=evalResults</code></p>";
  WebPage p;
  p.body = layout("Evaluation of " + r.full_id(), body);
  return p;
}

// GET /leaderboard[?tasks=a,b]: the models whose results the caller may read, ranked by the
// average of the chosen tasks' scores (all tasks when none are chosen). A task's score is its
// first metric where higher is better (the first metric lm-eval lists: acc for multiple choice,
// exact_match for gsm8k); a task with only lower-is-better metrics (perplexities) is shown but
// not averaged. Models with more of the chosen tasks rank first.
WebPage leaderboard_page(Hub& hub, const Caller& c,
                         const std::function<std::string(const std::string&)>& param) {
  struct Score {
    double value = 0;
    std::string metric;
    bool averaged = true;
  };
  struct Row {
    RepoInfo r;
    std::map<std::string, Score> scores;  // by task (dataset type)
    double avg = 0;
    size_t n = 0;
  };
  std::vector<Row> rows;
  std::set<std::string> all_tasks;
  for (auto& r : hub.meta().list_repos(RepoType::Model)) {
    if (!hub.can_read_eval_results(c, r)) continue;
    Row row{std::move(r), {}, 0, 0};
    for (const json& e : eval_rows(row.r)) {
      const std::string task = jstr(e["dataset"], "type"), metric = jstr(e["metric"], "type");
      if (task.empty()) continue;
      Score s{e["value"].get<double>(), jstr(e["metric"], "name"), !lower_is_better(metric)};
      auto it = row.scores.find(task);
      if (it == row.scores.end())
        row.scores.emplace(task, s);
      else if (!it->second.averaged && s.averaged)
        it->second = s;  // a higher-is-better metric of the task wins over a perplexity
    }
    if (row.scores.empty()) continue;
    for (auto& [t, s] : row.scores) all_tasks.insert(t);
    rows.push_back(std::move(row));
  }
  std::vector<std::string> chosen;
  {
    std::set<std::string> seen;
    const std::string list = param("tasks");
    size_t pos = 0;
    while (pos <= list.size() && chosen.size() < 64) {
      size_t e = list.find(',', pos);
      if (e == std::string::npos) e = list.size();
      std::string t = list.substr(pos, e - pos);
      t.erase(0, t.find_first_not_of(" \t"));
      t.erase(t.find_last_not_of(" \t") + 1);
      if (!t.empty() && seen.insert(t).second) chosen.push_back(t);
      pos = e + 1;
    }
  }
  const bool all = chosen.empty();
  if (all) chosen.assign(all_tasks.begin(), all_tasks.end());
  if (chosen.size() > 64) chosen.resize(64);
  std::vector<Row*> shown;
  for (auto& row : rows) {
    double sum = 0;
    for (auto& t : chosen)
      if (auto it = row.scores.find(t); it != row.scores.end()) {
        if (it->second.averaged) sum += it->second.value, ++row.n;
      }
    row.avg = row.n ? sum / static_cast<double>(row.n) : 0;
    bool any = false;
    for (auto& t : chosen) any |= row.scores.count(t) > 0;
    if (any) shown.push_back(&row);
  }
  std::stable_sort(shown.begin(), shown.end(), [](const Row* a, const Row* b) {
    if (a->n != b->n) return a->n > b->n;
    if (a->avg != b->avg) return a->avg > b->avg;
    return a->r.full_id() < b->r.full_id();
  });
  auto joined = [](const std::vector<std::string>& ts) {
    std::string j;
    for (auto& t : ts) j += (j.empty() ? "" : ",") + t;
    return j;
  };
  std::string h = "<h1 class=\"page\">Leaderboard <span class=\"count\" id=\"shown-count\">" +
                  std::to_string(shown.size()) + "</span></h1>";
  h += "<p class=\"meta\">Models ranked by the average of the chosen tasks' scores (each task's "
       "first higher-is-better metric, from the model cards' <code>model-index</code>; "
       "<code>ohm eval --push-to-hub</code> writes it). Click a column to sort.</p>";
  h += "<form class=\"filters\" method=\"get\" action=\"/leaderboard\"><input type=\"search\" "
       "id=\"lb-tasks\" name=\"tasks\" placeholder=\"Tasks, comma-separated (all when empty)\" "
       "value=\"" +
       esc(all ? std::string() : joined(chosen)) +
       "\" autocomplete=\"off\"><button type=\"submit\">Rank</button></form>";
  if (!all_tasks.empty()) {
    h += "<div class=\"tags\" id=\"task-filter\"><span class=\"meta\">Tasks:</span>";
    for (const auto& t : all_tasks) {
      std::vector<std::string> next;
      const bool on = !all && std::find(chosen.begin(), chosen.end(), t) != chosen.end();
      if (!all)
        for (auto& x : chosen)
          if (x != t) next.push_back(x);
      if (!on) next.push_back(t);
      h += "<a class=\"badge tag" + std::string(on ? " selected" : "") + "\" data-task=\"" +
           esc(t) + "\" href=\"" + esc("/leaderboard?tasks=" + enc(joined(next))) + "\">" + esc(t) +
           "</a>";
    }
    if (!all) h += "<a class=\"badge\" id=\"all-tasks\" href=\"/leaderboard\">all tasks</a>";
    h += "</div>";
  }
  if (shown.empty()) {
    h += "<p class=\"empty\" id=\"lb-empty\">No evaluation results" +
         std::string(all ? "" : " for these tasks") + " yet.</p>";
  } else {
    h += "<table class=\"admin sortable leaderboard\" id=\"leaderboard\"><thead><tr>"
         "<th data-sort=\"num\">#</th><th data-sort=\"text\">Model</th>"
         "<th data-sort=\"num\" class=\"avg\">Average</th>";
    for (auto& t : chosen) {
      std::string metric;
      for (auto* row : shown)
        if (auto it = row->scores.find(t); it != row->scores.end() && metric.empty())
          metric = it->second.metric;
      h += "<th data-sort=\"num\" data-task=\"" + esc(t) + "\">" + esc(t) +
           (metric.empty() ? "" : "<br><small>" + esc(metric) + "</small>") + "</th>";
    }
    h += "</tr></thead><tbody>";
    size_t rank = 0;
    for (auto* row : shown) {
      const std::string id = row->r.full_id();
      const std::string place = std::to_string(++rank);
      h += "<tr class=\"lb-row\" data-id=\"" + esc(id) + "\"><td data-value=\"" + place + "\">" +
           place + "</td><td data-value=\"" + esc(id) + "\"><a class=\"repo-id\" href=\"" +
           esc(repo_path(row->r) + "/eval") + "\">" + esc(id) + "</a>" + badges(row->r) +
           "</td><td class=\"avg\" data-value=\"" + (row->n ? fmt_score(row->avg) : std::string()) +
           "\">" + (row->n ? "<b>" + fmt_score(row->avg) + "</b>" : std::string("&mdash;")) +
           "</td>";
      for (auto& t : chosen) {
        auto it = row->scores.find(t);
        if (it == row->scores.end())
          h += "<td data-value=\"\">&mdash;</td>";
        else
          h += "<td data-value=\"" + fmt_score(it->second.value) + "\" title=\"" +
               esc(it->second.metric) + "\">" + fmt_score(it->second.value) + "</td>";
      }
      h += "</tr>";
    }
    h += "</tbody></table>";
  }
  WebPage p;
  p.body = layout("Leaderboard", h);
  return p;
}

}  // namespace

WebPage render_login_page(const Caller& caller, const WebContext& ctx, const std::string& form_csrf,
                          const std::string& error, int status) {
  RenderScope scope(caller, ctx);
  std::string b = "<h1 class=\"page\">Log in</h1>";
  if (!error.empty()) b += "<div class=\"notice\" id=\"login-error\">" + esc(error) + "</div>";
  if (!caller.anonymous()) b += "<p>Logged in as <b>" + esc(caller.user) + "</b>.</p>";
  b +=
      "<form class=\"login\" method=\"post\" action=\"/login\">"
      "<input type=\"hidden\" name=\"csrf\" value=\"" +
      esc(form_csrf) +
      "\"><label for=\"token\">Access token</label>"
      "<input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" "
      "required placeholder=\"hf_...\"><button class=\"primary\" type=\"submit\" "
      "id=\"login-submit\">Log in</button><p class=\"meta\">A token from <code>ohm hub token create"
      "</code>. The browser keeps only a session cookie (HttpOnly, SameSite=Strict), valid "
      "for 12 hours or until you log out or the token is revoked.</p></form>";
  WebPage p;
  p.status = status;
  p.body = layout("Log in", b);
  return p;
}

WebPage render_admin_page(Hub& hub, const Caller& caller, const WebContext& ctx,
                          const std::string& notice) {
  RenderScope scope(caller, ctx);
  const bool forms = !ctx.csrf.empty();  // Bearer-authenticated views have no session to post with
  std::string b = "<h1 class=\"page\">Administration</h1>";
  if (!notice.empty()) b += "<div class=\"notice\" id=\"admin-notice\">" + esc(notice) + "</div>";
  auto users = hub.list_users();
  b += "<h2>Users and organisations <span class=\"count\">" + std::to_string(users.size()) +
       "</span></h2><table class=\"admin\" id=\"users\"><thead><tr><th>Name</th><th>Type</th>"
       "<th>Full name</th><th>E-mail</th><th>Created</th><th></th></tr></thead><tbody>";
  for (auto& u : users) {
    b += "<tr data-user=\"" + esc(u.name) + "\"><td>" + esc(u.name) + "</td><td>" +
         (u.is_org     ? "organisation"
          : u.is_admin ? "user (admin)"
                       : "user") +
         "</td><td>" + esc(u.fullname) + "</td><td>" + esc(u.email) + "</td><td>" +
         short_date(u.created_ms) + "</td><td>";
    if (forms && u.name != caller.user)
      b += "<form class=\"inline\" method=\"post\" action=\"/admin/users/" + esc(enc(u.name)) +
           "/delete\">" + csrf_field() + "<button type=\"submit\">Delete</button></form>";
    b += "</td></tr>";
  }
  b += "</tbody></table>";
  auto tokens = hub.list_tokens();
  b += "<h2>Access tokens <span class=\"count\">" + std::to_string(tokens.size()) +
       "</span></h2><p class=\"meta\">Tokens are stored as sha256; their secrets cannot be shown."
       "</p><table class=\"admin\" id=\"tokens\"><thead><tr><th>Id</th><th>Name</th><th>Owner"
       "</th><th>Scope</th><th>Created</th><th>Last used</th><th></th></tr></thead><tbody>";
  for (auto& t : tokens) {
    b += "<tr data-token=\"" + std::to_string(t.id) + "\"><td>" + std::to_string(t.id) +
         "</td><td>" + esc(t.name) + "</td><td>" + esc(t.user) + "</td><td>" + esc(t.scope) +
         "</td><td>" + short_date(t.created_ms) + "</td><td>" +
         (t.last_used_ms ? short_date(t.last_used_ms) : std::string("never")) + "</td><td>";
    if (forms)
      b += "<form class=\"inline\" method=\"post\" action=\"/admin/tokens/" + std::to_string(t.id) +
           "/revoke\">" + csrf_field() + "<button type=\"submit\">Revoke</button></form>";
    b += "</td></tr>";
  }
  b += "</tbody></table>";
  WebPage p;
  p.body = layout("Administration", b);
  return p;
}

WebPage render_error_page(const Caller& caller, const WebContext& ctx, int status,
                          const std::string& msg) {
  RenderScope scope(caller, ctx);
  return error_page(status, msg);
}

std::optional<WebPage> render_web_ui(Hub& hub, const Caller& caller,
                                     const std::vector<std::string>& seg,
                                     const std::function<std::string(const std::string&)>& param,
                                     const WebContext& ctx) {
  RenderScope scope(caller, ctx);
  const size_t n = seg.size();
  if (n == 2 && seg[0] == "static") {
    WebPage p;
    if (seg[1] == "ohm.css")
      p.content_type = "text/css; charset=utf-8", p.body = webui_detail::kCss;
    else if (seg[1] == "ohm.js")
      p.content_type = "text/javascript; charset=utf-8", p.body = webui_detail::kJs;
    else
      return std::nullopt;
    return p;
  }
  try {
    if (n == 0 || (n == 1 && seg[0].empty()))
      return list_page(hub, caller, RepoType::Model, "", param);
    RepoType t = RepoType::Model;
    if (n == 1 && parse_repo_type(seg[0], t) && seg[0].back() == 's')
      return list_page(hub, caller, t, "", param);
    size_t i = 0;
    t = RepoType::Model;
    if (seg[0] == "datasets")
      t = RepoType::Dataset, i = 1;
    else if (seg[0] == "spaces")
      t = RepoType::Space, i = 1;
    if (n == 1 && seg[0] == "leaderboard") return leaderboard_page(hub, caller, param);
    if (n == 1 && i == 0) {
      if (!check_name(seg[0], true).empty() || !hub.meta().get_user(seg[0])) return std::nullopt;
      return list_page(hub, caller, RepoType::Model, seg[0], param);
    }
    if (n < i + 2) return std::nullopt;
    const std::string action = n > i + 2 ? seg[i + 2] : "";
    if (!(action.empty() || action == "tree" || action == "commits" || action == "blob" ||
          (action == "eval" && t == RepoType::Model && n == i + 3)))
      return std::nullopt;
    if (action == "blob" && n < i + 5) return std::nullopt;
    if (action == "commits" && n > i + 4) return std::nullopt;
    RepoCtx x{hub, caller, hub.repo_for_read(caller, t, seg[i], seg[i + 1])};
    std::string rest;
    for (size_t k = i + 4; k < n; ++k) rest += (k > i + 4 ? "/" : "") + seg[k];
    const std::string rev = n > i + 3 ? seg[i + 3] : "main";
    if (action.empty()) return repo_page(x, param);
    if (action == "eval") return eval_page(x);
    if (action == "tree") return tree_page(x, rev, rest);
    if (action == "commits") return commits_page(x, rev, param);
    return blob_page(x, rev, rest);
  } catch (const HubError& e) {
    if (e.code() == HubErrorCode::RepoNotFound) return error_page(404, "Repository not found.");
    const int status = http::http_status(e.hub_kind());
    return error_page(status == 401 ? 404 : status, e.what());
  } catch (const NotFoundError& e) {
    return error_page(404, e.what());
  }
}

}  // namespace ohm::hub
