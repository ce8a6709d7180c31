#include "ohm/serve/openai.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <utility>

namespace ohm::serve {

// ---- errors -------------------------------------------------------------------------------

ApiError::ApiError(int status_, std::string message_, std::string param_, std::string type_)
    : status(status_),
      type(std::move(type_)),
      message(std::move(message_)),
      param(std::move(param_)) {
  if (type.empty()) type = error_type_for_status(status);
}

std::string error_type_for_status(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_exceeded";
    case 501:
      return "not_supported_error";
    case 503:
      return "unavailable_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

json error_json(const ApiError& e) {
  json err = {{"message", e.message},
              {"type", e.type.empty() ? error_type_for_status(e.status) : e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(e.status) : json(e.code)}};
  if (e.details.is_object())
    for (const auto& [k, v] : e.details.items()) err[k] = v;
  return json{{"error", std::move(err)}};
}

ApiError invalid_param(const std::string& param, const std::string& message) {
  return ApiError(400, param + ": " + message, param);
}

ApiError model_not_found(const std::string& model) {
  return ApiError(404, "The model `" + model + "` does not exist.", "model");
}

void check_context_length(int64_t prompt_tokens, std::optional<int64_t> max_tokens,
                          int64_t max_model_len, const std::string& param_name) {
  const int64_t want = max_tokens.value_or(1);
  if (prompt_tokens <= max_model_len - want) return;
  if (want >= max_model_len) {  // (also keeps prompt_tokens + want from overflowing)
    throw ApiError(400,
                   "max_tokens is " + std::to_string(want) +
                       ", but this model's maximum context length is " +
                       std::to_string(max_model_len) + " tokens (" + param_name + ": " +
                       std::to_string(prompt_tokens) + " tokens).",
                   "max_tokens");
  }
  const int64_t total = prompt_tokens + want;
  std::string msg = "This model's maximum context length is " + std::to_string(max_model_len) +
                    " tokens. However, you requested " + std::to_string(total) + " tokens (" +
                    std::to_string(prompt_tokens) + " in the " + param_name + ", " +
                    std::to_string(want) + " in the completion), " +
                    std::to_string(total - max_model_len) +
                    " tokens too many. Please reduce the length of the " + param_name +
                    (max_tokens ? " or max_tokens." : ".");
  throw ApiError(400, msg, param_name);
}

void check_token_ids(const std::vector<int64_t>& ids, int64_t vocab_size,
                     const std::string& param_name) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      throw invalid_param(param_name + "[" + std::to_string(i) + "]",
                          "token id " + std::to_string(ids[i]) + " is out of the vocabulary [0, " +
                              std::to_string(vocab_size) + ")");
    }
  }
}

// ---- the body -------------------------------------------------------------------------------

