// libFuzzer target for the DART JSON reader (nlohmann-json parse, entry line mapping, schema
// checks).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/nlg.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ld::data::NlgDataset d = ld::data::parse_dart(text, "fuzz.json");
    for (const auto& e : d.examples)
      if (e.source.empty() || e.line < 1) __builtin_trap();
  } catch (const ld::Error&) {
  }
  return 0;
}
