#include "ohm/hub/card.h"

#include <yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
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

// ------------------------------------------------------------------ model-index (eval results)

namespace {

const json* member(const json& o, const char* k) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(k);
  return it == o.end() ? nullptr : &*it;
}
std::string str_member(const json& o, const char* k) {
  const json* v = member(o, k);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}
json value_or_null(const json& o, const char* k) {
  const json* v = member(o, k);
  return v ? *v : json();
}

// A JSON string as a YAML double-quoted scalar: JSON's escapes are YAML's, plus escapes for the
// characters YAML readers refuse in a stream (DEL, C1 controls, U+FFFE/U+FFFF).
std::string yaml_string(const std::string& s) {
  const std::string d = json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(d.size());
  char buf[8];
  for (size_t i = 0; i < d.size(); ++i) {
    const auto c = static_cast<unsigned char>(d[i]);
    if (c == 0x7F) {
      out += "\\x7F";
    } else if (c == 0xC2 && i + 1 < d.size() && static_cast<unsigned char>(d[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(d[i + 1]) <= 0x9F) {
      std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned char>(d[i + 1]));
      out += buf;
      ++i;
    } else if (c == 0xEF && i + 2 < d.size() && static_cast<unsigned char>(d[i + 1]) == 0xBF &&
               (static_cast<unsigned char>(d[i + 2]) == 0xBE ||
                static_cast<unsigned char>(d[i + 2]) == 0xBF)) {
      out += static_cast<unsigned char>(d[i + 2]) == 0xBE ? "\\uFFFE" : "\\uFFFF";
      i += 2;
    } else {
      out += d[i];
    }
  }
  return out;
}

std::string yaml_scalar(const json& v) {
  if (v.is_string()) return yaml_string(v.get<std::string>());
  if (v.is_number_float()) {
    std::string d = v.dump();  // shortest round trip; NaN/inf are null
    if (d == "null") return d;
    // YAML 1.1 (PyYAML) reads a float only with a '.' and a signed exponent.
    size_t e = d.find_first_of("eE");
    if (d.find('.') == std::string::npos)
      d.insert(e == std::string::npos ? d.size() : e, ".0"), e = d.find_first_of("eE");
    if (e != std::string::npos && e + 1 < d.size() && d[e + 1] != '-' && d[e + 1] != '+')
      d.insert(e + 1, "+");
    return d;
  }
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return v.dump();  // integers, true/false, null
}

std::string yaml_key(const std::string& k) {
  static const std::set<std::string> words = {"y",   "n",    "yes",   "no",   "on",
                                              "off", "true", "false", "null", "~"};
  bool plain = !k.empty() && (std::isalpha(static_cast<unsigned char>(k[0])) || k[0] == '_');
  for (char c : k)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') plain = false;
  std::string low = k;
  for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return plain && !words.count(low) ? k : yaml_string(k);
}

bool is_block(const json& v) {
  return (v.is_object() || v.is_array()) && !v.empty();
}

void emit_yaml(std::string& out, const json& v, int indent) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (const auto& [k, val] : v.items()) {
      out += pad + yaml_key(k) + ":";
      if (is_block(val)) {
        out += "\n";
        emit_yaml(out, val, val.is_array() ? indent : indent + 2);  // HF cards' `key:\n- item`
      } else {
        out += " " + yaml_scalar(val) + "\n";
      }
    }
  } else if (v.is_array()) {
    for (const auto& item : v) {
      if (item.is_object() && !item.empty()) {
        std::string sub;
        emit_yaml(sub, item, indent + 2);
        out += pad + "- " + sub.substr(static_cast<size_t>(indent) + 2);
      } else if (is_block(item)) {
        out += pad + "-\n";
        emit_yaml(out, item, indent + 2);
      } else {
        out += pad + "- " + yaml_scalar(item) + "\n";
      }
    }
  } else {
    out += pad + yaml_scalar(v) + "\n";
  }
}

bool same_dataset(const json& a, const json& b) {
  for (const char* k : {"type", "config", "split", "args"})
    if (value_or_null(a, k) != value_or_null(b, k)) return false;
  return true;
}

