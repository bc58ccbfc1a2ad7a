// ld::Error and the always-on checking macros: every failed check names what was expected and what
// was found, and where (function, file:line).
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace ld {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] void throw_error(const char* file, int line, const char* func, const char* cond,
                              const std::string& msg);

}  // namespace ld

// LD_CHECK(cond, "fmt {}", args...): throws ld::Error when cond is false. Always on (not NDEBUG).
#define LD_CHECK(cond, ...)                                                               \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::ld::throw_error(__FILE__, __LINE__, __func__, #cond, ::fmt::format(__VA_ARGS__)); \
  } while (0)

// LD_FAIL("fmt {}", args...): throws unconditionally.
#define LD_FAIL(...) \
  ::ld::throw_error(__FILE__, __LINE__, __func__, nullptr, ::fmt::format(__VA_ARGS__))
