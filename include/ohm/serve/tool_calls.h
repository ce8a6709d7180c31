// Tool calls in each model family's own output format (docs/serving.md, "Tool calls"):
// detection from the chat template, parsing of generated text into OpenAI `tool_calls`
// (whole and streaming), the literal/JSON-schema shape of a call for constrained decoding
// (tool_choice required / named), and OpenAI messages converted to what each template reads.
//
// The text given to the parsers must be decoded with the format's marker tokens kept
// (`[TOOL_CALLS]`, `<|python_tag|>`, DeepSeek's `<｜tool▁calls▁begin｜>`... are special tokens
// that skip_special_tokens would drop) and without the end-of-turn token.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ohm/serve/openai.h"

namespace ohm::serve {

enum class ToolFormat {
  None,            // no tool-call syntax known: output is plain content
  Hermes,          // <tool_call>\n{"name", "arguments"}\n</tool_call> (Hermes 2 Pro, 3, Qwen 2.5)
  Llama3Json,      // [<|python_tag|>]{"name", "parameters"} (Llama 3.1, 3.2, 3.3); one call
  Mistral,         // [TOOL_CALLS][{"name", "arguments", "id"?}, ...] (9-char ids)
  FunctionaryV31,  // <function=NAME>{args}</function>, <|python_tag|>code (functionary v3.1)
  FunctionaryV32,  // [>>>]all\ntext>>>NAME\n{args}... (functionary v3.2; the prompt ends ">>>")
  FireFunction,    //  functools[{"name", "arguments"}, ...] (firefunction v2)
  DeepSeekR1,  // <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{args}\n```<｜tool▁call▁end｜>...
  CommandR,    // Action:\n```json\n[{"tool_name", "parameters"}, ...]``` (command-r-plus)
  CommandR7B,  // <|START_ACTION|>[{"tool_call_id", "tool_name", "parameters"}]<|END_ACTION|>
};

std::string_view to_string(ToolFormat f);

// The format a chat template renders assistant tool calls in, from its source text (markers
// such as "<tool_call>", "[TOOL_CALLS]", "functools[", or Llama 3's `"parameters"` JSON
// instruction). None for templates without tool calls (Gemma 2, Phi 3.5).
ToolFormat detect_tool_format(std::string_view chat_template);

struct ParsedOutput {
  // Text before the first call, right-trimmed; null if blank (functionary v3.2: the `all`
  // recipient's text, without its ">>>all\n" header).
  std::optional<std::string> content;
  std::vector<ToolCall> tool_calls;  // ids "call_<24 hex>" (Mistral: 9 alphanumerics)
};

// Splits generated text into content and tool calls. Text after the calls is dropped. Any
// malformed call (bad JSON, no name) makes the whole text plain content; never throws.
ParsedOutput parse_tool_calls(ToolFormat f, std::string_view text);

// Incremental parsing for streaming. push() returns the deltas the new text allows: content up
// to (not including) anything that may still become a tool call marker, and trailing whitespace
// is held back too; each complete call as one tool_call delta (index, id, name, whole
// arguments). Hermes, functionary v3.1 and DeepSeek calls are sent as each closes; the others when
// finish() sees the whole text. Llama 3 JSON calls are the whole output, so output starting with
// `{` is held back until finish(). finish() flushes the rest (held text becomes content if it is
// not a valid call). Concatenated, the deltas give parse_tool_calls' result (the content may
// differ in leading whitespace); if a later call is malformed after earlier calls were sent,
// the text from the malformed call on is sent as content.
class ToolCallStreamParser {
 public:
  explicit ToolCallStreamParser(ToolFormat f) : format_(f) {}
  ChatDelta push(std::string_view text);
  ChatDelta finish();
  // Tool calls sent so far (finish_reason "tool_calls" when > 0 at the end).
  size_t tool_call_count() const { return sent_calls_; }

 private:
  ToolFormat format_;
  std::string text_;
  size_t sent_content_ = 0;  // bytes of text_ sent as content (no marker starts before)
  size_t sent_calls_ = 0;
  size_t calls_end_ = 0;  // end offset of the last call sent
  std::optional<size_t> tool_start_;
  bool plain_ = false;  // Llama 3: the output did not start with a call
  bool finished_ = false;
};

// A delta as OpenAI streams it, one chunk each: the content (if any), then for each tool call a
// delta with its index, id, type and function.name and arguments "", then the arguments in
// fragments of at most `max_fragment` bytes (never cut inside a UTF-8 character). A delta
// without tool calls is returned as it is. Concatenated per index, the fragments give back the
// call's arguments.
std::vector<ChatDelta> openai_stream_deltas(ChatDelta d, size_t max_fragment = 16);

// One allowed call for constrained decoding: the literal `prefix`, then a JSON value matching
// `schema`, then the literal `suffix`.
struct ToolCallAlternative {
  std::string name;
  std::string prefix;
  json schema = json::object();
  std::string suffix;
};

// What the output must look like for tool_choice "required" (all tools) or a named tool:
//   prefix  alt (separator alt)*  suffix     (one alt only when !parallel)
// where alt is one of `calls`. E.g. Hermes: prefix "", alt "<tool_call>\n" {"name": const,
// "arguments": <parameters schema>} "\n</tool_call>", separator "\n", suffix "".
// Throws ApiError 400 (param "tool_choice") for a format without tool calls or a name not in
// `tools`.
struct ToolCallShape {
  std::string prefix;
  std::vector<ToolCallAlternative> calls;
  std::string separator;
  std::string suffix;
  bool parallel = true;
};
ToolCallShape tool_call_shape(ToolFormat f, const std::vector<Tool>& tools,
                              const std::optional<std::string>& named = std::nullopt);

// The messages as the format's template reads them (transformers passes them unchanged, so the
// server must give the type each template expects): tool_calls as [{id, type, function: {name,
// arguments}}] with arguments a JSON object for templates that apply `tojson` to them (Hermes,
// Qwen 2.5, Llama 3.x, Mistral, command-r, None) and the JSON string for the ones that
// concatenate them (functionary, firefunction, DeepSeek R1); Mistral ids (and tool_call_id)
// shortened to 9 alphanumerics as its template requires; tool messages keep tool_call_id and
// name; null content is left out. Arguments that are not a JSON object where one is needed:
// ApiError 400 naming messages[i].tool_calls[j].function.arguments.
json template_messages(const std::vector<Message>& messages, ToolFormat f);
// The tools as templates read them: [{type: "function", function: {name, description ("" when
// absent: Hermes 2 Pro's template reads it), parameters ({"type": "object", "properties": {}}
// when absent)}}].
json template_tools(const std::vector<Tool>& tools);

// Extra template variables a format's template needs beyond `tools` (ChatOptions::extra): the
// firefunction v2 template reads `functions` (the tools as a JSON string) and `datetime`
// (today, "YYYY-MM-DD" in UTC) and fails without them; {} for the others.
json template_variables(ToolFormat f, const std::vector<Tool>& tools);

}  // namespace ohm::serve
