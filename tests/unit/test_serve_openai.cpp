// The OpenAI protocol layer (serve/openai.h): body parsing, per-field validation with the exact
// param and status, the mapping to GenerationConfig, the additive penalties, the response, SSE
// and error shapes, and a seeded fuzz of malformed bodies (each must be a 4xx ApiError).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ohm/serve/openai.h"
#include "ohm/serve/penalties.h"

namespace {

using namespace ohm::serve;

// A minimal valid chat body with `extra` merged in (null values remove keys).
json chat_body(const json& extra = json::object()) {
  json b = {{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (const auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

json completion_body(const json& extra = json::object()) {
  json b = {{"model", "m"}, {"prompt", "Once upon a time"}};
  for (const auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

// The ApiError `fn` throws (fails the test when it does not).
ApiError error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no ApiError thrown";
  return ApiError(0, "");
}

void expect_chat_400(const json& extra, const std::string& param, const std::string& needle = {}) {
  const ApiError e = error_of([&] { parse_chat_request(chat_body(extra)); });
  EXPECT_EQ(e.status, 400) << extra.dump();
  EXPECT_EQ(e.param, param) << extra.dump() << " -> " << e.message;
  EXPECT_EQ(e.type, "invalid_request_error");
  if (!needle.empty()) {
    EXPECT_NE(e.message.find(needle), std::string::npos) << e.message;
  }
}

void expect_completion_400(const json& extra, const std::string& param,
                           const std::string& needle = {}) {
  const ApiError e = error_of([&] { parse_completion_request(completion_body(extra)); });
  EXPECT_EQ(e.status, 400) << extra.dump();
  EXPECT_EQ(e.param, param) << extra.dump() << " -> " << e.message;
  if (!needle.empty()) {
    EXPECT_NE(e.message.find(needle), std::string::npos) << e.message;
  }
}

// ---- errors ---------------------------------------------------------------------------------

TEST(ServeErrors, ShapeAndTypes) {
  const json j = error_json(invalid_param("temperature", "must be between 0 and 2"));
  EXPECT_EQ(
      j.dump(),
      R"({"error":{"message":"temperature: must be between 0 and 2","type":"invalid_request_error","param":"temperature","code":400}})");
  const json nf = error_json(model_not_found("llama"));
  EXPECT_EQ(nf["error"]["code"], 404);
  EXPECT_EQ(nf["error"]["type"], "not_found_error");
  EXPECT_EQ(nf["error"]["param"], "model");
  EXPECT_TRUE(error_json(ApiError(503, "loading"))["error"]["param"].is_null());
  EXPECT_EQ(error_type_for_status(400), "invalid_request_error");
  EXPECT_EQ(error_type_for_status(401), "authentication_error");
  EXPECT_EQ(error_type_for_status(403), "permission_error");
  EXPECT_EQ(error_type_for_status(404), "not_found_error");
  EXPECT_EQ(error_type_for_status(413), "invalid_request_error");
  EXPECT_EQ(error_type_for_status(429), "rate_limit_exceeded");
  EXPECT_EQ(error_type_for_status(500), "server_error");
  EXPECT_EQ(error_type_for_status(501), "not_supported_error");
  EXPECT_EQ(error_type_for_status(503), "unavailable_error");
  EXPECT_EQ(ApiError(429, "slow down").type, "rate_limit_exceeded");
  EXPECT_EQ(ApiError(401, "x", "", "custom").type, "custom");
}

TEST(ServeErrors, ContextLength) {
  EXPECT_NO_THROW(check_context_length(100, 28, 128, "messages"));
  EXPECT_NO_THROW(check_context_length(127, std::nullopt, 128, "prompt"));
  ApiError e = error_of([] { check_context_length(120, 20, 128, "messages"); });
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "messages");
  EXPECT_NE(e.message.find("maximum context length is 128 tokens"), std::string::npos);
  EXPECT_NE(e.message.find("you requested 140 tokens (120 in the messages, 20 in the completion)"),
            std::string::npos)
      << e.message;
  EXPECT_NE(e.message.find("12 tokens too many"), std::string::npos) << e.message;
  e = error_of([] { check_context_length(128, std::nullopt, 128, "prompt"); });
  EXPECT_NE(e.message.find("1 tokens too many"), std::string::npos) << e.message;
  e = error_of(
      [] { check_context_length(10, std::numeric_limits<int64_t>::max(), 128, "messages"); });
  EXPECT_EQ(e.param, "max_tokens");
  EXPECT_NE(e.message.find("maximum context length is 128 tokens (messages: 10 tokens)"),
            std::string::npos)
      << e.message;
}

TEST(ServeErrors, TokenIds) {
  EXPECT_NO_THROW(check_token_ids({0, 5, 9}, 10, "prompt"));
  const ApiError e = error_of([] { check_token_ids({0, 10}, 10, "prompt"); });
  EXPECT_EQ(e.param, "prompt[1]");
  EXPECT_NE(e.message.find("out of the vocabulary [0, 10)"), std::string::npos);
}

// ---- body -----------------------------------------------------------------------------------

TEST(ServeBody, ParsesObjects) {
  EXPECT_EQ(parse_body(R"({"a": [1, {"b": "é"}]})")["a"][1]["b"], "é");
  EXPECT_EQ(parse_body(" \n{}\n").size(), 0u);
}

TEST(ServeBody, Refusals) {
  auto status_of = [](std::string_view body, const std::string& needle) {
    const ApiError e = error_of([&] { parse_body(body); });
    EXPECT_NE(e.message.find(needle), std::string::npos) << e.message;
    EXPECT_TRUE(e.param.empty());
    return e.status;
  };
  EXPECT_EQ(status_of("", "empty"), 400);
  EXPECT_EQ(status_of("  \n", "empty"), 400);
  EXPECT_EQ(status_of("{\"a\": \"\xff\"}", "not valid UTF-8 (byte 7)"), 400);
  EXPECT_EQ(status_of("{\"a\": \"\xc0\xaf\"}", "not valid UTF-8"), 400);      // overlong
  EXPECT_EQ(status_of("{\"a\": \"\xed\xa0\x80\"}", "not valid UTF-8"), 400);  // surrogate
  EXPECT_EQ(status_of("{\"a\": \"\xe2\x82\"}", "not valid UTF-8"), 400);      // truncated
  EXPECT_EQ(status_of("{\"a\": 1e400}", "number out of range"), 400);
  EXPECT_EQ(status_of("{\"a\": -1e400}", "number out of range"), 400);
  EXPECT_EQ(status_of("{\"a\": 1,}", "not valid JSON"), 400);
  EXPECT_EQ(status_of("{\"a\": 1} x", "not valid JSON"), 400);
  EXPECT_EQ(status_of("[1, 2]", "must be a JSON object, not array"), 400);
  EXPECT_EQ(status_of("\"text\"", "must be a JSON object, not string"), 400);
  EXPECT_EQ(status_of("null", "must be a JSON object, not null"), 400);
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_EQ(status_of(deep, "nested deeper than 64 levels (byte 64)"), 400);
  const std::string deep_obj = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(status_of(deep_obj, "nested deeper than 64"), 400);
  // Brackets inside strings do not count.
  EXPECT_NO_THROW(parse_body("{\"a\": \"" + std::string(1000, '[') + "\\\"\"}"));
}

TEST(ServeBody, TooLarge) {
  BodyLimits lim;
  lim.max_bytes = 10;
  const ApiError e = error_of([&] { parse_body(R"({"a": "0123456789"})", lim); });
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.type, "invalid_request_error");
  EXPECT_NE(e.message.find("over the limit of 10"), std::string::npos);
}

// ---- chat request: valid forms --------------------------------------------------------------

TEST(ServeChat, Defaults) {
  const ChatRequest r = parse_chat_request(chat_body());
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_FALSE(r.sampling.max_tokens);
  EXPECT_FALSE(r.sampling.temperature);
  EXPECT_EQ(r.sampling.n, 1);
  EXPECT_FALSE(r.sampling.stream);
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::None);
  EXPECT_TRUE(r.add_generation_prompt);
  EXPECT_EQ(r.sampling.response_format.type, ResponseFormat::Type::Text);
}

TEST(ServeChat, AllFieldsValid) {
  const json body = chat_body({
      {"max_tokens", 5},
      {"max_completion_tokens", 7},
      {"min_tokens", 2},
      {"temperature", 0},
      {"top_p", 1},
      {"top_k", -1},
      {"min_p", 0.05},
      {"frequency_penalty", -2},
      {"presence_penalty", 2.0},
      {"repetition_penalty", 1.1},
      {"logit_bias", {{"5", -100}, {"7", 100}}},
      {"seed", -1},
      {"stop", {"a", "b", "c", "d"}},
      {"stop_token_ids", {1, 2}},
      {"n", 16},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"logprobs", true},
      {"top_logprobs", 20},
      {"response_format", {{"type", "json_object"}}},
      {"user", "u"},
      {"some_unknown_field", {{"x", 1}}},
      {"parallel_tool_calls", false},
  });
  const ChatRequest r = parse_chat_request(body);
  const SamplingParams& s = r.sampling;
  EXPECT_EQ(s.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_EQ(s.min_tokens, 2);
  EXPECT_EQ(s.temperature, 0.0);
  EXPECT_EQ(s.top_p, 1.0);
  EXPECT_EQ(s.top_k, -1);
  EXPECT_DOUBLE_EQ(*s.min_p, 0.05);
  EXPECT_EQ(s.frequency_penalty, -2);
  EXPECT_EQ(s.presence_penalty, 2);
  EXPECT_DOUBLE_EQ(*s.repetition_penalty, 1.1);
  EXPECT_EQ(s.logit_bias.at(5), -100);
  EXPECT_EQ(s.logit_bias.at(7), 100);
  EXPECT_EQ(s.seed, std::numeric_limits<uint64_t>::max());  // -1 wraps
  EXPECT_EQ(s.stop, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(s.stop_token_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(s.n, 16);
  EXPECT_TRUE(s.stream);
  EXPECT_TRUE(s.include_usage);
  EXPECT_TRUE(s.logprobs);
  EXPECT_EQ(s.top_logprobs, 20);
  EXPECT_EQ(s.response_format.type, ResponseFormat::Type::JsonObject);
  EXPECT_EQ(s.user, "u");
  EXPECT_FALSE(r.parallel_tool_calls);
}

TEST(ServeChat, StreamOptions) {
  EXPECT_FALSE(parse_chat_request(chat_body({{"stream", true}})).sampling.include_usage);
  const SamplingParams s =
      parse_chat_request(chat_body({{"stream", true}, {"stream_options", json::object()}}))
          .sampling;
  EXPECT_TRUE(s.include_usage);  // vLLM's default when the object is present
  EXPECT_FALSE(s.continuous_usage_stats);
  const SamplingParams t =
      parse_chat_request(
          chat_body(
              {{"stream", true},
               {"stream_options", {{"include_usage", false}, {"continuous_usage_stats", true}}}}))
          .sampling;
  EXPECT_FALSE(t.include_usage);
  EXPECT_TRUE(t.continuous_usage_stats);
}

TEST(ServeChat, NullMeansAbsent) {
  const ChatRequest r = parse_chat_request(chat_body({{"temperature", nullptr},
                                                      {"max_tokens", nullptr},
                                                      {"stop", nullptr},
                                                      {"tools", nullptr},
                                                      {"model", nullptr}}));
  EXPECT_FALSE(r.sampling.temperature);
  EXPECT_FALSE(r.sampling.max_tokens);
  EXPECT_TRUE(r.sampling.stop.empty());
  EXPECT_EQ(r.model, "");
}

TEST(ServeChat, NumbersAsFloatsAndBigSeeds) {
  const ChatRequest r = parse_chat_request(
      chat_body({{"max_tokens", 5.0}, {"n", 2.0}, {"seed", json::parse("18446744073709551615")}}));
  EXPECT_EQ(r.sampling.max_tokens, 5);
  EXPECT_EQ(r.sampling.n, 2);
  EXPECT_EQ(r.sampling.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(parse_chat_request(chat_body({{"seed", 42}})).sampling.seed, 42u);
  EXPECT_EQ(parse_chat_request(chat_body({{"stop", "END"}})).sampling.stop,
            std::vector<std::string>{"END"});
}

TEST(ServeChat, Messages) {
  const json msgs = json::parse(R"([
    {"role": "developer", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
     "name": "bob"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function",
       "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
      {"id": "call_2", "function": {"name": "now", "arguments": {"tz": "UTC"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
    {"role": "assistant", "content": "It is 22C.", "reasoning_content": "easy"}
  ])");
  const ChatRequest r = parse_chat_request(chat_body({{"messages", msgs}}));
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "a\nb");
  EXPECT_EQ(r.messages[1].name, "bob");
  EXPECT_FALSE(r.messages[2].content);
  ASSERT_EQ(r.messages[2].tool_calls.size(), 2u);
  EXPECT_EQ(r.messages[2].tool_calls[0].id, "call_1");
  EXPECT_EQ(r.messages[2].tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.messages[2].tool_calls[0].arguments, "{\"city\": \"Paris\"}");
  EXPECT_EQ(r.messages[2].tool_calls[1].type, "function");
  EXPECT_EQ(r.messages[2].tool_calls[1].arguments, "{\"tz\":\"UTC\"}");
  EXPECT_EQ(r.messages[3].tool_call_id, "call_1");
  EXPECT_EQ(r.messages[4].reasoning_content, "easy");
}

TEST(ServeChat, ToolsAndChoice) {
  const json tools = json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "now"}}
  ])");
  ChatRequest r = parse_chat_request(chat_body({{"tools", tools}}));
  ASSERT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].description, "Weather");
  // Key order survives (ordered JSON), so templates render the schema as the client wrote it.
  EXPECT_EQ(r.tools[0].parameters.dump(),
            R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})");
  EXPECT_EQ(r.tools[1].parameters, json::object());
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::Auto);
  r = parse_chat_request(chat_body({{"tools", tools}, {"tool_choice", "required"}}));
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::Required);
  r = parse_chat_request(chat_body({{"tools", tools}, {"tool_choice", "none"}}));
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::None);
  r = parse_chat_request(
      chat_body({{"tools", tools},
                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "now"}}}}}}));
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::Named);
  EXPECT_EQ(r.tool_choice.name, "now");
  r = parse_chat_request(chat_body({{"tool_choice", "auto"}}));  // auto without tools: none
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::None);
}

