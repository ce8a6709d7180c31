// The serving engine (continuous batching over the paged KV cache) against ohm's own one-request
// generation: batch invariance, chunked prefill, prefix caching, preemption, cancellation, stops.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "invariant_kernels.h"
#include "ohm/core/error.h"
#include "ohm/generation/generate.h"
#include "ohm/kernels/kernels.h"
#include "ohm/models/causal_lm.h"
#include "ohm/serve/engine.h"
#include "ohm/tokenizers/tokenizer.h"

using namespace std::chrono_literals;
using ohm::TokenId;
namespace serve = ohm::serve;

namespace {

const std::string kDemo = std::string(OHM_SOURCE_DIR) + "/models/ohm-demo";

struct Demo {
  std::unique_ptr<ohm::CausalLM> model;
  ohm::tokenizers::AutoTokenizer tok;
  static Demo& get() {
    static Demo d{ohm::load_causal_lm(kDemo),
                  ohm::tokenizers::AutoTokenizer::from_pretrained(kDemo)};
    return d;
  }
  // The demo quantized to Q4_0 at load: the Q4_0 kernels a Q4_0 GGUF runs through.
  static Demo& q4_0() {
    static Demo d{ohm::load_causal_lm(kDemo, {.quantize = ohm::DType::Q4_0}),
                  ohm::tokenizers::AutoTokenizer::from_pretrained(kDemo)};
    return d;
  }
};

// The engine's figures once its step thread has caught up (finish events come before the
// step's bookkeeping).
serve::EngineStats settled(serve::Engine& eng) {
  for (int i = 0; i < 200; ++i) {
    auto s = eng.stats();
    if (s.running == 0 && s.waiting == 0 && s.kv_blocks_used == 0) return s;
    std::this_thread::sleep_for(10ms);
  }
  return eng.stats();
}

const char* kLines[] = {
    "ROMEO:\nBut soft, what light through yonder window breaks?",
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "MENENIUS:\nI tell you, friends, most charitable care have the patricians of you.",
    ("KING RICHARD III:\nNow is the winter of our discontent made glorious summer by this sun of "
     "York; and all the clouds that lour'd upon our house in the deep bosom of the ocean buried."),
    "GLOUCESTER:\n",
    "A",
    "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer",
};

std::vector<TokenId> prompt_for(int i) {
  std::string text = kLines[i % 8];
  for (int r = 0; r < i / 8; ++r) text += std::string("\n") + kLines[(i + r + 3) % 8];
  return Demo::get().tok.encode(text);
}

serve::SamplingOptions greedy(int64_t n) {
  serve::SamplingOptions s;
  s.config.do_sample = false;
  s.max_tokens = n;
  s.ignore_eos = true;
  return s;
}

struct Result {
  std::vector<TokenId> ids;
  std::string text, reason;
  int64_t cached = 0, completion = 0;
};

Result collect(serve::Stream& st) {
  Result r;
  for (;;) {
    auto e = st.next(60s);
    if (!e) {
      ADD_FAILURE() << "no event within 60 s";
      return r;
    }
    for (const auto& t : e->tokens) r.ids.push_back(t.id);
    r.text += e->text;
    if (e->finished) {
      r.reason = e->finish_reason;
      r.cached = e->cached_tokens;
      r.completion = e->completion_tokens;
      return r;
    }
  }
}

std::vector<TokenId> solo(const std::vector<TokenId>& prompt, int64_t n, Demo& d = Demo::get()) {
  auto out = ohm::generation::greedy_generate(*d.model, prompt, n);
  return {out.begin() + static_cast<std::ptrdiff_t>(prompt.size()), out.end()};
}

using ohm::test::InvariantKernels;  // invariant_kernels.h

}  // namespace

