// Low-level text input shared by the dataset readers: whole-file reads, strict UTF-8 validation,
// TSV lines (no quote processing, as GLUE needs), RFC 4180 CSV records, and JSON / JSON-lines.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ld::data {

// Reads a whole file as bytes. Throws ld::Error naming `path` when it is missing, is not a regular
// file, or cannot be read.
std::string read_file(const std::string& path);

// Byte offset of the first invalid UTF-8 sequence in `s` (overlong forms, surrogates, code points
// above U+10FFFF and truncated sequences are invalid), or npos when `s` is valid.
size_t find_invalid_utf8(std::string_view s);

// 1-based line number of byte `offset` in `text` (lines separated by '\n').
int64_t line_of_offset(std::string_view text, size_t offset);

// 1-based line numbers of ascending byte offsets, in one pass over `text`.
std::vector<int64_t> lines_of_offsets(std::string_view text, const std::vector<size_t>& offsets);

// Throws ld::Error "<name>:<line>: invalid UTF-8 ..." when `text` is not valid UTF-8.
void check_utf8(std::string_view text, const std::string& name);

// Removes a leading UTF-8 byte-order mark (MRPC's train/dev files start with one).
std::string_view strip_bom(std::string_view text);

// One non-empty line of a TSV file: the fields, split on every '\t' with no quote processing (GLUE
// TSVs contain unbalanced quotes), and its 1-based line number. A trailing '\r' is dropped.
struct TsvRow {
  int64_t line = 0;
  std::vector<std::string> fields;
};

// Splits `text` (already UTF-8 checked, BOM stripped) into rows; blank lines are skipped. The last
// line may lack a newline (CoLA's dev.tsv ends so).
std::vector<TsvRow> split_tsv(std::string_view text);

// One CSV record (RFC 4180: ',' separated, fields optionally in double quotes, "" is a literal
// quote inside a quoted field, quoted fields may span lines; CRLF or LF record ends). `line` is
// the 1-based line on which the record starts. Throws ld::Error naming `name` and the line for an
// unterminated quote, a character after a closing quote, or a quote inside an unquoted field.
struct CsvRecord {
  int64_t line = 0;
  std::vector<std::string> fields;
};
std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& name);

// Parses one JSON document; a syntax error becomes ld::Error "<name>:<line>: ...".
// `first_line` is added to the line number (for documents that are one line of a JSONL file).
nlohmann::json parse_json(std::string_view text, const std::string& name, int64_t first_line = 1);

// Byte offsets at which each element of the top-level JSON array in `text` starts (used to name
// the line of a semantically bad entry). `text` must already parse as a JSON array.
std::vector<size_t> top_level_array_offsets(std::string_view text);

// Each non-blank line of a JSON-lines file parsed as a JSON value, with its 1-based line number.
struct JsonLine {
  int64_t line = 0;
  nlohmann::json value;
};
std::vector<JsonLine> parse_jsonl(std::string_view text, const std::string& name);

}  // namespace ld::data
