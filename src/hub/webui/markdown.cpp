// HTML escaping, model-card Markdown (cmark-gfm, with limits against its slow paths) and sizes.
#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "ohm/hub/webui.h"

namespace ohm::hub {

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

}  // namespace ohm::hub
