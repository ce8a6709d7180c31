// Decoders (HF tokenizers/src/decoders): ByteLevel, Metaspace, ByteFallback, Fuse, Strip,
// Replace, WordPiece, BPEDecoder, CTC, Sequence.
#include <unordered_map>

#include "internal.h"

namespace ohm::tokenizers {

const char32_t* byte_to_unicode_table();

namespace {

class ByteLevelDec : public Decoder {
 public:
  ByteLevelDec() {
    const char32_t* t = byte_to_unicode_table();
    for (int b = 0; b < 256; ++b) rev_[t[b]] = static_cast<uint8_t>(b);
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (auto& t : tokens) {
      size_t mark = bytes.size();
      bool ok = true;
      for (size_t i = 0; i < t.size();) {
        size_t n;
        char32_t c = utf8_decode(t.data() + i, &n);
        i += n;
        auto it = rev_.find(c);
        if (it == rev_.end()) {
          ok = false;
          break;
        }
        bytes.push_back(static_cast<char>(it->second));
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, sanitize_utf8(bytes));
  }

 private:
  std::unordered_map<char32_t, uint8_t> rev_;
};

class MetaspaceDec : public Decoder {
 public:
  MetaspaceDec(char32_t r, bool prepend) : r_(r), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      for (char32_t c : utf8_to_u32(tokens[i])) {
        if (c == r_) {
          if (!(i == 0 && prepend_)) out.push_back(' ');
        } else {
          utf8_append(out, c);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  char32_t r_;
  bool prepend_;
};

class ByteFallbackDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending))
        out.push_back(pending);
      else
        for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xEF\xBF\xBD");
      pending.clear();
    };
    for (auto& t : tokens) {
      auto hex = [](char ch) -> int {
        if (ch >= '0' && ch <= '9') return ch - '0';
        if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
        if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
        return -1;
      };
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) >= 0 &&
          hex(t[4]) >= 0) {
        pending.push_back(static_cast<char>(hex(t[3]) * 16 + hex(t[4])));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDec : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string s;
    for (auto& t : tokens) s += t;
    tokens.assign(1, std::move(s));
  }
};

class StripDec : public Decoder {
 public:
  StripDec(char32_t c, size_t start, size_t stop) : c_(c), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      auto chars = utf8_to_u32(t);
      size_t sc = 0;
      for (size_t i = 0; i < start_ && i < chars.size(); ++i) {
        if (chars[i] == c_)
          sc = i + 1;
        else
          break;
      }
      size_t ec = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        size_t idx = chars.size() - i - 1;
        if (chars[idx] == c_)
          ec = idx;
        else
          break;
      }
      std::string out;
      for (size_t i = sc; i < ec; ++i) utf8_append(out, chars[i]);
      t = std::move(out);
    }
  }

 private:
  char32_t c_;
  size_t start_, stop_;
};

class ReplaceDec : public Decoder {
 public:
  ReplaceDec(Pattern p, std::string content) : p_(std::move(p)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<Match> ms;
    for (auto& t : tokens) {
      p_.find_matches(t, ms);
      std::string out;
      for (auto& m : ms) {
        if (m.is_match)
          out += content_;
        else
          out.append(t, m.start, m.end - m.start);
      }
      t = std::move(out);
    }
  }

 private:
  Pattern p_;
  std::string content_;
};