TEST(ServeChat, ResponseFormats) {
  ChatRequest r = parse_chat_request(chat_body({{"response_format", {{"type", "text"}}}}));
  EXPECT_EQ(r.sampling.response_format.type, ResponseFormat::Type::Text);
  r = parse_chat_request(
      chat_body({{"response_format",
                  {{"type", "json_schema"},
                   {"json_schema",
                    {{"name", "answer"}, {"strict", true}, {"schema", {{"type", "object"}}}}}}}}));
  EXPECT_EQ(r.sampling.response_format.type, ResponseFormat::Type::JsonSchema);
  EXPECT_EQ(r.sampling.response_format.name, "answer");
  EXPECT_TRUE(r.sampling.response_format.strict);
  EXPECT_EQ(*r.sampling.response_format.schema, json({{"type", "object"}}));
  // llama.cpp's forms.
  r = parse_chat_request(
      chat_body({{"response_format", {{"type", "json_object"}, {"schema", {{"type", "array"}}}}}}));
  EXPECT_EQ(*r.sampling.response_format.schema, json({{"type", "array"}}));
  r = parse_chat_request(
      chat_body({{"response_format", {{"type", "json_schema"}, {"schema", {{"type", "array"}}}}}}));
  EXPECT_EQ(r.sampling.response_format.type, ResponseFormat::Type::JsonSchema);
}

