// Horizontal bar charts for reports (`ohm quantize --report`): panels stacked vertically, one bar
// per label growing from the panel's zero axis, each panel scaled to its own range, the value
// printed at the end of each bar. One layout, drawn as SVG (text, always available) or PNG (cairo,
// when the build found it: Debian libcairo2-dev). Labels and titles are XML-escaped in the SVG.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ohm::eval {

struct BarPanel {
  std::string title;                                 // e.g. "perplexity (lower is better)"
  std::vector<std::pair<std::string, double>> bars;  // label, value (negative: bar to the left)
  int decimals = 2;                                  // digits after the point in the labels
  int highlight = -1;                                // index of a bar drawn in the accent colour
};

std::string bar_chart_svg(const std::string& title, const std::vector<BarPanel>& panels);

// Whether write_bar_chart_png works in this build.
bool have_png_charts();
// Writes the chart as a PNG file (written to a temporary file and renamed). UnsupportedError
// when built without cairo; IoError naming the path when it cannot be written.
void write_bar_chart_png(const std::string& path, const std::string& title,
                         const std::vector<BarPanel>& panels);

}  // namespace ohm::eval