namespace {

// The offset of the first byte that breaks UTF-8 (overlongs, surrogates and > U+10FFFF
// included), or npos.
size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (int k = 1; k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace

json parse_body(std::string_view body, const BodyLimits& limits) {
  if (body.size() > limits.max_bytes) {
    throw ApiError(413, "request body is " + std::to_string(body.size()) +
                            " bytes, over the limit of " + std::to_string(limits.max_bytes));
  }
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    throw ApiError(400, "request body is empty: expected a JSON object");
  }
  if (const size_t bad = invalid_utf8_at(body); bad != std::string_view::npos) {
    throw ApiError(400, "request body is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  }
  // Nesting depth, counted outside strings before the parser sees the text.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth) {
        throw ApiError(400, "request body is nested deeper than " +
                                std::to_string(limits.max_depth) + " levels (byte " +
                                std::to_string(i) + ")");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::out_of_range& e) {
    throw ApiError(400, std::string("request body has a number out of range: ") + e.what());
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) {
    throw ApiError(400, std::string("request body must be a JSON object, not ") + j.type_name());
  }
  return j;
}

// ---- field readers ----------------------------------------------------------------------------

namespace {

std::string kind_of(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "an integer";
  if (v.is_number_float()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

[[noreturn]] void wrong_type(const std::string& path, const char* want, const json& v) {
  throw invalid_param(path, std::string("must be ") + want + ", not " + kind_of(v));
}

std::string fmt(double x) {
  std::string s = json(x).dump();
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s;
}

// Reads optional fields of one object; `prefix` is the JSON path of the object ("" for the
// body, "messages[2]" for a message).
class Fields {
 public:
  Fields(const json& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  std::string path(const std::string& key) const {
    return prefix_.empty() ? key : prefix_ + "." + key;
  }
  // The value, or nullptr when absent or null.
  const json* get(const std::string& key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json& require(const std::string& key) const {
    const json* v = get(key);
    if (!v) throw invalid_param(path(key), "is required");
    return *v;
  }

  std::optional<std::string> str(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) wrong_type(path(key), "a string", *v);
    return v->get<std::string>();
  }
  std::optional<bool> boolean(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) wrong_type(path(key), "a boolean", *v);
    return v->get<bool>();
  }
  std::optional<double> number(const std::string& key, double lo, double hi, bool lo_open = false,
                               const char* range_text = nullptr) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    return number_value(*v, path(key), lo, hi, lo_open, range_text);
  }
  std::optional<int64_t> integer(const std::string& key, int64_t lo, int64_t hi) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    return integer_value(*v, path(key), lo, hi);
  }

  static double number_value(const json& v, const std::string& p, double lo, double hi,
                             bool lo_open, const char* range_text) {
    if (!v.is_number()) wrong_type(p, "a number", v);
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x <= lo)) {
      const std::string range =
          range_text ? range_text
                     : (lo_open ? "greater than " + fmt(lo) + " and at most " + fmt(hi)
                                : "between " + fmt(lo) + " and " + fmt(hi));
      throw invalid_param(p, "must be " + range + ", got " + v.dump());
    }
    return x;
  }
  static int64_t integer_value(const json& v, const std::string& p, int64_t lo, int64_t hi) {
    const std::string range = hi == std::numeric_limits<int64_t>::max()
                                  ? "at least " + std::to_string(lo)
                                  : "between " + std::to_string(lo) + " and " + std::to_string(hi);
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo))) {
        throw invalid_param(p, "must be " + range + ", got " + v.dump());
      }
      return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) {
      const auto x = v.get<int64_t>();
      if (x < lo || x > hi) throw invalid_param(p, "must be " + range + ", got " + v.dump());
      return x;
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d)) wrong_type(p, "an integer", v);
      // 2^63 and above do not fit; compare in double space first.
      if (d < static_cast<double>(lo) || d >= 9223372036854775808.0 ||
          static_cast<int64_t>(d) > hi) {
        throw invalid_param(p, "must be " + range + ", got " + v.dump());
      }
      return static_cast<int64_t>(d);
    }
    wrong_type(p, "an integer", v);
  }

 private:
  const json& obj_;
  std::string prefix_;
};

const json& require_object(const json& v, const std::string& p) {
  if (!v.is_object()) wrong_type(p, "an object", v);
  return v;
}

std::string idx(const std::string& p, size_t i) {
  return p + "[" + std::to_string(i) + "]";
}

// Message content: a string, or a list of {"type":"text","text":...} parts joined with "\n"
// (vLLM's "string" content format).
std::string parse_content(const json& v, const std::string& p) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) wrong_type(p, "a string or an array of content parts", v);
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string pp = idx(p, i);
    const json& part = require_object(v[i], pp);
    Fields f(part, pp);
    const auto type = f.str("type");
    if (!type) throw invalid_param(f.path("type"), "is required");
    if (*type == "text") {
      const json& t = f.require("text");
      if (!t.is_string()) wrong_type(f.path("text"), "a string", t);
      if (i > 0) out += "\n";
      out += t.get<std::string>();
    } else if (*type == "image_url" || *type == "input_image" || *type == "image" ||
               *type == "input_audio" || *type == "audio_url" || *type == "video_url" ||
               *type == "file") {
      throw invalid_param(f.path("type"), "'" + *type +
                                              "' content parts are not supported: this server "
                                              "serves text-only models (use \"text\" parts)");
    } else {
      throw invalid_param(f.path("type"),
                          "unknown content part type '" + *type + "' (supported: \"text\")");
    }
  }
  return out;
}

std::vector<ToolCall> parse_tool_calls_field(const json& v, const std::string& p) {
  if (!v.is_array()) wrong_type(p, "an array", v);
  std::vector<ToolCall> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string pp = idx(p, i);
    Fields f(require_object(v[i], pp), pp);
    ToolCall tc;
    tc.id = f.str("id").value_or("");
    tc.type = f.str("type").value_or("function");
    if (tc.type != "function") {
      throw invalid_param(f.path("type"), "must be \"function\", got \"" + tc.type + "\"");
    }
    const std::string fp = f.path("function");
    Fields fn(require_object(f.require("function"), fp), fp);
    const auto name = fn.str("name");
    if (!name || name->empty()) throw invalid_param(fn.path("name"), "is required");
    tc.name = *name;
    const json* args = fn.get("arguments");
    if (!args) {
      tc.arguments = "{}";
    } else if (args->is_string()) {
      tc.arguments = args->get<std::string>();
    } else if (args->is_object()) {
      tc.arguments = args->dump();  // lenient: some clients send the object itself
    } else {
      wrong_type(fn.path("arguments"), "a string (JSON-encoded arguments)", *args);
    }
    out.push_back(std::move(tc));
  }
  return out;
}

