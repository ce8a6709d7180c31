// `ohm tokenize MODEL_OR_TOKENIZER (--text T | --file F) [--json] [--no-special]`,
// `ohm tokenize MODEL_OR_TOKENIZER --batch FILE.jsonl [--raw] [--decode] [--threads N]` and
// `ohm detokenize MODEL_OR_TOKENIZER (--ids "1 2 3" | --json '[1,2]') [--skip-special]`.
// MODEL_OR_TOKENIZER: a model directory / Hub id, a tokenizer.json(.gz/.xz), a .gguf or a
// SentencePiece tokenizer.model. Ids follow transformers' AutoTokenizer (tokenizer_config.json).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common.h"
#include "ohm/cli/cli.h"
#include "ohm/core/error.h"
#include "ohm/core/thread_pool.h"
#include "ohm/tokenizers/tokenizer.h"

namespace ohm::cli {

namespace {

struct TokOptions {
  std::string model, text, file, batch;
  bool json = false, no_special = false, raw = false, decode = false;
  int threads = 0;
};

// --raw: tokenizer.json as HF tokenizers' Tokenizer.from_file reads it, without
// tokenizer_config.json (transformers' AutoTokenizer applies that, e.g. GPT2Tokenizer's regex).
tokenizers::Tokenizer load_raw(const std::string& model) {
  std::error_code ec;
  std::string path = model;
  if (std::filesystem::is_directory(path, ec)) {
    path.clear();
    for (const char* f : {"tokenizer.json", "tokenizer.json.gz", "tokenizer.json.xz"})
      if (std::filesystem::is_regular_file(std::filesystem::path(model) / f, ec)) {
        path = (std::filesystem::path(model) / f).string();
        break;
      }
    if (path.empty()) throw UsageError("--raw: no tokenizer.json in " + model);
  }
  return tokenizers::Tokenizer::from_file(path);
}

// Writes v in decimal at p (at most 20 bytes); returns the end.
char* put_int(char* p, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  if (v < 0) {
    *p++ = '-';
    u = 0 - u;
  }
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  while (n) *p++ = tmp[--n];
  return p;
}

// A JSON string literal; invalid UTF-8 is replaced with U+FFFD (as nlohmann's "replace").
void append_json_string(std::string& out, const std::string& s) {
  // the common case: nothing to escape, ASCII or 2-byte characters (byte-level tokens)
  bool simple = true;
  for (size_t i = 0; simple && i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      simple = c >= 0x20 && c != '"' && c != '\\';
    } else {
      simple = c >= 0xC2 && c <= 0xDF && i + 1 < s.size() &&
               (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80;
      ++i;
    }
  }
  if (simple) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  if (!tokenizers::is_valid_utf8(s)) {
    out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += '"';
  size_t plain = 0;  // bytes that need no escape are appended in runs
  auto flush = [&](size_t upto) { out.append(s, plain, upto - plain); };
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c != '"' && c != '\\' && c >= 0x20) continue;
    flush(i);
    plain = i + 1;
    const char ch = s[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      static const char* hex = "0123456789abcdef";
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
      }
    }
  }
  flush(s.size());
  out += '"';
}

// One answer line: {"decoded":..., "ids":[...], "offsets":[[a,b],...], "tokens":[...]}, keys in
// nlohmann's order, written directly (building a json DOM per line cost about a third of the run).
void append_answer(std::string& r, const tokenizers::Encoding& e, const std::string* decoded) {
  r += '{';
  if (decoded) {
    r += "\"decoded\":";
    append_json_string(r, *decoded);
    r += ',';
  }
  char buf[80];  // one number or one offset pair, then appended at once
  r += "\"ids\":[";
  for (size_t t = 0; t < e.ids.size(); ++t) {
    char* p = buf;
    if (t) *p++ = ',';
    p = put_int(p, e.ids[t]);
    r.append(buf, p);
  }
  r += "],\"offsets\":[";
  for (size_t t = 0; t < e.offsets.size(); ++t) {
    char* p = buf;
    if (t) *p++ = ',';
    *p++ = '[';
    p = put_int(p, static_cast<int64_t>(e.offsets[t].first));
    *p++ = ',';
    p = put_int(p, static_cast<int64_t>(e.offsets[t].second));
    *p++ = ']';
    r.append(buf, p);
  }
  r += "],\"tokens\":[";
  for (size_t t = 0; t < e.tokens.size(); ++t) {
    if (t) r += ',';
    append_json_string(r, e.tokens[t]);
  }
  r += "]}\n";
}

