// Normalizers (HF tokenizers/src/normalizers): NFC/NFD/NFKC/NFKD, Lowercase, Strip,
// StripAccents, Replace, Prepend, BertNormalizer, ByteLevel, Precompiled (precompiled.cpp),
// Sequence.
#include "internal.h"

namespace ohm::tokenizers {

std::unique_ptr<Normalizer> make_precompiled(const std::string& b64, const JsonCtx& c);

namespace {

class UnicodeNf : public Normalizer {
 public:
  explicit UnicodeNf(int form) : form_(form) {}
  void normalize(NormalizedString& s) const override { s.unicode_normalize(form_); }

 private:
  int form_;
};

class Lowercase : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override { s.lowercase(); }
};

class Strip : public Normalizer {
 public:
  Strip(bool l, bool r) : l_(l), r_(r) {}
  void normalize(NormalizedString& s) const override { s.strip(l_, r_); }

 private:
  bool l_, r_;
};

class StripAccents : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    s.filter([](char32_t c) { return !is_mark(c); });
  }
};

class Replace : public Normalizer {
 public:
  Replace(Pattern p, std::string content) : p_(std::move(p)), content_(std::move(content)) {}
  void normalize(NormalizedString& s) const override { s.replace(p_, content_); }

 private:
  Pattern p_;
  std::string content_;
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(std::string p) : p_(std::move(p)) {}
  void normalize(NormalizedString& s) const override {
    if (!s.empty()) s.prepend(p_);
  }

 private:
  std::string p_;
};

bool bert_is_whitespace(char32_t c) {
  return c == '\t' || c == '\n' || c == '\r' || is_whitespace(c);
}
bool bert_is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return is_other(c);
}
bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean, bool chinese, std::optional<bool> strip, bool lower)
      : clean_(clean), chinese_(chinese), strip_(strip), lower_(lower) {}
  void normalize(NormalizedString& s) const override {
    if (clean_) {
      s.filter([](char32_t c) { return !(c == 0 || c == 0xFFFD || bert_is_control(c)); });
      s.map([](char32_t c) { return bert_is_whitespace(c) ? char32_t(' ') : c; });
    }
    if (chinese_) {
      std::vector<std::pair<char32_t, int>> tr;
      bool any = false;
      for (char32_t c : utf8_to_u32(s.get())) {
        if (is_chinese_char(c)) {
          tr.emplace_back(' ', 0);
          tr.emplace_back(c, 1);
          tr.emplace_back(' ', 1);
          any = true;
        } else {
          tr.emplace_back(c, 0);
        }
      }
      if (any) s.transform(tr, 0);
    }
    if (strip_.value_or(lower_)) {
      s.unicode_normalize(1);
      s.filter([](char32_t c) { return std::string_view(category(c)) != "Mn"; });
    }
    if (lower_) s.lowercase();
  }

 private:
  bool clean_, chinese_;
  std::optional<bool> strip_;
  bool lower_;
};

// GPT-2 bytes_to_unicode map (also used by the ByteLevel pre-tokenizer).
class ByteLevelNormalizer : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override;
};

class SequenceNormalizer : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> items;
  void normalize(NormalizedString& s) const override {
    for (auto& n : items) n->normalize(s);
  }
};

}  // namespace

const char32_t* byte_to_unicode_table();

void ByteLevelNormalizer::normalize(NormalizedString& s) const {
  const char32_t* t = byte_to_unicode_table();
  std::vector<std::pair<char32_t, int>> tr;
  const std::string& str = s.get();
  for (size_t i = 0; i < str.size();) {
    size_t n = utf8_len(static_cast<unsigned char>(str[i]));
    for (size_t k = 0; k < n; ++k)
      tr.emplace_back(t[static_cast<unsigned char>(str[i + k])], k > 0 ? 1 : 0);
    i += n;
  }
  s.transform(tr, 0);
}

std::unique_ptr<Normalizer> make_normalizer(const json& j, const JsonCtx& c) {
  std::string type = jtype(j, c);
  if (type == "NFC") return std::make_unique<UnicodeNf>(0);
  if (type == "NFD") return std::make_unique<UnicodeNf>(1);
  if (type == "NFKC") return std::make_unique<UnicodeNf>(2);
  if (type == "NFKD") return std::make_unique<UnicodeNf>(3);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Strip")
    return std::make_unique<Strip>(jbool_or(j, "strip_left", true, c),
                                   jbool_or(j, "strip_right", true, c));
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Replace") {
    const json* p = jget(j, "pattern");
    if (!p) c.at("pattern").fail("missing required field");
    return std::make_unique<Replace>(Pattern::from_json(*p, c.at("pattern").path),
                                     jstring(j, "content", c));
  }
  if (type == "Prepend") return std::make_unique<Prepend>(jstring(j, "prepend", c));
  if (type == "BertNormalizer") {
    std::optional<bool> strip;
    if (const json* v = jget(j, "strip_accents")) {
      if (!v->is_boolean()) c.at("strip_accents").fail("expected a boolean");
      strip = v->get<bool>();
    }
    return std::make_unique<BertNormalizer>(jbool_or(j, "clean_text", true, c),
                                            jbool_or(j, "handle_chinese_chars", true, c), strip,
                                            jbool_or(j, "lowercase", true, c));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Precompiled") {
    return make_precompiled(jstring_or(j, "precompiled_charsmap", "", c), c);
  }
  if (type == "Sequence") {
    auto seq = std::make_unique<SequenceNormalizer>();
    const json* arr = jget(j, "normalizers");
    if (!arr || !arr->is_array()) c.at("normalizers").fail("expected an array");
    for (size_t i = 0; i < arr->size(); ++i)
      seq->items.push_back(make_normalizer((*arr)[i], c.at("normalizers").at(i)));
    return seq;
  }
  c.at("type").fail("unknown normalizer type '" + type + "'");
}

}  // namespace ohm::tokenizers
