// SentencePiece tokenizer.model (a protobuf ModelProto, read here with a minimal wire-format
// parser) mapped onto the tokenizer.json pipeline the way transformers 5 converts it:
//
//   SpmConversion::Proto  transformers' generic conversion (SpmConverter.
//                         build_tokenizer_from_spm_proto, what AutoTokenizer builds when the
//                         directory declares no tokenizer class): follows the normalizer spec
//                         (precompiled charsmap, extra-whitespace removal, dummy prefix, whitespace
//                         escaping), BPE merges ranked by piece score over NORMAL pieces only, or a
//                         Unigram model; encodes like sentencepiece's SentencePieceProcessor.
//   SpmConversion::Llama  transformers' LlamaTokenizer(Fast): no normalizer, Metaspace
//                         pre-tokenizer (prepend_scheme "always" when legacy, else "first"), BPE
//                         with merges from generate_merges (ranked by the merged piece's id),
//                         byte_fallback, control / user-defined pieces as added tokens.
//
// Only the ModelProto fields the conversion needs are read (pieces, trainer_spec, normalizer_spec);
// everything else is skipped by wire type.
#include <algorithm>
#include <cstring>

#include "internal.h"

namespace ohm::tokenizers {

std::unique_ptr<Normalizer> make_precompiled_bytes(const std::string& blob);

namespace {

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  const std::string* file;

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(ErrorContext().file(*file), "malformed SentencePiece model: " + what);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (shift > 63) fail("varint too long");
      if (p >= end) fail("truncated varint");
      uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) break;
    }
    return v;
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end - p)) fail("length past the end of the message");
    std::string_view s(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return s;
  }
  float fixed32_float() {
    if (end - p < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, p, 4);  // little-endian on every supported target
    p += 4;
    return f;
  }
  Reader sub() {
    std::string_view s = bytes();
    auto* b = reinterpret_cast<const uint8_t*>(s.data());
    return Reader{b, b + s.size(), file};
  }
  void skip(uint32_t wt) {
    switch (wt) {
      case 0:
        varint();
        break;
      case 1:
        if (end - p < 8) fail("truncated fixed64");
        p += 8;
        break;
      case 2:
        bytes();
        break;
      case 5:
        if (end - p < 4) fail("truncated fixed32");
        p += 4;
        break;
      default:
        fail("unsupported wire type " + std::to_string(wt));
    }
  }
  // Next (field, wire type); false at the end.
  bool next(uint32_t* field, uint32_t* wt) {
    if (p >= end) return false;
    uint64_t key = varint();
    *field = static_cast<uint32_t>(key >> 3);
    *wt = static_cast<uint32_t>(key & 7);
    return true;
  }
};

