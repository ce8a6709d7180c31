// `ohm eval report`: lm-eval results JSON files (ohm's or lm-eval's) side by side: a table with
// a row per task and metric and a column per results file (its config.model_args, e.g. one
// model in f16, q8_0 and q4_k_m), and bar charts as SVG written here. Every text taken from
// the files is HTML/XML-escaped.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include "ohm/core/html.h"

namespace ohm::eval {

struct ReportColumn {
  std::string label;  // config.model_args, else config.model, else the file name
  nlohmann::ordered_json results = nlohmann::ordered_json::object();
};

// Reads a results file (FormatError naming it when it is not JSON or has no "results").
ReportColumn load_report_column(const std::string& path);

// The comparison table as Markdown (with a link to `svg_name` when not empty).
std::string report_markdown(const std::vector<ReportColumn>& cols, const std::string& svg_name);
// A standalone HTML page: the table and the charts inline.
std::string report_html(const std::vector<ReportColumn>& cols);
// The bar charts: a panel per task and metric, a bar per column, scaled per panel.
std::string report_svg(const std::vector<ReportColumn>& cols);

// &, <, >, " and ' as entities (ohm/core/html.h).
using ::ohm::html_escape;

}  // namespace ohm::eval
