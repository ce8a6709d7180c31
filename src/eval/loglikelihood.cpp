#include "ohm/eval/loglikelihood.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <span>

#include "ohm/core/error.h"
#include "ohm/models/causal_lm.h"

namespace ohm::eval {
namespace {

// One context shared by several requests.
struct Group {
  std::vector<TokenId> prefix;  // model input up to and including the last context token
  std::vector<size_t> reqs;     // request indices
  int64_t longest = 0;          // max len(context + continuation) of its requests
};

// log-softmax of `row` at `target` (max in f32, sum of exp in f64) and whether target is the
// first argmax (torch.argmax's tie rule).
std::pair<double, bool> score_row(const float* row, int64_t V, TokenId target) {
  float mx = row[0];
  int64_t arg = 0;
  for (int64_t v = 1; v < V; ++v)
    if (row[v] > mx) {
      mx = row[v];
      arg = v;
    }
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
  return {static_cast<double>(row[target] - mx) - std::log(sum), arg == target};
}

}  // namespace

int64_t default_max_length(const CausalLM& model) {
  const int64_t n = model.decoder_config().max_position_embeddings;
  return n > 0 ? n : 2048;
}

std::vector<LLRequest> rolling_windows(const std::vector<TokenId>& tokens, TokenId prefix_token,
                                       int64_t max_length) {
  std::vector<LLRequest> out;
  if (tokens.empty()) return out;
  if (max_length < 1) throw InvalidArgument(ErrorContext().key("max_length"), "must be >= 1");
  const auto n = static_cast<int64_t>(tokens.size());
  auto slice = [&](int64_t a, int64_t b) {
    return std::vector<TokenId>(tokens.begin() + a, tokens.begin() + b);
  };
  // The first window: prefix_token + tokens[: first - 1] predicts tokens[: first].
  const int64_t first = std::min(max_length, n);
  LLRequest r;
  r.context = {prefix_token};
  r.continuation = slice(0, first);
  out.push_back(std::move(r));
  int64_t predicted = first;
  while (predicted < n) {
    const int64_t pred = std::min(n - predicted, max_length);  // pred_len = max_length
    const int64_t end = predicted + pred;
    // Window input tokens[end - max_length - 1 : end - 1], made disjoint from its predictions.
    std::vector<TokenId> a = slice(end - max_length - 1, end - 1);
    a.resize(a.size() - static_cast<size_t>(pred - 1));
    out.push_back({std::move(a), slice(end - pred, end)});
    predicted += pred;
  }
  return out;
}

std::vector<LLResult> loglikelihood_tokens(CausalLM& model, const std::vector<LLRequest>& reqs,
                                           const LLOptions& opt) {
  const int64_t L = opt.max_length > 0 ? opt.max_length : default_max_length(model);
  const int64_t bt = opt.block_tokens;
  if (bt < 1 || (bt & (bt - 1)) != 0)
    throw InvalidArgument(ErrorContext().key("block_tokens"), "must be a power of two");
  const int64_t V = model.vocab_size();
  std::vector<LLResult> out(reqs.size());

  // Group the requests by the context part of their (truncated) model input.
  std::vector<Group> groups;
  std::map<std::vector<TokenId>, size_t> index;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto& r = reqs[i];
    if (r.context.empty() || r.continuation.empty())
      throw InvalidArgument(ErrorContext().note("request", std::to_string(i)),
                            "a loglikelihood request needs a context and a continuation token");
    const auto cl = static_cast<int64_t>(r.continuation.size());
    if (cl > L)
      throw InvalidArgument(ErrorContext().note("request", std::to_string(i)),
                            "the continuation has " + std::to_string(cl) +
                                " tokens, more than the model's length " + std::to_string(L));
    std::vector<TokenId> full = r.context;
    full.insert(full.end(), r.continuation.begin(), r.continuation.end());
    const auto total = static_cast<int64_t>(full.size());
    const int64_t start = std::max<int64_t>(0, total - (L + 1));
    // inp = full[start : total - 1]; its last cl - 1 tokens are continuation[:-1].
    std::vector<TokenId> prefix(full.begin() + start, full.end() - cl);
    auto [it, fresh] = index.emplace(std::move(prefix), groups.size());
    if (fresh) groups.push_back({it->first, {}, 0});
    Group& g = groups[it->second];
    g.reqs.push_back(i);
    g.longest = std::max(g.longest, total);
  }
  // Longest first (lm-eval's order; memory peaks early and the ETA errs high).
  std::vector<size_t> order(groups.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return groups[a].longest > groups[b].longest; });

  std::unique_ptr<nn::PagedKVPool> pool;
  int64_t done = 0;
  size_t next = 0;
  while (next < order.size()) {
    // Take groups while the batch has room.
    std::vector<size_t> batch;
    int64_t n_req = 0, n_tok = 0;
    while (next < order.size()) {
      const Group& g = groups[order[next]];
      const int64_t tok = g.longest * static_cast<int64_t>(g.reqs.size());
      if (!batch.empty() && (n_req + static_cast<int64_t>(g.reqs.size()) > opt.batch_size ||
                             n_tok + tok > opt.max_step_tokens))
        break;
      batch.push_back(order[next++]);
      n_req += static_cast<int64_t>(g.reqs.size());
      n_tok += tok;
    }
    // Shared part of each group: whole blocks strictly before its last context token (a group
    // of one request shares nothing).
    std::vector<int64_t> shared(batch.size());
    int64_t n_blocks = 0;
    for (size_t k = 0; k < batch.size(); ++k) {
      const Group& g = groups[batch[k]];
      const auto P = static_cast<int64_t>(g.prefix.size());
      shared[k] = g.reqs.size() > 1 ? (P - 1) / bt * bt : 0;
      n_blocks += shared[k] / bt;
      for (size_t r : g.reqs) {
        const auto own = P - shared[k] + static_cast<int64_t>(reqs[r].continuation.size()) - 1;
        n_blocks += (own + bt - 1) / bt;
      }
    }
    if (!pool || pool->n_blocks() < n_blocks) pool = model.make_paged_pool(n_blocks, bt);
    // Block tables: each group's shared blocks, then each request's own.
    std::vector<std::vector<int32_t>> group_blocks(batch.size());
    int32_t next_block = 0;
    for (size_t k = 0; k < batch.size(); ++k)
      for (int64_t b = 0; b < shared[k] / bt; ++b) group_blocks[k].push_back(next_block++);

    // Step 1: the shared contexts.
    {
      std::vector<TokenId> ids;
      std::vector<int32_t> pos;
      std::vector<nn::PagedSeq> seqs;
      for (size_t k = 0; k < batch.size(); ++k) {
        if (shared[k] == 0) continue;
        const Group& g = groups[batch[k]];
        nn::PagedSeq s;
        s.offset = static_cast<int64_t>(ids.size());
        s.n_new = shared[k];
        s.blocks = group_blocks[k].data();
        s.n_blocks = static_cast<int64_t>(group_blocks[k].size());
        for (int64_t t = 0; t < shared[k]; ++t) {
          ids.push_back(g.prefix[static_cast<size_t>(t)]);
          pos.push_back(static_cast<int32_t>(t));
        }
        seqs.push_back(s);
      }
      if (!ids.empty()) model.forward_paged(ids, pos, *pool, seqs, {});
    }
    // Step 2: per request, the rest of its context and its continuation but the last token.
    std::vector<TokenId> ids;
    std::vector<int32_t> pos;
    std::vector<nn::PagedSeq> seqs;
    std::vector<std::vector<int32_t>> tables;
    std::vector<int64_t> rows;
    std::vector<std::pair<size_t, int64_t>> row_of;  // (request, first logit row index)
    tables.reserve(static_cast<size_t>(n_req));
    for (size_t k = 0; k < batch.size(); ++k) {
      const Group& g = groups[batch[k]];
      const auto P = static_cast<int64_t>(g.prefix.size());
      for (size_t r : g.reqs) {
        const auto& cont = reqs[r].continuation;
        const auto cl = static_cast<int64_t>(cont.size());
        nn::PagedSeq s;
        s.offset = static_cast<int64_t>(ids.size());
        s.n_past = shared[k];
        s.n_new = P - shared[k] + cl - 1;
        for (int64_t t = shared[k]; t < P; ++t) ids.push_back(g.prefix[static_cast<size_t>(t)]);
        for (int64_t t = 0; t + 1 < cl; ++t) ids.push_back(cont[static_cast<size_t>(t)]);
        for (int64_t t = 0; t < s.n_new; ++t) pos.push_back(static_cast<int32_t>(shared[k] + t));
        std::vector<int32_t> table = group_blocks[k];
        for (int64_t b = 0; b < (s.n_new + bt - 1) / bt; ++b) table.push_back(next_block++);
        tables.push_back(std::move(table));
        s.blocks = tables.back().data();
        s.n_blocks = static_cast<int64_t>(tables.back().size());
        row_of.emplace_back(r, static_cast<int64_t>(rows.size()));
        for (int64_t t = 0; t < cl; ++t) rows.push_back(s.offset + s.n_new - cl + t);
        seqs.push_back(s);
      }
    }
    const Tensor logits = model.forward_paged(ids, pos, *pool, seqs, rows);
    const float* lg = logits.data<float>();
    std::vector<double> lp(rows.size());
    std::vector<uint8_t> greedy(rows.size());
    // Row r scores the token that follows it: build the targets in row order.
    std::vector<TokenId> target(rows.size());
    for (const auto& [r, first] : row_of) {
      const auto& cont = reqs[r].continuation;
      for (size_t t = 0; t < cont.size(); ++t) target[static_cast<size_t>(first) + t] = cont[t];
    }
    model.pool().parallel_for(static_cast<int64_t>(rows.size()), 1, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const auto [l, gr] = score_row(lg + i * V, V, target[static_cast<size_t>(i)]);
        lp[static_cast<size_t>(i)] = l;
        greedy[static_cast<size_t>(i)] = gr ? 1 : 0;
      }
    });
    for (const auto& [r, first] : row_of) {
      LLResult res;
      res.is_greedy = true;
      for (size_t t = 0; t < reqs[r].continuation.size(); ++t) {
        res.logprob += lp[static_cast<size_t>(first) + t];
        res.is_greedy = res.is_greedy && greedy[static_cast<size_t>(first) + t] != 0;
      }
      out[r] = res;
    }
    done += n_req;
    if (opt.progress) opt.progress(done, static_cast<int64_t>(reqs.size()));
  }
  return out;
}

}  // namespace ohm::eval