// ---- chat request: every invalid form names its field ---------------------------------------

TEST(ServeChat, InvalidTopLevel) {
  expect_chat_400({{"model", 5}}, "model", "must be a string, not an integer");
  expect_chat_400({{"messages", nullptr}}, "messages", "is required");
  expect_chat_400({{"messages", "hi"}}, "messages", "must be an array, not a string");
  expect_chat_400({{"messages", json::array()}}, "messages", "at least one message");
  EXPECT_EQ(error_of([] { parse_chat_request(json::array()); }).param, "body");
}

TEST(ServeChat, InvalidMessages) {
  auto msgs = [](const json& m) { return json{{"messages", json::array({m})}}; };
  expect_chat_400(msgs(5), "messages[0]", "must be an object");
  expect_chat_400(msgs({{"content", "x"}}), "messages[0].role", "is required");
  expect_chat_400(msgs({{"role", 1}, {"content", "x"}}), "messages[0].role", "must be a string");
  expect_chat_400(msgs({{"role", "robot"}, {"content", "x"}}), "messages[0].role",
                  "must be one of system, developer, user, assistant, tool; got \"robot\"");
  expect_chat_400(msgs({{"role", "user"}}), "messages[0].content", "is required for user");
  expect_chat_400(msgs({{"role", "user"}, {"content", nullptr}}), "messages[0].content");
  expect_chat_400(msgs({{"role", "user"}, {"content", 5}}), "messages[0].content",
                  "must be a string or an array of content parts");
  expect_chat_400(msgs({{"role", "assistant"}}), "messages[0].content", "without tool_calls");
  expect_chat_400(msgs({{"role", "user"}, {"content", {"text"}}}), "messages[0].content[0]",
                  "must be an object");
  expect_chat_400(msgs({{"role", "user"}, {"content", {{{"text", "x"}}}}}),
                  "messages[0].content[0].type", "is required");
  expect_chat_400(msgs({{"role", "user"},
                        {"content", {{{"type", "image_url"}, {"image_url", {{"url", "x"}}}}}}}),
                  "messages[0].content[0].type", "'image_url' content parts are not supported");
  expect_chat_400(msgs({{"role", "user"}, {"content", {{{"type", "input_audio"}}}}}),
                  "messages[0].content[0].type", "not supported");
  expect_chat_400(msgs({{"role", "user"}, {"content", {{{"type", "video"}}}}}),
                  "messages[0].content[0].type", "unknown content part type 'video'");
  expect_chat_400(msgs({{"role", "user"}, {"content", {{{"type", "text"}}}}}),
                  "messages[0].content[0].text", "is required");
  expect_chat_400(msgs({{"role", "user"}, {"content", {{{"type", "text"}, {"text", 1}}}}}),
                  "messages[0].content[0].text", "must be a string");
  expect_chat_400(msgs({{"role", "user"}, {"content", "x"}, {"name", 3}}), "messages[0].name");
  expect_chat_400(msgs({{"role", "tool"}, {"content", "x"}}), "messages[0].tool_call_id",
                  "is required for tool messages");
  expect_chat_400(msgs({{"role", "tool"}, {"content", "x"}, {"tool_call_id", 1}}),
                  "messages[0].tool_call_id");
  expect_chat_400(msgs({{"role", "user"}, {"content", "x"}, {"tool_calls", json::array()}}),
                  "messages[0].tool_calls", "only allowed on assistant");
  expect_chat_400(msgs({{"role", "assistant"}, {"tool_calls", {{"a", 1}}}}),
                  "messages[0].tool_calls", "must be an array");
  expect_chat_400(msgs({{"role", "assistant"}, {"tool_calls", {5}}}), "messages[0].tool_calls[0]");
  expect_chat_400(msgs({{"role", "assistant"}, {"tool_calls", {{{"id", "c"}}}}}),
                  "messages[0].tool_calls[0].function", "is required");
  expect_chat_400(
      msgs({{"role", "assistant"},
            {"tool_calls", {{{"id", "c"}, {"type", "code"}, {"function", {{"name", "f"}}}}}}}),
      "messages[0].tool_calls[0].type", "must be \"function\"");
  expect_chat_400(msgs({{"role", "assistant"}, {"tool_calls", {{{"function", json::object()}}}}}),
                  "messages[0].tool_calls[0].function.name", "is required");
  expect_chat_400(msgs({{"role", "assistant"},
                        {"tool_calls", {{{"function", {{"name", "f"}, {"arguments", 5}}}}}}}),
                  "messages[0].tool_calls[0].function.arguments", "must be a string");
  expect_chat_400(msgs({{"role", "assistant"}, {"content", "x"}, {"reasoning_content", 1}}),
                  "messages[0].reasoning_content");
  // The index is the failing message's.
  expect_chat_400({{"messages",
                    {{{"role", "user"}, {"content", "a"}},
                     {{"role", "assistant"}, {"content", "b"}},
                     {{"role", "bad"}, {"content", "c"}}}}},
                  "messages[2].role");
}

