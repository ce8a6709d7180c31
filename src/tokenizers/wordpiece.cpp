// WordPiece (greedy longest-match-first with a continuing-subword prefix) and WordLevel models.
#include "internal.h"

namespace ohm::tokenizers {

namespace {

Vocab vocab_from_object(const json& j, const JsonCtx& c) {
  const json* v = jget(j, "vocab");
  if (!v) c.at("vocab").fail("missing required field");
  if (!v->is_object()) c.at("vocab").fail("expected an object");
  Vocab vocab;
  vocab.reserve(v->size());
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      c.at("vocab").at(it.key()).fail("expected a non-negative integer id");
    vocab.add(it.key(), static_cast<int32_t>(it.value().get<int64_t>()));
  }
  return vocab;
}

class WordPiece : public Model {
 public:
  WordPiece(Vocab v, std::string unk, std::string prefix, size_t max_chars)
      : vocab_(std::move(v)),
        unk_(std::move(unk)),
        prefix_(std::move(prefix)),
        max_chars_(max_chars) {}
  std::optional<int32_t> token_to_id(std::string_view t) const override {
    int32_t id = vocab_.find(t);
    if (id < 0) return std::nullopt;
    return id;
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  const char* kind() const override { return "WordPiece"; }

  int32_t unk_id() const {
    int32_t id = vocab_.find(unk_);
    if (id < 0)
      throw FormatError(ErrorContext().key("model.unk_token"),
                        "unk_token '" + unk_ + "' is not in the vocabulary");
    return id;
  }

  void tokenize(std::string_view s, std::vector<Token>& out) const override {
    if (utf8_count(s) > max_chars_) {
      out.push_back({unk_id(), 0, static_cast<uint32_t>(s.size())});
      return;
    }
    size_t mark = out.size();
    size_t start = 0;
    std::string buf;
    while (start < s.size()) {
      size_t end = s.size();
      int32_t found = -1;
      while (start < end) {
        std::string_view sub = s.substr(start, end - start);
        int32_t id;
        if (start > 0) {
          buf = prefix_;
          buf.append(sub);
          id = vocab_.find(buf);
        } else {
          id = vocab_.find(sub);
        }
        if (id >= 0) {
          found = id;
          break;
        }
        size_t e = end - 1;
        while (e > start && (static_cast<unsigned char>(s[e]) & 0xC0) == 0x80) --e;
        end = e;
      }
      if (found < 0) {
        out.resize(mark);
        out.push_back({unk_id(), 0, static_cast<uint32_t>(s.size())});
        return;
      }
      out.push_back({found, static_cast<uint32_t>(start), static_cast<uint32_t>(end)});
      start = end;
    }
  }

 private:
  Vocab vocab_;
  std::string unk_, prefix_;
  size_t max_chars_;
};

class WordLevel : public Model {
 public:
  WordLevel(Vocab v, std::string unk) : vocab_(std::move(v)), unk_(std::move(unk)) {}
  std::optional<int32_t> token_to_id(std::string_view t) const override {
    int32_t id = vocab_.find(t);
    if (id < 0) return std::nullopt;
    return id;
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.size(); }
  const char* kind() const override { return "WordLevel"; }
  void tokenize(std::string_view s, std::vector<Token>& out) const override {
    int32_t id = vocab_.find(s);
    if (id < 0) id = vocab_.find(unk_);
    if (id < 0)
      throw FormatError(ErrorContext().key("model.unk_token"),
                        "unk_token '" + unk_ + "' is not in the vocabulary");
    out.push_back({id, 0, static_cast<uint32_t>(s.size())});
  }

 private:
  Vocab vocab_;
  std::string unk_;
};

}  // namespace

std::unique_ptr<Model> make_wordpiece(std::vector<std::string> vocab, std::string unk,
                                      std::string prefix, size_t max_chars) {
  Vocab v;
  v.reserve(vocab.size());
  for (size_t i = 0; i < vocab.size(); ++i) v.add(vocab[i], static_cast<int32_t>(i));
  return std::make_unique<WordPiece>(std::move(v), std::move(unk), std::move(prefix), max_chars);
}

std::unique_ptr<Model> make_unigram_json(const json& j, const JsonCtx& c);

std::unique_ptr<Model> make_model(const json& j, const JsonCtx& c) {
  return make_model(j, c, nullptr);
}

std::unique_ptr<Model> make_model(const json& j, const JsonCtx& c, StreamedBpe* pre) {
  if (!j.is_object()) c.fail("expected an object");
  std::string type;
  if (const json* t = jget(j, "type")) {
    if (!t->is_string()) c.at("type").fail("expected a string");
    type = t->get<std::string>();
  } else {
    // Old serializations omit the type: infer it like HF's untagged deserializer.
    if (jget(j, "merges"))
      type = "BPE";
    else if (jget(j, "vocab") && jget(j, "vocab")->is_array())
      type = "Unigram";
    else if (jget(j, "continuing_subword_prefix"))
      type = "WordPiece";
    else if (jget(j, "vocab"))
      type = "WordLevel";
    else
      c.at("type").fail("missing required field");
  }
  if (type == "BPE") return make_bpe_json(j, c, pre);
  if (type == "Unigram") return make_unigram_json(j, c);
  if (type == "WordPiece")
    return std::make_unique<WordPiece>(
        vocab_from_object(j, c), jstring_or(j, "unk_token", "[UNK]", c),
        jstring_or(j, "continuing_subword_prefix", "##", c),
        static_cast<size_t>(jint_or(j, "max_input_chars_per_word", 100, c)));
  if (type == "WordLevel")
    return std::make_unique<WordLevel>(vocab_from_object(j, c),
                                       jstring_or(j, "unk_token", "<unk>", c));
  c.at("type").fail("unknown model type '" + type + "'");
}

}  // namespace ohm::tokenizers