std::vector<Message> parse_messages(const json& body, bool required) {
  Fields top(body, "");
  const json* v = top.get("messages");
  if (!v) {
    if (required) throw invalid_param("messages", "is required");
    return {};
  }
  if (!v->is_array()) wrong_type("messages", "an array", *v);
  if (v->empty()) throw invalid_param("messages", "must contain at least one message");
  std::vector<Message> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string p = idx("messages", i);
    Fields f(require_object((*v)[i], p), p);
    Message m;
    const json& role = f.require("role");
    if (!role.is_string()) wrong_type(f.path("role"), "a string", role);
    m.role = role.get<std::string>();
    if (m.role == "developer") m.role = "system";
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
      throw invalid_param(f.path("role"),
                          "must be one of system, developer, user, assistant, "
                          "tool; got \"" +
                              m.role + "\"");
    }
    if (const json* c = f.get("content")) m.content = parse_content(*c, f.path("content"));
    m.name = f.str("name").value_or("");
    if (const json* tc = f.get("tool_calls")) {
      if (m.role != "assistant") {
        throw invalid_param(f.path("tool_calls"), "is only allowed on assistant messages");
      }
      m.tool_calls = parse_tool_calls_field(*tc, f.path("tool_calls"));
    }
    m.reasoning_content = f.str("reasoning_content");
    if (m.role == "tool") {
      const auto id = f.str("tool_call_id");
      if (!id) throw invalid_param(f.path("tool_call_id"), "is required for tool messages");
      m.tool_call_id = *id;
    }
    if (!m.content && !(m.role == "assistant")) {
      throw invalid_param(f.path("content"), "is required for " + m.role + " messages");
    }
    if (m.role == "assistant" && !m.content && m.tool_calls.empty()) {
      throw invalid_param(f.path("content"),
                          "is required for assistant messages without tool_calls");
    }
    out.push_back(std::move(m));
  }
  return out;
}

bool valid_tool_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::vector<Tool> parse_tools(const json& body) {
  Fields top(body, "");
  const json* v = top.get("tools");
  if (!v) return {};
  if (!v->is_array()) wrong_type("tools", "an array", *v);
  std::vector<Tool> out;
  std::set<std::string> names;
  for (size_t i = 0; i < v->size(); ++i) {
    const std::string p = idx("tools", i);
    Fields f(require_object((*v)[i], p), p);
    const auto type = f.str("type").value_or("function");
    if (type != "function") {
      throw invalid_param(f.path("type"), "must be \"function\", got \"" + type + "\"");
    }
    const std::string fp = f.path("function");
    Fields fn(require_object(f.require("function"), fp), fp);
    Tool t;
    const auto name = fn.str("name");
    if (!name) throw invalid_param(fn.path("name"), "is required");
    if (!valid_tool_name(*name)) {
      throw invalid_param(fn.path("name"),
                          "must be 1 to 64 characters of a-z, A-Z, 0-9, _ and "
                          "-; got \"" +
                              *name + "\"");
    }
    if (!names.insert(*name).second) {
      throw invalid_param(fn.path("name"), "duplicate tool name \"" + *name + "\"");
    }
    t.name = *name;
    t.description = fn.str("description").value_or("");
    if (const json* params = fn.get("parameters")) {
      if (!params->is_object())
        wrong_type(fn.path("parameters"), "an object (a JSON schema)", *params);
      t.parameters = *params;
    }
    t.strict = fn.boolean("strict").value_or(false);
    out.push_back(std::move(t));
  }
  return out;
}

