// The web UI's HTTP side: pages (rendered by webui.h), login and logout with session cookies,
// and the admin forms.
#include <map>

#include "../http/reply.h"
#include "handlers.h"
#include "ohm/hub/hash.h"
#include "ohm/hub/webui.h"

namespace ohm::hub::handlers {

using namespace http;

namespace {

// Web UI pages: no inline scripts or styles are ever emitted, so the policy can forbid them.
void send_page(Request& c, const WebPage& page) {
  c.res.status = page.status;
  c.res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src * data:; script-src 'self'; style-src 'self'; "
                   "object-src 'none'; base-uri 'none'; form-action 'self'; "
                   "frame-ancestors 'none'");
  c.res.set_header("X-Content-Type-Options", "nosniff");
  c.res.set_header("Referrer-Policy", "same-origin");
  c.res.set_header("Cache-Control",
                   c.seg.size() == 2 && c.seg[0] == "static" ? "public, max-age=300" : "no-cache");
  c.res.set_content(page.body, page.content_type);
}

// ------------------------------------------------------------------ web login and admin pages
// The browser logs in with a user token (POST /login) and gets an opaque session cookie:
// HttpOnly, SameSite=Strict, server-side, 12 h. Cookies authenticate web UI pages only, never
// the API. Every POST form carries a CSRF token that is checked (the session's; for the login
// form, a value also set as a cookie), and a foreign Origin is refused.
constexpr const char* kSessionCookie = "ohm_session";
constexpr const char* kLoginCookie = "ohm_login_csrf";

std::string cookie(const httplib::Request& req, const std::string& name) {
  const std::string all = req.get_header_value("Cookie");
  size_t pos = 0;
  while (pos < all.size()) {
    size_t end = all.find(';', pos);
    if (end == std::string::npos) end = all.size();
    std::string kv = all.substr(pos, end - pos);
    kv.erase(0, kv.find_first_not_of(' '));
    if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 && kv[name.size()] == '=')
      return kv.substr(name.size() + 1);
    pos = end + 1;
  }
  return {};
}

bool same_secret(const std::string& a, const std::string& b) {
  if (a.empty() || a.size() != b.size()) return false;
  unsigned diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ b[i]);
  return diff == 0;
}

std::map<std::string, std::string> read_form(Request& c) {
  std::map<std::string, std::string> out;
  for (auto& [k, v] : parse_form(read_body(c, 64u << 10))) out.emplace(k, v);  // first one wins
  return out;
}

std::string cookie_attrs(Request& c, int max_age, const char* path = "/") {
  return std::string("; Path=") + path + "; Max-Age=" + std::to_string(max_age) +
         "; HttpOnly; SameSite=Strict" + (c.base.starts_with("https://") ? "; Secure" : "");
}

// The session behind the request's cookie (pages authenticated by a header have none).
std::optional<Hub::WebSession> web_session(Hub& hub, Request& c) {
  const std::string id = cookie(c.req, kSessionCookie);
  if (id.empty() || !c.req.get_header_value("Authorization").empty()) return std::nullopt;
  return hub.session(id);
}

WebContext web_context(Hub& hub, Request& c) {
  WebContext wx;
  wx.base_url = c.base;
  if (auto s = web_session(hub, c)) {
    c.caller = s->caller;
    wx.csrf = s->csrf;
  }
  return wx;
}

void check_origin(Request& c) {
  const std::string origin = c.req.get_header_value("Origin");
  if (!origin.empty() && origin != c.base)
    throw Forbidden("cross-origin form submissions are refused");
}

void redirect(Request& c, const std::string& to) {
  c.res.status = 303;
  c.res.set_header("Location", to);
  c.res.set_content("", "text/plain");
}

void send_login(Request& c, const WebContext& wx, const std::string& error, int status) {
  const std::string form_csrf = random_hex(16);
  c.res.set_header("Set-Cookie",
                   std::string(kLoginCookie) + "=" + form_csrf + cookie_attrs(c, 3600, "/login"));
  send_page(c, render_login_page(c.caller, wx, form_csrf, error, status));
}

}  // namespace

