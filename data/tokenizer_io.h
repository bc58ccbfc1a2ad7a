// File reading and JSON-error helpers shared by the tokenizer loaders (internal to data/).
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace ld::data::detail {

// Whole file as bytes; ld::Error naming the file when it cannot be opened or read.
std::string read_tokenizer_file(const std::filesystem::path& path);
// 1-based line and column of byte offset `byte` in `text`.
std::pair<size_t, size_t> line_col(std::string_view text, size_t byte);

}  // namespace ld::data::detail
