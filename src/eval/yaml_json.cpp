#include "yaml_json.h"

#include <yaml.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <regex>

#include "ohm/core/error.h"

namespace ohm::eval {
namespace {

using json = nlohmann::ordered_json;

json plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  static const std::regex int_re("[-+]?[0-9]+");
  static const std::regex float_re(
      "[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?|[-+]?\\.(inf|Inf|INF)");
  if (std::regex_match(s, int_re)) {
    errno = 0;
    const long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == 0) return v;
  }
  if (std::regex_match(s, float_re)) {
    if (s.find("inf") != std::string::npos || s.find("Inf") != std::string::npos ||
        s.find("INF") != std::string::npos)
      return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
    return std::strtod(s.c_str(), nullptr);
  }
  return s;
}

json convert(yaml_document_t* doc, yaml_node_t* n, int depth, const std::string& name) {
  if (depth > 64) throw FormatError(ErrorContext().file(name), "YAML nested too deeply");
  json out;
  switch (n->type) {
    case YAML_SCALAR_NODE: {
      const std::string s(reinterpret_cast<const char*>(n->data.scalar.value),
                          n->data.scalar.length);
      out = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(s) : json(s);
      break;
    }
    case YAML_SEQUENCE_NODE:
      out = json::array();
      for (auto* it = n->data.sequence.items.start; it < n->data.sequence.items.top; ++it)
        out.push_back(convert(doc, yaml_document_get_node(doc, *it), depth + 1, name));
      break;
    case YAML_MAPPING_NODE:
      out = json::object();
      for (auto* p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; ++p) {
        const json k = convert(doc, yaml_document_get_node(doc, p->key), depth + 1, name);
        const std::string key = k.is_string() ? k.get<std::string>() : k.dump();
        out[key] = convert(doc, yaml_document_get_node(doc, p->value), depth + 1, name);
      }
      break;
    default:
      return nullptr;
  }
  const std::string tag = n->tag ? reinterpret_cast<const char*>(n->tag) : "";
  if (!tag.empty() && tag.rfind("tag:yaml.org,2002:", 0) != 0)
    return json{{"!tag", tag}, {"value", out}};
  return out;
}

}  // namespace

nlohmann::ordered_json parse_yaml(const std::string& text, const std::string& name) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    throw FormatError(ErrorContext().file(name), "cannot initialise the YAML parser");
  std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> pguard(&parser, yaml_parser_delete);
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    std::string msg = parser.problem ? parser.problem : "malformed YAML";
    if (parser.context) msg = std::string(parser.context) + ": " + msg;
    throw FormatError(ErrorContext().file(name),
                      "malformed YAML at line " + std::to_string(parser.problem_mark.line + 1) +
                          ", column " + std::to_string(parser.problem_mark.column + 1) + ": " +
                          msg);
  }
  std::unique_ptr<yaml_document_t, void (*)(yaml_document_t*)> dguard(&doc, yaml_document_delete);
  yaml_node_t* root = yaml_document_get_root_node(&doc);
  if (!root) return json::object();
  return convert(&doc, root, 0, name);
}

}  // namespace ohm::eval
