// The word lists behind the name and address patterns of ohm/safety/deid.h (docs/deid.md).
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

namespace ohm::safety::deid {

struct Gazetteers {
  std::unordered_set<std::string> en_given, en_surnames, en_titles, en_stop_words;
  std::unordered_set<std::string> pinyin_surname, pinyin_given, street_suffixes;
  std::unordered_set<std::string> zh_surnames, zh_compound_surnames, zh_stop_chars;
  std::unordered_set<std::string> zh_street_suffixes, zh_addr_stop;
  std::vector<std::string> zh_name_context, zh_titles, zh_unit_suffixes;
  // for fake values
  std::vector<std::string> en_given_list, en_surname_list, zh_surname_list, zh_given_chars;
  std::vector<std::string> zh_cities, zh_roads;
};

const Gazetteers& gazetteers();

}  // namespace ohm::safety::deid
