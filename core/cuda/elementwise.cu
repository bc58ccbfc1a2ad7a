// CUDA elementwise kernels instantiated from the shared functors (core/functors.h): a vectorised
// (128-bit) path for contiguous operands and a generic strided path for broadcast/non-contiguous.
#include "core/cuda/common.cuh"
#include "core/cuda/cuda_ops.h"
#include "core/functors.h"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr int kThreads = 256;

// ---------------- unary ----------------
template <UnaryOp OP, class T>
__global__ void unary_vec_kernel(T* __restrict__ out, const T* __restrict__ x, acc_t<T> s,
                                 int64_t n) {
  using V = Vec16<T>;
  const int64_t nv = n / V::N, step = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < nv; i += step) {
    V a = reinterpret_cast<const V*>(x)[i], o;
#pragma unroll
    for (int k = 0; k < V::N; ++k) o.v[k] = from_acc<T>(fn::unary<OP, acc_t<T>>(to_acc(a.v[k]), s));
    reinterpret_cast<V*>(out)[i] = o;
  }
  for (int64_t i = nv * V::N + tid; i < n; i += step)
    out[i] = from_acc<T>(fn::unary<OP, acc_t<T>>(to_acc(x[i]), s));
}

template <UnaryOp OP, class T>
__global__ void unary_strided_kernel(T* out, const T* x, acc_t<T> s, int64_t n, Strided<2> st) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    st.offsets(i, off);
    out[off[0]] = from_acc<T>(fn::unary<OP, acc_t<T>>(to_acc(x[off[1]]), s));
  }
}

template <UnaryOp OP, class T>
void launch_unary(const Tensor& out, const Tensor& x, double s, cudaStream_t stream) {
  const int64_t n = out.numel();
  if (n == 0) return;
  T* o = dptr<T>(out);
  const T* a = dptr<const T>(x);
  const acc_t<T> sv = static_cast<acc_t<T>>(s);
  if constexpr (!std::is_same_v<T, double>) {
    if (out.is_contiguous() && x.is_contiguous() && x.shape() == out.shape() && aligned16(o) &&
        aligned16(a)) {
      unary_vec_kernel<OP, T>
          <<<grid_for(ceil_div(n, Vec16<T>::N), kThreads), kThreads, 0, stream>>>(o, a, sv, n);
      LD_CUDA_LAUNCH_CHECK();
      return;
    }
  }
  Strided<2> st = make_strided<2>(out.shape(), {out.strides(), bcast_strides(x, out.shape())});
  unary_strided_kernel<OP, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(o, a, sv, n, st);
  LD_CUDA_LAUNCH_CHECK();
}

// ---------------- binary ----------------
template <BinaryOp OP, class T>
__global__ void binary_vec_kernel(T* __restrict__ out, const T* __restrict__ x,
                                  const T* __restrict__ y, acc_t<T> s, int64_t n) {
  using V = Vec16<T>;
  const int64_t nv = n / V::N, step = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t i = tid; i < nv; i += step) {
    V a = reinterpret_cast<const V*>(x)[i], b = reinterpret_cast<const V*>(y)[i], o;
#pragma unroll
    for (int k = 0; k < V::N; ++k)
      o.v[k] = from_acc<T>(fn::binary<OP, acc_t<T>>(to_acc(a.v[k]), to_acc(b.v[k]), s));
    reinterpret_cast<V*>(out)[i] = o;
  }
  for (int64_t i = nv * V::N + tid; i < n; i += step)
    out[i] = from_acc<T>(fn::binary<OP, acc_t<T>>(to_acc(x[i]), to_acc(y[i]), s));
}

template <BinaryOp OP, class T>
__global__ void binary_strided_kernel(T* out, const T* x, const T* y, acc_t<T> s, int64_t n,
                                      Strided<3> st) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[3];
    st.offsets(i, off);
    out[off[0]] = from_acc<T>(fn::binary<OP, acc_t<T>>(to_acc(x[off[1]]), to_acc(y[off[2]]), s));
  }
}

