// `ohm serve`: the HTTP routes over the engine (docs/serving.md).
#include "ohm/serve/server.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "ohm/chat/chat_template.h"
#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"
#include "ohm/generation/auto_model.h"
#include "ohm/generation/grammar.h"
#include "ohm/generation/watermark.h"
#include "ohm/guard/guard.h"
#include "ohm/jinja/template.h"
#include "ohm/net/http_front.h"
#include "ohm/serve/chat_prompt.h"
#include "ohm/serve/openai.h"
#include "ohm/serve/penalties.h"
#include "ohm/serve/tool_calls.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::serve {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- API keys -------------------------------------------------------------------------------

std::vector<ApiKey> load_api_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(ErrorContext().file(path), "cannot read the API keys file");
  std::vector<ApiKey> keys;
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ls(line);
    std::string word;
    ApiKey k;
    while (ls >> word) {
      auto bad = [&](const std::string& why) {
        throw InvalidArgument(ErrorContext().file(path),
                              "line " + std::to_string(no) + ": " + why + " ('" + word + "')");
      };
      if (k.key.empty()) {
        if (word.find('=') != std::string::npos) bad("the key comes first");
        if (word.size() < 8) bad("a key needs at least 8 characters");
        k.key = word;
        continue;
      }
      const auto eq = word.find('=');
      if (eq == std::string::npos) bad("expected rpm=N, tpd=N or name=NAME");
      const std::string f = word.substr(0, eq), v = word.substr(eq + 1);
      if (f == "name") {
        k.name = v;
        continue;
      }
      int64_t n = -1;
      try {
        size_t used = 0;
        n = std::stoll(v, &used);
        if (used != v.size()) n = -1;
      } catch (...) {
      }
      if (n < 0) bad("needs a non-negative integer");
      if (f == "rpm")
        k.requests_per_minute = n;
      else if (f == "tpd")
        k.tokens_per_day = n;
      else
        bad("unknown field");
    }
    if (k.key.empty()) continue;
    for (const auto& o : keys)
      if (o.key == k.key)
        throw InvalidArgument(ErrorContext().file(path),
                              "line " + std::to_string(no) + ": duplicate key");
    if (k.name.empty()) k.name = "key" + std::to_string(keys.size() + 1);
    keys.push_back(std::move(k));
  }
  if (keys.empty()) throw InvalidArgument(ErrorContext().file(path), "no API keys in the file");
  return keys;
}

namespace {

bool same_secret(const std::string& a, const std::string& b) {
  // Constant time in the length of the stored key.
  unsigned char d = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i)
    d |= static_cast<unsigned char>(b[i] ^ a[i % (a.empty() ? 1 : a.size())]);
  return d == 0 && !a.empty();
}

FinishReason finish_of(const std::string& r) {
  return r == "length"           ? FinishReason::Length
         : r == "content_filter" ? FinishReason::ContentFilter
                                 : FinishReason::Stop;
}

// The content filter's decision as the replies expose it.
json filter_json(const guard::Decision& d, const char* stage) {
  json cats = json::array();
  for (const auto& c : d.categories)
    cats.push_back({{"code", c}, {"name", guard::category_name(c)}});
  json j = {{"blocked", !d.allowed}, {"stage", stage}, {"source", d.source}, {"categories", cats}};
  if (d.malformed) j["malformed_guard_output"] = true;
  return j;
}

std::string codes_of(const guard::Decision& d) {
  std::string s;
  for (const auto& c : d.categories) s += (s.empty() ? "" : ",") + c;
  return s.empty() ? "-" : s;
}

int64_t seconds_to_utc_midnight() {
  const std::time_t now = std::time(nullptr);
  return 86400 - static_cast<int64_t>(now % 86400);
}

// Structured output allows at most one whitespace character where JSON allows whitespace: a
// model cannot spend its tokens on runs of newlines, and the output stays readable.
const generation::JsonGrammarOptions kJsonOpt{1};

// A grammar as an engine constraint.
class GrammarConstraint : public TokenConstraint {
 public:
  GrammarConstraint(const generation::Grammar& g,
                    std::shared_ptr<const generation::TokenBytes> vocab, std::vector<TokenId> eos)
      : m_(g, std::move(vocab)), eos_(std::move(eos)) {}
  void mask(std::span<float> scores) override {
    m_.fill_mask(allowed_, eos_);
    if (allowed_.size() < scores.size()) allowed_.resize(scores.size(), 0);
    generation::apply_mask(scores.data(), static_cast<int64_t>(scores.size()), allowed_);
  }
  void accept(TokenId id) override { m_.accept(id); }
  bool done() const override { return m_.terminated() || (m_.complete() && !m_.can_continue()); }

 private:
  generation::GrammarMatcher m_;
  std::vector<TokenId> eos_;
  std::vector<uint8_t> allowed_;
};

// What one engine stream produced.
struct Collected {
  std::string text;
  std::vector<TokenOut> tokens;
  std::string reason, error;
  int64_t prompt = 0, completion = 0, cached = 0;
  bool finished = false;
};

}  // namespace

// ---- the server -----------------------------------------------------------------------------

struct ModelServer::Impl {
  ServerOptions opt;
  std::string name;
  int64_t created = 0;
  std::unique_ptr<CausalLM> model;
  tokenizers::AutoTokenizer tok;
  std::optional<chat::ChatTemplate> tmpl;
  ToolFormat tool_format = ToolFormat::None;
  GenerationConfig defaults;
  std::shared_ptr<const generation::TokenBytes> vocab;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<guard::ContentFilter> filter;  // --guard / --guard-rules
  std::vector<ApiKey> keys;
  struct Quota {
    std::deque<Clock::time_point> recent;
    int64_t day = -1, used = 0;
  };
  std::mutex quota_mu;
  std::unordered_map<std::string, Quota> quota;  // by key name
  net::FrontedServer svr;
  std::unique_ptr<net::HttpFront> front;
  std::thread th;
  int bound_port = -1;
  std::atomic<bool> draining{false};
  std::mutex log_mu;
  std::random_device rd;
  std::mutex rd_mu;

