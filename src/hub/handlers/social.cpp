// Social API: likes, likers, a user's liked repos, and gated-repo access requests.
#include "../http/reply.h"
#include "handlers.h"
#include "ohm/hub/hash.h"

namespace ohm::hub::handlers {

using namespace http;

// ------------------------------------------------------------------ likes
void like(Service& svc, Request& c) {
  RepoInfo r = svc.hub.repo_for_read(c.caller, c.type, c.ns, c.name);
  const int64_t n = svc.hub.like(c.caller, r, c.method() == "POST");
  send_json(c, {{"likes", n}});
}

void likers(Service& svc, Request& c) {
  RepoInfo r = svc.hub.repo_for_read(c.caller, c.type, c.ns, c.name);
  json arr = json::array();
  for (auto& [user, ms] : svc.hub.meta().likers(r.id)) {
    auto u = svc.hub.meta().get_user(user);
    arr.push_back({{"user", user},
                   {"fullname", u ? u->fullname : ""},
                   {"avatarUrl", ""},
                   {"type", "user"},
                   {"isPro", false}});
    (void)ms;
  }
  send_json(c, arr);
}

void user_likes(Service& svc, Request& c) {
  const std::string& user = c.arg("user");
  if (!check_name(user, true).empty() || !svc.hub.meta().get_user(user))
    throw NotFound("User not found");
  json arr = json::array();
  for (auto& l : svc.hub.meta().likes_of(user)) {
    auto r = svc.hub.meta().get_repo(l.type, l.ns, l.name);
    if (!r || !svc.hub.can_read(c.caller, *r)) continue;
    arr.push_back({{"createdAt", iso_date(l.created_ms)},
                   {"repo", {{"name", r->full_id()}, {"type", to_string(r->type)}}}});
  }
  send_json(c, arr);
}

static std::string access_request_id(const RepoInfo& r, const std::string& user) {
  return sha256_hex("access|" + std::to_string(r.id) + "|" + user).substr(0, 24);
}

// ------------------------------------------------------------------ gated access
// POST .../user-access-request (the caller asks), GET .../{pending,accepted,rejected},
// POST .../handle {"user"|"requestId", "status"}, POST .../grant {"user"} (repo writers).
void access_request(Service& svc, Request& c) {
  const std::string& sub = c.arg("sub");
  const std::string& m = c.req.method;
  if (sub.empty()) {
    if (m != "POST") throw MethodNotAllowed("method not allowed");
    RepoInfo r = svc.hub.repo_for_read(c.caller, c.type, c.ns, c.name);
    json j = parse_object(read_body(c, svc.opt.max_json_bytes), "access request body");
    json fields = j.contains("fields") && j["fields"].is_object() ? j["fields"] : json::object();
    const std::string st = svc.hub.request_access(c.caller, r, dump(fields));
    return send_json(c, {{"status", st}});
  }
  RepoInfo r = svc.hub.repo_for_write(c.caller, c.type, c.ns, c.name);
  if (m == "GET" && (sub == "pending" || sub == "accepted" || sub == "rejected")) {
    if (r.gated.empty()) throw BadRequest(r.full_id() + " is not a gated repo");
    json arr = json::array();
    for (auto& a : svc.hub.meta().access_requests(r.id, sub)) {
      auto u = svc.hub.meta().get_user(a.user);
      json fields = json::parse(a.fields_json, nullptr, false);
      json e = {{"user",
                 {{"user", a.user},
                  {"fullname", u ? u->fullname : ""},
                  {"email", u && !u->email.empty() ? json(u->email) : json(nullptr)},
                  {"avatarUrl", ""}}},
                {"requestId", access_request_id(r, a.user)},
                {"status", a.status},
                {"timestamp", iso_date(a.created_ms)}};
      if (fields.is_object() && !fields.empty()) e["fields"] = fields;
      arr.push_back(std::move(e));
    }
    return send_json(c, arr);
  }
  if (m != "POST" || (sub != "handle" && sub != "grant"))
    throw NotFound("unsupported access request operation");
  json j = parse_object(read_body(c, svc.opt.max_json_bytes), "access request body");
  std::string user = get_str(j, "user", "access request body");
  if (user.empty()) {
    const std::string id = get_str(j, "requestId", "access request body");
    for (const char* st : {"pending", "accepted", "rejected"})
      for (auto& a : svc.hub.meta().access_requests(r.id, st))
        if (!id.empty() && access_request_id(r, a.user) == id) user = a.user;
    if (user.empty()) throw NotFound("Access request not found");
  }
  if (sub == "grant") {
    svc.hub.grant_access(r, user);
  } else {
    svc.hub.handle_access(r, user, get_str(j, "status", "access request body"));
  }
  send_json(c, json::object());
}

}  // namespace ohm::hub::handlers
