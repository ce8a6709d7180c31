// The tree-walking interpreter: scopes, statements, expressions, macros.
#include "interp.h"

#include "ohm/jinja/template.h"

namespace ohm::jinja {

namespace {
constexpr int kMaxDepth = 200;  // nested macro calls / loops (Python's recursion limit analogue)
}

void Interp::fail(int line, int col, const std::string& msg, bool raised) const {
  throw TemplateRuntimeError(prog_.name, line, col, msg, raised);
}

std::string Interp::render(const Value& context) {
  globals_ = std::make_shared<Scope>();
  for (const char* g : {"range", "dict", "namespace", "raise_exception", "strftime_now", "lipsum",
                        "cycler", "joiner"}) {
    Value v = make_global(g);
    if (!v.is_undefined()) globals_->vars[g] = v;
  }
  if (context.is_mapping())
    for (const auto& [k, v] : context.as_dict().items()) globals_->vars[k] = v;
  auto top = std::make_shared<Scope>();
  top->parent = globals_;
  std::string out;
  exec(prog_.body, top, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statements

Interp::Flow Interp::exec(const Body& body, const ScopeP& sc, std::string& out) {
  for (const auto& s : body) {
    const Flow f = exec_stmt(*s, sc, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

static Value apply_chain(Interp& in, const Expr& f, const Value& subject, const ScopeP& sc,
                         const std::function<Args(const Expr&)>& args_of) {
  const Value inner = f.a ? apply_chain(in, *f.a, subject, sc, args_of) : subject;
  Args args = args_of(f);
  return in.apply_filter(f.name, inner, args, sc);
}

Interp::Flow Interp::exec_stmt(const Stmt& s, const ScopeP& sc, std::string& out) {
  switch (s.kind) {
    case Stmt::Data:
      out += s.text;
      return Flow::Normal;
    case Stmt::Output:
      out += eval(*s.expr, sc).str();
      return Flow::Normal;
    case Stmt::If:
      return eval(*s.expr, sc).truthy() ? exec(s.body, sc, out) : exec(s.else_body, sc, out);
    case Stmt::For:
      return exec_for(s, sc, out);
    case Stmt::Set:
      assign(s.target, eval(*s.expr, sc), sc, s);
      return Flow::Normal;
    case Stmt::SetBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = sc;
      std::string buf;
      exec(s.body, inner, buf);
      Value v(std::move(buf));
      if (s.expr)
        v = apply_chain(*this, *s.expr, v, sc, [&](const Expr& f) { return eval_args(f, sc); });
      assign(s.target, v, sc, s);
      return Flow::Normal;
    }
    case Stmt::Macro:
      sc->vars[s.text] = make_macro(s.text, &s.params, &s.body, sc, false);
      return Flow::Normal;
    case Stmt::CallBlock: {
      const Expr& call = *s.expr;
      Value fn = eval(*call.a, sc);
      Args args = eval_args(call, sc);
      args.kw.emplace_back("caller", make_macro("caller", &s.params, &s.body, sc, true));
      if (fn.is_undefined()) fail(s.line, s.col, "'" + fn.undefined_hint() + "' is undefined");
      try {
        out += call_value(fn, args).str();
      } catch (const EvalError& e) {
        fail(s.line, s.col, e.what());
      }
      return Flow::Normal;
    }
    case Stmt::FilterBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = sc;
      std::string buf;
      exec(s.body, inner, buf);
      out += apply_chain(*this, *s.expr, Value(std::move(buf)), sc, [&](const Expr& f) {
               return eval_args(f, sc);
             }).str();
      return Flow::Normal;
    }
    case Stmt::With: {
      auto inner = std::make_shared<Scope>();
      inner->parent = sc;
      for (size_t i = 0; i < s.targets.size(); ++i)
        assign(s.targets[i], eval(*s.values[i], sc), inner, s);
      return exec(s.body, inner, out);
    }
    case Stmt::Break:
      return Flow::Break;
    case Stmt::Continue:
      return Flow::Continue;
    case Stmt::Generation:
      return exec(s.body, sc, out);
  }
  return Flow::Normal;
}

void Interp::assign(const Target& t, const Value& v, const ScopeP& sc, const Stmt& at) {
  if (!t.attr.empty()) {
    const Value* ns = sc->lookup(t.names[0]);
    if (!ns || !ns->is_namespace())
      fail(at.line, at.col, "cannot assign attribute on non-namespace object");
    if (!t.attr.empty() && t.attr[0] == '_')
      fail(at.line, at.col,
           "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
               t.attr + "'. Please rename the attribute.");
    ns->as_dict_mut().set(t.attr, v);
    return;
  }
  if (!t.tuple) {
    sc->vars[t.names[0]] = v;
    return;
  }
  std::vector<Value> items;
  try {
    items = iterate(v);
  } catch (const EvalError& e) {
    fail(at.line, at.col, e.what());
  }
  if (items.size() != t.names.size())
    fail(at.line, at.col,
         items.size() < t.names.size()
             ? "not enough values to unpack (expected " + std::to_string(t.names.size()) +
                   ", got " + std::to_string(items.size()) + ")"
             : "too many values to unpack (expected " + std::to_string(t.names.size()) + ")");
  for (size_t i = 0; i < items.size(); ++i) sc->vars[t.names[i]] = items[i];
}

Interp::Flow Interp::exec_for(const Stmt& s, const ScopeP& sc, std::string& out) {
  const Value seq = eval(*s.expr, sc);
  if (seq.is_none() || seq.is_number() || seq.is_callable() || seq.is_namespace())
    fail(s.line, s.col, "'" + seq.type_name() + "' object is not iterable");
  std::vector<Value> items = iterate(seq);
  if (s.cond) {
    std::vector<Value> kept;
    for (const auto& it : items) {
      auto fsc = std::make_shared<Scope>();
      fsc->parent = sc;
      assign(s.target, it, fsc, s);
      if (eval(*s.cond, fsc).truthy()) kept.push_back(it);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto esc = std::make_shared<Scope>();
    esc->parent = sc;
    exec(s.else_body, esc, out);
    return Flow::Normal;
  }
  if (++depth_ > kMaxDepth) fail(s.line, s.col, "maximum recursion depth exceeded");
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    auto isc = std::make_shared<Scope>();
    isc->parent = sc;
    assign(s.target, items[static_cast<size_t>(i)], isc, s);
    Dict loop;
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(int64_t{1}));
    loop.set("depth0", Value(int64_t{0}));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)]
                               : Value::undefined("there is no previous item"));
    loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)]
                                   : Value::undefined("there is no next item"));
    loop.set("cycle", Value::callable("cycle", [i](Args& a) -> Value {
               if (a.pos.empty()) throw EvalError("no items for cycling given");
               return a.pos[static_cast<size_t>(i) % a.pos.size()];
             }));
    isc->vars["loop"] = Value(std::move(loop));
    const Flow f = exec(s.body, isc, out);
    if (f == Flow::Break) break;
  }
  --depth_;
  return Flow::Normal;
}