// --batch: one JSON line in (a string, or an object with "text") -> one JSON line out, in order.
// The input is read in chunks of whole lines (so it may be larger than memory); the lines of a
// chunk are parsed and encoded on all threads in groups, each group writing its answers into
// one buffer, and the buffers are written in order. A bad line is reported by its number.
int tokenize_batch(const TokOptions& o) {
  std::ifstream fin;
  std::istream* in = &std::cin;
  if (o.batch != "-") {
    fin.open(o.batch, std::ios::binary);
    if (!fin) throw UsageError("--batch '" + o.batch + "': cannot open");
    in = &fin;
  }
  std::optional<tokenizers::AutoTokenizer> at;
  std::optional<tokenizers::Tokenizer> raw;
  if (o.raw)
    raw = load_raw(o.model);
  else
    at = load_tokenizer(o.model, "");
  ThreadPool pool(o.threads);
  constexpr size_t kChunk = 2 << 20;  // bytes read at a time
  constexpr size_t kGroup = 32;       // lines a thread takes at a time
  struct Line {
    size_t a, b, no;  // bytes [a, b) of the chunk, line number in the file
  };
  struct Group {
    std::string out;
    size_t bad_line = 0;  // first bad line of the group (0: none)
    std::string bad_what;
  };
  std::string buf;
  std::vector<Line> lines;
  // Answers of the chunk before are written by `writer` while this one is encoded.
  std::vector<Group> group_sets[2];
  int cur = 0;
  std::thread writer;
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join_writer{writer};
  size_t line_no = 0;
  bool eof = false;
  while (!eof) {
    std::vector<Group>& groups = group_sets[cur];
    const size_t kept = buf.size();
    buf.resize(kept + kChunk);
    in->read(buf.data() + kept, static_cast<std::streamsize>(kChunk));
    const auto got = static_cast<size_t>(in->gcount());
    buf.resize(kept + got);
    eof = got < kChunk;
    size_t end = buf.size();
    if (!eof) {
      const size_t nl = buf.rfind('\n');
      if (nl == std::string::npos) continue;  // no whole line yet
      end = nl + 1;
    }
    lines.clear();
    for (size_t a = 0; a < end;) {
      const auto* p = static_cast<const char*>(std::memchr(buf.data() + a, '\n', end - a));
      const size_t b = p ? static_cast<size_t>(p - buf.data()) : end;
      ++line_no;
      if (!(b == a || (b == a + 1 && buf[a] == '\r'))) lines.push_back({a, b, line_no});
      a = b + 1;
    }
    const size_t n_groups = (lines.size() + kGroup - 1) / kGroup;
    if (groups.size() < n_groups) groups.resize(n_groups);
    std::atomic<size_t> next{0};
    pool.run([&](int, int) {
      std::string parsed;
      for (size_t g; (g = next.fetch_add(1)) < n_groups;) {
        Group& grp = groups[g];
        grp.out.clear();
        grp.bad_line = 0;
        for (size_t k = g * kGroup; k < std::min((g + 1) * kGroup, lines.size()); ++k) {
          const Line& l = lines[k];
          std::string_view line(buf.data() + l.a, l.b - l.a);
          std::string_view text;
          // the common case, a plain string without escapes, skips the JSON parser
          bool plain = line.size() >= 2 && line.front() == '"' && line.back() == '"';
          for (size_t i = 1; plain && i + 1 < line.size(); ++i) {
            const auto c = static_cast<unsigned char>(line[i]);
            plain = c >= 0x20 && c != '"' && c != '\\';
          }
          if (plain) {
            text = line.substr(1, line.size() - 2);
          } else {
            nlohmann::json j;
            try {
              j = nlohmann::json::parse(line);
            } catch (const std::exception& e) {
              grp.bad_line = l.no;
              grp.bad_what = std::string("not JSON: ") + e.what();
              break;
            }
            if (j.is_object() && j.contains("text")) j = j["text"];
            if (!j.is_string()) {
              grp.bad_line = l.no;
              grp.bad_what = "expected a JSON string or an object with a \"text\" string";
              break;
            }
            parsed = j.get<std::string>();
            text = parsed;
          }
          tokenizers::Encoding e =
              raw ? raw->encode(text, !o.no_special) : at->encode_full(text, !o.no_special);
          std::string decoded;
          if (o.decode) decoded = raw ? raw->decode(e.ids, false) : at->decode(e.ids, false);
          append_answer(grp.out, e, o.decode ? &decoded : nullptr);
        }
      }
    });
    for (size_t g = 0; g < n_groups; ++g)
      if (groups[g].bad_line)
        throw FormatError(
            ErrorContext().file(o.batch).note("line", std::to_string(groups[g].bad_line)),
            groups[g].bad_what);
    if (writer.joinable()) writer.join();
    writer = std::thread([&groups, n_groups] {
      for (size_t g = 0; g < n_groups; ++g)
        std::cout.write(groups[g].out.data(), static_cast<std::streamsize>(groups[g].out.size()));
    });
    cur ^= 1;
    buf.erase(0, end);
  }
  if (writer.joinable()) writer.join();
  std::cout.flush();
  return 0;
}

struct DetokOptions {
  std::string model, ids, json_ids;
  bool skip_special = false;
};

