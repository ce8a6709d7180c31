// Grammar expressions, the JSON lexemes' byte steps and the compiler from expressions to the
// byte automaton (ohm/generation/grammar.h; internals in grammar_internal.h).
#include <algorithm>
#include <cmath>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "grammar_internal.h"
#include "ohm/core/error.h"

namespace ohm::generation {

namespace grammar_detail {

// ---------------------------------------------------------------- string body
namespace {
bool is_hex(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
}  // namespace

int str_step(const StrSpec& sp, uint8_t& st, uint64_t& count, uint8_t c) {
  auto start = [&](uint8_t next) {
    if (count >= sp.max_len) return -1;
    // Without an upper bound the count only matters up to min_len: saturating it there keeps
    // equal configurations equal (the matcher memoises transitions per configuration set).
    if (sp.max_len != kUnboundedLen || count < sp.min_len) ++count;
    st = next;
    return 0;
  };
  switch (st) {
    case kS0:
      if (c == '"') return count >= sp.min_len ? 1 : -1;
      if (c == '\\') return start(kEsc);
      if (c < 0x20) return -1;
      if (c < 0x80) return start(kS0);
      if (c >= 0xC2 && c <= 0xDF) return start(kC1);
      if (c == 0xE0) return start(kE0);
      if (c == 0xED) return start(kED);
      if (c >= 0xE1 && c <= 0xEF) return start(kC2);
      if (c == 0xF0) return start(kF0);
      if (c >= 0xF1 && c <= 0xF3) return start(kC3);
      if (c == 0xF4) return start(kF4);
      return -1;
    case kEsc:
      switch (c) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          st = kS0;
          return 0;
        case 'u':
          st = kU1;
          return 0;
        default:
          return -1;
      }
    case kU1:
      if (!is_hex(c)) return -1;
      st = (c == 'd' || c == 'D') ? kU2D : kU2;
      return 0;
    case kU2D:
      if (c < '0' || c > '7') return -1;
      st = kU3;
      return 0;
    case kU2:
    case kU3:
    case kU4:
      if (!is_hex(c)) return -1;
      st = st == kU2 ? kU3 : st == kU3 ? kU4 : kS0;
      return 0;
    case kC1:
    case kC2:
    case kC3:
      if (c < 0x80 || c > 0xBF) return -1;
      st = st == kC1 ? kS0 : st == kC2 ? kC1 : kC2;
      return 0;
    case kE0:
      if (c < 0xA0 || c > 0xBF) return -1;
      st = kC1;
      return 0;
    case kED:
      if (c < 0x80 || c > 0x9F) return -1;
      st = kC1;
      return 0;
    case kF0:
      if (c < 0x90 || c > 0xBF) return -1;
      st = kC2;
      return 0;
    case kF4:
      if (c < 0x80 || c > 0x8F) return -1;
      st = kC2;
      return 0;
    default:
      return -1;
  }
}

// ---------------------------------------------------------------- numbers
// b: phase (bits 0-3), negative (bit 4), integer digits (8-15), fraction digits (16-23),
// exponent digits (24-31). a: the integer part's absolute value.
namespace {
enum NumPhase : uint32_t { kStart, kMinus, kZero, kInt, kDot, kFrac, kE, kESign, kExp };
uint32_t phase(uint32_t b) {
  return b & 15u;
}
bool neg(uint32_t b) {
  return (b >> 4) & 1u;
}
uint32_t nint(uint32_t b) {
  return (b >> 8) & 255u;
}
uint32_t nfrac(uint32_t b) {
  return (b >> 16) & 255u;
}
uint32_t nexp(uint32_t b) {
  return (b >> 24) & 255u;
}
uint32_t pack(uint32_t ph, bool ng, uint32_t ni, uint32_t nf, uint32_t ne) {
  return ph | (ng ? 16u : 0u) | (ni << 8) | (nf << 16) | (ne << 24);
}

// Unbounded numbers are limited by their digit counts only, and do not track the value (so equal
// configurations stay equal for the matcher's memo).
bool int_in_range(const NumSpec& sp, bool ng, i128 a) {
  if (!sp.bounded) return true;
  i128 x = ng ? -a : a;
  return x >= sp.ilo && x <= sp.ihi;
}
// Some completion of an integer part with digits `a` (nd of them; a == 0: just "0") is in range.
bool int_feasible(const NumSpec& sp, bool ng, i128 a, uint32_t nd) {
  if (!sp.bounded) return nd <= static_cast<uint32_t>(sp.max_int_digits);
  if (a == 0) return int_in_range(sp, ng, 0);
  i128 p = 1;
  for (uint32_t k = 0; nd + k <= static_cast<uint32_t>(sp.max_int_digits); ++k, p *= 10) {
    i128 lo = a * p, hi = (a + 1) * p - 1;
    i128 xl = ng ? -hi : lo, xh = ng ? -lo : hi;
    if (xh >= sp.ilo && xl <= sp.ihi) return true;
  }
  return false;
}
// Every value with integer part `a` and a fraction lies within the bounds.
bool fraction_ok(const NumSpec& sp, bool ng, uint64_t a) {
  if (sp.integer) return false;
  if (!sp.bounded) return true;
  long double A = static_cast<long double>(a);
  if (!ng) {
    bool lo_ok = sp.lo_excl ? A > sp.lo : A >= sp.lo;
    return lo_ok && A + 1 <= sp.hi;
  }
  bool hi_ok = sp.hi_excl ? -A < sp.hi : -A <= sp.hi;
  return hi_ok && -(A + 1) >= sp.lo;
}
}  // namespace

int num_step(const NumSpec& sp, uint64_t& a, uint32_t& b, uint8_t c) {
  const uint32_t ph = phase(b);
  const bool ng = neg(b);
  const bool digit = c >= '0' && c <= '9';
  const uint32_t d = c - '0';
  auto first_digit = [&](bool n) -> int {
    if (d == 0) {
      if (n && sp.integer) return -1;  // no "-0"
      if (!int_in_range(sp, n, 0) && !fraction_ok(sp, n, 0)) return -1;
      a = 0;
      b = pack(kZero, n, 1, 0, 0);
      return 0;
    }
    if (!int_feasible(sp, n, d, 1)) return -1;
    a = sp.bounded ? d : 0;
    b = pack(kInt, n, 1, 0, 0);
    return 0;
  };
  switch (ph) {
    case kStart:
      if (c == '-') {
        // Some first digit must work after the sign.
        for (uint8_t x = '0'; x <= '9'; ++x) {
          uint64_t a2 = 0;
          uint32_t b2 = pack(kMinus, true, 0, 0, 0);
          if (num_step(sp, a2, b2, x) == 0) {
            b = pack(kMinus, true, 0, 0, 0);
            return 0;
          }
        }
        return -1;
      }
      return digit ? first_digit(false) : -1;
    case kMinus:
      return digit ? first_digit(true) : -1;
    case kZero:
    case kInt:
      if (digit) {
        if (ph == kZero || nint(b) >= static_cast<uint32_t>(sp.max_int_digits)) return -1;
        i128 na = static_cast<i128>(a) * 10 + d;
        if (!int_feasible(sp, ng, na, nint(b) + 1)) return -1;
        a = sp.bounded ? static_cast<uint64_t>(na) : 0;
        b = pack(kInt, ng, nint(b) + 1, 0, 0);
        return 0;
      }
      if (c == '.') {
        if (!fraction_ok(sp, ng, a) || sp.max_frac_digits == 0) return -1;
        b = pack(kDot, ng, nint(b), 0, 0);
        return 0;
      }
      if (c == 'e' || c == 'E') {
        if (sp.integer || sp.bounded || sp.max_exp_digits == 0) return -1;
        b = pack(kE, ng, nint(b), 0, 0);
        return 0;
      }
      return -1;
    case kDot:
    case kFrac:
      if (digit) {
        if (nfrac(b) >= static_cast<uint32_t>(sp.max_frac_digits)) return -1;
        b = pack(kFrac, ng, nint(b), nfrac(b) + 1, 0);
        return 0;
      }
      if (ph == kFrac && (c == 'e' || c == 'E')) {
        if (sp.bounded || sp.max_exp_digits == 0) return -1;
        b = pack(kE, ng, nint(b), nfrac(b), 0);
        return 0;
      }
      return -1;
    case kE:
      if (c == '+' || c == '-') {
        b = pack(kESign, ng, nint(b), nfrac(b), 0);
        return 0;
      }
      [[fallthrough]];
    case kESign:
    case kExp:
      if (!digit || nexp(b) >= static_cast<uint32_t>(sp.max_exp_digits)) return -1;
      b = pack(kExp, ng, nint(b), nfrac(b), nexp(b) + 1);
      return 0;
    default:
      return -1;
  }
}

bool num_complete(const NumSpec& sp, uint64_t a, uint32_t b) {
  switch (phase(b)) {
    case kZero:
    case kInt:
      return int_in_range(sp, neg(b), a);
    case kFrac:
    case kExp:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------- expressions
namespace {
std::shared_ptr<Expr> mk(Expr::Kind k) {
  auto e = std::make_shared<Expr>();
  e->kind = k;
  return e;
}
}  // namespace
ExprP e_empty() {
  return mk(Expr::Empty);
}
ExprP e_lit(std::string s) {
  if (s.empty()) return e_empty();
  auto e = mk(Expr::Literal);
  e->text = std::move(s);
  return e;
}
ExprP e_bytes(std::vector<std::pair<uint8_t, uint8_t>> ranges) {
  auto e = mk(Expr::Bytes);
  e->ranges = std::move(ranges);
  return e;
}
ExprP e_seq(std::vector<ExprP> v) {
  std::erase_if(v, [](const ExprP& x) { return x->kind == Expr::Empty; });
  if (v.empty()) return e_empty();
  if (v.size() == 1) return v[0];
  auto e = mk(Expr::Seq);
  e->kids = std::move(v);
  return e;
}
ExprP e_alt(std::vector<ExprP> v) {
  if (v.size() == 1) return v[0];
  auto e = mk(Expr::Alt);
  e->kids = std::move(v);
  return e;
}
ExprP e_rep(ExprP x, int64_t min, int64_t max) {
  if (max == 0) return e_empty();
  if (min == 1 && max == 1) return x;
  auto e = mk(Expr::Repeat);
  e->kids = {std::move(x)};
  e->min = min;
  e->max = max;
  return e;
}
ExprP e_opt(ExprP x) {
  return e_rep(std::move(x), 0, 1);
}
ExprP e_ref(Rule* r) {
  auto e = mk(Expr::Ref);
  e->rule = r;
  return e;
}
ExprP e_str(StrSpec s) {
  auto e = mk(Expr::Str);
  e->str = s;
  return e;
}
ExprP e_num(NumSpec s) {
  auto e = mk(Expr::Num);
  e->num = s;
  return e;
}

// ---------------------------------------------------------------- compiler
namespace {
constexpr size_t kMaxNodes = 2'000'000;

struct Compiler {
  Program p;
  std::unordered_map<const Rule*, uint32_t> rule_start;  // rule -> start node
  std::vector<std::pair<const Rule*, uint32_t>> pending;

  uint32_t node(NodeKind k = NodeKind::Plain) {
    if (p.nodes.size() >= kMaxNodes)
      throw InvalidArgument("grammar: too large to compile (over " + std::to_string(kMaxNodes) +
                            " automaton states; lower maxItems / maxLength / repetition counts)");
    p.nodes.emplace_back();
    p.nodes.back().kind = k;
    return static_cast<uint32_t>(p.nodes.size() - 1);
  }
  uint32_t start_of(const Rule* r) {
    auto it = rule_start.find(r);
    if (it != rule_start.end()) return it->second;
    uint32_t s = node();
    rule_start.emplace(r, s);
    pending.emplace_back(r, s);
    return s;
  }
  // Emits `e` starting at node `in`; returns the node where it ends.
  uint32_t emit(const Expr& e, uint32_t in) {
    switch (e.kind) {
      case Expr::Empty:
        return in;
      case Expr::Literal:
        for (unsigned char c : e.text) {
          uint32_t t = node();
          p.nodes[in].edges.push_back({c, c, t});
          in = t;
        }
        return in;
      case Expr::Bytes: {
        uint32_t t = node();
        for (auto [lo, hi] : e.ranges) p.nodes[in].edges.push_back({lo, hi, t});
        return t;
      }
      case Expr::Seq:
        for (const auto& k : e.kids) in = emit(*k, in);
        return in;
      case Expr::Alt: {
        uint32_t out = node();
        for (const auto& k : e.kids) {
          uint32_t s = node();
          p.nodes[in].eps.push_back(s);
          uint32_t o = emit(*k, s);
          p.nodes[o].eps.push_back(out);
        }
        return out;
      }
      case Expr::Repeat: {
        const Expr& x = *e.kids[0];
        for (int64_t i = 0; i < e.min; ++i) in = emit(x, in);
        if (e.max < 0) {
          uint32_t loop = node();
          p.nodes[in].eps.push_back(loop);
          uint32_t s = node();
          p.nodes[loop].eps.push_back(s);
          uint32_t o = emit(x, s);
          p.nodes[o].eps.push_back(loop);
          return loop;
        }
        if (e.max > e.min) {
          uint32_t out = node();
          for (int64_t i = e.min; i < e.max; ++i) {
            p.nodes[in].eps.push_back(out);
            uint32_t s = node();
            p.nodes[in].eps.push_back(s);
            in = emit(x, s);
          }
          p.nodes[in].eps.push_back(out);
          return out;
        }
        return in;
      }
      case Expr::Ref: {
        uint32_t callee = start_of(e.rule);
        uint32_t c = node(NodeKind::Call);
        uint32_t n = node();
        p.nodes[c].target = callee;
        p.nodes[c].next = n;
        p.nodes[in].eps.push_back(c);
        return n;
      }
      case Expr::Str:
      case Expr::Num: {
        bool str = e.kind == Expr::Str;
        uint32_t l = node(str ? NodeKind::Str : NodeKind::Num);
        uint32_t n = node();
        if (str) {
          p.nodes[l].target = static_cast<uint32_t>(p.strs.size());
          p.strs.push_back(e.str);
        } else {
          p.nodes[l].target = static_cast<uint32_t>(p.nums.size());
          p.nums.push_back(e.num);
        }
        p.nodes[l].next = n;
        p.nodes[in].eps.push_back(l);
        return n;
      }
    }
    return in;
  }
  uint32_t emit_rule(const Expr& body, uint32_t start) {
    uint32_t end = emit(body, start);
    uint32_t ret = node(NodeKind::Return);
    p.nodes[end].eps.push_back(ret);
    return ret;
  }
};
}  // namespace

std::shared_ptr<const Program> compile(const ExprP& root) {
  Compiler c;
  c.p.start = c.node();
  c.emit_rule(*root, c.p.start);
  while (!c.pending.empty()) {
    auto [r, s] = c.pending.back();
    c.pending.pop_back();
    if (!r->body) throw InvalidArgument("grammar: rule '" + r->name + "' has no definition");
    c.emit_rule(*r->body, s);
  }
  return std::make_shared<const Program>(std::move(c.p));
}

}  // namespace grammar_detail

using namespace grammar_detail;

struct GrammarAccess {
  static Grammar make(ExprP root, std::vector<std::shared_ptr<Rule>> rules) {
    Grammar g;
    g.prog_ = compile(root);
    g.root_ = std::move(root);
    g.rules_ = std::move(rules);
    return g;
  }
  static const ExprP& root(const Grammar& g) { return g.root_; }
  static const std::vector<std::shared_ptr<Rule>>& rules(const Grammar& g) { return g.rules_; }
};

Grammar::Grammar() : root_(e_empty()), prog_(compile(root_)) {}
Grammar::~Grammar() = default;
Grammar::Grammar(const Grammar&) = default;
Grammar& Grammar::operator=(const Grammar&) = default;

size_t Grammar::num_states() const {
  return prog_->nodes.size();
}

Grammar Grammar::json_schema(const nlohmann::json& schema, const JsonGrammarOptions& opt) {
  return json_schema(nlohmann::ordered_json::parse(schema.dump()), opt);
}

Grammar Grammar::json_schema(const nlohmann::ordered_json& schema, const JsonGrammarOptions& opt) {
  RuleSet rs;
  ExprP e = json_schema_expr(schema, opt, rs);
  return GrammarAccess::make(std::move(e), std::move(rs.rules));
}

Grammar Grammar::json_schema_cached(std::string_view text, const JsonGrammarOptions& opt) {
  static std::mutex mu;
  static std::list<std::pair<std::string, Grammar>> lru;
  constexpr size_t kCap = 64;
  std::string key = std::to_string(opt.max_whitespace) + ":" + std::string(text);
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = lru.begin(); it != lru.end(); ++it)
      if (it->first == key) {
        lru.splice(lru.begin(), lru, it);
        return it->second;
      }
  }
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument(std::string("json schema: not valid JSON: ") + e.what());
  }
  Grammar g = json_schema(j, opt);
  std::lock_guard<std::mutex> lock(mu);
  lru.emplace_front(std::move(key), g);
  if (lru.size() > kCap) lru.pop_back();
  return g;
}

