#include "ohm/serve/tool_calls.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <utility>

namespace ohm::serve {

using ojson = json;

namespace {

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistral = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kFuncOpen = "<function=";
constexpr std::string_view kFuncClose = "</function>";
constexpr std::string_view kFunctools = "functools[";
constexpr std::string_view kRecipient = ">>>";
constexpr std::string_view kAllHeader = "all\n";
constexpr std::string_view kDsCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDsCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDsCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDsCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kDsSep = "<｜tool▁sep｜>";
constexpr std::string_view kCohereAction = "Action:";
constexpr std::string_view kStartAction = "<|START_ACTION|>";
constexpr std::string_view kEndAction = "<|END_ACTION|>";

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// The end (one past) of the JSON object/array starting at s[i], or npos when it is not closed.
size_t json_value_end(std::string_view s, size_t i) {
  int depth = 0;
  bool in_str = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (in_str) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_str = false;
      }
    } else if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
      if (depth < 0) return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

std::optional<ojson> parse_json(std::string_view s) {
  ojson j = ojson::parse(s.begin(), s.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool is_mistral_id(std::string_view s) {
  return s.size() == 9 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
         });
}

std::string new_id(ToolFormat f) {
  return f == ToolFormat::Mistral ? random_mistral_id() : random_id("call_");
}

// {"name"|"tool_name": str, "arguments"|"parameters": object|string} -> ToolCall.
std::optional<ToolCall> call_from_json(const ojson& j, ToolFormat f) {
  if (!j.is_object()) return std::nullopt;
  const ojson* name = nullptr;
  for (const char* k : {"name", "tool_name"}) {
    if (auto it = j.find(k); it != j.end()) {
      name = &*it;
      break;
    }
  }
  if (!name || !name->is_string() || name->get<std::string>().empty()) return std::nullopt;
  ToolCall tc;
  tc.name = name->get<std::string>();
  tc.arguments = "{}";
  for (const char* k : {"arguments", "parameters"}) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) continue;
    if (it->is_object()) {
      tc.arguments = it->dump();
    } else if (it->is_string()) {
      tc.arguments = it->get<std::string>();
    } else {
      return std::nullopt;
    }
    break;
  }
  if (auto it = j.find("id"); f == ToolFormat::Mistral && it != j.end() && it->is_string() &&
                              is_mistral_id(it->get<std::string>())) {
    tc.id = it->get<std::string>();
  } else {
    tc.id = new_id(f);
  }
  return tc;
}

std::optional<ToolCall> call_from_text(std::string_view body, ToolFormat f) {
  auto j = parse_json(trim(body));
  if (!j) return std::nullopt;
  return call_from_json(*j, f);
}

// The calls found from `start` on. `final`: the whole output is there (unclosed last blocks are
// read to the end); otherwise only complete calls are returned (for streaming).
struct Scan {
  bool ok = true;
  std::vector<ToolCall> calls;
  std::vector<size_t> ends;  // end offset of each call's text
};

void fail(Scan& s) {
  s.ok = false;
  s.calls.clear();
  s.ends.clear();
}

// A JSON array (or one object) of calls at s[i...].
void scan_json_list(std::string_view text, size_t i, ToolFormat f, Scan& s) {
  i = skip_space(text, i);
  if (i >= text.size() || (text[i] != '[' && text[i] != '{')) return fail(s);
  const size_t end = json_value_end(text, i);
  if (end == std::string_view::npos) return fail(s);
  auto j = parse_json(text.substr(i, end - i));
  if (!j) return fail(s);
  if (j->is_object()) j = ojson::array({*j});
  if (j->empty()) return fail(s);
  for (const auto& item : *j) {
    auto tc = call_from_json(item, f);
    if (!tc) return fail(s);
    s.calls.push_back(std::move(*tc));
    s.ends.push_back(end);
  }
}

