// Requests that an extension (ohm/hub/extension.h) claimed, and the dataset viewer's URLs on a
// hub that has no viewer extension.
#include "../http/reply.h"
#include "handlers.h"

namespace ohm::hub::handlers {

using http::send_json;

void extension_request(Service& svc, Request& c, HubExtension& ext) {
  ExtensionRequest q;
  q.method = c.method();
  q.seg = c.seg;
  for (auto& [k, v] : c.req.params) q.query.emplace(k, v);
  q.host = c.header("Host");
  q.base_url = c.base;
  q.caller = c.caller;
  ExtensionReply r = ext.handle(svc.hub, q);
  c.res.status = r.status;
  for (auto& [k, v] : r.headers) c.res.set_header(k, http::header_safe(v));
  if (c.head)
    c.res.set_header("Content-Length", std::to_string(r.body.size()));
  else
    c.res.set_content(r.body, r.content_type);
}

void viewer_unavailable(Service&, Request& c) {
  c.res.set_header("X-Error-Code", "ViewerNotBuilt");
  send_json(c,
            {{"error",
              "The dataset viewer is not available: this hub was built without Apache Arrow "
              "(the datasets module). See docs/hub.md, \"Dataset viewer\"."}},
            501);
}

}  // namespace ohm::hub::handlers
