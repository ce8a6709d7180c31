// The value model of ohm's Jinja2 engine: what templates compute with.
//
// Values follow Python semantics as Jinja2 sees them: None, bool, int, float, str (UTF-8, indexed
// by code point), list and tuple, dict (string keys, insertion order), callables (filters-as-
// functions, macros, builtins), namespace objects (the only mutable container a sandboxed
// template can write to) and Jinja2's default Undefined (prints as "", iterates as empty, is
// falsy, but raises when used as an object or a number).
//
// Containers are shared (copying a Value copies a pointer), matching Python reference semantics.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ohm::jinja {

class Value;
using List = std::vector<Value>;

// A dict with string keys in insertion order (Python 3.7+ dict semantics).
class Dict {
 public:
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(const std::string& key, Value v);
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  size_t size() const;  // inline below, where Value is complete (clang needs it there)
  bool empty() const;
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// Call arguments: positional then keyword.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;

  // Python-style binding helpers: the i-th positional or the keyword `name`, else nullptr.
  const Value* get(size_t i, std::string_view name) const;
};

struct Callable {
  std::string name;
  std::function<Value(Args&)> fn;
};

class Value {
 public:
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Callable, Namespace };

  Value() = default;  // Undefined
  static Value undefined(std::string hint = {});
  static Value none();
  Value(bool b);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(int64_t i);
  Value(double d);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  Value(List l, bool tuple = false);
  Value(Dict d);
  static Value callable(std::string name, std::function<Value(Args&)> fn);
  static Value ns(Dict d);  // a namespace() object
  // A Python generator/iterator (what map/select/items/unique/reverse... return): iterates like a
  // list, but is always truthy, has no len(), is not JSON serializable and prints as an object.
  static Value generator(List l);
  // A markupsafe.Markup string (from |safe, |escape): concatenating a plain string to it
  // HTML-escapes the plain one, as Python's Markup.__add__/__radd__ do.
  static Value markup(std::string s);

  static Value from_json(const nlohmann::ordered_json& j);
  static Value from_json(const nlohmann::json& j);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::Undefined; }
  bool is_none() const { return type_ == Type::None; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_int() const { return type_ == Type::Int; }
  bool is_float() const { return type_ == Type::Float; }
  bool is_number() const {
    return type_ == Type::Int || type_ == Type::Float || type_ == Type::Bool;
  }
  bool is_string() const { return type_ == Type::String; }
  bool is_list() const { return type_ == Type::List; }
  bool is_tuple() const { return type_ == Type::List && tuple_; }
  bool is_generator() const { return type_ == Type::List && generator_; }
  bool is_markup() const { return type_ == Type::String && markup_; }
  bool is_dict() const { return type_ == Type::Dict; }
  bool is_namespace() const { return type_ == Type::Namespace; }
  bool is_mapping() const { return type_ == Type::Dict || type_ == Type::Namespace; }
  bool is_callable() const { return type_ == Type::Callable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }
  double as_float() const { return d_; }
  // Numeric value of a bool/int/float as a double.
  double to_double() const;
  const std::string& as_string() const { return *s_; }
  const List& as_list() const { return *l_; }
  const Dict& as_dict() const { return *m_; }
  Dict& as_dict_mut() const { return *m_; }  // namespaces are mutable
  const Callable& as_callable() const { return *c_; }
  // Why a value is undefined ("'x' is undefined"); empty when unknown.
  std::string undefined_hint() const { return s_ ? *s_ : std::string(); }

  // Python truthiness.
  bool truthy() const;
  // Python str() as Jinja2 prints it ({{ x }}): Undefined -> "", None -> "None", 1.0 -> "1.0".
  std::string str() const;
  // Python repr().
  std::string repr() const;
  // json.dumps(x, ensure_ascii=..., indent=indent, sort_keys=sort_keys) with Python's default
  // separators (", " / ": ", or "," / ": " with an indent) unless given. indent < 0: none.
  std::string to_json(int indent = -1, bool sort_keys = false, bool ensure_ascii = false,
                      const std::string* item_sep = nullptr,
                      const std::string* key_sep = nullptr) const;
  // Python type name for error messages ("dict", "str", "NoneType"...).
  std::string type_name() const;

 private:
  Type type_ = Type::Undefined;
  bool tuple_ = false;
  bool generator_ = false;
  bool markup_ = false;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<const std::string> s_;  // String, or the Undefined hint
  std::shared_ptr<const List> l_;
  std::shared_ptr<Dict> m_;
  std::shared_ptr<const Callable> c_;
};

inline size_t Dict::size() const {
  return items_.size();
}
inline bool Dict::empty() const {
  return items_.empty();
}

// Python's ==, with Jinja2's Undefined == Undefined.
bool equals(const Value& a, const Value& b);
// Python's <; throws std::invalid_argument for unorderable types.
bool less(const Value& a, const Value& b);
// Python repr() of a float ("1.0", "1e+16", "0.1").
std::string format_float(double d);

// UTF-8 helpers (code-point based, as Python strings are).
std::vector<std::string_view> utf8_chars(std::string_view s);
size_t utf8_length(std::string_view s);

}  // namespace ohm::jinja