const Register reg_tok("tokenize", [](CLI::App& app) {
  auto opt = std::make_shared<TokOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("model", opt->model, "Model directory, tokenizer.json, .gguf or Hub id")
      ->required();
  auto* t = cmd->add_option("--text", opt->text, "Text to tokenize");
  auto* f = cmd->add_option("--file,-f", opt->file, "Read the text from a file ('-': stdin)")
                ->check(readable_file(/*allow_stdin=*/true));
  t->excludes(f);
  auto* b = cmd->add_option("--batch", opt->batch,
                            "JSONL in ('-': stdin): one JSON string (or {\"text\": ...}) a line; "
                            "prints one JSON line each: ids, tokens, offsets (characters)")
                ->check(readable_file(/*allow_stdin=*/true));
  b->excludes(t)->excludes(f);
  cmd->add_flag("--json", opt->json, "Print a JSON array");
  cmd->add_flag("--no-special", opt->no_special, "Do not add special tokens (BOS/EOS)");
  cmd->add_flag("--raw", opt->raw,
                "Load tokenizer.json as HF tokenizers does, without applying "
                "tokenizer_config.json (default: as transformers' AutoTokenizer)");
  cmd->add_flag("--decode", opt->decode, "With --batch: add \"decoded\" (decode of the ids)")
      ->needs(b);
  add_threads_option(cmd, opt->threads)->needs(b);
  cmd->footer(
      "MODEL_OR_TOKENIZER: a model directory or Hub id, a tokenizer.json(.gz/.xz), a .gguf, a\n"
      "SentencePiece tokenizer.model, or a .safetensors file with its tokenizer beside it.");
  return Command{cmd, [opt, t, f, b] {
                   if (b->count()) return tokenize_batch(*opt);
                   if (t->count() == 0 && f->count() == 0)
                     throw UsageError("give --text TEXT, --file FILE ('-': stdin) or --batch FILE");
                   const std::string text = f->count() ? read_text("--file", opt->file) : opt->text;
                   std::vector<int32_t> ids;
                   if (opt->raw)
                     ids = load_raw(opt->model).encode_ids(text, !opt->no_special);
                   else
                     ids = load_tokenizer(opt->model, "").encode(text, !opt->no_special);
                   if (opt->json) {
                     std::cout << nlohmann::json(ids).dump() << "\n";
                   } else {
                     for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
                     std::cout << "\n";
                   }
                   return 0;
                 }};
});

const Register reg_detok("detokenize", [](CLI::App& app) {
  auto opt = std::make_shared<DetokOptions>();
  auto* cmd = app.add_subcommand("detokenize", "Decode token ids to text");
  cmd->add_option("model", opt->model, "Model directory, tokenizer.json, .gguf or Hub id")
      ->required();
  auto* i = cmd->add_option("--ids", opt->ids, "Space- or comma-separated ids");
  auto* j = cmd->add_option("--json", opt->json_ids, "A JSON array of ids");
  i->excludes(j);
  cmd->add_flag("--skip-special", opt->skip_special, "Drop special tokens");
  cmd->footer(
      "MODEL_OR_TOKENIZER: a model directory or Hub id, a tokenizer.json(.gz/.xz), a .gguf, a\n"
      "SentencePiece tokenizer.model, or a .safetensors file with its tokenizer beside it.");
  return Command{cmd, [opt, i, j] {
                   std::vector<int32_t> ids;
                   if (j->count()) {
                     nlohmann::json arr;
                     try {
                       arr = nlohmann::json::parse(opt->json_ids);
                     } catch (const std::exception& e) {
                       throw UsageError(std::string("--json: ") + e.what());
                     }
                     if (!arr.is_array()) throw UsageError("--json: expected an array of ids");
                     for (auto& v : arr) {
                       if (!v.is_number_integer()) throw UsageError("--json: ids must be integers");
                       if (v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
                         throw UsageError("--json: token id " + v.dump() + " is out of range");
                       ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
                     }
                   } else if (i->count()) {
                     std::string s = opt->ids;
                     for (auto& ch : s)
                       if (ch == ',') ch = ' ';
                     std::istringstream ss(s);
                     std::string w;
                     while (ss >> w) {
                       try {
                         size_t pos;
                         long long v = std::stoll(w, &pos);
                         if (pos != w.size()) throw std::invalid_argument(w);
                         if (v < INT32_MIN || v > INT32_MAX) throw std::out_of_range(w);
                         ids.push_back(static_cast<int32_t>(v));
                       } catch (const std::out_of_range&) {
                         throw UsageError("--ids: token id " + w + " is out of range");
                       } catch (const std::exception&) {
                         throw UsageError("--ids: not an integer: '" + w + "'");
                       }
                     }
                   } else {
                     throw UsageError("give --ids \"1 2 3\" or --json '[1,2,3]'");
                   }
                   auto tok = load_tokenizer(opt->model, "");
                   const char* flag = j->count() ? "--json" : "--ids";
                   for (int32_t id : ids)
                     if (id < 0 || !tok.tokenizer().id_to_token(id))
                       throw UsageError(std::string(flag) + ": token id " + std::to_string(id) +
                                        " is not in the vocabulary (size " +
                                        std::to_string(tok.tokenizer().vocab_size()) + ", ids 0.." +
                                        std::to_string(tok.tokenizer().vocab_size() - 1) + ")");
                   std::cout << tok.decode(ids, opt->skip_special) << "\n";
                   return 0;
                 }};
});

}  // namespace

}  // namespace ohm::cli
