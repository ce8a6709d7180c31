// The HTTP boundary's one mapping from errors to responses. Private to src/hub.
#pragma once

#include <httplib.h>

#include <exception>
#include <string>

#include "ohm/hub/errors.h"

namespace ohm::hub::http {

// The status code for a kind of hub error.
int http_status(HubErrorKind kind);

// What the client gets for an error: status, X-Error-Code (empty: none), message (the JSON body's
// "error" and X-Error-Message) and X-Repo-Commit (empty: none).
struct ErrorReply {
  int status = 500;
  std::string code;
  std::string message;
  std::string commit;
};

// HubError: its kind's status and its code; InvalidArgument and FormatError: 400; NotFoundError:
// 404 EntryNotFound; anything else: 500 "internal error: ...".
ErrorReply error_reply(std::exception_ptr e);

// Writes the reply: status, the X-Error-* headers, {"error": message} (no body for HEAD);
// Content-Range is dropped unless the status is 416.
void send_error(const httplib::Request& req, httplib::Response& res, const ErrorReply& e);

}  // namespace ohm::hub::http
