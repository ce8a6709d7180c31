// `ohm eval` against lm-evaluation-harness itself (tests/fixtures/eval/*.json, written by
// scripts/make_eval_fixtures.py with the PyPI lm-eval 0.4.13, HF backend, float32, on the demo
// model): per document the same requests (context, continuation), loglikelihoods within 1e-4,
// is_greedy identical, acc / acc_norm identical, and the same aggregated results; plus the
// engine's invariants (batching and context sharing do not change numbers), Python's
// random.Random and the bad-input errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "../../src/eval/py_random.h"
#include "ohm/core/error.h"
#include "ohm/eval/harness.h"
#include "ohm/eval/loglikelihood.h"
#include "ohm/formats/config.h"
#include "ohm/models/causal_lm.h"
#include "ohm/tokenizers/tokenizer.h"
#include "test_util.h"

namespace {

using json = nlohmann::ordered_json;

struct Demo {
  std::unique_ptr<ohm::CausalLM> model;
  std::unique_ptr<ohm::tokenizers::AutoTokenizer> tok;
  ohm::eval::TextLM lm;
};

Demo& demo() {
  static Demo d = [] {
    Demo x;
    const std::string dir = (ohm::test::source_dir() / "models" / "ohm-demo").string();
    x.model = ohm::load_causal_lm(dir, {.dtype = ohm::DType::F32, .threads = 2});
    x.tok = std::make_unique<ohm::tokenizers::AutoTokenizer>(
        ohm::tokenizers::AutoTokenizer::from_pretrained(dir));
    x.lm.model = x.model.get();
    auto* tok = x.tok.get();
    x.lm.encode = [tok](const std::string& s, bool special) { return tok->encode(s, special); };
    x.lm.prefix_token = *tok->bos_token_id();
    x.lm.prefix_text = tok->decode(std::vector<ohm::TokenId>{x.lm.prefix_token});
    x.lm.name = "demo";
    x.lm.decode = [tok](const std::vector<ohm::TokenId>& ids) { return tok->decode(ids, true); };
    for (int64_t e : x.model->decoder_config().eos_token_id)
      x.lm.eos_ids.push_back(static_cast<ohm::TokenId>(e));
    x.lm.eos_ids.push_back(*tok->eos_token_id());
    const auto gc = ohm::load_generation_config(dir + "/generation_config.json");
    x.lm.generation_max_new_tokens = gc.max_new_tokens;
    for (int64_t e : gc.eos_token_id) x.lm.eos_ids.push_back(static_cast<ohm::TokenId>(e));
    x.lm.eos_text = tok->decode(std::vector<ohm::TokenId>{*tok->eos_token_id()}, false);
    return x;
  }();
  return d;
}

const ohm::eval::TaskRegistry& registry() {
  static const auto r =
      ohm::eval::TaskRegistry::load({(ohm::test::source_dir() / "src" / "eval" / "tasks").string(),
                                     (ohm::test::fixtures_dir() / "eval" / "tasks").string()});
  return r;
}

std::string eval_data() {
  return (ohm::test::shared_data_dir() / "eval").string();
}

json fixture(const std::string& name) {
  const auto path = ohm::test::fixtures_dir() / "eval" / (name + ".json");
  return json::parse(ohm::test::read_file(path.string()));
}

// The samples in tests/fixtures/eval/data (datasets with no files in ../shared/data/eval).
std::string fixture_data() {
  return (ohm::test::fixtures_dir() / "eval" / "data").string();
}

// lm-eval's loglikelihoods of a fixture, in request order (documents, then their requests).
std::vector<ohm::eval::LLResult> fixture_lls(const json& fx) {
  std::vector<ohm::eval::LLResult> out;
  for (const auto& [task, ss] : fx["samples"].items())
    for (const auto& smp : ss)
      for (const auto& r : smp["requests"])
        out.push_back({r["ll"].get<double>(), r["is_greedy"].get<bool>()});
  return out;
}

// Runs a fixture's case and compares with lm-eval. `docs` > 0: only the first `docs` documents
// go through the model (their requests, loglikelihoods and metrics are compared; the
// aggregates are not). `from_fixture`: the model is not run; lm-eval's own loglikelihoods are
// fed to the harness, so every document's requests and metrics and the aggregates must come
// out as lm-eval's (a cheap check of all documents).
void check_case(const std::string& name, int64_t docs = 0, bool from_fixture = false) {
  const json fx = fixture(name);
  const bool own_data = fx["limit"].is_null();
  if (!own_data) OHM_REQUIRE_SHARED(std::filesystem::exists(eval_data()), eval_data());
  ohm::eval::EvalOptions opt;
  for (const auto& t : fx["tasks"]) opt.tasks.push_back(t.get<std::string>());
  opt.num_fewshot = fx["num_fewshot"].get<int>();
  if (!fx["limit"].is_null()) opt.limit = fx["limit"].get<int64_t>();
  if (docs > 0) opt.limit = docs;
  opt.data_dir = own_data ? fixture_data() : eval_data();
  opt.log_samples = true;
  opt.ll.batch_size = 7;  // not lm-eval's 8: batching must not matter
  if (from_fixture) {
    const auto lls = fixture_lls(fx);
    opt.loglikelihood = [lls](const std::vector<ohm::eval::LLRequest>& reqs) {
      EXPECT_EQ(reqs.size(), lls.size());
      return lls;
    };
  }
  const json got = ohm::eval::evaluate(demo().lm, registry(), opt);
  double worst = 0;
  int64_t n_req = 0;
  for (const auto& [task, want_samples] : fx["samples"].items()) {
    ASSERT_TRUE(got["samples"].contains(task)) << task;
    const auto& samples = got["samples"][task];
    ASSERT_EQ(samples.size(), docs > 0
                                  ? std::min<size_t>(static_cast<size_t>(docs), want_samples.size())
                                  : want_samples.size())
        << task;
    for (size_t i = 0; i < samples.size(); ++i) {
      const auto& w = want_samples[i];
      const auto& g = samples[i];
      ASSERT_EQ(g["doc_id"].get<int64_t>(), w["doc_id"].get<int64_t>());
      EXPECT_EQ(g["target"], w["target"]) << task << " doc " << i;
      ASSERT_EQ(g["arguments"].size(), w["requests"].size()) << task << " doc " << i;
      for (size_t k = 0; k < w["requests"].size(); ++k) {
        const auto& wr = w["requests"][k];
        ASSERT_EQ(g["arguments"][k][0].get<std::string>(), wr["context"].get<std::string>())
            << task << " doc " << i << " request " << k;
        ASSERT_EQ(g["arguments"][k][1].get<std::string>(), wr["continuation"].get<std::string>())
            << task << " doc " << i << " request " << k;
        // multiple_choice logs one response per request; loglikelihood one in all.
        const double ll = g["resps"][k][0][0].get<double>();
        const double want = wr["ll"].get<double>();
        worst = std::max(worst, std::abs(ll - want));
        EXPECT_NEAR(ll, want, 1e-4) << task << " doc " << i << " request " << k;
        EXPECT_EQ(g["resps"][k][0][1].get<bool>(), wr["is_greedy"].get<bool>())
            << task << " doc " << i << " request " << k;
        ++n_req;
      }
      for (const char* m : {"acc", "acc_norm"}) {
        if (w.contains(m)) {
          // truthfulqa_mc2's acc is a probability mass, computed from the loglikelihoods.
          const double wv = w[m].get<double>();
          const double tol = from_fixture ? 1e-12 : (wv == 0.0 || wv == 1.0) ? 0.0 : 1e-4;
          EXPECT_NEAR(g[m].get<double>(), wv, tol) << task << " doc " << i << " " << m;
        }
      }
      if (w.contains("perplexity")) {
        EXPECT_NEAR(g["perplexity"].get<double>(), w["perplexity"].get<double>(),
                    from_fixture ? 0.0 : 1e-4)
            << task << " doc " << i;
      }
    }
  }
  if (docs > 0) {
    std::printf("[measure] %s (%lld docs): %lld requests, max |ll - lm-eval| %.2e\n", name.c_str(),
                static_cast<long long>(docs), static_cast<long long>(n_req), worst);
    return;
  }
  for (const auto& [task, want] : fx["results"].items()) {
    ASSERT_TRUE(got["results"].contains(task)) << task;
    for (const auto& [k, v] : want.items()) {
      if (k.find(",none") == std::string::npos || !v.is_number()) continue;
      ASSERT_TRUE(got["results"][task].contains(k)) << task << " " << k;
      // perplexity (and its bootstrap stderr) are exp of loglikelihoods: relative tolerance.
      const bool ppl = k.rfind("perplexity", 0) == 0;
      EXPECT_NEAR(got["results"][task][k].get<double>(), v.get<double>(),
                  ppl ? (from_fixture ? 1e-9 : 1e-4) * std::abs(v.get<double>()) : 1e-12)
          << task << " " << k;
    }
    EXPECT_EQ(got["n-samples"].contains(task) ? got["n-samples"][task]["effective"].get<int64_t>()
                                              : got["results"][task]["sample_len"].get<int64_t>(),
              want["sample_len"].get<int64_t>());
  }
  std::printf("[measure] %s: %lld requests, max |ll - lm-eval| %.2e\n", name.c_str(),
              static_cast<long long>(n_req), worst);
}

TEST(EvalVsLmEval, Piqa0Shot) {
  check_case("piqa_0shot", 10);
  check_case("piqa_0shot", 0, true);
}
TEST(EvalVsLmEval, Hellaswag0Shot) {
  check_case("hellaswag_0shot", 8);
  check_case("hellaswag_0shot", 0, true);
}
TEST(EvalVsLmEval, MmluSubset0Shot) {
  check_case("mmlu_0shot", 4);
  check_case("mmlu_0shot", 0, true);
}
TEST(EvalVsLmEval, MmluSubset5Shot) {
  check_case("mmlu_5shot", 2);
  check_case("mmlu_5shot", 0, true);
}
// arc_easy, arc_challenge, winogrande (0- and 2-shot), truthfulqa_mc1/mc2 and lambada_openai
// on the samples in tests/fixtures/eval/data: a few documents through the model (loglikelihoods
// within 1e-4, is_greedy identical), and every document's requests, metrics and the aggregates
// from lm-eval's own loglikelihoods (the ASan run stays short).
TEST(EvalVsLmEval, ArcEasy) {
  check_case("arc_easy_0shot", 4);
  check_case("arc_easy_0shot", 0, true);
}
TEST(EvalVsLmEval, ArcChallenge) {
  check_case("arc_challenge_0shot", 4);
  check_case("arc_challenge_0shot", 0, true);
}
TEST(EvalVsLmEval, WinograndePartialEvaluation) {
  check_case("winogrande_0shot", 4);
  check_case("winogrande_0shot", 0, true);
}
TEST(EvalVsLmEval, Winogrande2ShotRandomSampler) {
  check_case("winogrande_2shot", 3);
  check_case("winogrande_2shot", 0, true);
}
TEST(EvalVsLmEval, TruthfulqaMc1) {
  check_case("truthfulqa_mc1", 3);
  check_case("truthfulqa_mc1", 0, true);
}
TEST(EvalVsLmEval, TruthfulqaMc2ProbabilityMass) {
  check_case("truthfulqa_mc2", 3);
  check_case("truthfulqa_mc2", 0, true);
}
TEST(EvalVsLmEval, LambadaLoglikelihood) {
  check_case("lambada_openai", 6);
  check_case("lambada_openai", 0, true);
}

TEST(EvalVsLmEval, Piqa3ShotRandomSampler) {
  check_case("piqa_3shot", 6);
  check_case("piqa_3shot", 0, true);
}
TEST(EvalVsLmEval, Hellaswag2ShotRandomSampler) {
  check_case("hellaswag_2shot", 4);
  check_case("hellaswag_2shot", 0, true);
}

// wikitext (loglikelihood_rolling): per page the loglikelihood, word and byte counts, and
// word_perplexity within 0.01% of lm-eval's.
TEST(EvalVsLmEval, WikitextRolling) {
  const auto raw = ohm::test::shared_data_dir() / "corpora" / "wikitext-2-raw" / "wiki.test.raw";
  OHM_REQUIRE_SHARED(std::filesystem::exists(raw), raw.string());
  const json fx = fixture("wikitext");
  ohm::test::TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "wikitext");
  std::filesystem::create_symlink(std::filesystem::absolute(raw),
                                  tmp.path() / "wikitext" / "wiki.test.raw");
  ohm::eval::EvalOptions opt;
  opt.tasks = {"wikitext"};
  opt.limit = 1;  // of the fixture's 3 pages (the ASan run stays short)
  opt.data_dir = tmp.path().string();
  opt.log_samples = true;
  const json got = ohm::eval::evaluate(demo().lm, registry(), opt);
  const auto& want = fx["samples"]["wikitext"];
  const auto& samples = got["samples"]["wikitext"];
  ASSERT_EQ(samples.size(), 1u);
  double worst = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const double ll = samples[i]["resps"][0][0].get<double>();
    const double w = want[i]["ll"].get<double>();
    worst = std::max(worst, std::abs(ll - w) / std::abs(w));
    EXPECT_NEAR(ll, w, 1e-6 * std::abs(w)) << "page " << i;
    EXPECT_EQ(samples[i]["word_perplexity"][1].get<double>(), want[i]["words"].get<double>());
    EXPECT_EQ(samples[i]["byte_perplexity"][1].get<double>(), want[i]["bytes"].get<double>());
  }
  // lm-eval's corpus-level formulas on its first page.
  const double ll0 = want[0]["ll"].get<double>(), words0 = want[0]["words"].get<double>(),
               bytes0 = want[0]["bytes"].get<double>();
  const std::map<std::string, double> expect = {
      {"word_perplexity,none", std::exp(-ll0 / words0)},
      {"byte_perplexity,none", std::exp(-ll0 / bytes0)},
      {"bits_per_byte,none", -ll0 / (bytes0 * std::log(2.0))}};
  for (const auto& [m, w] : expect) {
    const double v = got["results"]["wikitext"][m].get<double>();
    EXPECT_NEAR(v, w, 1e-4 * w) << m;
  }
  std::printf(
      "[measure] wikitext: %zu page(s), max relative |ll - lm-eval| %.2e, word_perplexity "
      "%.4f (lm-eval's on the same page %.4f)\n",
      samples.size(), worst, got["results"]["wikitext"]["word_perplexity,none"].get<double>(),
      expect.at("word_perplexity,none"));
}