TEST(ServeChat, InvalidSampling) {
  expect_chat_400({{"max_tokens", 0}}, "max_tokens", "must be at least 1, got 0");
  expect_chat_400({{"max_tokens", -5}}, "max_tokens", "at least 1");
  expect_chat_400({{"max_tokens", "5"}}, "max_tokens", "must be an integer, not a string");
  expect_chat_400({{"max_tokens", 1.5}}, "max_tokens", "must be an integer");
  expect_chat_400({{"max_tokens", true}}, "max_tokens", "must be an integer, not a boolean");
  expect_chat_400({{"max_tokens", json::parse("18446744073709551615")}}, "max_tokens");
  expect_chat_400({{"max_tokens", json::parse("18446744073709551616")}}, "max_tokens");
  expect_chat_400({{"max_tokens", 1e300}}, "max_tokens");
  expect_chat_400({{"max_completion_tokens", 0}}, "max_completion_tokens");
  expect_chat_400({{"min_tokens", -1}}, "min_tokens");
  expect_chat_400({{"min_tokens", 10}, {"max_tokens", 5}}, "min_tokens", "at most max_tokens");
  expect_chat_400({{"temperature", -0.1}}, "temperature", "must be between 0 and 2, got -0.1");
  expect_chat_400({{"temperature", 2.01}}, "temperature", "between 0 and 2");
  expect_chat_400({{"temperature", "1"}}, "temperature", "must be a number, not a string");
  expect_chat_400({{"temperature", 1e308}}, "temperature");
  expect_chat_400({{"temperature", json::array()}}, "temperature", "not an array");
  expect_chat_400({{"top_p", 0}}, "top_p", "must be greater than 0 and at most 1, got 0");
  expect_chat_400({{"top_p", 1.5}}, "top_p");
  expect_chat_400({{"top_k", -2}}, "top_k", "at least -1");
  expect_chat_400({{"top_k", 2.5}}, "top_k", "must be an integer");
  expect_chat_400({{"min_p", 1.5}}, "min_p");
  expect_chat_400({{"min_p", -0.5}}, "min_p");
  expect_chat_400({{"frequency_penalty", 2.5}}, "frequency_penalty", "between -2 and 2");
  expect_chat_400({{"frequency_penalty", -3}}, "frequency_penalty");
  expect_chat_400({{"presence_penalty", 3}}, "presence_penalty");
  expect_chat_400({{"presence_penalty", false}}, "presence_penalty", "not a boolean");
  expect_chat_400({{"repetition_penalty", 0}}, "repetition_penalty");
  expect_chat_400({{"repetition_penalty", 2.5}}, "repetition_penalty");
  expect_chat_400({{"logit_bias", {1, 2}}}, "logit_bias", "must be an object");
  expect_chat_400({{"logit_bias", {{"abc", 1}}}}, "logit_bias.abc", "keys must be token ids");
  expect_chat_400({{"logit_bias", {{"-3", 1}}}}, "logit_bias.-3", "keys must be token ids");
  expect_chat_400({{"logit_bias", {{"12x", 1}}}}, "logit_bias.12x");
  expect_chat_400({{"logit_bias", {{" 12", 1}}}}, "logit_bias. 12");
  expect_chat_400({{"logit_bias", {{"99999999999999999999999", 1}}}},
                  "logit_bias.99999999999999999999999");
  expect_chat_400({{"logit_bias", {{"5", 101}}}}, "logit_bias.5", "between -100 and 100");
  expect_chat_400({{"logit_bias", {{"5", "x"}}}}, "logit_bias.5", "must be a number");
  expect_chat_400({{"seed", 1.5}}, "seed", "must be an integer");
  expect_chat_400({{"seed", "1"}}, "seed", "must be an integer, not a string");
  expect_chat_400({{"seed", json::parse("18446744073709551616")}}, "seed");
  expect_chat_400({{"stop", 5}}, "stop", "a string or an array of strings");
  expect_chat_400({{"stop", {"a", 1}}}, "stop[1]", "must be a string");
  expect_chat_400({{"stop", {"a", "b", "c", "d", "e"}}}, "stop", "at most 4 strings, got 5");
  expect_chat_400({{"stop", ""}}, "stop", "must not be empty");
  expect_chat_400({{"stop", {"a", ""}}}, "stop[1]", "must not be empty");
  expect_chat_400({{"stop_token_ids", 5}}, "stop_token_ids");
  expect_chat_400({{"stop_token_ids", {1, -1}}}, "stop_token_ids[1]");
  expect_chat_400({{"ignore_eos", "yes"}}, "ignore_eos");
  expect_chat_400({{"n", 0}}, "n", "between 1 and 16, got 0");
  expect_chat_400({{"n", 17}}, "n", "between 1 and 16");
  expect_chat_400({{"n", "2"}}, "n");
  expect_chat_400({{"best_of", 3}}, "best_of", "not supported");
  expect_chat_400({{"stream", "true"}}, "stream", "must be a boolean, not a string");
  expect_chat_400({{"stream", 1}}, "stream", "must be a boolean");
  expect_chat_400({{"stream_options", {{"include_usage", true}}}}, "stream_options",
                  "only allowed when stream is true");
  expect_chat_400({{"stream", true}, {"stream_options", true}}, "stream_options",
                  "must be an object");
  expect_chat_400({{"stream", true}, {"stream_options", {{"include_usage", "yes"}}}},
                  "stream_options.include_usage");
  expect_chat_400({{"logprobs", "x"}}, "logprobs", "must be a boolean");
  expect_chat_400({{"logprobs", true}, {"top_logprobs", 21}}, "top_logprobs",
                  "between 0 and 20, got 21");
  expect_chat_400({{"logprobs", true}, {"top_logprobs", -1}}, "top_logprobs");
  expect_chat_400({{"top_logprobs", 2}}, "top_logprobs", "needs logprobs set to true");
  expect_chat_400({{"user", 5}}, "user");
  expect_chat_400({{"parallel_tool_calls", "no"}}, "parallel_tool_calls");
  expect_chat_400({{"add_generation_prompt", 1}}, "add_generation_prompt");
  expect_chat_400({{"continue_final_message", true}}, "continue_final_message",
                  "cannot be combined with add_generation_prompt");
  expect_chat_400({{"continue_final_message", true}, {"add_generation_prompt", false}},
                  "continue_final_message", "needs a final assistant message");
  expect_chat_400({{"chat_template_kwargs", "x"}}, "chat_template_kwargs");
  expect_chat_400({{"echo", "x"}}, "echo");
}

// Parsed bodies hold non-negative integers as unsigned: the lower bounds hold there too.
TEST(ServeChat, InvalidFromParsedBody) {
  for (const char* f : {"max_tokens", "n", "max_completion_tokens"}) {
    const ApiError e = error_of([&] {
      parse_chat_request(parse_body(
          std::string(R"({"messages":[{"role":"user","content":"x"}],")") + f + "\":0}"));
    });
    EXPECT_EQ(e.param, f);
  }
}

