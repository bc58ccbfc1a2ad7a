// FNV-1a (64 bit) over bytes: stable across platforms and runs, for digests and derived seeds.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ld {

inline constexpr uint64_t kFnv1aOffset = 1469598103934665603ULL;

// Continues the hash `h` over n bytes at p (start with kFnv1aOffset).
inline uint64_t fnv1a(const void* p, size_t n, uint64_t h = kFnv1aOffset) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

}  // namespace ld
