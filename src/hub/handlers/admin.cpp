// Admin API (hub administrators only).
#include "../http/reply.h"
#include "handlers.h"

namespace ohm::hub::handlers {

using namespace http;

namespace {

// ------------------------------------------------------------------ admin API
// GET /api/admin/users, DELETE /api/admin/users/{name}, GET /api/admin/tokens[?user=U],
// DELETE /api/admin/tokens/{id}: hub administrators only (401 anonymous, 403 otherwise;
// deletions need a write token). Token secrets are stored hashed and never listed.
json token_json(const TokenInfo& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"user", t.user},
          {"role", t.scope},
          {"createdAt", iso_date(t.created_ms)},
          {"lastUsedAt", t.last_used_ms ? json(iso_date(t.last_used_ms)) : json(nullptr)}};
}

void require_admin(const Caller& caller, bool write) {
  if (caller.anonymous()) throw Unauthorized("You must be authenticated as an administrator");
  if (!caller.admin) throw Forbidden("Administrator rights required");
  if (write && caller.scope != "write")
    throw Forbidden("Administrator rights required (token has read scope)");
}

void list_users(Service& svc, Request& c) {
  json arr = json::array();
  for (auto& u : svc.hub.list_users())
    arr.push_back({{"name", u.name},
                   {"fullname", u.fullname},
                   {"email", u.email.empty() ? json(nullptr) : json(u.email)},
                   {"type", u.is_org ? "org" : "user"},
                   {"isAdmin", u.is_admin},
                   {"createdAt", iso_date(u.created_ms)}});
  send_json(c, arr);
}

void delete_user(Service& svc, Request& c) {
  const std::string& user = c.arg("user");
  if (user == c.caller.user) throw BadRequest("Administrators cannot delete themselves");
  svc.hub.delete_user(user);
  send_json(c, {{"deleted", user}});
}

void list_tokens(Service& svc, Request& c) {
  json arr = json::array();
  for (auto& t : svc.hub.list_tokens(c.param("user"))) arr.push_back(token_json(t));
  send_json(c, arr);
}

void revoke_token(Service& svc, Request& c) {
  const std::string& id = c.arg("id");
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != id.npos)
    throw BadRequest("token id must be a number");
  send_json(c, {{"revoked", token_json(svc.hub.revoke_token(id))}});
}

const http::Router<Handler>& admin_routes() {
  static const http::Router<Handler> table = [] {
    http::Router<Handler> t;
    t.add("GET|HEAD", "/api/admin/users", list_users);
    t.add("DELETE", "/api/admin/users/{user}", delete_user);
    t.add("GET|HEAD", "/api/admin/tokens", list_tokens);
    t.add("DELETE", "/api/admin/tokens/{id}", revoke_token);
    return t;
  }();
  return table;
}

}  // namespace

// Every admin URL: the method is checked first (405), then the caller (401/403), then the path.
void admin_api(Service& svc, Request& c) {
  const std::string& m = c.method();
  const bool del = m == "DELETE";
  if (!del && m != "GET" && m != "HEAD") throw MethodNotAllowed("method not allowed");
  require_admin(c.caller, del);
  const auto* route = admin_routes().match(c);
  if (!route) throw NotFound("unknown admin endpoint");
  route->handler(svc, c);
}

}  // namespace ohm::hub::handlers
