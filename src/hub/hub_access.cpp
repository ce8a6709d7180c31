// Hub's users, organisations, tokens, web sessions and access rules: who the caller is, what
// they may read and write, gates, likes and access requests.
#include <strings.h>

#include <algorithm>

#include "ohm/core/error.h"
#include "ohm/hub/hash.h"
#include "ohm/hub/hub.h"

namespace ohm::hub {

void Hub::add_user(const std::string& name, bool is_org, const std::string& fullname,
                   const std::string& email) {
  if (auto e = check_name(name, true); !e.empty()) throw InvalidArgument(e);
  if (meta_->get_user(name)) throw InvalidArgument("user or organisation '" + name + "' exists");
  meta_->create_user(UserInfo{name, fullname, email, is_org, 0});
}

void Hub::add_member(const std::string& org, const std::string& user) {
  auto o = meta_->get_user(org);
  if (!o || !o->is_org) throw NotFoundError("no organisation '" + org + "'");
  auto u = meta_->get_user(user);
  if (!u || u->is_org) throw NotFoundError("no user '" + user + "'");
  meta_->add_member(org, user);
}

std::string Hub::create_token(const std::string& user, const std::string& scope,
                              const std::string& name) {
  auto u = meta_->get_user(user);
  if (!u || u->is_org) throw NotFoundError("no user '" + user + "'");
  if (scope != "read" && scope != "write") throw InvalidArgument("scope must be read or write");
  const std::string token = "hf_" + random_hex(20);
  TokenInfo t;
  t.user = user;
  t.scope = scope;
  t.name = name;
  meta_->add_token(sha256_hex(token), t);
  return token;
}

Caller Hub::caller_for(const TokenInfo& t) {
  Caller c;
  c.user = t.user;
  c.scope = t.scope;
  c.token_name = t.name;
  c.token_id = t.id;
  c.orgs = meta_->orgs_of(t.user);
  auto u = meta_->get_user(t.user);
  c.admin = u && u->is_admin;
  // last_used_ms: at most one write per token and minute
  const int64_t now = now_ms();
  if (now - t.last_used_ms > 60000) meta_->touch_token(t.id, now);
  return c;
}

void Hub::set_admin(const std::string& user, bool admin) {
  auto u = meta_->get_user(user);
  if (!u || u->is_org) throw NotFoundError("no user '" + user + "'");
  meta_->set_admin(user, admin);
}

void Hub::delete_user(const std::string& name) {
  auto u = meta_->get_user(name);
  if (!u) throw NotFound("No user or organisation '" + name + "'");
  size_t owned = 0;
  for (RepoType t : {RepoType::Model, RepoType::Dataset, RepoType::Space})
    for (auto& r : meta_->list_repos(t))
      if (strcasecmp(r.ns.c_str(), name.c_str()) == 0) ++owned;
  if (owned)
    throw BadRequest("'" + name + "' still owns " + std::to_string(owned) +
                     " repo(s); delete them first");
  meta_->delete_user(u->name);
}

std::vector<TokenInfo> Hub::list_tokens(const std::string& user) {
  return meta_->list_tokens(user);
}

TokenInfo Hub::revoke_token(const std::string& key) {
  if (key.empty()) throw BadRequest("token id or name is empty");
  const bool numeric = key.size() <= 18 && key.find_first_not_of("0123456789") == std::string::npos;
  std::vector<TokenInfo> hits;
  for (auto& t : meta_->list_tokens(""))
    if (numeric ? std::to_string(t.id) == key : t.name == key) hits.push_back(t);
  if (hits.empty()) throw NotFound("No token with id or name '" + key + "'");
  if (hits.size() > 1) {
    std::string ids;
    for (auto& t : hits) ids += (ids.empty() ? "" : ", ") + std::to_string(t.id);
    throw BadRequest(std::to_string(hits.size()) + " tokens are named '" + key + "' (ids " + ids +
                     "); revoke one by its id");
  }
  meta_->delete_token(hits[0].id);
  return hits[0];
}

Hub::WebSession Hub::login(std::string_view token) {
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t' || token.back() == '\r' ||
                            token.back() == '\n'))
    token.remove_suffix(1);
  if (token.empty() || token.size() > 256) throw Unauthorized("Invalid token");
  const std::string hash = sha256_hex(token);
  auto t = meta_->find_token(hash);
  if (!t) throw Unauthorized("Invalid token");
  WebSession s;
  s.id = random_hex(32);
  s.csrf = random_hex(32);
  s.caller = caller_for(*t);
  const int64_t now = now_ms();
  std::lock_guard l(session_mu_);
  if (sessions_.size() >= 10000) {
    for (auto it = sessions_.begin(); it != sessions_.end();)
      it = it->second.expires_ms <= now ? sessions_.erase(it) : std::next(it);
    while (sessions_.size() >= 10000) {  // still full: drop the one closest to expiry
      auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
        return a.second.expires_ms < b.second.expires_ms;
      });
      sessions_.erase(oldest);
    }
  }
  sessions_[sha256_hex(s.id)] = SessionRec{s.csrf, hash, now + kSessionTtlMs};
  return s;
}

std::optional<Hub::WebSession> Hub::session(const std::string& id) {
  if (id.size() != 64 || !is_hex(id, 64)) return std::nullopt;
  const std::string key = sha256_hex(id);
  SessionRec rec;
  {
    std::lock_guard l(session_mu_);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return std::nullopt;
    if (it->second.expires_ms <= now_ms()) {
      sessions_.erase(it);
      return std::nullopt;
    }
    rec = it->second;
  }
  auto t = meta_->find_token(rec.token_sha256);
  if (!t) {  // revoked
    logout(id);
    return std::nullopt;
  }
  WebSession s;
  s.csrf = rec.csrf;
  s.caller = caller_for(*t);
  return s;
}

