// Internal: tokens and the AST of ohm's Jinja2 engine.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ohm/jinja/value.h"

namespace ohm::jinja {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  Tok type;
  std::string text;  // data, name, operator, decoded string literal, number text
  int line = 1, col = 1;
};

// Tokenizes `source` as Jinja2's lexer does with trim_blocks=True, lstrip_blocks=True.
std::vector<Token> tokenize(const std::string& source, const std::string& name);

struct Expr;
using ExprP = std::unique_ptr<Expr>;

struct Expr {
  enum Kind {
    Literal,   // value
    Name,      // name
    ListLit,   // items (tuple flag)
    DictLit,   // items: key0, val0, key1, val1...
    GetAttr,   // a.name
    GetItem,   // a[b]
    Slice,     // a, b, c (each may be null)
    Call,      // a(items, kwargs, dyn_args=b, dyn_kwargs=c)
    Filter,    // name; a = subject (null inside {% filter %}); items/kwargs = args
    Test,      // name; a = subject; items/kwargs = args
    Not,       // a
    Neg,       // a
    Pos,       // a
    Binary,    // op: + - * / // % ** ~ and or in notin
    Compare,   // a, then ops[i] with items[i]
    CondExpr,  // a if b else c (c may be null)
  };
  Kind kind;
  int line = 1, col = 1;
  Value value;
  std::string name;  // Name / GetAttr / Filter / Test / Binary op
  bool tuple = false;
  std::vector<ExprP> items;
  std::vector<std::pair<std::string, ExprP>> kwargs;
  std::vector<std::string> ops;
  ExprP a, b, c;

  Expr(Kind k, int l, int co) : kind(k), line(l), col(co) {}
};

struct Stmt;
using StmtP = std::unique_ptr<Stmt>;
using Body = std::vector<StmtP>;

// An assignment target: a name, a tuple of names, or namespace.attr.
struct Target {
  std::vector<std::string> names;  // one name, or a tuple
  bool tuple = false;
  std::string attr;  // non-empty: names[0].attr (namespace assignment)
};

struct Param {
  std::string name;
  ExprP default_value;  // may be null
};

struct Stmt {
  enum Kind {
    Data,         // text
    Output,       // expr
    If,           // expr, body, else_body
    For,          // target, expr (iterable), cond (inline if), body, else_body
    Set,          // target, expr
    SetBlock,     // target, body, filters (expr chain with null subject, may be null)
    Macro,        // name, params, body
    CallBlock,    // expr (a Call), params (caller's), body
    FilterBlock,  // expr (filter chain with null innermost subject), body
    With,         // targets/values, body
    Break,
    Continue,
    Generation,  // body
  };
  Kind kind;
  int line = 1, col = 1;
  std::string text;
  ExprP expr, cond;
  Target target;
  std::vector<Target> targets;
  std::vector<ExprP> values;
  std::vector<Param> params;
  bool recursive = false;
  Body body, else_body;

  Stmt(Kind k, int l, int co) : kind(k), line(l), col(co) {}
};

struct Program {
  std::string name;
  Body body;
};

std::shared_ptr<Program> parse_program(const std::string& source, const std::string& name);

}  // namespace ohm::jinja
