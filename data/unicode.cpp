// Lookups over the generated Unicode tables and UTF-8 coding for the tokenizers.
#include "data/unicode.h"

#include <algorithm>

#include "data/unicode_tables.h"

namespace ld::data::unicode {
namespace {

using tables::Range;

const Range* find_range(const Range* begin, size_t n, char32_t c) {
  const Range* end = begin + n;
  const Range* it = std::upper_bound(begin, end, static_cast<uint32_t>(c),
                                     [](uint32_t v, const Range& r) { return v < r.first; });
  if (it == begin) return nullptr;
  --it;
  return c <= it->last ? it : nullptr;
}

// ASCII is the hot path of every tokenizer: a direct table.
struct AsciiCats {
  Category cat[128];
  AsciiCats() {
    for (char32_t c = 0; c < 128; ++c) {
      const Range* r = find_range(tables::kCategoryRanges, tables::kCategoryRangesSize, c);
      cat[c] = r ? static_cast<Category>(r->value) : Category::Cn;
    }
  }
};
const AsciiCats kAscii;

constexpr char32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr int kHangulVCount = 21, kHangulTCount = 28, kHangulNCount = kHangulVCount * kHangulTCount;
constexpr int kHangulSCount = 11172;

}  // namespace

const char* version() { return tables::kUnicodeVersion; }

Category category(char32_t c) {
  if (c < 128) return kAscii.cat[c];
  const Range* r = find_range(tables::kCategoryRanges, tables::kCategoryRangesSize, c);
  return r ? static_cast<Category>(r->value) : Category::Cn;
}

bool is_white_space(char32_t c) {
  if (c < 128) return c == ' ' || (c >= 9 && c <= 13);
  return find_range(tables::kWhiteSpaceRanges, tables::kWhiteSpaceRangesSize, c) != nullptr;
}

uint8_t combining_class(char32_t c) {
  if (c < 0x300) return 0;
  const Range* r = find_range(tables::kCccRanges, tables::kCccRangesSize, c);
  return r ? r->value : 0;
}

void append_lower(char32_t c, std::u32string& out) {
  if (c < 128) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  const auto* b = tables::kLowerMap;
  const auto* e = b + tables::kLowerMapSize;
  const auto* it =
      std::lower_bound(b, e, static_cast<uint32_t>(c),
                       [](const tables::LowerEntry& x, uint32_t v) { return x.cp < v; });
  if (it == e || it->cp != c) {
    out.push_back(c);
    return;
  }
  for (int k = 0; k < it->len; ++k) out.push_back(it->out[k]);
}

void append_nfd(char32_t c, std::u32string& out) {
  if (c < 0xC0) {
    out.push_back(c);
    return;
  }
  if (c >= kHangulS && c < kHangulS + kHangulSCount) {
    const int s = static_cast<int>(c - kHangulS);
    out.push_back(kHangulL + s / kHangulNCount);
    out.push_back(kHangulV + (s % kHangulNCount) / kHangulTCount);
    if (s % kHangulTCount != 0) out.push_back(kHangulT + s % kHangulTCount);
    return;
  }
  const auto* b = tables::kNfdMap;
  const auto* e = b + tables::kNfdMapSize;
  const auto* it = std::lower_bound(b, e, static_cast<uint32_t>(c),
                                    [](const tables::NfdEntry& x, uint32_t v) { return x.cp < v; });
  if (it == e || it->cp != c) {
    out.push_back(c);
    return;
  }
  out.append(reinterpret_cast<const char32_t*>(tables::kNfdData + it->offset), it->len);
}

void canonical_order(std::u32string& s) {
  size_t i = 0;
  while (i < s.size()) {
    if (combining_class(s[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && combining_class(s[j]) != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(s.begin() + i, s.begin() + j, [](char32_t a, char32_t b) {
        return combining_class(a) < combining_class(b);
      });
    }
    i = j;
  }
}

std::u32string nfd(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) append_nfd(c, out);
  canonical_order(out);
  return out;
}

char32_t next_utf8(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len;
  char32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    ++i;
    return 0xFFFD;
  }
  size_t j = i + 1;
  for (int k = 1; k < len; ++k, ++j) {
    if (j >= s.size()) {
      i = j;
      return 0xFFFD;
    }
    const auto b = static_cast<unsigned char>(s[j]);
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      i = j;  // the maximal subpart ends before the offending byte
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i = j;
  return cp;
}

std::u32string to_utf32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(next_utf8(s, i));
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) append_utf8(out, next_utf8(s, i));
  return out;
}

}  // namespace ld::data::unicode
