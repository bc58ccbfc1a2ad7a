// Unicode helpers for the tokenizers: UTF-8 decoding/encoding, general category, White_Space,
// lower-casing, canonical decomposition (NFD). Tables: data/unicode_tables.cpp (generated).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ld::data::unicode {

// The Unicode version of the tables (from Python's unicodedata; see tools/gen_unicode_tables.py).
const char* version();

enum class Category : uint8_t {
  Cn,
  Lu,
  Ll,
  Lt,
  Lm,
  Lo,
  Mn,
  Mc,
  Me,
  Nd,
  Nl,
  No,
  Pc,
  Pd,
  Ps,
  Pe,
  Pi,
  Pf,
  Po,
  Sm,
  Sc,
  Sk,
  So,
  Zs,
  Zl,
  Zp,
  Cc,
  Cf,
  Cs,
  Co
};

Category category(char32_t c);
inline bool is_letter(Category k) { return k >= Category::Lu && k <= Category::Lo; }
inline bool is_number(Category k) { return k >= Category::Nd && k <= Category::No; }
inline bool is_punctuation(Category k) { return k >= Category::Pc && k <= Category::Po; }
// "Other" (C*): Cc, Cf, Cs, Co and unassigned Cn.
inline bool is_other(Category k) { return k == Category::Cn || k >= Category::Cc; }
inline bool is_letter(char32_t c) { return is_letter(category(c)); }
inline bool is_number(char32_t c) { return is_number(category(c)); }
// The White_Space property (what Rust's char::is_whitespace and Oniguruma's \s match).
bool is_white_space(char32_t c);
uint8_t combining_class(char32_t c);

// Appends the full lower-case mapping of c (no Final_Sigma context, as Rust's char::to_lowercase).
void append_lower(char32_t c, std::u32string& out);
// Appends the full canonical decomposition of c (Hangul syllables included), not yet reordered.
void append_nfd(char32_t c, std::u32string& out);
// Canonical ordering: stable-sorts each run of non-starters by combining class.
void canonical_order(std::u32string& s);
// NFD of a whole string.
std::u32string nfd(std::u32string_view s);

// Decodes the code point at s[i] and advances i. Invalid or truncated sequences yield U+FFFD and
// advance by the maximal invalid subpart (as the WHATWG/Unicode "replacement" recommendation).
char32_t next_utf8(std::string_view s, size_t& i);
std::u32string to_utf32(std::string_view s);
void append_utf8(std::string& out, char32_t c);
std::string to_utf8(std::u32string_view s);
// Replaces invalid UTF-8 with U+FFFD (like Rust's String::from_utf8_lossy).
std::string utf8_lossy(std::string_view s);

}  // namespace ld::data::unicode
