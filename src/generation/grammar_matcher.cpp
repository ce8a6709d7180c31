// Token vocabularies as bytes (TokenBytes) and the per-request matcher: a set of automaton
// configurations (node, call stack, lexeme state) advanced byte by byte; token masks come from a
// walk of the vocabulary's byte trie, with a precomputed fast path for JSON string bodies.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <tuple>
#include <unordered_map>

#include "grammar_internal.h"
#include "ohm/core/error.h"
#include "ohm/tokenizers/pipeline.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::generation {

using namespace grammar_detail;

// ---------------------------------------------------------------- vocabulary
namespace grammar_detail {

void Vocab::build_trie() {
  std::vector<TokenId> ids;
  for (size_t i = 0; i < bytes.size(); ++i)
    if (!special[i] && !bytes[i].empty()) ids.push_back(static_cast<TokenId>(i));
  std::sort(ids.begin(), ids.end(), [&](TokenId x, TokenId y) {
    return bytes[x] != bytes[y] ? bytes[x] < bytes[y] : x < y;
  });
  tbyte.clear();
  tdepth.clear();
  tok_begin.clear();
  tok_ids.clear();
  max_len = 0;
  std::string_view prev;
  std::vector<std::vector<TokenId>> at;  // tokens per node (then flattened)
  std::vector<uint32_t> path;            // node index per depth on the current path
  for (TokenId id : ids) {
    std::string_view s = bytes[id];
    if (s.size() > 65535) continue;
    size_t l = 0;
    while (l < s.size() && l < prev.size() && s[l] == prev[l] && l < path.size()) ++l;
    path.resize(l);
    for (size_t j = l; j < s.size(); ++j) {
      path.push_back(static_cast<uint32_t>(tbyte.size()));
      tbyte.push_back(static_cast<uint8_t>(s[j]));
      tdepth.push_back(static_cast<uint16_t>(j + 1));
      at.emplace_back();
    }
    at[path.back()].push_back(id);
    max_len = std::max(max_len, s.size());
    prev = s;
  }
  const size_t n = tbyte.size();
  tend.assign(n, static_cast<uint32_t>(n));
  std::vector<uint32_t> open;
  for (size_t i = 0; i < n; ++i) {
    while (!open.empty() && tdepth[open.back()] >= tdepth[i]) {
      tend[open.back()] = static_cast<uint32_t>(i);
      open.pop_back();
    }
    open.push_back(static_cast<uint32_t>(i));
  }
  tok_begin.resize(n + 1);
  for (size_t i = 0; i < n; ++i) {
    tok_begin[i] = static_cast<uint32_t>(tok_ids.size());
    tok_ids.insert(tok_ids.end(), at[i].begin(), at[i].end());
  }
  tok_begin[n] = static_cast<uint32_t>(tok_ids.size());
}

const Vocab::StrTable& Vocab::str_table(uint8_t state) const {
  std::call_once(str_once[state], [&] {
    StrTable& t = str_tables[state];
    const size_t v = bytes.size();
    t.kind.assign(v, 0);
    t.n.assign(v, 0);
    t.q.assign(v, 0);
    StrSpec any;  // counts every character (a finite bound)
    any.max_len = kUnboundedLen - 1;
    for (size_t id = 0; id < v; ++id) {
      if (special[id] || bytes[id].empty()) continue;
      uint8_t st = state;
      uint64_t cnt = 0;
      uint8_t kind = 1;
      size_t j = 0;
      for (; j < bytes[id].size(); ++j) {
        int r = str_step(any, st, cnt, static_cast<uint8_t>(bytes[id][j]));
        if (r < 0) {
          kind = 0;
          break;
        }
        if (r == 1) {
          kind = 2;
          break;
        }
      }
      t.kind[id] = kind;
      t.n[id] = static_cast<uint16_t>(std::min<uint64_t>(cnt, 65535));
      t.q[id] = static_cast<uint16_t>(std::min<size_t>(j, 65535));
      if (kind == 2) t.closing.push_back(static_cast<TokenId>(id));
    }
  });
  return str_tables[state];
}

}  // namespace grammar_detail

TokenBytes::TokenBytes(std::unique_ptr<Vocab> v) : v_(std::move(v)) {}
TokenBytes::~TokenBytes() = default;
size_t TokenBytes::vocab_size() const {
  return v_->bytes.size();
}
std::string_view TokenBytes::bytes(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= v_->bytes.size()) return {};
  return v_->bytes[id];
}
bool TokenBytes::is_special(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= v_->bytes.size()) return true;
  return v_->special[id] != 0;
}

