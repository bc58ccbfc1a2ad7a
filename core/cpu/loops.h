// Strided N-operand loops for the CPU backend: dims are coalesced, the innermost dim runs as a
// tight loop, and the outer index space is split across OpenMP threads when the work is large.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/tensor.h"

namespace ld::cpu {

// Below this many elements a loop stays on one thread.
inline constexpr int64_t kParallelGrain = 32768;

template <size_t N>
struct StridedIndex {
  Shape shape;                   // coalesced, innermost last
  std::array<Shape, N> strides;  // in elements
};

template <size_t N>
StridedIndex<N> coalesce(const Shape& shape, const std::array<Shape, N>& strides) {
  StridedIndex<N> r;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!r.shape.empty()) {
      bool merge = true;
      for (size_t k = 0; k < N; ++k)
        merge = merge && r.strides[k].back() == strides[k][d] * shape[d];
      if (merge) {
        r.shape.back() *= shape[d];
        for (size_t k = 0; k < N; ++k) r.strides[k].back() = strides[k][d];
        continue;
      }
    }
    r.shape.push_back(shape[d]);
    for (size_t k = 0; k < N; ++k) r.strides[k].push_back(strides[k][d]);
  }
  if (r.shape.empty()) {
    r.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) r.strides[k].push_back(0);
  }
  return r;
}

// inner(offsets, n, inner_strides): process n elements starting at offsets with given strides.
template <size_t N, class Inner>
void strided_loop(const Shape& shape, const std::array<Shape, N>& strides, Inner inner) {
  int64_t numel = shape_numel(shape);
  if (numel == 0) return;
  StridedIndex<N> ix = coalesce<N>(shape, strides);
  const int64_t nd = static_cast<int64_t>(ix.shape.size());
  const int64_t inner_n = ix.shape.back();
  const int64_t outer = numel / inner_n;
  std::array<int64_t, N> inner_st;
  for (size_t k = 0; k < N; ++k) inner_st[k] = ix.strides[k].back();
  auto run_range = [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      std::array<int64_t, N> off{};
      int64_t rem = o;
      for (int64_t d = nd - 2; d >= 0; --d) {
        int64_t i = rem % ix.shape[d];
        rem /= ix.shape[d];
        for (size_t k = 0; k < N; ++k) off[k] += i * ix.strides[k][d];
      }
      inner(off, inner_n, inner_st);
    }
  };
  if (numel >= kParallelGrain && outer > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t chunk = (outer + nt - 1) / nt;
      int64_t b = std::min<int64_t>(outer, t * chunk), e = std::min<int64_t>(outer, b + chunk);
      run_range(b, e);
    }
  } else if (numel >= kParallelGrain && outer == 1 && omp_get_max_threads() > 1 &&
             !omp_in_parallel()) {
    // One long run: split the inner dim instead.
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t chunk = (inner_n + nt - 1) / nt;
      int64_t b = std::min<int64_t>(inner_n, t * chunk), e = std::min<int64_t>(inner_n, b + chunk);
      std::array<int64_t, N> off{};
      for (size_t k = 0; k < N; ++k) off[k] = b * inner_st[k];
      if (e > b) inner(off, e - b, inner_st);
    }
  } else {
    run_range(0, outer);
  }
}

// Parallel for over [0, n) in contiguous chunks; `grain` is the work per index in elements.
template <class F>
void parallel_for(int64_t n, int64_t work_per_index, F f) {
  if (n * work_per_index >= kParallelGrain && n > 1 && omp_get_max_threads() > 1 &&
      !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
  } else {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

// Like parallel_for, but f(begin, end) gets one contiguous range per thread (for per-thread
// scratch buffers).
template <class F>
void parallel_rows(int64_t n, int64_t work_per_index, F f) {
  if (n * work_per_index >= kParallelGrain && n > 1 && omp_get_max_threads() > 1 &&
      !omp_in_parallel()) {
#pragma omp parallel
    {
      const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t chunk = (n + nt - 1) / nt;
      const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
      if (e > b) f(b, e);
    }
  } else if (n > 0) {
    f(0, n);
  }
}

// Strides of `t` as seen from an output of shape `out` (broadcast dims get stride 0).
inline Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape st(out.size(), 0);
  int64_t lead = static_cast<int64_t>(out.size()) - t.dim();
  for (int64_t i = 0; i < t.dim(); ++i)
    st[lead + i] = t.size(i) == 1 && out[lead + i] != 1 ? 0 : t.stride(i);
  return st;
}

// Widening load and narrowing store for kernels that accumulate in double over any floating type
// (bf16/f16 convert through float, bit-identical to the CUDA conversions).
template <class T>
inline double wide(T v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)
    return static_cast<double>(static_cast<float>(v));
  else
    return static_cast<double>(v);
}
template <class T>
inline T narrow(double v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)
    return T(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

// The C++ type of stat_dtype(dtype_of<T>): double for double, float otherwise.
template <class T>
using stat_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace ld::cpu
