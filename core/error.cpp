// ld::Error construction with context.
#include "core/error.h"

#include <cstring>

namespace ld {

void throw_error(const char* file, int line, const char* func, const char* cond,
                 const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::string what = msg;
  if (cond)
    what += fmt::format(" (check `{}` failed", cond);
  else
    what += " (";
  what += fmt::format("{}in {} at {}:{})", cond ? "; " : "", func, base, line);
  throw Error(what);
}

}  // namespace ld