TEST(ServeChat, InvalidResponseFormat) {
  expect_chat_400({{"response_format", "json"}}, "response_format", "must be an object");
  expect_chat_400({{"response_format", json::object()}}, "response_format.type", "is required");
  expect_chat_400({{"response_format", {{"type", "xml"}}}}, "response_format.type",
                  "must be \"text\", \"json_object\" or \"json_schema\"; got \"xml\"");
  expect_chat_400({{"response_format", {{"type", 1}}}}, "response_format.type");
  expect_chat_400({{"response_format", {{"type", "json_schema"}}}}, "response_format.json_schema",
                  "is required when type is json_schema");
  expect_chat_400({{"response_format", {{"type", "json_schema"}, {"json_schema", 5}}}},
                  "response_format.json_schema", "must be an object");
  expect_chat_400({{"response_format", {{"type", "json_schema"}, {"json_schema", json::object()}}}},
                  "response_format.json_schema.name", "is required");
  expect_chat_400({{"response_format",
                    {{"type", "json_schema"}, {"json_schema", {{"name", "a"}, {"schema", "x"}}}}}},
                  "response_format.json_schema.schema", "must be an object");
  expect_chat_400({{"response_format", {{"type", "json_object"}, {"schema", 5}}}},
                  "response_format.schema");
}

TEST(ServeChat, InvalidTools) {
  expect_chat_400({{"tools", {{"a", 1}}}}, "tools", "must be an array");
  expect_chat_400({{"tools", {1}}}, "tools[0]", "must be an object");
  expect_chat_400({{"tools", {{{"type", "function"}}}}}, "tools[0].function", "is required");
  expect_chat_400({{"tools", {{{"type", "retrieval"}, {"function", {{"name", "f"}}}}}}},
                  "tools[0].type", "must be \"function\"");
  expect_chat_400({{"tools", {{{"type", "function"}, {"function", json::object()}}}}},
                  "tools[0].function.name", "is required");
  expect_chat_400({{"tools", {{{"type", "function"}, {"function", {{"name", "bad name"}}}}}}},
                  "tools[0].function.name", "1 to 64 characters");
  expect_chat_400(
      {{"tools", {{{"type", "function"}, {"function", {{"name", std::string(65, 'a')}}}}}}},
      "tools[0].function.name");
  expect_chat_400({{"tools",
                    {{{"type", "function"}, {"function", {{"name", "f"}}}},
                     {{"type", "function"}, {"function", {{"name", "f"}}}}}}},
                  "tools[1].function.name", "duplicate tool name");
  expect_chat_400(
      {{"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", 5}}}}}}},
      "tools[0].function.parameters", "must be an object");
  expect_chat_400(
      {{"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"description", 5}}}}}}},
      "tools[0].function.description");
  const json tools = {{{"type", "function"}, {"function", {{"name", "f"}}}}};
  expect_chat_400({{"tools", tools}, {"tool_choice", "sometimes"}}, "tool_choice",
                  "got \"sometimes\"");
  expect_chat_400({{"tools", tools}, {"tool_choice", 5}}, "tool_choice",
                  "must be a string or an object");
  expect_chat_400({{"tool_choice", "required"}}, "tool_choice", "needs `tools`");
  expect_chat_400({{"tools", tools}, {"tool_choice", {{"type", "function"}}}},
                  "tool_choice.function", "is required");
  expect_chat_400(
      {{"tools", tools}, {"tool_choice", {{"type", "x"}, {"function", {{"name", "f"}}}}}},
      "tool_choice.type");
  expect_chat_400({{"tools", tools}, {"tool_choice", {{"function", json::object()}}}},
                  "tool_choice.function.name", "is required");
  expect_chat_400({{"tools", tools}, {"tool_choice", {{"function", {{"name", "g"}}}}}},
                  "tool_choice.function.name", "no tool named \"g\"");
}

// ---- completions / tokenize / detokenize ----------------------------------------------------

TEST(ServeCompletion, PromptForms) {
  CompletionRequest r = parse_completion_request(completion_body());
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].text, "Once upon a time");
  r = parse_completion_request(completion_body({{"prompt", {1, 2, 3}}}));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_FALSE(r.prompts[0].text);
  EXPECT_EQ(r.prompts[0].tokens, (std::vector<int64_t>{1, 2, 3}));
  r = parse_completion_request(completion_body({{"prompt", {"a", "b"}}}));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].text, "b");
  r = parse_completion_request(completion_body({{"prompt", {{1, 2}, {3}}}}));
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[1].tokens, std::vector<int64_t>{3});
  r = parse_completion_request(completion_body({{"prompt", ""}}));
  EXPECT_EQ(r.prompts[0].text, "");
}

TEST(ServeCompletion, Fields) {
  const CompletionRequest r = parse_completion_request(
      completion_body({{"logprobs", 3}, {"echo", true}, {"suffix", ""}, {"max_tokens", 16}}));
  EXPECT_TRUE(r.sampling.logprobs);
  EXPECT_EQ(r.sampling.top_logprobs, 3);
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.sampling.max_tokens, 16);
  EXPECT_FALSE(parse_completion_request(completion_body()).sampling.logprobs);
  EXPECT_TRUE(parse_completion_request(completion_body({{"logprobs", 0}})).sampling.logprobs);
}

TEST(ServeCompletion, Invalid) {
  expect_completion_400({{"prompt", nullptr}}, "prompt", "is required");
  expect_completion_400({{"prompt", 5}}, "prompt", "a string, a list of strings");
  expect_completion_400({{"prompt", json::object()}}, "prompt");
  expect_completion_400({{"prompt", json::array()}}, "prompt", "must not be an empty list");
  expect_completion_400({{"prompt", {1, -2}}}, "prompt[1]", "at least 0");
  expect_completion_400({{"prompt", {1, 1.5}}}, "prompt[1]", "must be an integer");
  expect_completion_400({{"prompt", {1, "a"}}}, "prompt[1]", "must be an integer");
  expect_completion_400({{"prompt", {"a", 1}}}, "prompt[1]", "a string or a list of token ids");
  expect_completion_400({{"prompt", {"a", json::array()}}}, "prompt[1]", "must not be an empty");
  expect_completion_400({{"prompt", {{1}, {"x"}}}}, "prompt[1][0]");
  expect_completion_400({{"logprobs", 6}}, "logprobs", "between 0 and 5");
  expect_completion_400({{"logprobs", true}}, "logprobs", "an integer (0 to 5)");
  expect_completion_400({{"suffix", "end"}}, "suffix", "not supported");
  expect_completion_400({{"echo", 1}}, "echo");
  expect_completion_400({{"temperature", 3}}, "temperature");
  expect_completion_400({{"max_completion_tokens", 0}, {"max_tokens", 0}}, "max_tokens");
}

