// Oniguruma wrapper with the onig crate's semantics (what HF tokenizers uses): the default
// Oniguruma syntax (Unicode \w, \s, \d), find_iter skipping empty matches after a match.
#include <oniguruma.h>

#include <mutex>

#include "internal.h"

namespace ohm::tokenizers {

static void onig_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding enc = ONIG_ENCODING_UTF8;
    onig_initialize(&enc, 1);
  });
}

Regex::Regex(const std::string& pattern) {
  onig_init_once();
  regex_t* re = nullptr;
  OnigErrorInfo einfo;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  int r = onig_new(&re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                   ONIG_SYNTAX_ONIGURUMA, &einfo);
  if (r != ONIG_NORMAL) {
    OnigUChar buf[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(buf, r, &einfo);
    throw InvalidArgument("invalid regex /" + pattern + "/: " + reinterpret_cast<char*>(buf));
  }
  re_ = re;
}

Regex::~Regex() {
  if (re_) onig_free(static_cast<regex_t*>(re_));
}

bool Regex::search(std::string_view s, size_t start, size_t* ms, size_t* me) const {
  struct RegionHolder {
    OnigRegion* r = onig_region_new();
    ~RegionHolder() { onig_region_free(r, 1); }
  };
  thread_local RegionHolder holder;
  OnigRegion* region = holder.r;
  const auto* b = reinterpret_cast<const OnigUChar*>(s.data());
  const OnigUChar* e = b + s.size();
  int r = onig_search(static_cast<regex_t*>(re_), b, e, b + start, e, region, ONIG_OPTION_NONE);
  if (r < 0) return false;
  *ms = static_cast<size_t>(region->beg[0]);
  *me = static_cast<size_t>(region->end[0]);
  return true;
}

void Regex::find_iter(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
  size_t last_end = 0;
  bool have_last = false;
  size_t last_match_end = 0;
  while (last_end <= s.size()) {
    size_t ms, me;
    if (!search(s, last_end, &ms, &me)) break;
    if (ms == me && have_last && last_match_end == me) {
      last_end += last_end < s.size() ? utf8_len(static_cast<unsigned char>(s[last_end])) : 1;
      continue;
    }
    last_end = me;
    have_last = true;
    last_match_end = me;
    out.emplace_back(ms, me);
  }
}

}  // namespace ohm::tokenizers
