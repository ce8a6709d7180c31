// The OpenAI protocol of `ohm serve`: request bodies parsed and validated into typed structs,
// response / SSE / usage / logprobs shapes, and OpenAI's JSON error shape (docs/serving.md,
// "Protocol"). Pure functions over JSON: no model, no sockets.
//
//   json body = parse_body(http_body);                  // ApiError 400/413 on bad bytes
//   ChatRequest req = parse_chat_request(body);         // ApiError 400 naming the field
//   GenerationConfig g = to_generation_config(req.sampling, model_defaults);
//   ... generate ...
//   reply(200, chat_completion_json(...)) / sse_event(chat_chunk_json(...)) ... sse_done();
//   catch (const ApiError& e) { reply(e.status, error_json(e)); }
//
// Every validation failure is an ApiError with status 400, type "invalid_request_error" and
// `param` set to the JSON path of the field at fault (`messages[2].role`, `temperature`).
// Unknown fields are accepted and ignored (as vLLM does); `null` counts as absent for every
// optional field.
#pragma once

#include <cstdint>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/formats/config.h"

namespace ohm::serve {

// Ordered: key order survives (tool schemas reach the chat template as the client wrote them,
// and replies list id, object, created... in OpenAI's order).
using json = nlohmann::ordered_json;

// ---- errors -------------------------------------------------------------------------------

// An error reply: {"error": {"message", "type", "param", "code"}} with HTTP status `status`.
struct ApiError : std::exception {
  int status = 400;
  std::string type;  // empty: error_type_for_status(status)
  std::string message;
  std::string param;  // JSON path of the field at fault; empty: null
  std::string code;   // non-empty: "code" is this string (e.g. "content_filter"), not the status
  json details;       // an object: more fields of "error" (e.g. the content filter's categories)
  ApiError(int status, std::string message, std::string param = {}, std::string type = {});
  const char* what() const noexcept override { return message.c_str(); }
};

// The `type` string per status (llama.cpp's server map, which vLLM shares for 400/404/500):
//   400, 413, other 4xx -> invalid_request_error   401 -> authentication_error
//   403 -> permission_error   404 -> not_found_error   429 -> rate_limit_exceeded
//   501 -> not_supported_error   503 -> unavailable_error   500, other 5xx -> server_error
std::string error_type_for_status(int status);
// {"error": {"message", "type", "param" (string or null), "code" (the HTTP status, an integer,
// as vLLM and llama.cpp send it; OpenAI's own API sends a string or null there)}}.
json error_json(const ApiError& e);

// 400 for one field: `param` names it, `message` says what is wrong ("must be between 0 and 2");
// the message sent is "<param>: <message>".
ApiError invalid_param(const std::string& param, const std::string& message);
// 404 "The model `<model>` does not exist." (param "model").
ApiError model_not_found(const std::string& model);
// 400 when the prompt plus the completion do not fit: says by how many tokens (param
// `param_name`, "messages" or "prompt"). No-op when prompt_tokens + max_tokens <= max_model_len
// (max_tokens nullopt: the prompt alone must leave room for one token). A max_tokens of the
// whole context or more is a 400 on "max_tokens".
void check_context_length(int64_t prompt_tokens, std::optional<int64_t> max_tokens,
                          int64_t max_model_len, const std::string& param_name);
// 400 for a token id outside [0, vocab_size) (param e.g. "prompt[3]" / "tokens[0]").
void check_token_ids(const std::vector<int64_t>& ids, int64_t vocab_size,
                     const std::string& param_name);

// ---- the body -------------------------------------------------------------------------------

struct BodyLimits {
  size_t max_bytes = size_t{32} << 20;  // 413 above
  int max_depth = 64;                   // arrays/objects nested deeper: 400
};
// Parses an HTTP body into a JSON object. 413 when longer than max_bytes; 400 for an empty
// body, invalid UTF-8 (with the byte offset), nesting deeper than max_depth (checked before
// parsing, so 10,000-deep input costs nothing), malformed JSON (with the parser's position), or
// a top-level value that is not an object. Numbers too large for a double (1e400) are refused
// too. Never throws anything but ApiError.
json parse_body(std::string_view body, const BodyLimits& limits = {});

// ---- request structs ------------------------------------------------------------------------

struct ToolCall {
  std::string id;  // "call_..." (Mistral: 9 alphanumerics)
  std::string type = "function";
  std::string name;
  std::string arguments;  // a JSON text (OpenAI sends the arguments as a string)
};

struct Message {
  std::string role;                    // system, user, assistant, tool ("developer" -> system)
  std::optional<std::string> content;  // nullopt: null (assistant with tool_calls)
  std::string name;                    // optional participant / tool name
  std::vector<ToolCall> tool_calls;    // assistant only
  std::string tool_call_id;            // tool only (required there)
  std::optional<std::string> reasoning_content;
};

struct Tool {
  std::string name;  // ^[A-Za-z0-9_-]{1,64}$ as OpenAI requires
  std::string description;
  json parameters = json::object();  // a JSON schema; {} when absent
  bool strict = false;
};

struct ToolChoice {
  enum class Mode { Auto, None, Required, Named } mode = Mode::None;
  std::string name;  // Named
};

struct ResponseFormat {
  enum class Type { Text, JsonObject, JsonSchema } type = Type::Text;
  std::string name;            // json_schema.name
  std::optional<json> schema;  // json_schema.schema, or llama.cpp's json_object "schema"
  bool strict = false;
};

// The sampling fields both endpoints share. std::nullopt: not in the request (the model's
// generation_config.json default applies, as vLLM does).
struct SamplingParams {
  std::optional<int64_t> max_tokens;         // max_completion_tokens wins over max_tokens; >= 1
  std::optional<int64_t> min_tokens;         // vLLM extension; >= 0
  std::optional<double> temperature;         // [0, 2]; 0 = greedy
  std::optional<double> top_p;               // (0, 1]
  std::optional<int64_t> top_k;              // -1 or 0: off; else >= 1 (vLLM extension)
  std::optional<double> min_p;               // [0, 1] (vLLM extension)
  double frequency_penalty = 0;              // [-2, 2], additive (OpenAI), over generated tokens
  double presence_penalty = 0;               // [-2, 2], additive (OpenAI), over generated tokens
  std::optional<double> repetition_penalty;  // (0, 2] multiplicative (HF), prompt + output
  std::map<int64_t, double> logit_bias;      // token id -> [-100, 100]
  std::optional<uint64_t> seed;              // any integer in [-2^63, 2^64); negatives wrap
  std::vector<std::string> stop;             // at most 4 non-empty strings
  std::vector<int64_t> stop_token_ids;       // vLLM extension
  bool ignore_eos = false;                   // vLLM extension
  int64_t n = 1;                             // [1, 16]
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage (only with stream; true when
                                        // stream_options is given without it, as vLLM does)
  bool continuous_usage_stats = false;  // stream_options.continuous_usage_stats (vLLM)
  bool logprobs = false;                // chat: logprobs; completions: logprobs != null
  int64_t top_logprobs = 0;             // chat: [0, 20] (needs logprobs); completions: [0, 5]
  ResponseFormat response_format;
  std::string user;
};

struct ChatRequest {
  std::string model;  // may be empty: the server's only model
  std::vector<Message> messages;
  SamplingParams sampling;
  std::vector<Tool> tools;
  ToolChoice tool_choice;  // default: auto with tools, none without
  bool parallel_tool_calls = true;
  bool add_generation_prompt = true;           // vLLM extension
  bool continue_final_message = false;         // vLLM extension (not with add_generation_prompt)
  bool echo = false;                           // vLLM extension
  json chat_template_kwargs = json::object();  // extra template variables
};

// One prompt of /v1/completions: text, or token ids.
struct Prompt {
  std::optional<std::string> text;
  std::vector<int64_t> tokens;  // when !text
};

struct CompletionRequest {
  std::string model;
  // `prompt` as a string, a list of token ids, a list of strings or a list of token-id lists.
  // A list gives a batch: choice i*n + j is sample j of prompt i (OpenAI's numbering); the
  // server submits each prompt as its own engine requests.
  std::vector<Prompt> prompts;
  SamplingParams sampling;  // logprobs: the int `logprobs` (0..5) sets logprobs + top_logprobs
  bool echo = false;
};

// POST /tokenize, vLLM's two shapes: {prompt, add_special_tokens=true} or {messages,
// add_generation_prompt=true, continue_final_message=false, add_special_tokens=false, tools}.
struct TokenizeRequest {
  std::string model;
  std::optional<std::string> prompt;  // completion shape
  std::vector<Message> messages;      // chat shape (when !prompt)
  std::vector<Tool> tools;
  bool add_special_tokens = true;
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  bool return_token_strs = false;
  json chat_template_kwargs = json::object();
};

// POST /detokenize: {model?, tokens: [int...]}.
struct DetokenizeRequest {
  std::string model;
  std::vector<int64_t> tokens;
};

ChatRequest parse_chat_request(const json& body);
CompletionRequest parse_completion_request(const json& body);
TokenizeRequest parse_tokenize_request(const json& body);
DetokenizeRequest parse_detokenize_request(const json& body);

// The request's sampling over the model's defaults (generation_config.json):
//   max_tokens -> max_new_tokens; min_tokens -> min_new_tokens; temperature (request, else the
//   model's) 0 -> do_sample=false (greedy), > 0 -> do_sample=true; top_p, min_p; top_k (-1/0 ->
//   0 = off); repetition_penalty; seed; stop -> stop_strings; stop_token_ids are added to
//   eos_token_id; n -> num_return_sequences; logprobs -> output_scores.
// Not in GenerationConfig (the engine applies them): frequency/presence penalties and
// logit_bias (serve/penalties.h, applied before the HF chain), ignore_eos, response_format.
GenerationConfig to_generation_config(const SamplingParams& s, const GenerationConfig& model);

// ---- responses ------------------------------------------------------------------------------

enum class FinishReason { Stop, Length, ToolCalls, ContentFilter };
std::string to_string(FinishReason r);  // "stop", "length", "tool_calls", "content_filter"

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::optional<int64_t> cached_tokens;  // prompt_tokens_details.cached_tokens when set
};
// {prompt_tokens, completion_tokens, total_tokens[, prompt_tokens_details:{cached_tokens}]}
json usage_json(const Usage& u);

// One sampled token with its log-probability and the top alternatives at its position.
struct TokenLogprob {
  std::string token;  // the token's text (raw bytes; may be a partial UTF-8 sequence)
  double logprob = 0;
  struct Top {
    std::string token;
    double logprob = 0;
  };
  std::vector<Top> top;
};
// Chat: {"content": [{token, logprob, bytes:[uint8...], top_logprobs:[{token, logprob,
// bytes}]}]}. Log-probabilities below -9999 (and -inf) are sent as -9999.0, as OpenAI/vLLM do.
json chat_logprobs_json(const std::vector<TokenLogprob>& tokens);
// Completions: {tokens, token_logprobs, top_logprobs:[{token: logprob}], text_offset} where
// text_offset[i] = first_offset + the byte length of the tokens before i.
json completion_logprobs_json(const std::vector<TokenLogprob>& tokens, int64_t first_offset = 0);

// A random id: prefix + 24 hex digits ("chatcmpl-", "cmpl-", "call_").
std::string random_id(std::string_view prefix);
// A Mistral tool-call id: 9 random alphanumerics.
std::string random_mistral_id();
// Seconds since the epoch, for `created`.
int64_t unix_time();

struct ChatChoice {
  int64_t index = 0;
  std::optional<std::string> content;  // null with tool_calls and no text
  std::vector<ToolCall> tool_calls;
  std::optional<std::string> reasoning_content;
  FinishReason finish_reason = FinishReason::Stop;
  std::optional<json> logprobs;  // chat_logprobs_json(...); absent: null
};
// {id, object:"chat.completion", created, model, system_fingerprint:null, choices:[{index,
// message:{role:"assistant", content, tool_calls?, reasoning_content?}, logprobs,
// finish_reason}], usage}.
json chat_completion_json(const std::string& id, int64_t created, const std::string& model,
                          const std::vector<ChatChoice>& choices, const Usage& usage);

// One streamed tool call fragment (OpenAI's streaming shape): the first fragment of a call
// carries id, type and function.name; later ones only function.arguments pieces.
struct ToolCallDelta {
  int64_t index = 0;
  std::optional<std::string> id;
  std::optional<std::string> name;
  std::string arguments;
};
struct ChatDelta {
  bool role = false;  // include role:"assistant" (the first chunk of a choice)
  std::optional<std::string> content;
  std::optional<std::string> reasoning_content;
  std::vector<ToolCallDelta> tool_calls;
};
// {id, object:"chat.completion.chunk", created, model, system_fingerprint:null,
//  choices:[{index, delta, logprobs, finish_reason}]} plus "usage": null when usage_null (the
// stream asked for include_usage) or the usage object when given (continuous_usage_stats).
json chat_chunk_json(const std::string& id, int64_t created, const std::string& model,
                     int64_t index, const ChatDelta& delta,
                     std::optional<FinishReason> finish_reason = std::nullopt,
                     const std::optional<json>& logprobs = std::nullopt, bool usage_null = false,
                     const std::optional<Usage>& usage = std::nullopt);
// The last chunk when include_usage: choices [] and usage filled.
json chat_usage_chunk_json(const std::string& id, int64_t created, const std::string& model,
                           const Usage& usage);

struct CompletionChoice {
  int64_t index = 0;
  std::string text;
  FinishReason finish_reason = FinishReason::Stop;
  std::optional<json> logprobs;  // completion_logprobs_json(...); absent: null
};
// {id, object:"text_completion", created, model, system_fingerprint:null, choices:[{index, text,
// logprobs, finish_reason}], usage}.
json completion_json(const std::string& id, int64_t created, const std::string& model,
                     const std::vector<CompletionChoice>& choices, const Usage& usage);
// A streamed text_completion: one choice with the text piece; finish_reason null until the end.
json completion_chunk_json(const std::string& id, int64_t created, const std::string& model,
                           int64_t index, const std::string& text,
                           std::optional<FinishReason> finish_reason = std::nullopt,
                           const std::optional<json>& logprobs = std::nullopt,
                           bool usage_null = false,
                           const std::optional<Usage>& usage = std::nullopt);
json completion_usage_chunk_json(const std::string& id, int64_t created, const std::string& model,
                                 const Usage& usage);

// "data: <compact JSON>\n\n" (invalid UTF-8 in strings is replaced by U+FFFD, never thrown).
std::string sse_event(const json& j);
// "data: [DONE]\n\n", the end of every stream.
std::string sse_done();
// A JSON body as text, invalid UTF-8 replaced by U+FFFD (use for every reply).
std::string dump_json(const json& j);

struct ModelCard {
  std::string id;
  int64_t created = 0;
  std::string owned_by = "ohm";
  std::optional<int64_t> max_model_len;
};
// {object:"list", data:[{id, object:"model", created, owned_by, root, max_model_len?}]}
json models_json(const std::vector<ModelCard>& models);

// vLLM's /tokenize reply: {count, max_model_len, tokens, token_strs (list or null)}.
json tokenize_json(const std::vector<int64_t>& tokens, int64_t max_model_len,
                   const std::optional<std::vector<std::string>>& token_strs = std::nullopt);
// vLLM's /detokenize reply: {prompt}.
json detokenize_json(const std::string& text);

}  // namespace ohm::serve
