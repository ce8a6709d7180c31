// Internal: the tree-walking interpreter and the builtin filters, tests and methods.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "ast.h"

namespace ohm::jinja {

// Thrown by builtins; the interpreter adds the template name and position.
struct EvalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// raise_exception(message) from a template.
struct RaisedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopeP = std::shared_ptr<Scope>;

class Interp {
 public:
  explicit Interp(const Program& prog) : prog_(prog) {}
  std::string render(const Value& context);

  Value eval(const Expr& e, const ScopeP& sc);
  // Applies the filter `name` / test `name` (used by map/select/selectattr...).
  Value apply_filter(const std::string& name, const Value& subject, Args& args, const ScopeP& sc);
  bool apply_test(const std::string& name, const Value& subject, Args& args);
  Value call_value(const Value& fn, Args& args);

 private:
  enum class Flow { Normal, Break, Continue };
  Flow exec(const Body& body, const ScopeP& sc, std::string& out);
  Flow exec_stmt(const Stmt& s, const ScopeP& sc, std::string& out);
  Flow exec_for(const Stmt& s, const ScopeP& sc, std::string& out);
  void assign(const Target& t, const Value& v, const ScopeP& sc, const Stmt& at);
  Value make_macro(const std::string& name, const std::vector<Param>* params, const Body* body,
                   const ScopeP& closure, bool is_caller);
  Value eval_inner(const Expr& e, const ScopeP& sc);
  Args eval_args(const Expr& e, const ScopeP& sc);
  [[noreturn]] void fail(int line, int col, const std::string& msg, bool raised = false) const;

  const Program& prog_;
  ScopeP globals_;
  int depth_ = 0;
};

// Builtins (builtins_*.cpp; helpers they share in builtins.h).
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
Value make_global(const std::string& name);  // Undefined when not a global
std::vector<Value> iterate(const Value& v);
int64_t length(const Value& v);
bool contains(const Value& container, const Value& item);
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value filter_builtin(Interp& in, const std::string& name, const Value& v, Args& args, bool& found);
bool test_builtin(Interp& in, const std::string& name, const Value& v, Args& args, bool& found);

}  // namespace ohm::jinja
