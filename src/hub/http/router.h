// The route table: {method, pattern, handler} rows, tried in order; the first row whose method
// and pattern both match the request gets it. Private to src/hub.
//
// A pattern is a '/'-separated list of segments, matched against the request's percent-decoded
// path segments (a %2F inside a segment stays inside it; one trailing '/' is ignored):
//   literal        the segment itself
//   {name}         any one segment (even empty), captured as arg("name")
//   {name...}      one or more segments, joined with '/'; last in the pattern
//   {name*}        zero or more segments, joined with '/'; last in the pattern
//   {repo_type}    "models", "datasets" or "spaces" (sets Request::type)
//   {repo_type?}   "datasets" or "spaces" when the segment is one of them (consumed), else nothing
//                  and the type is model: the URL form of files and git endpoints
//   {repo_id}      two segments, namespace and name (Request::ns, Request::name)
// A segment capture may end in a literal suffix, e.g. {repo_id}.git: the (last) segment must end
// with it and be longer, and the capture is the segment without it.
// A method is "GET", "GET|HEAD", "POST|DELETE", ... or "*" for any.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "request.h"

namespace ohm::hub::http {

class Pattern {
 public:
  explicit Pattern(std::string_view pattern);  // throws InvalidArgument for a malformed one
  // On a match, fills the captures of `r` and returns true; leaves `r` untouched otherwise.
  bool match(const std::vector<std::string>& seg, Request& r) const;
  const std::string& text() const { return text_; }

 private:
  enum class Kind { Literal, Capture, Tail, RepoType, OptRepoType, RepoId };
  struct Part {
    Kind kind;
    std::string text;    // the literal, or the capture's name
    std::string suffix;  // Capture, RepoId: required literal suffix
    size_t min = 0;      // Tail: fewest segments
  };
  std::string text_;
  std::vector<Part> parts_;
};

template <class Handler>
class Router {
 public:
  struct Route {
    std::string method;  // "GET|HEAD", "*", ...
    Pattern pattern;
    Handler handler;
  };
  void add(std::string_view method, std::string_view pattern, Handler h) {
    routes_.push_back(Route{std::string(method), Pattern(pattern), std::move(h)});
  }
  // The first route that matches (captures filled into `r`), or nullptr.
  const Route* match(Request& r) const {
    for (auto& rt : routes_)
      if (method_matches(rt.method, r.method()) && rt.pattern.match(r.seg, r)) return &rt;
    return nullptr;
  }
  const std::vector<Route>& routes() const { return routes_; }

 private:
  static bool method_matches(std::string_view list, std::string_view m) {
    if (list == "*") return true;
    while (!list.empty()) {
      const size_t bar = list.find('|');
      if (list.substr(0, bar) == m) return true;
      if (bar == std::string_view::npos) break;
      list.remove_prefix(bar + 1);
    }
    return false;
  }
  std::vector<Route> routes_;
};

// "/a/b%2Fc/" -> {"a", "b/c"}; "/" -> {""}. BadRequest for a target that is not a path or has
// malformed percent-encoding.
std::vector<std::string> split_path(const std::string& target);

}  // namespace ohm::hub::http
