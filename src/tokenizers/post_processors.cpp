// Post-processors (HF tokenizers/src/processors): TemplateProcessing, ByteLevel (offset
// trimming), RobertaProcessing, BertProcessing, Sequence.
#include "internal.h"

namespace ohm::tokenizers {

const char32_t* byte_to_unicode_table();

namespace {

void append_enc(Encoding& dst, const Encoding& src) {
  dst.ids.insert(dst.ids.end(), src.ids.begin(), src.ids.end());
  dst.tokens.insert(dst.tokens.end(), src.tokens.begin(), src.tokens.end());
  dst.offsets.insert(dst.offsets.end(), src.offsets.begin(), src.offsets.end());
  dst.type_ids.insert(dst.type_ids.end(), src.type_ids.begin(), src.type_ids.end());
  dst.attention_mask.insert(dst.attention_mask.end(), src.attention_mask.begin(),
                            src.attention_mask.end());
  dst.special_tokens_mask.insert(dst.special_tokens_mask.end(), src.special_tokens_mask.begin(),
                                 src.special_tokens_mask.end());
  dst.word_ids.insert(dst.word_ids.end(), src.word_ids.begin(), src.word_ids.end());
}

void push_special(Encoding& e, int32_t id, const std::string& tok, uint32_t type_id) {
  e.ids.push_back(id);
  e.tokens.push_back(tok);
  e.offsets.emplace_back(0, 0);
  e.type_ids.push_back(type_id);
  e.attention_mask.push_back(1);
  e.special_tokens_mask.push_back(1);
  e.word_ids.push_back(-1);
}

void set_type(Encoding& e, uint32_t t) {
  std::fill(e.type_ids.begin(), e.type_ids.end(), t);
}

// HF byte_level::process_offsets.
void trim_offsets(Encoding& e, bool add_prefix_space) {
  std::string space;
  utf8_append(space, byte_to_unicode_table()[' ']);
  char32_t sp = byte_to_unicode_table()[' '];
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    auto chars = utf8_to_u32(e.tokens[i]);
    size_t lead = 0, trail = 0;
    while (lead < chars.size() && (chars[lead] == sp || is_whitespace(chars[lead]))) ++lead;
    while (trail < chars.size() && (chars[chars.size() - 1 - trail] == sp ||
                                    is_whitespace(chars[chars.size() - 1 - trail])))
      ++trail;
    auto& off = e.offsets[i];
    if (lead > 0) {
      bool is_first = i == 0 || off.first == 0;
      if (is_first && add_prefix_space && lead == 1) lead = 0;
      off.first = std::min(off.first + lead, off.second);
    }
    if (trail > 0 && off.second >= trail) off.second = std::max(off.second - trail, off.first);
  }
}

class ByteLevelPP : public PostProcessor {
 public:
  ByteLevelPP(bool trim, bool aps) : trim_(trim), aps_(aps) {}
  size_t added_tokens(bool) const override { return 0; }
  Encoding process(Encoding a, Encoding* b, bool) const override {
    if (trim_) {
      trim_offsets(a, aps_);
      if (b) trim_offsets(*b, aps_);
    }
    if (b) append_enc(a, *b);
    return a;
  }

 private:
  bool trim_, aps_;
};

struct Piece {
  bool is_special;
  std::string id;  // special token name, or "A"/"B"
  uint32_t type_id;
};

class Template : public PostProcessor {
 public:
  std::vector<Piece> single, pair;
  struct Special {
    std::vector<int32_t> ids;
    std::vector<std::string> tokens;
  };
  std::unordered_map<std::string, Special> specials;

