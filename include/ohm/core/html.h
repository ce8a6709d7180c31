// HTML escaping, shared by the Hub's web UI and `ohm eval report`.
#pragma once

#include <string>
#include <string_view>

namespace ohm {

// &, <, >, " and ' as entities (&amp; &lt; &gt; &quot; &#39;): safe in element text and in
// quoted attribute values.
std::string html_escape(std::string_view s);

}  // namespace ohm
