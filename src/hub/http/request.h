// One request as the handlers see it: httplib's request and response, the body reader, the
// percent-decoded path segments, what the route pattern captured, and the authenticated caller.
// Private to src/hub.
#pragma once

#include <httplib.h>

#include <string>
#include <utility>
#include <vector>

#include "ohm/hub/hub.h"

namespace ohm::hub::http {

struct Request {
  const httplib::Request& req;
  httplib::Response& res;
  const httplib::ContentReader* reader = nullptr;  // POST/PUT/DELETE bodies, read on demand
  std::vector<std::string> seg;                    // the path, split at '/' and percent-decoded
  std::string base;                                // the Hub's base URL, for absolute links
  Caller caller;
  bool head = false;
  bool consumed = false;  // the request body was read (or drained)

  // What the route pattern captured (router.h): {repo_type}/{repo_type?} set `type`, {repo_id}
  // sets `ns` and `name`, every other {capture} is in `args`.
  RepoType type = RepoType::Model;
  std::string ns, name;
  std::vector<std::pair<std::string, std::string>> args;

  const std::string& method() const { return req.method; }
  // A named capture of the matched pattern ("" when the pattern has none by that name).
  const std::string& arg(std::string_view key) const {
    static const std::string none;
    for (auto& [k, v] : args)
      if (k == key) return v;
    return none;
  }
  // A query parameter ("" when absent) and all values of a repeated one.
  std::string param(const std::string& k) const {
    return req.has_param(k) ? req.get_param_value(k) : std::string();
  }
  std::vector<std::string> params(const std::string& k) const {
    std::vector<std::string> v;
    auto range = req.params.equal_range(k);
    for (auto it = range.first; it != range.second; ++it) v.push_back(it->second);
    return v;
  }
  std::string header(const std::string& k) const { return req.get_header_value(k); }
};

}  // namespace ohm::hub::http