// 32 concurrent greedy requests (the figure; twice the parallel slots) of different
// prompts (1 to 57 tokens) and lengths (8 to 36 tokens) return exactly what each gives alone,
// with prompts prefilled in chunks next to running decodes.
void batch_invariant(Demo& d) {
  constexpr int kRequests = 32;
  std::vector<std::vector<TokenId>> want;  // before the engine runs: it shares the model
  for (int i = 0; i < kRequests; ++i) want.push_back(solo(prompt_for(i), 8 + (i * 7) % 25, d));
  serve::EngineOptions o;
  o.parallel = kRequests / 2;
  o.ctx_size = 512;
  o.max_batch_tokens = 48;  // forces chunked prefill of the longer prompts
  serve::Engine eng(*d.model, d.tok.tokenizer(), o);
  std::vector<std::shared_ptr<serve::Stream>> st;
  std::vector<int64_t> lens;
  for (int i = 0; i < kRequests; ++i) {
    lens.push_back(8 + (i * 7) % 25);
    st.push_back(eng.submit(prompt_for(i), greedy(lens.back())));
    ASSERT_TRUE(st.back()) << "request " << i;
  }
  for (int i = 0; i < kRequests; ++i) {
    Result r = collect(*st[i]);
    EXPECT_EQ(r.reason, "length");
    EXPECT_EQ(r.ids, want[i]) << "request " << i;
    EXPECT_EQ(r.text, d.tok.decode(r.ids, true)) << "request " << i;
  }
  auto s = settled(eng);
  EXPECT_EQ(s.finished["length"], static_cast<uint64_t>(kRequests));
  EXPECT_EQ(s.kv_blocks_used, 0);
}

TEST(ServeEngine, BatchInvariantGreedyF32) {
  InvariantKernels k;
  batch_invariant(Demo::get());
}
TEST(ServeEngine, BatchInvariantGreedyQ4_0) {
  InvariantKernels k;
  batch_invariant(Demo::q4_0());
}

TEST(ServeEngine, OneRequest) {
  auto& d = Demo::get();
  for (int64_t mbt : {512, 16, 5}) {
    serve::EngineOptions o;
    o.parallel = 1;
    o.ctx_size = 256;
    o.max_batch_tokens = mbt;
    auto p = prompt_for(4);
    const auto want = solo(p, 20);
    serve::Engine eng(*d.model, d.tok.tokenizer(), o);
    Result r = collect(*eng.submit(p, greedy(20)));
    EXPECT_EQ(r.ids, want) << "max_batch_tokens " << mbt;
  }
}

// The property batch invariance rests on: a sequence's logits from forward_paged are bitwise the
// same alone and inside a step with other sequences (decode rows and prefill chunks), for every
// weight type the kernels batch differently (f32, f16, q8_0, q4_0).
TEST(ServeEngine, PagedRowsAreBatchInvariant) {
  InvariantKernels k;
  for (auto q : {std::optional<ohm::DType>{}, std::optional(ohm::DType::F16),
                 std::optional(ohm::DType::Q8_0), std::optional(ohm::DType::Q4_0)}) {
    ohm::LoadOptions lo;
    if (q == ohm::DType::F16)
      lo.dtype = q;
    else
      lo.quantize = q;
    auto model = ohm::load_causal_lm(kDemo, lo);
    const std::string what = q ? std::string(ohm::name(*q)) : "f32";
    auto pool = model->make_paged_pool(64, 16);
    const int64_t V = model->vocab_size();
    // Sequence A (20 tokens) alone, in blocks 0-1.
    std::vector<TokenId> a;
    for (int i = 0; i < 20; ++i) a.push_back(static_cast<TokenId>((i * 37 + 11) % V));
    std::vector<int32_t> pos(20), blocks_a = {0, 1};
    for (int i = 0; i < 20; ++i) pos[i] = i;
    ohm::nn::PagedSeq sa{0, 20, 0, blocks_a.data(), 2};
    std::vector<int64_t> rows = {19};
    auto alone = model->forward_paged(a, pos, *pool, std::span(&sa, 1), rows);
    // A again (blocks 2-3) after three other sequences: two decode rows and a 30-token chunk.
    std::vector<TokenId> ids;
    std::vector<int32_t> p2;
    std::vector<ohm::nn::PagedSeq> seqs;
    std::vector<int32_t> blocks_b = {4, 5}, blocks_c = {6, 7}, blocks_d = {8, 9},
                         blocks_a2 = {2, 3};
    auto add = [&](const std::vector<int32_t>& blk, int64_t past, int64_t n, int seed) {
      ohm::nn::PagedSeq s{static_cast<int64_t>(ids.size()), n, past, blk.data(), 2};
      for (int64_t t = 0; t < n; ++t) {
        ids.push_back(static_cast<TokenId>((seed * 13 + t * 7) % V));
        p2.push_back(static_cast<int32_t>(past + t));
      }
      seqs.push_back(s);
    };
    add(blocks_b, 0, 1, 1);
    add(blocks_c, 0, 1, 2);
    add(blocks_d, 0, 30, 3);
    const int64_t off = static_cast<int64_t>(ids.size());
    ids.insert(ids.end(), a.begin(), a.end());
    p2.insert(p2.end(), pos.begin(), pos.end());
    seqs.push_back({off, 20, 0, blocks_a2.data(), 2});
    std::vector<int64_t> rows2 = {0, off + 19, 1};
    auto mixed = model->forward_paged(ids, p2, *pool, seqs, rows2);
    ASSERT_EQ(mixed.dim(1), V);
    EXPECT_EQ(0, std::memcmp(alone.data<float>(), mixed.data<float>() + V, V * sizeof(float)))
        << what << ": the row differs when batched";
  }
}