void scan_hermes(std::string_view text, size_t pos, bool final, Scan& s) {
  while ((pos = text.find(kHermesOpen, pos)) != std::string_view::npos) {
    const size_t b = pos + kHermesOpen.size();
    const size_t e = text.find(kHermesClose, b);
    size_t end;
    std::string_view body;
    if (e == std::string_view::npos) {
      if (!final) return;
      body = text.substr(b);
      end = text.size();
    } else {
      body = text.substr(b, e - b);
      end = e + kHermesClose.size();
    }
    auto tc = call_from_text(body, ToolFormat::Hermes);
    if (!tc) return fail(s);
    s.calls.push_back(std::move(*tc));
    s.ends.push_back(end);
    pos = end;
  }
}

// `name.call(key="value", n=3)` after <|python_tag|> (Llama 3.1 built-in tools).
std::optional<ToolCall> llama_builtin_call(std::string_view t) {
  size_t i = 0;
  while (i < t.size() && (std::isalnum(static_cast<unsigned char>(t[i])) || t[i] == '_')) ++i;
  if (i == 0 || t.substr(i, 6) != ".call(") return std::nullopt;
  ToolCall tc;
  tc.name = std::string(t.substr(0, i));
  i += 6;
  ojson args = ojson::object();
  while (true) {
    i = skip_space(t, i);
    if (i < t.size() && t[i] == ')') break;
    size_t k = i;
    while (k < t.size() && (std::isalnum(static_cast<unsigned char>(t[k])) || t[k] == '_')) ++k;
    if (k == i || k >= t.size() || t[k] != '=') return std::nullopt;
    const std::string key(t.substr(i, k - i));
    i = k + 1;
    if (i < t.size() && t[i] == '"') {
      std::string v;
      ++i;
      while (i < t.size() && t[i] != '"') {
        if (t[i] == '\\' && i + 1 < t.size()) ++i;
        v += t[i++];
      }
      if (i >= t.size()) return std::nullopt;
      ++i;
      args[key] = v;
    } else {
      size_t e = i;
      while (e < t.size() && t[e] != ',' && t[e] != ')') ++e;
      auto v = parse_json(trim(t.substr(i, e - i)));
      if (!v) return std::nullopt;
      args[key] = *v;
      i = e;
    }
    i = skip_space(t, i);
    if (i < t.size() && t[i] == ',') ++i;
    if (i >= t.size()) return std::nullopt;
  }
  if (!trim(t.substr(i + 1)).empty()) return std::nullopt;
  tc.arguments = args.dump();
  tc.id = random_id("call_");
  return tc;
}

void scan_llama3(std::string_view text, size_t pos, Scan& s) {
  std::string_view t = text.substr(pos);
  const bool tagged = t.substr(0, kPythonTag.size()) == kPythonTag;
  size_t i = tagged ? kPythonTag.size() : 0;
  i = skip_space(t, i);
  if (tagged && i < t.size() && t[i] != '{') {
    auto tc = llama_builtin_call(trim(t.substr(i)));
    if (!tc) return fail(s);
    s.calls.push_back(std::move(*tc));
    s.ends.push_back(text.size());
    return;
  }
  // One or more objects, separated by ';' (as vLLM's Llama 3 parser accepts).
  while (i < t.size()) {
    if (t[i] != '{') return fail(s);
    const size_t end = json_value_end(t, i);
    if (end == std::string_view::npos) return fail(s);
    auto tc = call_from_text(t.substr(i, end - i), ToolFormat::Llama3Json);
    if (!tc) return fail(s);
    s.calls.push_back(std::move(*tc));
    s.ends.push_back(pos + end);
    i = skip_space(t, end);
    if (i < t.size() && t[i] == ';') i = skip_space(t, i + 1);
  }
  if (s.calls.empty()) fail(s);
}

