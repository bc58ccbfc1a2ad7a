// CUDA AdamW (torch.optim.AdamW semantics): a single-tensor kernel for backend_api.inc and a fused
// multi-tensor kernel that updates every parameter of a model in one launch (chunks of 64K
// elements; a chunk table maps blocks to tensors). Math in f32 (f64 for f64 parameters).
#include <vector>

#include "core/cuda/common.cuh"
#include "core/cuda/cuda_ops.h"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 65536;

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay, bc1, bc2_sqrt;
};

// p -= lr * wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
template <class P, class S>
__device__ __forceinline__ void adam_elem(P* p, const P* g, S* m, S* v, int64_t i,
                                          const AdamHyper& h) {
  using A = acc_t<P>;
  A pv = to_acc(p[i]);
  const A gv = to_acc(g[i]);
  A mv = A(to_acc(m[i])), vv = A(to_acc(v[i]));
  pv -= A(h.lr * h.weight_decay) * pv;
  mv = A(h.beta1) * mv + A(1.0 - h.beta1) * gv;
  vv = A(h.beta2) * vv + A(1.0 - h.beta2) * gv * gv;
  const A denom = sqrt(vv) / A(h.bc2_sqrt) + A(h.eps);
  pv -= A(h.lr / h.bc1) * mv / denom;
  p[i] = from_acc<P>(pv);
  m[i] = from_acc<S>(static_cast<acc_t<S>>(mv));
  v[i] = from_acc<S>(static_cast<acc_t<S>>(vv));
}

template <class P, class S>
__global__ void adamw_kernel(P* p, const P* g, S* m, S* v, int64_t n, AdamHyper h) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    adam_elem(p, g, m, v, i, h);
}

struct MultiTensor {
  void* p;
  const void* g;
  float* m;
  float* v;
  int64_t n;
};
struct ChunkRef {
  int32_t tensor;
  int32_t chunk;
};

template <class P>
__global__ void adamw_multi_kernel(const MultiTensor* ts, const ChunkRef* chunks, AdamHyper h) {
  const ChunkRef c = chunks[blockIdx.x];
  const MultiTensor t = ts[c.tensor];
  const int64_t begin = int64_t(c.chunk) * kChunk, end = min(t.n, begin + kChunk);
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    adam_elem(static_cast<P*>(t.p), static_cast<const P*>(t.g), t.m, t.v, i, h);
}

AdamHyper hyper(double lr, double beta1, double beta2, double eps, double wd, int64_t step) {
  LD_CHECK(step >= 1, "adamw: step must be >= 1, got {}", step);
  return AdamHyper{lr,
                   beta1,
                   beta2,
                   eps,
                   wd,
                   1.0 - std::pow(beta1, double(step)),
                   std::sqrt(1.0 - std::pow(beta2, double(step)))};
}

}  // namespace

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                double weight_decay, int64_t step) {
  LD_NVTX_FN();
  const int64_t n = param.numel();
  if (n == 0) return;
  for (const Tensor* t : {&param, &grad, &exp_avg, &exp_avg_sq})
    LD_CHECK(t->is_contiguous() && t->numel() == n,
             "adamw_step: {} must be contiguous with {} "
             "elements",
             t->desc(), n);
  LD_CHECK(grad.dtype() == param.dtype() && exp_avg_sq.dtype() == exp_avg.dtype(),
           "adamw_step: dtypes param {} grad {} exp_avg {} exp_avg_sq {}", param.desc(),
           grad.desc(), exp_avg.desc(), exp_avg_sq.desc());
  const AdamHyper h = hyper(lr, beta1, beta2, eps, weight_decay, step);
  LD_CUDA_DISPATCH_FLOAT(param.dtype(), "adamw_step", [&] {
    using P = scalar_t;
    auto go = [&](auto tag) {
      using S = decltype(tag);
      adamw_kernel<P, S><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
          dptr<P>(param), dptr<const P>(grad), dptr<S>(exp_avg), dptr<S>(exp_avg_sq), n, h);
      LD_CUDA_LAUNCH_CHECK();
    };
    if (exp_avg.dtype() == param.dtype()) return go(P{});
    LD_CHECK(exp_avg.dtype() == DType::f32, "adamw_step: state {} must be f32 or {}",
             exp_avg.desc(), dtype_name(param.dtype()));
    return go(float{});
  });
}

void adamw_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 double lr, double beta1, double beta2, double eps, double weight_decay,
                 int64_t step) {
  LD_NVTX_FN();
  const size_t nt = params.size();
  LD_CHECK(grads.size() == nt && exp_avgs.size() == nt && exp_avg_sqs.size() == nt,
           "adamw_multi: list lengths differ: {} {} {} {}", nt, grads.size(), exp_avgs.size(),
           exp_avg_sqs.size());
  if (nt == 0) return;
  const DType pdt = params[0].dtype();
  std::vector<MultiTensor> ts;
  std::vector<ChunkRef> chunks;
  for (size_t i = 0; i < nt; ++i) {
    const Tensor &p = params[i], &g = grads[i], &m = exp_avgs[i], &v = exp_avg_sqs[i];
    const int64_t n = p.numel();
    LD_CHECK(p.is_cuda() && p.dtype() == pdt && g.dtype() == pdt,
             "adamw_multi: parameter {} "
             "(grad {}) must be CUDA {}",
             p.desc(), g.desc(), dtype_name(pdt));
    LD_CHECK(m.dtype() == DType::f32 && v.dtype() == DType::f32,
             "adamw_multi: states must be "
             "f32, got {} {}",
             m.desc(), v.desc());
    for (const Tensor* t : {&p, &g, &m, &v})
      LD_CHECK(t->is_contiguous() && t->numel() == n,
               "adamw_multi: {} must be contiguous with {} "
               "elements",
               t->desc(), n);
    if (n == 0) continue;
    const int32_t ti = static_cast<int32_t>(ts.size());
    ts.push_back({p.raw_data(), g.raw_data(), dptr<float>(m), dptr<float>(v), n});
    for (int64_t c = 0; c * kChunk < n; ++c) chunks.push_back({ti, static_cast<int32_t>(c)});
  }
  if (chunks.empty()) return;
  const AdamHyper h = hyper(lr, beta1, beta2, eps, weight_decay, step);
  // One upload of the tables (a pageable-source copy returns once the host data is staged, so
  // `host` may die after it); the buffer returns to the stream's pool after the launch.
  const size_t tb = ts.size() * sizeof(MultiTensor), cb = chunks.size() * sizeof(ChunkRef);
  DeviceBuffer meta(tb + cb);
  std::vector<char> host(tb + cb);
  std::memcpy(host.data(), ts.data(), tb);
  std::memcpy(host.data() + tb, chunks.data(), cb);
  cudaStream_t s = current_stream();
  LD_CUDA_CHECK(cudaMemcpyAsync(meta.get(), host.data(), host.size(), cudaMemcpyHostToDevice, s));
  const auto* dts = meta.as<MultiTensor>();
  const auto* dch = reinterpret_cast<const ChunkRef*>(meta.as<char>() + tb);
  LD_CHECK(chunks.size() < (size_t(1) << 31), "adamw_multi: too many chunks");
  LD_CUDA_DISPATCH_FLOAT(pdt, "adamw_multi", [&] {
    adamw_multi_kernel<scalar_t>
        <<<static_cast<unsigned>(chunks.size()), kThreads, 0, s>>>(dts, dch, h);
    LD_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace ld::cuda