// gsm8k (generate_until, 5-shot from the test split): per document the same prompt, the
// same greedy text (cut at the stop sequences), the same filtered answers and exact_match.
TEST(EvalVsLmEval, Gsm8kGenerateUntil) {
  OHM_REQUIRE_SHARED(std::filesystem::exists(eval_data()), eval_data());
  const json fx = fixture("gsm8k_5shot");
  ohm::eval::EvalOptions opt;
  opt.tasks = {"fx_gsm8k"};
  opt.num_fewshot = fx["num_fewshot"].get<int>();
  constexpr int64_t kDocs = 4;  // of the fixture's 20 (the ASan run stays short)
  opt.limit = kDocs;
  opt.data_dir = eval_data();
  opt.log_samples = true;
  const json got = ohm::eval::evaluate(demo().lm, registry(), opt);
  std::map<std::pair<int64_t, std::string>, json> by_key;
  for (const auto& g : got["samples"]["fx_gsm8k"])
    by_key[{g["doc_id"].get<int64_t>(), g["filter"].get<std::string>()}] = g;
  json want = json::array();
  std::map<std::string, std::pair<double, int64_t>> em_sum;  // filter -> (sum, n)
  for (const auto& w : fx["samples"]["fx_gsm8k"])
    if (w["doc_id"].get<int64_t>() < kDocs) {
      want.push_back(w);
      auto& e = em_sum[w["filter"].get<std::string>()];
      e.first += w["exact_match"].get<double>();
      ++e.second;
    }
  ASSERT_EQ(by_key.size(), want.size());
  int64_t same_text = 0;
  for (const auto& w : want) {
    const auto key = std::make_pair(w["doc_id"].get<int64_t>(), w["filter"].get<std::string>());
    ASSERT_TRUE(by_key.count(key)) << key.first << " " << key.second;
    const auto& g = by_key[key];
    EXPECT_EQ(g["arguments"][0][0].get<std::string>(), w["context"].get<std::string>())
        << "doc " << key.first;
    EXPECT_EQ(g["resps"][0][0].get<std::string>(), w["resp"].get<std::string>())
        << "doc " << key.first;
    same_text += g["resps"][0][0] == w["resp"] ? 1 : 0;
    EXPECT_EQ(g["filtered_resps"][0].get<std::string>(), w["filtered"].get<std::string>())
        << "doc " << key.first << " " << key.second;
    EXPECT_EQ(g["exact_match"].get<double>(), w["exact_match"].get<double>())
        << "doc " << key.first << " " << key.second;
  }
  for (const auto& [f, e] : em_sum)
    EXPECT_EQ(got["results"]["fx_gsm8k"]["exact_match," + f].get<double>(),
              e.first / static_cast<double>(e.second))
        << f;
  std::printf("[measure] gsm8k: %lld of %zu generations identical\n",
              static_cast<long long>(same_text), want.size());
}

