#include "ohm/hub/webui.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "ohm/core/error.h"

namespace ohm::hub {

namespace {

using json = nlohmann::json;

const char* kCss = R"CSS(
*{box-sizing:border-box}
[hidden]{display:none!important}
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb;--accent:#4f46e5;--accent-bg:#eef2ff;
  --mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
html,body{margin:0;padding:0}
body{font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;color:var(--fg);
  background:#fff}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
header.top{display:flex;align-items:center;gap:28px;padding:12px 32px;border-bottom:1px solid var(--line);
  background:#fff;position:sticky;top:0;z-index:1}
header.top .brand{font-weight:700;font-size:18px;color:var(--fg);letter-spacing:-.01em}
header.top .brand span{color:var(--accent)}
header.top nav{display:flex;gap:20px}
header.top nav a{color:var(--fg);font-weight:500}
main{max-width:1180px;margin:0 auto;padding:28px 32px 48px}
footer{color:var(--muted);font-size:13px;text-align:center;padding:24px;border-top:1px solid var(--line)}
h1.page{font-size:26px;margin:0 0 18px;display:flex;align-items:baseline;gap:10px}
.count{color:var(--muted);font-weight:400;font-size:18px}
form.filters{display:flex;gap:10px;margin-bottom:20px;flex-wrap:wrap}
form.filters input[type=search]{flex:1;min-width:240px;padding:9px 12px;border:1px solid var(--line);
  border-radius:8px;font:inherit}
select,button,.btn{padding:8px 12px;border:1px solid var(--line);border-radius:8px;background:#fff;font:inherit;
  color:var(--fg);cursor:pointer}
.btn.primary,button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
.btn:hover{text-decoration:none;background:var(--bg)}
.btn.primary:hover{background:#4338ca}
ul.repo-list{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));
  gap:12px}
li.repo-row{border:1px solid var(--line);border-radius:10px;padding:12px 16px;background:#fff;
  display:flex;flex-direction:column;gap:4px}
li.repo-row:hover{border-color:#c7d2fe;box-shadow:0 1px 4px rgba(79,70,229,.08)}
.repo-id{font-family:var(--mono);font-weight:600;font-size:14px;color:var(--fg);word-break:break-all}
.meta{color:var(--muted);font-size:13px;display:flex;gap:12px;flex-wrap:wrap;align-items:center}
.badge{display:inline-block;font-size:12px;padding:1px 8px;border-radius:999px;border:1px solid var(--line);
  color:var(--muted);background:var(--bg)}
.badge.private{color:#92400e;background:#fef3c7;border-color:#fde68a}
.badge.gated{color:#9f1239;background:#ffe4e6;border-color:#fecdd3}
.badge.tag{font-family:var(--mono)}
.empty{color:var(--muted);padding:24px;border:1px dashed var(--line);border-radius:10px;text-align:center}
.repo-head{margin-bottom:6px}
.repo-head h1{font-size:22px;margin:0 0 8px;font-family:var(--mono);font-weight:500;word-break:break-all}
.repo-head h1 b{font-weight:700}
.repo-head .kind{font-family:system-ui,sans-serif;font-size:13px;color:var(--muted);margin-right:6px}
.tags{display:flex;gap:6px;flex-wrap:wrap;margin:6px 0}
nav.tabs{display:flex;gap:4px;border-bottom:1px solid var(--line);margin:16px 0 22px}
nav.tabs a{padding:9px 14px;color:var(--muted);border-bottom:2px solid transparent;margin-bottom:-1px;font-weight:500}
nav.tabs a.active{color:var(--fg);border-bottom-color:var(--accent)}
nav.tabs a:hover{text-decoration:none;color:var(--fg)}
.layout{display:grid;grid-template-columns:minmax(0,1fr) 300px;gap:28px}
@media (max-width:900px){.layout{grid-template-columns:1fr}}
aside .box{border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin-bottom:16px;font-size:14px}
aside .box h3{margin:0 0 8px;font-size:14px}
aside dl{margin:0;display:grid;grid-template-columns:auto 1fr;gap:4px 12px}
aside dt{color:var(--muted)}
aside dd{margin:0;word-break:break-all}
pre.snippet{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:8px 10px;
  font:12px/1.5 var(--mono);white-space:pre-wrap;word-break:break-all;margin:6px 0 0}
.notice{border:1px solid #fecdd3;background:#fff1f2;border-radius:10px;padding:12px 16px;margin-bottom:18px}
article.markdown{min-width:0}
.markdown h1,.markdown h2{border-bottom:1px solid var(--line);padding-bottom:.3em}
.markdown h1{font-size:1.8em;margin:.2em 0 .6em}
.markdown h2{font-size:1.4em;margin:1.4em 0 .6em}
.markdown code{font-family:var(--mono);font-size:.88em;background:var(--bg);padding:.15em .35em;border-radius:4px}
.markdown pre{background:#0f172a;color:#e2e8f0;padding:12px 14px;border-radius:8px;overflow:auto}
.markdown pre code{background:none;color:inherit;padding:0}
.markdown table{border-collapse:collapse}
.markdown th,.markdown td{border:1px solid var(--line);padding:6px 10px}
.markdown img{max-width:100%}
.markdown blockquote{margin:0;padding:0 1em;color:var(--muted);border-left:4px solid var(--line)}
.toolbar{display:flex;align-items:center;gap:12px;flex-wrap:wrap;margin-bottom:12px}
.crumbs{font-family:var(--mono);font-size:14px}
.commit-line{border:1px solid var(--line);border-bottom:0;border-radius:10px 10px 0 0;background:var(--bg);
  padding:10px 14px;font-size:14px;display:flex;gap:10px;flex-wrap:wrap;align-items:center}
.sha{font-family:var(--mono);font-size:13px;color:var(--muted)}
table.files{width:100%;border-collapse:separate;border-spacing:0;border:1px solid var(--line);
  border-radius:0 0 10px 10px;font-size:14px}
table.files td{padding:8px 14px;border-top:1px solid var(--line)}
table.files tr:first-child td{border-top:0}
table.files td.name{font-family:var(--mono);word-break:break-all}
table.files td.size{color:var(--muted);text-align:right;white-space:nowrap;width:110px}
table.files td.dl{width:44px;text-align:center}
table.files .icon{display:inline-block;width:22px;vertical-align:-1px}
table.files .icon::before{content:"";display:inline-block;width:10px;height:13px;
  border:1.5px solid #9ca3af;border-radius:2px}
table.files .icon.dir::before{width:14px;height:10px;border:0;background:#a5b4fc;border-radius:2px}
ol.commits{list-style:none;margin:0;padding:0;border:1px solid var(--line);border-radius:10px}
ol.commits li{padding:12px 16px;border-top:1px solid var(--line);display:flex;gap:12px;justify-content:space-between}
ol.commits li:first-child{border-top:0}
.commit-title{font-weight:600;word-break:break-word}
.commit-msg{white-space:pre-wrap;color:var(--muted);font-size:13px;margin:4px 0 0;font-family:inherit}
pre.code{border:1px solid var(--line);border-radius:0 0 10px 10px;margin:0;padding:12px 14px;overflow:auto;
  font:13px/1.5 var(--mono);background:#fff}
.pager{display:flex;gap:10px;margin-top:16px}
header.top .user{margin-left:auto;display:flex;gap:14px;align-items:center;font-size:14px}
form.inline{display:inline;margin:0}
form.login{display:flex;flex-direction:column;gap:10px;max-width:420px}
form.login input{padding:9px 12px;border:1px solid var(--line);border-radius:8px;font:inherit}
table.admin{border-collapse:collapse;width:100%;font-size:14px;margin-bottom:24px}
table.admin th,table.admin td{border-bottom:1px solid var(--line);padding:6px 10px;text-align:left}
)CSS";

const char* kJs = R"JS(
'use strict';
document.addEventListener('DOMContentLoaded', function () {
  var q = document.getElementById('search');
  var rows = Array.prototype.slice.call(document.querySelectorAll('.repo-row'));
  var shown = document.getElementById('shown-count');
  if (q) {
    q.addEventListener('input', function () {
      var v = q.value.trim().toLowerCase(), n = 0;
      rows.forEach(function (r) {
        var ok = !v || (r.getAttribute('data-id') || '').toLowerCase().indexOf(v) >= 0;
        r.hidden = !ok;
        if (ok) n++;
      });
      if (shown) shown.textContent = String(n);
    });
  }
  var sort = document.getElementById('sort');
  if (sort && sort.form) sort.addEventListener('change', function () { sort.form.submit(); });
  var rev = document.getElementById('rev-select');
  if (rev) rev.addEventListener('change', function () { window.location.href = rev.value; });
  document.querySelectorAll('[data-copy]').forEach(function (b) {
    b.addEventListener('click', function () {
      if (navigator.clipboard) navigator.clipboard.writeText(b.getAttribute('data-copy'));
    });
  });
});
)JS";

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
         "<a href=\"/spaces\">Spaces</a></nav><div class=\"user\">" +
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
  h += "<span>Updated " + short_date(r.modified_ms) + "</span>" + badges(r) + "</div>";
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
       tab("history", base + "/commits/" + enc(rev), "History") + "</nav>";
  return h;
}

std::string read_text(Hub& hub, const FileEntry& f, uint64_t max) {
  if (f.lfs || f.size > max) return {};
  return hub.blobs().read_all(BlobKind::Git, f.oid, max);
}

WebPage repo_page(RepoCtx& x) {
  const RepoInfo& r = x.r;
  const std::string commit = x.hub.resolve(r, "main");
  auto files = x.hub.files(r, commit);
  std::string body = repo_header(x, "card", "main");
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
    if (auto e = check_file_path(path); !e.empty()) throw HubError(400, "", "Invalid path: " + e);
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
    throw HubError(404, "EntryNotFound", "Entry not found: " + path);
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
            (f->lfs ? " <span class=\"badge\">LFS</span>" : "") + "</td><td class=\"size\">" +
            human_size(f->size) +
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
  if (auto e = check_file_path(path); !e.empty()) throw HubError(400, "", "Invalid path: " + e);
  auto f = x.hub.file(r, commit, path);
  if (!f) throw HubError(404, "EntryNotFound", "Entry not found: " + path);
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
  if (!allowed)
    body += "<pre class=\"code\">This repo is gated: request access to see its files.</pre>";
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

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

namespace {

// Debian 12's cmark-gfm (0.29.0.gfm.6) table extension pads every row to the header's width and
// parses rows in time quadratic in their '|' count: a 24 KB README with a 3,000-column header
// renders to 110 MB in 40 s, and a failed allocation makes the library abort(). Tables are
// therefore enabled only for documents whose tables are provably small: at most kMaxPipes '|'
// per line and kMaxCells cells in all (the header's columns times the lines up to the next blank
// line, an overestimate), within kMaxTableDoc bytes. Other documents render as CommonMark.
constexpr size_t kMaxPipes = 64, kMaxCells = 50000, kMaxTableDoc = 256u << 10;
// The CommonMark core (libcmark 0.30.2 as well) is quadratic in the number of image openers that
// a later link leaves active: 41,000 "![[]()" (250 KB) take 10 s. Documents with more than
// kMaxImageOpeners "![" are shown as escaped text instead (1.6 M of them would take hours).
constexpr size_t kMaxImageOpeners = 10000;

size_t count_of(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

bool tables_are_small(std::string_view md) {
  if (md.size() > kMaxTableDoc) return false;
  size_t cells = 0, cols = 0;  // cols: the header width of the table being counted (0: none)
  size_t prev_pipes = 0;
  size_t pos = 0;
  while (pos < md.size()) {
    size_t eol = md.find('\n', pos);
    if (eol == std::string_view::npos) eol = md.size();
    std::string_view line = md.substr(pos, eol - pos);
    pos = eol + 1;
    const size_t pipes = static_cast<size_t>(std::count(line.begin(), line.end(), '|'));
    if (pipes > kMaxPipes) return false;
    const bool blank = line.find_first_not_of(" \t\r") == std::string_view::npos;
    // a delimiter row: only '|', '-', ':' and blanks, with at least one '-'
    const bool delim = !blank && line.find('-') != std::string_view::npos &&
                       line.find_first_not_of("|-: \t\r") == std::string_view::npos;
    if (blank) {
      cols = 0;
    } else if (delim) {
      cols = std::max(prev_pipes, pipes) + 1;
    } else if (cols) {
      cells += cols;
      if (cells > kMaxCells) return false;
    }
    prev_pipes = pipes;
  }
  return true;
}

}  // namespace

std::string render_markdown(std::string_view md) {
  // Drop YAML front matter ("---\n...\n---\n" at the very start).
  if (md.starts_with("---\n") || md.starts_with("---\r\n")) {
    size_t pos = md.find('\n') + 1;
    while (pos < md.size()) {
      size_t eol = md.find('\n', pos);
      std::string_view line = md.substr(pos, eol == std::string_view::npos ? md.npos : eol - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      pos = eol == std::string_view::npos ? md.size() : eol + 1;
      if (line == "---" || line == "...") {
        md.remove_prefix(pos);
        break;
      }
    }
  }
  // cmark-gfm (GitHub Flavored Markdown: tables, strikethrough) in its default safe
  // mode (CMARK_OPT_UNSAFE never set; CMARK_OPT_SAFE kept for older versions): raw HTML is
  // replaced by a comment and javascript:/vbscript:/file:/data: (non-image) URLs are dropped.
  // Table alignment is an align="" attribute, so the strict style-src CSP still holds.
  if (count_of(md, "![") > kMaxImageOpeners)
    return "<pre class=\"code\">" + html_escape(md) + "</pre>";
  static std::once_flag registered;
  std::call_once(registered, [] { cmark_gfm_core_extensions_ensure_registered(); });
  const int opts = CMARK_OPT_DEFAULT | CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8;
  std::unique_ptr<cmark_parser, void (*)(cmark_parser*)> parser(cmark_parser_new(opts),
                                                                cmark_parser_free);
  if (!parser) return {};
  // (no autolink: upstream fixed an out-of-bounds read in it after this version, CVE-2023-22485)
  for (const char* name : {"table", "strikethrough"}) {
    if (std::string_view(name) == "table" && !tables_are_small(md)) continue;
    if (cmark_syntax_extension* ext = cmark_find_syntax_extension(name))
      cmark_parser_attach_syntax_extension(parser.get(), ext);
  }
  cmark_parser_feed(parser.get(), md.data(), md.size());
  std::unique_ptr<cmark_node, void (*)(cmark_node*)> doc(cmark_parser_finish(parser.get()),
                                                         cmark_node_free);
  if (!doc) return {};
  char* html = cmark_render_html(doc.get(), opts, cmark_parser_get_syntax_extensions(parser.get()));
  if (!html) return {};
  std::string out(html);
  cmark_get_default_mem_allocator()->free(html);
  return out;
}

std::string human_size(uint64_t b) {
  if (b < 1000) return std::to_string(b) + " Bytes";
  const char* units[] = {"kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(b);
  int u = -1;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

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
      p.content_type = "text/css; charset=utf-8", p.body = kCss;
    else if (seg[1] == "ohm.js")
      p.content_type = "text/javascript; charset=utf-8", p.body = kJs;
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
    if (n == 1 && i == 0) {
      if (!check_name(seg[0], true).empty() || !hub.meta().get_user(seg[0])) return std::nullopt;
      return list_page(hub, caller, RepoType::Model, seg[0], param);
    }
    if (n < i + 2) return std::nullopt;
    const std::string action = n > i + 2 ? seg[i + 2] : "";
    if (!(action.empty() || action == "tree" || action == "commits" || action == "blob"))
      return std::nullopt;
    if (action == "blob" && n < i + 5) return std::nullopt;
    if (action == "commits" && n > i + 4) return std::nullopt;
    RepoCtx x{hub, caller, hub.repo_for_read(caller, t, seg[i], seg[i + 1])};
    std::string rest;
    for (size_t k = i + 4; k < n; ++k) rest += (k > i + 4 ? "/" : "") + seg[k];
    const std::string rev = n > i + 3 ? seg[i + 3] : "main";
    if (action.empty()) return repo_page(x);
    if (action == "tree") return tree_page(x, rev, rest);
    if (action == "commits") return commits_page(x, rev, param);
    return blob_page(x, rev, rest);
  } catch (const HubError& e) {
    if (e.code == "RepoNotFound") return error_page(404, "Repository not found.");
    return error_page(e.status == 401 ? 404 : e.status, e.what());
  } catch (const NotFoundError& e) {
    return error_page(404, e.what());
  }
}

}  // namespace ohm::hub