TEST(ServeTokenize, Shapes) {
  TokenizeRequest t = parse_tokenize_request({{"prompt", "hello"}});
  EXPECT_EQ(t.prompt, "hello");
  EXPECT_TRUE(t.add_special_tokens);
  t = parse_tokenize_request(
      {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"return_token_strs", true}});
  EXPECT_FALSE(t.prompt);
  EXPECT_EQ(t.messages.size(), 1u);
  EXPECT_FALSE(t.add_special_tokens);
  EXPECT_TRUE(t.add_generation_prompt);
  EXPECT_TRUE(t.return_token_strs);
  EXPECT_EQ(error_of([] { parse_tokenize_request(json::object()); }).param, "prompt");
  EXPECT_EQ(error_of([] { parse_tokenize_request({{"prompt", 1}}); }).param, "prompt");
  EXPECT_EQ(error_of([] {
              parse_tokenize_request(
                  {{"prompt", "a"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}});
            }).param,
            "messages");
  EXPECT_EQ(error_of([] {
              parse_tokenize_request({{"messages", {{{"role", "user"}}}}});
            }).param,
            "messages[0].content");
  EXPECT_EQ(error_of([] {
              parse_tokenize_request({{"prompt", "a"}, {"add_special_tokens", "no"}});
            }).param,
            "add_special_tokens");

  const DetokenizeRequest d = parse_detokenize_request({{"tokens", {1, 2}}, {"model", "m"}});
  EXPECT_EQ(d.tokens, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(d.model, "m");
  EXPECT_EQ(error_of([] { parse_detokenize_request(json::object()); }).param, "tokens");
  EXPECT_EQ(error_of([] { parse_detokenize_request({{"tokens", "1 2"}}); }).param, "tokens");
  EXPECT_EQ(error_of([] { parse_detokenize_request({{"tokens", {1, -1}}}); }).param, "tokens[1]");
  EXPECT_EQ(error_of([] { parse_detokenize_request({{"tokens", {1, 2.5}}}); }).param, "tokens[1]");
}

// ---- GenerationConfig mapping and penalties --------------------------------------------------

TEST(ServeSampling, ToGenerationConfig) {
  ohm::GenerationConfig model;
  model.do_sample = true;
  model.temperature = 0.6;
  model.top_p = 0.9;
  model.top_k = 50;
  model.eos_token_id = {2};
  // Absent fields keep the model's defaults (vLLM), sampling stays on.
  ohm::GenerationConfig g = to_generation_config(parse_chat_request(chat_body()).sampling, model);
  EXPECT_TRUE(g.do_sample);
  EXPECT_DOUBLE_EQ(g.temperature, 0.6);
  EXPECT_DOUBLE_EQ(g.top_p, 0.9);
  EXPECT_EQ(g.top_k, 50);
  EXPECT_FALSE(g.max_new_tokens);
  // Greedy model defaults and no temperature: OpenAI's default 1.0 (sampling).
  EXPECT_TRUE(to_generation_config(SamplingParams{}, ohm::GenerationConfig{}).do_sample);

  const SamplingParams s = parse_chat_request(chat_body({{"temperature", 0},
                                                         {"max_tokens", 12},
                                                         {"min_tokens", 3},
                                                         {"top_p", 0.5},
                                                         {"top_k", -1},
                                                         {"min_p", 0.1},
                                                         {"repetition_penalty", 1.2},
                                                         {"seed", 7},
                                                         {"stop", {"\n\n"}},
                                                         {"stop_token_ids", {2, 9}},
                                                         {"n", 3},
                                                         {"logprobs", true}}))
                               .sampling;
  g = to_generation_config(s, model);
  EXPECT_FALSE(g.do_sample);  // temperature 0: greedy
  EXPECT_EQ(g.max_new_tokens, 12);
  EXPECT_EQ(g.min_new_tokens, 3);
  EXPECT_DOUBLE_EQ(g.top_p, 0.5);
  EXPECT_EQ(g.top_k, 0);  // off
  EXPECT_DOUBLE_EQ(*g.min_p, 0.1);
  EXPECT_DOUBLE_EQ(g.repetition_penalty, 1.2);
  EXPECT_EQ(g.seed, 7u);
  EXPECT_EQ(g.stop_strings, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(g.eos_token_id, (std::vector<int64_t>{2, 9}));
  EXPECT_EQ(g.num_return_sequences, 3);
  EXPECT_TRUE(g.output_scores);
  g = to_generation_config(parse_chat_request(chat_body({{"temperature", 1.5}})).sampling, model);
  EXPECT_TRUE(g.do_sample);
  EXPECT_DOUBLE_EQ(g.temperature, 1.5);
}

TEST(ServeSampling, Penalties) {
  SamplingParams s;
  EXPECT_TRUE(openai_processors(s).empty());
  s.frequency_penalty = 0.5;
  s.presence_penalty = 1.0;
  s.logit_bias = {{1, 3.0}, {99, 1.0}};  // 99 is outside the vocabulary: ignored
  const auto list = openai_processors(s);
  EXPECT_EQ(list.names(), (std::vector<std::string>{"logit_bias", "frequency_presence_penalty"}));
  // Prompt [0, 1], generated [2, 2, 3]: only generated tokens count.
  const std::vector<ohm::TokenId> seq = {0, 1, 2, 2, 3};
  std::vector<float> scores = {1, 1, 1, 1, 1};
  list.apply(seq, 2, scores);
  EXPECT_FLOAT_EQ(scores[0], 1);
  EXPECT_FLOAT_EQ(scores[1], 4);                // bias only (prompt token)
  EXPECT_FLOAT_EQ(scores[2], 1 - 2 * 0.5 - 1);  // twice generated
  EXPECT_FLOAT_EQ(scores[3], 1 - 0.5 - 1);
  EXPECT_FLOAT_EQ(scores[4], 1);
  // Negative penalties encourage repetition.
  OpenAIPenalties neg(-1, -0.5);
  std::vector<float> sc = {0, 0, 0, 0};
  neg.apply(seq, 0, sc);
  EXPECT_FLOAT_EQ(sc[2], 2.5);
}

// ---- responses ------------------------------------------------------------------------------

TEST(ServeResponses, ChatCompletion) {
  ChatChoice c;
  c.content = "Hello";
  c.finish_reason = FinishReason::Length;
  ChatChoice t;
  t.index = 1;
  t.tool_calls = {{"call_1", "function", "get_weather", R"({"city":"Paris"})"}};
  t.finish_reason = FinishReason::ToolCalls;
  const json j = chat_completion_json("chatcmpl-1", 1700000000, "m", {c, t}, {10, 5, 4});
  EXPECT_EQ(j.dump(),
            R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m",)"
            R"("system_fingerprint":null,"choices":[{"index":0,"message":{"role":"assistant",)"
            R"("content":"Hello"},"logprobs":null,"finish_reason":"length"},{"index":1,)"
            R"("message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1",)"
            R"("type":"function","function":{"name":"get_weather","arguments":)"
            R"("{\"city\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],)"
            R"("usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,)"
            R"("prompt_tokens_details":{"cached_tokens":4}}})");
  EXPECT_EQ(usage_json({3, 4, std::nullopt}).dump(),
            R"({"prompt_tokens":3,"completion_tokens":4,"total_tokens":7})");
}

TEST(ServeResponses, ChatChunksAndSse) {
  ChatDelta first;
  first.role = true;
  first.content = "";
  json j = chat_chunk_json("c", 1, "m", 0, first, std::nullopt, std::nullopt, true);
  EXPECT_EQ(j.dump(),
            R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",)"
            R"("system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant",)"
            R"("content":""},"logprobs":null,"finish_reason":null}],"usage":null})");
  ChatDelta tool;
  tool.tool_calls = {{0, "call_9", "f", "{\"a\""}, {0, std::nullopt, std::nullopt, ":1}"}};
  j = chat_chunk_json("c", 1, "m", 2, tool, FinishReason::ToolCalls);
  EXPECT_EQ(j["choices"][0]["index"], 2);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_FALSE(j.contains("usage"));
  EXPECT_EQ(j["choices"][0]["delta"]["tool_calls"].dump(),
            R"([{"index":0,"id":"call_9","type":"function","function":{"name":"f",)"
            R"("arguments":"{\"a\""}},{"index":0,"function":{"arguments":":1}"}}])");
  j = chat_chunk_json("c", 1, "m", 0, ChatDelta{}, std::nullopt, std::nullopt, false,
                      Usage{1, 2, std::nullopt});
  EXPECT_EQ(j["usage"]["total_tokens"], 3);
  j = chat_usage_chunk_json("c", 1, "m", {7, 3, std::nullopt});
  EXPECT_EQ(j["choices"], json::array());
  EXPECT_EQ(j["usage"]["total_tokens"], 10);
  EXPECT_EQ(j["object"], "chat.completion.chunk");

  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // A partial UTF-8 sequence in a streamed piece is replaced, never thrown.
  ChatDelta partial;
  partial.content = std::string("caf\xc3");
  EXPECT_NE(sse_event(chat_chunk_json("c", 1, "m", 0, partial)).find("caf\xef\xbf\xbd"),
            std::string::npos);
  EXPECT_NO_THROW(dump_json(json{{"x", std::string("\xff")}}));
}

