// libFuzzer target for the SentencePiece tokenizer.model loader (libsentencepiece underneath): the
// input is the model file; a loaded model then encodes and decodes a fixed text and the input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "core/error.h"
#include "data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string path = "/tmp/ld_fuzz_sp_" + std::to_string(::getpid()) + "_tokenizer.model";
  std::ofstream(path, std::ios::binary).write(in.data(), static_cast<std::streamsize>(in.size()));
  try {
    ld::data::SentencePieceOptions opt;
    opt.add_bos = false;  // a fuzzed model need not have BOS/EOS
    auto tok = ld::data::load_sentencepiece(path, opt);
    auto e = tok->encode_pair("Hello <s> world", in.substr(0, 64),
                              {.add_special_tokens = true, .max_length = 32});
    for (int32_t id : e.ids)
      if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
    (void)tok->decode(e.ids);
  } catch (const ld::Error&) {
  }
  return 0;
}
