// Unigram model (HF tokenizers/src/models/unigram): Viterbi over vocabulary pieces, unk fused,
// byte_fallback.
#include <cstdio>
#include <limits>

#include "internal.h"

namespace ohm::tokenizers {

namespace {

constexpr double kUnkPenalty = 10.0;

class Unigram : public Model {
 public:
  Unigram(std::vector<std::pair<std::string, double>> vocab, std::optional<int32_t> unk_id,
          bool byte_fallback)
      : unk_id_(unk_id), byte_fallback_(byte_fallback) {
    vocab_.reserve(vocab.size());
    scores_.resize(vocab.size());
    min_score_ = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < vocab.size(); ++i) {
      vocab_.add(vocab[i].first, static_cast<int32_t>(i));
      scores_[i] = vocab[i].second;
      min_score_ = std::min(min_score_, vocab[i].second);
      max_len_ = std::max(max_len_, vocab[i].first.size());
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
  const char* kind() const override { return "Unigram"; }

  void tokenize(std::string_view s, std::vector<Token>& out) const override {
    if (s.empty()) return;
    if (!unk_id_)
      throw FormatError(ErrorContext().key("model.unk_id"), "Unigram model has no unk_id");
    struct Node {
      int32_t id;
      double score;
      int64_t start;
    };
    size_t n = s.size();
    std::vector<Node> best(n + 1, Node{0, 0.0, -1});
    double unk_score = min_score_ - kUnkPenalty;
    size_t pos = 0;
    while (pos < n) {
      double here = best[pos].score;
      size_t mblen = utf8_len(static_cast<unsigned char>(s[pos]));
      bool single = false;
      size_t lim = std::min(max_len_, n - pos);
      for (size_t len = 1; len <= lim; ++len) {
        int32_t id = vocab_.find(s.substr(pos, len));
        if (id < 0) continue;
        Node& t = best[pos + len];
        double cand = scores_[static_cast<size_t>(id)] + here;
        if (t.start < 0 || cand > t.score) t = Node{id, cand, static_cast<int64_t>(pos)};
        if (len == mblen) single = true;
      }
      if (!single) {
        Node& t = best[std::min(n, pos + mblen)];
        double cand = unk_score + here;
        if (t.start < 0 || cand > t.score) t = Node{*unk_id_, cand, static_cast<int64_t>(pos)};
      }
      pos += mblen;
    }
    // Backtrack, fusing consecutive unks.
    std::vector<std::pair<size_t, size_t>> pieces;
    size_t end = n;
    bool in_unk = false;
    size_t unk_end = 0;
    while (end > 0) {
      const Node& nd = best[end];
      auto st = static_cast<size_t>(nd.start);
      if (nd.id == *unk_id_) {
        if (!in_unk) {
          in_unk = true;
          unk_end = end;
        }
      } else {
        if (in_unk) {
          pieces.emplace_back(end, unk_end);
          in_unk = false;
        }
        pieces.emplace_back(st, end);
      }
      end = st;
    }
    if (in_unk) pieces.emplace_back(0, unk_end);
    for (size_t k = pieces.size(); k-- > 0;) {
      auto [a, b] = pieces[k];
      std::string_view piece = s.substr(a, b - a);
      int32_t id = vocab_.find(piece);
      if (id < 0) {
        if (byte_fallback_) {
          bool all = true;
          for (unsigned char c : piece)
            if (byte_ids_[c] < 0) {
              all = false;
              break;
            }
          if (all) {
            for (unsigned char c : piece)
              out.push_back({byte_ids_[c], static_cast<uint32_t>(a), static_cast<uint32_t>(b)});
            continue;
          }
        }
        id = *unk_id_;
      }
      out.push_back({id, static_cast<uint32_t>(a), static_cast<uint32_t>(b)});
    }
  }

 private:
  Vocab vocab_;
  std::vector<double> scores_;
  std::optional<int32_t> unk_id_;
  bool byte_fallback_;
  double min_score_ = 0;
  size_t max_len_ = 0;
  int32_t byte_ids_[256];
};

}  // namespace

std::unique_ptr<Model> make_unigram(std::vector<std::pair<std::string, double>> vocab,
                                    std::optional<int32_t> unk_id, bool byte_fallback) {
  return std::make_unique<Unigram>(std::move(vocab), unk_id, byte_fallback);
}

std::unique_ptr<Model> make_unigram_json(const json& j, const JsonCtx& c) {
  const json* v = jget(j, "vocab");
  if (!v) c.at("vocab").fail("missing required field");
  if (!v->is_array()) c.at("vocab").fail("expected an array of [piece, score]");
  std::vector<std::pair<std::string, double>> vocab;
  vocab.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
      c.at("vocab").at(i).fail("expected [piece, score]");
    vocab.emplace_back(e[0].get<std::string>(), e[1].get<double>());
  }
  std::optional<int32_t> unk;
  if (const json* u = jget(j, "unk_id")) {
    if (!u->is_number_integer() || u->get<int64_t>() < 0 ||
        static_cast<size_t>(u->get<int64_t>()) >= vocab.size())
      c.at("unk_id").fail("expected an index into vocab");
    unk = static_cast<int32_t>(u->get<int64_t>());
  }
  return make_unigram(std::move(vocab), unk, jbool_or(j, "byte_fallback", false, c));
}

}  // namespace ohm::tokenizers