std::string replace_all(const std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t m = s.find(from, pos);
    if (m == std::string::npos) break;
    out.append(s, pos, m - pos);
    out.append(to);
    pos = m + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

std::string wp_cleanup(std::string s) {
  s = replace_all(s, " .", ".");
  s = replace_all(s, " ?", "?");
  s = replace_all(s, " !", "!");
  s = replace_all(s, " ,", ",");
  s = replace_all(s, " ' ", "'");
  s = replace_all(s, " n't", "n't");
  s = replace_all(s, " 'm", "'m");
  s = replace_all(s, " do not", " don't");
  s = replace_all(s, " 's", "'s");
  s = replace_all(s, " 've", "'ve");
  s = replace_all(s, " 're", "'re");
  return s;
}

class WordPieceDec : public Decoder {
 public:
  WordPieceDec(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      auto& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0)
          t = t.substr(prefix_.size());
        else
          t.insert(t.begin(), ' ');
      }
      if (cleanup_) t = wp_cleanup(t);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class BpeDec : public Decoder {
 public:
  explicit BpeDec(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      tokens[i] = replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

class CtcDec : public Decoder {
 public:
  CtcDec(std::string pad, std::string delim, bool cleanup)
      : pad_(std::move(pad)), delim_(std::move(delim)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;
      std::string t = replace_all(tokens[i], pad_, "");
      if (cleanup_) t = replace_all(wp_cleanup(t), delim_, " ");
      if (!t.empty()) out.push_back(std::move(t));
    }
    tokens = std::move(out);
  }

 private:
  std::string pad_, delim_;
  bool cleanup_;
};

class SequenceDec : public Decoder {
 public:
  std::vector<std::unique_ptr<Decoder>> items;
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& d : items) d->decode_chain(tokens);
  }
};

char32_t one_char(const std::string& s, const JsonCtx& c) {
  auto v = utf8_to_u32(s);
  if (v.size() != 1) c.fail("expected a single character");
  return v[0];
}

}  // namespace

std::string clean_up_tokenization(std::string s) {
  s = replace_all(s, " .", ".");
  s = replace_all(s, " ?", "?");
  s = replace_all(s, " !", "!");
  s = replace_all(s, " ,", ",");
  s = replace_all(s, " ' ", "'");
  s = replace_all(s, " n't", "n't");
  s = replace_all(s, " 'm", "'m");
  s = replace_all(s, " 's", "'s");
  s = replace_all(s, " 've", "'ve");
  s = replace_all(s, " 're", "'re");
  return s;
}

std::unique_ptr<Decoder> make_decoder(const json& j, const JsonCtx& c) {
  std::string type = jtype(j, c);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDec>();
  if (type == "Metaspace") {
    char32_t r = one_char(jstring_or(j, "replacement", "\xE2\x96\x81", c), c.at("replacement"));
    std::string scheme = jstring_or(j, "prepend_scheme", "always", c);
    bool prepend = scheme != "never";
    if (const json* a = jget(j, "add_prefix_space"); a && a->is_boolean() && !a->get<bool>())
      prepend = false;
    return std::make_unique<MetaspaceDec>(r, prepend);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDec>();
  if (type == "Fuse") return std::make_unique<FuseDec>();
  if (type == "Strip")
    return std::make_unique<StripDec>(one_char(jstring(j, "content", c), c.at("content")),
                                      static_cast<size_t>(jint_or(j, "start", 0, c)),
                                      static_cast<size_t>(jint_or(j, "stop", 0, c)));
  if (type == "Replace") {
    const json* p = jget(j, "pattern");
    if (!p) c.at("pattern").fail("missing required field");
    return std::make_unique<ReplaceDec>(Pattern::from_json(*p, c.at("pattern").path),
                                        jstring(j, "content", c));
  }
  if (type == "WordPiece")
    return std::make_unique<WordPieceDec>(jstring_or(j, "prefix", "##", c),
                                          jbool_or(j, "cleanup", true, c));
  if (type == "BPEDecoder") return std::make_unique<BpeDec>(jstring_or(j, "suffix", "</w>", c));
  if (type == "CTC")
    return std::make_unique<CtcDec>(jstring_or(j, "pad_token", "<pad>", c),
                                    jstring_or(j, "word_delimiter_token", "|", c),
                                    jbool_or(j, "cleanup", true, c));
  if (type == "Sequence") {
    auto s = std::make_unique<SequenceDec>();
    const json* arr = jget(j, "decoders");
    if (!arr || !arr->is_array()) c.at("decoders").fail("expected an array");
    for (size_t i = 0; i < arr->size(); ++i)
      s->items.push_back(make_decoder((*arr)[i], c.at("decoders").at(i)));
    return s;
  }
  c.at("type").fail("unknown decoder type '" + type + "'");
}

}  // namespace ohm::tokenizers