ToolChoice parse_tool_choice(const json& body, const std::vector<Tool>& tools) {
  Fields top(body, "");
  ToolChoice tc;
  tc.mode = tools.empty() ? ToolChoice::Mode::None : ToolChoice::Mode::Auto;
  const json* v = top.get("tool_choice");
  if (!v) return tc;
  if (v->is_string()) {
    const auto s = v->get<std::string>();
    if (s == "none") {
      tc.mode = ToolChoice::Mode::None;
    } else if (s == "auto") {
      tc.mode = ToolChoice::Mode::Auto;
    } else if (s == "required") {
      tc.mode = ToolChoice::Mode::Required;
    } else {
      throw invalid_param("tool_choice",
                          "must be \"none\", \"auto\", \"required\" or "
                          "{\"type\": \"function\", \"function\": {\"name\": ...}}; "
                          "got \"" +
                              s + "\"");
    }
  } else if (v->is_object()) {
    Fields f(*v, "tool_choice");
    const auto type = f.str("type").value_or("function");
    if (type != "function") {
      throw invalid_param(f.path("type"), "must be \"function\", got \"" + type + "\"");
    }
    Fields fn(require_object(f.require("function"), f.path("function")), f.path("function"));
    const auto name = fn.str("name");
    if (!name) throw invalid_param(fn.path("name"), "is required");
    tc.mode = ToolChoice::Mode::Named;
    tc.name = *name;
  } else {
    wrong_type("tool_choice", "a string or an object", *v);
  }
  if (tc.mode != ToolChoice::Mode::None && tc.mode != ToolChoice::Mode::Auto && tools.empty()) {
    throw invalid_param("tool_choice", "needs `tools`: the request has no tools");
  }
  if (tc.mode == ToolChoice::Mode::Auto && tools.empty()) tc.mode = ToolChoice::Mode::None;
  if (tc.mode == ToolChoice::Mode::Named &&
      std::none_of(tools.begin(), tools.end(), [&](const Tool& t) { return t.name == tc.name; })) {
    throw invalid_param("tool_choice.function.name",
                        "no tool named \"" + tc.name + "\" in `tools`");
  }
  return tc;
}

ResponseFormat parse_response_format(const json& body) {
  Fields top(body, "");
  ResponseFormat rf;
  const json* v = top.get("response_format");
  if (!v) return rf;
  Fields f(require_object(*v, "response_format"), "response_format");
  const auto type = f.str("type");
  if (!type) throw invalid_param("response_format.type", "is required");
  if (*type == "text") {
    rf.type = ResponseFormat::Type::Text;
  } else if (*type == "json_object") {
    rf.type = ResponseFormat::Type::JsonObject;
    if (const json* s = f.get("schema")) {  // llama.cpp extension
      if (!s->is_object()) wrong_type("response_format.schema", "an object (a JSON schema)", *s);
      rf.schema = *s;
    }
  } else if (*type == "json_schema") {
    rf.type = ResponseFormat::Type::JsonSchema;
    const json* js = f.get("json_schema");
    if (js) {
      Fields g(require_object(*js, "response_format.json_schema"), "response_format.json_schema");
      const auto name = g.str("name");
      if (!name) throw invalid_param(g.path("name"), "is required");
      rf.name = *name;
      if (const json* s = g.get("schema")) {
        if (!s->is_object()) wrong_type(g.path("schema"), "an object (a JSON schema)", *s);
        rf.schema = *s;
      }
      rf.strict = g.boolean("strict").value_or(false);
    } else if (const json* s = f.get("schema")) {  // llama.cpp: {"type":"json_schema","schema"}
      if (!s->is_object()) wrong_type("response_format.schema", "an object (a JSON schema)", *s);
      rf.schema = *s;
    } else {
      throw invalid_param("response_format.json_schema", "is required when type is json_schema");
    }
  } else {
    throw invalid_param("response_format.type",
                        "must be \"text\", \"json_object\" or "
                        "\"json_schema\"; got \"" +
                            *type + "\"");
  }
  return rf;
}

constexpr int64_t kMaxN = 16;
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

