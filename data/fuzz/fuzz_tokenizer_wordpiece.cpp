// libFuzzer target for the WordPiece vocab.txt loader: the input is the file; a loaded tokenizer
// then encodes (a pair, truncated) and decodes the input's first bytes.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string path = "/tmp/ld_fuzz_wordpiece_" + std::to_string(::getpid()) + "_vocab.txt";
  std::ofstream(path, std::ios::binary).write(in.data(), static_cast<std::streamsize>(in.size()));
  try {
    auto tok = ld::data::load_wordpiece(path);
    const std::string_view text = in.substr(0, 256);
    const auto e = tok->encode_pair(text, "Héllo, WORLD 中文!",
                                    {.add_special_tokens = true, .max_length = 24});
    if (e.ids.size() != e.type_ids.size()) __builtin_trap();
    for (int32_t id : e.ids)
      if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
    (void)tok->decode(e.ids);
  } catch (const ld::Error&) {
  }
  return 0;
}
