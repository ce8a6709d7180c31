// The Hub API's request handlers, grouped by area (one .cpp each), and the route table that
// reaches them (routes.cpp). Private to src/hub. See docs/contributing.md, "Add a Hub endpoint".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "../http/request.h"
#include "../http/router.h"
#include "ohm/hub/extension.h"
#include "ohm/hub/hub.h"
#include "ohm/hub/server.h"

namespace ohm::hub::handlers {

using http::Request;

// What every handler may use: the options, the domain layer and the server's signing secret.
struct Service {
  explicit Service(ServerOptions o);
  ServerOptions opt;
  Hub hub;
  const std::string secret;  // signs LFS upload URLs; new at every start
  std::vector<std::shared_ptr<HubExtension>> extensions;
};

using Handler = void (*)(Service&, Request&);
struct Endpoint {
  Handler handler;
  bool authenticate = true;  // false: no Authorization header is read (self-authorising URLs)
};
using RouteTable = http::Router<Endpoint>;

// The whole HTTP surface, in match order (routes.cpp).
const RouteTable& route_table();

// read.cpp: repo listings and info, trees, paths-info, refs, commits, file downloads, whoami,
// access checks.
void list_repos(Service&, Request&);
void repo_info(Service&, Request&);
void tree(Service&, Request&);
void paths_info(Service&, Request&);
void refs(Service&, Request&);
void commits(Service&, Request&);
void resolve(Service&, Request&);
void whoami(Service&, Request&);
void auth_check(Service&, Request&);
void auth_check_write(Service&, Request&);

// write.cpp: repo create/delete/settings, preupload, commit, branches and tags, validate-yaml.
void repo_create(Service&, Request&);
void repo_delete(Service&, Request&);
void settings(Service&, Request&);
void preupload(Service&, Request&);
void commit(Service&, Request&);
void branch(Service&, Request&);
void tag(Service&, Request&);
void validate_yaml(Service&, Request&);

// lfs.cpp: the git LFS batch API, signed upload URLs and verify.
void lfs_batch(Service&, Request&);
void lfs_put(Service&, Request&);
void lfs_verify(Service&, Request&);

// social.cpp: likes and gated-repo access requests.
void like(Service&, Request&);
void likers(Service&, Request&);
void user_likes(Service&, Request&);
void access_request(Service&, Request&);

// admin.cpp: the admin API (users and tokens).
void admin_api(Service&, Request&);

// web.cpp: the web UI's pages, login/logout and admin forms.
void web_account(Service&, Request&);
void web_page(Service&, Request&);

// The dataset viewer's URLs when no extension answers them (a hub built without Arrow): 501.
void viewer_unavailable(Service&, Request&);
// A request an extension claimed (server.cpp asks them before the route table).
void extension_request(Service&, Request&, HubExtension& ext);

}  // namespace ohm::hub::handlers
