#include "ohm/eval/loglikelihood.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <span>
#include <tuple>

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
    // A group of several requests computes its whole context once (step 1, whose last row's
    // logits predict every continuation's first token); each continuation then goes on from
    // the context's blocks (step 2), the context's partly filled last block copied first so the
    // continuations do not write over each other. A lone request runs whole in step 2.
    int64_t n_blocks = 0;
    for (size_t k = 0; k < batch.size(); ++k) {
      const Group& g = groups[batch[k]];
      const auto P = static_cast<int64_t>(g.prefix.size());
      if (g.reqs.size() > 1) n_blocks += (P + bt - 1) / bt;
      for (size_t r : g.reqs) {
        const auto cl = static_cast<int64_t>(reqs[r].continuation.size());
        // A continuation's own blocks (with the copied partial one) or a lone request's all.
        n_blocks +=
            g.reqs.size() > 1 ? (P + cl - 1 + bt - 1) / bt - P / bt : (P + cl - 1 + bt - 1) / bt;
      }
    }
    if (!pool || pool->n_blocks() < n_blocks) pool = model.make_paged_pool(n_blocks, bt);
    std::vector<std::vector<int32_t>> group_blocks(batch.size());
    int32_t next_block = 0;
    std::vector<TokenId> ids1;
    std::vector<int32_t> pos1;
    std::vector<nn::PagedSeq> seqs1;
    std::vector<int64_t> rows1;
    std::vector<int64_t> group_row(batch.size(), -1);
    for (size_t k = 0; k < batch.size(); ++k) {
      const Group& g = groups[batch[k]];
      if (g.reqs.size() < 2) continue;
      const auto P = static_cast<int64_t>(g.prefix.size());
      for (int64_t b = 0; b < (P + bt - 1) / bt; ++b) group_blocks[k].push_back(next_block++);
      nn::PagedSeq s;
      s.offset = static_cast<int64_t>(ids1.size());
      s.n_new = P;
      s.blocks = group_blocks[k].data();
      s.n_blocks = static_cast<int64_t>(group_blocks[k].size());
      for (int64_t t = 0; t < P; ++t) {
        ids1.push_back(g.prefix[static_cast<size_t>(t)]);
        pos1.push_back(static_cast<int32_t>(t));
      }
      group_row[k] = static_cast<int64_t>(rows1.size());
      rows1.push_back(s.offset + P - 1);
      seqs1.push_back(s);
    }
    Tensor logits1;
    if (!ids1.empty()) logits1 = model.forward_paged(ids1, pos1, *pool, seqs1, rows1);

    std::vector<TokenId> ids;
    std::vector<int32_t> pos;
    std::vector<nn::PagedSeq> seqs;
    std::vector<std::vector<int32_t>> tables;
    std::vector<int64_t> rows;
    // Per request, where its scored rows are: (step-1 row or -1, first step-2 row).
    std::vector<std::tuple<size_t, int64_t, int64_t>> row_of;
    tables.reserve(static_cast<size_t>(n_req));
    const int64_t n_layer = pool->n_layer(), kv_dim = pool->kv_dim();
    for (size_t k = 0; k < batch.size(); ++k) {
      const Group& g = groups[batch[k]];
      const auto P = static_cast<int64_t>(g.prefix.size());
      const bool shared = g.reqs.size() > 1;
      for (size_t r : g.reqs) {
        const auto& cont = reqs[r].continuation;
        const auto cl = static_cast<int64_t>(cont.size());
        if (shared && cl == 1) {
          row_of.emplace_back(r, group_row[k], -1);
          continue;
        }
        nn::PagedSeq s;
        s.offset = static_cast<int64_t>(ids.size());
        std::vector<int32_t> table;
        if (shared) {
          s.n_past = P;
          s.n_new = cl - 1;
          table.assign(group_blocks[k].begin(), group_blocks[k].begin() + P / bt);
          if (P % bt != 0) {
            // The context's partly filled last block, copied.
            const int32_t src = group_blocks[k].back(), dst = next_block++;
            for (int64_t l = 0; l < n_layer; ++l) {
              model.context().copy_2d(pool->k_block(l, dst), kv_dim, pool->k_block(l, src), kv_dim,
                                      P % bt, kv_dim);
              model.context().copy_2d(pool->v_block(l, dst), kv_dim, pool->v_block(l, src), kv_dim,
                                      P % bt, kv_dim);
            }
            table.push_back(dst);
          }
        } else {
          s.n_past = 0;
          s.n_new = P + cl - 1;
          for (int64_t t = 0; t < P; ++t) ids.push_back(g.prefix[static_cast<size_t>(t)]);
        }
        for (int64_t t = 0; t + 1 < cl; ++t) ids.push_back(cont[static_cast<size_t>(t)]);
        for (int64_t t = 0; t < s.n_new; ++t) pos.push_back(static_cast<int32_t>(s.n_past + t));
        while (static_cast<int64_t>(table.size()) * bt < s.n_past + s.n_new)
          table.push_back(next_block++);
        tables.push_back(std::move(table));
        s.blocks = tables.back().data();
        s.n_blocks = static_cast<int64_t>(tables.back().size());
        if (shared) {
          row_of.emplace_back(r, group_row[k], static_cast<int64_t>(rows.size()));
          for (int64_t t = 0; t < cl - 1; ++t) rows.push_back(s.offset + t);
        } else {
          row_of.emplace_back(r, -1, static_cast<int64_t>(rows.size()));
          for (int64_t t = 0; t < cl; ++t) rows.push_back(s.offset + s.n_new - cl + t);
        }
        seqs.push_back(s);
      }
    }
    Tensor logits2;
    if (!ids.empty()) logits2 = model.forward_paged(ids, pos, *pool, seqs, rows);

    // Score every (row, next token) pair on the model's threads.
    struct Item {
      const float* row;
      TokenId target;
    };
    std::vector<Item> items;
    std::vector<size_t> first_item;
    for (const auto& [r, row1, row2] : row_of) {
      first_item.push_back(items.size());
      const auto& cont = reqs[r].continuation;
      size_t t = 0;
      if (row1 >= 0) items.push_back({logits1.data<float>() + row1 * V, cont[t++]});
      for (int64_t j = 0; t < cont.size(); ++t, ++j)
        items.push_back({logits2.data<float>() + (row2 + j) * V, cont[t]});
    }
    std::vector<double> lp(items.size());
    std::vector<uint8_t> greedy(items.size());
    model.pool().parallel_for(static_cast<int64_t>(items.size()), 1, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const auto [l, gr] =
            score_row(items[static_cast<size_t>(i)].row, V, items[static_cast<size_t>(i)].target);
        lp[static_cast<size_t>(i)] = l;
        greedy[static_cast<size_t>(i)] = gr ? 1 : 0;
      }
    });
    for (size_t q = 0; q < row_of.size(); ++q) {
      const size_t r = std::get<0>(row_of[q]);
      LLResult res;
      res.is_greedy = true;
      for (size_t t = 0; t < reqs[r].continuation.size(); ++t) {
        res.logprob += lp[first_item[q] + t];
        res.is_greedy = res.is_greedy && greedy[first_item[q] + t] != 0;
      }
      out[r] = res;
    }
    done += n_req;
    if (opt.progress) opt.progress(done, static_cast<int64_t>(reqs.size()));
  }
  return out;
}

