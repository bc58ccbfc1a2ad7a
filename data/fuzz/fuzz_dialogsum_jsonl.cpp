// libFuzzer target for the JSON-lines reader and the DialogSum schema checks.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/nlg.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ld::data::NlgDataset d = ld::data::parse_dialogsum(text, "fuzz.jsonl");
    for (size_t i = 1; i < d.examples.size(); ++i)
      if (d.examples[i].line <= d.examples[i - 1].line) __builtin_trap();
  } catch (const ld::Error&) {
  }
  return 0;
}