Value Interp::make_macro(const std::string& name, const std::vector<Param>* params,
                         const Body* body, const ScopeP& closure, bool is_caller) {
  std::weak_ptr<Scope> weak = closure;
  return Value::callable(name, [this, name, params, body, weak, is_caller](Args& args) -> Value {
    ScopeP parent = weak.lock();
    if (!parent) throw EvalError("macro '" + name + "' called outside of its scope");
    auto sc = std::make_shared<Scope>();
    sc->parent = parent;
    std::vector<bool> used_kw(args.kw.size(), false);
    for (size_t i = 0; i < params->size(); ++i) {
      const Param& p = (*params)[i];
      if (i < args.pos.size()) {
        sc->vars[p.name] = args.pos[i];
        continue;
      }
      bool found = false;
      for (size_t k = 0; k < args.kw.size(); ++k) {
        if (args.kw[k].first == p.name) {
          sc->vars[p.name] = args.kw[k].second;
          used_kw[k] = true;
          found = true;
          break;
        }
      }
      if (found) continue;
      sc->vars[p.name] = p.default_value
                             ? eval(*p.default_value, sc)
                             : Value::undefined("parameter '" + p.name + "' was not provided");
    }
    List varargs;
    for (size_t i = params->size(); i < args.pos.size(); ++i) varargs.push_back(args.pos[i]);
    Dict kwargs;
    for (size_t k = 0; k < args.kw.size(); ++k) {
      if (used_kw[k]) continue;
      if (args.kw[k].first == "caller" && !is_caller) {
        sc->vars["caller"] = args.kw[k].second;
        continue;
      }
      kwargs.set(args.kw[k].first, args.kw[k].second);
    }
    sc->vars["varargs"] = Value(std::move(varargs), true);
    sc->vars["kwargs"] = Value(std::move(kwargs));
    if (++depth_ > kMaxDepth) throw EvalError("maximum recursion depth exceeded");
    std::string out;
    exec(*body, sc, out);
    --depth_;
    return Value(std::move(out));
  });
}