// A second request sharing a prefix reuses its full blocks (and gives the same tokens).
TEST(ServeEngine, PrefixCacheSharesBlocks) {
  auto& d = Demo::get();
  auto base = prompt_for(20);  // a long prompt
  ASSERT_GT(base.size(), 70u);
  std::vector<TokenId> a(base.begin(), base.begin() + 70), b(base.begin(), base.begin() + 64);
  b.push_back(a[5]);
  b.push_back(a[9]);
  const auto wa = solo(a, 10), wb = solo(b, 10);
  serve::EngineOptions o;
  o.parallel = 4;
  o.ctx_size = 256;
  serve::Engine eng(*d.model, d.tok.tokenizer(), o);
  Result ra = collect(*eng.submit(a, greedy(10)));
  EXPECT_EQ(ra.ids, wa);
  EXPECT_EQ(ra.cached, 0);
  Result rb = collect(*eng.submit(b, greedy(10)));
  EXPECT_EQ(rb.ids, wb);
  EXPECT_EQ(rb.cached, 64);  // 4 full blocks of 16
  Result ra2 = collect(*eng.submit(a, greedy(10)));
  EXPECT_EQ(ra2.ids, wa);
  EXPECT_EQ(ra2.cached, 64);  // the block holding token 69 is never reused: it gives the logits
  auto s = settled(eng);
  EXPECT_EQ(s.prefix_hits, 128u);
  EXPECT_EQ(s.prefix_queries, 70u + 66u + 70u);
  EXPECT_GT(s.kv_blocks_cached, 0);
}

// With blocks for fewer sequences than run at once, sequences are preempted and recomputed,
// and every output is still exact.
TEST(ServeEngine, PreemptionRecomputesExactly) {
  auto& d = Demo::get();
  constexpr int kRequests = 4;
  std::vector<std::vector<TokenId>> want;
  for (int i = 0; i < kRequests; ++i) want.push_back(solo(prompt_for(i + 8), 40));
  serve::EngineOptions o;
  o.parallel = kRequests;
  o.ctx_size = 256;
  o.kv_blocks = 12;  // 4 to 7 blocks of 16 per sequence are needed (20 in all); 12 hold 2 of them
  o.prefix_cache = false;
  serve::Engine eng(*d.model, d.tok.tokenizer(), o);
  std::vector<std::shared_ptr<serve::Stream>> st;
  for (int i = 0; i < kRequests; ++i) st.push_back(eng.submit(prompt_for(i + 8), greedy(40)));
  for (int i = 0; i < kRequests; ++i) {
    Result r = collect(*st[i]);
    EXPECT_EQ(r.ids, want[i]) << "request " << i;
    EXPECT_EQ(r.reason, "length");
  }
  auto s = settled(eng);
  EXPECT_GT(s.preemptions, 0u);
  EXPECT_EQ(s.kv_blocks_used, 0);
}

// A cancelled request leaves at the next step and its blocks return to the pool.
TEST(ServeEngine, CancelFreesBlocks) {
  auto& d = Demo::get();
  serve::EngineOptions o;
  o.parallel = 2;
  o.ctx_size = 512;
  o.prefix_cache = false;
  serve::Engine eng(*d.model, d.tok.tokenizer(), o);
  auto st = eng.submit(prompt_for(3), greedy(400));
  auto first = st->next(60s);
  ASSERT_TRUE(first);
  int64_t used = 0;  // the step's bookkeeping lands just after its first event
  for (int i = 0; i < 100 && used == 0; ++i) {
    used = eng.stats().kv_blocks_used;
    if (used == 0) std::this_thread::sleep_for(10ms);
  }
  EXPECT_GT(used, 0);
  st->cancel();
  for (;;) {
    auto e = st->next(60s);
    ASSERT_TRUE(e);
    if (e->finished) {
      EXPECT_EQ(e->finish_reason, "cancelled");
      EXPECT_LT(e->completion_tokens, 400);
      break;
    }
  }
  auto s = settled(eng);
  EXPECT_EQ(s.kv_blocks_used, 0);
  EXPECT_EQ(s.finished["cancelled"], 1u);
}