TEST(ServeResponses, Completion) {
  CompletionChoice c;
  c.text = " there";
  const json j = completion_json("cmpl-1", 5, "m", {c}, {2, 1, std::nullopt});
  EXPECT_EQ(j.dump(),
            R"({"id":"cmpl-1","object":"text_completion","created":5,"model":"m",)"
            R"("system_fingerprint":null,"choices":[{"index":0,"text":" there","logprobs":null,)"
            R"("finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1,)"
            R"("total_tokens":3}})");
  const json ch =
      completion_chunk_json("cmpl-1", 5, "m", 0, " t", std::nullopt, std::nullopt, true);
  EXPECT_EQ(ch["choices"][0]["text"], " t");
  EXPECT_TRUE(ch["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(ch["usage"].is_null());
  EXPECT_EQ(completion_chunk_json("x", 1, "m", 0, "",
                                  FinishReason::Length)["choices"][0]["finish_reason"],
            "length");
  const json u = completion_usage_chunk_json("x", 1, "m", {1, 1, std::nullopt});
  EXPECT_EQ(u["object"], "text_completion");
  EXPECT_EQ(u["choices"], json::array());
}

TEST(ServeResponses, Logprobs) {
  const std::vector<TokenLogprob> toks = {
      {"Hi", -0.25, {{"Hi", -0.25}, {"Hello", -1.5}}},
      {" é", -std::numeric_limits<double>::infinity(), {}},
  };
  const json c = chat_logprobs_json(toks);
  EXPECT_EQ(c.dump(),
            R"({"content":[{"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[)"
            R"({"token":"Hi","logprob":-0.25,"bytes":[72,105]},{"token":"Hello","logprob":-1.5,)"
            R"("bytes":[72,101,108,108,111]}]},{"token":" é","logprob":-9999.0,)"
            R"("bytes":[32,195,169],"top_logprobs":[]}]})");
  const json p = completion_logprobs_json(toks, 10);
  EXPECT_EQ(p.dump(), R"({"tokens":["Hi"," é"],"token_logprobs":[-0.25,-9999.0],"top_logprobs":[)"
                      R"({"Hi":-0.25,"Hello":-1.5},{}],"text_offset":[10,12]})");
}

TEST(ServeResponses, ModelsTokenizeIds) {
  const json m = models_json({{"qwen", 3, "ohm", 4096}});
  EXPECT_EQ(m.dump(), R"({"object":"list","data":[{"id":"qwen","object":"model","created":3,)"
                      R"("owned_by":"ohm","root":"qwen","max_model_len":4096}]})");
  EXPECT_EQ(tokenize_json({1, 2}, 128).dump(),
            R"({"count":2,"max_model_len":128,"tokens":[1,2],"token_strs":null})");
  EXPECT_EQ(tokenize_json({1}, 8, std::vector<std::string>{"a"})["token_strs"], json({"a"}));
  EXPECT_EQ(detokenize_json("hi").dump(), R"({"prompt":"hi"})");
  const std::string id = random_id("chatcmpl-");
  EXPECT_EQ(id.size(), 9u + 24u);
  EXPECT_EQ(id.rfind("chatcmpl-", 0), 0u);
  EXPECT_NE(random_id("x"), random_id("x"));
  const std::string mid = random_mistral_id();
  EXPECT_EQ(mid.size(), 9u);
  for (char ch : mid) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)));
  EXPECT_GT(unix_time(), 1600000000);
}

// ---- fuzz -----------------------------------------------------------------------------------

enum class Endpoint { Chat, Completion, Tokenize, Detokenize };

// What a server does with a body: 0 for a valid request, else the ApiError's status. Anything
// else thrown fails the test.
int handle(std::string_view body, Endpoint ep) {
  try {
    const json j = parse_body(body);
    switch (ep) {
      case Endpoint::Chat:
        parse_chat_request(j);
        break;
      case Endpoint::Completion:
        parse_completion_request(j);
        break;
      case Endpoint::Tokenize:
        parse_tokenize_request(j);
        break;
      case Endpoint::Detokenize:
        parse_detokenize_request(j);
        break;
    }
    return 0;
  } catch (const ApiError& e) {
    // Every error has the full OpenAI shape.
    const json ej = error_json(e);
    if (!ej["error"]["message"].is_string() || ej["error"]["message"].get<std::string>().empty()) {
      return -1;
    }
    return e.status;
  }
}

