// The web UI's stylesheet and script (served as /static/ohm.css and /static/ohm.js).
#include "assets.h"

namespace ohm::hub::webui_detail {

const char* const kCss = R"CSS(
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
.badge.verified{color:#166534;background:#dcfce7;border-color:#bbf7d0;font-family:var(--mono)}
.badge.unverified{color:#9a3412;background:#ffedd5;border-color:#fed7aa}
.badge.encrypted{color:#3730a3;background:#e0e7ff;border-color:#c7d2fe}
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
.dv{border:1px solid var(--line);border-radius:10px;padding:12px 16px;margin:0 0 22px}
.dv h2{font-size:16px;margin:0 0 8px}
.dv-meta{color:var(--muted);font-size:13px;margin-bottom:8px}
.dv-pick{display:flex;gap:6px;flex-wrap:wrap;align-items:center;margin:6px 0}
.dv-label{font-size:12px;color:var(--muted);width:48px}
.dv-pick a{border:1px solid var(--line);border-radius:8px;padding:3px 10px;font-size:13px;color:var(--fg)}
.dv-pick a.active{border-color:var(--accent);background:#eef2ff}
.dv-pick small{color:var(--muted)}
.dv-scroll{overflow:auto;max-height:520px;border:1px solid var(--line);border-radius:8px;margin-top:8px}
.dv-table{border-collapse:collapse;font-size:13px;width:100%}
.dv-table th{position:sticky;top:0;background:var(--bg);text-align:left;font-family:var(--mono)}
.dv-table th small{display:block;font-weight:400;color:var(--muted);font-family:system-ui,sans-serif}
.dv-table th,.dv-table td{border-bottom:1px solid var(--line);padding:5px 9px;vertical-align:top;max-width:420px;overflow-wrap:anywhere}
.dv-idx{color:var(--muted);font-family:var(--mono)}
.dv-note{color:var(--muted);font-size:13px}
.dv-error{color:#9f1239}
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
table.sortable th[data-sort]{cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" \25B2";font-size:10px}
table.sortable th[aria-sort=descending]::after{content:" \25BC";font-size:10px}
table.sortable th small{font-weight:400;color:var(--muted)}
table.leaderboard td{font-variant-numeric:tabular-nums}
table.leaderboard td.avg,table.leaderboard th.avg{background:#f5f7ff}
#task-filter{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:0 0 16px}
#task-filter a.badge{text-decoration:none}
#task-filter a.badge.selected{background:#4f46e5;color:#fff;border-color:#4f46e5}
)CSS";

const char* const kJs = R"JS(
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
  // Sortable tables (leaderboard, evaluation results): click a header with data-sort; cells
  // compare by data-value (numbers for data-sort="num", empty cells last).
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = Array.prototype.slice.call(table.querySelectorAll('thead th'));
    heads.forEach(function (th, col) {
      if (!th.hasAttribute('data-sort')) return;
      th.addEventListener('click', function () {
        var num = th.getAttribute('data-sort') === 'num';
        var asc = th.getAttribute('aria-sort') === 'descending' ||
                  (!th.hasAttribute('aria-sort') && !num);
        heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (r) {
          var c = r.cells[col];
          var v = c ? (c.hasAttribute('data-value') ? c.getAttribute('data-value') : c.textContent) : '';
          return num ? (v === '' ? null : parseFloat(v)) : v.toLowerCase();
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (x === null || y === null) return x === y ? 0 : (x === null ? 1 : -1);
          var d = x < y ? -1 : x > y ? 1 : 0;
          return asc ? d : -d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll('[data-copy]').forEach(function (b) {
    b.addEventListener('click', function () {
      if (navigator.clipboard) navigator.clipboard.writeText(b.getAttribute('data-copy'));
    });
  });
});
)JS";

}  // namespace ohm::hub::webui_detail
