// Chat prompts: the chat template, and continue_final_message (include/ohm/serve/chat_prompt.h).
#include "ohm/serve/chat_prompt.h"

#include <string_view>

#include "ohm/jinja/template.h"

namespace ohm::serve {

namespace {

constexpr std::string_view kTag = "CONTINUE_FINAL_MESSAGE_TAG ";

std::string_view strip(std::string_view s) {
  constexpr std::string_view ws = " \t\n\r\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::string render_chat_prompt(const chat::ChatTemplate& tmpl, json messages,
                               const chat::ChatOptions& opt, bool continue_final_message) {
  std::string final_content;
  std::string param;
  if (continue_final_message) {
    if (!messages.is_array() || messages.empty())
      throw invalid_param("messages", "continue_final_message needs a final message");
    param = "messages[" + std::to_string(messages.size() - 1) + "].content";
    json& last = messages.back();
    if (!last.contains("content") || !last["content"].is_string())
      throw invalid_param(param, "continue_final_message needs a final message with content");
    final_content = last["content"].get<std::string>();
    last["content"] = final_content + std::string(kTag);
  }
  std::string out;
  try {
    out = tmpl.apply(messages, opt);
  } catch (const jinja::TemplateError& e) {
    throw ApiError(400, "chat template: " + (e.raised() ? e.message() : std::string(e.what())),
                   "messages");
  }
  if (!continue_final_message) return out;
  const std::string_view tag = strip(kTag);
  const auto at = out.rfind(tag);
  if (at == std::string::npos || out.find(strip(final_content)) == std::string::npos)
    throw invalid_param(param,
                        "continue_final_message: the chat template does not render the final "
                        "message's content verbatim, so it cannot be continued");
  if (std::string_view(out).substr(at, kTag.size()) == kTag) {
    out.resize(at);
  } else {
    out.resize(at);
    out.resize(out.find_last_not_of(" \t\n\r\f\v") + 1);  // npos + 1 == 0: all blank
  }
  return out;
}

}  // namespace ohm::serve