// ---------------------------------------------------------------------------------------------
// Expressions

Args Interp::eval_args(const Expr& e, const ScopeP& sc) {
  Args args;
  for (const auto& it : e.items) args.pos.push_back(eval(*it, sc));
  if (e.b) {
    const Value extra = eval(*e.b, sc);
    for (auto& v : iterate(extra)) args.pos.push_back(v);
  }
  for (const auto& [k, v] : e.kwargs) args.kw.emplace_back(k, eval(*v, sc));
  if (e.c) {
    const Value extra = eval(*e.c, sc);
    if (extra.is_mapping())
      for (const auto& [k, v] : extra.as_dict().items()) args.kw.emplace_back(k, v);
  }
  return args;
}

Value Interp::call_value(const Value& fn, Args& args) {
  if (!fn.is_callable()) throw EvalError("'" + fn.type_name() + "' object is not callable");
  return fn.as_callable().fn(args);
}

Value Interp::eval(const Expr& e, const ScopeP& sc) {
  try {
    return eval_inner(e, sc);
  } catch (const TemplateError&) {
    throw;
  } catch (const RaisedError& r) {
    fail(e.line, e.col, r.what(), true);
  } catch (const EvalError& r) {
    fail(e.line, e.col, r.what());
  } catch (const std::invalid_argument& r) {
    fail(e.line, e.col, r.what());
  } catch (const std::out_of_range& r) {
    fail(e.line, e.col, r.what());
  }
}

