// Extension points of the Hub for modules built above it (the dataset viewer, src/dataviewer, is
// one: it needs Arrow, which the hub module must not depend on). An extension may
//   - answer HTTP requests before the Hub's route table (claims() picks them: cheap, no I/O),
//   - add a section to a repo's web page,
// and, through Hub::add_commit_hook, learn about every accepted commit.
// Errors an extension throws (ohm::hub errors, ohm::Error) are answered as the Hub answers its
// own; the caller is authenticated exactly as for the Hub's API (Authorization: Bearer).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ohm/hub/hub.h"

namespace ohm::hub {

struct ExtensionRequest {
  std::string method;
  std::vector<std::string> seg;                   // the path, split at '/' and percent-decoded
  std::multimap<std::string, std::string> query;  // decoded query parameters
  std::string host;                               // the Host header
  std::string base_url;                           // the Hub's base URL for absolute links
  Caller caller;
  // A query parameter ("" when absent).
  std::string param(const std::string& k) const {
    auto it = query.find(k);
    return it == query.end() ? std::string() : it->second;
  }
  bool has(const std::string& k) const { return query.count(k) > 0; }
};

struct ExtensionReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class HubExtension {
 public:
  virtual ~HubExtension() = default;
  // Whether this extension answers the request (path segments and Host header only).
  virtual bool claims(const std::vector<std::string>& seg, const std::string& host) const = 0;
  virtual ExtensionReply handle(Hub& hub, const ExtensionRequest& req) = 0;
  // HTML inserted on a repo's main web page (above the card) for a caller who may read the repo;
  // "" for none. `param` returns a query parameter of the page ("" when absent). Everything
  // user-controlled must be escaped (html_escape).
  virtual std::string repo_page_section(Hub&, const Caller&, const RepoInfo&,
                                        const std::function<std::string(const std::string&)>&) {
    return {};
  }
};

}  // namespace ohm::hub
