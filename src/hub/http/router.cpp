#include "router.h"

#include "ohm/core/error.h"
#include "ohm/hub/errors.h"
#include "ohm/hub/validate.h"

namespace ohm::hub::http {

namespace {

std::string join(const std::vector<std::string>& v, size_t from) {
  std::string s;
  for (size_t i = from; i < v.size(); ++i) {
    if (i > from) s += '/';
    s += v[i];
  }
  return s;
}

bool strip_suffix(std::string_view s, const std::string& suffix, std::string& out) {
  if (suffix.empty()) return out.assign(s), true;
  if (s.size() <= suffix.size() || !s.ends_with(suffix)) return false;
  out.assign(s.substr(0, s.size() - suffix.size()));
  return true;
}

}  // namespace

Pattern::Pattern(std::string_view p) : text_(p) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument(ErrorContext().note("route pattern", text_), why);
  };
  if (!p.starts_with('/')) throw bad("must start with '/'");
  p.remove_prefix(1);
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t e = p.find('/', pos);
    if (e == std::string_view::npos) e = p.size();
    const std::string_view s = p.substr(pos, e - pos);
    pos = e + 1;
    if (!parts_.empty() && parts_.back().kind == Kind::Tail) throw bad("a tail must be last");
    if (!s.starts_with('{')) {
      if (s.find_first_of("{}") != std::string_view::npos) throw bad("stray brace");
      parts_.push_back({Kind::Literal, std::string(s), "", 0});
      continue;
    }
    const size_t close = s.find('}');
    if (close == std::string_view::npos) throw bad("unclosed '{'");
    std::string name(s.substr(1, close - 1));
    std::string suffix(s.substr(close + 1));
    if (name.empty() || suffix.find_first_of("{}") != std::string::npos)
      throw bad("malformed capture");
    if (name.ends_with("...") || name.ends_with('*')) {
      if (!suffix.empty()) throw bad("a tail takes no suffix");
      const bool plus = name.ends_with("...");
      name.resize(name.size() - (plus ? 3 : 1));
      parts_.push_back({Kind::Tail, name, "", plus ? size_t(1) : size_t(0)});
    } else if (name == "repo_type" || name == "repo_type?") {
      if (!suffix.empty()) throw bad("{repo_type} takes no suffix");
      parts_.push_back({name == "repo_type" ? Kind::RepoType : Kind::OptRepoType, name, "", 0});
    } else if (name == "repo_id") {
      parts_.push_back({Kind::RepoId, name, suffix, 0});
    } else {
      parts_.push_back({Kind::Capture, name, suffix, 0});
    }
  }
}

bool Pattern::match(const std::vector<std::string>& seg, Request& r) const {
  RepoType type = RepoType::Model;
  std::string ns, name;
  std::vector<std::pair<std::string, std::string>> args;
  size_t i = 0;
  const size_t n = seg.size();
  for (const Part& part : parts_) {
    switch (part.kind) {
      case Kind::Literal:
        if (i >= n || seg[i] != part.text) return false;
        ++i;
        break;
      case Kind::Capture: {
        std::string v;
        if (i >= n || !strip_suffix(seg[i], part.suffix, v)) return false;
        args.emplace_back(part.text, std::move(v));
        ++i;
        break;
      }
      case Kind::Tail:
        if (n - std::min(i, n) < part.min) return false;
        args.emplace_back(part.text, join(seg, i));
        i = n;
        break;
      case Kind::RepoType:
        if (i >= n || !parse_repo_type(seg[i], type) || !seg[i].ends_with('s')) return false;
        ++i;
        break;
      case Kind::OptRepoType:
        if (i < n && (seg[i] == "datasets" || seg[i] == "spaces")) {
          parse_repo_type(seg[i], type);
          ++i;
        }
        break;
      case Kind::RepoId:
        if (i + 1 >= n || !strip_suffix(seg[i + 1], part.suffix, name)) return false;
        ns = seg[i];
        i += 2;
        break;
    }
  }
  if (i != n) return false;
  r.type = type;
  r.ns = std::move(ns);
  r.name = std::move(name);
  r.args = std::move(args);
  return true;
}

std::vector<std::string> split_path(const std::string& full_target) {
  const std::string target = full_target.substr(0, full_target.find('?'));
  if (target.empty() || target[0] != '/') throw BadRequest("bad request target");
  std::vector<std::string> seg;
  size_t pos = 1;
  while (pos <= target.size()) {
    size_t e = target.find('/', pos);
    if (e == std::string::npos) e = target.size();
    std::string dec;
    if (!percent_decode(std::string_view(target).substr(pos, e - pos), dec))
      throw BadRequest("malformed percent-encoding in the URL path");
    seg.push_back(std::move(dec));
    pos = e + 1;
  }
  if (!seg.empty() && seg.back().empty() && seg.size() > 1) seg.pop_back();
  return seg;
}

}  // namespace ohm::hub::http