Grammar Grammar::any_json_object(const JsonGrammarOptions& opt) {
  RuleSet rs;
  ExprP e = any_json_expr(opt, rs, true);
  return GrammarAccess::make(std::move(e), std::move(rs.rules));
}

Grammar Grammar::any_json(const JsonGrammarOptions& opt) {
  RuleSet rs;
  ExprP e = any_json_expr(opt, rs, false);
  return GrammarAccess::make(std::move(e), std::move(rs.rules));
}

Grammar Grammar::literal(std::string text) {
  return GrammarAccess::make(e_lit(std::move(text)), {});
}

Grammar Grammar::regex(std::string_view pattern) {
  return GrammarAccess::make(regex_expr(pattern, false, "regex"), {});
}

namespace {
Grammar combine(const std::vector<Grammar>& parts, bool seq) {
  std::vector<ExprP> es;
  std::vector<std::shared_ptr<Rule>> rules;
  for (const auto& g : parts) {
    es.push_back(GrammarAccess::root(g));
    const auto& r = GrammarAccess::rules(g);
    rules.insert(rules.end(), r.begin(), r.end());
  }
  if (!seq && es.empty()) throw InvalidArgument("Grammar::choice: no alternatives");
  return GrammarAccess::make(seq ? e_seq(std::move(es)) : e_alt(std::move(es)), std::move(rules));
}
}  // namespace

Grammar Grammar::sequence(const std::vector<Grammar>& parts) {
  return combine(parts, true);
}
Grammar Grammar::choice(const std::vector<Grammar>& alts) {
  return combine(alts, false);
}

}  // namespace ohm::generation