template <BinaryOp OP, class T>
void launch_binary(const Tensor& out, const Tensor& x, const Tensor& y, double s,
                   cudaStream_t stream) {
  const int64_t n = out.numel();
  if (n == 0) return;
  T* o = dptr<T>(out);
  const T* a = dptr<const T>(x);
  const T* b = dptr<const T>(y);
  const acc_t<T> sv = static_cast<acc_t<T>>(s);
  if constexpr (!std::is_same_v<T, double>) {
    if (out.is_contiguous() && x.is_contiguous() && y.is_contiguous() && x.shape() == out.shape() &&
        y.shape() == out.shape() && aligned16(o) && aligned16(a) && aligned16(b)) {
      binary_vec_kernel<OP, T>
          <<<grid_for(ceil_div(n, Vec16<T>::N), kThreads), kThreads, 0, stream>>>(o, a, b, sv, n);
      LD_CUDA_LAUNCH_CHECK();
      return;
    }
  }
  Strided<3> st = make_strided<3>(
      out.shape(), {out.strides(), bcast_strides(x, out.shape()), bcast_strides(y, out.shape())});
  binary_strided_kernel<OP, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(o, a, b, sv, n, st);
  LD_CUDA_LAUNCH_CHECK();
}

// ---------------- compare / where / axpy / copy / fill ----------------
template <class T>
__device__ __forceinline__ auto cmp_value(T v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)
    return to_acc(v);
  else
    return v;
}

template <CompareOp OP, class T>
__global__ void compare_kernel(bool* out, const T* x, const T* y, int64_t n, Strided<3> st) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[3];
    st.offsets(i, off);
    out[off[0]] = fn::compare<OP>(cmp_value(x[off[1]]), cmp_value(y[off[2]]));
  }
}

template <CompareOp OP, class T>
void launch_compare(const Tensor& out, const Tensor& x, const Tensor& y, cudaStream_t stream) {
  const int64_t n = out.numel();
  if (n == 0) return;
  Strided<3> st = make_strided<3>(
      out.shape(), {out.strides(), bcast_strides(x, out.shape()), bcast_strides(y, out.shape())});
  compare_kernel<OP, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      dptr<bool>(out), dptr<const T>(x), dptr<const T>(y), n, st);
  LD_CUDA_LAUNCH_CHECK();
}

// Element payloads by size: where/fill move bits, never values.
template <class U>
__global__ void where_kernel(U* out, const bool* c, const U* x, const U* y, int64_t n,
                             Strided<4> st) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[4];
    st.offsets(i, off);
    out[off[0]] = c[off[1]] ? x[off[2]] : y[off[3]];
  }
}

template <class U>
__global__ void fill_kernel(U* out, U v, int64_t n, Strided<1> st) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[1];
    st.offsets(i, off);
    out[off[0]] = v;
  }
}

template <class T>
__global__ void axpy_kernel(T* out, const T* x, acc_t<T> alpha, int64_t n, Strided<2> st) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    st.offsets(i, off);
    out[off[0]] = from_acc<T>(to_acc(out[off[0]]) + alpha * to_acc(x[off[1]]));
  }
}

template <class To, class From>
__global__ void copy_kernel(To* out, const From* x, int64_t n, Strided<2> st) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    st.offsets(i, off);
    out[off[0]] = convert<To>(x[off[1]]);
  }
}

template <class U>
U bits_as(const void* p) {
  U u;
  std::memcpy(&u, p, sizeof(U));
  return u;
}

// Same-size payload copy (no conversion) for any dtype.
template <class U>
void launch_copy_bits(const Tensor& dst, const Tensor& src, cudaStream_t s) {
  const int64_t n = dst.numel();
  Strided<2> st = make_strided<2>(dst.shape(), {dst.strides(), bcast_strides(src, dst.shape())});
  copy_kernel<U, U>
      <<<grid_for(n, kThreads), kThreads, 0, s>>>(dptr<U>(dst), dptr<const U>(src), n, st);
  LD_CUDA_LAUNCH_CHECK();
}

}  // namespace

