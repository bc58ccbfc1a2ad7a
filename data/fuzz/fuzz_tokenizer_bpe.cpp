// libFuzzer target for the byte-level BPE loaders: byte 0 picks vocab.json + merges.txt (the rest
// split at the first NUL) or tokenizer.json; a loaded tokenizer then encodes and decodes the input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/tokenizer.h"

namespace {

std::string write_temp(const char* name, std::string_view bytes) {
  const std::string path = "/tmp/ld_fuzz_bpe_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

void exercise(const ld::data::Tokenizer& tok, std::string_view text) {
  const auto e = tok.encode_pair(text, "a b", {.add_special_tokens = true, .max_length = 16});
  if (e.ids.size() != e.type_ids.size() || e.ids.size() != e.attention_mask.size())
    __builtin_trap();
  for (int32_t id : tok.encode_ids(text))
    if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
  (void)tok.decode(e.ids, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    std::unique_ptr<ld::data::Tokenizer> tok;
    if (data[0] % 2 == 0) {
      const size_t nul = in.find('\0');
      const std::string_view vocab = in.substr(0, nul);
      const std::string_view merges = nul == std::string_view::npos ? "" : in.substr(nul + 1);
      tok = ld::data::load_bpe(
          write_temp("vocab.json", vocab), write_temp("merges.txt", merges),
          {.add_prefix_space = (data[0] & 2) != 0, .roberta_specials = (data[0] & 4) != 0});
    } else {
      tok = ld::data::load_bpe_tokenizer_json(write_temp("tokenizer.json", in));
    }
    exercise(*tok, in.substr(0, 256));
  } catch (const ld::Error&) {
  }
  return 0;
}