  size_t count(const std::vector<Piece>& t) const {
    size_t n = 0;
    for (auto& p : t)
      if (p.is_special) n += specials.at(p.id).ids.size();
    return n;
  }
  size_t added_tokens(bool is_pair) const override { return count(is_pair ? pair : single); }
  Encoding process(Encoding a, Encoding* b, bool add_special) const override {
    if (!add_special) {
      if (b) append_enc(a, *b);
      return a;
    }
    Encoding out;
    for (auto& p : b ? pair : single) {
      if (p.is_special) {
        const Special& s = specials.at(p.id);
        for (size_t k = 0; k < s.ids.size(); ++k)
          push_special(out, s.ids[k], s.tokens[k], p.type_id);
      } else {
        Encoding& src = (p.id == "A" || !b) ? a : *b;
        Encoding tmp = src;
        set_type(tmp, p.type_id);
        append_enc(out, tmp);
      }
    }
    return out;
  }
};

class Roberta : public PostProcessor {
 public:
  std::pair<std::string, int32_t> sep, cls;
  bool trim = true, aps = true;
  size_t added_tokens(bool is_pair) const override { return is_pair ? 4 : 2; }
  Encoding process(Encoding a, Encoding* b, bool add_special) const override {
    if (trim) {
      trim_offsets(a, aps);
      if (b) trim_offsets(*b, aps);
    }
    if (!add_special) {
      if (b) append_enc(a, *b);
      return a;
    }
    Encoding out;
    push_special(out, cls.second, cls.first, 0);
    set_type(a, 0);
    append_enc(out, a);
    push_special(out, sep.second, sep.first, 0);
    if (b) {
      push_special(out, sep.second, sep.first, 0);
      set_type(*b, 0);
      append_enc(out, *b);
      push_special(out, sep.second, sep.first, 0);
    }
    return out;
  }
};

class Bert : public PostProcessor {
 public:
  std::pair<std::string, int32_t> sep, cls;
  size_t added_tokens(bool is_pair) const override { return is_pair ? 3 : 2; }
  Encoding process(Encoding a, Encoding* b, bool add_special) const override {
    if (!add_special) {
      if (b) append_enc(a, *b);
      return a;
    }
    Encoding out;
    push_special(out, cls.second, cls.first, 0);
    set_type(a, 0);
    append_enc(out, a);
    push_special(out, sep.second, sep.first, 0);
    if (b) {
      set_type(*b, 1);
      append_enc(out, *b);
      push_special(out, sep.second, sep.first, 1);
    }
    return out;
  }
};

class SequencePP : public PostProcessor {
 public:
  std::vector<std::unique_ptr<PostProcessor>> items;
  size_t added_tokens(bool is_pair) const override {
    size_t n = 0;
    for (auto& p : items) n += p->added_tokens(is_pair);
    return n;
  }
  Encoding process(Encoding a, Encoding* b, bool add_special) const override {
    // HF applies each processor to the list of encodings; the pair is merged at the end.
    // Processors that only edit offsets (ByteLevel) keep the pair separate.
    for (size_t i = 0; i < items.size(); ++i) {
      bool last = i + 1 == items.size();
      if (b && !last) {
        Encoding bb = *b;
        a = items[i]->process(std::move(a), nullptr, add_special);
        bb = items[i]->process(std::move(bb), nullptr, add_special);
        *b = std::move(bb);
      } else {
        a = items[i]->process(std::move(a), b, add_special);
        b = nullptr;
      }
    }
    return a;
  }
};

std::pair<std::string, int32_t> tok_pair(const json& j, const char* key, const JsonCtx& c) {
  const json* v = jget(j, key);
  if (!v || !v->is_array() || v->size() != 2 || !(*v)[0].is_string() ||
      !(*v)[1].is_number_integer())
    c.at(key).fail("expected [token, id]");
  return {(*v)[0].get<std::string>(), static_cast<int32_t>((*v)[1].get<int64_t>())};
}

std::vector<Piece> parse_template(const json& j, const JsonCtx& c) {
  std::vector<Piece> out;
  if (j.is_string()) {
    // "[CLS] $A [SEP]" / "$B:1" / "[SEP]:1"
    std::string s = j.get<std::string>();
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && s[i] == ' ') ++i;
      size_t e = s.find(' ', i);
      if (e == std::string::npos) e = s.size();
      std::string w = s.substr(i, e - i);
      i = e;
      if (w.empty()) continue;
      uint32_t type = 0;
      size_t colon = w.rfind(':');
      if (colon != std::string::npos && colon + 1 < w.size() &&
          w.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
        type = static_cast<uint32_t>(std::stoul(w.substr(colon + 1)));
        w = w.substr(0, colon);
      }
      if (w[0] == '$') {
        std::string id = w.size() == 1 ? "A" : w.substr(1);
        if (id != "A" && id != "B") {
          if (id.find_first_not_of("0123456789") == std::string::npos) {
            type = static_cast<uint32_t>(std::stoul(id));
            id.assign(1, 'A');
          } else {
            c.fail("invalid template piece '" + w + "'");
          }
        }
        out.push_back({false, id, type});
      } else {
        out.push_back({true, w, type});
      }
    }
    return out;
  }
  if (!j.is_array()) c.fail("expected an array of template pieces");
  for (size_t i = 0; i < j.size(); ++i) {
    const json& p = j[i];
    JsonCtx pc = c.at(i);
    if (const json* sp = jget(p, "SpecialToken")) {
      out.push_back({true, jstring(*sp, "id", pc.at("SpecialToken")),
                     static_cast<uint32_t>(jint_or(*sp, "type_id", 0, pc.at("SpecialToken")))});
    } else if (const json* sq = jget(p, "Sequence")) {
      std::string id = jstring(*sq, "id", pc.at("Sequence"));
      if (id != "A" && id != "B") pc.at("Sequence").at("id").fail("expected \"A\" or \"B\"");
      out.push_back(
          {false, id, static_cast<uint32_t>(jint_or(*sq, "type_id", 0, pc.at("Sequence")))});
    } else {
      pc.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& j, const JsonCtx& c,
                                                   const Model& model) {
  std::string type = jtype(j, c);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPP>(jbool_or(j, "trim_offsets", true, c),
                                         jbool_or(j, "add_prefix_space", true, c));
  if (type == "TemplateProcessing") {
    auto t = std::make_unique<Template>();
    if (const json* st = jget(j, "special_tokens")) {
      if (!st->is_object()) c.at("special_tokens").fail("expected an object");
      for (auto it = st->begin(); it != st->end(); ++it) {
        JsonCtx sc = c.at("special_tokens").at(it.key());
        Template::Special s;
        const json* ids = jget(it.value(), "ids");
        const json* toks = jget(it.value(), "tokens");
        if (!ids || !ids->is_array()) sc.at("ids").fail("expected an array of ids");
        if (!toks || !toks->is_array() || toks->size() != ids->size())
          sc.at("tokens").fail("expected an array of tokens as long as ids");
        for (size_t k = 0; k < ids->size(); ++k) {
          if (!(*ids)[k].is_number_integer()) sc.at("ids").at(k).fail("expected an integer");
          s.ids.push_back(static_cast<int32_t>((*ids)[k].get<int64_t>()));
          s.tokens.push_back((*toks)[k].get<std::string>());
        }
        t->specials[jstring_or(it.value(), "id", it.key(), sc)] = std::move(s);
      }
    }
    const json* single = jget(j, "single");
    if (!single) c.at("single").fail("missing required field");
    t->single = parse_template(*single, c.at("single"));
    if (const json* pair = jget(j, "pair"))
      t->pair = parse_template(*pair, c.at("pair"));
    else
      t->pair = t->single;
    for (auto* tp : {&t->single, &t->pair})
      for (auto& p : *tp)
        if (p.is_special && !t->specials.count(p.id)) {
          // A bare token name: resolve through the model vocabulary.
          auto id = model.token_to_id(p.id);
          if (!id)
            c.at("special_tokens")
                .fail("template uses special token '" + p.id + "' which is not defined");
          t->specials[p.id] = Template::Special{{*id}, {p.id}};
        }
    return t;
  }
  if (type == "RobertaProcessing") {
    auto r = std::make_unique<Roberta>();
    r->sep = tok_pair(j, "sep", c);
    r->cls = tok_pair(j, "cls", c);
    r->trim = jbool_or(j, "trim_offsets", true, c);
    r->aps = jbool_or(j, "add_prefix_space", true, c);
    return r;
  }
  if (type == "BertProcessing") {
    auto r = std::make_unique<Bert>();
    r->sep = tok_pair(j, "sep", c);
    r->cls = tok_pair(j, "cls", c);
    return r;
  }
  if (type == "Sequence") {
    auto s = std::make_unique<SequencePP>();
    const json* arr = jget(j, "processors");
    if (!arr || !arr->is_array()) c.at("processors").fail("expected an array");
    for (size_t i = 0; i < arr->size(); ++i)
      s->items.push_back(make_post_processor((*arr)[i], c.at("processors").at(i), model));
    return s;
  }
  c.at("type").fail("unknown post_processor type '" + type + "'");
}

}  // namespace ohm::tokenizers