void web_account(Service& svc, Request& c) {
  Hub& hub = svc.hub;
  const auto& s = c.seg;
  const std::string& m = c.req.method;
  WebContext wx = web_context(hub, c);
  const bool get = m == "GET" || m == "HEAD";
  if (!get && m != "POST") throw MethodNotAllowed("method not allowed");
  if (s.size() == 1 && s[0] == "login") {
    if (get) return send_login(c, wx, "", 200);
    check_origin(c);
    auto form = read_form(c);
    if (!same_secret(form["csrf"], cookie(c.req, kLoginCookie)))
      return send_login(c, wx, "The login form expired; please try again.", 403);
    Hub::WebSession sess;
    try {
      sess = hub.login(form["token"]);
    } catch (const HubError&) {
      return send_login(c, wx, "Invalid token.", 401);
    }
    c.res.set_header("Set-Cookie",
                     std::string(kSessionCookie) + "=" + sess.id +
                         cookie_attrs(c, static_cast<int>(Hub::kSessionTtlMs / 1000)));
    c.res.set_header("Set-Cookie", std::string(kLoginCookie) + "=" + cookie_attrs(c, 0, "/login"));
    return redirect(c, "/");
  }
  auto forbidden = [&](int status, const std::string& msg) {
    send_page(c, render_error_page(c.caller, wx, status, msg));
  };
  // Every other POST needs the session and its CSRF token.
  std::map<std::string, std::string> form;
  if (!get) {
    check_origin(c);
    form = read_form(c);
    if (wx.csrf.empty() || !same_secret(form["csrf"], wx.csrf))
      return forbidden(403, "Missing or invalid CSRF token; reload the page and try again.");
  }
  if (s.size() == 1 && s[0] == "logout" && !get) {
    hub.logout(cookie(c.req, kSessionCookie));
    c.res.set_header("Set-Cookie", std::string(kSessionCookie) + "=" + cookie_attrs(c, 0));
    return redirect(c, "/");
  }
  if (s[0] != "admin") throw NotFound("not found");
  if (c.caller.anonymous()) return get ? redirect(c, "/login") : forbidden(401, "Log in first.");
  if (!c.caller.admin) return forbidden(403, "Administrator rights required.");
  if (get && s.size() == 1) return send_page(c, render_admin_page(hub, c.caller, wx, ""));
  if (get || s.size() != 4 || (s[1] != "tokens" && s[1] != "users")) throw NotFound("not found");
  if (c.caller.scope != "write")
    return forbidden(403, "Administrator rights required (token has read scope).");
  std::string notice;
  try {
    if (s[1] == "tokens" && s[3] == "revoke") {
      if (s[2].empty() || s[2].size() > 18 || s[2].find_first_not_of("0123456789") != s[2].npos)
        throw BadRequest("token id must be a number");
      TokenInfo t = hub.revoke_token(s[2]);
      notice = "Token " + std::to_string(t.id) + " (" + t.name + ", " + t.user + ") revoked.";
    } else if (s[1] == "users" && s[3] == "delete") {
      if (s[2] == c.caller.user) throw BadRequest("Administrators cannot delete themselves");
      hub.delete_user(s[2]);
      notice = "User " + s[2] + " deleted.";
    } else {
      throw NotFound("not found");
    }
  } catch (const HubError& e) {
    if (e.hub_kind() == HubErrorKind::NotFound && notice.empty() &&
        e.what() == std::string("not found"))
      throw;
    notice = e.what();
  }
  // the session may have ended with the admin's own token
  if (!hub.session(cookie(c.req, kSessionCookie))) return redirect(c, "/login");
  send_page(c, render_admin_page(hub, c.caller, wx, notice));
}

void web_page(Service& svc, Request& c) {
  WebContext wx = web_context(svc.hub, c);
  if (!svc.extensions.empty())
    wx.repo_section = [&svc, &c](const RepoInfo& r,
                                 const std::function<std::string(const std::string&)>& param) {
      std::string html;
      for (auto& e : svc.extensions) html += e->repo_page_section(svc.hub, c.caller, r, param);
      return html;
    };
  auto page = render_web_ui(
      svc.hub, c.caller, c.seg, [&](const std::string& k) { return c.param(k); }, wx);
  if (!page) throw NotFound("not found");
  send_page(c, *page);
}

}  // namespace ohm::hub::handlers
