// Vectorised float kernels for the CPU elementwise ops whose libm calls dominated a training step
// (GELU's erff/expf: ~12 ns each, scalar). SLEEF's 1.0-ulp functions compute 8 lanes (AVX2 + FMA,
// chosen at run time when the CPU has them) or 4 lanes (SSE2, any x86-64 CPU) at a time. The tail
// is padded into a full vector, so on one machine an element's result depends on its value only
// (not on n, its offset or the thread split). The two instruction sets round differently in the
// last bit; LD_CPU_SIMD=sse2 forces the SSE2 path (the same bits on every x86-64 CPU). Other
// architectures use the scalar libm formula.
#pragma once
#include <cstdint>
#include <vector>

namespace ld::cpu {

enum class VecIsa { Scalar, SSE2, AVX2 };

// Whether this build and CPU can run `isa` (AVX2 needs AVX2 and FMA).
bool vec_isa_supported(VecIsa isa);
// Every instruction set this build and CPU can run, scalar first (for tests that try each).
inline std::vector<VecIsa> supported_vec_isas() {
  std::vector<VecIsa> out;
  for (VecIsa i : {VecIsa::Scalar, VecIsa::SSE2, VecIsa::AVX2})
    if (vec_isa_supported(i)) out.push_back(i);
  return out;
}
// The instruction set the kernels below use: AVX2 when supported, unless LD_CPU_SIMD=sse2 (or
// scalar); read once.
VecIsa vec_isa();
const char* vec_isa_name(VecIsa isa);

// y = 0.5 x (1 + erf(x / sqrt 2)) over n contiguous floats (PyTorch's gelu, approximate="none").
void gelu_erf_f32(const float* x, float* y, int64_t n, VecIsa isa = vec_isa());

// dx = g (Phi(x) + x phi(x)): the gradient of gelu_erf_f32 times g.
void gelu_erf_grad_f32(const float* x, const float* g, float* dx, int64_t n,
                       VecIsa isa = vec_isa());

// v[i] = exp(v[i] - m) over n contiguous doubles; returns their sum (in index order, so the sum
// does not depend on the instruction set). For the f64 softmax statistics.
double exp_shifted_sum_f64(double* v, int64_t n, double m, VecIsa isa = vec_isa());

// Philox4x32-10 words of blocks first_block .. first_block + nblocks - 1 of counter space
// `offset` (core/philox.h): out[4 j + w] = word w of block first_block + j. Integer arithmetic:
// every path gives the same words (AVX2 computes eight blocks at a time).
void philox_fill(uint64_t first_block, int64_t nblocks, uint64_t offset, uint64_t seed,
                 uint32_t* out, VecIsa isa = vec_isa());

namespace detail {  // core/cpu/vec_math_avx2.cpp; call only when vec_isa() says AVX2
void gelu_avx2(const float* x, float* y, int64_t n);
void gelu_grad_avx2(const float* x, const float* g, float* dx, int64_t n);
void exp_shifted_avx2(double* v, int64_t n, double m);
// Blocks in multiples of 8 (the caller does the rest).
void philox_fill_avx2(uint64_t first_block, int64_t nblocks8, uint64_t offset, uint64_t seed,
                      uint32_t* out);
}  // namespace detail

}  // namespace ld::cpu
