// Pre-tokenizers (HF tokenizers/src/pre_tokenizers): ByteLevel, Metaspace, Split, Whitespace,
// WhitespaceSplit, Punctuation, Digits, BertPreTokenizer, Sequence.
#include "internal.h"

namespace ohm::tokenizers {

const char32_t* byte_to_unicode_table() {
  static char32_t table[256];
  static bool init = [] {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      table[b] = direct ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
    }
    return true;
  }();
  (void)init;
  return table;
}

void PreTokenizer::pre_tokenize(PreTokenizedString& pts) const {
  pts.split([this](NormalizedString&& ns, std::vector<NormalizedString>& out) {
    split(std::move(ns), out);
  });
}

namespace {

using Behavior = NormalizedString::Behavior;

template <class Pred>
void char_matches(std::string_view s, Pred pred, std::vector<Match>& out) {
  out.clear();
  if (s.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  size_t last = 0;
  for (size_t i = 0; i < s.size();) {
    size_t n;
    char32_t c = utf8_decode(s.data() + i, &n);
    if (pred(c)) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + n, true});
      last = i + n;
    }
    i += n;
  }
  if (last < s.size()) out.push_back({last, s.size(), false});
}

bool bert_punc(char32_t c) {
  return (c < 0x80 && ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
                       (c >= 123 && c <= 126))) ||
         is_punctuation(c);
}

Behavior parse_behavior(const json& j, const char* key, Behavior def, const JsonCtx& c) {
  const json* v = jget(j, key);
  if (!v) return def;
  if (!v->is_string()) c.at(key).fail("expected a string");
  std::string b = v->get<std::string>();
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  c.at(key).fail("unknown split behavior '" + b + "'");
}

// GPT-2's pattern, as HF's ByteLevel uses it.
const char* kGpt2Re =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : aps_(add_prefix_space), use_regex_(use_regex) {
    if (use_regex_) re_ = Pattern::regex(kGpt2Re, "pre_tokenizer");
  }
  void split(NormalizedString&& ns, std::vector<NormalizedString>& out) const override {
    if (aps_ && (ns.empty() || ns.get()[0] != ' ')) ns.prepend(" ");
    if (use_regex_) {
      thread_local std::vector<Match> ms;
      re_.find_matches(ns.get(), ms);
      ns.split(ms, Behavior::Isolated, out);
    } else {
      out.push_back(std::move(ns));
    }
  }
  void pre_tokenize(PreTokenizedString& pts) const override {
    PreTokenizer::pre_tokenize(pts);
    const char32_t* t = byte_to_unicode_table();
    for (auto& s : pts.splits)
      if (!s.tokenized) s.ns.map_bytes(t);
  }
  bool add_prefix_space() const { return aps_; }
  bool use_regex() const { return use_regex_; }
  const Regex* regex() const { return re_.regex(); }

 private:
  bool aps_, use_regex_;
  Pattern re_;
};

class Metaspace : public PreTokenizer {
 public:
  enum Scheme { Always, First, Never };
  Metaspace(char32_t repl, Scheme scheme, bool split)
      : repl_(repl), scheme_(scheme), split_(split) {
    utf8_append(rep_str_, repl);
  }
  void split(NormalizedString&& ns, std::vector<NormalizedString>& out) const override {
    ns.replace_char(' ', rep_str_);
    bool starts = ns.get().compare(0, rep_str_.size(), rep_str_) == 0;
    if (scheme_ == Always && !starts) ns.prepend(rep_str_);
    if (scheme_ == First && !starts && ns.orig_start() == 0) ns.prepend(rep_str_);
    if (split_) {
      thread_local std::vector<Match> ms;
      char32_t r = repl_;
      char_matches(
          ns.get(), [r](char32_t c) { return c == r; }, ms);
      ns.split(ms, Behavior::MergedWithNext, out);
    } else {
      out.push_back(std::move(ns));
    }
  }

 private:
  char32_t repl_;
  Scheme scheme_;
  bool split_;
  std::string rep_str_;
};

class SplitPre : public PreTokenizer {
 public:
  SplitPre(Pattern p, Behavior b, bool invert) : p_(std::move(p)), b_(b), invert_(invert) {}
  void split(NormalizedString&& ns, std::vector<NormalizedString>& out) const override {
    thread_local std::vector<Match> ms;
    p_.find_matches(ns.get(), ms);
    if (invert_)
      for (auto& m : ms) m.is_match = !m.is_match;
    ns.split(ms, b_, out);
  }
  const Regex* regex() const { return p_.regex(); }
  Behavior behavior() const { return b_; }
  bool invert() const { return invert_; }

 private:
  Pattern p_;
  Behavior b_;
  bool invert_;
};

class Whitespace : public PreTokenizer {
 public:
  // HF's Whitespace runs `\w+|[^\w\s]+` on the Rust `regex` crate (not onig), whose Unicode \w is
  // UTS#18's: Alphabetic, M, Nd, Pc and Join_Control (ZWJ/ZWNJ), and \s is White_Space. Oniguruma's
  // own \w differs (no Join_Control, adds No), so spell the classes out.
  Whitespace()
      : re_(Pattern::regex(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+)"
                           R"(|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\p{White_Space}]+)",
                           "pre_tokenizer")) {}
  void split(NormalizedString&& ns, std::vector<NormalizedString>& out) const override {
    thread_local std::vector<Match> ms;
    re_.find_matches(ns.get(), ms);
    for (auto& m : ms) m.is_match = !m.is_match;
    ns.split(ms, Behavior::Removed, out);
  }

 private:
  Pattern re_;
};