TEST(EvalPyRandom, SampleMatchesPython) {
  const json fx = fixture("py_random");
  for (const auto& c : fx) {
    ohm::eval::PyRandom r(c["seed"].get<uint64_t>());
    for (const auto& want : c["samples"]) {
      const auto got = r.sample(c["n"].get<size_t>(), c["k"].get<size_t>());
      std::vector<size_t> w;
      for (const auto& x : want) w.push_back(x.get<size_t>());
      EXPECT_EQ(got, w) << "seed " << c["seed"];
    }
  }
}

// Sharing a context's KV and batching give each request the numbers it gets alone.
TEST(EvalEngine, SharingAndBatchingDoNotChangeResults) {
  auto& d = demo();
  std::vector<ohm::eval::LLRequest> reqs;
  const auto ctx = d.lm.encode(
      "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. First "
      "Citizen: You are all resolved rather to die than to famish?",
      true);
  for (const char* c : {" Resolved.", " resolved, resolved.", " No", " We know it, we know it."})
    reqs.push_back({ctx, d.lm.encode(c, true)});
  reqs.push_back({{d.lm.prefix_token}, d.lm.encode("To be, or not to be", true)});
  ohm::eval::LLOptions batched;
  batched.batch_size = 64;
  batched.block_tokens = 8;
  const auto all = ohm::eval::loglikelihood_tokens(*d.model, reqs, batched);
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto one = ohm::eval::loglikelihood_tokens(*d.model, {reqs[i]}, {});
    EXPECT_NEAR(all[i].logprob, one[0].logprob, 1e-4) << i;
    EXPECT_EQ(all[i].is_greedy, one[0].is_greedy) << i;
  }
  // Left truncation: a long context keeps the last max_length tokens.
  ohm::eval::LLOptions shortlen;
  shortlen.max_length = 16;
  std::vector<ohm::TokenId> tail(ctx.end() - 12, ctx.end());
  const auto a = ohm::eval::loglikelihood_tokens(*d.model, {{ctx, reqs[0].continuation}}, shortlen);
  const auto b =
      ohm::eval::loglikelihood_tokens(*d.model, {{tail, reqs[0].continuation}}, shortlen);
  ASSERT_LE(reqs[0].continuation.size() + 12, 17u);
  EXPECT_NEAR(a[0].logprob, b[0].logprob, 1e-5);
}