Value Interp::eval_inner(const Expr& e, const ScopeP& sc) {
  switch (e.kind) {
    case Expr::Literal:
      return e.value;
    case Expr::Name: {
      if (const Value* v = sc->lookup(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case Expr::ListLit: {
      List l;
      l.reserve(e.items.size());
      for (const auto& it : e.items) l.push_back(eval(*it, sc));
      return Value(std::move(l), e.tuple);
    }
    case Expr::DictLit: {
      Dict d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        const Value k = eval(*e.items[i], sc);
        d.set(k.str(), eval(*e.items[i + 1], sc));
      }
      return Value(std::move(d));
    }
    case Expr::GetAttr: {
      const Value obj = eval(*e.a, sc);
      if (obj.is_undefined()) throw EvalError(obj.undefined_hint());
      return get_attr(obj, e.name);
    }
    case Expr::GetItem: {
      const Value obj = eval(*e.a, sc);
      if (obj.is_undefined()) throw EvalError(obj.undefined_hint());
      if (e.b->kind == Expr::Slice) {
        const Expr& s = *e.b;
        return get_slice(obj, s.a ? eval(*s.a, sc) : Value::none(),
                         s.b ? eval(*s.b, sc) : Value::none(),
                         s.c ? eval(*s.c, sc) : Value::none());
      }
      return get_item(obj, eval(*e.b, sc));
    }
    case Expr::Slice:
      throw EvalError("unexpected slice");
    case Expr::Call: {
      const Value fn = eval(*e.a, sc);
      if (fn.is_undefined()) throw EvalError(fn.undefined_hint());
      Args args = eval_args(e, sc);
      return call_value(fn, args);
    }
    case Expr::Filter: {
      const Value subject = e.a ? eval(*e.a, sc) : Value::undefined();
      Args args = eval_args(e, sc);
      return apply_filter(e.name, subject, args, sc);
    }
    case Expr::Test: {
      const Value subject = eval(*e.a, sc);
      Args args = eval_args(e, sc);
      return Value(apply_test(e.name, subject, args));
    }
    case Expr::Not:
      return Value(!eval(*e.a, sc).truthy());
    case Expr::Neg:
    case Expr::Pos: {
      const Value v = eval(*e.a, sc);
      if (v.is_undefined()) throw EvalError(v.undefined_hint());
      if (!v.is_number())
        throw EvalError("bad operand type for unary " +
                        std::string(e.kind == Expr::Neg ? "-" : "+") + ": '" + v.type_name() + "'");
      if (e.kind == Expr::Pos) return v.is_bool() ? Value(v.as_int()) : v;
      if (v.is_float()) return Value(-v.as_float());
      return Value(-v.as_int());
    }
    case Expr::Binary: {
      if (e.name == "and") {
        Value l = eval(*e.a, sc);
        return l.truthy() ? eval(*e.b, sc) : l;
      }
      if (e.name == "or") {
        Value l = eval(*e.a, sc);
        return l.truthy() ? l : eval(*e.b, sc);
      }
      const Value l = eval(*e.a, sc);
      const Value r = eval(*e.b, sc);
      return binary_op(e.name, l, r);
    }
    case Expr::Compare: {
      Value l = eval(*e.a, sc);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value r = eval(*e.items[i], sc);
        const std::string& op = e.ops[i];
        bool ok;
        if (op == "==")
          ok = equals(l, r);
        else if (op == "!=")
          ok = !equals(l, r);
        else if (op == "in")
          ok = contains(r, l);
        else if (op == "notin")
          ok = !contains(r, l);
        else {
          if (l.is_undefined()) throw EvalError(l.undefined_hint());
          if (r.is_undefined()) throw EvalError(r.undefined_hint());
          if (op == "<")
            ok = less(l, r);
          else if (op == ">")
            ok = less(r, l);
          else if (op == "<=")
            ok = !less(r, l);
          else
            ok = !less(l, r);
        }
        if (!ok) return Value(false);
        l = std::move(r);
      }
      return Value(true);
    }
    case Expr::CondExpr: {
      if (eval(*e.b, sc).truthy()) return eval(*e.a, sc);
      if (e.c) return eval(*e.c, sc);
      return Value::undefined(
          "the inline if-expression evaluated to false and no else section was defined.");
    }
  }
  return Value();
}

Value Interp::apply_filter(const std::string& name, const Value& subject, Args& args,
                           const ScopeP& /*sc*/) {
  bool found = false;
  Value v = filter_builtin(*this, name, subject, args, found);
  if (!found) throw EvalError("No filter named '" + name + "'.");
  return v;
}

bool Interp::apply_test(const std::string& name, const Value& subject, Args& args) {
  bool found = false;
  const bool r = test_builtin(*this, name, subject, args, found);
  if (!found) throw EvalError("No test named '" + name + "'.");
  return r;
}

// ---------------------------------------------------------------------------------------------
// Template

TemplateError::TemplateError(ErrorKind kind, const std::string& name, int line, int column,
                             const std::string& message, bool raised)
    : Error(kind, ErrorContext().file(name),
            "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + message),
      name_(name),
      line_(line),
      column_(column),
      message_(message),
      raised_(raised) {}

Template Template::parse(const std::string& source, const std::string& name) {
  Template t;
  t.program_ = parse_program(source, name);
  return t;
}

std::string Template::render(const Value& context) const {
  Interp in(*program_);
  return in.render(context);
}

std::string Template::render(const nlohmann::ordered_json& context) const {
  return render(Value::from_json(context));
}

const std::string& Template::name() const {
  return program_->name;
}

}  // namespace ohm::jinja
