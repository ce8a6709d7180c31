// Internals of ohm/generation/grammar.h: the grammar expression tree, the compiled automaton
// (a recursive transition network over bytes with two lexeme node kinds that carry their own
// small state: JSON string bodies and JSON numbers) and the tokenizer vocabulary tables.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ohm/generation/grammar.h"

namespace ohm::generation::grammar_detail {

__extension__ typedef __int128 i128;  // integer-part arithmetic (GCC/Clang)

// ---- JSON string body: after the opening quote, up to and including the closing quote. ----
// DFA states (the low byte of Config::b); Config::a counts the characters started.
enum StrState : uint8_t {
  kS0 = 0,  // between characters
  kEsc,     // after '\'
  kU1,      // \u, expecting 4 hex digits (kU1..kU4: the 1st..4th)
  kU2,      // after a first hex digit that was not D/d
  kU2D,     // after a first hex digit D/d: the second must be 0-7 (no surrogates)
  kU3,
  kU4,
  kC1,  // one UTF-8 continuation byte 80-BF left
  kC2,  // two left
  kC3,  // three left
  kE0,  // after E0: A0-BF then one more
  kED,  // after ED: 80-9F then one more
  kF0,  // after F0: 90-BF then two more
  kF4,  // after F4: 80-8F then two more
  kNumStrStates
};
constexpr uint64_t kUnboundedLen = std::numeric_limits<uint64_t>::max();
struct StrSpec {
  uint64_t min_len = 0;
  uint64_t max_len = kUnboundedLen;  // without it, the count saturates at min_len
};
// One byte through the string body. Returns -1 reject, 0 stay (state/count updated), 1 closing
// quote consumed.
int str_step(const StrSpec& sp, uint8_t& state, uint64_t& count, uint8_t byte);

// ---- JSON number. ----
struct NumSpec {
  bool integer = false;  // no fraction / exponent
  bool bounded = false;  // minimum/maximum given (then no exponent)
  long double lo = -std::numeric_limits<long double>::infinity(), hi = -lo;
  bool lo_excl = false, hi_excl = false;
  // Integer-part values allowed on their own: [ilo, ihi] (from lo/hi).
  i128 ilo = 0, ihi = 0;
  int max_int_digits = 20, max_frac_digits = 20, max_exp_digits = 2;
};
// State packed in Config::a (the integer part's absolute value, saturating) and Config::b.
int num_step(const NumSpec& sp, uint64_t& a, uint32_t& b, uint8_t byte);  // -1 reject, 0 ok
bool num_complete(const NumSpec& sp, uint64_t a, uint32_t b);

// ---- Expressions (what the Grammar factories build). ----
struct Rule;
struct Expr {
  enum Kind { Empty, Literal, Bytes, Seq, Alt, Repeat, Ref, Str, Num } kind = Empty;
  std::string text;                                 // Literal
  std::vector<std::pair<uint8_t, uint8_t>> ranges;  // Bytes
  std::vector<std::shared_ptr<const Expr>> kids;    // Seq, Alt, Repeat (one)
  int64_t min = 0, max = -1;                        // Repeat (-1 = unbounded)
  Rule* rule = nullptr;                             // Ref (owned by the Grammar)
  StrSpec str;
  NumSpec num;
};
using ExprP = std::shared_ptr<const Expr>;
struct Rule {
  ExprP body;
  std::string name;
};

ExprP e_empty();
ExprP e_lit(std::string s);
ExprP e_bytes(std::vector<std::pair<uint8_t, uint8_t>> ranges);
ExprP e_seq(std::vector<ExprP> v);
ExprP e_alt(std::vector<ExprP> v);
ExprP e_rep(ExprP x, int64_t min, int64_t max);
ExprP e_opt(ExprP x);
ExprP e_ref(Rule* r);
ExprP e_str(StrSpec s);
ExprP e_num(NumSpec s);

// Builds rules while compiling a schema; the Grammar takes ownership.
struct RuleSet {
  std::vector<std::shared_ptr<Rule>> rules;
  Rule* add(std::string name, ExprP body = nullptr) {
    rules.push_back(std::make_shared<Rule>(Rule{std::move(body), std::move(name)}));
    return rules.back().get();
  }
};

// JSON schema / regex front ends (grammar_schema.cpp). Errors: InvalidArgument.
ExprP json_schema_expr(const nlohmann::ordered_json& schema, const JsonGrammarOptions& opt,
                       RuleSet& rs);
ExprP any_json_expr(const JsonGrammarOptions& opt, RuleSet& rs, bool object_only);
// A regex over code points, as raw UTF-8 (json_escaped = false) or as the body of a JSON string
// literal (true: '"', '\' and control characters appear escaped, and the expression ends with
// the closing quote). `where` names the source.
ExprP regex_expr(std::string_view pattern, bool json_escaped, const std::string& where);

// ---- The compiled automaton. ----
enum class NodeKind : uint8_t { Plain, Call, Return, Str, Num };
struct Edge {
  uint8_t lo, hi;
  uint32_t to;
};
struct Node {
  NodeKind kind = NodeKind::Plain;
  uint32_t target = 0;  // Call: the callee's start node; Str/Num: spec index
  uint32_t next = 0;    // Call: where to return; Str/Num: the node after the lexeme
  std::vector<Edge> edges;
  std::vector<uint32_t> eps;
};
struct Program {
  std::vector<Node> nodes;
  std::vector<StrSpec> strs;
  std::vector<NumSpec> nums;
  uint32_t start = 0;  // the root rule's start node
};
std::shared_ptr<const Program> compile(const ExprP& root);

// ---- Vocabulary tables. ----
struct Vocab {
  std::vector<std::string> bytes;  // per id
  std::vector<uint8_t> special;    // per id
  // Byte trie of the allowed tokens in pre-order: node i has byte `tbyte[i]` at depth
  // `tdepth[i]` (1-based), its subtree ends before `tend[i]`, tokens ending there are
  // tok_ids[tok_begin[i] .. tok_begin[i + 1]).
  std::vector<uint8_t> tbyte;
  std::vector<uint16_t> tdepth;
  std::vector<uint32_t> tend, tok_begin;
  std::vector<TokenId> tok_ids;
  size_t max_len = 0;

  // Per string-DFA state: for every token, what the string body makes of it (computed lazily).
  struct StrTable {
    // kind: 0 reject, 1 stays inside (chars started `n`), 2 closes at byte `q` (chars `n`)
    std::vector<uint8_t> kind;
    std::vector<uint16_t> n, q;
    std::vector<TokenId> closing;  // ids with kind 2
  };
  mutable std::array<std::once_flag, kNumStrStates> str_once;
  mutable std::array<StrTable, kNumStrStates> str_tables;
  const StrTable& str_table(uint8_t state) const;

  void build_trie();
};

}  // namespace ohm::generation::grammar_detail
