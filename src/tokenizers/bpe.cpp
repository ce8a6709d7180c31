// BPE model (HF tokenizers/src/models/bpe): merges applied with a min-heap over a linked list
// of symbols (lowest rank first, then leftmost), per-thread word cache, byte_fallback, unk fusing,
// continuing_subword_prefix / end_of_word_suffix, ignore_merges.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "internal.h"

namespace ohm::tokenizers {

namespace {

struct MergeVal {
  uint32_t rank;
  int32_t new_id;
};

// Open addressing map (a,b) -> (rank, new_id).
class MergeMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n + n / 2) cap <<= 1;  // load factor <= 2/3 (16 bytes a slot)
    keys_.assign(cap, kEmpty);
    vals_.resize(cap);
  }
  bool insert(int32_t a, int32_t b, MergeVal v) {
    uint64_t k = key(a, b);
    size_t mask = keys_.size() - 1;
    size_t h = mix(k) & mask;
    while (keys_[h] != kEmpty) {
      if (keys_[h] == k) return false;
      h = (h + 1) & mask;
    }
    keys_[h] = k;
    vals_[h] = v;
    return true;
  }
  const MergeVal* find(int32_t a, int32_t b) const {
    uint64_t k = key(a, b);
    size_t mask = keys_.size() - 1;
    size_t h = mix(k) & mask;
    while (true) {
      uint64_t s = keys_[h];
      if (s == k) return &vals_[h];
      if (s == kEmpty) return nullptr;
      h = (h + 1) & mask;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  std::vector<uint64_t> keys_;
  std::vector<MergeVal> vals_;
};

struct Symbol {
  int32_t id;
  int32_t prev, next;
  uint32_t len;
};

struct HeapItem {
  uint32_t rank;
  uint32_t pos;
  int32_t new_id;
};
struct HeapCmp {
  bool operator()(const HeapItem& a, const HeapItem& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// Per-thread word cache for one BPE instance: open addressing on a 64-bit hash of the word.
// A slot holds words of up to 8 bytes and one-token results inline; longer words and results
// go to two arenas (no allocation per entry).
class WordCache {
 public:
  static constexpr size_t kCapacity = 50000;  // entries before starting over
  static constexpr size_t kMaxWord = 256;     // longer words are not cached

  // Appends the cached tokens of `w` to `out`; false if `w` is not cached.
  bool emit(std::string_view w, uint64_t h, std::vector<Token>& out) const {
    if (slots_.empty()) return false;
    const size_t mask = slots_.size() - 1;
    for (size_t i = static_cast<size_t>(h) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key_len == 0) return false;
      if (s.h != h || s.key_len != w.size()) continue;
      const char* key = w.size() <= 8 ? reinterpret_cast<const char*>(&s.key)
                                      : keys_.data() + static_cast<size_t>(s.key);
      if (std::memcmp(key, w.data(), w.size()) != 0) continue;
      if (s.tok_n == 1) {
        out.push_back({static_cast<int32_t>(s.tok), 0, static_cast<uint32_t>(w.size())});
        return true;
      }
      const auto* p = arena_.data() + s.tok;
      uint32_t pos = 0;
      for (size_t k = 0; k < s.tok_n; ++k) {
        out.push_back({p[k].first, pos, pos + p[k].second});
        pos += p[k].second;
      }
      return true;
    }
  }
  void insert(std::string_view w, uint64_t h, const std::pair<int32_t, uint32_t>* toks, size_t n) {
    if (w.empty() || w.size() >= kMaxWord) return;
    if (slots_.empty() || count_ >= kCapacity) {  // start over rather than evict
      slots_.assign(1024, Slot{});
      keys_.clear();
      arena_.clear();
      count_ = 0;
    } else if (2 * (count_ + 1) > slots_.size()) {  // load factor <= 1/2
      std::vector<Slot> old(2 * slots_.size());
      old.swap(slots_);
      for (const Slot& o : old)
        if (o.key_len != 0) place(o);
    }
    Slot s;
    s.h = h;
    s.key_len = static_cast<uint16_t>(w.size());
    if (w.size() <= 8) {
      std::memcpy(&s.key, w.data(), w.size());
    } else {
      s.key = keys_.size();
      keys_.append(w);
    }
    s.tok_n = static_cast<uint16_t>(n);
    if (n == 1) {
      s.tok = static_cast<uint32_t>(toks[0].first);
    } else {
      s.tok = static_cast<uint32_t>(arena_.size());
      arena_.insert(arena_.end(), toks, toks + n);
    }
    place(s);
    ++count_;
  }
  static uint64_t hash(std::string_view w) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ w.size();
    const char* p = w.data();
    size_t n = w.size();
    auto mix = [&h](uint64_t v) {
      h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
      h ^= h >> 29;
    };
    for (; n >= 8; p += 8, n -= 8) {
      uint64_t v;
      std::memcpy(&v, p, 8);
      mix(v);
    }
    if (n) {
      uint64_t v = 0;
      std::memcpy(&v, p, n);
      mix(v);
    }
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
  }

 private:
  struct Slot {
    uint64_t h = 0;
    uint64_t key = 0;  // the word (<= 8 bytes) or its offset in keys_
    uint16_t key_len = 0, tok_n = 0;
    uint32_t tok = 0;  // the id (one token) or the offset in arena_
  };
  void place(const Slot& s) {
    const size_t mask = slots_.size() - 1;
    size_t i = static_cast<size_t>(s.h) & mask;
    while (slots_[i].key_len != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<std::pair<int32_t, uint32_t>> arena_;
  size_t count_ = 0;
};

std::atomic<uint64_t> g_bpe_ids{1};

class BPE : public Model {
 public:
  explicit BPE(BpeConfig cfg, const JsonCtx& c) : uid_(g_bpe_ids.fetch_add(1)) {
    vocab_.reserve(cfg.vocab.size());
    for (size_t i = 0; i < cfg.vocab.size(); ++i)
      if (!cfg.vocab[i].empty() || true) vocab_.add(cfg.vocab[i], static_cast<int32_t>(i));
    init(std::move(cfg), c);
  }
  BPE(Vocab v, BpeConfig cfg, const JsonCtx& c)
      : uid_(g_bpe_ids.fetch_add(1)), vocab_(std::move(v)) {
    init(std::move(cfg), c);
  }

  void init(BpeConfig cfg, const JsonCtx& c) {
    prefix_ = std::move(cfg.continuing_subword_prefix);
    suffix_ = std::move(cfg.end_of_word_suffix);
    fuse_unk_ = cfg.fuse_unk;
    byte_fallback_ = cfg.byte_fallback;
    ignore_merges_ = cfg.ignore_merges;
    if (cfg.unk_token) {
      unk_token_ = *cfg.unk_token;
      unk_id_ = vocab_.find(*cfg.unk_token);
    }
    merges_.reserve(cfg.merges.size());
    std::string tmp;
    for (size_t i = 0; i < cfg.merges.size(); ++i) {
      const auto [a, b] = cfg.merges[i];
      int32_t ia = vocab_.find(a), ib = vocab_.find(b);
      if (ia < 0)
        c.at("merges").at(i).fail("merge token '" + std::string(a) + "' is not in the vocabulary");
      if (ib < 0)
        c.at("merges").at(i).fail("merge token '" + std::string(b) + "' is not in the vocabulary");
      std::string_view bs = b;
      if (!prefix_.empty() && bs.substr(0, prefix_.size()) == prefix_)
        bs.remove_prefix(prefix_.size());
      tmp.assign(a);
      tmp.append(bs);
      int32_t in = vocab_.find(tmp);
      if (in < 0) c.at("merges").at(i).fail("merged token '" + tmp + "' is not in the vocabulary");
      merges_.insert(ia, ib, MergeVal{static_cast<uint32_t>(i), in});
    }
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      byte_ids_[b] = vocab_.find(buf);
    }
  }

  std::optional<int32_t> token_to_id(std::string_view t) const override {
    int32_t id = vocab_.find(t);
    if (id < 0) return std::nullopt;
    return id;
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  const char* kind() const override { return "BPE"; }

  void tokenize(std::string_view s, std::vector<Token>& out) const override {
    if (s.empty()) return;
    // this thread's cache for this model (the last one used is remembered); it is looked at
    // first: a word's tokens never change, ignore_merges or not
    thread_local std::unordered_map<uint64_t, WordCache> caches;
    thread_local uint64_t last_uid = 0;
    thread_local WordCache* last = nullptr;
    if (last_uid != uid_ || !last) {
      last = &caches[uid_];
      last_uid = uid_;
    }
    WordCache& cache = *last;
    const uint64_t h = WordCache::hash(s);
    if (cache.emit(s, h, out)) return;
    thread_local std::vector<std::pair<int32_t, uint32_t>> res;
    res.clear();
    int32_t whole = ignore_merges_ ? vocab_.find(s) : -1;
    if (whole >= 0) {
      res.emplace_back(whole, static_cast<uint32_t>(s.size()));
    } else {
      thread_local std::vector<Symbol> syms;
      merge_word(s, syms);
      for (const auto& sy : syms)
        if (sy.len != 0) res.emplace_back(sy.id, sy.len);
    }
    emit(res.data(), res.size(), out);
    cache.insert(s, h, res.data(), res.size());
  }

 private:
  static void emit(const std::pair<int32_t, uint32_t>* p, size_t n, std::vector<Token>& out) {
    uint32_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      out.push_back({p[i].first, pos, pos + p[i].second});
      pos += p[i].second;
    }
  }

  void add_sym(std::vector<Symbol>& syms, int32_t id, uint32_t len) const {
    auto n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, n + 1, len});
  }

  void merge_word(std::string_view w, std::vector<Symbol>& syms) const {
    syms.clear();
    int32_t unk_id = -1;
    uint32_t unk_len = 0;
    bool have_unk = false;
    std::string buf;
    for (size_t i = 0; i < w.size();) {
      size_t n = utf8_len(static_cast<unsigned char>(w[i]));
      if (i + n > w.size()) n = w.size() - i;
      bool first = i == 0, last = i + n >= w.size();
      std::string_view piece = w.substr(i, n);
      int32_t id;
      if ((!first && !prefix_.empty()) || (last && !suffix_.empty())) {
        buf.clear();
        if (!first) buf += prefix_;
        buf.append(piece);
        if (last) buf += suffix_;
        id = vocab_.find(buf);
        piece = buf;
      } else {
        id = vocab_.find(piece);
      }
      auto byte_len = static_cast<uint32_t>(n);
      i += n;
      if (id >= 0) {
        if (have_unk) {
          add_sym(syms, unk_id, unk_len);
          have_unk = false;
        }
        add_sym(syms, id, byte_len);
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        for (unsigned char b : piece)
          if (byte_ids_[b] < 0) {
            all = false;
            break;
          }
        if (all) {
          for (unsigned char b : piece) add_sym(syms, byte_ids_[b], 1);
          continue;
        }
      }
      if (unk_token_) {
        if (unk_id_ < 0)
          throw FormatError(ErrorContext().key("model.unk_token"),
                            "unk_token '" + *unk_token_ + "' is not in the vocabulary");
        if (have_unk && fuse_unk_) {
          unk_len += byte_len;
        } else {
          if (have_unk) add_sym(syms, unk_id, unk_len);
          have_unk = true;
          unk_id = unk_id_;
          unk_len = byte_len;
        }
      }
    }
    if (have_unk) add_sym(syms, unk_id, unk_len);
    if (syms.empty()) return;
    syms.back().next = -1;

    thread_local std::vector<HeapItem> heap;
    heap.clear();
    for (size_t k = 0; k + 1 < syms.size(); ++k) {
      if (const MergeVal* m = merges_.find(syms[k].id, syms[k + 1].id))
        heap.push_back({m->rank, static_cast<uint32_t>(k), m->new_id});
    }
    std::make_heap(heap.begin(), heap.end(), HeapCmp());
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), HeapCmp());
      HeapItem top = heap.back();
      heap.pop_back();
      Symbol& cur = syms[top.pos];
      if (cur.len == 0 || cur.next == -1) continue;
      auto next_pos = static_cast<size_t>(cur.next);
      Symbol right = syms[next_pos];
      const MergeVal* m = merges_.find(cur.id, right.id);
      if (!m || m->new_id != top.new_id) continue;
      cur.id = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      syms[next_pos].len = 0;
      if (right.next > -1 && static_cast<size_t>(right.next) < syms.size())
        syms[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);
      if (cur.prev >= 0) {
        const Symbol& p = syms[static_cast<size_t>(cur.prev)];
        if (const MergeVal* pm = merges_.find(p.id, cur.id)) {
          heap.push_back({pm->rank, static_cast<uint32_t>(cur.prev), pm->new_id});
          std::push_heap(heap.begin(), heap.end(), HeapCmp());
        }
      }
      if (cur.next >= 0 && static_cast<size_t>(cur.next) < syms.size()) {
        const Symbol& nx = syms[static_cast<size_t>(cur.next)];
        if (const MergeVal* nm = merges_.find(cur.id, nx.id)) {
          heap.push_back({nm->rank, top.pos, nm->new_id});
          std::push_heap(heap.begin(), heap.end(), HeapCmp());
        }
      }
    }
  }

  uint64_t uid_;
  Vocab vocab_;
  MergeMap merges_;
  std::string prefix_, suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::optional<std::string> unk_token_;
  int32_t unk_id_ = -1;
  int32_t byte_ids_[256];
};

}  // namespace

