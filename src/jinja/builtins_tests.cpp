// Jinja2's builtin tests (`is defined`, `is string`, `is divisibleby`...).
#include "builtins.h"

namespace ohm::jinja {

bool test_builtin(Interp& /*in*/, const std::string& name, const Value& v, Args& a, bool& found) {
  found = true;
  const Value* arg = a.get(0, "other");
  auto need = [&]() -> const Value& {
    if (!arg) throw EvalError("test '" + name + "' requires an argument");
    return *arg;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return (v.is_list() && !v.is_generator()) || v.is_dict() || v.is_string();
  if (name == "callable") return v.is_callable();
  if (name == "escaped") return false;
  if (name == "sameas") {
    const Value& o = need();
    if (v.is_none() || v.is_bool() || v.is_undefined()) return v.type() == o.type() && equals(v, o);
    return v.type() == o.type() && equals(v, o);
  }
  if (name == "lower") return v.is_string() && ascii_lower(v.as_string()) == v.as_string();
  if (name == "upper") return v.is_string() && ascii_upper(v.as_string()) == v.as_string();
  if (name == "odd" || name == "even") {
    if (!v.is_number() || v.is_float()) throw EvalError("odd/even requires an integer");
    const int64_t r = ((v.as_int() % 2) + 2) % 2;
    return name == "odd" ? r == 1 : r == 0;
  }
  if (name == "divisibleby") {
    const Value& n = need();
    const int64_t d = to_int_arg(&n, 1);
    if (d == 0) throw EvalError("integer division or modulo by zero");
    return to_int_arg(&v, 0) % d == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==") return equals(v, need());
  if (name == "ne" || name == "!=") return !equals(v, need());
  if (name == "lt" || name == "lessthan" || name == "<") return less(v, need());
  if (name == "le" || name == "<=") return !less(need(), v);
  if (name == "gt" || name == "greaterthan" || name == ">") return less(need(), v);
  if (name == "ge" || name == ">=") return !less(v, need());
  if (name == "in") return contains(need(), v);
  if (name == "filter" || name == "test") {
    static const char* filters[] = {
        "trim",   "length",  "count",   "tojson", "items",     "selectattr", "rejectattr",
        "select", "reject",  "map",     "join",   "upper",     "lower",      "capitalize",
        "title",  "replace", "default", "d",      "first",     "last",       "string",
        "safe",   "int",     "float",   "list",   "dictsort",  "abs",        "round",
        "unique", "reverse", "sort",    "indent", "wordcount", "batch",      "center",
        "sum",    "min",     "max",     "attr",   "format",    "pprint",     "truncate",
        "escape", "e"};
    static const char* tests[] = {
        "defined", "undefined", "none",    "boolean",  "true",       "false",       "integer",
        "float",   "number",    "string",  "mapping",  "iterable",   "sequence",    "callable",
        "sameas",  "lower",     "upper",   "odd",      "even",       "divisibleby", "equalto",
        "eq",      "ne",        "lt",      "le",       "gt",         "ge",          "in",
        "filter",  "test",      "escaped", "lessthan", "greaterthan"};
    if (!v.is_string()) return false;
    if (name == "filter") {
      for (const char* f : filters)
        if (v.as_string() == f) return true;
    } else {
      for (const char* t : tests)
        if (v.as_string() == t) return true;
    }
    return false;
  }
  found = false;
  return false;
}

}  // namespace ohm::jinja