void scan_mistral(std::string_view text, size_t pos, Scan& s) {
  size_t i = skip_space(text, pos + kMistral.size());
  if (i < text.size() && (text[i] == '[' || text[i] == '{'))
    return scan_json_list(text, i, ToolFormat::Mistral, s);
  // The v11 tokenizer's form: [TOOL_CALLS]name[ARGS]{...}[TOOL_CALLS]name2[ARGS]{...}
  while (true) {
    const size_t a = text.find(kMistralArgs, i);
    if (a == std::string_view::npos) return fail(s);
    const std::string_view name = trim(text.substr(i, a - i));
    const size_t b = skip_space(text, a + kMistralArgs.size());
    const size_t end = b < text.size() ? json_value_end(text, b) : std::string_view::npos;
    if (name.empty() || end == std::string_view::npos) return fail(s);
    auto args = parse_json(text.substr(b, end - b));
    if (!args || !args->is_object()) return fail(s);
    ToolCall tc;
    tc.name = std::string(name);
    tc.arguments = args->dump();
    tc.id = random_mistral_id();
    s.calls.push_back(std::move(tc));
    s.ends.push_back(end);
    i = skip_space(text, end);
    if (text.substr(i, kMistral.size()) != kMistral) break;
    i += kMistral.size();
  }
}

void scan_functionary(std::string_view text, size_t pos, bool final, Scan& s) {
  while (true) {
    const size_t f = text.find(kFuncOpen, pos);
    const size_t p = text.find(kPythonTag, pos);
    if (p != std::string_view::npos && p < f) {
      if (!final) return;
      ToolCall tc;
      tc.name = "python";
      tc.arguments = ojson{{"code", std::string(trim(text.substr(p + kPythonTag.size())))}}.dump();
      tc.id = random_id("call_");
      s.calls.push_back(std::move(tc));
      s.ends.push_back(text.size());
      return;
    }
    if (f == std::string_view::npos) return;
    const size_t gt = text.find('>', f);
    if (gt == std::string_view::npos) {
      if (final) fail(s);
      return;
    }
    const std::string_view name = text.substr(f + kFuncOpen.size(), gt - f - kFuncOpen.size());
    const size_t close = text.find(kFuncClose, gt);
    size_t end;
    std::string_view body;
    if (close == std::string_view::npos) {
      if (!final) return;
      body = text.substr(gt + 1);
      end = text.size();
    } else {
      body = text.substr(gt + 1, close - gt - 1);
      end = close + kFuncClose.size();
    }
    auto args = parse_json(trim(body));
    if (name.empty() || !args || !args->is_object()) return fail(s);
    ToolCall tc;
    tc.name = std::string(name);
    tc.arguments = args->dump();
    tc.id = random_id("call_");
    s.calls.push_back(std::move(tc));
    s.ends.push_back(end);
    pos = end;
  }
}

// functionary v3.2: segments ">>>NAME\n{args}" (the first ">>>" is in the generation prompt);
// NAME "all" is text, which ends the calls. `python` may carry raw code.
void scan_functionary_v32(std::string_view text, size_t pos, Scan& s) {
  if (text.substr(pos, kRecipient.size()) == kRecipient) pos += kRecipient.size();
  while (pos < text.size()) {
    size_t next = text.find(kRecipient, pos);
    if (next == std::string_view::npos) next = text.size();
    const std::string_view seg = text.substr(pos, next - pos);
    const size_t nl = seg.find('\n');
    if (nl == std::string_view::npos) return fail(s);
    const std::string_view name = trim(seg.substr(0, nl));
    const std::string_view body = trim(seg.substr(nl + 1));
    if (name == "all") break;
    if (name.empty()) return fail(s);
    ToolCall tc;
    tc.name = std::string(name);
    auto args = parse_json(body);
    if (args && args->is_object()) {
      tc.arguments = args->dump();
    } else if (name == "python") {
      tc.arguments = ojson{{"code", std::string(body)}}.dump();
    } else {
      return fail(s);
    }
    tc.id = random_id("call_");
    s.calls.push_back(std::move(tc));
    s.ends.push_back(next);
    pos = next + kRecipient.size();
  }
}