// The fields shared by chat and completions. `chat`: logprobs is a bool + top_logprobs;
// otherwise logprobs is an int.
SamplingParams parse_sampling(const json& body, bool chat) {
  Fields f(body, "");
  SamplingParams s;
  s.max_tokens = f.integer("max_tokens", 1, kI64Max);
  if (chat) {
    if (auto m = f.integer("max_completion_tokens", 1, kI64Max)) s.max_tokens = m;
  }
  s.min_tokens = f.integer("min_tokens", 0, kI64Max);
  if (s.min_tokens && s.max_tokens && *s.min_tokens > *s.max_tokens) {
    throw invalid_param("min_tokens", "must be at most max_tokens (" +
                                          std::to_string(*s.max_tokens) + "), got " +
                                          std::to_string(*s.min_tokens));
  }
  s.temperature = f.number("temperature", 0, 2);
  s.top_p = f.number("top_p", 0, 1, /*lo_open=*/true);
  if (auto k = f.integer("top_k", -1, kI64Max)) s.top_k = k;
  s.min_p = f.number("min_p", 0, 1);
  s.frequency_penalty = f.number("frequency_penalty", -2, 2).value_or(0);
  s.presence_penalty = f.number("presence_penalty", -2, 2).value_or(0);
  s.repetition_penalty = f.number("repetition_penalty", 0, 2, /*lo_open=*/true);
  if (const json* lb = f.get("logit_bias")) {
    if (!lb->is_object()) wrong_type("logit_bias", "an object mapping token ids to biases", *lb);
    for (const auto& [key, val] : lb->items()) {
      const std::string p = "logit_bias." + key;
      int64_t id = -1;
      size_t pos = 0;
      try {
        id = std::stoll(key, &pos);
      } catch (const std::exception&) {
        pos = 0;
      }
      if (key.empty() || key[0] < '0' || key[0] > '9' || pos != key.size() || id < 0) {
        throw invalid_param(p, "keys must be token ids (non-negative integers)");
      }
      s.logit_bias[id] = Fields::number_value(val, p, -100, 100, false, nullptr);
    }
  }
  if (const json* seed = f.get("seed")) {
    if (seed->is_number_unsigned()) {
      s.seed = seed->get<uint64_t>();
    } else if (seed->is_number_integer()) {
      s.seed = static_cast<uint64_t>(seed->get<int64_t>());
    } else if (seed->is_number_float()) {
      throw invalid_param("seed", "must be an integer in [-2^63, 2^64), got " + seed->dump());
    } else {
      wrong_type("seed", "an integer", *seed);
    }
  }
  if (const json* stop = f.get("stop")) {
    if (stop->is_string()) {
      s.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > 4) {
        throw invalid_param("stop",
                            "must have at most 4 strings, got " + std::to_string(stop->size()));
      }
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) wrong_type(idx("stop", i), "a string", (*stop)[i]);
        s.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      wrong_type("stop", "a string or an array of strings", *stop);
    }
    for (size_t i = 0; i < s.stop.size(); ++i) {
      if (s.stop[i].empty()) {
        throw invalid_param(stop->is_string() ? "stop" : idx("stop", i), "must not be empty");
      }
    }
  }
  if (const json* ids = f.get("stop_token_ids")) {
    if (!ids->is_array()) wrong_type("stop_token_ids", "an array of token ids", *ids);
    for (size_t i = 0; i < ids->size(); ++i) {
      s.stop_token_ids.push_back(
          Fields::integer_value((*ids)[i], idx("stop_token_ids", i), 0, kI64Max));
    }
  }
  s.ignore_eos = f.boolean("ignore_eos").value_or(false);
  s.n = f.integer("n", 1, kMaxN).value_or(1);
  if (const json* bo = f.get("best_of")) {
    const int64_t b = Fields::integer_value(*bo, "best_of", 1, kMaxN);
    if (b != s.n) throw invalid_param("best_of", "is not supported (must equal n when given)");
  }
  s.stream = f.boolean("stream").value_or(false);
  if (const json* so = f.get("stream_options")) {
    if (!s.stream) {
      throw invalid_param("stream_options", "is only allowed when stream is true");
    }
    Fields g(require_object(*so, "stream_options"), "stream_options");
    s.include_usage =
        g.boolean("include_usage").value_or(true);  // vLLM: on when the object is there
    s.continuous_usage_stats = g.boolean("continuous_usage_stats").value_or(false);
  }
  if (chat) {
    s.logprobs = f.boolean("logprobs").value_or(false);
    if (auto k = f.integer("top_logprobs", 0, 20)) {
      if (*k > 0 && !s.logprobs) {
        throw invalid_param("top_logprobs", "needs logprobs set to true");
      }
      s.top_logprobs = *k;
    }
  } else if (const json* lp = f.get("logprobs")) {
    if (lp->is_boolean()) wrong_type("logprobs", "an integer (0 to 5) for completions", *lp);
    s.logprobs = true;
    s.top_logprobs = Fields::integer_value(*lp, "logprobs", 0, 5);
  }
  s.response_format = parse_response_format(body);
  s.user = f.str("user").value_or("");
  return s;
}

std::string parse_model(const json& body) {
  return Fields(body, "").str("model").value_or("");
}

json parse_template_kwargs(const json& body) {
  const json* v = Fields(body, "").get("chat_template_kwargs");
  if (!v) return json::object();
  if (!v->is_object()) wrong_type("chat_template_kwargs", "an object", *v);
  return *v;
}

std::vector<int64_t> parse_token_list(const json& v, const std::string& p) {
  std::vector<int64_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out.push_back(Fields::integer_value(v[i], idx(p, i), 0, kI64Max));
  }
  return out;
}

}  // namespace

