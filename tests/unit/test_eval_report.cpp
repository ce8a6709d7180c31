// `ohm eval report`: results JSON files compared in a Markdown / HTML table and SVG bar charts
// (ohm/eval/report.h), every text from the files escaped.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/eval/report.h"
#include "test_util.h"

namespace {

using json = nlohmann::ordered_json;

json results(const std::string& model_args, double acc, double ppl, bool with_mc2) {
  json r = json::object();
  r["results"]["arc_easy"] = {{"alias", "arc_easy"},
                              {"acc,none", acc},
                              {"acc_stderr,none", 0.1},
                              {"acc_norm,none", acc / 2},
                              {"acc_norm_stderr,none", "N/A"}};
  r["results"]["lambada_openai"] = {{"perplexity,none", ppl}, {"acc,none", 0.25}};
  if (with_mc2) r["results"]["truthfulqa_mc2"] = {{"acc,none", 0.5}};
  r["results"]["gsm8k"] = {{"exact_match,strict-match", 0.125}};
  r["higher_is_better"]["lambada_openai"] = {{"perplexity", false}, {"acc", true}};
  r["config"] = {{"model", "ohm"}, {"model_args", model_args}};
  return r;
}

int count(const std::string& s, const std::string& sub) {
  int n = 0;
  for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + 1)) ++n;
  return n;
}

std::vector<ohm::eval::ReportColumn> two_columns() {
  return {{"pretrained=m,dtype=f16", results("pretrained=m,dtype=f16", 0.5, 100, true)},
          {"<script>alert('x')</script> & q4", results("x", 0.25, 50, false)}};
}

