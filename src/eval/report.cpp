#include "ohm/eval/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "ohm/core/error.h"

namespace ohm::eval {
namespace {

using json = nlohmann::ordered_json;

struct Row {
  std::string task, metric, filter;
  bool higher_is_better = true;
  std::vector<std::optional<double>> value, stderr_;
};

// Rows: tasks in order of first appearance, then their numeric "METRIC,FILTER" keys.
std::vector<Row> collect(const std::vector<ReportColumn>& cols) {
  std::vector<Row> rows;
  std::map<std::string, size_t> index;
  for (size_t c = 0; c < cols.size(); ++c) {
    const json& r = cols[c].results;
    for (const auto& [task, vals] : r["results"].items()) {
      if (!vals.is_object()) continue;
      for (const auto& [k, v] : vals.items()) {
        const auto comma = k.find(',');
        if (comma == std::string::npos || !v.is_number() || k.find("_stderr,") != std::string::npos)
          continue;
        const std::string key = task + "\n" + k;
        if (!index.count(key)) {
          index[key] = rows.size();
          Row row;
          row.task = task;
          row.metric = k.substr(0, comma);
          row.filter = k.substr(comma + 1);
          if (r.contains("higher_is_better") && r["higher_is_better"].contains(task) &&
              r["higher_is_better"][task].is_object())
            row.higher_is_better = r["higher_is_better"][task].value(row.metric, true);
          row.value.resize(cols.size());
          row.stderr_.resize(cols.size());
          rows.push_back(std::move(row));
        }
        Row& row = rows[index[key]];
        row.value[c] = v.get<double>();
        const std::string se = row.metric + "_stderr," + row.filter;
        if (vals.contains(se) && vals[se].is_number()) row.stderr_[c] = vals[se].get<double>();
      }
    }
  }
  // Group rows of one task together (a task first seen in a later file goes after).
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    auto first = [&](const std::string& t) {
      for (size_t i = 0; i < rows.size(); ++i)
        if (rows[i].task == t) return i;
      return rows.size();
    };
    return first(a.task) < first(b.task);
  });
  return rows;
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, std::abs(v) >= 1e6 ? "%.4g" : "%.4f", v);
  return buf;
}

std::string row_label(const Row& r) {
  return r.task + " " + r.metric + (r.filter == "none" ? "" : " (" + r.filter + ")") +
         (r.higher_is_better ? " ↑" : " ↓");
}

// Markdown cell text: HTML-escaped, '|' escaped.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : html_escape(s)) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                         "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

}  // namespace

ReportColumn load_report_column(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw NotFoundError(ErrorContext().file(path), "results file not found");
  std::stringstream ss;
  ss << f.rdbuf();
  ReportColumn c;
  try {
    c.results = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw FormatError(ErrorContext().file(path), std::string("not JSON: ") + e.what());
  }
  if (!c.results.is_object() || !c.results.contains("results") || !c.results["results"].is_object())
    throw FormatError(ErrorContext().file(path).key("results"),
                      "not an lm-eval results file (no \"results\" object)");
  const json cfg = c.results.value("config", json::object());
  if (cfg.is_object() && cfg.contains("model_args") && cfg["model_args"].is_string() &&
      !cfg["model_args"].get<std::string>().empty())
    c.label = cfg["model_args"].get<std::string>();
  else if (cfg.is_object() && cfg.contains("model") && cfg["model"].is_string())
    c.label = cfg["model"].get<std::string>();
  else
    c.label = std::filesystem::path(path).filename().string();
  return c;
}

std::string report_markdown(const std::vector<ReportColumn>& cols, const std::string& svg_name) {
  const auto rows = collect(cols);
  std::ostringstream o;
  o << "# Evaluation report\n\n| task | metric |";
  for (const auto& c : cols) o << " " << md_cell(c.label) << " |";
  o << "\n| --- | --- |";
  for (size_t i = 0; i < cols.size(); ++i) o << " ---: |";
  o << "\n";
  for (const auto& r : rows) {
    o << "| " << md_cell(r.task) << " | "
      << md_cell(r.metric + (r.filter == "none" ? "" : " (" + r.filter + ")") +
                 (r.higher_is_better ? " ↑" : " ↓"))
      << " |";
    for (size_t c = 0; c < cols.size(); ++c) {
      if (!r.value[c]) {
        o << " – |";
        continue;
      }
      o << " " << fmt(*r.value[c]);
      if (r.stderr_[c]) o << " ± " << fmt(*r.stderr_[c]);
      o << " |";
    }
    o << "\n";
  }
  if (!svg_name.empty()) o << "\n![bar charts](" << md_cell(svg_name) << ")\n";
  return o.str();
}