// Field -> values that are always invalid there (wrong type, out of range, huge).
const std::vector<std::pair<std::string, std::vector<std::string>>>& bad_values() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> v = {
      {"model", {"1", "[]", "{}", "true"}},
      {"messages",
       {"\"hi\"", "{}", "[]", "[1]", "[{}]", "[{\"role\":\"user\"}]",
        "[{\"role\":\"bad\",\"content\":\"x\"}]", "[{\"role\":\"user\",\"content\":5}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]",
        "[{\"role\":\"tool\",\"content\":\"x\"}]", "[{\"role\":\"assistant\",\"tool_calls\":5}]"}},
      {"max_tokens", {"0", "-1", "\"5\"", "1.5", "18446744073709551616", "true", "[]", "1e300"}},
      {"temperature", {"-0.1", "2.5", "\"1\"", "[]", "true", "1e308", "{}"}},
      {"top_p", {"0", "1.5", "\"x\"", "-1"}},
      {"top_k", {"-2", "1.5", "\"x\""}},
      {"min_p", {"-1", "2", "[]"}},
      {"frequency_penalty", {"3", "-3", "\"x\"", "1e200"}},
      {"presence_penalty", {"2.5", "-2.5", "\"x\""}},
      {"repetition_penalty", {"0", "-1", "3"}},
      {"seed", {"1.5", "\"1\"", "18446744073709551616", "-9223372036854775809", "[]"}},
      {"stop", {"5", "[\"a\",1]", "[\"a\",\"b\",\"c\",\"d\",\"e\"]", "\"\"", "{}"}},
      {"n", {"0", "17", "1.5", "\"2\"", "99999999999999999999"}},
      {"stream", {"\"true\"", "1", "[]"}},
      {"logprobs", {"\"x\"", "[]"}},
      {"top_logprobs", {"21", "-1", "\"3\""}},
      {"response_format", {"\"json\"", "{\"type\":\"xml\"}", "{\"type\":\"json_schema\"}", "{}"}},
      {"tools",
       {"{}", "[1]", "[{\"type\":\"function\"}]",
        "[{\"type\":\"function\",\"function\":{\"name\":\"bad name\"}}]"}},
      {"tool_choice",
       {"\"sometimes\"", "5", "\"required\"",
        "{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}"}},
      {"logit_bias", {"[]", "{\"abc\":1}", "{\"5\":200}", "{\"5\":\"x\"}"}},
  };
  return v;
}

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>(rng() % 256);
  return s;
}

TEST(ServeFuzz, MalformedBodiesAllGet4xx) {
  std::mt19937_64 rng(20261206);
  const std::string valid_chat = chat_body().dump();
  const std::string valid_completion = completion_body().dump();
  const auto& table = bad_values();
  int cases = 0;
  auto check = [&](const std::string& body, Endpoint ep, const std::string& what) {
    const int status = handle(body, ep);
    ++cases;
    EXPECT_TRUE(status >= 400 && status < 500)
        << what << " -> " << status << "\nbody: " << body.substr(0, 300);
  };
  for (int i = 0; i < 1200; ++i) {
    switch (i % 8) {
      case 0: {  // truncated JSON
        const std::string& v = (rng() % 2) ? valid_chat : valid_completion;
        check(v.substr(0, rng() % (v.size() - 1)), Endpoint::Chat, "truncated");
        break;
      }
      case 1: {  // invalid UTF-8 inside a string
        std::string b = valid_chat;
        const size_t at = b.find("hi");
        std::string bad = random_bytes(rng, 1 + rng() % 4);
        bad[0] = static_cast<char>(0x80 | (rng() % 0x40));  // a stray continuation byte first
        b.insert(at, bad);
        check(b, Endpoint::Chat, "invalid utf-8");
        break;
      }
      case 2: {  // a known field with a wrong value
        const auto& [field, values] = table[rng() % table.size()];
        const std::string& value = values[rng() % values.size()];
        const std::string b =
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
            ",\"" +
            field + "\":" + value + "}";
        check(b, Endpoint::Chat, field + "=" + value);
        break;
      }
      case 3: {  // deep nesting anywhere
        const size_t depth = 65 + rng() % 10000;
        const char* open = (rng() % 2) ? "[" : "{\"a\":";
        std::string b = "{\"messages\":";
        for (size_t k = 0; k < depth; ++k) b += open;
        check(b + "1" + std::string(depth, open[0] == '[' ? ']' : '}') + "}", Endpoint::Chat,
              "deep nesting");
        break;
      }
      case 4: {  // huge numbers
        static const char* huge[] = {"1e400", "-1e400", "18446744073709551616", "1e999",
                                     "123456789012345678901234567890"};
        const std::string field = (rng() % 2) ? "max_tokens" : "n";
        const std::string b = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"" + field +
                              "\":" + huge[rng() % 5] + "}";
        check(b, Endpoint::Chat, "huge number");
        break;
      }
      case 5: {  // completions prompt of a wrong shape
        static const char* prompts[] = {"5",  "[]",         "[[]]",          "[1.5]", "[-1]",
                                        "{}", "[\"a\",[]]", "[[1],[\"x\"]]", "true",  "null"};
        check(std::string("{\"model\":\"m\",\"prompt\":") + prompts[rng() % 10] + "}",
              Endpoint::Completion, "prompt");
        break;
      }
      case 6: {  // not an object at all, or random bytes
        static const char* tops[] = {"[]",      "1",          "\"x\"",      "null", "true",
                                     "",        "   ",        "{",          "}",    "{\"a\"}",
                                     "{'a':1}", "{\"a\":01}", "{\"a\":NaN}"};
        if (rng() % 2) {
          check(tops[rng() % 13], static_cast<Endpoint>(rng() % 4), "top");
        } else {
          std::string b = random_bytes(rng, 1 + rng() % 64);
          if (!b.empty() && b[0] == '{') b[0] = '[';
          check(b, static_cast<Endpoint>(rng() % 4), "random bytes");
        }
        break;
      }
      case 7: {  // tokenize / detokenize shapes
        static const char* bodies[] = {"{}",
                                       "{\"prompt\":1}",
                                       "{\"tokens\":\"1\"}",
                                       "{\"tokens\":[1,-1]}",
                                       "{\"tokens\":[1e400]}",
                                       "{\"prompt\":\"a\",\"messages\":[]}",
                                       "{\"messages\":[{\"role\":\"user\"}]}"};
        const size_t k = rng() % 7;
        check(bodies[k], (k == 2 || k == 3 || k == 4) ? Endpoint::Detokenize : Endpoint::Tokenize,
              "tokenize");
        break;
      }
    }
  }
  EXPECT_GE(cases, 1000);
}

// Random byte mutations of valid bodies: any outcome but a crash or a non-ApiError exception;
// the ones that fail are 4xx.
TEST(ServeFuzz, RandomMutationsNeverCrash) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> seeds = {
      chat_body({{"temperature", 0.7},
                 {"stop", {"x"}},
                 {"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}},
                 {"response_format", {{"type", "json_object"}}}})
          .dump(),
      completion_body({{"prompt", {1, 2, 3}}, {"logprobs", 2}}).dump()};
  int failures = 0;
  for (int i = 0; i < 2000; ++i) {
    const size_t which = rng() % 2;
    std::string b = seeds[which];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      const size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0:
          b[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          b.erase(at, 1 + rng() % 3);
          break;
        case 2:
          b.insert(at, 1, "{}[]\",:0-e.9\\"[rng() % 14]);
          break;
      }
    }
    const int status = handle(b, which ? Endpoint::Completion : Endpoint::Chat);
    EXPECT_TRUE(status == 0 || (status >= 400 && status < 500)) << status << " " << b;
    failures += status != 0;
  }
  EXPECT_GT(failures, 1000);  // most mutations break something
}

}  // namespace
