// tokenizer.json parsing with nlohmann's SAX interface: the document is built as a DOM except a
// BPE model's "vocab" and "merges", which go straight into a Vocab and a MergeList. A 128k-vocab
// file then never holds ~400k small JSON nodes (the DOM of vocab + merges was most of the peak
// memory of loading). Strictness is that of ohm::parse_json_text: duplicate keys and invalid UTF-8
// are rejected; errors name the file and, for vocab / merges entries, the JSON path.
#include <algorithm>
#include <set>

#include "internal.h"

namespace ohm::tokenizers {

namespace {

class TokenizerSax {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  TokenizerSax(const std::string& name, StreamedBpe& out) : name_(name), out_(out) {}

  json root;

  bool null() { return value(nullptr); }
  bool boolean(bool v) { return value(v); }
  bool number_integer(number_integer_t v) {
    if (mode_ == Mode::Vocab) {
      if (v < 0) vocab_fail();
      return vocab_id(static_cast<uint64_t>(v));
    }
    return value(v);
  }
  bool number_unsigned(number_unsigned_t v) {
    if (mode_ == Mode::Vocab) return vocab_id(v);
    return value(v);
  }
  bool number_float(number_float_t v, const string_t&) { return value(v); }
  bool binary(binary_t& v) { return value(std::move(v)); }
  bool string(string_t& v) {
    if (mode_ == Mode::Merges) {
      size_t sp = v.find(' ');
      if (sp == std::string::npos || v.find(' ', sp + 1) != std::string::npos)
        merges_ctx().fail("expected \"a b\" (two tokens separated by one space), got \"" + v +
                          "\"");
      out_.merges.emplace_back(std::string_view(v).substr(0, sp),
                               std::string_view(v).substr(sp + 1));
      ++merge_index_;
      return true;
    }
    if (mode_ == Mode::MergePair) {
      if (pair_n_ >= 2) pair_fail();
      pair_[pair_n_++] = std::move(v);
      return true;
    }
    if (capture_type_) model_type_ = v;
    return value(std::move(v));
  }
  bool start_object(std::size_t) {
    if (mode_ == Mode::Expect && expect_ == Mode::Vocab) {
      mode_ = Mode::Vocab;
      return true;
    }
    json* v = value(json::value_t::object);
    stack_.push_back(v);
    keys_.emplace_back();
    if (pending_model_) model_depth_ = stack_.size();
    pending_model_ = false;
    return true;
  }
  bool key(string_t& k) {
    if (mode_ == Mode::Vocab) {
      vocab_key_ = std::move(k);
      return true;
    }
    if (!keys_.back().insert(k).second)
      throw FormatError(ErrorContext().file(name_).key(k), "duplicate key in tokenizer JSON");
    pending_model_ = stack_.size() == 1 && k == "model";
    bool in_model = model_depth_ != 0 && stack_.size() == model_depth_;
    capture_type_ = in_model && k == "type";
    if (in_model && model_type_ == "BPE" && (k == "vocab" || k == "merges")) {
      mode_ = Mode::Expect;
      expect_ = k == "vocab" ? Mode::Vocab : Mode::Merges;
    }
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::Dom;
      out_.have_vocab = true;
      return true;
    }
    if (stack_.size() == model_depth_) model_depth_ = 0;
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    if (mode_ == Mode::Expect && expect_ == Mode::Merges) {
      mode_ = Mode::Merges;
      merge_index_ = 0;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::MergePair;
      pair_n_ = 0;
      return true;
    }
    if (mode_ == Mode::MergePair) pair_fail();
    if (mode_ == Mode::Vocab) vocab_fail();
    json* v = value(json::value_t::array);
    stack_.push_back(v);
    return true;
  }
  bool end_array() {
    if (mode_ == Mode::MergePair) {
      if (pair_n_ != 2) pair_fail();
      out_.merges.emplace_back(pair_[0], pair_[1]);
      ++merge_index_;
      mode_ = Mode::Merges;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::Dom;
      out_.have_merges = true;
      return true;
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    throw FormatError(ErrorContext().file(name_),
                      std::string("invalid tokenizer JSON: ") + e.what());
  }

 private:
  enum class Mode { Dom, Expect, Vocab, Merges, MergePair };

  // Adds a value to the DOM (or fails inside a streamed section).
  template <class V>
  json* value(V&& v) {
    if (mode_ == Mode::Vocab) vocab_fail();
    if (mode_ == Mode::Merges || mode_ == Mode::MergePair) pair_fail();
    if (mode_ == Mode::Expect) mode_ = Mode::Dom;  // not the expected container: keep as DOM
    capture_type_ = false;
    if (stack_.empty()) {
      root = json(std::forward<V>(v));
      return &root;
    }
    json* top = stack_.back();
    if (top->is_array()) {
      top->emplace_back(std::forward<V>(v));
      return &top->back();
    }
    json& slot = (*top)[key_];
    slot = json(std::forward<V>(v));
    return &slot;
  }
  bool vocab_id(uint64_t id) {
    if (id > static_cast<uint64_t>(INT32_MAX)) vocab_fail();
    if (out_.vocab.find(vocab_key_) >= 0)
      throw FormatError(ErrorContext().file(name_).key(vocab_key_),
                        "duplicate key in tokenizer JSON");
    out_.vocab.add(vocab_key_, static_cast<int32_t>(id));
    return true;
  }
  [[noreturn]] void vocab_fail() const {
    JsonCtx{name_, "model.vocab"}.at(vocab_key_).fail("expected a non-negative integer id");
  }
  JsonCtx merges_ctx() const { return JsonCtx{name_, "model.merges"}.at(merge_index_); }
  [[noreturn]] void pair_fail() const { merges_ctx().fail("expected \"a b\" or [\"a\", \"b\"]"); }

  const std::string& name_;
  StreamedBpe& out_;
  std::vector<json*> stack_;
  std::vector<std::set<std::string>> keys_;
  std::string key_;
  bool pending_model_ = false, capture_type_ = false;
  size_t model_depth_ = 0;
  std::string model_type_;
  Mode mode_ = Mode::Dom, expect_ = Mode::Dom;
  std::string vocab_key_;
  size_t merge_index_ = 0;
  std::string pair_[2];
  int pair_n_ = 0;
};

// The fast path: a hand-written scanner walks the top-level and "model" objects and reads a BPE
// vocab / merges directly (most of the bytes of a large file); every other value is located by a
// skipper (which rejects duplicate keys) and parsed by nlohmann. Anything the scanner does not
// accept (syntax errors, invalid UTF-8, odd layouts) falls back to the SAX parser above, which
// gives nlohmann's messages.
struct ScanError {};

class Scanner {
 public:
  Scanner(std::string_view t, const std::string& name, StreamedBpe& out)
      : t_(t), name_(name), out_(out) {}