void merge_results(json& results, const json& incoming) {
  for (const json& nr : incoming) {
    json* hit = nullptr;
    for (json& r : results)
      if (r.is_object() &&
          str_member(value_or_null(r, "task"), "type") ==
              str_member(value_or_null(nr, "task"), "type") &&
          same_dataset(value_or_null(r, "dataset"), value_or_null(nr, "dataset"))) {
        hit = &r;
        break;
      }
    if (!hit) {
      results.push_back(nr);
      continue;
    }
    json& metrics = (*hit)["metrics"];
    if (!metrics.is_array()) metrics = json::array();
    for (const json& nm : value_or_null(nr, "metrics")) {
      bool replaced = false;
      for (json& m : metrics)
        if (m.is_object() && value_or_null(m, "type") == value_or_null(nm, "type") &&
            value_or_null(m, "config") == value_or_null(nm, "config")) {
          m = nm;
          replaced = true;
          break;
        }
      if (!replaced) metrics.push_back(nm);
    }
  }
}

// Whether a front-matter line starts a top-level `model-index:` key.
bool is_model_index_key(std::string_view line) {
  for (std::string_view k : {"model-index", "\"model-index\"", "'model-index'"})
    if (line.starts_with(k)) {
      std::string_view rest = line.substr(k.size());
      while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
      if (!rest.empty() && rest[0] == ':') return true;
    }
  return false;
}

}  // namespace

json eval_results_from_card(const json& card) {
  json rows = json::array();
  const json* mi = member(card, "model-index");
  if (!mi || !mi->is_array()) return rows;
  for (const json& entry : *mi) {
    const json* results = member(entry, "results");
    if (!results || !results->is_array()) continue;
    const std::string model = str_member(entry, "name");
    for (const json& res : *results) {
      const json task = value_or_null(res, "task");
      const json ds = value_or_null(res, "dataset");
      const json* metrics = member(res, "metrics");
      if (str_member(task, "type").empty() || str_member(ds, "type").empty() || !metrics ||
          !metrics->is_array())
        continue;
      json t = {{"type", str_member(task, "type")}, {"name", str_member(task, "name")}};
      if (t["name"] == "") t["name"] = t["type"];
      json d = {{"type", str_member(ds, "type")}, {"name", str_member(ds, "name")}};
      if (d["name"] == "") d["name"] = d["type"];
      for (const char* k : {"config", "split", "revision"})
        if (!str_member(ds, k).empty()) d[k] = str_member(ds, k);
      if (const json* a = member(ds, "args"); a && (a->is_object() || a->is_string()))
        d["args"] = *a;
      for (const json& m : *metrics) {
        const json* value = member(m, "value");
        if (str_member(m, "type").empty() || !value || !value->is_number()) continue;
        json mt = {{"type", str_member(m, "type")}, {"name", str_member(m, "name")}};
        if (mt["name"] == "") mt["name"] = mt["type"];
        if (!str_member(m, "config").empty()) mt["config"] = str_member(m, "config");
        json row = {{"model", model}, {"task", t},       {"dataset", d},
                    {"metric", mt},   {"value", *value}, {"verified", false}};
        if (const json* v = member(m, "verified"); v && v->is_boolean()) row["verified"] = *v;
        if (const json* se = member(m, "stderr"); se && se->is_number()) row["stderr"] = *se;
        rows.push_back(std::move(row));
        if (rows.size() >= kMaxEvalResults) return rows;
      }
    }
  }
  return rows;
}

std::string json_to_yaml(const json& v, int indent) {
  std::string out;
  emit_yaml(out, v, indent);
  return out;
}