std::vector<std::vector<TokenId>> generate_greedy(
    CausalLM& model, const std::vector<std::vector<TokenId>>& contexts, int64_t max_new,
    const std::vector<TokenId>& eos,
    const std::function<bool(size_t, const std::vector<TokenId>&)>& stop,
    const std::function<void(int64_t, int64_t)>& progress) {
  std::vector<std::vector<TokenId>> out(contexts.size());
  const int64_t V = model.vocab_size();
  for (size_t i = 0; i < contexts.size(); ++i) {
    const auto& ctx = contexts[i];
    if (ctx.empty())
      throw InvalidArgument(ErrorContext().note("request", std::to_string(i)),
                            "generation needs a context token");
    auto cache = model.make_cache(1, static_cast<int64_t>(ctx.size()) + max_new);
    Tensor ids = Tensor::empty(DType::I64, {1, static_cast<int64_t>(ctx.size())});
    for (size_t t = 0; t < ctx.size(); ++t) ids.mutable_data<int64_t>()[t] = ctx[t];
    Tensor logits = model.forward(ids, Tensor(), Tensor(), cache, /*last_only=*/true);
    auto& gen = out[i];
    while (static_cast<int64_t>(gen.size()) < max_new) {
      const float* row = logits.data<float>();
      int64_t arg = 0;
      for (int64_t v = 1; v < V; ++v)
        if (row[v] > row[arg]) arg = v;
      const auto tok = static_cast<TokenId>(arg);
      gen.push_back(tok);
      if (std::find(eos.begin(), eos.end(), tok) != eos.end()) break;
      if (stop && stop(i, gen)) break;
      if (static_cast<int64_t>(gen.size()) >= max_new) break;
      Tensor one = Tensor::empty(DType::I64, {1, 1});
      one.mutable_data<int64_t>()[0] = tok;
      logits = model.forward(one, Tensor(), Tensor(), cache, /*last_only=*/true);
    }
    if (progress) progress(static_cast<int64_t>(i) + 1, static_cast<int64_t>(contexts.size()));
  }
  return out;
}

}  // namespace ohm::eval
