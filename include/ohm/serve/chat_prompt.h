// The prompt of a chat request: the messages through the model's chat template, optionally with
// the final message left open (`continue_final_message`, vLLM's extension and transformers'
// apply_chat_template flag). docs/serving.md, "Protocol".
#pragma once

#include <string>

#include "ohm/chat/chat_template.h"
#include "ohm/serve/openai.h"

namespace ohm::serve {

// Renders `messages` (as template_messages() gives them) with `tmpl` and `opt`. A template error
// is an ApiError 400 on "messages" ("chat template: <its message>").
//
// continue_final_message: the final message is left open, as transformers does it: a marker
// ("CONTINUE_FINAL_MESSAGE_TAG ") is appended to its content, the conversation is rendered, and
// the text is cut at the last marker (and right-trimmed when the template dropped the marker's
// trailing space, i.e. it trims contents). When the rendered text lacks the content (stripped of
// surrounding whitespace) or the marker, the template changes the final message (a reasoning
// template dropping <think>...</think>): ApiError 400 on "messages[N].content". A final message
// without content is a 400 on the same field.
std::string render_chat_prompt(const chat::ChatTemplate& tmpl, json messages,
                               const chat::ChatOptions& opt, bool continue_final_message = false);

}  // namespace ohm::serve
