// File reading helpers for the tokenizer loaders: errors always name the file.
#include "data/tokenizer_io.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ld::data::detail {

std::string read_tokenizer_file(const std::filesystem::path& path) {
  std::error_code ec;
  LD_CHECK(std::filesystem::is_regular_file(path, ec), "{}: tokenizer file not found",
           path.string());
  std::ifstream in(path, std::ios::binary);
  LD_CHECK(in.good(), "{}: cannot open tokenizer file: {}", path.string(), std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  LD_CHECK(!in.bad(), "{}: read error", path.string());
  return std::move(ss).str();
}

std::pair<size_t, size_t> line_col(std::string_view text, size_t byte) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

}  // namespace ld::data::detail