std::shared_ptr<const TokenBytes> TokenBytes::from_strings(std::vector<std::string> bytes,
                                                           std::vector<bool> special) {
  if (!special.empty() && special.size() != bytes.size())
    throw InvalidArgument("TokenBytes::from_strings: " + std::to_string(special.size()) +
                          " special flags for " + std::to_string(bytes.size()) + " tokens");
  auto v = std::make_unique<Vocab>();
  v->special.assign(bytes.size(), 0);
  for (size_t i = 0; i < special.size(); ++i) v->special[i] = special[i] ? 1 : 0;
  v->bytes = std::move(bytes);
  v->build_trie();
  // The string-body tables up front (~10 ms each on a 128k vocabulary), so that no request
  // pays for them mid-generation.
  for (uint8_t st = 0; st < kNumStrStates; ++st) v->str_table(st);
  return std::make_shared<const TokenBytes>(std::move(v));
}

namespace {
// Decodes one code point; false on invalid UTF-8.
bool next_cp(std::string_view s, size_t& i, uint32_t& cp) {
  auto c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80             ? 0
          : (c & 0xE0) == 0xC0 ? 1
          : (c & 0xF0) == 0xE0 ? 2
          : (c & 0xF8) == 0xF0 ? 3
                               : -1;
  if (n < 0 || i + n >= s.size()) return false;
  cp = n == 0 ? c : c & (0x7Fu >> (n + 1));
  for (int k = 1; k <= n; ++k) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (d & 0x3F);
  }
  i += n + 1;
  return true;
}
}  // namespace

std::shared_ptr<const TokenBytes> TokenBytes::from_tokenizer(const tokenizers::Tokenizer& tok) {
  const size_t n = tok.vocab_size(true);
  std::vector<std::string> pieces(n);
  std::vector<bool> have(n, false), special(n, false), added(n, false);
  for (const auto& a : tok.pipeline().added)
    if (a.id >= 0 && static_cast<size_t>(a.id) < n) added[a.id] = true;
  size_t n_g = 0, n_sp = 0;
  for (size_t i = 0; i < n; ++i) {
    auto s = tok.id_to_token(static_cast<TokenId>(i));
    if (!s) continue;
    have[i] = true;
    pieces[i] = std::move(*s);
    special[i] = tok.is_special(static_cast<TokenId>(i));
    if (added[i]) continue;
    if (pieces[i].find("\xC4\xA0") != std::string::npos) ++n_g;       // 'Ġ' (byte-level space)
    if (pieces[i].find("\xE2\x96\x81") != std::string::npos) ++n_sp;  // '▁' (SentencePiece)
  }
  const bool spm = n_sp > n_g && n_sp > 0;
  const bool byte_level = !spm && n_g > 0;
  // GPT-2 bytes_to_unicode, inverted.
  std::unordered_map<uint32_t, uint8_t> unbyte;
  if (byte_level) {
    uint32_t extra = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      unbyte[printable ? b : 256 + extra++] = static_cast<uint8_t>(b);
    }
  }
  std::vector<std::string> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (!have[i]) {
      special[i] = true;
      continue;
    }
    if (special[i]) continue;
    const std::string& p = pieces[i];
    if (added[i]) {
      out[i] = p;
      continue;
    }
    if (byte_level) {
      std::string b;
      size_t j = 0;
      bool ok = true;
      while (j < p.size()) {
        uint32_t cp = 0;
        if (!next_cp(p, j, cp)) {
          ok = false;
          break;
        }
        auto it = unbyte.find(cp);
        if (it == unbyte.end()) {
          ok = false;
          break;
        }
        b += static_cast<char>(it->second);
      }
      if (ok) {
        out[i] = std::move(b);
      } else {
        special[i] = true;  // not a byte-level piece: never generated inside a grammar
      }
    } else if (spm) {
      if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') {
        out[i] = static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16));
        continue;
      }
      std::string b;
      for (size_t j = 0; j < p.size();) {
        if (p.compare(j, 3, "\xE2\x96\x81") == 0) {
          b += ' ';
          j += 3;
        } else {
          b += p[j++];
        }
      }
      out[i] = std::move(b);
    } else {
      out[i] = p;
    }
  }
  return from_strings(std::move(out), std::move(special));
}

