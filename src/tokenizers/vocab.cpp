#include "internal.h"

namespace ohm::tokenizers {

void Vocab::reserve(size_t n) {
  strings_.reserve(n);
  present_.reserve(n);
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap > table_.size()) {
    table_.assign(cap, -1);
    for (size_t id = 0; id < strings_.size(); ++id) {
      if (!present_[id]) continue;
      size_t h = hash(strings_[id]) & (cap - 1);
      while (table_[h] >= 0) h = (h + 1) & (cap - 1);
      table_[h] = static_cast<int32_t>(id);
    }
  }
}

void Vocab::grow() {
  reserve(std::max<size_t>(count_ + 1, table_.size()));
}

bool Vocab::add(std::string_view tok, int32_t id) {
  if (find(tok) >= 0) return false;
  if ((count_ + 1) * 2 > table_.size()) grow();
  auto uid = static_cast<size_t>(id);
  if (uid >= strings_.size()) {
    strings_.resize(uid + 1);
    present_.resize(uid + 1, 0);
  }
  if (present_[uid]) return false;  // duplicate id: keep the first token
  strings_[uid] = std::string(tok);
  present_[uid] = 1;
  size_t mask = table_.size() - 1;
  size_t h = hash(tok) & mask;
  while (table_[h] >= 0) h = (h + 1) & mask;
  table_[h] = id;
  ++count_;
  return true;
}

}  // namespace ohm::tokenizers
