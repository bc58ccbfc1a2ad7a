// The AVX2 + FMA GELU kernels (core/cpu/vec_math.h), in their own file compiled with -mavx2 -mfma
// (CMakeLists.txt) and called only after the run-time CPU check. Nothing here is an inline or
// template function with external linkage (no std:: algorithms), so no AVX2 code can be merged
// into what the rest of the program runs on other CPUs.
#include "core/cpu/vec_math.h"

#if defined(__x86_64__) && defined(LD_HAVE_SLEEF) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <sleef.h>

#include <cstring>

namespace ld::cpu::detail {

namespace {
constexpr float kInvSqrt2 = static_cast<float>(0.7071067811865476);
constexpr float kInvSqrt2Pi = static_cast<float>(0.3989422804014327);

// f(lanes of x, lanes of g) over n elements, 8 at a time; the tail through a zero-padded vector.
template <class F>
void map8(const float* x, const float* g, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i), _mm256_loadu_ps(g ? g + i : x + i)));
  if (i < n) {
    alignas(32) float xb[8] = {}, gb[8] = {}, yb[8];
    std::memcpy(xb, x + i, sizeof(float) * static_cast<size_t>(n - i));
    if (g) std::memcpy(gb, g + i, sizeof(float) * static_cast<size_t>(n - i));
    _mm256_store_ps(yb, f(_mm256_load_ps(xb), _mm256_load_ps(gb)));
    std::memcpy(y + i, yb, sizeof(float) * static_cast<size_t>(n - i));
  }
}
}  // namespace

// The scalar functors' operations in their order (SLEEF's avx2 functions use FMA inside; the
// multiplies and adds here stay separate: -ffp-contract=off on this file).
void gelu_avx2(const float* x, float* y, int64_t n) {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
               k = _mm256_set1_ps(kInvSqrt2);
  map8(x, nullptr, y, n, [&](__m256 v, __m256) {
    const __m256 e = Sleef_erff8_u10avx2(_mm256_mul_ps(v, k));
    return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e));
  });
}

void gelu_grad_avx2(const float* x, const float* g, float* dx, int64_t n) {
  const __m256 half = _mm256_set1_ps(0.5f), mhalf = _mm256_set1_ps(-0.5f),
               one = _mm256_set1_ps(1.0f), k = _mm256_set1_ps(kInvSqrt2),
               c = _mm256_set1_ps(kInvSqrt2Pi);
  map8(x, g, dx, n, [&](__m256 a, __m256 b) {
    const __m256 cdf =
        _mm256_mul_ps(half, _mm256_add_ps(one, Sleef_erff8_u10avx2(_mm256_mul_ps(a, k))));
    const __m256 pdf =
        _mm256_mul_ps(c, Sleef_expf8_u10avx2(_mm256_mul_ps(_mm256_mul_ps(mhalf, a), a)));
    return _mm256_mul_ps(b, _mm256_add_ps(cdf, _mm256_mul_ps(a, pdf)));
  });
}

void exp_shifted_avx2(double* v, int64_t n, double m) {
  const __m256d mv = _mm256_set1_pd(m);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    _mm256_storeu_pd(v + i, Sleef_expd4_u10avx2(_mm256_sub_pd(_mm256_loadu_pd(v + i), mv)));
  if (i < n) {
    alignas(32) double b[4] = {m, m, m, m};
    std::memcpy(b, v + i, sizeof(double) * static_cast<size_t>(n - i));
    _mm256_store_pd(b, Sleef_expd4_u10avx2(_mm256_sub_pd(_mm256_load_pd(b), mv)));
    std::memcpy(v + i, b, sizeof(double) * static_cast<size_t>(n - i));
  }
}

namespace {
// Low and high 32 bits of the lane-wise 32x32 -> 64 products a * m (eight u32 lanes).
inline void mulhilo8(__m256i a, __m256i m, __m256i* lo, __m256i* hi) {
  const __m256i even = _mm256_mul_epu32(a, m);                        // lanes 0, 2, 4, 6
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
}  // namespace

// core/philox.h's philox4x32_10 on eight consecutive blocks at once (block = lane).
void philox_fill_avx2(uint64_t first_block, int64_t nblocks8, uint64_t offset, uint64_t seed,
                      uint32_t* out) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u)),
                m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  const __m256i c2i = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset))),
                c3i = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(offset >> 32)));
  for (int64_t j = 0; j < nblocks8; j += 8) {
    alignas(32) uint32_t lo[8], hi[8];
    for (int l = 0; l < 8; ++l) {
      const uint64_t b = first_block + static_cast<uint64_t>(j + l);
      lo[l] = static_cast<uint32_t>(b);
      hi[l] = static_cast<uint32_t>(b >> 32);
    }
    __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo)),
            c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi)), c2 = c2i, c3 = c3i;
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r) {
      __m256i lo0, hi0, lo1, hi1;
      mulhilo8(c0, m0, &lo0, &hi0);
      mulhilo8(c2, m1, &lo1, &hi1);
      const __m256i n0 =
          _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
      const __m256i n2 =
          _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // Interleave to out[4 (j + l) + w]: transpose the 4 x 8 words.
    alignas(32) uint32_t w[4][8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[0]), c0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[1]), c1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[2]), c2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(w[3]), c3);
    for (int l = 0; l < 8; ++l)
      for (int k = 0; k < 4; ++k) out[4 * (j + l) + k] = w[k][l];
  }
}

}  // namespace ld::cpu::detail
#endif
