// Low-level text input for the dataset readers: file reads, UTF-8 validation, TSV, CSV and JSON.
#include "data/text_io.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ld::data {

std::string read_file(const std::string& path) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  LD_CHECK(!ec && std::filesystem::exists(st), "{}: no such file", path);
  LD_CHECK(std::filesystem::is_regular_file(st), "{}: not a regular file", path);
  std::ifstream in(path, std::ios::binary);
  LD_CHECK(in.good(), "{}: cannot open for reading", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  LD_CHECK(!in.bad(), "{}: read error", path);
  return std::move(ss).str();
}

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, 0xC0/0xC1 (overlong) or 0xF5..0xFF
    }
    if (i + len > n) return i;
    for (int k = 1; k < len; ++k) {
      unsigned cc = p[i + k];
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return i;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return i;                            // surrogate
    if (cp > 0x10FFFF) return i;
    i += len;
  }
  return std::string_view::npos;
}

int64_t line_of_offset(std::string_view text, size_t offset) {
  if (offset > text.size()) offset = text.size();
  int64_t line = 1;
  for (size_t i = 0; i < offset; ++i) line += text[i] == '\n';
  return line;
}

std::vector<int64_t> lines_of_offsets(std::string_view text, const std::vector<size_t>& offsets) {
  std::vector<int64_t> lines;
  lines.reserve(offsets.size());
  int64_t line = 1;
  size_t pos = 0;
  for (size_t off : offsets) {
    LD_CHECK(off >= pos, "lines_of_offsets: offsets must ascend");
    off = std::min(off, text.size());
    for (; pos < off; ++pos) line += text[pos] == '\n';
    lines.push_back(line);
  }
  return lines;
}

void check_utf8(std::string_view text, const std::string& name) {
  size_t bad = find_invalid_utf8(text);
  if (bad == std::string_view::npos) return;
  LD_FAIL("{}:{}: invalid UTF-8 (byte 0x{:02x} at offset {})", name, line_of_offset(text, bad),
          static_cast<unsigned char>(text[bad]), bad);
}

std::string_view strip_bom(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

std::vector<TsvRow> split_tsv(std::string_view text) {
  std::vector<TsvRow> rows;
  int64_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view l = text.substr(pos, end - pos);
    ++line;
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty()) continue;
    TsvRow row;
    row.line = line;
    size_t start = 0;
    while (true) {
      size_t tab = l.find('\t', start);
      if (tab == std::string_view::npos) {
        row.fields.emplace_back(l.substr(start));
        break;
      }
      row.fields.emplace_back(l.substr(start, tab - start));
      start = tab + 1;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& name) {
  std::vector<CsvRecord> records;
  size_t i = 0;
  const size_t n = text.size();
  int64_t line = 1;
  while (i < n) {
    // Skip blank lines between records.
    if (text[i] == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') {
      ++line;
      i += 2;
      continue;
    }
    CsvRecord rec;
    rec.line = line;
    bool record_done = false;
    while (!record_done) {
      std::string field;
      if (i < n && text[i] == '"') {
        const int64_t quote_line = line;
        ++i;
        while (true) {
          LD_CHECK(i < n, "{}:{}: unterminated quoted CSV field", name, quote_line);
          char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        // After a closing quote: a separator, a record end or the end of the text.
        if (i < n && text[i] != ',' && text[i] != '\n' &&
            !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')) {
          LD_FAIL("{}:{}: unexpected character after a closing quote in a CSV field", name, line);
        }
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n') {
          if (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') break;
          LD_CHECK(text[i] != '"', "{}:{}: quote inside an unquoted CSV field", name, line);
          field += text[i];
          ++i;
        }
      }
      rec.fields.push_back(std::move(field));
      if (i >= n) {
        record_done = true;
      } else if (text[i] == ',') {
        ++i;
      } else {  // '\n' or "\r\n"
        i += text[i] == '\r' ? 2 : 1;
        ++line;
        record_done = true;
      }
    }
    records.push_back(std::move(rec));
  }
  return records;
}

namespace {

// The DOM builder with a parse_error hook that keeps the byte position for every error kind:
// nlohmann-json reports number overflow ("1E400") as out_of_range, whose exception carries no
// position, so catching only parse_error let it escape (found by fuzz_dart_json).
struct PositionedDomSax : nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
  explicit PositionedDomSax(nlohmann::json& j)
      : nlohmann::detail::json_sax_dom_parser<nlohmann::json>(j, /*allow_exceptions=*/false) {}
  bool parse_error(size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) {
    failed = true;
    error_position = position;
    message = ex.what();
    return false;
  }
  bool failed = false;
  size_t error_position = 0;
  std::string message;
};

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& name, int64_t first_line) {
  nlohmann::json j;
  PositionedDomSax sax(j);
  const bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &sax);
  if (!ok || sax.failed) {
    // The position counts characters read (1-based) and may point one past the end.
    const size_t off = sax.error_position > 0 ? sax.error_position - 1 : 0;
    LD_FAIL("{}:{}: invalid JSON: {}", name, first_line - 1 + line_of_offset(text, off),
            sax.message.empty() ? std::string("parse failed") : sax.message);
  }
  return j;
}

std::vector<size_t> top_level_array_offsets(std::string_view text) {
  std::vector<size_t> offs;
  int depth = 0;
  bool in_string = false, expect_value = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (depth == 1 && expect_value && c != ']') {
      offs.push_back(i);
      expect_value = false;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
      if (depth == 1 && c == '[') expect_value = true;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_value = true;
    }
  }
  return offs;
}

std::vector<JsonLine> parse_jsonl(std::string_view text, const std::string& name) {
  std::vector<JsonLine> out;
  int64_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view l = text.substr(pos, end - pos);
    ++line;
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    out.push_back({line, parse_json(l, name, line)});
  }
  return out;
}

}  // namespace ld::data