std::unique_ptr<Model> make_bpe(BpeConfig cfg, const JsonCtx& c) {
  return std::make_unique<BPE>(std::move(cfg), c);
}

std::unique_ptr<Model> make_bpe_json(const json& j, const JsonCtx& c, StreamedBpe* pre) {
  Vocab vocab;
  BpeConfig cfg;
  if (pre && pre->have_vocab) {
    vocab = std::move(pre->vocab);
  } else {
    const json* v = jget(j, "vocab");
    if (!v) c.at("vocab").fail("missing required field");
    if (!v->is_object())
      c.at("vocab").fail(std::string("expected an object, got ") + v->type_name());
    vocab.reserve(v->size());
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
          it.value().get<int64_t>() > INT32_MAX)
        c.at("vocab").at(it.key()).fail("expected a non-negative integer id");
      vocab.add(it.key(), static_cast<int32_t>(it.value().get<int64_t>()));
    }
  }
  if (pre && pre->have_merges) {
    cfg.merges = std::move(pre->merges);
  } else if (const json* m = jget(j, "merges")) {
    if (!m->is_array())
      c.at("merges").fail(std::string("expected an array, got ") + m->type_name());
    cfg.merges.reserve(m->size());
    for (size_t i = 0; i < m->size(); ++i) {
      const json& e = (*m)[i];
      if (e.is_string()) {
        const std::string& s = e.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          c.at("merges").at(i).fail("expected \"a b\" (two tokens separated by one space), got \"" +
                                    s + "\"");
        cfg.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        cfg.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        c.at("merges").at(i).fail("expected \"a b\" or [\"a\", \"b\"]");
      }
    }
  }
  if (const json* u = jget(j, "unk_token")) {
    if (!u->is_string()) c.at("unk_token").fail("expected a string");
    cfg.unk_token = u->get<std::string>();
  }
  cfg.continuing_subword_prefix = jstring_or(j, "continuing_subword_prefix", "", c);
  cfg.end_of_word_suffix = jstring_or(j, "end_of_word_suffix", "", c);
  cfg.fuse_unk = jbool_or(j, "fuse_unk", false, c);
  cfg.byte_fallback = jbool_or(j, "byte_fallback", false, c);
  cfg.ignore_merges = jbool_or(j, "ignore_merges", false, c);
  return std::make_unique<BPE>(std::move(vocab), std::move(cfg), c);
}

}  // namespace ohm::tokenizers
