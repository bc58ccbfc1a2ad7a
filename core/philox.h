// Philox4x32-10 counter-based RNG (Salmon et al., 2011), identical on host and device, so the CPU
// and CUDA backends draw the same numbers (and dropout masks) for the same (seed, offset).
#pragma once
#include <cstdint>

#include "core/half.h"

namespace ld {

struct Philox4 {
  uint32_t v[4];
};

LD_HD inline uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// One block of four 32-bit words for counter `ctr` (128-bit) and key (64-bit seed).
LD_HD inline Philox4 philox4x32_10(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(ctr_lo), c1 = static_cast<uint32_t>(ctr_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(ctr_hi), c3 = static_cast<uint32_t>(ctr_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The i-th 32-bit draw of stream (seed, offset): block (i / 4) of counter space `offset`.
LD_HD inline uint32_t philox_u32(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 b = philox4x32_10(i >> 2, offset, seed);
  return b.v[i & 3];
}

// Uniform in [0, 1) with 24 bits, exactly representable in f32.
LD_HD inline float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return static_cast<float>(philox_u32(seed, offset, i) >> 8) * (1.0f / 16777216.0f);
}

// Dropout keep decision for element i: kept with probability 1 - p.
LD_HD inline bool dropout_keep(uint64_t seed, uint64_t offset, uint64_t i, float p) {
  return philox_uniform(seed, offset, i) >= p;
}

}  // namespace ld
