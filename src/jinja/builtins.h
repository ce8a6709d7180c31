// Internal to the Jinja builtins (builtins_*.cpp): the Python str helpers, argument coercion and
// the str/dict/list method tables that access, filters and tests share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "interp.h"

namespace ohm::jinja {

// builtins_pystr.cpp
bool py_space(uint32_t c);  // str.isspace() for one code point
bool is_alpha(char c);
bool is_digit(char c);
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);
std::string ascii_upper(std::string s);
std::string ascii_lower(std::string s);
std::string py_capitalize(const std::string& s);
std::string py_title(const std::string& s);     // str.title()
std::string jinja_title(const std::string& s);  // Jinja's |title
std::string py_replace(const std::string& s, const std::string& old, const std::string& rep,
                       int64_t count);
std::vector<Value> py_split(const std::string& s, const Value* sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(const std::string& s, bool keepends);
int64_t to_int_arg(const Value* v, int64_t dflt);
bool to_bool_arg(const Value* v, bool dflt);
std::string percent_format(const std::string& fmt, const Value& argv);  // "fmt % args"
std::string brace_format(const std::string& fmt, const Args& args);     // str.format
std::string html_escape(const std::string& s);

// builtins_methods.cpp: the bound method `name` of a str / dict / list (Undefined, or nullopt
// for a dict, when there is none).
Value string_method(const Value& obj, const std::string& name);
std::optional<Value> dict_method(const Value& obj, const std::string& name);
Value list_method(const Value& obj, const std::string& name);

}  // namespace ohm::jinja
