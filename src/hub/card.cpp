#include "ohm/hub/card.h"

#include <yaml.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "ohm/core/error.h"

namespace ohm::hub {

using json = nlohmann::json;

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 100000;

json scalar_value(const yaml_node_t* n) {
  std::string v(reinterpret_cast<const char*>(n->data.scalar.value), n->data.scalar.length);
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return v;
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  if (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL") return nullptr;
  const char* b = v.c_str();
  char* e = nullptr;
  errno = 0;
  long long i = std::strtoll(b, &e, 10);
  if (*e == '\0' && errno == 0 &&
      (std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '-' || v[0] == '+'))
    return i;
  e = nullptr;
  double d = std::strtod(b, &e);
  if (*e == '\0' &&
      (std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '-' || v[0] == '.' ||
       v[0] == '+') &&
      v.find_first_of("xXpP") == std::string::npos && v.find("nan") == std::string::npos &&
      v.find("inf") == std::string::npos)
    return d;
  return v;
}

json convert(yaml_document_t* doc, yaml_node_t* n, int depth, size_t& count) {
  if (!n) return nullptr;
  if (depth > kMaxDepth) throw FormatError("YAML nested too deeply");
  if (++count > kMaxNodes) throw FormatError("YAML has too many nodes");
  switch (n->type) {
    case YAML_SCALAR_NODE:
      return scalar_value(n);
    case YAML_SEQUENCE_NODE: {
      json a = json::array();
      for (auto* it = n->data.sequence.items.start; it < n->data.sequence.items.top; ++it)
        a.push_back(convert(doc, yaml_document_get_node(doc, *it), depth + 1, count));
      return a;
    }
    case YAML_MAPPING_NODE: {
      json o = json::object();
      for (auto* p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; ++p) {
        json k = convert(doc, yaml_document_get_node(doc, p->key), depth + 1, count);
        std::string key = k.is_string() ? k.get<std::string>() : k.dump();
        o[key] = convert(doc, yaml_document_get_node(doc, p->value), depth + 1, count);
      }
      return o;
    }
    default:
      return nullptr;
  }
}

}  // namespace

json yaml_to_json(std::string_view yaml) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) throw FormatError("YAML: out of memory");
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(yaml.data()),
                               yaml.size());
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    std::string msg = std::string("YAML: ") + (parser.problem ? parser.problem : "parse error") +
                      " at line " + std::to_string(parser.problem_mark.line + 1);
    yaml_parser_delete(&parser);
    throw FormatError(msg);
  }
  json out;
  try {
    size_t count = 0;
    out = convert(&doc, yaml_document_get_root_node(&doc), 0, count);
  } catch (...) {
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    throw;
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return out;
}

ModelCard parse_model_card(std::string_view readme) {
  ModelCard c;
  if (readme.substr(0, 3) == "\xEF\xBB\xBF") readme.remove_prefix(3);
  if (readme.substr(0, 4) != "---\n" && readme.substr(0, 5) != "---\r\n") return c;
  size_t start = readme.find('\n') + 1;
  size_t pos = start;
  while (pos < readme.size()) {
    size_t eol = readme.find('\n', pos);
    std::string_view line =
        readme.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == "---") {
      try {
        json j = yaml_to_json(readme.substr(start, pos - start));
        if (j.is_object())
          c.data = std::move(j);
        else if (!j.is_null())
          c.error = "YAML metadata must be a mapping";
      } catch (const Error& e) {
        c.error = e.what();
      }
      return c;
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  return c;  // unterminated front matter: no metadata
}

std::vector<std::string> derive_tags(const json& card, const std::vector<std::string>& paths) {
  std::vector<std::string> tags;
  std::set<std::string> seen;
  auto add = [&](const std::string& t) {
    if (!t.empty() && seen.insert(t).second) tags.push_back(t);
  };
  auto each = [&](const char* key, const std::string& prefix) {
    if (!card.is_object() || !card.contains(key)) return;
    const json& v = card[key];
    if (v.is_string())
      add(prefix + v.get<std::string>());
    else if (v.is_array())
      for (const auto& x : v)
        if (x.is_string()) add(prefix + x.get<std::string>());
  };
  each("library_name", "");
  for (const auto& p : paths) {
    if (p.size() > 12 && p.ends_with(".safetensors")) add("safetensors");
    if (p.ends_with(".gguf")) add("gguf");
  }
  each("tags", "");
  each("pipeline_tag", "");
  each("language", "");
  each("datasets", "dataset:");
  each("base_model", "base_model:");
  each("license", "license:");
  return tags;
}

}  // namespace ohm::hub