// ---------------------------------------------------------------- matcher
namespace {

constexpr uint32_t kMaxDepth = 2000;

struct Cfg {
  uint32_t node, stack, b;
  uint64_t a;
  bool operator==(const Cfg& o) const {
    return node == o.node && stack == o.stack && b == o.b && a == o.a;
  }
};
struct CfgSet {
  std::vector<Cfg> k;  // configurations that consume a byte next
  bool accept = false;
  bool alive() const { return accept || !k.empty(); }
};

// Call stacks, hash-consed: id 0 is the empty stack.
struct Stacks {
  std::vector<uint32_t> parent{0}, ret{0}, depth{0};
  std::unordered_map<uint64_t, uint32_t> index;
  uint32_t push(uint32_t p, uint32_t r) {
    uint64_t key = (static_cast<uint64_t>(p) << 32) | r;
    auto [it, fresh] = index.emplace(key, static_cast<uint32_t>(parent.size()));
    if (fresh) {
      parent.push_back(p);
      ret.push_back(r);
      depth.push_back(depth[p] + 1);
    }
    return it->second;
  }
};

}  // namespace

struct GrammarMatcher::State {
  Grammar g;
  const Program* P;
  std::shared_ptr<const TokenBytes> vocab;
  Stacks stacks;
  // Configuration sets met so far, interned, with their byte transitions memoised (a lazily
  // built DFA over sets): the trie walks revisit the same sets constantly.
  struct DState {
    CfgSet set;
    std::array<int32_t, 256> next;  // -1 unknown, -2 dead
  };
  std::vector<DState> ds;
  std::unordered_multimap<uint64_t, uint32_t> ds_index;
  static constexpr size_t kMaxDStates = 16384;  // ~1 KiB each
  static constexpr int32_t kUnknown = -1, kDead = -2;
  uint32_t cur = 0;
  bool terminated = false;
  // scratch
  std::vector<Cfg> seen, work;
  std::vector<int32_t> path;
  CfgSet tmp;

  static uint64_t hash_set(const CfgSet& s) {
    uint64_t h = s.accept ? 0x9E3779B97F4A7C15ull : 0x243F6A8885A308D3ull;
    for (const Cfg& c : s.k) {
      for (uint64_t x : {uint64_t(c.node) | (uint64_t(c.stack) << 32), uint64_t(c.b), c.a}) {
        h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
        h *= 0xff51afd7ed558ccdull;
      }
    }
    return h;
  }
  uint32_t intern(CfgSet& s) {
    std::sort(s.k.begin(), s.k.end(), [](const Cfg& x, const Cfg& y) {
      return std::tie(x.node, x.stack, x.b, x.a) < std::tie(y.node, y.stack, y.b, y.a);
    });
    uint64_t h = hash_set(s);
    auto [lo, hi] = ds_index.equal_range(h);
    for (auto it = lo; it != hi; ++it) {
      const CfgSet& o = ds[it->second].set;
      if (o.accept == s.accept && o.k == s.k) return it->second;
    }
    auto id = static_cast<uint32_t>(ds.size());
    ds.push_back(DState{s, {}});
    ds.back().next.fill(kUnknown);
    ds_index.emplace(h, id);
    return id;
  }
  // Drops the memo when it grows too large (between calls, never during a walk).
  void maybe_reset() {
    if (ds.size() < kMaxDStates) return;
    CfgSet keep = ds[cur].set;
    ds.clear();
    ds_index.clear();
    cur = intern(keep);
  }

  bool seen_has(const Cfg& c) const {
    for (const auto& s : seen)
      if (s == c) return true;
    return false;
  }

  void add(Cfg c0, CfgSet& out) {
    work.clear();
    work.push_back(c0);
    while (!work.empty()) {
      Cfg c = work.back();
      work.pop_back();
      if (seen_has(c)) continue;
      seen.push_back(c);
      const Node& n = P->nodes[c.node];
      switch (n.kind) {
        case NodeKind::Plain:
          if (!n.edges.empty()) out.k.push_back(c);
          for (auto it = n.eps.rbegin(); it != n.eps.rend(); ++it)
            work.push_back({*it, c.stack, 0, 0});
          break;
        case NodeKind::Call:
          if (stacks.depth[c.stack] < kMaxDepth)
            work.push_back({n.target, stacks.push(c.stack, n.next), 0, 0});
          break;
        case NodeKind::Return:
          if (c.stack == 0) {
            out.accept = true;
          } else {
            work.push_back({stacks.ret[c.stack], stacks.parent[c.stack], 0, 0});
          }
          break;
        case NodeKind::Str:
          out.k.push_back(c);
          break;
        case NodeKind::Num:
          out.k.push_back(c);
          if (num_complete(P->nums[n.target], c.a, c.b)) work.push_back({n.next, c.stack, 0, 0});
          break;
      }
    }
  }