#define LD_CU_UNARY_CASE(NAME) \
  case UnaryOp::NAME:          \
    return launch_unary<UnaryOp::NAME, scalar_t>(out, x, s, stream);

void unary(UnaryOp op, const Tensor& out, const Tensor& x, double s) {
  LD_NVTX_FN();
  cudaStream_t stream = current_stream();
  LD_CUDA_DISPATCH_FLOAT(x.dtype(), "unary", [&] {
    switch (op) {
      // clang-format off
      LD_CU_UNARY_CASE(Neg)
      LD_CU_UNARY_CASE(Exp)
      LD_CU_UNARY_CASE(Log)
      LD_CU_UNARY_CASE(Sqrt)
      LD_CU_UNARY_CASE(Rsqrt)
      LD_CU_UNARY_CASE(Tanh)
      LD_CU_UNARY_CASE(Relu)
      LD_CU_UNARY_CASE(Sigmoid)
      LD_CU_UNARY_CASE(Silu)
      LD_CU_UNARY_CASE(GeluErf)
      LD_CU_UNARY_CASE(GeluTanh)
      LD_CU_UNARY_CASE(Abs)
      LD_CU_UNARY_CASE(Square)
      LD_CU_UNARY_CASE(AddScalar)
      LD_CU_UNARY_CASE(MulScalar)
      LD_CU_UNARY_CASE(PowScalar)
      LD_CU_UNARY_CASE(RSubScalar)
      LD_CU_UNARY_CASE(RDivScalar)
      LD_CU_UNARY_CASE(Sign)
      // clang-format on
    }
    LD_FAIL("unary: unknown op {}", int(op));
  });
}

#define LD_CU_BINARY_CASE(NAME) \
  case BinaryOp::NAME:          \
    return launch_binary<BinaryOp::NAME, scalar_t>(out, a, b, s, stream);

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double s) {
  LD_NVTX_FN();
  cudaStream_t stream = current_stream();
  LD_CUDA_DISPATCH_FLOAT(a.dtype(), "binary", [&] {
    switch (op) {
      // clang-format off
      LD_CU_BINARY_CASE(Add)
      LD_CU_BINARY_CASE(Sub)
      LD_CU_BINARY_CASE(Mul)
      LD_CU_BINARY_CASE(Div)
      LD_CU_BINARY_CASE(Maximum)
      LD_CU_BINARY_CASE(Minimum)
      LD_CU_BINARY_CASE(ReluGrad)
      LD_CU_BINARY_CASE(SiluGrad)
      LD_CU_BINARY_CASE(GeluErfGrad)
      LD_CU_BINARY_CASE(GeluTanhGrad)
      LD_CU_BINARY_CASE(TanhGrad)
      LD_CU_BINARY_CASE(SigmoidGrad)
      LD_CU_BINARY_CASE(PowGrad)
      // clang-format on
    }
    LD_FAIL("binary: unknown op {}", int(op));
  });
}

#define LD_CU_COMPARE_CASE(NAME) \
  case CompareOp::NAME:          \
    return launch_compare<CompareOp::NAME, T>(out, a, b, stream);

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  LD_NVTX_FN();
  cudaStream_t stream = current_stream();
  LD_DISPATCH_ALL(a.dtype(), "compare", [&] {
    using T = scalar_t;
    switch (op) {
      // clang-format off
      LD_CU_COMPARE_CASE(Eq)
      LD_CU_COMPARE_CASE(Ne)
      LD_CU_COMPARE_CASE(Lt)
      LD_CU_COMPARE_CASE(Le)
      LD_CU_COMPARE_CASE(Gt)
      LD_CU_COMPARE_CASE(Ge)
      // clang-format on
    }
    LD_FAIL("compare: unknown op {}", int(op));
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  LD_NVTX_FN();
  const int64_t n = out.numel();
  if (n == 0) return;
  const Shape& os = out.shape();
  Strided<4> st = make_strided<4>(
      os, {out.strides(), bcast_strides(cond, os), bcast_strides(a, os), bcast_strides(b, os)});
  auto go = [&](auto tag) {
    using U = decltype(tag);
    where_kernel<U><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
        dptr<U>(out), dptr<const bool>(cond), dptr<const U>(a), dptr<const U>(b), n, st);
    LD_CUDA_LAUNCH_CHECK();
  };
  dispatch_by_width(out.dtype(), __func__, go);
}

