// CUDA gathers and scatters: embedding forward/backward and index_select / index_add_. Backward
// passes are deterministic without atomics: embedding_bwd stably sorts (id, position) pairs with
// cub and lets one thread own each (vocabulary row, column), summing its positions in order;
// index_add_ gives each thread one (outer, column) and walks the index list in order.
#include <cub/device/device_radix_sort.cuh>

#include "core/cuda/common.cuh"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr int kThreads = 256;

// out [rows, d] contiguous; weight [V, d] strided. Block-stride over rows, threads over columns.
template <class T>
__global__ void embedding_fwd_kernel(T* out, const T* w, const int64_t* ids, int64_t rows,
                                     int64_t d, int64_t ws0, int64_t ws1) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* src = w + ids[r] * ws0;
    T* dst = out + r * d;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dst[j] = src[j * ws1];
  }
}

// Sorted (id, position) pairs: block k handles the segment that starts at k (if one does).
template <class T>
__global__ void embedding_bwd_kernel(T* gw, const T* go, const int64_t* sorted_ids,
                                     const int64_t* sorted_pos, int64_t rows, int64_t d,
                                     int64_t padding_idx) {
  const int64_t k = blockIdx.x;
  const int64_t id = sorted_ids[k];
  if (id == padding_idx || (k > 0 && sorted_ids[k - 1] == id)) return;
  int64_t end = k + 1;
  while (end < rows && sorted_ids[end] == id) ++end;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    acc_t<T> s = to_acc(gw[id * d + j]);
    for (int64_t q = k; q < end; ++q) s += to_acc(go[sorted_pos[q] * d + j]);
    gw[id * d + j] = from_acc<T>(s);
  }
}

__global__ void iota_kernel(int64_t* p, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) p[i] = i;
}

// out [outer, m, inner] from x [outer, n, inner] (contiguous), by element payload U.
template <class U>
__global__ void index_select_kernel(U* out, const U* x, const int64_t* idx, int64_t idx_stride,
                                    int64_t outer, int64_t n, int64_t m, int64_t inner) {
  const int64_t total = outer * m * inner, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t c = i % inner, r = i / inner, j = r % m, o = r / m;
    out[i] = x[(o * n + idx[j * idx_stride]) * inner + c];
  }
}

// out [outer, n, inner] += src [outer, m, inner] at rows idx[j], in order of j.
template <class T>
__global__ void index_add_kernel(T* out, const T* src, const int64_t* idx, int64_t idx_stride,
                                 int64_t outer, int64_t n, int64_t m, int64_t inner) {
  const int64_t total = outer * inner, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t c = i % inner, o = i / inner;
    for (int64_t j = 0; j < m; ++j) {
      T* dst = out + (o * n + idx[j * idx_stride]) * inner + c;
      *dst = from_acc<T>(to_acc(*dst) + to_acc(src[(o * m + j) * inner + c]));
    }
  }
}

void outer_inner(const Tensor& t, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= t.size(d);
  for (int64_t d = dim + 1; d < t.dim(); ++d) inner *= t.size(d);
}

}  // namespace

void embedding_fwd(const Tensor& out, const Tensor& weight, const Tensor& ids) {
  LD_NVTX_FN();
  const int64_t rows = ids.numel(), d = weight.size(1);
  if (rows == 0 || d == 0) return;
  LD_CHECK(ids.is_contiguous(), "embedding_fwd: ids must be contiguous, got {}", ids.desc());
  LD_CUDA_DISPATCH_FLOAT(weight.dtype(), "embedding_fwd", [&] {
    using T = scalar_t;
    const unsigned grid = static_cast<unsigned>(std::min<int64_t>(rows, 65535));
    embedding_fwd_kernel<T><<<grid, 128, 0, current_stream()>>>(dptr<T>(out), dptr<const T>(weight),
                                                                dptr<const int64_t>(ids), rows, d,
                                                                weight.stride(0), weight.stride(1));
    LD_CUDA_LAUNCH_CHECK();
  });
}

