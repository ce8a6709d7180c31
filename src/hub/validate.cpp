#include "ohm/hub/validate.h"

#include <array>

#include "ohm/hub/hash.h"

namespace ohm::hub {

const char* to_string(RepoType t) {
  switch (t) {
    case RepoType::Model:
      return "model";
    case RepoType::Dataset:
      return "dataset";
    case RepoType::Space:
      return "space";
  }
  return "model";
}
const char* plural(RepoType t) {
  switch (t) {
    case RepoType::Model:
      return "models";
    case RepoType::Dataset:
      return "datasets";
    case RepoType::Space:
      return "spaces";
  }
  return "models";
}
const char* url_prefix(RepoType t) {
  switch (t) {
    case RepoType::Model:
      return "";
    case RepoType::Dataset:
      return "datasets/";
    case RepoType::Space:
      return "spaces/";
  }
  return "";
}
bool parse_repo_type(std::string_view s, RepoType& out) {
  if (s == "model" || s == "models")
    out = RepoType::Model;
  else if (s == "dataset" || s == "datasets")
    out = RepoType::Dataset;
  else if (s == "space" || s == "spaces")
    out = RepoType::Space;
  else
    return false;
  return true;
}

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

std::string check_name(std::string_view s, bool is_namespace) {
  const char* what = is_namespace ? "namespace" : "repo name";
  if (s.empty()) return std::string(what) + " is empty";
  if (s.size() > 96) return std::string(what) + " longer than 96 characters";
  for (char c : s)
    if (!name_char(c))
      return std::string(what) + " may only contain letters, digits, '-', '_' and '.'";
  if (!name_char(s[0]) || s[0] == '-' || s[0] == '.' || s[0] == '_')
    return std::string(what) + " must start with a letter or digit";
  if (s.back() == '-' || s.back() == '.')
    return std::string(what) + " must not end with '-' or '.'";
  if (s.find("--") != std::string_view::npos || s.find("..") != std::string_view::npos)
    return std::string(what) + " must not contain '--' or '..'";
  if (s.size() >= 4 && s.substr(s.size() - 4) == ".git")
    return std::string(what) + " must not end with .git";
  if (is_namespace) {
    static const std::array<const char*, 13> reserved = {
        "api", "datasets", "spaces", "models", "lfs",   "resolve",    "static",
        "new", "settings", "login",  "logout", "admin", "leaderboard"};  // web UI routes
    for (const char* r : reserved)
      if (s == r) return "namespace '" + std::string(s) + "' is reserved";
  }
  return {};
}

static std::string check_segments(std::string_view s, const char* what) {
  size_t start = 0;
  while (true) {
    size_t e = s.find('/', start);
    std::string_view seg =
        s.substr(start, e == std::string_view::npos ? std::string_view::npos : e - start);
    if (seg.empty()) return std::string(what) + " has an empty path segment";
    if (seg == "." || seg == "..")
      return std::string(what) + " must not contain '.' or '..' segments";
    if (e == std::string_view::npos) break;
    start = e + 1;
  }
  return {};
}

static std::string check_chars(std::string_view s, const char* what) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return std::string(what) + " contains a control character";
    if (c == '\\') return std::string(what) + " contains a backslash";
  }
  return {};
}

std::string check_revision(std::string_view s) {
  if (s.empty()) return "revision is empty";
  if (s.size() > 256) return "revision longer than 256 characters";
  if (auto e = check_chars(s, "revision"); !e.empty()) return e;
  for (char c : s)
    if (c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[')
      return "revision contains a character git does not allow";
  if (s.find("..") != std::string_view::npos) return "revision must not contain '..'";
  return check_segments(s, "revision");
}

std::string check_ref_name(std::string_view s) {
  if (auto e = check_revision(s); !e.empty()) return e;
  if (is_hex(s, 40)) return "a branch or tag name must not be a commit sha";
  if (s.substr(0, 5) == "refs/") return "a branch or tag name must not start with 'refs/'";
  if (s.size() >= 5 && s.substr(s.size() - 5) == ".lock") return "a ref name must not end in .lock";
  if (s.find("@{") != std::string_view::npos) return "a ref name must not contain '@{'";
  return {};
}

std::string check_file_path(std::string_view s) {
  if (s.empty()) return "file path is empty";
  if (s.size() > 1024) return "file path longer than 1024 bytes";
  if (auto e = check_chars(s, "file path"); !e.empty()) return e;
  if (s[0] == '/') return "file path must be relative";
  if (auto e = check_segments(s, "file path"); !e.empty()) return e;
  if (s == ".git" || s.substr(0, 5) == ".git/") return "file path must not be inside .git";
  return {};
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out, bool plus_as_space) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int a = hexval(in[i + 1]), b = hexval(in[i + 2]);
      if (a < 0 || b < 0) return false;
      char d = static_cast<char>(a * 16 + b);
      if (d == '\0') return false;
      out.push_back(d);
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else if (c == '\0') {
      return false;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

std::string percent_encode(std::string_view in, bool keep_slash) {
  static const char* d = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(d[c >> 4]);
      out.push_back(d[c & 15]);
    }
  }
  return out;
}

}  // namespace ohm::hub
