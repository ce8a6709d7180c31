// Shared reply, body and paging helpers of the request handlers. Private to src/hub.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "request.h"

namespace ohm::hub::http {

using json = nlohmann::json;

// JSON text with invalid UTF-8 replaced (never throws on user strings).
std::string dump(const json& j);
// A header value without CR/LF or non-ASCII bytes ('?'), at most `max` bytes.
std::string header_safe(const std::string& s, size_t max = 400);

void send_json(Request& c, const json& j, int status = 200);

// Bodies. read_body: the whole body, at most `limit` bytes (1 MiB for anonymous callers);
// BadRequest past it (the rest is drained, bounded, and the connection closed after the answer).
std::string read_body(Request& c, size_t limit);
// Reads and drops an unread body so a keep-alive connection stays in sync (called after every
// handler). Bodies the front end has buffered (64 KiB) are dropped at once; a larger or chunked
// one is not waited for: the connection is closed after the answer.
void drain(Request& c);
inline constexpr size_t kDrainMax = 64u << 20;

// JSON request bodies: BadRequest naming `what` when malformed, nested deeper than 64, or (for
// parse_object) not an object; an empty body is {}.
json parse_json(std::string_view body, const std::string& what);
json parse_object(std::string_view body, const std::string& what);
// j[key] as a string ("" when absent or null); BadRequest naming `what` and the key otherwise.
std::string get_str(const json& j, const char* key, const std::string& what);
// application/x-www-form-urlencoded pairs, in order (malformed pairs are skipped).
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body);

// Standard or URL-safe base64, '=' padding and line breaks allowed.
bool base64_decode(std::string_view in, std::string& out);
// "1", "true", "True", "TRUE".
bool truthy(const std::string& v);
int64_t now_s();

// Paging: the ?cursor= offset (BadRequest when not a number) and the Link: <...>; rel="next"
// header for the page that starts at `next_cursor` (the other query parameters kept).
size_t cursor(const Request& c);
void set_next_link(Request& c, size_t next_cursor);

}  // namespace ohm::hub::http