// sentencepiece_model.proto, with the proto2 defaults.
struct SpmModel {
  enum PieceType {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<uint8_t> types;
  // TrainerSpec
  int model_type = 1;  // UNIGRAM=1 BPE=2 WORD=3 CHAR=4
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
  // NormalizerSpec
  std::string charsmap;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

SpmModel parse_model(const std::string& data, const std::string& path) {
  auto* b = reinterpret_cast<const uint8_t*>(data.data());
  Reader r{b, b + data.size(), &path};
  SpmModel m;
  uint32_t f, w;
  while (r.next(&f, &w)) {
    if (f == 1 && w == 2) {  // repeated SentencePiece pieces
      Reader s = r.sub();
      std::string piece;
      float score = 0;
      uint64_t type = SpmModel::kNormal;
      uint32_t sf, sw;
      while (s.next(&sf, &sw)) {
        if (sf == 1 && sw == 2)
          piece = std::string(s.bytes());
        else if (sf == 2 && sw == 5)
          score = s.fixed32_float();
        else if (sf == 3 && sw == 0)
          type = s.varint();
        else
          s.skip(sw);
      }
      m.pieces.push_back(std::move(piece));
      m.scores.push_back(score);
      m.types.push_back(static_cast<uint8_t>(type <= 6 ? type : uint64_t{SpmModel::kNormal}));
    } else if (f == 2 && w == 2) {  // TrainerSpec
      Reader s = r.sub();
      uint32_t sf, sw;
      while (s.next(&sf, &sw)) {
        auto int32 = [&] { return static_cast<int32_t>(static_cast<uint32_t>(s.varint())); };
        if (sw == 0 && sf == 3)
          m.model_type = int32();
        else if (sw == 0 && sf == 24)
          m.treat_whitespace_as_suffix = s.varint() != 0;
        else if (sw == 0 && sf == 35)
          m.byte_fallback = s.varint() != 0;
        else if (sw == 0 && sf == 40)
          m.unk_id = int32();
        else if (sw == 0 && sf == 41)
          m.bos_id = int32();
        else if (sw == 0 && sf == 42)
          m.eos_id = int32();
        else if (sw == 0 && sf == 43)
          m.pad_id = int32();
        else if (sw == 2 && sf == 45)
          m.unk_piece = std::string(s.bytes());
        else if (sw == 2 && sf == 46)
          m.bos_piece = std::string(s.bytes());
        else if (sw == 2 && sf == 47)
          m.eos_piece = std::string(s.bytes());
        else if (sw == 2 && sf == 48)
          m.pad_piece = std::string(s.bytes());
        else
          s.skip(sw);
      }
    } else if (f == 3 && w == 2) {  // NormalizerSpec
      Reader s = r.sub();
      uint32_t sf, sw;
      while (s.next(&sf, &sw)) {
        if (sw == 2 && sf == 2)
          m.charsmap = std::string(s.bytes());
        else if (sw == 0 && sf == 3)
          m.add_dummy_prefix = s.varint() != 0;
        else if (sw == 0 && sf == 4)
          m.remove_extra_whitespaces = s.varint() != 0;
        else if (sw == 0 && sf == 5)
          m.escape_whitespaces = s.varint() != 0;
        else
          s.skip(sw);
      }
    } else {
      r.skip(w);
    }
  }
  if (m.pieces.empty()) r.fail("no pieces");
  return m;
}

// Split points of `t` at code-point boundaries (1..len-1 in Python's str indexing).
template <class F>
void for_each_split(std::string_view t, F f) {
  for (size_t k = 1; k < t.size(); ++k)
    if ((static_cast<unsigned char>(t[k]) & 0xC0) != 0x80) f(t.substr(0, k), t.substr(k));
}

// transformers' generate_merges(vocab) (SentencePieceExtractor, no scores): every split of every
// piece into two pieces, ordered by the merged piece's id, then by the left part's length.
MergeList llama_merges(const SpmModel& m, const Vocab& v) {
  MergeList out;
  for (const std::string& t : m.pieces)  // ids ascending; splits by increasing left length
    for_each_split(t, [&](std::string_view l, std::string_view r) {
      if (v.find(l) >= 0 && v.find(r) >= 0) out.emplace_back(l, r);
    });
  return out;
}

// SpmConverter.build_tokenizer_from_spm_proto: NORMAL pieces only, ranked by
// (-score, merged id, left, right).
MergeList proto_merges(const SpmModel& m, const Vocab& v) {
  struct R {
    float score;
    int32_t id;
    std::string_view l, r;
  };
  auto normal = [&](std::string_view s) {
    int32_t id = v.find(s);
    return id >= 0 && m.types[static_cast<size_t>(id)] == SpmModel::kNormal;
  };
  std::vector<R> ranked;
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    if (m.types[i] != SpmModel::kNormal || v.find(m.pieces[i]) != static_cast<int32_t>(i)) continue;
    for_each_split(m.pieces[i], [&](std::string_view l, std::string_view r) {
      if (normal(l) && normal(r)) ranked.push_back({m.scores[i], static_cast<int32_t>(i), l, r});
    });
  }
  std::sort(ranked.begin(), ranked.end(), [](const R& a, const R& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.id != b.id) return a.id < b.id;
    if (a.l != b.l) return a.l < b.l;  // UTF-8 byte order = code point order
    return a.r < b.r;
  });
  MergeList out;
  out.reserve(ranked.size());
  for (auto& x : ranked) out.emplace_back(x.l, x.r);
  return out;
}