TEST(EvalEngine, RollingWindowsPredictEveryTokenOnce) {
  std::vector<ohm::TokenId> toks(23);
  for (int i = 0; i < 23; ++i) toks[static_cast<size_t>(i)] = 100 + i;
  const auto w = ohm::eval::rolling_windows(toks, 0, 8);
  std::vector<ohm::TokenId> predicted;
  for (const auto& r : w) {
    EXPECT_LE(r.context.size() + r.continuation.size(), 9u);
    predicted.insert(predicted.end(), r.continuation.begin(), r.continuation.end());
  }
  EXPECT_EQ(predicted, toks);
  EXPECT_EQ(w[0].context, std::vector<ohm::TokenId>{0});
  // The last window is full-size (context left-filled with earlier tokens).
  EXPECT_EQ(w.back().context.size() + w.back().continuation.size(), 9u);
}

// ---- bad input ----

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ohm::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(EvalBadInput, UnknownTask) {
  ohm::eval::EvalOptions opt;
  opt.tasks = {"hellaswg"};
  opt.data_dir = eval_data();
  const auto msg = error_of([&] { ohm::eval::evaluate(demo().lm, registry(), opt); });
  EXPECT_NE(msg.find("unknown task 'hellaswg'"), std::string::npos) << msg;
}

