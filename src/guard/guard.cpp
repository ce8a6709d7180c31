// Content filter: Llama Guard-format classifier + rules layer (include/ohm/guard/guard.h).
#include "ohm/guard/guard.h"

#include <oniguruma.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ohm/chat/chat_template.h"
#include "ohm/core/error.h"
#include "ohm/formats/model_source.h"
#include "ohm/generation/auto_model.h"
#include "ohm/generation/generate.h"
#include "ohm/generation/logits_process.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::guard {

using json = nlohmann::json;

const std::vector<std::pair<std::string, std::string>>& llama_guard_categories() {
  static const std::vector<std::pair<std::string, std::string>> c = {
      {"S1", "Violent Crimes"},
      {"S2", "Non-Violent Crimes"},
      {"S3", "Sex Crimes"},
      {"S4", "Child Exploitation"},
      {"S5", "Defamation"},
      {"S6", "Specialized Advice"},
      {"S7", "Privacy"},
      {"S8", "Intellectual Property"},
      {"S9", "Indiscriminate Weapons"},
      {"S10", "Hate"},
      {"S11", "Self-Harm"},
      {"S12", "Sexual Content"},
      {"S13", "Elections"},
      {"S14", "Code Interpreter Abuse"}};
  return c;
}

std::string category_name(const std::string& code) {
  for (const auto& [k, v] : llama_guard_categories())
    if (k == code) return v;
  return code;
}

namespace {

std::string trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_code(const std::string& s) {
  if (s.size() < 2 || s.size() > 4 || s[0] != 'S') return false;
  for (size_t i = 1; i < s.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return s[1] != '0';
}

void onig_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    onig_initialize(&enc, 1);
  });
}

}  // namespace

Decision parse_guard_output(const std::string& text, bool fail_closed) {
  Decision d;
  d.source = "guard";
  std::vector<std::string> lines;
  std::stringstream ss(trim(text));
  for (std::string l; std::getline(ss, l);)
    if (!trim(l).empty()) lines.push_back(trim(l));
  const std::string verdict = lines.empty() ? "" : lower(lines[0]);
  if (verdict == "safe" && lines.size() == 1) return d;
  if (verdict == "unsafe" && lines.size() <= 2) {
    d.allowed = false;
    if (lines.size() == 2) {
      std::stringstream cs(lines[1]);
      std::set<std::string> seen;
      for (std::string c; std::getline(cs, c, ',');) {
        c = trim(c);
        if (!is_code(c)) {
          d.malformed = true;
          continue;
        }
        if (seen.insert(c).second) d.categories.push_back(c);
      }
    }
    return d;
  }
  d.malformed = true;
  d.allowed = !fail_closed;
  return d;
}

std::vector<Turn> guard_conversation(const std::vector<Turn>& turns) {
  std::vector<Turn> out;
  for (const auto& t : turns) {
    if (t.role != "user" && t.role != "assistant") continue;
    if (out.empty() && t.role != "user") continue;
    if (!out.empty() && out.back().role == t.role)
      out.back().content += "\n\n" + t.content;
    else
      out.push_back(t);
  }
  return out;
}

// ---- rules -----------------------------------------------------------------------------------

struct Rules::Impl {
  struct Pattern {
    std::string code, source;
    OnigRegex re = nullptr;
  };
  struct Keyword {
    std::string code, word;  // lower-case
  };
  std::vector<Keyword> keywords;
  std::vector<Pattern> patterns;
  ~Impl() {
    for (auto& p : patterns)
      if (p.re) onig_free(p.re);
  }
};

Rules::Rules() : impl_(std::make_unique<Impl>()) {}
Rules::~Rules() = default;
Rules::Rules(Rules&&) noexcept = default;
Rules& Rules::operator=(Rules&&) noexcept = default;
size_t Rules::size() const {
  return impl_->keywords.size() + impl_->patterns.size();
}

Rules Rules::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw NotFoundError(ErrorContext().file(path), "cannot read the rules file");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse(ss.str(), path);
}