ChatRequest parse_chat_request(const json& body) {
  require_object(body, "body");
  ChatRequest r;
  r.model = parse_model(body);
  r.messages = parse_messages(body, true);
  r.sampling = parse_sampling(body, true);
  r.tools = parse_tools(body);
  r.tool_choice = parse_tool_choice(body, r.tools);
  Fields f(body, "");
  r.parallel_tool_calls = f.boolean("parallel_tool_calls").value_or(true);
  r.add_generation_prompt = f.boolean("add_generation_prompt").value_or(true);
  r.continue_final_message = f.boolean("continue_final_message").value_or(false);
  if (r.continue_final_message && r.add_generation_prompt) {
    throw invalid_param("continue_final_message",
                        "cannot be combined with add_generation_prompt (set it to false)");
  }
  if (r.continue_final_message && r.messages.back().role != "assistant") {
    throw invalid_param("continue_final_message", "needs a final assistant message");
  }
  r.echo = f.boolean("echo").value_or(false);
  r.chat_template_kwargs = parse_template_kwargs(body);
  return r;
}

CompletionRequest parse_completion_request(const json& body) {
  require_object(body, "body");
  CompletionRequest r;
  r.model = parse_model(body);
  Fields f(body, "");
  const json& p = f.require("prompt");
  if (p.is_string()) {
    r.prompts.push_back({p.get<std::string>(), {}});
  } else if (p.is_array()) {
    if (p.empty()) throw invalid_param("prompt", "must not be an empty list");
    if (p[0].is_number()) {
      r.prompts.push_back({std::nullopt, parse_token_list(p, "prompt")});
    } else {
      for (size_t i = 0; i < p.size(); ++i) {
        const std::string pp = idx("prompt", i);
        if (p[i].is_string()) {
          r.prompts.push_back({p[i].get<std::string>(), {}});
        } else if (p[i].is_array()) {
          if (p[i].empty()) throw invalid_param(pp, "must not be an empty list");
          r.prompts.push_back({std::nullopt, parse_token_list(p[i], pp)});
        } else {
          wrong_type(pp, "a string or a list of token ids", p[i]);
        }
      }
    }
  } else {
    wrong_type("prompt", "a string, a list of strings or a list of token ids", p);
  }
  r.sampling = parse_sampling(body, false);
  r.echo = f.boolean("echo").value_or(false);
  if (const auto suffix = f.str("suffix"); suffix && !suffix->empty()) {
    throw invalid_param("suffix", "is not supported");
  }
  return r;
}

TokenizeRequest parse_tokenize_request(const json& body) {
  require_object(body, "body");
  TokenizeRequest r;
  r.model = parse_model(body);
  Fields f(body, "");
  r.prompt = f.str("prompt");
  const bool chat = f.get("messages") != nullptr;
  if (r.prompt && chat) {
    throw invalid_param("messages", "give either prompt or messages, not both");
  }
  if (!r.prompt && !chat) throw invalid_param("prompt", "is required (or messages)");
  if (chat) {
    r.messages = parse_messages(body, true);
    r.tools = parse_tools(body);
    r.add_special_tokens = f.boolean("add_special_tokens").value_or(false);
    r.add_generation_prompt = f.boolean("add_generation_prompt").value_or(true);
    r.continue_final_message = f.boolean("continue_final_message").value_or(false);
    if (r.continue_final_message && r.add_generation_prompt) {
      throw invalid_param("continue_final_message",
                          "cannot be combined with add_generation_prompt (set it to false)");
    }
    r.chat_template_kwargs = parse_template_kwargs(body);
  } else {
    r.add_special_tokens = f.boolean("add_special_tokens").value_or(true);
  }
  r.return_token_strs = f.boolean("return_token_strs").value_or(false);
  return r;
}

DetokenizeRequest parse_detokenize_request(const json& body) {
  require_object(body, "body");
  DetokenizeRequest r;
  r.model = parse_model(body);
  const json& t = Fields(body, "").require("tokens");
  if (!t.is_array()) wrong_type("tokens", "an array of token ids", t);
  r.tokens = parse_token_list(t, "tokens");
  return r;
}