TEST(EvalReport, MarkdownTableRowsColumnsAndEscaping) {
  const auto md = ohm::eval::report_markdown(two_columns(), "r.svg");
  EXPECT_NE(md.find("| task | metric | pretrained=m,dtype=f16 | &lt;script&gt;alert(&#39;x&#39;)"
                    "&lt;/script&gt; &amp; q4 |"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("<script>"), std::string::npos) << md;
  EXPECT_NE(md.find("| arc_easy | acc ↑ | 0.5000 ± 0.1000 | 0.2500 ± 0.1000 |"), std::string::npos)
      << md;
  // A non-numeric stderr is left out; a metric a file lacks is a dash.
  EXPECT_NE(md.find("| arc_easy | acc_norm ↑ | 0.2500 | 0.1250 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| lambada_openai | perplexity ↓ | 100.0000 | 50.0000 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| truthfulqa_mc2 | acc ↑ | 0.5000 | – |"), std::string::npos) << md;
  EXPECT_NE(md.find("| gsm8k | exact_match (strict-match) ↑ | 0.1250 | 0.1250 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("![bar charts](r.svg)"), std::string::npos);
  // Rows: 2 arc_easy + 2 lambada + mc2 + gsm8k, after the header and the rule.
  EXPECT_EQ(count(md, "\n| "), 8) << md;
}

TEST(EvalReport, SvgBarsScaledPerPanel) {
  const auto svg = ohm::eval::report_svg(two_columns());
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_NE(svg.find("2: &lt;script&gt;"), std::string::npos);
  EXPECT_EQ(count(svg, "<g class=\"panel\">"), 6);
  EXPECT_EQ(count(svg, "<title>"), 12);  // a bar per panel and column
  // Scores in [0, 1] on a 0-1 scale (580 px = 1): acc 0.5 and 0.25.
  EXPECT_NE(svg.find("width=\"290\" height=\"16\" fill=\"#4e79a7\"><title>pretrained=m,dtype=f16: "
                     "0.5000"),
            std::string::npos)
      << svg;
  EXPECT_NE(svg.find("width=\"145\" height=\"16\" fill=\"#f28e2b\""), std::string::npos);
  // Perplexity against the panel's largest: 100 -> 580 px, 50 -> 290 px.
  EXPECT_NE(svg.find("width=\"580\" height=\"16\" fill=\"#4e79a7\"><title>pretrained=m,dtype=f16: "
                     "100.0000"),
            std::string::npos);
  // A missing value: an empty bar and a dash.
  EXPECT_NE(svg.find("width=\"0\" height=\"16\" fill=\"#f28e2b\"><title>&lt;script&gt;"),
            std::string::npos);
  EXPECT_EQ(count(svg, "<svg"), 1);
  EXPECT_EQ(count(svg, "</svg>"), 1);
}

TEST(EvalReport, HtmlHasTheTableAndTheChartsInline) {
  const auto html = ohm::eval::report_html(two_columns());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("<th>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; q4</th>"),
            std::string::npos);
  EXPECT_NE(html.find("<svg xmlns="), std::string::npos);
  EXPECT_EQ(count(html, "<tr>"), 7);
}

int run_cli(std::vector<std::string> args, std::string* err = nullptr) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int rc = ohm::cli::run(static_cast<int>(argv.size()), argv.data());
  testing::internal::GetCapturedStdout();
  const std::string e = testing::internal::GetCapturedStderr();
  if (err) *err = e;
  return rc;
}

TEST(EvalReport, CliWritesMarkdownWithSvgBesideOrHtml) {
  ohm::test::TempDir tmp;
  ohm::test::write_file(tmp.file("a.json"), results("pretrained=m,dtype=f16", 0.5, 9, true).dump());
  ohm::test::write_file(tmp.file("b.json"),
                        results("pretrained=m,dtype=q8_0", 0.5, 10, true).dump());
  // The same model_args twice: told apart by file name.
  ohm::test::write_file(tmp.file("c.json"),
                        results("pretrained=m,dtype=q8_0", 0.4, 11, true).dump());
  ASSERT_EQ(run_cli({"ohm", "eval", "report", tmp.file("a.json"), tmp.file("b.json"),
                     tmp.file("c.json"), "--out", tmp.file("r.md")}),
            0);
  const auto md = ohm::test::read_file(tmp.file("r.md"));
  EXPECT_NE(md.find("| pretrained=m,dtype=f16 | pretrained=m,dtype=q8_0 (b.json) | "
                    "pretrained=m,dtype=q8_0 (c.json) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("![bar charts](r.svg)"), std::string::npos);
  EXPECT_NE(ohm::test::read_file(tmp.file("r.svg")).find("<svg"), std::string::npos);
  ASSERT_EQ(run_cli({"ohm", "eval", "report", tmp.file("a.json"), "--out", tmp.file("r.html")}), 0);
  EXPECT_NE(ohm::test::read_file(tmp.file("r.html")).find("<svg"), std::string::npos);
}

TEST(EvalReport, BadInputNamesTheFile) {
  ohm::test::TempDir tmp;
  ohm::test::write_file(tmp.file("bad.json"), "{\"results\": [1,");
  ohm::test::write_file(tmp.file("other.json"), "{\"model\": 1}");
  auto error_of = [](const std::string& path) {
    try {
      ohm::eval::load_report_column(path);
    } catch (const ohm::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const auto e1 = error_of(tmp.file("bad.json"));
  EXPECT_NE(e1.find("bad.json"), std::string::npos) << e1;
  EXPECT_NE(e1.find("not JSON"), std::string::npos) << e1;
  const auto e2 = error_of(tmp.file("other.json"));
  EXPECT_NE(e2.find("other.json"), std::string::npos) << e2;
  EXPECT_NE(e2.find("no \"results\" object"), std::string::npos) << e2;
  std::string err;
  EXPECT_NE(
      run_cli({"ohm", "eval", "report", tmp.file("other.json"), "--out", tmp.file("r.txt")}, &err),
      0);
  EXPECT_NE(err.find("--out must end in .md or .html"), std::string::npos) << err;
}

}  // namespace