void scan_deepseek(std::string_view text, size_t pos, bool final, Scan& s) {
  while ((pos = text.find(kDsCallBegin, pos)) != std::string_view::npos) {
    const size_t b = pos + kDsCallBegin.size();
    size_t e = text.find(kDsCallEnd, b);
    size_t end;
    if (e == std::string_view::npos) {
      if (!final) return;
      e = text.find(kDsCallsEnd, b);
      if (e == std::string_view::npos) e = text.size();
      end = text.size();
    } else {
      end = e + kDsCallEnd.size();
    }
    const std::string_view inner = text.substr(b, e - b);
    const size_t sep = inner.find(kDsSep);
    if (sep == std::string_view::npos) return fail(s);
    std::string_view rest = inner.substr(sep + kDsSep.size());
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return fail(s);
    const std::string_view name = trim(rest.substr(0, nl));
    std::string_view body = trim(rest.substr(nl + 1));
    if (body.substr(0, 3) == "```") {
      const size_t l = body.find('\n');
      body = l == std::string_view::npos ? std::string_view{} : body.substr(l + 1);
    }
    body = trim(body);
    if (body.size() >= 3 && body.substr(body.size() - 3) == "```") {
      body = trim(body.substr(0, body.size() - 3));
    }
    auto args = parse_json(body);
    if (name.empty() || !args || !args->is_object()) return fail(s);
    ToolCall tc;
    tc.name = std::string(name);
    tc.arguments = args->dump();
    tc.id = random_id("call_");
    s.calls.push_back(std::move(tc));
    s.ends.push_back(end);
    pos = end;
  }
}

void scan_command_r(std::string_view text, size_t pos, Scan& s) {
  size_t i = skip_space(text, pos + kCohereAction.size());
  if (text.substr(i, 3) == "```") {
    const size_t nl = text.find('\n', i);
    if (nl == std::string_view::npos) return fail(s);
    i = nl + 1;
  }
  scan_json_list(text, i, ToolFormat::CommandR, s);
}

Scan scan(ToolFormat f, std::string_view text, size_t start, bool final) {
  Scan s;
  switch (f) {
    case ToolFormat::None:
      break;
    case ToolFormat::Hermes:
      scan_hermes(text, start, final, s);
      break;
    case ToolFormat::Llama3Json:
      if (final) scan_llama3(text, start, s);
      break;
    case ToolFormat::Mistral:
      if (final) scan_mistral(text, start, s);
      break;
    case ToolFormat::FunctionaryV31:
      scan_functionary(text, start, final, s);
      break;
    case ToolFormat::FunctionaryV32:
      if (final) scan_functionary_v32(text, start, s);
      break;
    case ToolFormat::FireFunction:
      if (final) scan_json_list(text, start + kFunctools.size() - 1, f, s);
      break;
    case ToolFormat::DeepSeekR1:
      scan_deepseek(text, start, final, s);
      break;
    case ToolFormat::CommandR:
      if (final) scan_command_r(text, start, s);
      break;
    case ToolFormat::CommandR7B:
      if (final) scan_json_list(text, start + kStartAction.size(), f, s);
      break;
  }
  if (final && s.ok && s.calls.empty()) fail(s);
  return s;
}

std::vector<std::string_view> markers(ToolFormat f) {
  switch (f) {
    case ToolFormat::Hermes:
      return {kHermesOpen};
    case ToolFormat::Mistral:
      return {kMistral};
    case ToolFormat::FunctionaryV31:
      return {kFuncOpen, kPythonTag};
    case ToolFormat::FunctionaryV32:
      return {kRecipient};
    case ToolFormat::FireFunction:
      return {kFunctools};
    case ToolFormat::DeepSeekR1:
      return {kDsCallsBegin, kDsCallBegin};
    case ToolFormat::CommandR:
      return {kCohereAction};
    case ToolFormat::CommandR7B:
      return {kStartAction};
    case ToolFormat::None:
    case ToolFormat::Llama3Json:
      break;
  }
  return {};
}

// The first marker at or after `from`, or npos.
size_t first_marker(ToolFormat f, std::string_view text, size_t from) {
  size_t best = std::string_view::npos;
  for (auto m : markers(f)) best = std::min(best, text.find(m, from));
  return best;
}