Rules Rules::parse(const std::string& text, const std::string& origin) {
  onig_init_once();
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw InvalidArgument(ErrorContext().file(origin), std::string("not JSON: ") + e.what());
  }
  auto bad = [&](const std::string& key, const std::string& why) {
    throw InvalidArgument(ErrorContext().file(origin).key(key), why);
  };
  if (!j.is_object() || !j.contains("categories") || !j["categories"].is_array())
    bad("categories", "expected {\"categories\": [{\"code\", \"keywords\", \"patterns\"}, ...]}");
  Rules r;
  size_t i = 0;
  for (const auto& c : j["categories"]) {
    const std::string at = "categories[" + std::to_string(i++) + "]";
    if (!c.is_object()) bad(at, "expected an object");
    for (const auto& [k, v] : c.items())
      if (k != "code" && k != "name" && k != "keywords" && k != "patterns")
        bad(at + "." + k, "unknown field (code, name, keywords, patterns)");
    if (!c.contains("code") || !c["code"].is_string() || c["code"].get<std::string>().empty())
      bad(at + ".code", "expected a category code such as \"S1\"");
    const std::string code = c["code"].get<std::string>();
    for (const char* list : {"keywords", "patterns"}) {
      if (!c.contains(list)) continue;
      if (!c[list].is_array()) bad(at + "." + list, "expected a list of strings");
      size_t n = 0;
      for (const auto& s : c[list]) {
        const std::string where = at + "." + list + "[" + std::to_string(n++) + "]";
        if (!s.is_string() || s.get<std::string>().empty())
          bad(where, "expected a non-empty string");
        const std::string v = s.get<std::string>();
        if (std::string(list) == "keywords") {
          r.impl_->keywords.push_back({code, lower(v)});
          continue;
        }
        Impl::Pattern p{code, v, nullptr};
        OnigErrorInfo einfo;
        const auto* b = reinterpret_cast<const OnigUChar*>(v.data());
        const int rc = onig_new(&p.re, b, b + v.size(), ONIG_OPTION_IGNORECASE, ONIG_ENCODING_UTF8,
                                ONIG_SYNTAX_PERL, &einfo);
        if (rc != ONIG_NORMAL) {
          OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
          onig_error_code_to_str(msg, rc, &einfo);
          bad(where, "the regex does not compile: " + std::string(reinterpret_cast<char*>(msg)));
        }
        r.impl_->patterns.push_back(p);
      }
    }
  }
  return r;
}

Decision Rules::check(std::string_view text) const {
  Decision d;
  if (size() == 0) return d;
  d.source = "rules";
  std::set<std::string> hit;
  auto add = [&](const std::string& code) {
    if (hit.insert(code).second) d.categories.push_back(code);
  };
  // Keywords: case-insensitive (ASCII), whole words (no letter or digit right beside them).
  const std::string low = lower(std::string(text));
  auto word_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80;
  };
  for (const auto& k : impl_->keywords) {
    for (size_t pos = low.find(k.word); pos != std::string::npos; pos = low.find(k.word, pos + 1)) {
      const bool left = pos == 0 || !word_char(low[pos - 1]) || !word_char(k.word.front());
      const size_t e = pos + k.word.size();
      const bool right = e == low.size() || !word_char(low[e]) || !word_char(k.word.back());
      if (left && right) {
        add(k.code);
        break;
      }
    }
  }
  const auto* s = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = s + text.size();
  for (const auto& p : impl_->patterns) {
    OnigRegion* region = onig_region_new();
    const int rc = onig_search(p.re, s, end, s, end, region, ONIG_OPTION_NONE);
    onig_region_free(region, 1);
    if (rc >= 0) add(p.code);
  }
  d.allowed = d.categories.empty();
  return d;
}

// ---- the guard model -------------------------------------------------------------------------

namespace {

// Forces the generated tokens to `ids`, then EOS (tests: a random guard model says what the
// test wants, through the real generation path).
class ForcedOutput : public generation::LogitsProcessor {
 public:
  ForcedOutput(std::vector<TokenId> ids, TokenId eos) : ids_(std::move(ids)), eos_(eos) {}
  void apply(std::span<const TokenId> seq, int64_t prompt_len,
             std::span<float> scores) const override {
    const size_t k = seq.size() - static_cast<size_t>(prompt_len);
    const TokenId want = k < ids_.size() ? ids_[k] : eos_;
    for (size_t i = 0; i < scores.size(); ++i)
      if (static_cast<TokenId>(i) != want) scores[i] = -std::numeric_limits<float>::infinity();
  }
  std::string name() const override { return "forced_output"; }

