// The Jinja2 lexer, following jinja2/lexer.py with trim_blocks=True and lstrip_blocks=True:
// `{%-`/`-%}` strip all whitespace, `{%+`/`+%}` disable lstrip/trim, lstrip_blocks removes the
// spaces/tabs before a block or comment tag that starts its line, trim_blocks removes the first
// newline after a block or comment tag, `{% raw %}` keeps its content verbatim.
#include <cctype>
#include <cstdint>

#include "ast.h"
#include "ohm/jinja/template.h"

namespace ohm::jinja {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

class Lexer {
 public:
  Lexer(const std::string& src, const std::string& name) : name_(name) {
    // Normalise \r\n and \r to \n; drop one trailing newline (keep_trailing_newline=False).
    s_.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\r') {
        s_ += '\n';
        if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
      } else {
        s_ += src[i];
      }
    }
    if (!s_.empty() && s_.back() == '\n') s_.pop_back();
  }

  std::vector<Token> run() {
    bool line_starting = true;
    while (pos_ < s_.size()) {
      // Find the next tag opener.
      size_t open = std::string::npos;
      for (size_t i = pos_; i + 1 < s_.size(); ++i) {
        if (s_[i] == '{' && (s_[i + 1] == '%' || s_[i + 1] == '{' || s_[i + 1] == '#')) {
          open = i;
          break;
        }
      }
      if (open == std::string::npos) {
        emit_data(s_.substr(pos_), pos_);
        pos_ = s_.size();
        break;
      }
      std::string text = s_.substr(pos_, open - pos_);
      const size_t text_pos = pos_;
      const char kind = s_[open + 1];
      size_t p = open + 2;
      char sign = 0;
      if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) sign = s_[p++];
      // {% raw %}?
      size_t raw_end = 0;
      const bool raw = kind == '%' && match_raw_begin(p, raw_end);
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      } else if (sign != '+' && kind != '{') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool ws = l_pos < text.size();
          for (size_t i = l_pos; i < text.size() && ws; ++i) ws = is_space(text[i]);
          if (ws) text.resize(l_pos);
        }
      }
      emit_data(text, text_pos);
      const auto [line, col] = where(open);
      if (raw) {
        line_starting = s_[raw_end - 1] == '\n';
        lex_raw(raw_end, line_starting);
        line_starting = pos_ > 0 && s_[pos_ - 1] == '\n';
        continue;
      }
      if (kind == '#') {
        lex_comment(p, line, col);
        line_starting = pos_ > 0 && s_[pos_ - 1] == '\n';
        continue;
      }
      out_.push_back({kind == '%' ? Tok::BlockBegin : Tok::VarBegin, "", line, col});
      pos_ = p;
      lex_tag(kind == '%');
      line_starting = pos_ > 0 && s_[pos_ - 1] == '\n';
    }
    const auto [line, col] = where(s_.size());
    out_.push_back({Tok::Eof, "", line, col});
    return std::move(out_);
  }

 private:
  std::pair<int, int> where(size_t pos) {
    // Incremental line/column computation.
    while (lc_pos_ < pos && lc_pos_ < s_.size()) {
      if (s_[lc_pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else {
        ++col_;
      }
      ++lc_pos_;
    }
    return {line_, col_};
  }

  [[noreturn]] void fail(size_t pos, const std::string& msg) {
    const auto [l, c] = where(pos);
    throw TemplateSyntaxError(name_, l, c, msg);
  }

  void emit_data(const std::string& text, size_t pos) {
    if (text.empty()) return;
    const auto [l, c] = where(pos);
    out_.push_back({Tok::Data, text, l, c});
  }

  // At p (after "{%" and its sign): "\s*raw\s*(-%}\s*|%})"; sets end to after it.
  bool match_raw_begin(size_t p, size_t& end) {
    while (p < s_.size() && is_space(s_[p])) ++p;
    if (s_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p])) || s_[p] == '_'))
      return false;
    while (p < s_.size() && is_space(s_[p])) ++p;
    if (s_.compare(p, 3, "-%}") == 0) {
      p += 3;
      while (p < s_.size() && is_space(s_[p])) ++p;
    } else if (s_.compare(p, 2, "%}") == 0) {
      p += 2;
    } else {
      return false;
    }
    end = p;
    return true;
  }

  void lex_raw(size_t start, bool line_starting) {
    // Find "{%(-|+|)\s*endraw\s*(+%}|-%}\s*|%}\n?)".
    for (size_t i = start; i + 1 < s_.size(); ++i) {
      if (s_[i] != '{' || s_[i + 1] != '%') continue;
      size_t p = i + 2;
      char sign = 0;
      if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) sign = s_[p++];
      while (p < s_.size() && is_space(s_[p])) ++p;
      if (s_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      while (p < s_.size() && is_space(s_[p])) ++p;
      if (s_.compare(p, 3, "+%}") == 0) {
        p += 3;
      } else if (s_.compare(p, 3, "-%}") == 0) {
        p += 3;
        while (p < s_.size() && is_space(s_[p])) ++p;
      } else if (s_.compare(p, 2, "%}") == 0) {
        p += 2;
        if (p < s_.size() && s_[p] == '\n') ++p;
      } else {
        continue;
      }
      std::string text = s_.substr(start, i - start);
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      } else if (sign != '+') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool ws = l_pos < text.size();
          for (size_t k = l_pos; k < text.size() && ws; ++k) ws = is_space(text[k]);
          if (ws) text.resize(l_pos);
        }
      }
      emit_data(text, start);
      pos_ = p;
      return;
    }
    fail(start, "Missing end of raw directive");
  }

  void lex_comment(size_t p, int line, int col) {
    const size_t e = s_.find("#}", p);
    if (e == std::string::npos) {
      throw TemplateSyntaxError(name_, line, col, "Missing end of comment tag");
    }
    size_t q = e + 2;
    const char sign = e > p ? s_[e - 1] : 0;
    if (sign == '-') {
      while (q < s_.size() && is_space(s_[q])) ++q;
    } else if (sign != '+') {
      if (q < s_.size() && s_[q] == '\n') ++q;
    }
    pos_ = q;
  }

  // Inside {% ... %} or {{ ... }}: expression tokens up to the end tag.
  void lex_tag(bool block) {
    std::vector<char> balance;
    while (true) {
      while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
      if (pos_ >= s_.size())
        fail(pos_, block ? "unexpected end of template, expected '%}'"
                         : "unexpected end of template, expected '}}'");
      const auto [line, col] = where(pos_);
      // End tag (only when brackets are balanced).
      if (balance.empty()) {
        if (block) {
          if (s_.compare(pos_, 3, "+%}") == 0) {
            pos_ += 3;
            out_.push_back({Tok::BlockEnd, "", line, col});
            return;
          }
          if (s_.compare(pos_, 3, "-%}") == 0) {
            pos_ += 3;
            while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
            out_.push_back({Tok::BlockEnd, "", line, col});
            return;
          }
          if (s_.compare(pos_, 2, "%}") == 0) {
            pos_ += 2;
            if (pos_ < s_.size() && s_[pos_] == '\n') ++pos_;
            out_.push_back({Tok::BlockEnd, "", line, col});
            return;
          }
        } else {
          if (s_.compare(pos_, 3, "-}}") == 0) {
            pos_ += 3;
            while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
            out_.push_back({Tok::VarEnd, "", line, col});
            return;
          }
          if (s_.compare(pos_, 2, "}}") == 0) {
            pos_ += 2;
            out_.push_back({Tok::VarEnd, "", line, col});
            return;
          }
        }
      }
      const char c = s_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        lex_number(line, col);
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
                 static_cast<unsigned char>(c) >= 0x80) {
        size_t e = pos_;
        while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_' ||
                                 static_cast<unsigned char>(s_[e]) >= 0x80))
          ++e;
        out_.push_back({Tok::Name, s_.substr(pos_, e - pos_), line, col});
        pos_ = e;
      } else if (c == '\'' || c == '"') {
        lex_string(line, col);
      } else {
        static const char* ops2[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op;
        for (const char* o : ops2)
          if (s_.compare(pos_, 2, o) == 0) op = o;
        if (op.empty()) {
          if (std::string("+-/*%~[](){}<>=.:|,;").find(c) == std::string::npos)
            fail(pos_, std::string("unexpected char '") + c + "'");
          op = std::string(1, c);
        }
        if (op == "(" || op == "[" || op == "{") {
          balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
        } else if (op == ")" || op == "]" || op == "}") {
          if (balance.empty()) fail(pos_, "unexpected '" + op + "'");
          if (balance.back() != op[0])
            fail(pos_,
                 "unexpected '" + op + "', expected '" + std::string(1, balance.back()) + "'");
          balance.pop_back();
        }
        out_.push_back({Tok::Op, op, line, col});
        pos_ += op.size();
      }
    }
  }

  void lex_number(int line, int col) {
    auto digits = [&](size_t p) {
      // (\d+_)*\d+
      size_t e = p;
      while (e < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[e])) ||
                               (s_[e] == '_' && e + 1 < s_.size() &&
                                std::isdigit(static_cast<unsigned char>(s_[e + 1])) && e > p)))
        ++e;
      return e;
    };
    size_t e = digits(pos_);
    bool is_float = false;
    if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
      is_float = true;
      e = digits(e + 1);
    }
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t q = e + 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
      if (q < s_.size() && std::isdigit(static_cast<unsigned char>(s_[q]))) {
        is_float = true;
        e = digits(q);
      }
    }
    std::string text;
    for (size_t i = pos_; i < e; ++i)
      if (s_[i] != '_') text += s_[i];
    out_.push_back({is_float ? Tok::Float : Tok::Int, text, line, col});
    pos_ = e;
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Python's unicode-escape decoding of a string literal's body.
  void lex_string(int line, int col) {
    const char q = s_[pos_];
    size_t p = pos_ + 1;
    std::string out;
    while (true) {
      if (p >= s_.size()) fail(pos_, "unexpected end of string");
      const char c = s_[p];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++p;
        continue;
      }
      if (p + 1 >= s_.size()) fail(pos_, "unexpected end of string");
      const char e = s_[p + 1];
      p += 2;
      auto hex = [&](int n) -> uint32_t {
        uint32_t v = 0;
        for (int i = 0; i < n; ++i, ++p) {
          if (p >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[p])))
            fail(p, "invalid escape in string literal");
          const char h = s_[p];
          v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                 ? h - '0'
                                                 : (std::tolower(h) - 'a' + 10));
        }
        return v;
      };
      switch (e) {
        case '\n':
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x':
          put_utf8(out, hex(2));
          break;
        case 'u':
          put_utf8(out, hex(4));
          break;
        case 'U':
          put_utf8(out, hex(8));
          break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && p < s_.size() && s_[p] >= '0' && s_[p] <= '7'; ++i, ++p)
              v = v * 8 + static_cast<uint32_t>(s_[p] - '0');
            put_utf8(out, v);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    out_.push_back({Tok::String, out, line, col});
    pos_ = p + 1;
  }

  std::string name_;
  std::string s_;
  size_t pos_ = 0;
  std::vector<Token> out_;
  size_t lc_pos_ = 0;
  int line_ = 1, col_ = 1;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const std::string& name) {
  return Lexer(source, name).run();
}

}  // namespace ohm::jinja
