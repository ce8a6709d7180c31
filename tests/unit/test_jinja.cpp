// ohm's Jinja2 engine: every case of tests/fixtures/chat_templates/jinja_cases.json (rendered by
// Python Jinja2 configured as transformers configures it, see
// scripts/make_chat_template_fixtures.py) plus error positions and engine-specific checks.
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "ohm/jinja/template.h"
#include "test_util.h"

namespace {

using ohm::jinja::Template;
using ohm::jinja::TemplateError;
using ohm::jinja::TemplateRuntimeError;
using ohm::jinja::TemplateSyntaxError;
using ohm::jinja::Value;
using ojson = nlohmann::ordered_json;

const ojson& engine_cases() {
  static const ojson cases = [] {
    const auto path = ohm::test::fixtures_dir() / "chat_templates" / "jinja_cases.json";
    return ojson::parse(ohm::test::read_file(path.string()))["cases"];
  }();
  return cases;
}

std::string render(const std::string& src, const ojson& ctx = ojson::object()) {
  return Template::parse(src, "test").render(ctx);
}

class JinjaFixture : public ::testing::TestWithParam<size_t> {};

TEST_P(JinjaFixture, MatchesPythonJinja2) {
  const ojson& c = engine_cases()[GetParam()];
  const std::string tmpl = c["template"].get<std::string>();
  SCOPED_TRACE("template: " + tmpl);
  if (c.contains("output")) {
    std::string out;
    try {
      out = render(tmpl, c["context"]);
    } catch (const std::exception& e) {
      FAIL() << "threw: " << e.what();
    }
    EXPECT_EQ(out, c["output"].get<std::string>());
  } else {
    const std::string expected = c["error"].get<std::string>();
    try {
      const std::string out = render(tmpl, c["context"]);
      FAIL() << "expected an error like '" << expected << "', rendered: " << out;
    } catch (const TemplateError& e) {
      if (c.value("raised", false)) {
        EXPECT_TRUE(e.raised());
        EXPECT_EQ("TemplateError: " + e.message(), expected);
      }
    }
  }
}

std::vector<size_t> case_indices() {
  std::vector<size_t> v(engine_cases().size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = i;
  return v;
}

INSTANTIATE_TEST_SUITE_P(Cases, JinjaFixture, ::testing::ValuesIn(case_indices()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return engine_cases()[info.param]["name"].get<std::string>();
                         });

TEST(Jinja, FixtureIsComplete) {
  EXPECT_GE(engine_cases().size(), 100u);
}

TEST(Jinja, SyntaxErrorCarriesNameLineColumn) {
  try {
    Template::parse("line one\n{% if x %}\n  {{ 1 + }}\n{% endif %}", "my.jinja");
    FAIL() << "no error";
  } catch (const TemplateSyntaxError& e) {
    EXPECT_EQ(e.template_name(), "my.jinja");
    EXPECT_EQ(e.line(), 3);
    EXPECT_NE(std::string(e.what()).find("my.jinja"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos);
  }
  try {
    Template::parse("{% for x in y %}", "t");
    FAIL() << "no error";
  } catch (const TemplateSyntaxError& e) {
    EXPECT_NE(e.message().find("endfor"), std::string::npos);
  }
}

TEST(Jinja, RuntimeErrorCarriesPosition) {
  const auto t = Template::parse("a\nb {{ x.y.z }}", "rt.jinja");
  try {
    t.render(ojson{{"x", ojson::object()}});
    FAIL() << "no error";
  } catch (const TemplateRuntimeError& e) {
    EXPECT_EQ(e.template_name(), "rt.jinja");
    EXPECT_EQ(e.line(), 2);
    EXPECT_FALSE(e.raised());
    EXPECT_NE(e.message().find("no attribute 'y'"), std::string::npos) << e.message();
  }
}

TEST(Jinja, RaiseExceptionMessage) {
  try {
    render("{{ raise_exception('Only user and assistant roles are supported!') }}");
    FAIL() << "no error";
  } catch (const TemplateRuntimeError& e) {
    EXPECT_TRUE(e.raised());
    EXPECT_EQ(e.message(), "Only user and assistant roles are supported!");
    EXPECT_EQ(e.kind(), ohm::ErrorKind::Invalid);
  }
}

TEST(Jinja, StrftimeNow) {
  char buf[64];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y", &tm);
  EXPECT_EQ(render("{{ strftime_now('%Y') }}"), buf);
}

TEST(Jinja, ContextShadowsGlobals) {
  EXPECT_EQ(render("{{ strftime_now }}", {{"strftime_now", "mine"}}), "mine");
  EXPECT_EQ(render("{% if date_string is not defined %}{% set date_string = 'd' %}{% endif %}{{ "
                   "date_string }}"),
            "d");
}

TEST(Jinja, FloatFormatting) {
  using ohm::jinja::format_float;
  EXPECT_EQ(format_float(1.0), "1.0");
  EXPECT_EQ(format_float(0.1), "0.1");
  EXPECT_EQ(format_float(-2.5), "-2.5");
  EXPECT_EQ(format_float(1e16), "1e+16");
  EXPECT_EQ(format_float(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(format_float(0.0001), "0.0001");
  EXPECT_EQ(format_float(0.00001), "1e-05");
  EXPECT_EQ(format_float(1.5e300), "1.5e+300");
  EXPECT_EQ(format_float(0.30000000000000004), "0.30000000000000004");
}

TEST(Jinja, ValuesFromJsonKeepKeyOrder) {
  const ojson j = ojson::parse(R"({"z": 1, "a": {"y": [1, 2.0, "s", null, true]}})");
  const Value v = Value::from_json(j);
  EXPECT_EQ(v.to_json(), R"({"z": 1, "a": {"y": [1, 2.0, "s", null, true]}})");
  EXPECT_EQ(v.repr(), "{'z': 1, 'a': {'y': [1, 2.0, 's', None, True]}}");
}

TEST(Jinja, TemplateIsReusable) {
  const auto t = Template::parse(
      "{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n "
      "}}");
  EXPECT_EQ(t.render(ojson{{"xs", {1, 2, 3}}}), "6");
  EXPECT_EQ(t.render(ojson{{"xs", {10}}}), "10");
}

TEST(Jinja, DeepRecursionIsAnErrorNotACrash) {
  EXPECT_THROW(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
               TemplateRuntimeError);
}

TEST(Jinja, UnsupportedTagsAreSyntaxErrors) {
  EXPECT_THROW(Template::parse("{% include 'x.jinja' %}"), TemplateSyntaxError);
  EXPECT_THROW(Template::parse("{% extends 'x.jinja' %}"), TemplateSyntaxError);
}

}  // namespace