  explicit Impl(ServerOptions o) : opt(std::move(o)) {
    const ModelSource src = resolve_model(opt.model);
    tok = tokenizers::AutoTokenizer::from_pretrained(opt.tokenizer.empty() ? src.path
                                                                           : opt.tokenizer);
    auto pretrained = AutoModelForCausalLM::from_pretrained(src, opt.load);
    defaults = pretrained.generation_config();
    model = std::move(pretrained).release();
    if (defaults.eos_token_id.empty())
      if (auto e = tok.eos_token_id()) defaults.eos_token_id = {*e};
    try {
      tmpl = chat::ChatTemplate::load(opt.tokenizer.empty() ? src.path : opt.tokenizer);
      // Multi-template configs render tool requests with their "tool_use" template.
      const auto names = tmpl->names();
      const bool has_tool_use = std::find(names.begin(), names.end(), "tool_use") != names.end();
      tool_format = detect_tool_format(tmpl->source(has_tool_use ? "tool_use" : ""));
    } catch (const std::exception&) {
      tmpl.reset();  // no chat template: /v1/chat/completions answers 400
    }
    name = opt.served_model_name;
    if (name.empty()) {
      fs::path p(opt.model);
      name = p.filename().empty() ? p.parent_path().filename().string() : p.filename().string();
      if (name.empty()) name = opt.model;
    }
    created = static_cast<int64_t>(std::time(nullptr));
    if (!opt.api_keys_file.empty()) keys = load_api_keys(opt.api_keys_file);
    EngineOptions eo = opt.engine;
    const int64_t model_ctx = model->decoder_config().max_position_embeddings;
    if (eo.ctx_size <= 0) eo.ctx_size = model_ctx > 0 ? std::min<int64_t>(model_ctx, 4096) : 4096;
    opt.engine = eo;
    vocab = generation::TokenBytes::from_tokenizer(tok.tokenizer());
    engine = std::make_unique<Engine>(*model, tok.tokenizer(), eo);
    if (opt.guard) filter = std::make_unique<guard::ContentFilter>(*opt.guard);
    setup();
  }

  int64_t ctx() const { return engine->options().ctx_size; }

  void log(const std::string& line) {
    std::lock_guard l(log_mu);
    std::cerr << line << "\n";
  }

  // Content filter decisions: logged with the request id and the codes, never the text.
  void log_decision(const std::string& id, const char* stage, const guard::Decision& d) {
    if (opt.quiet) return;
    log("content_filter " + id + " stage=" + stage + " " + (d.allowed ? "allowed" : "blocked") +
        " categories=" + codes_of(d) + " source=" + (d.source.empty() ? "-" : d.source) +
        (d.malformed ? " malformed_guard_output" : ""));
  }

  // A prompt the filter blocks is refused before generation: 400, code "content_filter", with
  // the categories (OpenAI's shape for filtered prompts).
  void filter_prompt(const std::vector<guard::Turn>& turns, const std::string& id,
                     const std::string& param) {
    if (!filter || !filter->checks_prompt()) return;
    const guard::Decision d = filter->check_prompt(turns);
    log_decision(id, "prompt", d);
    if (d.allowed) return;
    std::string names;
    for (const auto& c : d.categories)
      names += (names.empty() ? "" : ", ") + c + " " + guard::category_name(c);
    ApiError e(400,
               "The prompt was blocked by the content filter" +
                   (names.empty() ? std::string() : " (" + names + ")"),
               param);
    e.code = "content_filter";
    e.details = {{"content_filter", filter_json(d, "prompt")}, {"id", id}};
    throw e;
  }

  // The decision added to the (last) chunk of an SSE text.
  static std::string with_filter(const std::string& sse, const json& f) {
    const size_t p = sse.rfind("data: ");
    if (p == std::string::npos) return sse;
    const size_t e = sse.find("\n\n", p);
    json j = json::parse(sse.substr(p + 6, e == std::string::npos ? std::string::npos : e - p - 6),
                         nullptr, false);
    if (!j.is_object() || !j.contains("choices") || j["choices"].empty()) return sse;
    j["choices"][0]["content_filter"] = f;
    return sse.substr(0, p) + sse_event(j);
  }

  uint64_t random_seed() {
    std::lock_guard l(rd_mu);
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }

  // ------------------------------------------------------------------ replies
  static void send_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(dump_json(j), "application/json");
  }
  static void send_error(httplib::Response& res, const ApiError& e) {
    send_json(res, e.status, error_json(e));
  }

  // Authentication and quotas: the key's name, or "" without keys. Throws ApiError 401/429.
  std::string authorize(const httplib::Request& req, httplib::Response& res) {
    if (keys.empty()) return {};
    const std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    const ApiKey* k = nullptr;
    if (h.size() > prefix.size() && h.compare(0, prefix.size(), prefix) == 0) {
      const std::string given = h.substr(prefix.size());
      for (const auto& c : keys)
        if (same_secret(c.key, given)) k = &c;
    }
    if (!k) throw ApiError(401, "Incorrect API key provided: send Authorization: Bearer <key>");
    std::lock_guard l(quota_mu);
    Quota& q = quota[k->name];
    const auto now = Clock::now();
    if (k->requests_per_minute > 0) {
      while (!q.recent.empty() && now - q.recent.front() >= std::chrono::seconds(60))
        q.recent.pop_front();
      if (static_cast<int64_t>(q.recent.size()) >= k->requests_per_minute) {
        const auto wait = std::chrono::duration_cast<std::chrono::seconds>(
                              q.recent.front() + std::chrono::seconds(60) - now)
                              .count() +
                          1;
        res.set_header("Retry-After", std::to_string(wait));
        throw ApiError(429, "Rate limit reached: " + std::to_string(k->requests_per_minute) +
                                " requests per minute for this key");
      }
      q.recent.push_back(now);
    }
    if (k->tokens_per_day > 0) {
      const int64_t day = static_cast<int64_t>(std::time(nullptr)) / 86400;
      if (q.day != day) {
        q.day = day;
        q.used = 0;
      }
      if (q.used >= k->tokens_per_day) {
        res.set_header("Retry-After", std::to_string(seconds_to_utc_midnight()));
        throw ApiError(429, "Token quota reached: " + std::to_string(k->tokens_per_day) +
                                " tokens per day for this key (resets at 00:00 UTC)");
      }
    }
    return k->name;
  }
  void charge(const std::string& key, int64_t tokens) {
    if (key.empty()) return;
    std::lock_guard l(quota_mu);
    quota[key].used += tokens;
  }

  void check_model(const std::string& m) const {
    if (!m.empty() && m != name) throw model_not_found(m);
  }

  // ------------------------------------------------------------------ sampling
  SamplingOptions sampling(const SamplingParams& sp, int64_t prompt_len, bool keep_special,
                           uint64_t seed) const {
    SamplingOptions so;
    so.config = to_generation_config(sp, defaults);
    if (opt.watermark) so.config.watermarking_config = *opt.watermark;
    so.seed = seed;
    so.max_tokens = sp.max_tokens.value_or(ctx() - prompt_len);
    so.stop = sp.stop;
    for (int64_t t : sp.stop_token_ids) so.stop_token_ids.push_back(static_cast<TokenId>(t));
    so.ignore_eos = sp.ignore_eos;
    so.top_logprobs = sp.logprobs ? static_cast<int>(sp.top_logprobs) : -1;
    auto pre = openai_processors(sp);
    if (!pre.empty())
      so.pre = std::make_shared<const generation::LogitsProcessorList>(std::move(pre));
    so.skip_special_tokens = !keep_special;
    return so;
  }

  std::vector<TokenId> eos_ids() const {
    std::vector<TokenId> e;
    for (int64_t x : defaults.eos_token_id) e.push_back(static_cast<TokenId>(x));
    return e;
  }

  // The grammar a request's output must follow, if any.
  std::optional<generation::Grammar> grammar_for(const SamplingParams& sp,
                                                 const std::vector<Tool>* tools,
                                                 const ToolChoice* choice) {
    const auto& rf = sp.response_format;
    try {
      if (tools && choice &&
          (choice->mode == ToolChoice::Mode::Required || choice->mode == ToolChoice::Mode::Named)) {
        if (tools->empty()) throw invalid_param("tool_choice", "needs `tools`");
        ToolCallShape shape = tool_call_shape(
            tool_format, *tools,
            choice->mode == ToolChoice::Mode::Named ? std::optional(choice->name) : std::nullopt);
        std::vector<generation::Grammar> alts;
        for (const auto& c : shape.calls)
          alts.push_back(
              generation::Grammar::sequence({generation::Grammar::literal(c.prefix),
                                             generation::Grammar::json_schema(c.schema, kJsonOpt),
                                             generation::Grammar::literal(c.suffix)}));
        return generation::Grammar::sequence({generation::Grammar::literal(shape.prefix),
                                              generation::Grammar::choice(alts),
                                              generation::Grammar::literal(shape.suffix)});
      }
      if (rf.type == ResponseFormat::Type::JsonObject && !rf.schema)
        return generation::Grammar::any_json_object(kJsonOpt);
      if (rf.schema) return generation::Grammar::json_schema(*rf.schema, kJsonOpt);
    } catch (const ApiError&) {
      throw;
    } catch (const std::exception& e) {
      throw invalid_param(rf.schema ? "response_format.json_schema.schema" : "tools",
                          std::string("unsupported schema: ") + e.what());
    }
    return std::nullopt;
  }

  std::vector<std::shared_ptr<Stream>> submit_n(const std::vector<TokenId>& ids,
                                                const SamplingParams& sp, bool keep_special,
                                                const std::optional<generation::Grammar>& g,
                                                int64_t n) {
    const uint64_t seed = sp.seed ? *sp.seed : random_seed();
    std::vector<std::shared_ptr<Stream>> out;
    for (int64_t i = 0; i < n; ++i) {
      std::unique_ptr<TokenConstraint> c;
      if (g) c = std::make_unique<GrammarConstraint>(*g, vocab, eos_ids());
      std::shared_ptr<Stream> s;
      try {
        s = engine->submit(ids,
                           sampling(sp, static_cast<int64_t>(ids.size()), keep_special,
                                    seed + static_cast<uint64_t>(i)),
                           std::move(c));
      } catch (const InvalidArgument& e) {
        for (auto& o : out) o->cancel();
        throw ApiError(400, e.what(), "prompt");
      }
      if (!s) {
        for (auto& o : out) o->cancel();
        throw ApiError(503, "The server is busy: the request queue is full; retry later");
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  // Waits for every stream to finish (non-streaming replies); cancels them at the deadline.
  std::vector<Collected> collect(std::vector<std::shared_ptr<Stream>>& st, Clock::time_point dl) {
    std::vector<Collected> out(st.size());
    for (size_t i = 0; i < st.size(); ++i) {
      while (!out[i].finished) {
        if (Clock::now() >= dl) st[i]->cancel();
        auto e = st[i]->next(std::chrono::milliseconds(100));
        if (!e) continue;
        out[i].text += e->text;
        for (auto& t : e->tokens) out[i].tokens.push_back(std::move(t));
        if (e->finished) {
          out[i].finished = true;
          out[i].reason = e->finish_reason;
          out[i].error = e->error;
          out[i].prompt = e->prompt_tokens;
          out[i].completion = e->completion_tokens;
          out[i].cached = e->cached_tokens;
        }
      }
    }
    for (auto& c : out) {
      if (c.reason == "error") throw ApiError(500, "generation failed: " + c.error);
      if (c.reason == "cancelled") throw ApiError(408, "the request timed out and was cancelled");
    }
    return out;
  }

  // The usage of a finished non-streamed request: charged to its key, outputs logged when asked.
  // Choices come in groups of `group` samples of one prompt: each prompt's tokens count once.
  Usage finished(const std::string& key, const std::string& id, const std::vector<Collected>& got,
                 size_t group) {
    Usage u;
    int64_t cached = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& c = got[i];
      if ((i + 1) % group == 0) {  // the last sample of a prompt gives its prompt counts
        u.prompt_tokens += c.prompt;
        cached += c.cached;
      }
      u.completion_tokens += c.completion;
      if (opt.log_requests) log("output " + id + ": " + c.text);
    }
    if (!got.empty()) u.cached_tokens = cached;
    charge(key, u.prompt_tokens + u.completion_tokens);
    return u;
  }

  std::vector<TokenLogprob> logprobs_of(const std::vector<TokenOut>& toks) const {
    std::vector<TokenLogprob> out;
    for (const auto& t : toks) {
      TokenLogprob l;
      l.token = std::string(vocab->bytes(t.id));
      l.logprob = t.logprob;
      for (const auto& [id, lp] : t.top) l.top.push_back({std::string(vocab->bytes(id)), lp});
      out.push_back(std::move(l));
    }
    return out;
  }

  // ------------------------------------------------------------------ routes
  std::string render_chat(const std::vector<Message>& messages, const std::vector<Tool>& tools,
                          bool add_generation_prompt, const json& kwargs,
                          bool continue_final_message) {
    if (!tmpl)
      throw ApiError(400, "this model has no chat template; use /v1/completions", "messages");
    chat::ChatOptions co;
    co.add_generation_prompt = add_generation_prompt;
    if (!tools.empty()) co.tools = template_tools(tools);
    co.extra = template_variables(tool_format, tools);          // firefunction: functions, datetime
    for (const auto& [k, v] : kwargs.items()) co.extra[k] = v;  // the request's win
    return render_chat_prompt(*tmpl, template_messages(messages, tool_format), co,
                              continue_final_message);
  }

  void chat_completions(const httplib::Request& req, httplib::Response& res) {
    const std::string key = authorize(req, res);
    const json body = parse_body(req.body, {opt.max_body_bytes, 64});
    ChatRequest r = parse_chat_request(body);
    check_model(r.model);
    const std::string prompt = render_chat(r.messages, r.tools, r.add_generation_prompt,
                                           r.chat_template_kwargs, r.continue_final_message);
    std::vector<TokenId> ids = tok.encode(prompt, /*add_special_tokens=*/false);
    check_context_length(static_cast<int64_t>(ids.size()), r.sampling.max_tokens, ctx(),
                         "messages");
    const bool tools_on = !r.tools.empty() && r.tool_choice.mode != ToolChoice::Mode::None &&
                          tool_format != ToolFormat::None;
    const auto g = grammar_for(r.sampling, &r.tools, &r.tool_choice);
    if (opt.log_requests) log("request chat: " + prompt);
    const std::string rid = random_id("chatcmpl-");
    std::vector<guard::Turn> turns;
    for (const auto& m : r.messages) turns.push_back({m.role, m.content.value_or("")});
    filter_prompt(turns, rid, "messages");
    const auto whole = [&](const std::string& id, int64_t t, std::vector<Collected>& got,
                           const Usage& u) {
      std::vector<ChatChoice> choices;
      for (size_t i = 0; i < got.size(); ++i) {
        ChatChoice c;
        c.index = static_cast<int64_t>(i);
        c.finish_reason = finish_of(got[i].reason);
        c.content = got[i].text;
        if (tools_on) {
          ParsedOutput p = parse_tool_calls(tool_format, got[i].text);
          if (!p.tool_calls.empty()) {
            c.content = p.content;
            c.tool_calls = std::move(p.tool_calls);
            c.finish_reason = FinishReason::ToolCalls;
          }
        }
        if (r.sampling.logprobs) c.logprobs = chat_logprobs_json(logprobs_of(got[i].tokens));
        choices.push_back(std::move(c));
      }
      return chat_completion_json(id, t, name, choices, u);
    };
    serve_request(
        res, key, r.sampling, {ids}, tools_on, g, rid, {turns}, whole,
        [=, this](const std::string& id, int64_t t, size_t i, const Event* e, auto& state) {
          // Returns the SSE text for one event of choice i (e == nullptr: the choice's first
          // chunk).
          std::string out;
          if (!e) {
            ChatDelta d;
            d.role = true;
            d.content = "";
            out += sse_event(chat_chunk_json(id, t, name, static_cast<int64_t>(i), d, std::nullopt,
                                             std::nullopt, r.sampling.include_usage));
            return out;
          }
          ChatDelta d;
          if (tools_on) {
            d = state.parser->push(e->text);
            if (e->finished) {
              ChatDelta f = state.parser->finish();
              if (f.content) d.content = d.content.value_or("") + *f.content;
              for (auto& tc : f.tool_calls) d.tool_calls.push_back(std::move(tc));
            }
          } else if (!e->text.empty()) {
            d.content = e->text;
          }
          std::optional<json> lp;
          if (r.sampling.logprobs && !e->tokens.empty())
            lp = chat_logprobs_json(logprobs_of(e->tokens));
          if (d.content || !d.tool_calls.empty() || lp) {
            // Tool calls go out as OpenAI streams them: a head delta (id, name), then argument
            // fragments; the event's logprobs ride on the first chunk.
            for (const ChatDelta& piece : openai_stream_deltas(std::move(d))) {
              out += sse_event(chat_chunk_json(id, t, name, static_cast<int64_t>(i), piece,
                                               std::nullopt, lp, r.sampling.include_usage));
              lp.reset();
            }
          }
          if (e->finished) {
            FinishReason fr = finish_of(e->finish_reason);
            if (tools_on && state.parser->tool_call_count() > 0) fr = FinishReason::ToolCalls;
            out += sse_event(chat_chunk_json(id, t, name, static_cast<int64_t>(i), ChatDelta{}, fr,
                                             std::nullopt, r.sampling.include_usage));
          }
          return out;
        },
        [=, this](const std::string& id, int64_t t, const Usage& u) {
          return sse_event(chat_usage_chunk_json(id, t, name, u));
        });
  }

  void completions(const httplib::Request& req, httplib::Response& res) {
    const std::string key = authorize(req, res);
    const json body = parse_body(req.body, {opt.max_body_bytes, 64});
    CompletionRequest r = parse_completion_request(body);
    check_model(r.model);
    // A list of prompts is a batch: each prompt is its own engine request(s), so they batch.
    const size_t np = r.prompts.size();
    std::vector<std::vector<TokenId>> ids(np);
    std::vector<std::string> prompt_text(np);
    for (size_t k = 0; k < np; ++k) {
      const Prompt& p = r.prompts[k];
      const std::string param = np == 1 ? "prompt" : "prompt[" + std::to_string(k) + "]";
      if (p.text) {
        ids[k] = tok.encode(*p.text, /*add_special_tokens=*/true);
        prompt_text[k] = *p.text;
      } else {
        check_token_ids(p.tokens, model->vocab_size(), param);
        for (int64_t x : p.tokens) ids[k].push_back(static_cast<TokenId>(x));
        prompt_text[k] = tok.decode(ids[k], false);
      }
      if (ids[k].empty()) throw invalid_param(param, "is empty");
      check_context_length(static_cast<int64_t>(ids[k].size()), r.sampling.max_tokens, ctx(),
                           param);
    }
    const auto g = grammar_for(r.sampling, nullptr, nullptr);
    if (opt.log_requests)
      for (const auto& t : prompt_text) log("request completion: " + t);
    const std::string rid = random_id("cmpl-");
    std::vector<std::vector<guard::Turn>> convs;
    for (size_t k = 0; k < np; ++k) {
      convs.push_back({{"user", prompt_text[k]}});
      filter_prompt(convs.back(), rid, np == 1 ? "prompt" : "prompt[" + std::to_string(k) + "]");
    }
    const size_t n = static_cast<size_t>(r.sampling.n);
    // The echoed prompt of choice i (prompt i / n).
    std::vector<std::string> echo(np);
    if (r.echo) echo = prompt_text;
    const auto whole = [&](const std::string& id, int64_t t, std::vector<Collected>& got,
                           const Usage& u) {
      std::vector<CompletionChoice> choices;
      for (size_t i = 0; i < got.size(); ++i) {
        const std::string& e = echo[i / n];
        CompletionChoice c;
        c.index = static_cast<int64_t>(i);
        c.text = e + got[i].text;
        c.finish_reason = finish_of(got[i].reason);
        if (r.sampling.logprobs)
          c.logprobs =
              completion_logprobs_json(logprobs_of(got[i].tokens), static_cast<int64_t>(e.size()));
        choices.push_back(std::move(c));
      }
      return completion_json(id, t, name, choices, u);
    };
    serve_request(
        res, key, r.sampling, ids, false, g, rid, convs, whole,
        [=, this](const std::string& id, int64_t t, size_t i, const Event* e, auto& state) {
          std::string out;
          if (!e) {
            const std::string& pe = echo[i / n];
            if (!pe.empty()) {
              out += sse_event(completion_chunk_json(id, t, name, static_cast<int64_t>(i), pe,
                                                     std::nullopt, std::nullopt,
                                                     r.sampling.include_usage));
              state.text_offset = static_cast<int64_t>(pe.size());
            }
            return out;
          }
          std::optional<json> lp;
          if (r.sampling.logprobs && !e->tokens.empty()) {
            lp = completion_logprobs_json(logprobs_of(e->tokens), state.text_offset);
            state.text_offset += static_cast<int64_t>(e->text.size());
          }
          if (!e->text.empty() || lp || e->finished)
            out += sse_event(completion_chunk_json(
                id, t, name, static_cast<int64_t>(i), e->text,
                e->finished ? std::optional(finish_of(e->finish_reason)) : std::nullopt, lp,
                r.sampling.include_usage));
          return out;
        },
        [=, this](const std::string& id, int64_t t, const Usage& u) {
          return sse_event(completion_usage_chunk_json(id, t, name, u));
        });
  }

  // The skeleton of the generation routes, once the request is validated: each prompt's n
  // samples are submitted as engine requests (so the prompts of a batch batch), then either
  // collected into one JSON reply, `whole(id, created, collected, usage)`, or streamed as SSE,
  // `chunk(id, created, choice, event or nullptr for the choice's start, state)` and
  // `usage_chunk(id, created, usage)`. Choice p*n + i is sample i of prompt p. `tools_on`:
  // decode with special tokens kept and parse tool calls (chat with tools).
  template <class WholeFn, class ChunkFn, class UsageFn>
  void serve_request(httplib::Response& res, const std::string& key, const SamplingParams& sp,
                     const std::vector<std::vector<TokenId>>& prompts, bool tools_on,
                     const std::optional<generation::Grammar>& g, const std::string& id,
                     const std::vector<std::vector<guard::Turn>>& convs, WholeFn whole,
                     ChunkFn chunk, UsageFn usage_chunk) {
    std::vector<std::shared_ptr<Stream>> streams;
    for (const auto& ids : prompts) {
      try {
        for (auto& s : submit_n(ids, sp, tools_on, g, sp.n)) streams.push_back(std::move(s));
      } catch (...) {
        for (auto& s : streams) s->cancel();
        throw;
      }
    }
    const auto dl = Clock::now() + std::chrono::seconds(opt.request_timeout_s);
    const int64_t t = unix_time();
    const size_t group = static_cast<size_t>(sp.n);
    const bool check_responses = filter && filter->checks_response();
    if (!sp.stream) {
      auto got = collect(streams, dl);
      // The content filter: a blocked choice keeps no text and ends with "content_filter".
      std::vector<std::optional<guard::Decision>> blocked(got.size());
      if (check_responses)
        for (size_t i = 0; i < got.size(); ++i) {
          const guard::Decision d = filter->check_response(convs.at(i / group), got[i].text);
          log_decision(id, "response", d);
          if (d.allowed) continue;
          got[i].text.clear();
          got[i].tokens.clear();
          got[i].reason = "content_filter";
          blocked[i] = d;
        }
      const Usage u = finished(key, id, got, group);
      json j = whole(id, t, got, u);
      for (size_t i = 0; i < got.size(); ++i)
        if (blocked[i]) j["choices"][i]["content_filter"] = filter_json(*blocked[i], "response");
      send_json(res, 200, j);
      return;
    }
    stream_reply(
        res, std::move(streams), dl, key, sp, group, id,
        check_responses ? convs : std::vector<std::vector<guard::Turn>>{}, check_responses,
        [id, t, chunk](size_t i, const Event* e, ChoiceState& state) {
          return chunk(id, t, i, e, state);
        },
        [id, t, usage_chunk](const Usage& u) { return usage_chunk(id, t, u); }, tools_on);
  }

  struct ChoiceState {
    std::unique_ptr<ToolCallStreamParser> parser;
    int64_t text_offset = 0;
    std::string text;           // with --log-requests
    std::string pending, full;  // response filtering: chunks held until the verdict, the text
    bool started = false, finished = false;
  };

  // Server-sent events for a set of engine streams: `chunk` turns each event into SSE text;
  // `usage_chunk` gives the include_usage chunk. A client that goes away cancels its requests.
  template <class ChunkFn, class UsageFn>
  void stream_reply(httplib::Response& res, std::vector<std::shared_ptr<Stream>>&& streams,
                    Clock::time_point dl, const std::string& key, const SamplingParams& sp,
                    size_t group, const std::string& id,
                    std::vector<std::vector<guard::Turn>> convs, bool filter_responses,
                    ChunkFn chunk, UsageFn usage_chunk, bool tools_on) {
    struct State {
      std::vector<std::shared_ptr<Stream>> streams;
      std::vector<ChoiceState> choices;
      Usage usage;
      bool done = false;
    };
    auto st = std::make_shared<State>();
    st->streams = std::move(streams);
    st->choices.resize(st->streams.size());
    for (auto& c : st->choices)
      if (tools_on) c.parser = std::make_unique<ToolCallStreamParser>(tool_format);
    const bool include_usage = sp.include_usage;
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, st, dl, key, group, chunk, usage_chunk, include_usage, id, convs = std::move(convs),
         filter_responses, tools_on](size_t, httplib::DataSink& sink) {
          auto write = [&](const std::string& s) {
            return s.empty() || sink.write(s.data(), s.size());
          };
          auto cancel_all = [&] {
            for (auto& s : st->streams) s->cancel();
          };
          if (st->done) return false;
          for (size_t i = 0; i < st->streams.size(); ++i) {
            ChoiceState& c = st->choices[i];
            if (!c.started) {
              c.started = true;
              if (!write(chunk(i, nullptr, c))) {
                cancel_all();
                return false;
              }
            }
          }
          // One pass: wait briefly on the first unfinished stream, then drain what is ready.
          bool all = true;
          for (size_t i = 0; i < st->streams.size(); ++i) {
            ChoiceState& c = st->choices[i];
            if (c.finished) continue;
            all = false;
            if (Clock::now() >= dl) st->streams[i]->cancel();
            for (int k = 0; k < 64; ++k) {
              auto e = st->streams[i]->next(std::chrono::milliseconds(k == 0 ? 50 : 0));
              if (!e) break;
              if (e->finished) {
                c.finished = true;
                if (e->finish_reason == "error" || e->finish_reason == "cancelled") {
                  const ApiError err(e->finish_reason == "error" ? 500 : 408,
                                     e->finish_reason == "error"
                                         ? "generation failed: " + e->error
                                         : std::string("the request timed out and was cancelled"));
                  write(sse_event(error_json(err)));
                  write(sse_done());
                  cancel_all();
                  st->done = true;
                  sink.done();
                  return true;
                }
                // Choices come in groups of `group` samples of one prompt: each prompt's
                // tokens count once (its last sample's counts).
                if ((i + 1) % group == 0) {
                  st->usage.prompt_tokens += e->prompt_tokens;
                  st->usage.cached_tokens = st->usage.cached_tokens.value_or(0) + e->cached_tokens;
                }
                st->usage.completion_tokens += e->completion_tokens;
              }
              if (opt.log_requests) {
                c.text += e->text;
                if (c.finished) log("output stream choice " + std::to_string(i) + ": " + c.text);
              }
              std::string out;
              if (filter_responses) {
                // Response filtering: the choice's chunks wait for the verdict on its whole
                // text; a blocked choice sends only a final chunk with "content_filter".
                c.full += e->text;
                if (!c.finished) {
                  c.pending += chunk(i, &*e, c);
                  continue;
                }
                const guard::Decision d = filter->check_response(convs.at(i / group), c.full);
                log_decision(id, "response", d);
                if (d.allowed) {
                  out = c.pending + chunk(i, &*e, c);
                } else {
                  Event fe = *e;
                  fe.text.clear();
                  fe.tokens.clear();
                  fe.finish_reason = "content_filter";
                  if (tools_on) c.parser = std::make_unique<ToolCallStreamParser>(tool_format);
                  out = with_filter(chunk(i, &fe, c), filter_json(d, "response"));
                }
                c.pending.clear();
              } else {
                out = chunk(i, &*e, c);
              }
              if (!write(out)) {
                cancel_all();
                return false;
              }
              if (c.finished) break;
            }
          }
          if (!all) {
            bool fin = true;
            for (auto& c : st->choices) fin = fin && c.finished;
            all = fin;
          }
          if (all) {
            charge(key, st->usage.prompt_tokens + st->usage.completion_tokens);
            if (include_usage) write(usage_chunk(st->usage));
            write(sse_done());
            st->done = true;
            sink.done();
          }
          return true;
        },
        [st](bool) {
          // The connection ended (or the reply was cut): nothing more to generate.
          for (auto& s : st->streams) s->cancel();
        });
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) {
    authorize(req, res);
    const json body = parse_body(req.body, {opt.max_body_bytes, 64});
    TokenizeRequest r = parse_tokenize_request(body);
    check_model(r.model);
    std::vector<TokenId> ids;
    if (r.prompt) {
      ids = tok.encode(*r.prompt, r.add_special_tokens);
    } else {
      ids = tok.encode(render_chat(r.messages, r.tools, r.add_generation_prompt,
                                   r.chat_template_kwargs, r.continue_final_message),
                       r.add_special_tokens);
    }
    std::vector<int64_t> out(ids.begin(), ids.end());
    std::optional<std::vector<std::string>> strs;
    if (r.return_token_strs) {
      strs.emplace();
      for (TokenId x : ids) strs->push_back(tok.tokenizer().id_to_token(x).value_or(""));
    }
    send_json(res, 200, tokenize_json(out, ctx(), strs));
  }

  // POST /v1/watermark/detect {"text" | "tokens", "watermark"?: "gamma=..,delta=..",
  // "z_threshold"?: 3.0, "ignore_repeated_ngrams"?: false}: transformers' WatermarkDetector
  // against the server's --watermark settings (or the request's).
  void watermark_detect(const httplib::Request& req, httplib::Response& res) {
    authorize(req, res);
    const json body = parse_body(req.body, {opt.max_body_bytes, 64});
    if (!body.is_object()) throw invalid_param("body", "expected a JSON object");
    if (body.contains("model") && body["model"].is_string())
      check_model(body["model"].get<std::string>());
    WatermarkingConfig w = opt.watermark.value_or(WatermarkingConfig{});
    if (body.contains("watermark")) {
      if (!body["watermark"].is_string())
        throw invalid_param("watermark", "expected a string like \"gamma=0.25,delta=2\"");
      try {
        w = generation::parse_watermark_spec(body["watermark"].get<std::string>());
      } catch (const std::exception& e) {
        throw invalid_param("watermark", e.what());
      }
    }
    double z = 3.0;
    if (body.contains("z_threshold")) {
      if (!body["z_threshold"].is_number() || !std::isfinite(body["z_threshold"].get<double>()))
        throw invalid_param("z_threshold", "expected a finite number");
      z = body["z_threshold"].get<double>();
    }
    bool ignore = false;
    if (body.contains("ignore_repeated_ngrams")) {
      if (!body["ignore_repeated_ngrams"].is_boolean())
        throw invalid_param("ignore_repeated_ngrams", "expected a boolean");
      ignore = body["ignore_repeated_ngrams"].get<bool>();
    }
    const bool has_text = body.contains("text"), has_tokens = body.contains("tokens");
    if (has_text == has_tokens) throw invalid_param("text", "give exactly one of text and tokens");
    std::vector<TokenId> ids;
    if (has_text) {
      if (!body["text"].is_string()) throw invalid_param("text", "expected a string");
      ids = tok.encode(body["text"].get<std::string>(), true);
    } else {
      if (!body["tokens"].is_array()) throw invalid_param("tokens", "expected an array of ids");
      std::vector<int64_t> t;
      for (const auto& x : body["tokens"]) {
        if (!x.is_number_integer()) throw invalid_param("tokens", "expected integer token ids");
        t.push_back(x.get<int64_t>());
      }
      check_token_ids(t, model->vocab_size(), "tokens");
      ids.assign(t.begin(), t.end());
    }
    // Detection costs a green-list draw per distinct n-gram: bounded by the context size.
    if (static_cast<int64_t>(ids.size()) > ctx())
      throw invalid_param(has_text ? "text" : "tokens",
                          std::to_string(ids.size()) + " tokens; at most " + std::to_string(ctx()) +
                              " (the context size) are tested");
    generation::WatermarkDetection d;
    try {
      d = generation::detect_watermark(w, model->vocab_size(), ids, defaults.bos_token_id, z,
                                       ignore);
    } catch (const InvalidArgument& e) {
      throw invalid_param(has_text ? "text" : "tokens", e.what());
    }
    send_json(res, 200,
              json{{"object", "watermark.detection"},
                   {"z_score", d.z_score},
                   {"p_value", d.p_value},
                   {"prediction", d.prediction},
                   {"num_tokens_scored", d.num_tokens_scored},
                   {"num_green_tokens", d.num_green_tokens},
                   {"green_fraction", d.green_fraction},
                   {"z_threshold", z}});
  }

  void detokenize(const httplib::Request& req, httplib::Response& res) {
    authorize(req, res);
    const json body = parse_body(req.body, {opt.max_body_bytes, 64});
    DetokenizeRequest r = parse_detokenize_request(body);
    check_model(r.model);
    check_token_ids(r.tokens, static_cast<int64_t>(tok.tokenizer().vocab_size()), "tokens");
    std::vector<TokenId> ids(r.tokens.begin(), r.tokens.end());
    send_json(res, 200, detokenize_json(tok.decode(ids, false)));
  }

  std::string metrics_text() {
    const EngineStats s = engine->stats();
    std::ostringstream o;
    const std::string lbl = "{model_name=\"" + name + "\"}";
    auto metric = [&](const std::string& n, const char* type, const char* help, double v) {
      o << "# HELP ohm:" << n << " " << help << "\n# TYPE ohm:" << n << " " << type << "\n";
      o << "ohm:" << n << lbl << " " << v << "\n";
    };
    auto hist = [&](const std::string& n, const char* help, const Histogram& h) {
      o << "# HELP ohm:" << n << " " << help << "\n# TYPE ohm:" << n << " histogram\n";
      uint64_t cum = 0;
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        cum += h.counts[i];
        o << "ohm:" << n << "_bucket{model_name=\"" << name << "\",le=\"" << h.bounds[i] << "\"} "
          << cum << "\n";
      }
      cum += h.counts.back();
      o << "ohm:" << n << "_bucket{model_name=\"" << name << "\",le=\"+Inf\"} " << cum << "\n";
      o << "ohm:" << n << "_sum" << lbl << " " << h.sum << "\n";
      o << "ohm:" << n << "_count" << lbl << " " << h.count << "\n";
    };
    metric("num_requests_running", "gauge", "Requests in the running batch.",
           static_cast<double>(s.running));
    metric("num_requests_waiting", "gauge", "Requests waiting to be admitted.",
           static_cast<double>(s.waiting));
    metric("kv_blocks_total", "gauge", "KV cache blocks in the pool.",
           static_cast<double>(s.kv_blocks_total));
    metric("kv_blocks_used", "gauge", "KV cache blocks held by requests.",
           static_cast<double>(s.kv_blocks_used));
    metric("kv_blocks_free", "gauge",
           "KV cache blocks free (including cached prefix blocks, which are evictable).",
           static_cast<double>(s.kv_blocks_free));
    metric("kv_blocks_cached", "gauge", "Free KV blocks that hold a cached prefix.",
           static_cast<double>(s.kv_blocks_cached));
    metric("kv_cache_usage_perc", "gauge", "Fraction of KV blocks in use (0-1).",
           s.kv_blocks_total ? static_cast<double>(s.kv_blocks_used) / s.kv_blocks_total : 0.0);
    metric("prompt_tokens_total", "counter", "Prompt tokens prefilled.",
           static_cast<double>(s.prompt_tokens));
    metric("generation_tokens_total", "counter", "Tokens generated.",
           static_cast<double>(s.generation_tokens));
    metric("prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
           static_cast<double>(s.prefix_queries));
    metric("prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.",
           static_cast<double>(s.prefix_hits));
    metric("prefix_cache_hit_rate", "gauge", "prefix_cache_hits_total / queries_total.",
           s.prefix_queries ? static_cast<double>(s.prefix_hits) / s.prefix_queries : 0.0);
    metric("num_preemptions_total", "counter", "Sequences preempted (recomputed later).",
           static_cast<double>(s.preemptions));
    o << "# HELP ohm:request_success_total Finished requests by finish reason.\n"
      << "# TYPE ohm:request_success_total counter\n";
    for (const char* r : {"stop", "length", "cancelled", "error"}) {
      auto it = s.finished.find(r);
      o << "ohm:request_success_total{model_name=\"" << name << "\",finished_reason=\"" << r
        << "\"} " << (it == s.finished.end() ? 0 : it->second) << "\n";
    }
    hist("time_to_first_token_seconds", "Time from arrival to the first token.", s.ttft);
    hist("inter_token_latency_seconds", "Time between successive tokens of a request.", s.itl);
    hist("e2e_request_latency_seconds", "Time from arrival to the end of a request.", s.e2e);
    hist("request_queue_time_seconds", "Time from arrival to admission.", s.queue);
    return o.str();
  }

  // ------------------------------------------------------------------ wiring
  template <class Fn>
  void guarded(const httplib::Request& req, httplib::Response& res, Fn fn) {
    try {
      if (draining) throw ApiError(503, "The server is shutting down");
      fn(req, res);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const InvalidArgument& e) {
      send_error(res, ApiError(400, e.what()));
    } catch (const std::exception& e) {
      log(std::string("ohm serve: internal error: ") + e.what());
      send_error(res, ApiError(500, "internal error"));
    }
  }

  void setup() {
    net::FrontLimits lim;
    static_cast<net::ConnectionLimits&>(lim) = opt.limits;
    lim.threads = std::max(4, opt.http_threads);
    lim.max_body_bytes = opt.max_body_bytes;
    net::HttpFront::LogFn lf;
    if (!opt.quiet) lf = [this](const net::AccessRecord& a) { log(net::format_access_record(a)); };
    front = std::make_unique<net::HttpFront>(svr, lim, std::move(lf));
    svr.set_keep_alive_max_count(lim.max_requests_per_connection);
    svr.set_keep_alive_timeout(opt.limits.keepalive_timeout_s);
    svr.set_payload_max_length(static_cast<size_t>(opt.max_body_bytes));
    auto post = [this](const char* path,
                       void (Impl::*fn)(const httplib::Request&, httplib::Response&)) {
      svr.Post(path, [this, fn](const httplib::Request& q, httplib::Response& s) {
        guarded(q, s,
                [&](const httplib::Request& qq, httplib::Response& ss) { (this->*fn)(qq, ss); });
      });
    };
    post("/v1/chat/completions", &Impl::chat_completions);
    post("/v1/completions", &Impl::completions);
    post("/tokenize", &Impl::tokenize);
    post("/detokenize", &Impl::detokenize);
    post("/v1/watermark/detect", &Impl::watermark_detect);
    svr.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& s) {
      guarded(q, s, [&](const httplib::Request& qq, httplib::Response& ss) {
        authorize(qq, ss);
        send_json(ss, 200, models_json({ModelCard{name, created, "ohm", ctx()}}));
      });
    });
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& s) {
      if (draining)
        send_error(s, ApiError(503, "The server is shutting down"));
      else
        send_json(s, 200, json{{"status", "ok"}});
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& s) {
      s.status = 200;
      s.set_content(metrics_text(), "text/plain; version=0.0.4");
    });
    auto not_found = [](const httplib::Request& q, httplib::Response& s) {
      send_error(s, ApiError(404, "no route " + q.method + " " + q.path));
    };
    svr.Get(".*", not_found);
    svr.Post(".*", not_found);
    svr.Put(".*", not_found);
    svr.Delete(".*", not_found);
    svr.set_exception_handler(
        [](const httplib::Request&, httplib::Response& s, const std::exception_ptr&) {
          send_error(s, ApiError(500, "internal error"));
        });
  }
};

ModelServer::ModelServer(ServerOptions opt) : impl_(std::make_unique<Impl>(std::move(opt))) {}

ModelServer::~ModelServer() {
  stop();
}

int ModelServer::bind() {
  impl_->bound_port = impl_->front->bind(impl_->opt.host, impl_->opt.port);
  return impl_->bound_port;
}

void ModelServer::run() {
  impl_->front->run();
}

void ModelServer::start() {
  bind();
  impl_->th = std::thread([this] { run(); });
}

void ModelServer::stop() {
  if (!impl_ || !impl_->front) return;
  impl_->draining = true;
  impl_->engine->drain(Clock::now() + std::chrono::seconds(impl_->opt.drain_timeout_s));
  impl_->front->stop();
  if (impl_->th.joinable()) impl_->th.join();
}

int ModelServer::port() const {
  return impl_->bound_port;
}

const std::string& ModelServer::model_name() const {
  return impl_->name;
}

}  // namespace ohm::serve
