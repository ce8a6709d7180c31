// Validation of everything a client can put into a path: repo namespaces and names, revisions,
// branch/tag names and file paths. All return an error message, empty when valid.
#pragma once

#include <string>
#include <string_view>

namespace ohm::hub {

enum class RepoType { Model, Dataset, Space };
const char* to_string(RepoType t);                        // "model"
const char* plural(RepoType t);                           // "models"
const char* url_prefix(RepoType t);                       // "" | "datasets/" | "spaces/"
bool parse_repo_type(std::string_view s, RepoType& out);  // "model" or "models"

// A namespace (user/org) or repo name: [A-Za-z0-9][A-Za-z0-9._-]*, <= 96 chars, no "--", no "..",
// not ending in ".git", not a reserved word for namespaces (API and web UI routes:
// api, models, datasets, spaces, lfs, resolve, static, new, settings, login, logout, admin).
std::string check_name(std::string_view s, bool is_namespace);
// A revision as asked: branch, tag or sha; also "refs/heads/x" style. No "..", NUL, control chars,
// leading/trailing '/', "//", '\\', <= 256 chars.
std::string check_revision(std::string_view s);
// A new branch or tag name: like a revision, but not a 40-hex sha and not starting with "refs/".
std::string check_ref_name(std::string_view s);
// A repo file path: relative, no empty/"."/".." segments, no NUL/control chars, no '\\', <= 1024
// bytes, not inside ".git/".
std::string check_file_path(std::string_view s);

// Strict percent-decoding of one URL path segment; false on malformed escapes or a decoded NUL.
bool percent_decode(std::string_view in, std::string& out, bool plus_as_space = false);
std::string percent_encode(std::string_view in, bool keep_slash);

}  // namespace ohm::hub
