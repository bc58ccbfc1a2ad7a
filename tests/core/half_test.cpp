// bf16/f16 conversions: known bit patterns (NaN, Inf, overflow, subnormals, ties, -0) and, when the
// CUDA toolkit headers are present, bit identity with CUDA's own host conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"

#ifdef LD_TEST_CUDA_FP16_HEADERS
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

using namespace ld;

namespace {

float f(uint32_t bits) { return bits_f32(bits); }

struct Case {
  uint32_t in;
  uint16_t out;
  const char* what;
};

}  // namespace

TEST(HalfGolden, FloatToF16KnownPatterns) {
  const Case cases[] = {
      {0x7fc00000u, 0x7fff, "quiet NaN -> canonical 0x7FFF"},
      {0xffc00000u, 0x7fff, "negative NaN -> canonical 0x7FFF (sign dropped)"},
      {0x7f800001u, 0x7fff, "signalling NaN -> canonical"},
      {0x7f800000u, 0x7c00, "+inf"},
      {0xff800000u, 0xfc00, "-inf"},
      {0x477fe000u, 0x7bff, "65504 = max finite"},
      {0x477fefffu, 0x7bff, "just below 65520 rounds down to 65504"},
      {0x477ff000u, 0x7c00, "65520 (tie, odd mantissa) overflows to inf"},
      {0xc77ff000u, 0xfc00, "-65520 overflows to -inf"},
      {0x7f7fffffu, 0x7c00, "FLT_MAX overflows to inf"},
      {0x00000000u, 0x0000, "+0"},
      {0x80000000u, 0x8000, "-0"},
      {0x3f800000u, 0x3c00, "1"},
      {0xc0000000u, 0xc000, "-2"},
      {0x3dcccccdu, 0x2e66, "0.1f"},
      {0x38800000u, 0x0400, "2^-14 = min normal"},
      {0x33800000u, 0x0001, "2^-24 = min subnormal"},
      {0x33000000u, 0x0000, "2^-25: tie between 0 and 2^-24 -> even (0)"},
      {0xb3000000u, 0x8000, "-2^-25 -> -0"},
      {0x33000001u, 0x0001, "just above 2^-25 -> 2^-24"},
      {0x33c00000u, 0x0002, "3*2^-25: tie between 1 and 2 ulps -> even (2)"},
      {0x34200000u, 0x0002, "5*2^-25: tie between 2 and 3 ulps -> even (2)"},
      {0x387fc000u, 0x03ff, "1023*2^-24 = max subnormal"},
      {0x387fe000u, 0x0400, "1023.5*2^-24 rounds up into the min normal"},
      {0x3f801000u, 0x3c00, "1 + 2^-11: tie -> even (down)"},
      {0x3f803000u, 0x3c02, "1 + 3*2^-11: tie -> even (up)"},
      {0x3f801001u, 0x3c01, "just above the tie rounds up"},
      {0x3f800fffu, 0x3c00, "just below the tie rounds down"},
      {0x2f800000u, 0x0000, "2^-32 underflows to 0"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(float_to_f16_bits(f(c.in)), c.out)
        << c.what << fmt::format(" (input 0x{:08x})", c.in);
}

TEST(HalfGolden, FloatToBf16KnownPatterns) {
  const Case cases[] = {
      {0x7fc00000u, 0x7fff, "quiet NaN -> canonical 0x7FFF"},
      {0xffc00001u, 0x7fff, "negative NaN -> canonical 0x7FFF"},
      {0x7f800001u, 0x7fff, "signalling NaN -> canonical (not rounded into inf)"},
      {0x7fffffffu, 0x7fff, "all-ones NaN"},
      {0x7f800000u, 0x7f80, "+inf"},
      {0xff800000u, 0xff80, "-inf"},
      {0x80000000u, 0x8000, "-0"},
      {0x3f800000u, 0x3f80, "1"},
      {0x40400000u, 0x4040, "3"},
      {0x3f808000u, 0x3f80, "1 + 2^-8: tie -> even (down)"},
      {0x3f818000u, 0x3f82, "1 + 3*2^-8: tie -> even (up)"},
      {0x3f808001u, 0x3f81, "just above the tie rounds up"},
      {0x3f807fffu, 0x3f80, "just below the tie rounds down"},
      {0xbf818000u, 0xbf82, "negative tie -> even (magnitude up)"},
      {0x7f7f7fffu, 0x7f7f, "largest value rounding to max finite bf16"},
      {0x7f7f8000u, 0x7f80, "tie at max finite bf16 (odd) overflows to inf"},
      {0x7f7fffffu, 0x7f80, "FLT_MAX rounds to inf"},
      {0x00000001u, 0x0000, "min f32 subnormal -> 0"},
      {0x00008000u, 0x0000, "subnormal tie -> even (0)"},
      {0x00018000u, 0x0002, "subnormal tie -> even (2)"},
      {0x00400000u, 0x0040, "f32 subnormal representable in bf16"},
  };
  for (const Case& c : cases)
    EXPECT_EQ(float_to_bf16_bits(f(c.in)), c.out)
        << c.what << fmt::format(" (input 0x{:08x})", c.in);
}

TEST(HalfGolden, F16ToFloatKnownPatterns) {
  EXPECT_EQ(f16_bits_to_float(0x3c00), 1.0f);
  EXPECT_EQ(f16_bits_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(f16_bits_to_float(0xfbff), -65504.0f);
  EXPECT_EQ(f16_bits_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_bits_to_float(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_bits_to_float(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_bits_to_float(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(f32_bits(f16_bits_to_float(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(f16_bits_to_float(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_bits_to_float(0xfc00), -std::numeric_limits<float>::infinity());
  // Every f16 NaN becomes the canonical f32 NaN 0x7FFFFFFF, as CUDA's host __half2float does.
  EXPECT_EQ(f32_bits(f16_bits_to_float(0x7e00)), 0x7fffffffu);
  EXPECT_EQ(f32_bits(f16_bits_to_float(0xfc01)), 0x7fffffffu);
  EXPECT_EQ(f32_bits(bf16_bits_to_float(0x3f80)), 0x3f800000u);
  EXPECT_EQ(f32_bits(bf16_bits_to_float(0x8000)), 0x80000000u);
}

// Every non-NaN f16/bf16 value survives f16 -> f32 -> f16 unchanged (the f32 is exact).
TEST(HalfGolden, RoundTripAllFinitePatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    uint16_t b = static_cast<uint16_t>(h);
    if ((b & 0x7c00u) != 0x7c00u || (b & 0x3ffu) == 0) {
      ASSERT_EQ(float_to_f16_bits(f16_bits_to_float(b)), b) << fmt::format("f16 0x{:04x}", h);
    }
    if ((b & 0x7f80u) != 0x7f80u || (b & 0x7fu) == 0) {
      ASSERT_EQ(float_to_bf16_bits(bf16_bits_to_float(b)), b) << fmt::format("bf16 0x{:04x}", h);
    }
  }
}

// Tensor conversions go through the same functions (CPU copy kernel).
TEST(HalfGolden, TensorConversionUsesRoundToNearestEven) {
  std::vector<float> v = {f(0x3f801000u), f(0x3f803000u), 65520.0f, -0.0f, 1e-8f};
  Tensor h = Tensor::from_vector<float>(v, {5}).to(DType::f16);
  std::vector<f16> hv = h.to_vector<f16>();
  EXPECT_EQ(hv[0].bits, 0x3c00);
  EXPECT_EQ(hv[1].bits, 0x3c02);
  EXPECT_EQ(hv[2].bits, 0x7c00);
  EXPECT_EQ(hv[3].bits, 0x8000);
  EXPECT_EQ(hv[4].bits, 0x0000);
  Tensor b = Tensor::from_vector<float>({f(0x3f808000u), f(0x3f818000u)}, {2}).to(DType::bf16);
  std::vector<bf16> bv = b.to_vector<bf16>();
  EXPECT_EQ(bv[0].bits, 0x3f80);
  EXPECT_EQ(bv[1].bits, 0x3f82);
  EXPECT_EQ(h.to(DType::f32).to_vector<float>()[1], f16_bits_to_float(0x3c02));
}

#ifdef LD_TEST_CUDA_FP16_HEADERS

namespace {

uint16_t cuda_f16(float x) { return __half_as_ushort(__float2half_rn(x)); }
uint16_t cuda_bf16(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

// Compares ours with CUDA's on the bit pattern `u`, counting mismatches.
void check_pattern(uint32_t u, int64_t& bad_f16, int64_t& bad_bf16) {
  float x = bits_f32(u);
  if (float_to_f16_bits(x) != cuda_f16(x)) ++bad_f16;
  if (float_to_bf16_bits(x) != cuda_bf16(x)) ++bad_bf16;
}

}  // namespace

// Optimised builds cover every 13th of the 2^32 patterns (~3.3e8); unoptimised (sanitizer) builds a
// sparser stride. Both add exhaustive sweeps of the regions where rounding changes behaviour.
TEST(HalfGolden, BitIdenticalToCudaHostConversions) {
#ifdef NDEBUG
  const uint64_t stride = 13;
#else
  const uint64_t stride = 257;
#endif
  int64_t bad_f16 = 0, bad_bf16 = 0;
#pragma omp parallel for reduction(+ : bad_f16, bad_bf16) schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>((uint64_t(1) << 32) / stride); ++i)
    check_pattern(static_cast<uint32_t>(static_cast<uint64_t>(i) * stride), bad_f16, bad_bf16);
  // Exhaustive: both signs of the f16 overflow edge, the subnormal/zero edge, the min-normal edge,
  // NaN/Inf, and every bf16 tie-sensitive low half for every high half.
  const uint32_t ranges[][2] = {{0x477e0000u, 0x47800000u}, {0x32fe0000u, 0x33020000u},
                                {0x387e0000u, 0x38820000u}, {0x7f7f0000u, 0x7f800100u},
                                {0x7fbfff00u, 0x7fc00100u}, {0x7ffffff0u, 0x80000000u}};
  for (auto& r : ranges)
    for (uint32_t s = 0; s < 2; ++s)
      for (uint32_t u = r[0]; u < r[1]; ++u) check_pattern(u | (s << 31), bad_f16, bad_bf16);
  const uint32_t lows[] = {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu};
  for (uint32_t hi = 0; hi < 65536; ++hi)
    for (uint32_t lo : lows) check_pattern((hi << 16) | lo, bad_f16, bad_bf16);
  EXPECT_EQ(bad_f16, 0) << "float_to_f16_bits differs from __float2half_rn";
  EXPECT_EQ(bad_bf16, 0) << "float_to_bf16_bits differs from __float2bfloat16_rn";
  // Name the first mismatches, if any, for debugging.
  if (bad_f16 || bad_bf16) {
    int shown = 0;
    for (uint64_t u = 0; u < (uint64_t(1) << 32) && shown < 5; u += stride) {
      float x = bits_f32(static_cast<uint32_t>(u));
      if (float_to_f16_bits(x) != cuda_f16(x) || float_to_bf16_bits(x) != cuda_bf16(x)) {
        ADD_FAILURE() << fmt::format(
            "0x{:08x}: f16 ours 0x{:04x} cuda 0x{:04x}; bf16 ours 0x{:04x} "
            "cuda 0x{:04x}",
            u, float_to_f16_bits(x), cuda_f16(x), float_to_bf16_bits(x), cuda_bf16(x));
        ++shown;
      }
    }
  }
}

TEST(HalfGolden, ReverseBitIdenticalToCudaHostConversions) {
  for (uint32_t h = 0; h < 65536; ++h) {
    uint16_t b = static_cast<uint16_t>(h);
    uint32_t ours16 = f32_bits(f16_bits_to_float(b));
    uint32_t cuda16 = f32_bits(__half2float(__ushort_as_half(b)));
    ASSERT_EQ(ours16, cuda16) << fmt::format("f16 0x{:04x}: ours 0x{:08x} cuda 0x{:08x}", h, ours16,
                                             cuda16);
    uint32_t oursb = f32_bits(bf16_bits_to_float(b));
    uint32_t cudab = f32_bits(__bfloat162float(__ushort_as_bfloat16(b)));
    ASSERT_EQ(oursb, cudab) << fmt::format("bf16 0x{:04x}: ours 0x{:08x} cuda 0x{:08x}", h, oursb,
                                           cudab);
  }
}

#else

TEST(HalfGolden, BitIdenticalToCudaHostConversions) {
  GTEST_SKIP() << "CUDA toolkit headers (cuda_fp16.h, cuda_bf16.h) not found at configure time; "
                  "the known-pattern tests above still ran";
}

#endif
