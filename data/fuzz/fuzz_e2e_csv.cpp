// libFuzzer target for the RFC 4180 CSV parser and the E2E reader (MR grouping and linearisation).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/nlg.h"
#include "data/text_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto recs = ld::data::parse_csv(text, "fuzz.csv");
    for (size_t i = 1; i < recs.size(); ++i)
      if (recs[i].line < recs[i - 1].line) __builtin_trap();  // lines never go backwards
  } catch (const ld::Error&) {
  }
  try {
    ld::data::NlgDataset d = ld::data::parse_e2e(text, "fuzz.csv");
    if (d.examples.empty()) __builtin_trap();  // a returned dataset is never empty
  } catch (const ld::Error&) {
  }
  return 0;
}
