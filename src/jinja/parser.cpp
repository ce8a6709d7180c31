// The Jinja2 parser (recursive descent, mirroring jinja2/parser.py's grammar and precedence).
#include <initializer_list>

#include "ast.h"
#include "ohm/jinja/template.h"

namespace ohm::jinja {

namespace {

class Parser {
 public:
  Parser(std::vector<Token> toks, std::string name) : t_(std::move(toks)), name_(std::move(name)) {}

  Body parse_root() {
    Body body = parse_until({});
    return body;
  }

 private:
  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t n = 1) const { return t_[std::min(i_ + n, t_.size() - 1)]; }
  Token next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }

  [[noreturn]] void fail(const std::string& msg, const Token* at = nullptr) const {
    const Token& tk = at ? *at : cur();
    throw TemplateSyntaxError(name_, tk.line, tk.col, msg);
  }

  static std::string describe(const Token& tk) {
    switch (tk.type) {
      case Tok::Data:
        return "template data";
      case Tok::VarBegin:
        return "begin of print statement";
      case Tok::VarEnd:
        return "end of print statement";
      case Tok::BlockBegin:
        return "begin of statement block";
      case Tok::BlockEnd:
        return "end of statement block";
      case Tok::Name:
        return "'" + tk.text + "'";
      case Tok::String:
        return "string";
      case Tok::Int:
        return "integer";
      case Tok::Float:
        return "float";
      case Tok::Op:
        return "'" + tk.text + "'";
      case Tok::Eof:
        return "end of template";
    }
    return "token";
  }

  bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    ++i_;
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    ++i_;
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected token '") + op + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().type != Tok::Name) fail("expected name, got " + describe(cur()));
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != Tok::BlockEnd)
      fail("expected token 'end of statement block', got " + describe(cur()));
    ++i_;
  }

  ExprP mk(Expr::Kind k, const Token& at) { return std::make_unique<Expr>(k, at.line, at.col); }

  // ------------------------------------------------------------------------------------------
  // Statements

  // Parses statements until a block whose first name is one of `ends` (consumed, returned in
  // `which`), or EOF when `ends` is empty.
  Body parse_until(std::initializer_list<const char*> ends, std::string* which = nullptr) {
    Body body;
    while (true) {
      const Token& tk = cur();
      if (tk.type == Tok::Eof) {
        if (ends.size() == 0) return body;
        std::string expected;
        for (const char* e : ends)
          expected += (expected.empty() ? "'" : " or '") + std::string(e) + "'";
        fail("Unexpected end of template. Jinja was looking for the following tags: " + expected +
             ".");
      }
      if (tk.type == Tok::Data) {
        auto s = std::make_unique<Stmt>(Stmt::Data, tk.line, tk.col);
        s->text = tk.text;
        body.push_back(std::move(s));
        ++i_;
        continue;
      }
      if (tk.type == Tok::VarBegin) {
        ++i_;
        auto s = std::make_unique<Stmt>(Stmt::Output, tk.line, tk.col);
        s->expr = parse_tuple();
        if (cur().type != Tok::VarEnd)
          fail("expected token 'end of print statement', got " + describe(cur()));
        ++i_;
        body.push_back(std::move(s));
        continue;
      }
      if (tk.type == Tok::BlockBegin) {
        const Token& kw = peek();
        if (kw.type == Tok::Name) {
          for (const char* e : ends) {
            if (kw.text == e) {
              i_ += 2;
              if (which) *which = e;
              return body;
            }
          }
        }
        ++i_;
        body.push_back(parse_statement());
        continue;
      }
      fail("unexpected " + describe(tk));
    }
  }

  StmtP parse_statement() {
    const Token tk = cur();
    if (tk.type != Tok::Name) fail("tag name expected");
    const std::string& kw = tk.text;
    auto stmt = [&](Stmt::Kind k) { return std::make_unique<Stmt>(k, tk.line, tk.col); };
    ++i_;
    if (kw == "if") {
      auto s = stmt(Stmt::If);
      s->expr = parse_tuple(false);
      expect_block_end();
      Stmt* node = s.get();
      while (true) {
        std::string which;
        node->body = parse_until({"elif", "else", "endif"}, &which);
        if (which == "elif") {
          auto e = std::make_unique<Stmt>(Stmt::If, t_[i_ - 1].line, t_[i_ - 1].col);
          e->expr = parse_tuple(false);
          expect_block_end();
          Stmt* en = e.get();
          node->else_body.push_back(std::move(e));
          node = en;
          continue;
        }
        if (which == "else") {
          expect_block_end();
          node->else_body = parse_until({"endif"});
        }
        expect_block_end();
        break;
      }
      return s;
    }
    if (kw == "for") {
      auto s = stmt(Stmt::For);
      s->target = parse_target(false, "in");
      if (!skip_name("in")) fail("expected 'in', got " + describe(cur()));
      s->expr = parse_tuple(false, {"recursive"}, /*stop_at_if=*/true);
      if (skip_name("if")) s->cond = parse_expression();
      if (skip_name("recursive")) s->recursive = true;
      expect_block_end();
      std::string which;
      s->body = parse_until({"endfor", "else"}, &which);
      if (which == "else") {
        expect_block_end();
        s->else_body = parse_until({"endfor"});
      }
      expect_block_end();
      return s;
    }
    if (kw == "set") {
      Target target = parse_target(true, "=");
      if (skip_op("=")) {
        auto s = stmt(Stmt::Set);
        s->target = std::move(target);
        s->expr = parse_tuple();
        expect_block_end();
        return s;
      }
      auto s = stmt(Stmt::SetBlock);
      s->target = std::move(target);
      if (is_op("|")) s->expr = parse_filter_chain(nullptr);
      expect_block_end();
      s->body = parse_until({"endset"});
      expect_block_end();
      return s;
    }
    if (kw == "macro") {
      auto s = stmt(Stmt::Macro);
      s->text = expect_name();
      s->params = parse_signature();
      expect_block_end();
      s->body = parse_until({"endmacro"});
      if (cur().type == Tok::Name && cur().text == s->text) ++i_;
      expect_block_end();
      return s;
    }
    if (kw == "call") {
      auto s = stmt(Stmt::CallBlock);
      if (is_op("(")) s->params = parse_signature();
      s->expr = parse_expression();
      if (s->expr->kind != Expr::Call) fail("expected call", &tk);
      expect_block_end();
      s->body = parse_until({"endcall"});
      expect_block_end();
      return s;
    }
    if (kw == "filter") {
      auto s = stmt(Stmt::FilterBlock);
      s->expr = parse_filter_chain(nullptr, /*first_has_pipe=*/false);
      expect_block_end();
      s->body = parse_until({"endfilter"});
      expect_block_end();
      return s;
    }
    if (kw == "with") {
      auto s = stmt(Stmt::With);
      while (cur().type != Tok::BlockEnd) {
        if (!s->targets.empty()) expect_op(",");
        s->targets.push_back(parse_target(false, "="));
        expect_op("=");
        s->values.push_back(parse_expression());
      }
      expect_block_end();
      s->body = parse_until({"endwith"});
      expect_block_end();
      return s;
    }
    if (kw == "break" || kw == "continue") {
      auto s = stmt(kw == "break" ? Stmt::Break : Stmt::Continue);
      expect_block_end();
      return s;
    }
    if (kw == "generation") {
      auto s = stmt(Stmt::Generation);
      expect_block_end();
      s->body = parse_until({"endgeneration"});
      expect_block_end();
      return s;
    }
    static const char* unsupported[] = {"include", "import",     "from", "extends",
                                        "block",   "autoescape", "do"};
    for (const char* u : unsupported)
      if (kw == u) fail("'" + kw + "' is not supported by ohm's Jinja engine", &tk);
    fail("Encountered unknown tag '" + kw + "'.", &tk);
  }

  // name | name, name | (name, name) | name.attr (with_namespace)
  Target parse_target(bool with_namespace, const char* end_name) {
    Target t;
    auto one = [&]() {
      if (skip_op("(")) {
        while (!is_op(")")) {
          if (!t.names.empty() && !skip_op(",")) break;
          if (is_op(")")) break;
          t.names.push_back(expect_name());
        }
        expect_op(")");
        t.tuple = true;
        return;
      }
      t.names.push_back(expect_name());
      if (with_namespace && is_op(".") && peek().type == Tok::Name) {
        ++i_;
        t.attr = expect_name();
      }
    };
    one();
    while (is_op(",")) {
      ++i_;
      t.tuple = true;
      if (cur().type != Tok::Name || cur().text == end_name) break;
      t.names.push_back(expect_name());
    }
    return t;
  }

  std::vector<Param> parse_signature() {
    std::vector<Param> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      Param p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression();
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  // ------------------------------------------------------------------------------------------
  // Expressions

  // Comma-separated expressions; more than one (or a trailing comma) makes a tuple.
  ExprP parse_tuple(bool with_condexpr = true, std::initializer_list<const char*> extra_end = {},
                    bool stop_at_if = false, bool explicit_parens = false) {
    const Token start = cur();
    std::vector<ExprP> items;
    bool is_tuple = false;
    auto at_end = [&]() {
      if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || cur().type == Tok::Eof)
        return true;
      if (is_op(")")) return true;
      if (cur().type == Tok::Name) {
        for (const char* e : extra_end)
          if (cur().text == e) return true;
        if (stop_at_if && cur().text == "if") return true;
      }
      return false;
    };
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        is_tuple = true;
      }
      if (at_end()) break;
      items.push_back(with_condexpr ? parse_expression() : parse_or());
    }
    if (!is_tuple) {
      if (items.empty()) {
        if (!explicit_parens) fail("Expected an expression, got " + describe(cur()));
        auto e = mk(Expr::ListLit, start);
        e->tuple = true;
        return e;
      }
      return std::move(items[0]);
    }
    auto e = mk(Expr::ListLit, start);
    e->tuple = true;
    e->items = std::move(items);
    return e;
  }

  ExprP parse_expression() { return parse_condexpr(); }

  ExprP parse_condexpr() {
    ExprP e = parse_or();
    while (is_name("if")) {
      const Token tk = next();
      auto c = mk(Expr::CondExpr, tk);
      c->b = parse_or();
      if (skip_name("else")) c->c = parse_condexpr();
      c->a = std::move(e);
      e = std::move(c);
    }
    return e;
  }

  ExprP binary(const std::string& op, ExprP l, ExprP r, const Token& tk) {
    auto e = mk(Expr::Binary, tk);
    e->name = op;
    e->a = std::move(l);
    e->b = std::move(r);
    return e;
  }

  ExprP parse_or() {
    ExprP l = parse_and();
    while (is_name("or")) {
      const Token tk = next();
      l = binary("or", std::move(l), parse_and(), tk);
    }
    return l;
  }

  ExprP parse_and() {
    ExprP l = parse_not();
    while (is_name("and")) {
      const Token tk = next();
      l = binary("and", std::move(l), parse_not(), tk);
    }
    return l;
  }

  ExprP parse_not() {
    if (is_name("not")) {
      const Token tk = next();
      auto e = mk(Expr::Not, tk);
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprP parse_compare() {
    const Token start = cur();
    ExprP l = parse_math1();
    ExprP cmp;
    while (true) {
      std::string op;
      if (cur().type == Tok::Op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        ++i_;
        op = "in";
      } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
        i_ += 2;
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = mk(Expr::Compare, start);
        cmp->a = std::move(l);
      }
      cmp->ops.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(l);
  }

  ExprP parse_math1() {
    ExprP l = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token tk = next();
      l = binary(tk.text, std::move(l), parse_concat(), tk);
    }
    return l;
  }

  ExprP parse_concat() {
    ExprP l = parse_math2();
    while (is_op("~")) {
      const Token tk = next();
      l = binary("~", std::move(l), parse_math2(), tk);
    }
    return l;
  }

  ExprP parse_math2() {
    ExprP l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token tk = next();
      l = binary(tk.text, std::move(l), parse_pow(), tk);
    }
    return l;
  }

  ExprP parse_pow() {
    ExprP l = parse_unary();
    while (is_op("**")) {
      const Token tk = next();
      l = binary("**", std::move(l), parse_unary(), tk);
    }
    return l;
  }

  ExprP parse_unary(bool with_filter = true) {
    ExprP e;
    if (is_op("-") || is_op("+")) {
      const Token tk = next();
      e = mk(tk.text == "-" ? Expr::Neg : Expr::Pos, tk);
      e->a = parse_unary(false);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprP parse_primary() {
    const Token tk = cur();
    if (tk.type == Tok::Name) {
      ++i_;
      auto e = mk(Expr::Literal, tk);
      if (tk.text == "true" || tk.text == "True")
        e->value = Value(true);
      else if (tk.text == "false" || tk.text == "False")
        e->value = Value(false);
      else if (tk.text == "none" || tk.text == "None")
        e->value = Value::none();
      else {
        e->kind = Expr::Name;
        e->name = tk.text;
      }
      return e;
    }
    if (tk.type == Tok::String) {
      std::string s;
      while (cur().type == Tok::String) s += next().text;
      auto e = mk(Expr::Literal, tk);
      e->value = Value(std::move(s));
      return e;
    }
    if (tk.type == Tok::Int || tk.type == Tok::Float) {
      ++i_;
      auto e = mk(Expr::Literal, tk);
      if (tk.type == Tok::Int) {
        try {
          e->value = Value(static_cast<int64_t>(std::stoll(tk.text)));
        } catch (const std::exception&) {
          e->value = Value(std::stod(tk.text));
        }
      } else {
        e->value = Value(std::stod(tk.text));
      }
      return e;
    }
    if (is_op("(")) {
      ++i_;
      ExprP e = parse_tuple(true, {}, false, true);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      ++i_;
      auto e = mk(Expr::ListLit, tk);
      while (!is_op("]")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("]")) break;
        e->items.push_back(parse_expression());
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      ++i_;
      auto e = mk(Expr::DictLit, tk);
      while (!is_op("}")) {
        if (!e->items.empty()) expect_op(",");
        if (is_op("}")) break;
        e->items.push_back(parse_expression());
        expect_op(":");
        e->items.push_back(parse_expression());
      }
      expect_op("}");
      return e;
    }
    fail("unexpected " + describe(tk));
  }

  ExprP parse_postfix(ExprP e) {
    while (true) {
      if (is_op(".")) {
        const Token tk = next();
        if (cur().type == Tok::Name) {
          auto g = mk(Expr::GetAttr, tk);
          g->name = next().text;
          g->a = std::move(e);
          e = std::move(g);
        } else if (cur().type == Tok::Int) {
          auto g = mk(Expr::GetItem, tk);
          auto lit = mk(Expr::Literal, cur());
          lit->value = Value(static_cast<int64_t>(std::stoll(next().text)));
          g->a = std::move(e);
          g->b = std::move(lit);
          e = std::move(g);
        } else {
          fail("expected name or number");
        }
      } else if (is_op("[")) {
        const Token tk = next();
        std::vector<ExprP> subs;
        while (!is_op("]")) {
          if (!subs.empty()) expect_op(",");
          subs.push_back(parse_subscribed());
        }
        expect_op("]");
        auto g = mk(Expr::GetItem, tk);
        g->a = std::move(e);
        if (subs.size() == 1) {
          g->b = std::move(subs[0]);
        } else {
          auto t = mk(Expr::ListLit, tk);
          t->tuple = true;
          t->items = std::move(subs);
          g->b = std::move(t);
        }
        e = std::move(g);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprP parse_subscribed() {
    const Token tk = cur();
    ExprP first;
    if (!is_op(":")) {
      first = parse_expression();
      if (!is_op(":")) return first;
    }
    ++i_;  // ':'
    auto s = mk(Expr::Slice, tk);
    s->a = std::move(first);
    if (!is_op("]") && !is_op(",") && !is_op(":")) s->b = parse_expression();
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) s->c = parse_expression();
    }
    return s;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (skip_op("*")) {
        e.b = parse_expression();
      } else if (skip_op("**")) {
        e.c = parse_expression();
      } else if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
        std::string k = next().text;
        ++i_;
        e.kwargs.emplace_back(std::move(k), parse_expression());
      } else {
        e.items.push_back(parse_expression());
      }
    }
    expect_op(")");
  }

  ExprP parse_call(ExprP fn) {
    auto e = mk(Expr::Call, cur());
    e->a = std::move(fn);
    parse_call_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string n = expect_name();
    while (is_op(".") && peek().type == Tok::Name) {
      ++i_;
      n += "." + expect_name();
    }
    return n;
  }

  // "|f(args)|g" (or "f(args)|g" for {% filter %}) applied to `subject` (may be null).
  ExprP parse_filter_chain(ExprP subject, bool first_has_pipe = true) {
    bool first = true;
    while (true) {
      if (!(first && !first_has_pipe)) {
        if (!skip_op("|")) break;
      }
      first = false;
      const Token tk = cur();
      auto f = mk(Expr::Filter, tk);
      f->name = parse_dotted_name();
      if (is_op("(")) parse_call_args(*f);
      f->a = std::move(subject);
      subject = std::move(f);
    }
    return subject;
  }

  ExprP parse_filter_expr(ExprP e) {
    while (true) {
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprP parse_test(ExprP subject) {
    const Token tk = next();  // 'is'
    const bool negated = skip_name("not");
    auto t = mk(Expr::Test, tk);
    t->name = parse_dotted_name();
    if (is_op("(")) {
      parse_call_args(*t);
    } else if ((cur().type == Tok::Name || cur().type == Tok::String || cur().type == Tok::Int ||
                cur().type == Tok::Float || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      ExprP arg = parse_primary();
      t->items.push_back(parse_postfix(std::move(arg)));
    }
    t->a = std::move(subject);
    if (!negated) return t;
    auto n = mk(Expr::Not, tk);
    n->a = std::move(t);
    return n;
  }

  std::vector<Token> t_;
  std::string name_;
  size_t i_ = 0;
};

}  // namespace

std::shared_ptr<Program> parse_program(const std::string& source, const std::string& name) {
  auto prog = std::make_shared<Program>();
  prog->name = name;
  Parser p(tokenize(source, name), name);
  prog->body = p.parse_root();
  return prog;
}

}  // namespace ohm::jinja