class SequenceNorm : public Normalizer {
 public:
  std::vector<std::unique_ptr<Normalizer>> items;
  void normalize(NormalizedString& s) const override {
    for (auto& n : items) n->normalize(s);
  }
};

const char* kSpace = "\xE2\x96\x81";  // U+2581

json replace(json pattern, const std::string& content) {
  return json{{"type", "Replace"}, {"pattern", std::move(pattern)}, {"content", content}};
}

// The decoder both conversions use (Strip only with a dummy prefix).
json spm_decoder(bool byte_fallback, bool strip, bool always_fuse) {
  json d = json::array({replace({{"String", kSpace}}, " ")});
  if (byte_fallback) d.push_back({{"type", "ByteFallback"}});
  if (strip || byte_fallback || always_fuse) d.push_back({{"type", "Fuse"}});
  if (strip) d.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return json{{"type", "Sequence"}, {"decoders", d}};
}

json metaspace(const char* scheme) {
  return json{
      {"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", scheme}, {"split", false}};
}

// An empty template: transformers builds no BOS/EOS for a bare tokenizer.model (AutoTokenizer
// adds them from tokenizer_config.json's add_bos_token / add_eos_token).
void no_specials_template(Pipeline& p, const JsonCtx& c) {
  json single = json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}});
  json pair = single;
  pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
  p.post_processor = make_post_processor(json{{"type", "TemplateProcessing"},
                                              {"single", single},
                                              {"pair", pair},
                                              {"special_tokens", json::object()}},
                                         c, *p.model);
}

std::string regex_escape(std::string_view s) {  // Python's re.escape
  std::string out;
  for (char ch : s) {
    if (std::string_view("()[]{}?*+-|^$\\.&~# \t\n\r\v\f").find(ch) != std::string_view::npos)
      out.push_back('\\');
    out.push_back(ch);
  }
  return out;
}

Tokenizer build_proto(const SpmModel& m, bool legacy, const std::string& path) {
  JsonCtx c{path, "tokenizer.model"};
  Tokenizer t;
  Pipeline& p = t.pipeline();
  std::vector<std::string> user_defined;
  for (size_t i = 0; i < m.pieces.size(); ++i)
    if (m.types[i] == SpmModel::kUserDefined) user_defined.push_back(m.pieces[i]);
  if (m.model_type == 2) {
    BpeConfig cfg;
    Vocab v;
    v.reserve(m.pieces.size());
    for (size_t i = 0; i < m.pieces.size(); ++i) v.add(m.pieces[i], static_cast<int32_t>(i));
    cfg.merges = proto_merges(m, v);
    cfg.vocab = m.pieces;
    cfg.unk_token = m.unk_piece;
    cfg.fuse_unk = true;
    cfg.byte_fallback = m.byte_fallback;
    cfg.ignore_merges = !user_defined.empty();
    p.model = make_bpe(std::move(cfg), c);
  } else if (m.model_type == 1) {
    std::vector<std::pair<std::string, double>> vocab;
    vocab.reserve(m.pieces.size());
    for (size_t i = 0; i < m.pieces.size(); ++i) vocab.emplace_back(m.pieces[i], m.scores[i]);
    std::optional<int32_t> unk;
    if (m.unk_id >= 0) unk = m.unk_id;
    p.model = make_unigram(std::move(vocab), unk, m.byte_fallback);
  } else {
    throw UnsupportedError(ErrorContext().file(path),
                           "SentencePiece model_type " + std::to_string(m.model_type) +
                               " (WORD/CHAR) is not supported; only UNIGRAM and BPE");
  }
  auto seq = std::make_unique<SequenceNorm>();
  if (!m.charsmap.empty()) seq->items.push_back(make_precompiled_bytes(m.charsmap));
  if (m.remove_extra_whitespaces) {
    seq->items.push_back(make_normalizer(replace({{"Regex", "\\A +| +\\z"}}, ""), c));
    seq->items.push_back(make_normalizer(replace({{"Regex", " {2,}"}}, " "), c));
  }
  if (m.escape_whitespaces)
    seq->items.push_back(make_normalizer(replace({{"String", " "}}, kSpace), c));
  if (m.add_dummy_prefix && legacy)
    seq->items.push_back(make_normalizer(
        replace({{"Regex", std::string("\\A") + kSpace}}, std::string(kSpace) + kSpace), c));
  p.normalizer = std::move(seq);
  json pres = json::array();
  if (m.add_dummy_prefix) pres.push_back(metaspace(legacy ? "always" : "first"));
  if (!user_defined.empty()) {
    std::stable_sort(
        user_defined.begin(), user_defined.end(),
        [](const std::string& a, const std::string& b) { return utf8_count(a) > utf8_count(b); });
    std::string re;
    for (auto& u : user_defined) {
      if (!re.empty()) re.push_back('|');
      re.append(regex_escape(u));
    }
    pres.push_back({{"type", "Split"},
                    {"pattern", {{"Regex", re}}},
                    {"behavior", "Isolated"},
                    {"invert", false}});
  }
  if (!pres.empty())
    p.pre_tokenizer = make_pre_tokenizer(json{{"type", "Sequence"}, {"pretokenizers", pres}}, c);
  p.decoder = make_decoder(spm_decoder(m.byte_fallback, m.add_dummy_prefix, false), c);
  // Control pieces, and the unk/bos/eos pieces transformers registers as special tokens; user-
  // defined pieces are left to the model (Split + ignore_merges), as transformers does.
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    auto id = static_cast<int32_t>(i);
    bool special = m.types[i] == SpmModel::kControl ||
                   (id == m.unk_id && m.pieces[i] == m.unk_piece) ||
                   (id == m.bos_id && m.pieces[i] == m.bos_piece) ||
                   (id == m.eos_id && m.pieces[i] == m.eos_piece);
    if (special && !m.pieces[i].empty())
      p.added.push_back(AddedToken{m.pieces[i], id, false, false, false, false, true});
  }
  no_specials_template(p, c);
  p.finish_added_tokens();
  return t;
}