// Stop strings cut the text before the stop (held back while it may still be one); EOS stops.
TEST(ServeEngine, StopStrings) {
  auto& d = Demo::get();
  auto p = prompt_for(0);
  const auto ids = solo(p, 30);
  const std::string full = d.tok.decode(ids, true);
  ASSERT_GT(full.size(), 12u);
  const std::string stop = full.substr(8, 3);
  serve::EngineOptions o;
  o.parallel = 1;
  serve::Engine eng(*d.model, d.tok.tokenizer(), o);
  auto so = greedy(30);
  so.stop = {stop, "never-seen-zzz"};
  Result r = collect(*eng.submit(p, so));
  EXPECT_EQ(r.reason, "stop");
  EXPECT_EQ(r.text, full.substr(0, full.find(stop)));
  // EOS: the demo's eos is id 0; stop_token_ids works the same way for any id.
  auto so2 = greedy(30);
  so2.stop_token_ids = {ids[4]};
  Result r2 = collect(*eng.submit(p, so2));
  EXPECT_EQ(r2.reason, "stop");
  EXPECT_EQ(r2.ids.size(), 5u);
}

// Sampling is reproducible per seed and independent of the batch.
TEST(ServeEngine, SeededSamplingIsReproducible) {
  auto& d = Demo::get();
  serve::EngineOptions o;
  o.parallel = 4;
  serve::Engine eng(*d.model, d.tok.tokenizer(), o);
  auto so = greedy(20);
  so.config.do_sample = true;
  so.config.temperature = 0.9;
  so.config.top_k = 40;
  so.seed = 1234;
  so.top_logprobs = 3;
  auto s1 = eng.submit(prompt_for(1), so);
  auto noise = eng.submit(prompt_for(2), greedy(30));
  Result a = collect(*s1);
  collect(*noise);
  Result b = collect(*eng.submit(prompt_for(1), so));
  EXPECT_EQ(a.ids, b.ids);
  so.seed = 99;
  Result c = collect(*eng.submit(prompt_for(1), so));
  EXPECT_NE(a.ids, c.ids);
}

// A full queue refuses at once; a prompt over the context is refused naming the overflow.
TEST(ServeEngine, QueueAndContextLimits) {
  auto& d = Demo::get();
  serve::EngineOptions o;
  o.parallel = 1;
  o.max_queue = 2;
  o.ctx_size = 64;
  serve::Engine eng(*d.model, d.tok.tokenizer(), o);
  std::vector<TokenId> longp(70, 5);
  try {
    eng.submit(longp, greedy(4));
    FAIL() << "no error";
  } catch (const ohm::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("7 too many"), std::string::npos) << e.what();
  }
  std::vector<std::shared_ptr<serve::Stream>> st;
  int refused = 0;
  for (int i = 0; i < 8; ++i) {
    auto s = eng.submit(prompt_for(0), greedy(40));
    if (s)
      st.push_back(s);
    else
      ++refused;
  }
  EXPECT_GT(refused, 0);
  for (auto& s : st) collect(*s);
}