// Where content starts: after functionary v3.2's "[>>>]all\n" header, else 0.
size_t content_begin(ToolFormat f, std::string_view text) {
  if (f != ToolFormat::FunctionaryV32) return 0;
  size_t i = text.substr(0, kRecipient.size()) == kRecipient ? kRecipient.size() : 0;
  return text.substr(i, kAllHeader.size()) == kAllHeader ? i + kAllHeader.size() : 0;
}

// Where the tool calls start, or npos. Llama 3: the output's first non-space character is `{`
// or it starts with <|python_tag|>.
size_t tool_start(ToolFormat f, std::string_view text) {
  if (f == ToolFormat::Llama3Json) {
    const size_t i = skip_space(text, 0);
    if (i < text.size() && (text[i] == '{' || text.substr(i, kPythonTag.size()) == kPythonTag)) {
      return i;
    }
    return std::string_view::npos;
  }
  if (f == ToolFormat::FunctionaryV32) {
    const size_t cb = content_begin(f, text);
    if (cb == 0) return text.empty() ? std::string_view::npos : 0;  // a call from the start
    return text.find(kRecipient, cb);
  }
  return first_marker(f, text, 0);
}

// The length of the longest suffix of `text` that is a proper prefix of a marker.
size_t partial_marker(ToolFormat f, std::string_view text) {
  size_t best = 0;
  for (auto m : markers(f)) {
    for (size_t n = std::min(m.size() - 1, text.size()); n > best; --n) {
      if (text.substr(text.size() - n) == m.substr(0, n)) {
        best = n;
        break;
      }
    }
  }
  return best;
}

bool incremental(ToolFormat f) {
  return f == ToolFormat::Hermes || f == ToolFormat::FunctionaryV31 || f == ToolFormat::DeepSeekR1;
}

}  // namespace

std::string_view to_string(ToolFormat f) {
  switch (f) {
    case ToolFormat::None:
      return "none";
    case ToolFormat::Hermes:
      return "hermes";
    case ToolFormat::Llama3Json:
      return "llama3_json";
    case ToolFormat::Mistral:
      return "mistral";
    case ToolFormat::FunctionaryV31:
      return "functionary_v3.1";
    case ToolFormat::FunctionaryV32:
      return "functionary_v3.2";
    case ToolFormat::FireFunction:
      return "firefunction_v2";
    case ToolFormat::DeepSeekR1:
      return "deepseek_r1";
    case ToolFormat::CommandR:
      return "command_r";
    case ToolFormat::CommandR7B:
      return "command_r7b";
  }
  return "none";
}

ToolFormat detect_tool_format(std::string_view t) {
  auto has = [&](std::string_view s) { return t.find(s) != std::string_view::npos; };
  if (has(kMistral)) return ToolFormat::Mistral;
  if (has("tool▁call▁begin")) return ToolFormat::DeepSeekR1;
  if (has(kStartAction)) return ToolFormat::CommandR7B;
  if (has("Action:") && has("tool_name")) return ToolFormat::CommandR;
  if (has(">>>") && has("recipient")) return ToolFormat::FunctionaryV32;
  if (has(kFuncOpen)) return ToolFormat::FunctionaryV31;
  if (has("functools")) return ToolFormat::FireFunction;
  if (has(kHermesOpen)) return ToolFormat::Hermes;
  if (has("tool_calls") && (has("\"parameters\": ") || has(kPythonTag))) {
    return ToolFormat::Llama3Json;
  }
  return ToolFormat::None;
}

ParsedOutput parse_tool_calls(ToolFormat f, std::string_view text) {
  ParsedOutput out;
  const size_t start = tool_start(f, text);
  const size_t cb = content_begin(f, text);
  if (start != std::string_view::npos) {
    Scan s = scan(f, text, start, /*final=*/true);
    if (s.ok && !s.calls.empty()) {
      std::string_view before = text.substr(cb, start - std::min(start, cb));
      while (!before.empty() && is_space(before.back())) before.remove_suffix(1);
      if (!trim(before).empty()) out.content = std::string(before);
      out.tool_calls = std::move(s.calls);
      return out;
    }
  }
  out.content = std::string(text.substr(cb));
  return out;
}

