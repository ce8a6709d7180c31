// The hub's web UI: server-rendered HTML pages (repo lists with search and sort, repo pages with
// the model card rendered from Markdown, files and versions, commit history), plus one CSS and one
// JS file, all embedded in the binary. Everything user-controlled is HTML-escaped; Markdown goes
// through cmark-gfm without raw HTML or unsafe links. See docs/hub.md.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/core/html.h"
#include "ohm/hub/hub.h"

namespace ohm::hub {

struct WebPage {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
};

// What a page needs besides the caller: the Hub's URL (Download box) and the browser session
// (the header shows the user with a logout form; every POST form carries `csrf`).
struct WebContext {
  std::string base_url;  // e.g. http://127.0.0.1:8080 (public_url or the request's Host)
  std::string csrf;      // the session's CSRF token; empty without a session
  // Extra HTML for a repo's main page, above the card (extensions: the dataset viewer); null
  // or "" for none. Called only for repos the caller may read.
  std::function<std::string(const RepoInfo&, const std::function<std::string(const std::string&)>&)>
      repo_section;
};

// Renders the page for a GET of the (percent-decoded) path segments `seg`; std::nullopt when the
// path is not a web UI route. `param` returns a query parameter ("" when absent). Repos the
// caller cannot read answer 404 pages, exactly like unknown ones.
std::optional<WebPage> render_web_ui(Hub& hub, const Caller& caller,
                                     const std::vector<std::string>& seg,
                                     const std::function<std::string(const std::string&)>& param,
                                     const WebContext& ctx = {});
// GET /login: a form taking a user token; `form_csrf` is the pre-session CSRF value the form
// posts back (the server also sets it as a cookie); `error` is shown above the form.
WebPage render_login_page(const Caller& caller, const WebContext& ctx, const std::string& form_csrf,
                          const std::string& error, int status);
// GET /admin: users and tokens (never token secrets) with delete/revoke forms. Admins only; the
// caller checks.
WebPage render_admin_page(Hub& hub, const Caller& caller, const WebContext& ctx,
                          const std::string& notice);
WebPage render_error_page(const Caller& caller, const WebContext& ctx, int status,
                          const std::string& msg);

// & < > " ' escaped (ohm/core/html.h).
using ::ohm::html_escape;
// GitHub Flavored Markdown to HTML (cmark-gfm with tables and strikethrough; tables only when
// they are small, see webui.cpp; safe mode: raw HTML omitted, javascript:/data: links dropped)
// after removing a leading YAML front-matter block.
std::string render_markdown(std::string_view markdown);
// 1234567 -> "1.23 MB"
std::string human_size(uint64_t bytes);

}  // namespace ohm::hub
