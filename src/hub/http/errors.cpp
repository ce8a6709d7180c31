#include "errors.h"

#include "reply.h"

namespace ohm::hub {

const char* to_string(HubErrorCode c) {
  switch (c) {
    case HubErrorCode::None:
      return "";
    case HubErrorCode::RepoNotFound:
      return "RepoNotFound";
    case HubErrorCode::RevisionNotFound:
      return "RevisionNotFound";
    case HubErrorCode::EntryNotFound:
      return "EntryNotFound";
    case HubErrorCode::GatedRepo:
      return "GatedRepo";
  }
  return "";
}

namespace http {

int http_status(HubErrorKind kind) {
  switch (kind) {
    case HubErrorKind::BadRequest:
      return 400;
    case HubErrorKind::Unauthorized:
      return 401;
    case HubErrorKind::Forbidden:
      return 403;
    case HubErrorKind::NotFound:
      return 404;
    case HubErrorKind::MethodNotAllowed:
      return 405;
    case HubErrorKind::Conflict:
      return 409;
    case HubErrorKind::PreconditionFailed:
      return 412;
    case HubErrorKind::RangeNotSatisfiable:
      return 416;
    case HubErrorKind::Unprocessable:
      return 422;
    case HubErrorKind::RateLimited:
      return 429;
  }
  return 500;
}

ErrorReply error_reply(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const HubError& e) {
    return {http_status(e.hub_kind()), to_string(e.code()), e.what(), e.commit()};
  } catch (const InvalidArgument& e) {
    return {400, "", e.what(), ""};
  } catch (const FormatError& e) {
    return {400, "", e.what(), ""};
  } catch (const NotFoundError& e) {
    return {404, "EntryNotFound", e.what(), ""};
  } catch (const std::exception& e) {
    return {500, "", std::string("internal error: ") + e.what(), ""};
  } catch (...) {
    return {500, "", "internal error", ""};
  }
}

void send_error(const httplib::Request& req, httplib::Response& res, const ErrorReply& e) {
  res.status = e.status;
  if (e.status != 416) res.headers.erase("Content-Range");
  if (!e.code.empty()) res.set_header("X-Error-Code", e.code);
  res.set_header("X-Error-Message", header_safe(e.message));
  if (!e.commit.empty()) res.set_header("X-Repo-Commit", e.commit);
  if (req.method != "HEAD")
    res.set_content(dump(nlohmann::json{{"error", e.message}}), "application/json");
  else
    res.body.clear();
}

}  // namespace http
}  // namespace ohm::hub