  void step(const CfgSet& in, uint8_t byte, CfgSet& out) {
    out.k.clear();
    out.accept = false;
    seen.clear();
    for (const Cfg& c : in.k) {
      const Node& n = P->nodes[c.node];
      switch (n.kind) {
        case NodeKind::Plain:
          for (const Edge& e : n.edges)
            if (byte >= e.lo && byte <= e.hi) add({e.to, c.stack, 0, 0}, out);
          break;
        case NodeKind::Str: {
          auto st = static_cast<uint8_t>(c.b);
          uint64_t cnt = c.a;
          int r = str_step(P->strs[n.target], st, cnt, byte);
          if (r == 0) add({c.node, c.stack, st, cnt}, out);
          if (r == 1) add({n.next, c.stack, 0, 0}, out);
          break;
        }
        case NodeKind::Num: {
          uint64_t a = c.a;
          uint32_t b = c.b;
          if (num_step(P->nums[n.target], a, b, byte) == 0) add({c.node, c.stack, b, a}, out);
          break;
        }
        default:
          break;
      }
    }
  }

  int32_t next(uint32_t sid, uint8_t byte) {
    int32_t r = ds[sid].next[byte];
    if (r != kUnknown) return r;
    step(ds[sid].set, byte, tmp);
    r = tmp.alive() ? static_cast<int32_t>(intern(tmp)) : kDead;
    ds[sid].next[byte] = r;
    return r;
  }
  // The set after `bytes` from `sid`, or kDead.
  int32_t run(uint32_t sid, std::string_view bytes) {
    int32_t s = static_cast<int32_t>(sid);
    for (char c : bytes) {
      s = next(static_cast<uint32_t>(s), static_cast<uint8_t>(c));
      if (s < 0) return kDead;
    }
    return s;
  }
  bool alive(int32_t sid) const { return sid >= 0 && ds[sid].set.alive(); }

  // Tokens accepted from a string body configuration, from the precomputed tables.
  void fill_str(const Cfg& c, std::vector<uint8_t>& allowed) {
    const Node& n = P->nodes[c.node];
    const StrSpec& sp = P->strs[n.target];
    const Vocab& v = vocab->detail();
    const Vocab::StrTable& t = v.str_table(static_cast<uint8_t>(c.b));
    const uint64_t room = sp.max_len - c.a;  // characters that may still start
    const size_t nv = v.bytes.size();
    const uint8_t* kind = t.kind.data();
    const uint16_t* cnt = t.n.data();
    uint8_t* out = allowed.data();
    if (room >= 65535) {
      for (size_t i = 0; i < nv; ++i) out[i] |= kind[i] == 1;
    } else {
      const auto r16 = static_cast<uint16_t>(room);
      for (size_t i = 0; i < nv; ++i) out[i] |= (kind[i] == 1) & (cnt[i] <= r16);
    }
    int32_t after = kDead;
    bool after_done = false;
    for (TokenId id : t.closing) {
      if (allowed[id]) continue;
      uint64_t k = t.n[id];
      if (k > room || c.a + k < sp.min_len) continue;
      if (!after_done) {
        CfgSet a;
        seen.clear();
        add({n.next, c.stack, 0, 0}, a);
        after = a.alive() ? static_cast<int32_t>(intern(a)) : kDead;
        after_done = true;
      }
      if (after < 0) break;
      std::string_view rest = std::string_view(v.bytes[id]).substr(t.q[id] + 1);
      if (alive(run(static_cast<uint32_t>(after), rest))) allowed[id] = 1;
    }
  }

  void fill_trie(uint32_t root, std::vector<uint8_t>& allowed) {
    const Vocab& v = vocab->detail();
    if (path.size() < v.max_len + 1) path.resize(v.max_len + 1);
    path[0] = static_cast<int32_t>(root);
    const size_t n = v.tbyte.size();
    const uint8_t* tb = v.tbyte.data();
    const uint16_t* td = v.tdepth.data();
    const uint32_t* te = v.tend.data();
    size_t i = 0;
    while (i < n) {
      const uint16_t d = td[i];
      const int32_t s = next(static_cast<uint32_t>(path[d - 1]), tb[i]);
      if (s < 0) {
        i = te[i];
        continue;
      }
      path[d] = s;
      for (uint32_t j = v.tok_begin[i]; j < v.tok_begin[i + 1]; ++j) allowed[v.tok_ids[j]] = 1;
      if (ds[s].set.k.empty()) {
        i = te[i];
        continue;
      }
      ++i;
    }
  }
};

