// The route table: every URL the Hub answers, in match order (the first row whose method and
// pattern match gets the request; see http/router.h for the pattern syntax). The catch-all rows
// at the end of each block answer what no row above took.
#include "handlers.h"
#include "ohm/hub/errors.h"

namespace ohm::hub::handlers {

namespace {

void not_found(Service&, Request&) {
  throw NotFound("not found");
}
void method_not_allowed(Service&, Request&) {
  throw MethodNotAllowed("method not allowed");
}
void namespace_only(Service&, Request&) {  // /api/models/{namespace}: no repo name
  throw NotFound("Repository not found", HubErrorCode::RepoNotFound);
}
void unsupported_repos_op(Service&, Request&) {
  throw NotFound("unsupported repos operation");
}
void git_protocol(Service&, Request&) {
  throw NotFound("git protocol is not supported");
}
void telemetry(Service&, Request& c) {
  c.res.status = 200;
}

RouteTable make_table() {
  RouteTable t;
  constexpr bool kNoAuth = false;
  // Self-authorising LFS upload URLs (signed by lfs_batch): no Authorization header is read.
  t.add("PUT", "/api/lfs-upload/{oid}", {lfs_put, kNoAuth});

  t.add("*", "/api/whoami-v2", {whoami});
  t.add("GET", "/api/users/{user}/likes", {user_likes});
  t.add("POST", "/api/validate-yaml/{rest*}", {validate_yaml});
  t.add("*", "/api/telemetry/{rest*}", {telemetry});
  t.add("*", "/api/admin/{rest*}", {admin_api});
  t.add("POST", "/api/repos/create", {repo_create});
  t.add("DELETE", "/api/repos/delete", {repo_delete});
  t.add("*", "/api/repos/{op}", {unsupported_repos_op});
  t.add("POST", "/api/lfs-verify/{type}/{repo_id}", {lfs_verify});

  t.add("GET|HEAD", "/api/{repo_type}", {list_repos});
  t.add("*", "/api/{repo_type}", {method_not_allowed});
  t.add("*", "/api/{repo_type}/{namespace}", {namespace_only});
  t.add("*", "/api/{repo_type}/{repo_id}", {repo_info});
  t.add("*", "/api/{repo_type}/{repo_id}/revision/{revision...}", {repo_info});
  t.add("*", "/api/{repo_type}/{repo_id}/tree/{revision}/{path*}", {tree});
  t.add("*", "/api/{repo_type}/{repo_id}/refs", {refs});
  t.add("*", "/api/{repo_type}/{repo_id}/commits/{revision...}", {commits});
  t.add("POST", "/api/{repo_type}/{repo_id}/paths-info/{revision...}", {paths_info});
  t.add("POST", "/api/{repo_type}/{repo_id}/preupload/{revision...}", {preupload});
  t.add("POST", "/api/{repo_type}/{repo_id}/commit/{revision...}", {commit});
  t.add("*", "/api/{repo_type}/{repo_id}/branch/{branch...}", {branch});
  t.add("*", "/api/{repo_type}/{repo_id}/tag/{tag...}", {tag});
  t.add("PUT", "/api/{repo_type}/{repo_id}/settings", {settings});
  t.add("POST|DELETE", "/api/{repo_type}/{repo_id}/like", {like});
  t.add("GET", "/api/{repo_type}/{repo_id}/likers", {likers});
  t.add("*", "/api/{repo_type}/{repo_id}/user-access-request", {access_request});
  t.add("*", "/api/{repo_type}/{repo_id}/user-access-request/{sub}", {access_request});
  t.add("GET|HEAD", "/api/{repo_type}/{repo_id}/auth-check", {auth_check});
  t.add("GET|HEAD", "/api/{repo_type}/{repo_id}/auth-check/write", {auth_check_write});
  // The dataset viewer (src/dataviewer, an extension that answers these first when built).
  t.add("*", "/api/{repo_type}/{repo_id}/parquet/{rest*}", {viewer_unavailable});
  t.add("*", "/api/{rest*}", {not_found});

  // Files and the git LFS endpoint: models at /{ns}/{name}, others under /datasets, /spaces.
  t.add("POST", "/{repo_type?}/{repo_id}.git/info/lfs/objects/batch", {lfs_batch});
  t.add("*", "/{repo_type?}/{repo_id}.git/{rest*}", {git_protocol});
  t.add("GET|HEAD", "/{repo_type?}/{repo_id}/resolve/{revision}/{path...}", {resolve});

  t.add("*", "/datasets-server/{rest*}", {viewer_unavailable});

  // The web UI.
  t.add("*", "/login/{rest*}", {web_account});
  t.add("*", "/logout/{rest*}", {web_account});
  t.add("*", "/admin/{rest*}", {web_account});
  t.add("GET|HEAD", "/{rest*}", {web_page});
  t.add("*", "/{rest*}", {not_found});
  return t;
}

}  // namespace

const RouteTable& route_table() {
  static const RouteTable table = make_table();
  return table;
}

}  // namespace ohm::hub::handlers
