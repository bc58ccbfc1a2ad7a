// LD_NVTX environment switch.
#include "core/nvtx.h"

#include <cstdlib>
#include <cstring>

namespace ld {

bool nvtx_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("LD_NVTX");
    return !(v && (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0));
  }();
  return on;
}

}  // namespace ld