template <class Pred>
class CharSplit : public PreTokenizer {
 public:
  CharSplit(Pred p, Behavior b) : p_(p), b_(b) {}
  void split(NormalizedString&& ns, std::vector<NormalizedString>& out) const override {
    thread_local std::vector<Match> ms;
    char_matches(ns.get(), p_, ms);
    ns.split(ms, b_, out);
  }

 private:
  Pred p_;
  Behavior b_;
};
template <class Pred>
std::unique_ptr<PreTokenizer> char_split(Pred p, Behavior b) {
  return std::make_unique<CharSplit<Pred>>(p, b);
}

class Sequence : public PreTokenizer {
 public:
  std::vector<std::unique_ptr<PreTokenizer>> items;
  void split(NormalizedString&& ns, std::vector<NormalizedString>& out) const override {
    out.push_back(std::move(ns));
  }
  void pre_tokenize(PreTokenizedString& pts) const override {
    for (auto& p : items) p->pre_tokenize(pts);
  }
};

}  // namespace

bool byte_level_split(const PreTokenizer& p, const Regex** re, bool* keep_gaps) {
  if (const auto* bl = dynamic_cast<const ByteLevel*>(&p)) {
    if (bl->add_prefix_space() || !bl->use_regex() || !bl->regex()) return false;
    *re = bl->regex();
    *keep_gaps = true;  // Isolated
    return true;
  }
  const auto* seq = dynamic_cast<const Sequence*>(&p);
  if (!seq || seq->items.size() != 2) return false;
  const auto* sp = dynamic_cast<const SplitPre*>(seq->items[0].get());
  const auto* bl = dynamic_cast<const ByteLevel*>(seq->items[1].get());
  if (!sp || !bl || bl->add_prefix_space() || bl->use_regex() || !sp->regex()) return false;
  if (sp->behavior() == Behavior::Isolated)
    *keep_gaps = true;  // matches and the text between them, inverted or not
  else if (sp->behavior() == Behavior::Removed && sp->invert())
    *keep_gaps = false;  // the matches only
  else
    return false;
  *re = sp->regex();
  return true;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const JsonCtx& c) {
  std::string type = jtype(j, c);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(jbool_or(j, "add_prefix_space", true, c),
                                       jbool_or(j, "use_regex", true, c));
  if (type == "Metaspace") {
    std::string rep = jstring_or(j, "replacement", "\xE2\x96\x81", c);
    auto chars = utf8_to_u32(rep);
    if (chars.size() != 1) c.at("replacement").fail("expected a single character");
    std::string scheme = jstring_or(j, "prepend_scheme", "always", c);
    Metaspace::Scheme sc = Metaspace::Always;
    if (scheme == "first")
      sc = Metaspace::First;
    else if (scheme == "never")
      sc = Metaspace::Never;
    else if (scheme != "always")
      c.at("prepend_scheme").fail("unknown prepend_scheme '" + scheme + "'");
    if (const json* a = jget(j, "add_prefix_space"); a && a->is_boolean() && !a->get<bool>()) {
      if (sc != Metaspace::Never && jget(j, "prepend_scheme"))
        c.at("add_prefix_space").fail("add_prefix_space does not match declared prepend_scheme");
      sc = Metaspace::Never;
    }
    return std::make_unique<Metaspace>(chars[0], sc, jbool_or(j, "split", true, c));
  }
  if (type == "Split") {
    const json* p = jget(j, "pattern");
    if (!p) c.at("pattern").fail("missing required field");
    const json* b = jget(j, "behavior");
    if (!b) c.at("behavior").fail("missing required field");
    return std::make_unique<SplitPre>(Pattern::from_json(*p, c.at("pattern").path),
                                      parse_behavior(j, "behavior", Behavior::Isolated, c),
                                      jbool_or(j, "invert", false, c));
  }
  if (type == "Whitespace") return std::make_unique<Whitespace>();
  if (type == "WhitespaceSplit")
    return char_split([](char32_t ch) { return is_whitespace(ch); }, Behavior::Removed);
  if (type == "Punctuation")
    return char_split(bert_punc, parse_behavior(j, "behavior", Behavior::Isolated, c));
  if (type == "Digits") {
    bool ind = jbool_or(j, "individual_digits", false, c);
    return char_split([](char32_t ch) { return is_numeric(ch); },
                      ind ? Behavior::Isolated : Behavior::Contiguous);
  }
  if (type == "CharDelimiterSplit") {
    auto d = utf8_to_u32(jstring(j, "delimiter", c));
    if (d.size() != 1) c.at("delimiter").fail("expected a single character");
    char32_t dc = d[0];
    return char_split([dc](char32_t ch) { return ch == dc; }, Behavior::Removed);
  }
  if (type == "BertPreTokenizer") {
    auto seq = std::make_unique<Sequence>();
    seq->items.push_back(
        char_split([](char32_t ch) { return is_whitespace(ch); }, Behavior::Removed));
    seq->items.push_back(char_split(bert_punc, Behavior::Isolated));
    return seq;
  }
  if (type == "Sequence") {
    auto seq = std::make_unique<Sequence>();
    const json* arr = jget(j, "pretokenizers");
    if (!arr || !arr->is_array()) c.at("pretokenizers").fail("expected an array");
    for (size_t i = 0; i < arr->size(); ++i)
      seq->items.push_back(make_pre_tokenizer((*arr)[i], c.at("pretokenizers").at(i)));
    return seq;
  }
  c.at("type").fail("unknown pre_tokenizer type '" + type + "'");
}

}  // namespace ohm::tokenizers
