#include "core/cpu/vec_math.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/functors.h"
#include "core/philox.h"

#if defined(__x86_64__) && defined(LD_HAVE_SLEEF)
#include <emmintrin.h>
#include <sleef.h>
#define LD_VEC_SLEEF 1
#endif

namespace ld::cpu {

const char* vec_isa_name(VecIsa isa) {
  switch (isa) {
    case VecIsa::AVX2:
      return "avx2";
    case VecIsa::SSE2:
      return "sse2";
    case VecIsa::Scalar:
      break;
  }
  return "scalar";
}

bool vec_isa_supported(VecIsa isa) {
#ifdef LD_VEC_SLEEF
  if (isa == VecIsa::AVX2) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return true;
#else
  return isa == VecIsa::Scalar;
#endif
}

VecIsa vec_isa() {
  static const VecIsa isa = [] {
    if (!vec_isa_supported(VecIsa::SSE2)) return VecIsa::Scalar;  // no vector paths built
    const char* env = std::getenv("LD_CPU_SIMD");
    const std::string want = env ? env : "";
    LD_CHECK(want.empty() || want == "avx2" || want == "sse2" || want == "scalar",
             "LD_CPU_SIMD='{}': expected avx2, sse2 or scalar", want);
    for (VecIsa i : {VecIsa::AVX2, VecIsa::SSE2, VecIsa::Scalar})
      if (want == vec_isa_name(i)) {
        LD_CHECK(vec_isa_supported(i), "LD_CPU_SIMD={}, but this build or CPU lacks it", want);
        return i;
      }
    return vec_isa_supported(VecIsa::AVX2) ? VecIsa::AVX2 : VecIsa::SSE2;
  }();
  return isa;
}

namespace {

// The scalar functors (libm): the reference formula, and the path off x86-64.
void gelu_scalar(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fn::unary<UnaryOp::GeluErf, float>(x[i], 0.0f);
}
void gelu_grad_scalar(const float* x, const float* g, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    dx[i] = fn::binary<BinaryOp::GeluErfGrad, float>(x[i], g[i], 0.0f);
}

#ifdef LD_VEC_SLEEF
// Both kernels (and the AVX2 ones, vec_math_avx2.cpp) follow the scalar functors' operations in
// their order:
//   gelu:  (0.5 x) (1 + erf(x k));  grad: g (0.5 (1 + erf(a k)) + a (c exp((-0.5 a) a))).
constexpr float kInvSqrt2 = static_cast<float>(0.7071067811865476);
constexpr float kInvSqrt2Pi = static_cast<float>(0.3989422804014327);

// f(lanes of x, lanes of g) over n elements, 4 at a time; the tail through a zero-padded vector
// (vec_math_avx2.cpp's map8 is the same for 8 lanes).
template <class F>
void map4(const float* x, const float* g, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    _mm_storeu_ps(y + i, f(_mm_loadu_ps(x + i), _mm_loadu_ps(g ? g + i : x + i)));
  if (i < n) {
    alignas(16) float xb[4] = {}, gb[4] = {}, yb[4];
    std::memcpy(xb, x + i, sizeof(float) * static_cast<size_t>(n - i));
    if (g) std::memcpy(gb, g + i, sizeof(float) * static_cast<size_t>(n - i));
    _mm_store_ps(yb, f(_mm_load_ps(xb), _mm_load_ps(gb)));
    std::memcpy(y + i, yb, sizeof(float) * static_cast<size_t>(n - i));
  }
}

void gelu_sse2(const float* x, float* y, int64_t n) {
  const __m128 half = _mm_set1_ps(0.5f), one = _mm_set1_ps(1.0f), k = _mm_set1_ps(kInvSqrt2);
  map4(x, nullptr, y, n, [&](__m128 v, __m128) {
    const __m128 e = Sleef_erff4_u10sse2(_mm_mul_ps(v, k));
    return _mm_mul_ps(_mm_mul_ps(half, v), _mm_add_ps(one, e));
  });
}

void gelu_grad_sse2(const float* x, const float* g, float* dx, int64_t n) {
  const __m128 half = _mm_set1_ps(0.5f), mhalf = _mm_set1_ps(-0.5f), one = _mm_set1_ps(1.0f),
               k = _mm_set1_ps(kInvSqrt2), c = _mm_set1_ps(kInvSqrt2Pi);
  map4(x, g, dx, n, [&](__m128 a, __m128 b) {
    const __m128 cdf = _mm_mul_ps(half, _mm_add_ps(one, Sleef_erff4_u10sse2(_mm_mul_ps(a, k))));
    const __m128 pdf = _mm_mul_ps(c, Sleef_expf4_u10sse2(_mm_mul_ps(_mm_mul_ps(mhalf, a), a)));
    return _mm_mul_ps(b, _mm_add_ps(cdf, _mm_mul_ps(a, pdf)));
  });
}

void exp_shifted_sse2(double* v, int64_t n, double m) {
  const __m128d mv = _mm_set1_pd(m);
  int64_t i = 0;
  for (; i + 2 <= n; i += 2)
    _mm_storeu_pd(v + i, Sleef_expd2_u10sse2(_mm_sub_pd(_mm_loadu_pd(v + i), mv)));
  if (i < n) {
    alignas(16) double b[2] = {v[i], m};
    _mm_store_pd(b, Sleef_expd2_u10sse2(_mm_sub_pd(_mm_load_pd(b), mv)));
    v[i] = b[0];
  }
}
#endif

}  // namespace

double exp_shifted_sum_f64(double* v, int64_t n, double m, VecIsa isa) {
#ifdef LD_VEC_SLEEF
  if (isa == VecIsa::AVX2)
    detail::exp_shifted_avx2(v, n, m);
  else if (isa == VecIsa::SSE2)
    exp_shifted_sse2(v, n, m);
  else
#endif
    for (int64_t j = 0; j < n; ++j) v[j] = std::exp(v[j] - m);
  (void)isa;
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += v[j];
  return s;
}

void philox_fill(uint64_t first_block, int64_t nblocks, uint64_t offset, uint64_t seed,
                 uint32_t* out, VecIsa isa) {
  int64_t j = 0;
#ifdef LD_VEC_SLEEF
  if (isa == VecIsa::AVX2) {
    j = nblocks / 8 * 8;
    if (j > 0) detail::philox_fill_avx2(first_block, j, offset, seed, out);
  }
#endif
  (void)isa;
  for (; j < nblocks; ++j) {
    const Philox4 b = philox4x32_10(first_block + static_cast<uint64_t>(j), offset, seed);
    for (int w = 0; w < 4; ++w) out[4 * j + w] = b.v[w];
  }
}

void gelu_erf_f32(const float* x, float* y, int64_t n, VecIsa isa) {
#ifdef LD_VEC_SLEEF
  if (isa == VecIsa::AVX2) return detail::gelu_avx2(x, y, n);
  if (isa == VecIsa::SSE2) return gelu_sse2(x, y, n);
#endif
  (void)isa;
  gelu_scalar(x, y, n);
}

void gelu_erf_grad_f32(const float* x, const float* g, float* dx, int64_t n, VecIsa isa) {
#ifdef LD_VEC_SLEEF
  if (isa == VecIsa::AVX2) return detail::gelu_grad_avx2(x, g, dx, n);
  if (isa == VecIsa::SSE2) return gelu_grad_sse2(x, g, dx, n);
#endif
  (void)isa;
  gelu_grad_scalar(x, g, dx, n);
}

}  // namespace ld::cpu