ChatDelta ToolCallStreamParser::push(std::string_view piece) {
  ChatDelta d;
  if (finished_) return d;
  text_ += piece;
  if (format_ == ToolFormat::None || plain_) {
    if (text_.size() > sent_content_) d.content = text_.substr(sent_content_);
    sent_content_ = text_.size();
    return d;
  }
  if (format_ == ToolFormat::FunctionaryV32 && sent_content_ == 0 && !tool_start_) {
    // The first recipient decides: "all\n" is text (skipped), a prefix of it waits, anything
    // else is a call.
    const size_t cb = content_begin(format_, text_);
    auto proper_prefix = [&](std::string_view whole) {
      return text_.size() < whole.size() && whole.substr(0, text_.size()) == text_;
    };
    const bool maybe = proper_prefix(">>>all\n") || proper_prefix(kAllHeader);
    if (cb > 0) {
      sent_content_ = cb;
    } else if (maybe) {
      return d;
    } else {
      tool_start_ = 0;
    }
  }
  if (!tool_start_) {
    size_t safe = text_.size();
    if (format_ == ToolFormat::Llama3Json) {
      const size_t i = skip_space(text_, 0);
      const std::string_view rest = std::string_view(text_).substr(std::min(i, text_.size()));
      if (i >= text_.size() || kPythonTag.substr(0, rest.size()) == rest) {
        safe = sent_content_;  // blank so far, or a partial <|python_tag|>
      } else if (rest[0] == '{' || rest.substr(0, kPythonTag.size()) == kPythonTag) {
        tool_start_ = i;
        safe = sent_content_;
      } else {
        plain_ = true;
        safe = text_.size();
      }
    } else {
      const size_t p = format_ == ToolFormat::FunctionaryV32
                           ? text_.find(kRecipient, sent_content_)
                           : first_marker(format_, text_, sent_content_);
      if (p != std::string_view::npos) {
        tool_start_ = p;
        safe = p;
      } else {
        safe = text_.size() - partial_marker(format_, text_);
      }
    }
    // Trailing whitespace waits: it is dropped if a tool call follows.
    if (!plain_) {
      while (safe > sent_content_ && is_space(text_[safe - 1])) --safe;
    }
    if (safe > sent_content_) {
      d.content = text_.substr(sent_content_, safe - sent_content_);
      sent_content_ = safe;
    }
  }
  if (tool_start_ && incremental(format_)) {
    // Only the text after the calls already sent is scanned again.
    Scan s = scan(format_, text_, sent_calls_ > 0 ? calls_end_ : *tool_start_, /*final=*/false);
    if (s.ok) {
      for (size_t i = 0; i < s.calls.size(); ++i) {
        d.tool_calls.push_back({static_cast<int64_t>(sent_calls_ + i), s.calls[i].id,
                                s.calls[i].name, s.calls[i].arguments});
        calls_end_ = s.ends[i];
      }
      sent_calls_ += s.calls.size();
    }
  }
  return d;
}

ChatDelta ToolCallStreamParser::finish() {
  ChatDelta d;
  if (finished_) return d;
  finished_ = true;
  if (tool_start_) {
    Scan s = scan(format_, text_, *tool_start_, /*final=*/true);
    if (s.ok && s.calls.size() >= sent_calls_ && !s.calls.empty()) {
      for (size_t i = sent_calls_; i < s.calls.size(); ++i) {
        d.tool_calls.push_back(
            {static_cast<int64_t>(i), s.calls[i].id, s.calls[i].name, s.calls[i].arguments});
      }
      sent_calls_ = s.calls.size();
      return d;
    }
  }
  size_t from = sent_calls_ > 0 ? std::max(sent_content_, calls_end_) : sent_content_;
  if (from == 0) from = content_begin(format_, text_);
  if (text_.size() > from) d.content = text_.substr(from);
  sent_content_ = text_.size();
  return d;
}

