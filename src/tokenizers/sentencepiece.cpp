// SentencePiece tokenizer.model (protobuf ModelProto) read with a minimal wire-format parser and
// converted like transformers' LlamaConverter.
#include <cstring>
#include <fstream>

#include "internal.h"

namespace ohm::tokenizers {

Tokenizer build_spm_tokenizer(const std::vector<std::string>& toks,
                              const std::vector<double>& scores, const std::vector<int64_t>& types,
                              std::optional<int32_t> unk_id, std::optional<int32_t> bos_id,
                              std::optional<int32_t> eos_id, bool add_bos, bool add_eos,
                              const std::string& name);

namespace {

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  std::string file;
  uint64_t varint() {
    uint64_t v = 0;
    int shift = 0;
    while (true) {
      if (p >= end) throw FormatError(ErrorContext().file(file), "truncated varint");
      uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) break;
      shift += 7;
      if (shift > 63) throw FormatError(ErrorContext().file(file), "varint too long");
    }
    return v;
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (n > static_cast<uint64_t>(end - p))
      throw FormatError(ErrorContext().file(file), "length past end of message");
    std::string_view s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
  void skip(uint32_t wt) {
    switch (wt) {
      case 0:
        varint();
        break;
      case 1:
        if (end - p < 8) throw FormatError(ErrorContext().file(file), "truncated");
        p += 8;
        break;
      case 2:
        bytes();
        break;
      case 5:
        if (end - p < 4) throw FormatError(ErrorContext().file(file), "truncated");
        p += 4;
        break;
      default:
        throw FormatError(ErrorContext().file(file),
                          "unsupported protobuf wire type " + std::to_string(wt));
    }
  }
};

}  // namespace

Tokenizer Tokenizer::from_sentencepiece(const std::string& path, bool legacy,
                                        bool add_dummy_prefix) {
  (void)legacy;
  (void)add_dummy_prefix;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(ErrorContext().file(path), "cannot open file");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Reader r{reinterpret_cast<const uint8_t*>(data.data()),
           reinterpret_cast<const uint8_t*>(data.data()) + data.size(), path};
  std::vector<std::string> toks;
  std::vector<double> scores;
  std::vector<int64_t> types;
  int model_type = 1;  // UNIGRAM=1, BPE=2
  std::optional<int32_t> unk, bos, eos;
  while (r.p < r.end) {
    uint64_t key = r.varint();
    auto field = static_cast<uint32_t>(key >> 3), wt = static_cast<uint32_t>(key & 7);
    if (field == 1 && wt == 2) {  // SentencePiece pieces
      std::string_view msg = r.bytes();
      Reader m{reinterpret_cast<const uint8_t*>(msg.data()),
               reinterpret_cast<const uint8_t*>(msg.data()) + msg.size(), path};
      std::string piece;
      float score = 0;
      int64_t type = 1;
      while (m.p < m.end) {
        uint64_t k = m.varint();
        auto f = static_cast<uint32_t>(k >> 3), w = static_cast<uint32_t>(k & 7);
        if (f == 1 && w == 2)
          piece = std::string(m.bytes());
        else if (f == 2 && w == 5) {
          std::memcpy(&score, m.p, 4);
          m.p += 4;
        } else if (f == 3 && w == 0)
          type = static_cast<int64_t>(m.varint());
        else
          m.skip(w);
      }
      // sentencepiece Type: NORMAL=1 UNKNOWN=2 CONTROL=3 USER_DEFINED=4 BYTE=6 UNUSED=5
      if (type == 2 && !unk) unk = static_cast<int32_t>(toks.size());
      if (type == 3 && piece == "<s>") bos = static_cast<int32_t>(toks.size());
      if (type == 3 && piece == "</s>") eos = static_cast<int32_t>(toks.size());
      toks.push_back(std::move(piece));
      scores.push_back(score);
      types.push_back(type);
    } else if (field == 2 && wt == 2) {  // TrainerSpec
      std::string_view msg = r.bytes();
      Reader m{reinterpret_cast<const uint8_t*>(msg.data()),
               reinterpret_cast<const uint8_t*>(msg.data()) + msg.size(), path};
      while (m.p < m.end) {
        uint64_t k = m.varint();
        auto f = static_cast<uint32_t>(k >> 3), w = static_cast<uint32_t>(k & 7);
        if (f == 3 && w == 0)
          model_type = static_cast<int>(m.varint());
        else
          m.skip(w);
      }
    } else {
      r.skip(wt);
    }
  }
  if (toks.empty())
    throw FormatError(ErrorContext().file(path), "no pieces in SentencePiece model");
  if (model_type != 2)
    throw UnsupportedError(ErrorContext().file(path),
                           "only BPE SentencePiece models are supported (model_type " +
                               std::to_string(model_type) + ")");
  return build_spm_tokenizer(toks, scores, types, unk, bos, eos, true, false, path);
}

}  // namespace ohm::tokenizers