TEST(EvalBadInput, LimitZero) {
  ohm::eval::EvalOptions opt;
  opt.tasks = {"piqa"};
  opt.limit = 0;
  opt.data_dir = eval_data();
  const auto msg = error_of([&] { ohm::eval::evaluate(demo().lm, registry(), opt); });
  EXPECT_NE(msg.find("limit"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at least 1"), std::string::npos) << msg;
}

TEST(EvalBadInput, DataFileMissingAField) {
  ohm::test::TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "piqa");
  ohm::test::write_file(tmp.file("piqa/valid.jsonl"),
                        "{\"goal\": \"a\", \"sol1\": \"b\", \"sol2\": \"c\"}\n"
                        "{\"goal\": \"a\", \"sol2\": \"c\"}\n");
  ohm::test::write_file(tmp.file("piqa/valid-labels.lst"), "0\n1\n");
  ohm::eval::EvalOptions opt;
  opt.tasks = {"piqa"};
  opt.data_dir = tmp.path().string();
  const auto msg = error_of([&] { ohm::eval::evaluate(demo().lm, registry(), opt); });
  EXPECT_NE(msg.find("piqa/valid.jsonl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("row 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("task piqa"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'sol1'"), std::string::npos) << msg;
}

TEST(EvalBadInput, MissingDataFile) {
  ohm::test::TempDir tmp;
  ohm::eval::EvalOptions opt;
  opt.tasks = {"mmlu_anatomy"};
  opt.data_dir = tmp.path().string();
  const auto msg = error_of([&] { ohm::eval::evaluate(demo().lm, registry(), opt); });
  EXPECT_NE(msg.find("mmlu/test/anatomy_test.csv"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
}

TEST(EvalBadInput, WinograndeRowWithoutBlank) {
  ohm::test::TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "winogrande" / "winogrande_xl");
  ohm::test::write_file(
      tmp.file("winogrande/winogrande_xl/validation.jsonl"),
      "{\"sentence\": \"A _ b.\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": \"1\"}\n"
      "{\"sentence\": \"No blank.\", \"option1\": \"x\", \"option2\": \"y\", \"answer\": "
      "\"2\"}\n");
  ohm::eval::EvalOptions opt;
  opt.tasks = {"winogrande"};
  opt.data_dir = tmp.path().string();
  const auto msg = error_of([&] { ohm::eval::evaluate(demo().lm, registry(), opt); });
  EXPECT_NE(msg.find("validation.jsonl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("task winogrande, row 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no '_'"), std::string::npos) << msg;
}

TEST(EvalBadInput, PythonProcessResultsRefused) {
  ohm::test::TempDir tmp;
  ohm::test::write_file(tmp.file("t.yaml"),
                        "task: my_mc2\noutput_type: multiple_choice\ndoc_to_text: q\n"
                        "doc_to_target: 0\ndoc_to_choice: c\ndata_files: {test: x.jsonl}\n"
                        "test_split: test\nprocess_results: !function utils.process_results_mc2\n");
  const auto reg = ohm::eval::TaskRegistry::load({tmp.path().string()});
  ohm::eval::EvalOptions opt;
  opt.tasks = {"my_mc2"};
  opt.data_dir = tmp.path().string();
  const auto msg = error_of([&] { ohm::eval::evaluate(demo().lm, reg, opt); });
  EXPECT_NE(msg.find("t.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("process_results"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truthfulqa_mc2"), std::string::npos) << msg;
}

TEST(EvalBadInput, MalformedTaskYaml) {
  ohm::test::TempDir tmp;
  ohm::test::write_file(
      tmp.file("broken.yaml"),
      ohm::test::read_file(
          (ohm::test::fixtures_dir() / "eval" / "tasks" / "malformed.yaml.txt").string()));
  const auto msg = error_of([&] { ohm::eval::TaskRegistry::load({tmp.path().string()}); });
  EXPECT_NE(msg.find("broken.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed YAML at line"), std::string::npos) << msg;
  // Well-formed YAML that is not a task.
  ohm::test::write_file(tmp.file("broken.yaml"), "name: piqa\noutput_type: multiple_choice\n");
  const auto msg2 = error_of([&] { ohm::eval::TaskRegistry::load({tmp.path().string()}); });
  EXPECT_NE(msg2.find("task: NAME"), std::string::npos) << msg2;
}

}  // namespace