std::string merge_model_index(std::string_view readme, const std::string& model_name,
                              const json& results) {
  std::string bom;
  if (readme.substr(0, 3) == "\xEF\xBB\xBF") {
    bom = "\xEF\xBB\xBF";
    readme.remove_prefix(3);
  }
  // The front matter's lines [yaml_begin, yaml_end) and what follows its closing `---`.
  bool has_front = false;
  size_t yaml_begin = 0, yaml_end = 0, body_begin = 0;
  if (readme.substr(0, 4) == "---\n" || readme.substr(0, 5) == "---\r\n") {
    yaml_begin = readme.find('\n') + 1;
    for (size_t pos = yaml_begin; pos < readme.size();) {
      size_t eol = readme.find('\n', pos);
      std::string_view line = readme.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line == "---") {
        has_front = true;
        yaml_end = pos;
        body_begin = pos;
        break;
      }
      if (eol == std::string_view::npos) break;
      pos = eol + 1;
    }
  }
  const std::string yaml =
      has_front ? std::string(readme.substr(yaml_begin, yaml_end - yaml_begin)) : std::string();
  json old = json::object();
  if (has_front) {
    try {
      old = yaml_to_json(yaml);
    } catch (const Error& e) {
      throw FormatError("README.md: its YAML metadata cannot be read: " + std::string(e.what()));
    }
    if (old.is_null()) old = json::object();
    if (!old.is_object()) throw FormatError("README.md: its YAML metadata is not a mapping");
  }
  json mi = old.contains("model-index") ? old["model-index"] : json::array();
  if (mi.is_null()) mi = json::array();
  if (!mi.is_array()) throw FormatError("README.md: model-index is not a list");
  json* entry = nullptr;
  for (json& e : mi)
    if (e.is_object() && str_member(e, "name") == model_name) entry = &e;
  if (!entry)
    for (json& e : mi)
      if (e.is_object()) {
        entry = &e;
        break;
      }
  if (!entry) {
    mi.push_back({{"name", model_name}, {"results", json::array()}});
    entry = &mi.back();
  }
  json& res = (*entry)["results"];
  if (res.is_null()) res = json::array();
  if (!res.is_array()) throw FormatError("README.md: model-index results is not a list");
  merge_results(res, results);

  // Replace the model-index block's lines (the key, then its indented or `- ` lines; trailing
  // blank and comment lines stay outside), or append the block.
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < yaml.size();) {
    size_t eol = yaml.find('\n', pos);
    if (eol == std::string::npos) eol = yaml.size() - 1;
    lines.push_back(yaml.substr(pos, eol + 1 - pos));
    pos = eol + 1;
  }
  if (!lines.empty() && lines.back().back() != '\n') lines.back() += '\n';
  const std::string block = "model-index:\n" + json_to_yaml(mi, 0);
  std::string out_yaml;
  size_t i = 0;
  bool placed = false;
  while (i < lines.size()) {
    if (!placed && is_model_index_key(lines[i])) {
      size_t end = i + 1;
      while (end < lines.size()) {
        const char c = lines[end][0];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '#' && c != '-') break;
        ++end;
      }
      size_t keep = end;
      while (keep > i + 1) {
        std::string_view l = lines[keep - 1];
        const size_t f = l.find_first_not_of(" \t\r\n");
        if (f != std::string_view::npos && l[f] != '#') break;
        --keep;
      }
      out_yaml += block;
      for (size_t k = keep; k < end; ++k) out_yaml += lines[k];
      i = end;
      placed = true;
      continue;
    }
    out_yaml += lines[i++];
  }
  if (!placed) out_yaml += block;

  // The rewrite must read back as the old metadata with only model-index changed.
  json now;
  try {
    now = yaml_to_json(out_yaml);
  } catch (const Error& e) {
    throw FormatError("README.md: the rewritten YAML metadata does not parse (" +
                      std::string(e.what()) + "); edit its model-index by hand");
  }
  json want = old;
  want["model-index"] = mi;
  if (now != want)
    throw FormatError(
        "README.md: its model-index cannot be rewritten without changing other YAML keys (flow "
        "style, anchors or a repeated key?); edit it by hand");

  std::string out = bom + "---\n" + out_yaml + "---";
  if (has_front) {
    std::string_view rest = readme.substr(body_begin + 3);
    out += rest;
  } else {
    out += "\n";
    if (readme.empty())
      out += "\n# " + model_name + "\n\nEvaluation results (model-index) written by `ohm eval`.\n";
    else
      out += readme;
  }
  return out;
}

}  // namespace ohm::hub