GenerationConfig to_generation_config(const SamplingParams& s, const GenerationConfig& model) {
  GenerationConfig g = model;
  if (s.max_tokens) g.max_new_tokens = s.max_tokens;
  if (s.min_tokens) g.min_new_tokens = s.min_tokens;
  const double t = s.temperature.value_or(model.do_sample ? model.temperature : 1.0);
  if (t < 1e-5) {
    g.do_sample = false;
    g.temperature = 1.0;
  } else {
    g.do_sample = true;
    g.temperature = t;
  }
  if (s.top_p) g.top_p = *s.top_p;
  if (s.top_k) g.top_k = *s.top_k <= 0 ? 0 : *s.top_k;
  if (s.min_p) g.min_p = *s.min_p > 0 ? std::optional<double>(*s.min_p) : std::nullopt;
  if (s.repetition_penalty) g.repetition_penalty = *s.repetition_penalty;
  if (s.seed) g.seed = s.seed;
  if (!s.stop.empty()) g.stop_strings = s.stop;
  for (int64_t id : s.stop_token_ids) {
    if (std::find(g.eos_token_id.begin(), g.eos_token_id.end(), id) == g.eos_token_id.end()) {
      g.eos_token_id.push_back(id);
    }
  }
  g.num_return_sequences = s.n;
  g.num_beams = 1;
  g.output_scores = s.logprobs;
  return g;
}

// ---- responses ------------------------------------------------------------------------------

std::string to_string(FinishReason r) {
  switch (r) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::ToolCalls:
      return "tool_calls";
    case FinishReason::ContentFilter:
      return "content_filter";
  }
  return "stop";
}

json usage_json(const Usage& u) {
  json j = {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens}};
  if (u.cached_tokens) j["prompt_tokens_details"] = {{"cached_tokens", *u.cached_tokens}};
  return j;
}