namespace {

ojson call_schema(const Tool& t, const char* name_key, const char* args_key) {
  ojson s = {{"type", "object"},
             {"properties",
              {{name_key, {{"type", "string"}, {"const", t.name}}},
               {args_key, t.parameters.empty() ? ojson{{"type", "object"}} : ojson(t.parameters)}}},
             {"required", {name_key, args_key}},
             {"additionalProperties", false}};
  return s;
}

ojson params_schema(const Tool& t) {
  return t.parameters.empty() ? ojson{{"type", "object"}} : ojson(t.parameters);
}

}  // namespace

ToolCallShape tool_call_shape(ToolFormat f, const std::vector<Tool>& tools,
                              const std::optional<std::string>& named) {
  if (f == ToolFormat::None) {
    throw invalid_param("tool_choice",
                        "this model's chat template has no known tool-call "
                        "format, so tool calls cannot be required");
  }
  std::vector<const Tool*> chosen;
  for (const auto& t : tools) {
    if (!named || t.name == *named) chosen.push_back(&t);
  }
  if (chosen.empty()) {
    throw invalid_param(
        named ? "tool_choice.function.name" : "tools",
        named ? "no tool named \"" + *named + "\" in `tools`" : std::string("must not be empty"));
  }
  ToolCallShape shape;
  for (const Tool* t : chosen) {
    ToolCallAlternative a;
    a.name = t->name;
    switch (f) {
      case ToolFormat::Hermes:
        a.prefix = "<tool_call>\n";
        a.schema = call_schema(*t, "name", "arguments");
        a.suffix = "\n</tool_call>";
        shape.separator = "\n";
        break;
      case ToolFormat::Llama3Json:
        a.schema = call_schema(*t, "name", "parameters");
        shape.parallel = false;
        break;
      case ToolFormat::Mistral:
        a.schema = call_schema(*t, "name", "arguments");
        shape.prefix = std::string(kMistral) + "[";
        shape.separator = ", ";
        shape.suffix = "]";
        break;
      case ToolFormat::FunctionaryV31:
        a.prefix = std::string(kFuncOpen) + t->name + ">";
        a.schema = params_schema(*t);
        a.suffix = std::string(kFuncClose);
        break;
      case ToolFormat::FunctionaryV32:  // the generation prompt already ends with ">>>"
        a.prefix = t->name + "\n";
        a.schema = params_schema(*t);
        shape.separator = std::string(kRecipient);
        break;
      case ToolFormat::FireFunction:
        a.schema = call_schema(*t, "name", "arguments");
        shape.prefix = " " + std::string(kFunctools);
        shape.separator = ", ";
        shape.suffix = "]";
        break;
      case ToolFormat::DeepSeekR1:
        a.prefix =
            std::string(kDsCallBegin) + "function" + std::string(kDsSep) + t->name + "\n```json\n";
        a.schema = params_schema(*t);
        a.suffix = "\n```" + std::string(kDsCallEnd);
        shape.prefix = std::string(kDsCallsBegin);
        shape.separator = "\n";
        shape.suffix = std::string(kDsCallsEnd);
        break;
      case ToolFormat::CommandR:
        a.schema = call_schema(*t, "tool_name", "parameters");
        shape.prefix = std::string(kCohereAction) + "\n```json\n[\n";
        shape.separator = ",\n";
        shape.suffix = "\n]```";
        break;
      case ToolFormat::CommandR7B:
        a.schema = call_schema(*t, "tool_name", "parameters");
        shape.prefix = std::string(kStartAction) + "[\n";
        shape.separator = ",\n";
        shape.suffix = "\n]" + std::string(kEndAction);
        break;
      case ToolFormat::None:
        break;
    }
    shape.calls.push_back(std::move(a));
  }
  return shape;
}