void Hub::logout(const std::string& id) {
  std::lock_guard l(session_mu_);
  sessions_.erase(sha256_hex(id));
}

Caller Hub::authenticate(std::string_view auth) {
  Caller c;
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  if (auth.empty()) return c;
  std::string_view token;
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer "))
    token = auth.substr(7);
  else
    throw Unauthorized("Invalid credentials in Authorization header");
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  auto t = meta_->find_token(sha256_hex(token));
  if (!t) throw Unauthorized("Invalid credentials in Authorization header");
  return caller_for(*t);
}

bool Hub::can_write_namespace(const Caller& c, const std::string& ns) const {
  if (c.anonymous() || c.scope != "write") return false;
  return c.user == ns || std::find(c.orgs.begin(), c.orgs.end(), ns) != c.orgs.end();
}

static bool owns(const Caller& c, const std::string& ns) {
  return !c.anonymous() &&
         (c.user == ns || std::find(c.orgs.begin(), c.orgs.end(), ns) != c.orgs.end());
}

bool Hub::can_read(const Caller& c, const RepoInfo& r) const {
  return !r.is_private || owns(c, r.ns);
}
bool Hub::can_write(const Caller& c, const RepoInfo& r) const {
  return can_write_namespace(c, r.ns);
}

RepoInfo Hub::repo_for_read(const Caller& c, RepoType t, const std::string& ns,
                            const std::string& name) {
  std::optional<RepoInfo> r;
  if (check_name(ns, true).empty() && check_name(name, false).empty())
    r = meta_->get_repo(t, ns, name);
  if (!r || !can_read(c, *r)) {
    const std::string msg =
        "Repository Not Found for url: " + std::string(url_prefix(t)) + ns + "/" + name +
        ". Please make sure you specified the correct `repo_id` and "
        "`repo_type`. If you are trying to access a private or gated repo, make "
        "sure you are authenticated.";
    throw repo_not_found(msg, c.anonymous());
  }
  return *r;
}

RepoInfo Hub::repo_for_write(const Caller& c, RepoType t, const std::string& ns,
                             const std::string& name) {
  RepoInfo r = repo_for_read(c, t, ns, name);
  if (c.anonymous()) throw Unauthorized("You must be authenticated to write to this repo");
  if (!can_write(c, r))
    throw Forbidden("You don't have the rights to write to " + r.full_id() +
                    (c.scope != "write" ? " (token has read scope)" : ""));
  return r;
}

bool Hub::has_gate_access(const Caller& c, const RepoInfo& r) const {
  if (r.gated.empty() || owns(c, r.ns)) return true;
  if (c.anonymous()) return false;
  auto a = meta_->get_access(r.id, c.user);
  return a && a->status == "accepted";
}

bool Hub::can_read_eval_results(const Caller& c, const RepoInfo& r) const {
  return can_read(c, r) && has_gate_access(c, r);
}

void Hub::check_gate(const Caller& c, const RepoInfo& r) const {
  if (has_gate_access(c, r)) return;
  throw gated_repo("Access to model " + r.full_id() +
                       " is restricted. You must have access to it "
                       "and be authenticated to access it. Please log in.",
                   c.anonymous());
}

int64_t Hub::like(const Caller& c, const RepoInfo& r, bool like) {
  if (c.anonymous()) throw Unauthorized("You must be authenticated to like a repo");
  meta_->set_like(r.id, c.user, like);
  auto now = meta_->get_repo(r.type, r.ns, r.name);
  return now ? now->likes : 0;
}

std::string Hub::request_access(const Caller& c, const RepoInfo& r,
                                const std::string& fields_json) {
  if (c.anonymous()) throw Unauthorized("You must be authenticated to request access");
  if (r.gated.empty()) throw BadRequest(r.full_id() + " is not a gated repo");
  if (owns(c, r.ns)) return "accepted";
  auto prev = meta_->get_access(r.id, c.user);
  if (prev && (prev->status == "accepted" || prev->status == "rejected")) return prev->status;
  AccessRequest a;
  a.user = c.user;
  a.status = r.gated == "auto" ? "accepted" : "pending";
  a.fields_json = fields_json.empty() ? "{}" : fields_json;
  if (prev) a.created_ms = prev->created_ms;
  meta_->set_access(r.id, a);
  return a.status;
}

void Hub::handle_access(const RepoInfo& r, const std::string& user, const std::string& status) {
  if (r.gated.empty()) throw BadRequest(r.full_id() + " is not a gated repo");
  if (status != "pending" && status != "accepted" && status != "rejected")
    throw BadRequest("status must be pending, accepted or rejected");
  auto a = meta_->get_access(r.id, user);
  if (!a) throw NotFound("No access request from '" + user + "' for " + r.full_id());
  a->status = status;
  meta_->set_access(r.id, *a);
}

void Hub::grant_access(const RepoInfo& r, const std::string& user) {
  if (r.gated.empty()) throw BadRequest(r.full_id() + " is not a gated repo");
  auto u = meta_->get_user(user);
  if (!u || u->is_org) throw NotFound("User '" + user + "' not found");
  auto a = meta_->get_access(r.id, user);
  if (a && a->status == "accepted")
    throw BadRequest("User '" + user + "' already has access to " + r.full_id());
  AccessRequest n;
  n.user = user;
  n.status = "accepted";
  if (a) n = *a, n.status = "accepted";
  meta_->set_access(r.id, n);
}

}  // namespace ohm::hub