std::string report_svg(const std::vector<ReportColumn>& cols) {
  const auto rows = collect(cols);
  // A legend maps each column's number and colour to its label; each panel is a task and
  // metric, a bar per column. Scores in [0, 1] are drawn on a 0-1 scale, anything else
  // (perplexities) against the panel's largest value.
  constexpr int kWidth = 760, kBarX = 60, kBarMax = 580, kBarH = 16, kGap = 4, kPanelPad = 28;
  const int n = static_cast<int>(cols.size());
  const int legend_h = 22 * n + 10;
  const int panel_h = kPanelPad + n * (kBarH + kGap) + 8;
  const int height = legend_h + static_cast<int>(rows.size()) * panel_h + 10;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << kWidth << " " << height
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int c = 0; c < n; ++c) {
    const int y = 10 + c * 22;
    o << "<rect x=\"10\" y=\"" << y << "\" width=\"14\" height=\"14\" fill=\"" << kColors[c % 8]
      << "\"/><text x=\"30\" y=\"" << y + 12 << "\">" << c + 1 << ": "
      << html_escape(cols[static_cast<size_t>(c)].label) << "</text>\n";
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const int y0 = legend_h + static_cast<int>(i) * panel_h;
    o << "<g class=\"panel\"><text x=\"10\" y=\"" << y0 + 18 << "\" font-weight=\"bold\">"
      << html_escape(row_label(r)) << "</text>\n";
    double vmax = 0;
    bool unit = true;
    for (const auto& v : r.value)
      if (v && std::isfinite(*v)) {
        vmax = std::max(vmax, std::abs(*v));
        unit = unit && *v >= 0 && *v <= 1;
      }
    if (unit) vmax = 1;
    for (int c = 0; c < n; ++c) {
      const auto& val = r.value[static_cast<size_t>(c)];
      const int y = y0 + kPanelPad + c * (kBarH + kGap);
      const double v = val ? *val : 0.0;
      const int w = val && vmax > 0 && std::isfinite(v)
                        ? static_cast<int>(std::lround(std::abs(v) / vmax * kBarMax))
                        : 0;
      const std::string shown = val ? fmt(v) : "–";
      o << "<text x=\"" << kBarX - 6 << "\" y=\"" << y + 12
        << "\" text-anchor=\"end\" fill=\"#555\">" << c + 1 << "</text><rect x=\"" << kBarX
        << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << kBarH << "\" fill=\""
        << kColors[c % 8] << "\"><title>" << html_escape(cols[static_cast<size_t>(c)].label) << ": "
        << shown << "</title></rect><text x=\"" << kBarX + w + 4 << "\" y=\"" << y + 12 << "\">"
        << shown << "</text>\n";
    }
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string report_html(const std::vector<ReportColumn>& cols) {
  const auto rows = collect(cols);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Evaluation "
       "report</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
       "collapse}td,th{border:1px solid #ccc;padding:4px 8px}td.v{text-align:right}</style>"
       "</head><body>\n<h1>Evaluation report</h1>\n<table>\n<tr><th>task</th><th>metric</th>";
  for (const auto& c : cols) o << "<th>" << html_escape(c.label) << "</th>";
  o << "</tr>\n";
  for (const auto& r : rows) {
    o << "<tr><td>" << html_escape(r.task) << "</td><td>"
      << html_escape(r.metric + (r.filter == "none" ? "" : " (" + r.filter + ")") +
                     (r.higher_is_better ? " ↑" : " ↓"))
      << "</td>";
    for (size_t c = 0; c < cols.size(); ++c) {
      o << "<td class=\"v\">";
      if (r.value[c]) {
        o << fmt(*r.value[c]);
        if (r.stderr_[c]) o << " ± " << fmt(*r.stderr_[c]);
      } else {
        o << "–";
      }
      o << "</td>";
    }
    o << "</tr>\n";
  }
  o << "</table>\n<h2>Charts</h2>\n" << report_svg(cols) << "</body></html>\n";
  return o.str();
}

}  // namespace ohm::eval