void embedding_bwd(const Tensor& grad_weight, const Tensor& grad_out, const Tensor& ids,
                   int64_t padding_idx) {
  LD_NVTX_FN();
  const int64_t rows = ids.numel(), d = grad_weight.size(1);
  if (rows == 0 || d == 0) return;
  LD_CHECK(ids.is_contiguous() && grad_out.is_contiguous() && grad_weight.is_contiguous(),
           "embedding_bwd: operands must be contiguous");
  LD_CHECK(rows < (int64_t(1) << 31), "embedding_bwd: {} rows exceed the grid limit", rows);
  cudaStream_t s = current_stream();
  // Stable radix sort of (id, position): equal ids keep increasing positions.
  DeviceBuffer pos_in(rows * sizeof(int64_t)), keys_out(rows * sizeof(int64_t)),
      pos_out(rows * sizeof(int64_t));
  iota_kernel<<<ceil_div(rows, kThreads), kThreads, 0, s>>>(pos_in.as<int64_t>(), rows);
  LD_CUDA_LAUNCH_CHECK();
  // Only the bits needed for the vocabulary size are sorted (ids are validated to lie in [0, V)).
  const int64_t V = grad_weight.size(0);
  int end_bit = 1;
  while (end_bit < 63 && (int64_t(1) << end_bit) < V) ++end_bit;
  size_t temp = 0;
  LD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp, dptr<const int64_t>(ids),
                                                keys_out.as<int64_t>(), pos_in.as<int64_t>(),
                                                pos_out.as<int64_t>(), rows, 0, end_bit, s));
  DeviceBuffer tmp(temp);
  LD_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp.get(), temp, dptr<const int64_t>(ids),
                                                keys_out.as<int64_t>(), pos_in.as<int64_t>(),
                                                pos_out.as<int64_t>(), rows, 0, end_bit, s));
  LD_CUDA_DISPATCH_FLOAT(grad_weight.dtype(), "embedding_bwd", [&] {
    using T = scalar_t;
    embedding_bwd_kernel<T><<<static_cast<unsigned>(rows), 128, 0, s>>>(
        dptr<T>(grad_weight), dptr<const T>(grad_out), keys_out.as<const int64_t>(),
        pos_out.as<const int64_t>(), rows, d, padding_idx);
    LD_CUDA_LAUNCH_CHECK();
  });
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx) {
  LD_NVTX_FN();
  int64_t outer, inner;
  outer_inner(x, dim, outer, inner);
  const int64_t n = x.size(dim), m = idx.numel();
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  LD_CHECK(x.is_contiguous() && out.is_contiguous(), "index_select: {} and {} must be contiguous",
           x.desc(), out.desc());
  const int64_t ist = idx.dim() == 0 ? 0 : idx.stride(0);
  auto go = [&](auto tag) {
    using U = decltype(tag);
    index_select_kernel<U><<<grid_for(total, kThreads), kThreads, 0, current_stream()>>>(
        dptr<U>(out), dptr<const U>(x), dptr<const int64_t>(idx), ist, outer, n, m, inner);
    LD_CUDA_LAUNCH_CHECK();
  };
  dispatch_by_width(x.dtype(), __func__, go);
}

void index_add_(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  LD_NVTX_FN();
  int64_t outer, inner;
  outer_inner(out, dim, outer, inner);
  const int64_t n = out.size(dim), m = idx.numel();
  if (outer * inner == 0 || m == 0) return;
  LD_CHECK(out.is_contiguous() && src.is_contiguous(), "index_add_: {} and {} must be contiguous",
           out.desc(), src.desc());
  const int64_t ist = idx.dim() == 0 ? 0 : idx.stride(0);
  LD_CUDA_DISPATCH_FLOAT(out.dtype(), "index_add_", [&] {
    using T = scalar_t;
    index_add_kernel<T><<<grid_for(outer * inner, kThreads), kThreads, 0, current_stream()>>>(
        dptr<T>(out), dptr<const T>(src), dptr<const int64_t>(idx), ist, outer, n, m, inner);
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
