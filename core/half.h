// bf16 / f16 storage types and their conversions, bit-identical to CUDA's __float2bfloat16_rn and
// __float2half_rn (round to nearest even; NaN becomes the canonical 0x7FFF, as CUDA does), and
// back, bit-identical to __half2float / __bfloat162float (f16 NaN -> 0x7FFFFFFF).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LD_HD __host__ __device__
#else
#define LD_HD
#endif

namespace ld {

LD_HD inline uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
LD_HD inline float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

LD_HD inline uint16_t float_to_bf16_bits(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  // NaN
  uint32_t r = x >> 16, rem = x << 16;
  if (rem > 0x80000000u || (rem == 0x80000000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(r);
}
LD_HD inline float bf16_bits_to_float(uint16_t b) { return bits_f32(uint32_t(b) << 16); }

LD_HD inline uint16_t float_to_f16_bits(float f) {
  uint32_t x = f32_bits(f);
  uint32_t u = x & 0x7fffffffu, sign = (x >> 16) & 0x8000u, rem, r;
  if (u >= 0x7f800000u) {
    rem = 0;
    r = (u == 0x7f800000u) ? (sign | 0x7c00u) : 0x7fffu;
  } else if (u > 0x477fefffu) {  // overflows to inf after rounding
    rem = 0x80000000u;
    r = sign | 0x7bffu;
  } else if (u >= 0x38800000u) {  // normal
    rem = u << 19;
    r = sign | ((u - 0x38000000u) >> 13);
  } else if (u < 0x33000001u) {  // rounds to zero
    rem = u;
    r = sign;
  } else {  // subnormal
    uint32_t e = u >> 23, shift = 0x7eu - e, m = (u & 0x7fffffu) | 0x800000u;
    rem = m << (32 - shift);
    r = (sign | (m >> shift)) & 0xffffu;
  }
  if (rem > 0x80000000u || (rem == 0x80000000u && (r & 1u))) ++r;
  return static_cast<uint16_t>(r);
}

LD_HD inline float f16_bits_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  // Inf keeps its sign; every NaN becomes the canonical 0x7FFFFFFF, as CUDA's __half2float does.
  if (e == 0x1f) return bits_f32(m ? 0x7fffffffu : (sign | 0x7f800000u));
  if (e == 0) {
    if (m == 0) return bits_f32(sign);
    // subnormal: m * 2^-24
    float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return (sign ? -v : v);
  }
  return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

// Storage types: plain 16-bit payloads with explicit conversions.
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  LD_HD explicit bf16(float f) : bits(float_to_bf16_bits(f)) {}
  LD_HD explicit operator float() const { return bf16_bits_to_float(bits); }
  LD_HD static bf16 from_bits(uint16_t b) {
    bf16 r;
    r.bits = b;
    return r;
  }
};
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  LD_HD explicit f16(float f) : bits(float_to_f16_bits(f)) {}
  LD_HD explicit operator float() const { return f16_bits_to_float(bits); }
  LD_HD static f16 from_bits(uint16_t b) {
    f16 r;
    r.bits = b;
    return r;
  }
};

}  // namespace ld
