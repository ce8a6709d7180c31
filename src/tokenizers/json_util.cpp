// JSON access helpers whose errors name the file and the JSON path of the field.
#include "internal.h"

namespace ohm::tokenizers {

JsonCtx JsonCtx::at(const std::string& key) const {
  return JsonCtx{file, path.empty() ? key : path + "." + key};
}
JsonCtx JsonCtx::at(size_t i) const {
  return JsonCtx{file, path + "[" + std::to_string(i) + "]"};
}
void JsonCtx::fail(const std::string& what) const {
  throw FormatError(ErrorContext().file(file).key(path.empty() ? "<root>" : path), what);
}

const json* jget(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string jstring(const json& j, const char* key, const JsonCtx& c) {
  const json* v = jget(j, key);
  if (!v) c.at(key).fail("missing required field");
  if (!v->is_string()) c.at(key).fail(std::string("expected a string, got ") + v->type_name());
  return v->get<std::string>();
}

std::string jstring_or(const json& j, const char* key, const std::string& def, const JsonCtx& c) {
  const json* v = jget(j, key);
  if (!v) return def;
  if (!v->is_string()) c.at(key).fail(std::string("expected a string, got ") + v->type_name());
  return v->get<std::string>();
}

bool jbool_or(const json& j, const char* key, bool def, const JsonCtx& c) {
  const json* v = jget(j, key);
  if (!v) return def;
  if (!v->is_boolean()) c.at(key).fail(std::string("expected a boolean, got ") + v->type_name());
  return v->get<bool>();
}

int64_t jint_or(const json& j, const char* key, int64_t def, const JsonCtx& c) {
  const json* v = jget(j, key);
  if (!v) return def;
  if (!v->is_number_integer())
    c.at(key).fail(std::string("expected an integer, got ") + v->type_name());
  return v->get<int64_t>();
}

std::string jtype(const json& j, const JsonCtx& c) {
  if (!j.is_object()) c.fail(std::string("expected an object, got ") + j.type_name());
  return jstring(j, "type", c);
}

Pattern Pattern::from_json(const json& j, const std::string& where) {
  if (!j.is_object())
    throw FormatError(ErrorContext().key(where),
                      "pattern must be {\"String\": ...} or {\"Regex\": ...}");
  if (auto* s = jget(j, "String"); s && s->is_string()) return literal(s->get<std::string>());
  if (auto* r = jget(j, "Regex"); r && r->is_string())
    return regex(r->get<std::string>(), where + ".Regex");
  throw FormatError(ErrorContext().key(where),
                    "pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace ohm::tokenizers
