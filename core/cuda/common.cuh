// Shared device helpers for the CUDA kernels: dtype conversion to the accumulation type, 128-bit
// vectors, warp/block reductions, strided indexing of up to kMaxDims dims, dtype dispatch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/cuda/runtime.h"
#include "core/half.h"
#include "core/nvtx.h"
#include "core/tensor.h"

namespace ld::cuda {

// ---- element types: compute in f32 (f64 for f64) ----
template <class T>
struct AccT {
  using type = float;
};
template <>
struct AccT<double> {
  using type = double;
};
template <class T>
using acc_t = typename AccT<T>::type;

__device__ __forceinline__ float to_acc(bf16 v) {
  return __bfloat162float(__ushort_as_bfloat16(v.bits));
}
__device__ __forceinline__ float to_acc(f16 v) { return __half2float(__ushort_as_half(v.bits)); }
__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }

template <class T>
__device__ __forceinline__ T from_acc(acc_t<T> v);
template <>
__device__ __forceinline__ bf16 from_acc<bf16>(float v) {
  return bf16::from_bits(__bfloat16_as_ushort(__float2bfloat16_rn(v)));
}
template <>
__device__ __forceinline__ f16 from_acc<f16>(float v) {
  return f16::from_bits(__half_as_ushort(__float2half_rn(v)));
}
template <>
__device__ __forceinline__ float from_acc<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ double from_acc<double>(double v) {
  return v;
}

// Converts between any two element types through double/float (used by copy/cast).
template <class To, class From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, bf16> || std::is_same_v<From, f16>) {
    return convert<To>(to_acc(v));
  } else if constexpr (std::is_same_v<To, bf16> || std::is_same_v<To, f16>) {
    return from_acc<To>(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

// 16-byte vector of T.
template <class T>
struct alignas(16) Vec16 {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- reductions ----
template <class A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <class A>
__device__ __forceinline__ A warp_max(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    A w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}
// Block-wide sum (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `shm` holds 32 values; the function synchronises before returning so it can be reused.
template <class A>
__device__ __forceinline__ A block_sum(A v, A* shm) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) shm[warp] = v;
  __syncthreads();
  A t = lane < nw ? shm[lane] : A(0);
  t = warp_sum(t);
  __syncthreads();
  return t;
}
template <class A>
__device__ __forceinline__ A block_max(A v, A* shm) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_max(v);
  if (lane == 0) shm[warp] = v;
  __syncthreads();
  A t = lane < nw ? shm[lane] : -std::numeric_limits<A>::infinity();
  t = warp_max(t);
  __syncthreads();
  return t;
}

// ---- strided indexing: N operands over one (coalesced) shape ----
inline constexpr int kMaxDims = 8;
template <int N>
struct Strided {
  int nd = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[N][kMaxDims] = {};
  // Element offsets of linear index i (row-major over size[]).
  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t s = size[d];
      const int64_t q = i / s, r = i - q * s;
      i = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += r * stride[k][d];
    }
  }
};

// Strides of `t` seen from an output of shape `out` (broadcast dims get stride 0).
inline Shape bcast_strides(const Tensor& t, const Shape& out) {
  Shape st(out.size(), 0);
  int64_t lead = static_cast<int64_t>(out.size()) - t.dim();
  for (int64_t i = 0; i < t.dim(); ++i)
    st[lead + i] = t.size(i) == 1 && out[lead + i] != 1 ? 0 : t.stride(i);
  return st;
}

// Builds a coalesced indexer: size-1 dims dropped, adjacent dims merged where every operand nests.
template <int N>
Strided<N> make_strided(const Shape& shape, const std::array<Shape, N>& strides) {
  Shape sz;
  std::array<Shape, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!sz.empty()) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && st[k].back() == strides[k][d] * shape[d];
      if (merge) {
        sz.back() *= shape[d];
        for (int k = 0; k < N; ++k) st[k].back() = strides[k][d];
        continue;
      }
    }
    sz.push_back(shape[d]);
    for (int k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
  }
  LD_CHECK(sz.size() <= size_t(kMaxDims), "CUDA strided kernel: {} non-mergeable dims (max {})",
           sz.size(), kMaxDims);
  Strided<N> r;
  r.nd = static_cast<int>(sz.size());
  for (int d = 0; d < r.nd; ++d) {
    r.size[d] = sz[d];
    for (int k = 0; k < N; ++k) r.stride[k][d] = st[k][d];
  }
  return r;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Grid for a grid-stride loop over n items with `threads` per block.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t g = ceil_div(n, threads);
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(g, int64_t(1) << 20)));
}

template <class T>
T* dptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

inline void check_cuda_tensor(const Tensor& t, const char* what) {
  LD_CHECK(!t.defined() || t.is_cuda(), "{}: expected a CUDA tensor, got {}", what, t.desc());
}

// Calls go(U{}) with the unsigned integer type of an element's width (1, 2, 4 or 8 bytes): kernels
// that only move elements (where, gathers) need their width, not their dtype.
template <class F>
void dispatch_by_width(DType dt, const char* what, F&& go) {
  switch (dtype_size(dt)) {
    case 1:
      return go(uint8_t{});
    case 2:
      return go(uint16_t{});
    case 4:
      return go(uint32_t{});
    case 8:
      return go(uint64_t{});
  }
  LD_FAIL("{}: unsupported element size for dtype {}", what, dtype_name(dt));
}

}  // namespace ld::cuda

// Floating dtypes on CUDA: f32, f64, bf16, f16.
#define LD_CUDA_DISPATCH_FLOAT(dt, name, ...) LD_DISPATCH_FLOAT_HALF(dt, name, __VA_ARGS__)