GrammarMatcher::GrammarMatcher(const Grammar& g, std::shared_ptr<const TokenBytes> vocab)
    : s_(std::make_unique<State>()) {
  if (!vocab) throw InvalidArgument("GrammarMatcher: no vocabulary");
  s_->g = g;
  s_->P = &s_->g.program();
  s_->vocab = std::move(vocab);
  CfgSet init;
  s_->seen.clear();
  s_->add({s_->P->start, 0, 0, 0}, init);
  s_->cur = s_->intern(init);
}
GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

void GrammarMatcher::fill_mask(std::vector<uint8_t>& allowed, const std::vector<TokenId>& eos) {
  State& s = *s_;
  const size_t nv = s.vocab->vocab_size();
  allowed.assign(nv, 0);
  if (s.terminated) return;
  s.maybe_reset();
  CfgSet generic;
  bool all_generic = true;
  const std::vector<Cfg> cfgs = s.ds[s.cur].set.k;
  for (const Cfg& c : cfgs) {
    if (s.P->nodes[c.node].kind == NodeKind::Str) {
      s.fill_str(c, allowed);
      all_generic = false;
    } else {
      generic.k.push_back(c);
    }
  }
  if (!generic.k.empty()) s.fill_trie(all_generic ? s.cur : s.intern(generic), allowed);
  if (s.ds[s.cur].set.accept)
    for (TokenId e : eos)
      if (e >= 0) {
        if (static_cast<size_t>(e) >= allowed.size()) allowed.resize(e + 1, 0);
        allowed[e] = 1;
      }
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  State& s = *s_;
  if (s.terminated) return false;
  if (bytes.empty()) return true;
  s.maybe_reset();
  int32_t r = s.run(s.cur, bytes);
  if (!s.alive(r)) return false;
  s.cur = static_cast<uint32_t>(r);
  return true;
}

bool GrammarMatcher::accept(TokenId id) {
  State& s = *s_;
  if (s.terminated) return false;
  if (s.vocab->is_special(id)) {
    if (!s.ds[s.cur].set.accept) return false;
    s.terminated = true;
    return true;
  }
  std::string_view b = s.vocab->bytes(id);
  if (b.empty()) return false;
  return accept_bytes(b);
}

bool GrammarMatcher::complete() const {
  return s_->ds[s_->cur].set.accept;
}
bool GrammarMatcher::can_continue() const {
  return !s_->terminated && !s_->ds[s_->cur].set.k.empty();
}
bool GrammarMatcher::terminated() const {
  return s_->terminated;
}

GrammarLogitsProcessor::GrammarLogitsProcessor(const Grammar& g,
                                               std::shared_ptr<const TokenBytes> vocab,
                                               std::vector<TokenId> eos_ids)
    : m_(g, vocab), vocab_(std::move(vocab)), eos_(std::move(eos_ids)) {
  if (eos_.empty())
    throw InvalidArgument("GrammarLogitsProcessor: no EOS token id (the output could not end)");
}

void GrammarLogitsProcessor::apply(std::span<const TokenId> seq, int64_t prompt_len,
                                   std::span<float> scores) const {
  const auto start = static_cast<size_t>(prompt_len);
  if (seq.size() < start + consumed_)
    throw InvalidArgument(
        "GrammarLogitsProcessor: the sequence went backwards (one sequence "
        "per processor)");
  for (size_t i = start + consumed_; i < seq.size(); ++i, ++consumed_)
    if (!m_.accept(seq[i]))
      throw InvalidArgument("GrammarLogitsProcessor: generated token " + std::to_string(seq[i]) +
                            " is outside the grammar");
  m_.fill_mask(allowed_, eos_);
  apply_mask(scores.data(), static_cast<int64_t>(scores.size()), allowed_);
}

void apply_mask(float* logits, int64_t vocab, const std::vector<uint8_t>& allowed) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const auto n = static_cast<int64_t>(allowed.size());
  for (int64_t i = 0; i < vocab; ++i)
    if (i >= n || !allowed[i]) logits[i] = ninf;
}

}  // namespace ohm::generation