 private:
  std::vector<TokenId> ids_;
  TokenId eos_;
};

}  // namespace

struct ContentFilter::Model {
  tokenizers::AutoTokenizer tok;
  std::unique_ptr<CausalLM> lm;
  GenerationConfig gen;
  chat::ChatTemplate tmpl;
};

ContentFilter::ContentFilter(GuardOptions o) : opt_(std::move(o)) {
  if (!opt_.rules.empty()) rules_ = Rules::load(opt_.rules);
  if (opt_.model.empty()) {
    if (opt_.rules.empty())
      throw InvalidArgument("content filter: give a guard model, a rules file, or both");
    return;
  }
  const ModelSource src = resolve_model(opt_.model);
  auto tok = tokenizers::AutoTokenizer::from_pretrained(src.path);
  chat::ChatTemplate tmpl = chat::ChatTemplate::load(src.path);
  LoadOptions lo;
  lo.threads = opt_.threads;
  auto pm = AutoModelForCausalLM::from_pretrained(src, lo);
  GenerationConfig gen = pm.generation_config();
  model_ = std::make_unique<Model>(
      Model{std::move(tok), std::move(pm).release(), std::move(gen), std::move(tmpl)});
  if (model_->gen.eos_token_id.empty())
    if (auto e = model_->tok.eos_token_id()) model_->gen.eos_token_id = {*e};
}

ContentFilter::~ContentFilter() = default;

bool ContentFilter::has_model() const {
  return model_ != nullptr;
}

std::string ContentFilter::render(const std::vector<Turn>& turns) const {
  if (!model_) throw InvalidArgument("content filter: no guard model");
  chat::ojson msgs = chat::ojson::array();
  for (const auto& t : guard_conversation(turns))
    msgs.push_back({{"role", t.role}, {"content", t.content}});
  return model_->tmpl.apply(msgs);
}

std::string ContentFilter::classify_raw(const std::vector<Turn>& turns) {
  const std::string prompt = render(turns);
  // As apply_chat_template(tokenize=True): the rendered text, no special tokens added.
  const std::vector<TokenId> ids = model_->tok.encode(prompt, /*add_special_tokens=*/false);
  generation::GenerateOptions go;
  go.config = model_->gen;
  go.config.do_sample = false;
  go.config.num_beams = 1;
  go.config.max_new_tokens = opt_.max_new_tokens;
  go.config.repetition_penalty = 1.0;
  go.config.watermarking_config.reset();
  if (!opt_.forced_output.empty()) {
    const TokenId eos =
        go.config.eos_token_id.empty() ? 0 : static_cast<TokenId>(go.config.eos_token_id[0]);
    go.constraint = std::make_shared<ForcedOutput>(
        model_->tok.encode(opt_.forced_output, /*add_special_tokens=*/false), eos);
  }
  std::lock_guard<std::mutex> l(mu_);
  const auto out = generation::generate(*model_->lm, {ids}, go);
  const auto& seq = out[0];
  const std::vector<TokenId> gen(seq.begin() + static_cast<std::ptrdiff_t>(ids.size()), seq.end());
  return model_->tok.decode(gen, /*skip_special_tokens=*/true);
}

Decision ContentFilter::check(const std::vector<Turn>& turns, const std::string& text_for_rules) {
  const Decision r = rules_.check(text_for_rules);
  if (!r.allowed) return r;
  if (!model_) return r;
  const auto conv = guard_conversation(turns);
  if (conv.empty()) return Decision{};
  return parse_guard_output(classify_raw(conv), opt_.fail_closed);
}

Decision ContentFilter::check_prompt(const std::vector<Turn>& turns) {
  std::vector<Turn> t = turns;
  while (!t.empty() && t.back().role != "user") t.pop_back();
  std::string user_text;
  for (const auto& x : t)
    if (x.role == "user") user_text += x.content + "\n";
  if (t.empty()) return Decision{};
  return check(t, user_text);
}

Decision ContentFilter::check_response(std::vector<Turn> turns, const std::string& response) {
  turns.push_back({"assistant", response});
  return check(turns, response);
}

}  // namespace ohm::guard