namespace {

double clamp_logprob(double lp) {
  return std::isnan(lp) || lp < -9999.0 ? -9999.0 : lp;
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json tool_calls_json(const std::vector<ToolCall>& calls) {
  json arr = json::array();
  for (const auto& c : calls) {
    arr.push_back({{"id", c.id},
                   {"type", c.type},
                   {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  return arr;
}

json opt_json(const std::optional<json>& j) {
  return j ? *j : json(nullptr);
}

json opt_finish(const std::optional<FinishReason>& r) {
  return r ? json(to_string(*r)) : json(nullptr);
}

}  // namespace

json chat_logprobs_json(const std::vector<TokenLogprob>& tokens) {
  json content = json::array();
  for (const auto& t : tokens) {
    json top = json::array();
    for (const auto& alt : t.top) {
      top.push_back({{"token", alt.token},
                     {"logprob", clamp_logprob(alt.logprob)},
                     {"bytes", bytes_of(alt.token)}});
    }
    content.push_back({{"token", t.token},
                       {"logprob", clamp_logprob(t.logprob)},
                       {"bytes", bytes_of(t.token)},
                       {"top_logprobs", std::move(top)}});
  }
  return json{{"content", std::move(content)}};
}

json completion_logprobs_json(const std::vector<TokenLogprob>& tokens, int64_t first_offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  int64_t off = first_offset;
  for (const auto& t : tokens) {
    toks.push_back(t.token);
    lps.push_back(clamp_logprob(t.logprob));
    json top = json::object();
    for (const auto& alt : t.top) top[alt.token] = clamp_logprob(alt.logprob);
    tops.push_back(std::move(top));
    offs.push_back(off);
    off += static_cast<int64_t>(t.token.size());
  }
  return json{{"tokens", std::move(toks)},
              {"token_logprobs", std::move(lps)},
              {"top_logprobs", std::move(tops)},
              {"text_offset", std::move(offs)}};
}

namespace {
std::mt19937_64& id_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}
}  // namespace

std::string random_id(std::string_view prefix) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(prefix);
  auto& rng = id_rng();
  for (int i = 0; i < 24; ++i) s += kHex[rng() % 16];
  return s;
}

std::string random_mistral_id() {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  auto& rng = id_rng();
  for (int i = 0; i < 9; ++i) s += kAlnum[rng() % 62];
  return s;
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json chat_completion_json(const std::string& id, int64_t created, const std::string& model,
                          const std::vector<ChatChoice>& choices, const Usage& usage) {
  json arr = json::array();
  for (const auto& c : choices) {
    json msg = {{"role", "assistant"}, {"content", c.content ? json(*c.content) : json(nullptr)}};
    if (!c.tool_calls.empty()) msg["tool_calls"] = tool_calls_json(c.tool_calls);
    if (c.reasoning_content) msg["reasoning_content"] = *c.reasoning_content;
    arr.push_back({{"index", c.index},
                   {"message", std::move(msg)},
                   {"logprobs", opt_json(c.logprobs)},
                   {"finish_reason", to_string(c.finish_reason)}});
  }
  return json{{"id", id},
              {"object", "chat.completion"},
              {"created", created},
              {"model", model},
              {"system_fingerprint", nullptr},
              {"choices", std::move(arr)},
              {"usage", usage_json(usage)}};
}

json chat_chunk_json(const std::string& id, int64_t created, const std::string& model,
                     int64_t index, const ChatDelta& delta,
                     std::optional<FinishReason> finish_reason, const std::optional<json>& logprobs,
                     bool usage_null, const std::optional<Usage>& usage) {
  json d = json::object();
  if (delta.role) d["role"] = "assistant";
  if (delta.content) d["content"] = *delta.content;
  if (delta.reasoning_content) d["reasoning_content"] = *delta.reasoning_content;
  if (!delta.tool_calls.empty()) {
    json arr = json::array();
    for (const auto& t : delta.tool_calls) {
      json tc = {{"index", t.index}};
      if (t.id) {
        tc["id"] = *t.id;
        tc["type"] = "function";
      }
      json fn = json::object();
      if (t.name) fn["name"] = *t.name;
      fn["arguments"] = t.arguments;
      tc["function"] = std::move(fn);
      arr.push_back(std::move(tc));
    }
    d["tool_calls"] = std::move(arr);
  }
  json j = {{"id", id},
            {"object", "chat.completion.chunk"},
            {"created", created},
            {"model", model},
            {"system_fingerprint", nullptr},
            {"choices", json::array({{{"index", index},
                                      {"delta", std::move(d)},
                                      {"logprobs", opt_json(logprobs)},
                                      {"finish_reason", opt_finish(finish_reason)}}})}};
  if (usage) {
    j["usage"] = usage_json(*usage);
  } else if (usage_null) {
    j["usage"] = nullptr;
  }
  return j;
}

json chat_usage_chunk_json(const std::string& id, int64_t created, const std::string& model,
                           const Usage& usage) {
  return json{{"id", id},
              {"object", "chat.completion.chunk"},
              {"created", created},
              {"model", model},
              {"system_fingerprint", nullptr},
              {"choices", json::array()},
              {"usage", usage_json(usage)}};
}

json completion_json(const std::string& id, int64_t created, const std::string& model,
                     const std::vector<CompletionChoice>& choices, const Usage& usage) {
  json arr = json::array();
  for (const auto& c : choices) {
    arr.push_back({{"index", c.index},
                   {"text", c.text},
                   {"logprobs", opt_json(c.logprobs)},
                   {"finish_reason", to_string(c.finish_reason)}});
  }
  return json{{"id", id},
              {"object", "text_completion"},
              {"created", created},
              {"model", model},
              {"system_fingerprint", nullptr},
              {"choices", std::move(arr)},
              {"usage", usage_json(usage)}};
}

json completion_chunk_json(const std::string& id, int64_t created, const std::string& model,
                           int64_t index, const std::string& text,
                           std::optional<FinishReason> finish_reason,
                           const std::optional<json>& logprobs, bool usage_null,
                           const std::optional<Usage>& usage) {
  json j = {{"id", id},
            {"object", "text_completion"},
            {"created", created},
            {"model", model},
            {"system_fingerprint", nullptr},
            {"choices", json::array({{{"index", index},
                                      {"text", text},
                                      {"logprobs", opt_json(logprobs)},
                                      {"finish_reason", opt_finish(finish_reason)}}})}};
  if (usage) {
    j["usage"] = usage_json(*usage);
  } else if (usage_null) {
    j["usage"] = nullptr;
  }
  return j;
}

json completion_usage_chunk_json(const std::string& id, int64_t created, const std::string& model,
                                 const Usage& usage) {
  json j = chat_usage_chunk_json(id, created, model, usage);
  j["object"] = "text_completion";
  return j;
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const json& j) {
  return "data: " + dump_json(j) + "\n\n";
}

std::string sse_done() {
  return "data: [DONE]\n\n";
}

json models_json(const std::vector<ModelCard>& models) {
  json data = json::array();
  for (const auto& m : models) {
    json card = {{"id", m.id},
                 {"object", "model"},
                 {"created", m.created},
                 {"owned_by", m.owned_by},
                 {"root", m.id}};
    if (m.max_model_len) card["max_model_len"] = *m.max_model_len;
    data.push_back(std::move(card));
  }
  return json{{"object", "list"}, {"data", std::move(data)}};
}

json tokenize_json(const std::vector<int64_t>& tokens, int64_t max_model_len,
                   const std::optional<std::vector<std::string>>& token_strs) {
  return json{{"count", tokens.size()},
              {"max_model_len", max_model_len},
              {"tokens", tokens},
              {"token_strs", token_strs ? json(*token_strs) : json(nullptr)}};
}

json detokenize_json(const std::string& text) {
  return json{{"prompt", text}};
}

}  // namespace ohm::serve
