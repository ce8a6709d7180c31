// De-identification: a PII detector over UTF-8 text and the transforms `ohm datasets deid`
// applies to what it finds (docs/deid.md).
//
// Detection is rule-based, with hand-written scanners (no regex engine): structured entities are
// found by their shape and then validated (checksums, date and range checks, length tables);
// person names and street addresses by patterns over gazetteers (English given names and
// surnames, Chinese surnames; street-type suffixes, Chinese 省/市/区/路/号 address markers).
// Overlapping candidates are resolved deterministically: the longest span wins, then the more
// specific entity type (the order of Entity below), then the earlier start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ohm::safety::deid {

// In order of specificity (an earlier type wins a tie between spans of equal length).
enum class Entity : uint8_t {
  CnId,     // Chinese resident identity number (18 digits, ISO 7064 MOD 11-2, birth date)
  Iban,     // IBAN (country length table + mod 97)
  Card,     // payment card (IIN/length table + Luhn)
  Ssn,      // US Social Security number (SSA area/group/serial rules)
  Email,    // e-mail address
  Url,      // http(s)/ftp URL or www. host
  Ip,       // IPv4 or IPv6 (compressed forms too)
  Phone,    // E.164, Chinese mobile and landline (with or without +86), NANP with separators
  Dob,      // a date after a birth context word (DOB, born, birthday, 出生, 生日 ...)
  Address,  // street address (English number + street + suffix; Chinese ...路/街 N号)
  Person,   // person name (English gazetteers and titles; Chinese surname + 1-2 characters)
};
inline constexpr int kEntityCount = 11;

// "cn_id", "iban", "card", "ssn", "email", "url", "ip", "phone", "dob", "address", "person".
const char* entity_name(Entity e);
// The tag mask mode writes: "CN_ID", "EMAIL", ...
const char* entity_tag(Entity e);
std::optional<Entity> parse_entity(std::string_view name);

// A set of entity types (bit i: Entity i).
struct EntitySet {
  uint32_t bits = (1u << kEntityCount) - 1;  // all
  bool has(Entity e) const { return bits & (1u << static_cast<int>(e)); }
  static EntitySet none() { return EntitySet{0}; }
  void add(Entity e) { bits |= 1u << static_cast<int>(e); }
};
// Parses "email,phone,..." (names of entity_name); throws InvalidArgument naming a bad name.
EntitySet parse_entity_list(std::string_view list);

struct Span {
  size_t begin = 0, end = 0;  // byte offsets into the text, [begin, end)
  Entity type = Entity::Email;
};

// Finds the PII spans of `text` among `enabled`: sorted by begin, never overlapping.
std::vector<Span> detect(std::string_view text, EntitySet enabled = {});

// Validators, exposed for tests and for the fake-value generator.
bool luhn_ok(std::string_view digits);
bool cn_id_ok(std::string_view id18);    // 17 digits + check (0-9 or X/x), region, birth date
bool iban_ok(std::string_view compact);  // no spaces, upper case
bool ssn_ok(std::string_view digits9);

enum class Mode { Mask, Replace, Hash, Drop };
std::optional<Mode> parse_mode(std::string_view name);
const char* mode_name(Mode m);

struct TransformOptions {
  Mode mode = Mode::Mask;
  uint64_t seed = 0;  // replace: fake values depend only on (seed, type, value)
  std::string key;    // hash: the HMAC-SHA256 key (required, at least 16 bytes)
};

// Rewrites `text` with each span replaced as the mode says:
//   mask    "<EMAIL>", "<PHONE>", ... (the entity tag in angle brackets)
//   replace a fake value of the same type and shape (valid checksums), deterministic in
//           (seed, type, value): the same value gets the same fake everywhere
//   hash    "<EMAIL:hex>": the first 128 bits of HMAC-SHA256(key, "email:" + normalised value)
//           in hex; normalised: lower case for e-mail, URL and IP, digits (and letters) only
//           for the numeric types, so one value written two ways hashes the same
// Drop mode is handled by the caller (the row goes); here it returns `text` unchanged.
std::string transform(std::string_view text, const std::vector<Span>& spans,
                      const TransformOptions& opt);

// The replacement for one value (exposed for tests).
std::string fake_value(Entity type, std::string_view value, uint64_t seed);
std::string hash_value(Entity type, std::string_view value, std::string_view key);

}  // namespace ohm::safety::deid