Tokenizer build_llama(const SpmModel& m, bool legacy, bool add_prefix_space,
                      const std::string& path) {
  JsonCtx c{path, "tokenizer.model"};
  if (m.model_type != 2)
    throw UnsupportedError(
        ErrorContext().file(path),
        "LlamaTokenizer conversion needs a BPE SentencePiece model (model_type " +
            std::to_string(m.model_type) + ")");
  Tokenizer t;
  Pipeline& p = t.pipeline();
  BpeConfig cfg;
  Vocab v;
  v.reserve(m.pieces.size());
  for (size_t i = 0; i < m.pieces.size(); ++i) v.add(m.pieces[i], static_cast<int32_t>(i));
  cfg.merges = llama_merges(m, v);
  cfg.vocab = m.pieces;
  cfg.fuse_unk = true;
  cfg.byte_fallback = true;  // LlamaTokenizer sets no unk_token on its BPE model
  p.model = make_bpe(std::move(cfg), c);
  const char* scheme = !add_prefix_space ? "never" : legacy ? "always" : "first";
  p.pre_tokenizer = make_pre_tokenizer(metaspace(scheme), c);
  p.decoder = make_decoder(spm_decoder(true, add_prefix_space, true), c);
  // unk/bos/eos ("<unk>", "<s>", "</s>") and control pieces are special added tokens,
  // user-defined pieces non-special ones; none normalized.
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    uint8_t ty = m.types[i];
    const std::string& s = m.pieces[i];
    bool named = s == "<unk>" || s == "<s>" || s == "</s>";
    if (s.empty() || !(ty == SpmModel::kControl || ty == SpmModel::kUserDefined || named)) continue;
    p.added.push_back(AddedToken{s, static_cast<int32_t>(i), false, false, false, false,
                                 ty != SpmModel::kUserDefined || named});
  }
  no_specials_template(p, c);
  p.finish_added_tokens();
  return t;
}

}  // namespace

Tokenizer Tokenizer::from_sentencepiece(const std::string& path, const SpmOptions& opt) {
  SpmModel m = parse_model(read_whole_file(path), path);
  if (opt.conversion == SpmConversion::Llama)
    return build_llama(m, opt.legacy, opt.add_prefix_space, path);
  return build_proto(m, opt.legacy, path);
}

}  // namespace ohm::tokenizers
