// The web UI's embedded stylesheet and script. Private to src/hub/webui.
#pragma once

namespace ohm::hub::webui_detail {

extern const char* const kCss;
extern const char* const kJs;

}  // namespace ohm::hub::webui_detail
