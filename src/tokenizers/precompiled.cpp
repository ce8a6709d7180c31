// Precompiled normalizer: SentencePiece's precompiled_charsmap (a darts-clone double-array trie
// over UTF-8 bytes whose values index a blob of NUL-terminated replacement strings), applied per
// extended grapheme cluster as HF tokenizers (spm_precompiled) does.
#include <utf8proc.h>

#include <cstring>

#include "internal.h"

namespace ohm::tokenizers {

std::string base64_decode(std::string_view in, bool* ok) {
  static int8_t dec[256];
  static bool init = [] {
    std::memset(dec, -1, sizeof dec);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) dec[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
    return true;
  }();
  (void)init;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  *ok = true;
  for (char ch : in) {
    if (ch == '=' || ch == '\n' || ch == '\r') continue;
    int v = dec[static_cast<unsigned char>(ch)];
    if (v < 0) {
      *ok = false;
      return {};
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

namespace {

class Precompiled : public Normalizer {
 public:
  Precompiled(const std::string& blob, const JsonCtx& c) {
    if (blob.empty()) return;  // an empty charsmap is the identity
    if (blob.size() < 4) c.at("precompiled_charsmap").fail("too short");
    uint32_t trie_size;
    std::memcpy(&trie_size, blob.data(), 4);
    if (trie_size % 4 != 0 || 4 + size_t(trie_size) > blob.size())
      c.at("precompiled_charsmap").fail("trie size out of range");
    trie_.resize(trie_size / 4);
    std::memcpy(trie_.data(), blob.data() + 4, trie_size);
    normalized_ = blob.substr(4 + trie_size);
  }

  // First (shortest) common-prefix match of `chunk`, as spm_precompiled's transform().
  bool transform(std::string_view chunk, std::string_view* out) const {
    if (trie_.empty()) return false;
    size_t node = 0;
    auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); };
    uint32_t unit = trie_[0];
    node ^= offset(unit);
    for (char ch : chunk) {
      auto cb = static_cast<unsigned char>(ch);
      if (cb == 0) break;
      node ^= cb;
      if (node >= trie_.size()) return false;
      unit = trie_[node];
      if ((unit & ((1u << 31) | 0xFF)) != cb) return false;
      node ^= offset(unit);
      if (node >= trie_.size()) return false;
      if ((unit >> 8) & 1) {
        size_t idx = trie_[node] & ((1u << 31) - 1);
        if (idx >= normalized_.size()) return false;
        size_t e = normalized_.find('\0', idx);
        if (e == std::string::npos) e = normalized_.size();
        *out = std::string_view(normalized_).substr(idx, e - idx);
        return true;
      }
    }
    return false;
  }

  static void replace(std::vector<std::pair<char32_t, int>>& tr, std::string_view old_part,
                      std::string_view new_part) {
    auto oc = static_cast<int>(utf8_count(old_part));
    auto nc = utf8_to_u32(new_part);
    int diff = static_cast<int>(nc.size()) - oc;
    for (char32_t c : nc) tr.emplace_back(c, 0);
    if (diff > 0) {
      for (size_t k = 0; k < static_cast<size_t>(diff) && k < tr.size(); ++k)
        tr[tr.size() - 1 - k].second = 1;
    } else if (diff < 0 && !tr.empty()) {
      tr.back().second += diff;
    }
  }

  void normalize(NormalizedString& s) const override {
    if (trie_.empty()) return;
    const std::string& str = s.get();
    std::vector<std::pair<char32_t, int>> tr;
    tr.reserve(str.size());
    bool modified = false;
    // Iterate extended grapheme clusters.
    size_t i = 0;
    while (i < str.size()) {
      size_t n;
      char32_t prev = utf8_decode(str.data() + i, &n);
      size_t j = i + n;
      utf8proc_int32_t state = 0;
      while (j < str.size()) {
        size_t m;
        char32_t c = utf8_decode(str.data() + j, &m);
        if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                             static_cast<utf8proc_int32_t>(c), &state))
          break;
        prev = c;
        j += m;
      }
      std::string_view g(str.data() + i, j - i);
      std::string_view norm;
      if (g.size() < 6 && transform(g, &norm)) {
        modified = true;
        replace(tr, g, norm);
      } else {
        for (size_t k = i; k < j;) {
          size_t m;
          char32_t c = utf8_decode(str.data() + k, &m);
          std::string_view part(str.data() + k, m);
          if (transform(part, &norm)) {
            modified = true;
            replace(tr, part, norm);
          } else {
            tr.emplace_back(c, 0);
          }
          k += m;
        }
      }
      i = j;
    }
    if (modified) s.transform(tr, 0);
  }

 private:
  std::vector<uint32_t> trie_;
  std::string normalized_;
};

}  // namespace

std::unique_ptr<Normalizer> make_precompiled(const std::string& b64, const JsonCtx& c) {
  bool ok;
  std::string blob = base64_decode(b64, &ok);
  if (!ok) c.at("precompiled_charsmap").fail("invalid base64");
  return std::make_unique<Precompiled>(blob, c);
}

std::unique_ptr<Normalizer> make_precompiled_bytes(const std::string& blob) {
  return std::make_unique<Precompiled>(blob, JsonCtx{"tokenizer.model", "precompiled_charsmap"});
}

}  // namespace ohm::tokenizers