  json document() {
    json root = json::object();
    object([&](const std::string& key) {
      if (key == "model" && peek() == '{')
        root[key] = model();
      else
        root[key] = value();
    });
    ws();
    if (p_ != t_.size()) throw ScanError{};
    return root;
  }

 private:
  char peek() {
    ws();
    if (p_ >= t_.size()) throw ScanError{};
    return t_[p_];
  }
  void expect(char c) {
    if (peek() != c) throw ScanError{};
    ++p_;
  }
  void ws() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t'))
      ++p_;
  }
  // { "key": <on_value>, ... } with duplicate keys rejected.
  template <class F>
  void object(F on_value, bool check_keys = true) {
    expect('{');
    std::set<std::string> keys;
    if (peek() == '}') {
      ++p_;
      return;
    }
    std::string key;
    while (true) {
      string(key);
      if (check_keys && !keys.insert(key).second)
        throw FormatError(ErrorContext().file(name_).key(key), "duplicate key in tokenizer JSON");
      expect(':');
      on_value(key);
      char c = peek();
      ++p_;
      if (c == '}') return;
      if (c != ',') throw ScanError{};
    }
  }
  json model() {
    json m = json::object();
    std::string type;
    object([&](const std::string& key) {
      if (type == "BPE" && key == "vocab" && peek() == '{') {
        vocab();
      } else if (type == "BPE" && key == "merges" && peek() == '[') {
        merges();
      } else {
        m[key] = value();
        if (key == "type" && m[key].is_string()) type = m[key].get<std::string>();
      }
    });
    return m;
  }
  void vocab() {
    std::string key;
    Vocab& v = out_.vocab;
    object(
        [&](const std::string& k) {
          key = k;
          ws();
          size_t b = p_;
          uint64_t id = 0;
          while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9' && id <= INT32_MAX)
            id = id * 10 + static_cast<uint64_t>(t_[p_++] - '0');
          bool bad = p_ == b || id > INT32_MAX || (t_[b] == '0' && p_ - b > 1) ||
                     (p_ < t_.size() && (t_[p_] == '.' || t_[p_] == 'e' || t_[p_] == 'E'));
          if (bad) {
            p_ = b;
            value();  // a syntax error falls back; a valid non-id value is reported here
            JsonCtx{name_, "model.vocab"}.at(key).fail("expected a non-negative integer id");
          }
          if (v.find(key) >= 0)
            throw FormatError(ErrorContext().file(name_).key(key),
                              "duplicate key in tokenizer JSON");
          v.add(key, static_cast<int32_t>(id));
        },
        /*check_keys=*/false);  // the Vocab itself finds duplicates
    out_.have_vocab = true;
  }
  void merges() {
    expect('[');
    size_t i = 0;
    std::string a, b;
    auto bad = [&] {
      JsonCtx{name_, "model.merges"}.at(i).fail("expected \"a b\" or [\"a\", \"b\"]");
    };
    if (peek() == ']') {
      ++p_;
      out_.have_merges = true;
      return;
    }
    while (true) {
      char c = peek();
      if (c == '"') {
        string(a);
        size_t sp = a.find(' ');
        if (sp == std::string::npos || a.find(' ', sp + 1) != std::string::npos)
          JsonCtx{name_, "model.merges"}.at(i).fail(
              "expected \"a b\" (two tokens separated by one space), got \"" + a + "\"");
        out_.merges.emplace_back(std::string_view(a).substr(0, sp),
                                 std::string_view(a).substr(sp + 1));
      } else if (c == '[') {
        ++p_;
        if (peek() != '"') {
          value_rest_of_array();
          bad();
        }
        string(a);
        if (peek() != ',') {
          value_rest_of_array();
          bad();
        }
        ++p_;
        if (peek() != '"') {
          value_rest_of_array();
          bad();
        }
        string(b);
        if (peek() != ']') {
          value_rest_of_array();
          bad();
        }
        ++p_;
        out_.merges.emplace_back(a, b);
      } else {
        value();
        bad();
      }
      ++i;
      c = peek();
      ++p_;
      if (c == ']') break;
      if (c != ',') throw ScanError{};
    }
    out_.have_merges = true;
  }
  // After a malformed merge pair: the rest must still be valid JSON for the error to stand.
  void value_rest_of_array() {
    while (peek() != ']') {
      if (t_[p_] == ',') ++p_;
      value();
    }
    ++p_;
  }
  // A JSON string (p_ at the opening quote) into `out`, UTF-8 checked.
  void string(std::string& out) {
    expect('"');
    out.clear();
    while (true) {
      size_t q = p_;
      while (q < t_.size() && t_[q] != '"' && t_[q] != '\\' &&
             static_cast<unsigned char>(t_[q]) >= 0x20)
        ++q;
      if (q >= t_.size() || static_cast<unsigned char>(t_[q]) < 0x20) throw ScanError{};
      out.append(t_.substr(p_, q - p_));
      p_ = q + 1;
      if (t_[q] == '"') break;
      if (p_ >= t_.size()) throw ScanError{};
      char e = t_[p_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          char32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (p_ + 2 > t_.size() || t_[p_] != '\\' || t_[p_ + 1] != 'u') throw ScanError{};
            p_ += 2;
            char32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) throw ScanError{};
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            throw ScanError{};
          }
          utf8_append(out, cp);
          break;
        }
        default:
          throw ScanError{};
      }
    }
    if (!is_valid_utf8(out)) throw ScanError{};
  }
  char32_t hex4() {
    if (p_ + 4 > t_.size()) throw ScanError{};
    char32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[p_++];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) throw ScanError{};
      v = v * 16 + static_cast<char32_t>(d);
    }
    return v;
  }
  // Any value: its extent is found by skipping, then it is parsed (strictly) by nlohmann.
  // Any value: its extent is found by skip() (which also rejects duplicate keys), then nlohmann
  // parses it (it rejects malformed text and invalid UTF-8; those go to the fallback parser).
  json value() {
    ws();
    size_t b = p_;
    skip();
    json j = json::parse(t_.substr(b, p_ - b), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw ScanError{};
    return j;
  }
  void skip() {
    struct Level {
      bool object, expect_key;
      std::vector<std::string_view> keys;  // raw (escaped) text
    };
    std::vector<Level> st;
    do {
      char c = peek();
      if (c == '"') {
        size_t s0 = ++p_;
        while (p_ < t_.size() && t_[p_] != '"') p_ += t_[p_] == '\\' ? 2 : 1;
        if (p_ >= t_.size()) throw ScanError{};
        if (!st.empty() && st.back().object && st.back().expect_key) {
          st.back().keys.push_back(t_.substr(s0, p_ - s0));
          st.back().expect_key = false;
        }
        ++p_;
      } else if (c == '{' || c == '[') {
        st.push_back({c == '{', c == '{', {}});
        ++p_;
      } else if (c == '}' || c == ']') {
        if (st.empty()) throw ScanError{};
        auto& k = st.back().keys;
        if (k.size() > 1) {
          std::sort(k.begin(), k.end());
          auto d = std::adjacent_find(k.begin(), k.end());
          if (d != k.end())
            throw FormatError(ErrorContext().file(name_).key(std::string(*d)),
                              "duplicate key in tokenizer JSON");
        }
        st.pop_back();
        ++p_;
      } else if (c == ',' || c == ':') {
        if (st.empty()) throw ScanError{};
        if (c == ',' && st.back().object) st.back().expect_key = true;
        ++p_;
      } else {
        size_t b = p_;
        while (p_ < t_.size() && t_[p_] != ',' && t_[p_] != '}' && t_[p_] != ']' && t_[p_] != ' ' &&
               t_[p_] != '\n' && t_[p_] != '\r' && t_[p_] != '\t' && t_[p_] != ':' &&
               t_[p_] != '"' && t_[p_] != '{' && t_[p_] != '[')
          ++p_;
        if (p_ == b) throw ScanError{};
      }
    } while (!st.empty());
  }

  std::string_view t_;
  size_t p_ = 0;
  const std::string& name_;
  StreamedBpe& out_;
};

}  // namespace

json parse_tokenizer_json(std::string_view text, const std::string& name, StreamedBpe& out) {
  try {
    return Scanner(text, name, out).document();
  } catch (const ScanError&) {
    out = StreamedBpe{};
  }
  TokenizerSax sax(name, out);
  json::sax_parse(text.begin(), text.end(), &sax);
  return std::move(sax.root);
}

}  // namespace ohm::tokenizers