namespace {

bool args_as_object(ToolFormat f) {
  return !(f == ToolFormat::FunctionaryV31 || f == ToolFormat::FunctionaryV32 ||
           f == ToolFormat::FireFunction || f == ToolFormat::DeepSeekR1);
}

// Mistral's template requires 9 alphanumerics: keep a valid id, else its last 9 alphanumerics
// (left-padded with '0'), as vLLM truncates.
std::string mistral_id(const std::string& id) {
  if (is_mistral_id(id)) return id;
  std::string alnum;
  for (char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c))) alnum += c;
  }
  if (alnum.size() >= 9) return alnum.substr(alnum.size() - 9);
  return std::string(9 - alnum.size(), '0') + alnum;
}

}  // namespace

ojson template_messages(const std::vector<Message>& messages, ToolFormat f) {
  ojson out = ojson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    ojson msg = {{"role", m.role}};
    if (m.content) msg["content"] = *m.content;
    if (!m.name.empty()) msg["name"] = m.name;
    if (m.reasoning_content) msg["reasoning_content"] = *m.reasoning_content;
    if (!m.tool_calls.empty()) {
      ojson calls = ojson::array();
      for (size_t k = 0; k < m.tool_calls.size(); ++k) {
        const ToolCall& tc = m.tool_calls[k];
        ojson args = tc.arguments;
        if (args_as_object(f)) {
          auto parsed = parse_json(tc.arguments);
          if (!parsed || !parsed->is_object()) {
            throw invalid_param("messages[" + std::to_string(i) + "].tool_calls[" +
                                    std::to_string(k) + "].function.arguments",
                                "must be a JSON object encoded as a string");
          }
          args = std::move(*parsed);
        }
        calls.push_back({{"id", f == ToolFormat::Mistral ? mistral_id(tc.id) : tc.id},
                         {"type", tc.type},
                         {"function", {{"name", tc.name}, {"arguments", std::move(args)}}}});
      }
      msg["tool_calls"] = std::move(calls);
    }
    if (m.role == "tool") {
      msg["tool_call_id"] = f == ToolFormat::Mistral ? mistral_id(m.tool_call_id) : m.tool_call_id;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

ojson template_tools(const std::vector<Tool>& tools) {
  ojson out = ojson::array();
  for (const auto& t : tools) {
    ojson fn = {{"name", t.name}};
    fn["description"] = t.description;  // always: some templates (Hermes 2 Pro) read it
    fn["parameters"] = t.parameters.empty()
                           ? ojson{{"type", "object"}, {"properties", ojson::object()}}
                           : ojson(t.parameters);
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out;
}

json template_variables(ToolFormat f, const std::vector<Tool>& tools) {
  if (f != ToolFormat::FireFunction) return json::object();
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", &tm);
  return json{{"functions", template_tools(tools).dump(4)}, {"datetime", date}};
}

std::vector<ChatDelta> openai_stream_deltas(ChatDelta d, size_t max_fragment) {
  if (d.tool_calls.empty()) return {std::move(d)};
  max_fragment = std::max<size_t>(max_fragment, 4);  // room for any UTF-8 character
  std::vector<ChatDelta> out;
  std::vector<ToolCallDelta> calls = std::move(d.tool_calls);
  d.tool_calls.clear();
  if (d.role || d.content || d.reasoning_content) out.push_back(std::move(d));
  for (auto& c : calls) {
    ChatDelta head;
    head.tool_calls.push_back({c.index, c.id, c.name, ""});
    out.push_back(std::move(head));
    const std::string& a = c.arguments;
    for (size_t at = 0; at < a.size();) {
      size_t end = std::min(a.size(), at + max_fragment);
      while (end < a.size() && end > at + 1 && (static_cast<unsigned char>(a[end]) & 0xC0) == 0x80)
        --end;  // a continuation byte: cut before its character
      ChatDelta piece;
      piece.tool_calls.push_back({c.index, std::nullopt, std::nullopt, a.substr(at, end - at)});
      out.push_back(std::move(piece));
      at = end;
    }
  }
  return out;
}

}  // namespace ohm::serve