// Every architecture through the paged path: logits of a 40-token sequence prefilled in chunks
// of 7 (its K/V in scattered blocks) equal forward()'s on the contiguous cache.
TEST(ServeEngine, ForwardPagedMatchesForwardEveryArchitecture) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(OHM_SOURCE_DIR) / "tests/fixtures/models";
  int checked = 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    const fs::path f32 = dir.path() / "f32";
    if (!fs::exists(f32 / "config.json")) continue;
    SCOPED_TRACE(dir.path().filename().string());
    auto model = ohm::load_causal_lm(f32.string());
    const int64_t V = model->vocab_size(), n = 40;
    std::vector<TokenId> ids;
    for (int64_t i = 0; i < n; ++i) ids.push_back(static_cast<TokenId>((i * 31 + 7) % V));
    ohm::Tensor in = ohm::Tensor::empty(ohm::DType::I64, {1, n});
    for (int64_t i = 0; i < n; ++i) in.mutable_data<int64_t>()[i] = ids[static_cast<size_t>(i)];
    auto cache = model->make_cache(1, n);
    ohm::Tensor want = model->forward(in, {}, {}, cache);  // [1, n, V]
    auto pool = model->make_paged_pool(16, 8);
    std::vector<int32_t> blocks = {9, 2, 14, 5, 0, 11};  // out of order on purpose
    float max_diff = 0;
    for (int64_t past = 0; past < n; past += 7) {
      const int64_t t = std::min<int64_t>(7, n - past);
      std::vector<TokenId> chunk(ids.begin() + past, ids.begin() + past + t);
      std::vector<int32_t> pos;
      std::vector<int64_t> rows;
      for (int64_t i = 0; i < t; ++i) {
        pos.push_back(static_cast<int32_t>(past + i));
        rows.push_back(i);
      }
      ohm::nn::PagedSeq s{0, t, past, blocks.data(), static_cast<int64_t>(blocks.size())};
      ohm::Tensor got = model->forward_paged(chunk, pos, *pool, std::span(&s, 1), rows);
      for (int64_t i = 0; i < t; ++i)
        for (int64_t v = 0; v < V; ++v)
          max_diff = std::max(max_diff, std::abs(got.data<float>()[i * V + v] -
                                                 want.data<float>()[(past + i) * V + v]));
    }
    EXPECT_LE(max_diff, 1e-4f);
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

// RoPE whose frequencies follow the sequence length (dynamic NTK; Phi-3's longrope, which also
// recomputes the cache when a decode step crosses original_max_position_embeddings): in one
// step, each sequence's rows use its own length, so short and long requests batched together,
// and short ones crossing the threshold while decoding, return what each gives alone. Blocks
// computed with scaled frequencies are never shared through the prefix cache.
TEST(ServeEngine, RopeScalingFollowsEachSequence) {
  InvariantKernels k;
  const std::string root = std::string(OHM_SOURCE_DIR) + "/tests/fixtures/rope/";
  // thresholds: llama_dynamic max_position_embeddings 24; phi3_longrope original 16
  for (const char* name : {"llama_dynamic", "phi3_longrope"}) {
    SCOPED_TRACE(name);
    auto model = ohm::load_causal_lm(root + name);
    const auto V = model->vocab_size();
    const auto make = [&](int64_t n, int64_t seed) {
      std::vector<TokenId> p;
      for (int64_t i = 0; i < n; ++i) p.push_back(static_cast<TokenId>((i * 37 + seed * 11) % V));
      return p;
    };
    // short (stays short), short crossing while decoding, long from the start
    const std::vector<std::vector<TokenId>> prompts = {make(5, 1), make(12, 2), make(30, 3),
                                                       make(14, 4), make(40, 5)};
    const std::vector<int64_t> lens = {6, 14, 8, 12, 5};
    std::vector<std::vector<TokenId>> want;
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto out = ohm::generation::greedy_generate(*model, prompts[i], lens[i]);
      want.emplace_back(out.begin() + static_cast<std::ptrdiff_t>(prompts[i].size()), out.end());
    }
    serve::EngineOptions o;
    o.parallel = 8;
    o.ctx_size = 64;
    o.block_tokens = 4;
    o.max_batch_tokens = 16;  // chunked prefill of the long prompts
    serve::Engine eng(*model, Demo::get().tok.tokenizer(), o);
    std::vector<std::shared_ptr<serve::Stream>> st;
    for (size_t i = 0; i < prompts.size(); ++i)
      st.push_back(eng.submit(prompts[i], greedy(lens[i])));
    for (size_t i = 0; i < prompts.size(); ++i)
      EXPECT_EQ(collect(*st[i]).ids, want[i]) << "request " << i;
    // The prefix cache now holds the short-regime blocks of these prompts. A long prompt that
    // starts with a short one's tokens must not take them (its keys use other frequencies).
    std::vector<TokenId> longer = prompts[1];
    for (TokenId t : make(20, 6)) longer.push_back(t);
    auto out = ohm::generation::greedy_generate(*model, longer, 6);
    const std::vector<TokenId> want_long(out.begin() + static_cast<std::ptrdiff_t>(longer.size()),
                                         out.end());
    Result r = collect(*eng.submit(longer, greedy(6)));
    EXPECT_EQ(r.ids, want_long);
    EXPECT_EQ(r.cached, 0);
    // and a short prompt still shares them
    Result r2 = collect(*eng.submit(prompts[3], greedy(2)));
    EXPECT_GT(r2.cached, 0);
  }
}