void axpy_(const Tensor& out, const Tensor& x, double alpha) {
  LD_NVTX_FN();
  const int64_t n = out.numel();
  if (n == 0) return;
  Strided<2> st = make_strided<2>(out.shape(), {out.strides(), bcast_strides(x, out.shape())});
  LD_CUDA_DISPATCH_FLOAT(out.dtype(), "axpy_", [&] {
    using T = scalar_t;
    axpy_kernel<T><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
        dptr<T>(out), dptr<const T>(x), static_cast<acc_t<T>>(alpha), n, st);
    LD_CUDA_LAUNCH_CHECK();
  });
}

void copy_strided(const Tensor& dst, const Tensor& src) {
  LD_NVTX_FN();
  LD_CHECK(dst.shape() == src.shape(), "copy_strided: {} vs {}", dst.desc(), src.desc());
  LD_CHECK(dst.is_cuda() && src.is_cuda(), "copy_strided: both must be CUDA: {} <- {}", dst.desc(),
           src.desc());
  const int64_t n = dst.numel();
  if (n == 0) return;
  cudaStream_t stream = current_stream();
  if (dst.dtype() == src.dtype()) {
    const size_t es = dtype_size(dst.dtype());
    if (dst.is_contiguous() && src.is_contiguous()) {
      LD_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), n * es,
                                    cudaMemcpyDeviceToDevice, stream));
      return;
    }
    switch (es) {
      case 1:
        return launch_copy_bits<uint8_t>(dst, src, stream);
      case 2:
        return launch_copy_bits<uint16_t>(dst, src, stream);
      case 4:
        return launch_copy_bits<uint32_t>(dst, src, stream);
      case 8:
        return launch_copy_bits<uint64_t>(dst, src, stream);
    }
  }
  Strided<2> st = make_strided<2>(dst.shape(), {dst.strides(), src.strides()});
  LD_DISPATCH_ALL(dst.dtype(), "copy_strided", [&] {
    using To = scalar_t;
    LD_DISPATCH_ALL(src.dtype(), "copy_strided", [&] {
      using From = scalar_t;
      copy_kernel<To, From><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
          dptr<To>(dst), dptr<const From>(src), n, st);
      LD_CUDA_LAUNCH_CHECK();
    });
  });
}

void fill(const Tensor& dst, double value) {
  LD_NVTX_FN();
  const int64_t n = dst.numel();
  if (n == 0) return;
  // The element's bit pattern, converted on the host exactly as the CPU backend would.
  unsigned char bits[8] = {};
  LD_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    scalar_t v = static_cast<scalar_t>(static_cast<float>(value));
    if constexpr (std::is_same_v<scalar_t, double> || std::is_same_v<scalar_t, int64_t> ||
                  std::is_same_v<scalar_t, int32_t> || std::is_same_v<scalar_t, bool>)
      v = static_cast<scalar_t>(value);
    std::memcpy(bits, &v, sizeof(v));
  });
  Strided<1> st = make_strided<1>(dst.shape(), {dst.strides()});
  auto go = [&](auto tag) {
    using U = decltype(tag);
    fill_kernel<U><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
        dptr<U>(dst), bits_as<U>(bits), n, st);
    LD_CUDA_LAUNCH_CHECK();
  };
  dispatch_by_width(dst.dtype(), __func__, go);
}

Tensor contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  copy_strided(out, t);
  return out;
}

}  // namespace ld::cuda
