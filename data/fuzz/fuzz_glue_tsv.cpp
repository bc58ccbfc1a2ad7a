// libFuzzer target for the GLUE TSV reader: byte 0 picks the task and labelled/unlabelled, the
// rest is the file. Any exception other than ld::Error, or any sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "data/glue.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kTasks[] = {"cola",  "sst-2", "mrpc", "qqp",
                                       "sts-b", "mnli",  "qnli", "rte"};
  const char* task = kTasks[data[0] % 8];
  const bool labelled = (data[0] / 8) % 2 == 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    ld::data::GlueDataset d = ld::data::parse_glue(task, text, "fuzz.tsv", labelled);
    for (const auto& e : d.examples) {
      if (e.line < 1 || (labelled && !ld::data::task_info(task).is_regression() && e.label < 0))
        __builtin_trap();
    }
  } catch (const ld::Error&) {
  }
  return 0;
}
