// The hub's typed errors. The domain layer (Hub, the stores) and the request handlers throw these;
// they say what went wrong, not how HTTP spells it. One function at the HTTP boundary
// (src/hub/http/errors.cpp) maps each kind to its status code and to the error body and
// X-Error-Code / X-Error-Message headers the huggingface_hub client reads.
//
// Other ohm errors keep their meaning there too: InvalidArgument and FormatError are bad requests,
// NotFoundError is a missing entry, anything else is an internal error.
#pragma once

#include <string>

#include "ohm/core/error.h"

namespace ohm::hub {

enum class HubErrorKind {
  BadRequest,           // malformed or invalid input
  Unauthorized,         // a token is needed, or the one given is not valid
  Forbidden,            // authenticated, but not allowed
  NotFound,             // no such user, repo, revision, entry, ...
  MethodNotAllowed,     // the resource exists, the method does not apply to it
  Conflict,             // it already exists
  PreconditionFailed,   // the branch moved since the parent commit the client named
  RangeNotSatisfiable,  // a byte range outside the file
  Unprocessable,        // well-formed, but refers to data that does not match (LFS verify)
  RateLimited,          // the caller's request budget is spent
};

// What the client should make of it, beyond the kind: the huggingface_hub exception to raise.
enum class HubErrorCode {
  None,
  RepoNotFound,      // RepositoryNotFoundError
  RevisionNotFound,  // RevisionNotFoundError
  EntryNotFound,     // EntryNotFoundError
  GatedRepo,         // GatedRepoError
};
const char* to_string(HubErrorCode c);  // "" for None

class HubError : public Error {
 public:
  HubError(HubErrorKind kind, const std::string& msg, HubErrorCode code = HubErrorCode::None,
           std::string repo_commit = "")
      : Error(kind == HubErrorKind::NotFound ? ErrorKind::NotFound : ErrorKind::Invalid,
              ErrorContext(), msg),
        kind_(kind),
        code_(code),
        commit_(std::move(repo_commit)) {}
  HubErrorKind hub_kind() const { return kind_; }
  HubErrorCode code() const { return code_; }
  // The commit the request resolved to, when there is one (EntryNotFound: X-Repo-Commit).
  const std::string& commit() const { return commit_; }

 private:
  HubErrorKind kind_;
  HubErrorCode code_;
  std::string commit_;
};

#define OHM_HUB_ERROR(Name, Kind)                                                 \
  class Name : public HubError {                                                  \
   public:                                                                        \
    explicit Name(const std::string& msg, HubErrorCode code = HubErrorCode::None, \
                  std::string repo_commit = "")                                   \
        : HubError(HubErrorKind::Kind, msg, code, std::move(repo_commit)) {}      \
  };

OHM_HUB_ERROR(BadRequest, BadRequest)
OHM_HUB_ERROR(Unauthorized, Unauthorized)
OHM_HUB_ERROR(Forbidden, Forbidden)
OHM_HUB_ERROR(NotFound, NotFound)
OHM_HUB_ERROR(MethodNotAllowed, MethodNotAllowed)
OHM_HUB_ERROR(Conflict, Conflict)
OHM_HUB_ERROR(PreconditionFailed, PreconditionFailed)
OHM_HUB_ERROR(RangeNotSatisfiable, RangeNotSatisfiable)
OHM_HUB_ERROR(Unprocessable, Unprocessable)
OHM_HUB_ERROR(RateLimited, RateLimited)
#undef OHM_HUB_ERROR

// A repo that does not exist or that the caller may not see (the two are never told apart).
// Anonymous callers are asked to authenticate, as the Hub does.
inline HubError repo_not_found(const std::string& msg, bool anonymous) {
  return HubError(anonymous ? HubErrorKind::Unauthorized : HubErrorKind::NotFound, msg,
                  HubErrorCode::RepoNotFound);
}
// A gated repo the caller has no access to: anonymous callers are asked to authenticate.
inline HubError gated_repo(const std::string& msg, bool anonymous) {
  return HubError(anonymous ? HubErrorKind::Unauthorized : HubErrorKind::Forbidden, msg,
                  HubErrorCode::GatedRepo);
}
inline NotFound revision_not_found(const std::string& msg) {
  return NotFound(msg, HubErrorCode::RevisionNotFound);
}
inline NotFound entry_not_found(const std::string& msg, const std::string& commit = "") {
  return NotFound(msg, HubErrorCode::EntryNotFound, commit);
}

}  // namespace ohm::hub
