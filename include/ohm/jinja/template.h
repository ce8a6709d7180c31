// ohm's Jinja2 engine: lexer -> parser -> AST -> tree-walking interpreter over jinja::Value.
//
// It is configured the way transformers configures Jinja2 for chat templates
// (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
// extension and `{% generation %}` blocks; globals raise_exception, strftime_now, namespace,
// dict, range; tojson as json.dumps(ensure_ascii=False)), so output is byte-identical to
// Python Jinja2 as transformers runs it.
//
//   auto t = ohm::jinja::Template::parse("{{ messages[0]['content'] | trim }}", "chat");
//   std::string out = t.render(context_dict);
//
// Errors: TemplateSyntaxError from parse(), TemplateRuntimeError from render(), both carrying
// the template name, line and column; a template's raise_exception("msg") becomes
// TemplateRuntimeError with raised() == true and message() == "msg".
#pragma once

#include <memory>
#include <string>

#include "ohm/core/error.h"
#include "ohm/jinja/value.h"

namespace ohm::jinja {

class TemplateError : public Error {
 public:
  TemplateError(ErrorKind kind, const std::string& name, int line, int column,
                const std::string& message, bool raised = false);
  const std::string& template_name() const { return name_; }
  int line() const { return line_; }
  int column() const { return column_; }
  // The bare message (for raise_exception: exactly the template's text).
  const std::string& message() const { return message_; }
  // True when the template itself called raise_exception().
  bool raised() const { return raised_; }

 private:
  std::string name_;
  int line_, column_;
  std::string message_;
  bool raised_;
};

class TemplateSyntaxError : public TemplateError {
 public:
  TemplateSyntaxError(const std::string& name, int line, int column, const std::string& message)
      : TemplateError(ErrorKind::Format, name, line, column, message) {}
};

class TemplateRuntimeError : public TemplateError {
 public:
  TemplateRuntimeError(const std::string& name, int line, int column, const std::string& message,
                       bool raised = false)
      : TemplateError(ErrorKind::Invalid, name, line, column, message, raised) {}
};

struct Program;  // the parsed AST (internal)

class Template {
 public:
  // Parses `source` (newlines normalised, one trailing newline dropped, as Jinja2 does).
  static Template parse(const std::string& source, const std::string& name = "<template>");

  // Renders with `context` (a Dict value: the template's variables). Globals (range, dict,
  // namespace, raise_exception, strftime_now) are always available and shadowed by context.
  std::string render(const Value& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& name() const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace ohm::jinja
