// Fused scaled-dot-product attention on CUDA (flash-attention style: K/V tiles of 32 keys in
// shared memory, online softmax, f32 math and accumulation, the [Tq, Tk] score matrix never
// written), forward and a recomputing backward, with key-padding and causal masks and grouped K/V
// heads, recorded in autograd. One warp owns one query row (forward, dQ) or one key row (dK/dV),
// so every gradient element has a single writer: deterministic without atomics.
// These kernels run the products on CUDA cores (D <= 256, f32 math for bf16/f16/f32 inputs, so f32
// needs no cast); bf16/f16 inputs with D = 64 or 128 on sm_80+ go to the tensor-core kernels of
// attention_tc.cu instead (LD_ATTENTION_TC=0 keeps them here), with the same lse and masks.
// LD_ATTENTION=cudnn selects cuDNN's fused SDPA instead (attention_cudnn.cpp).
#include <cstdlib>
#include <cstring>

#include "core/autograd.h"
#include "core/cuda/attention.h"
#include "core/cuda/attention_cudnn.h"
#include "core/cuda/attention_tc.h"
#include "core/cuda/common.cuh"
#include "core/cuda/cuda_ops.h"

namespace ld::cuda {

namespace {

constexpr int kWarps = 4;  // rows per block
constexpr int kTile = 32;  // keys (or queries) per shared-memory tile
constexpr int kMaxD = 256;
constexpr int kMaxPerLane = kMaxD / 32;

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

struct AttnParams {
  const void *q, *k, *v, *o, *dout;
  void *out, *dq, *dk, *dv;
  float* lse;       // [B, Hq, Tq]
  float* dvec;      // [B, Hq, Tq]: rowsum(dO * O)
  const bool* kpm;  // [B, Tk] true = real key, or null
  int64_t kpm_sb, kpm_st;
  int64_t B, Hq, Hkv, Tq, Tk, D;
  int64_t qs[3], ks[3], vs[3], os[3], gs[3];  // (b, h, t) strides; the last dim is contiguous
  float scale;
  bool causal;
};

__device__ __forceinline__ bool key_ok(const AttnParams& p, int64_t b, int64_t i, int64_t j) {
  if (j >= p.Tk) return false;
  if (p.kpm && !p.kpm[b * p.kpm_sb + j * p.kpm_st]) return false;
  if (p.causal && j > i + (p.Tk - p.Tq)) return false;
  return true;
}

// Loads rows [r0, r0 + kTile) of a [rows, D] matrix (row stride rs) into smem[kTile][D + 1] as f32.
template <class T>
__device__ __forceinline__ void load_tile(float* sm, const T* src, int64_t rs, int64_t r0,
                                          int64_t rows, int64_t D) {
  for (int64_t e = threadIdx.x; e < kTile * D; e += blockDim.x) {
    const int64_t r = e / D, d = e - r * D;
    sm[r * (D + 1) + d] = r0 + r < rows ? float(to_acc(src[(r0 + r) * rs + d])) : 0.f;
  }
}

// ---------------- forward ----------------
template <class T>
__global__ void attn_fwd_kernel(AttnParams p) {
  extern __shared__ float smem[];
  const int64_t D = p.D;
  float* Ks = smem;                  // [kTile][D + 1]
  float* Vs = Ks + kTile * (D + 1);  // [kTile][D + 1]
  float* Qs = Vs + kTile * (D + 1);  // [kWarps][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.y, b = bh / p.Hq, h = bh % p.Hq, hk = h / (p.Hq / p.Hkv);
  const int64_t i = int64_t(blockIdx.x) * kWarps + warp;  // query row of this warp
  const bool row_ok = i < p.Tq;
  const T* q = static_cast<const T*>(p.q) + b * p.qs[0] + h * p.qs[1];
  const T* k = static_cast<const T*>(p.k) + b * p.ks[0] + hk * p.ks[1];
  const T* v = static_cast<const T*>(p.v) + b * p.vs[0] + hk * p.vs[1];
  float* qw = Qs + warp * D;
  for (int64_t d = lane; d < D; d += 32)
    qw[d] = row_ok ? float(to_acc(q[i * p.qs[2] + d])) * p.scale : 0.f;
  float acc[kMaxPerLane];
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) acc[c] = 0.f;
  float m = -INFINITY, l = 0.f;
  // Keys beyond the last row's causal limit are never needed by this block.
  const int64_t last_i = imin(p.Tq - 1, int64_t(blockIdx.x) * kWarps + kWarps - 1);
  const int64_t kend = p.causal ? imin(p.Tk, last_i + (p.Tk - p.Tq) + 1) : p.Tk;
  for (int64_t t0 = 0; t0 < kend; t0 += kTile) {
    __syncthreads();
    load_tile(Ks, k, p.ks[2], t0, p.Tk, D);
    load_tile(Vs, v, p.vs[2], t0, p.Tk, D);
    __syncthreads();
    if (!row_ok) continue;
    const int64_t j = t0 + lane;
    const bool ok = key_ok(p, b, i, j);
    float s = -INFINITY;
    if (ok) {
      float dot = 0.f;
      const float* kr = Ks + lane * (D + 1);
      for (int64_t d = 0; d < D; ++d) dot += qw[d] * kr[d];
      s = dot;
    }
    const float m_new = fmaxf(m, warp_max(s));
    if (m_new == -INFINITY) continue;  // nothing visible yet
    const float pj = ok ? __expf(s - m_new) : 0.f;
    const float corr = __expf(m - m_new);  // 0 when m was -inf
    l = l * corr + warp_sum(pj);
#pragma unroll
    for (int c = 0; c < kMaxPerLane; ++c) acc[c] *= corr;
    for (int jj = 0; jj < kTile; ++jj) {
      const float pv = __shfl_sync(0xffffffffu, pj, jj);
      if (pv == 0.f) continue;  // uniform across the warp
      const float* vr = Vs + jj * (D + 1);
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < D) acc[c] += pv * vr[d];
      }
    }
    m = m_new;
  }
  if (!row_ok) return;
  T* o = static_cast<T*>(p.out) + b * p.os[0] + h * p.os[1] + i * p.os[2];
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < D) o[d] = from_acc<T>(acc[c] * inv);
  }
  if (lane == 0) p.lse[(b * p.Hq + h) * p.Tq + i] = l > 0.f ? m + logf(l) : -INFINITY;
}

// ---------------- backward ----------------
// dvec[row] = sum_d dO[row, d] * O[row, d]; a warp per row.
template <class T>
__global__ void attn_dvec_kernel(AttnParams p) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * kWarps + warp, rows = p.B * p.Hq * p.Tq;
  if (row >= rows) return;
  const int64_t i = row % p.Tq, bh = row / p.Tq, b = bh / p.Hq, h = bh % p.Hq;
  const T* o = static_cast<const T*>(p.o) + b * p.os[0] + h * p.os[1] + i * p.os[2];
  const T* g = static_cast<const T*>(p.dout) + b * p.gs[0] + h * p.gs[1] + i * p.gs[2];
  float s = 0.f;
  for (int64_t d = lane; d < p.D; d += 32) s += float(to_acc(o[d])) * float(to_acc(g[d]));
  s = warp_sum(s);
  if (lane == 0) p.dvec[row] = s;
}

// dQ: a warp per query row, K/V tiles in shared memory.
template <class T>
__global__ void attn_dq_kernel(AttnParams p) {
  extern __shared__ float smem[];
  const int64_t D = p.D;
  float* Ks = smem;
  float* Vs = Ks + kTile * (D + 1);
  float* Qs = Vs + kTile * (D + 1);  // [kWarps][D]
  float* Gs = Qs + kWarps * D;       // [kWarps][D]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.y, b = bh / p.Hq, h = bh % p.Hq, hk = h / (p.Hq / p.Hkv);
  const int64_t i = int64_t(blockIdx.x) * kWarps + warp;
  const bool row_ok = i < p.Tq;
  const T* q = static_cast<const T*>(p.q) + b * p.qs[0] + h * p.qs[1];
  const T* g = static_cast<const T*>(p.dout) + b * p.gs[0] + h * p.gs[1];
  const T* k = static_cast<const T*>(p.k) + b * p.ks[0] + hk * p.ks[1];
  const T* v = static_cast<const T*>(p.v) + b * p.vs[0] + hk * p.vs[1];
  float* qw = Qs + warp * D;
  float* gw = Gs + warp * D;
  for (int64_t d = lane; d < D; d += 32) {
    qw[d] = row_ok ? float(to_acc(q[i * p.qs[2] + d])) * p.scale : 0.f;
    gw[d] = row_ok ? float(to_acc(g[i * p.gs[2] + d])) : 0.f;
  }
  const int64_t row = (b * p.Hq + h) * p.Tq + i;
  const float lse = row_ok ? p.lse[row] : -INFINITY;
  const float dv = row_ok ? p.dvec[row] : 0.f;
  float acc[kMaxPerLane];
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) acc[c] = 0.f;
  const int64_t last_i = imin(p.Tq - 1, int64_t(blockIdx.x) * kWarps + kWarps - 1);
  const int64_t kend = p.causal ? imin(p.Tk, last_i + (p.Tk - p.Tq) + 1) : p.Tk;
  for (int64_t t0 = 0; t0 < kend; t0 += kTile) {
    __syncthreads();
    load_tile(Ks, k, p.ks[2], t0, p.Tk, D);
    load_tile(Vs, v, p.vs[2], t0, p.Tk, D);
    __syncthreads();
    if (!row_ok || lse == -INFINITY) continue;
    const int64_t j = t0 + lane;
    float ds = 0.f;
    if (key_ok(p, b, i, j)) {
      const float* kr = Ks + lane * (D + 1);
      const float* vr = Vs + lane * (D + 1);
      float s = 0.f, dp = 0.f;
      for (int64_t d = 0; d < D; ++d) {
        s += qw[d] * kr[d];
        dp += gw[d] * vr[d];
      }
      const float pij = __expf(s - lse);
      ds = pij * (dp - dv);
    }
    for (int jj = 0; jj < kTile; ++jj) {
      const float w = __shfl_sync(0xffffffffu, ds, jj);
      if (w == 0.f) continue;
      const float* kr = Ks + jj * (D + 1);
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < D) acc[c] += w * kr[d];
      }
    }
  }
  if (!row_ok) return;
  T* dq = static_cast<T*>(p.dq) + ((b * p.Hq + h) * p.Tq + i) * D;
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < D) dq[d] = from_acc<T>(acc[c] * p.scale);
  }
}

// dK, dV: a warp per key row of one K/V head, looping over every query head of its group and
// tiles of 32 query rows (Q and dO tiles in shared memory).
template <class T>
__global__ void attn_dkv_kernel(AttnParams p) {
  extern __shared__ float smem[];
  const int64_t D = p.D;
  float* Qs = smem;                   // [kTile][D + 1]
  float* Gs = Qs + kTile * (D + 1);   // [kTile][D + 1]
  float* KVw = Gs + kTile * (D + 1);  // [kWarps][2][D]
  __shared__ float lse_s[kTile], dvec_s[kTile];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t bh = blockIdx.y, b = bh / p.Hkv, hk = bh % p.Hkv, group = p.Hq / p.Hkv;
  const int64_t j = int64_t(blockIdx.x) * kWarps + warp;  // key row of this warp
  const bool key_real = j < p.Tk && (!p.kpm || p.kpm[b * p.kpm_sb + j * p.kpm_st]);
  const T* k = static_cast<const T*>(p.k) + b * p.ks[0] + hk * p.ks[1];
  const T* v = static_cast<const T*>(p.v) + b * p.vs[0] + hk * p.vs[1];
  float* kw = KVw + warp * 2 * D;
  float* vw = kw + D;
  for (int64_t d = lane; d < D; d += 32) {
    kw[d] = j < p.Tk ? float(to_acc(k[j * p.ks[2] + d])) : 0.f;
    vw[d] = j < p.Tk ? float(to_acc(v[j * p.vs[2] + d])) : 0.f;
  }
  float dk[kMaxPerLane], dvv[kMaxPerLane];
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) dk[c] = dvv[c] = 0.f;
  // Causal: query i sees key j iff i >= j - (Tk - Tq); the block's first key bounds the start.
  const int64_t first_j = int64_t(blockIdx.x) * kWarps;
  const int64_t qbeg = p.causal ? imax(0, first_j - (p.Tk - p.Tq)) / kTile * kTile : 0;
  for (int64_t hq = hk * group; hq < (hk + 1) * group; ++hq) {
    const T* q = static_cast<const T*>(p.q) + b * p.qs[0] + hq * p.qs[1];
    const T* g = static_cast<const T*>(p.dout) + b * p.gs[0] + hq * p.gs[1];
    const int64_t rowbase = (b * p.Hq + hq) * p.Tq;
    for (int64_t t0 = qbeg; t0 < p.Tq; t0 += kTile) {
      __syncthreads();
      load_tile(Qs, q, p.qs[2], t0, p.Tq, D);
      load_tile(Gs, g, p.gs[2], t0, p.Tq, D);
      if (threadIdx.x < kTile) {
        const int64_t i = t0 + threadIdx.x;
        lse_s[threadIdx.x] = i < p.Tq ? p.lse[rowbase + i] : -INFINITY;
        dvec_s[threadIdx.x] = i < p.Tq ? p.dvec[rowbase + i] : 0.f;
      }
      __syncthreads();
      if (!key_real) continue;
      const int64_t i = t0 + lane;
      float pij = 0.f, ds = 0.f;
      const float lse = lse_s[lane];
      if (i < p.Tq && lse != -INFINITY && !(p.causal && j > i + (p.Tk - p.Tq))) {
        const float* qr = Qs + lane * (D + 1);
        const float* gr = Gs + lane * (D + 1);
        float s = 0.f, dp = 0.f;
        for (int64_t d = 0; d < D; ++d) {
          s += qr[d] * kw[d];
          dp += gr[d] * vw[d];
        }
        pij = __expf(s * p.scale - lse);
        ds = pij * (dp - dvec_s[lane]);
      }
      for (int ii = 0; ii < kTile; ++ii) {
        const float pw = __shfl_sync(0xffffffffu, pij, ii);
        const float dw = __shfl_sync(0xffffffffu, ds, ii);
        if (pw == 0.f && dw == 0.f) continue;
        const float* qr = Qs + ii * (D + 1);
        const float* gr = Gs + ii * (D + 1);
#pragma unroll
        for (int c = 0; c < kMaxPerLane; ++c) {
          const int64_t d = lane + 32 * c;
          if (d < D) {
            dvv[c] += pw * gr[d];
            dk[c] += dw * qr[d];
          }
        }
      }
    }
  }
  if (j >= p.Tk) return;
  T* dkp = static_cast<T*>(p.dk) + ((b * p.Hkv + hk) * p.Tk + j) * D;
  T* dvp = static_cast<T*>(p.dv) + ((b * p.Hkv + hk) * p.Tk + j) * D;
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int64_t d = lane + 32 * c;
    if (d < D) {
      dkp[d] = from_acc<T>(dk[c] * p.scale);
      dvp[d] = from_acc<T>(dvv[c]);
    }
  }
}

void strides3(const Tensor& t, int64_t* s) {
  s[0] = t.stride(0);
  s[1] = t.stride(1);
  s[2] = t.stride(2);
}

Tensor last_dim_contiguous(const Tensor& t) { return t.stride(3) == 1 ? t : contiguous(t); }

template <class K>
void set_smem(K kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    LD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(bytes)));
}

AttnParams make_params(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& kpm,
                       bool causal, double scale) {
  AttnParams p{};
  p.q = q.raw_data();
  p.k = k.raw_data();
  p.v = v.raw_data();
  p.B = q.size(0);
  p.Hq = q.size(1);
  p.Tq = q.size(2);
  p.D = q.size(3);
  p.Hkv = k.size(1);
  p.Tk = k.size(2);
  strides3(q, p.qs);
  strides3(k, p.ks);
  strides3(v, p.vs);
  if (kpm.defined()) {
    p.kpm = static_cast<const bool*>(kpm.raw_data());
    p.kpm_sb = kpm.stride(0);
    p.kpm_st = kpm.stride(1);
  }
  p.scale = static_cast<float>(scale);
  p.causal = causal;
  return p;
}

// Forward: returns out [B, Hq, Tq, D] (contiguous) and fills lse [B, Hq, Tq] (f32).
Tensor flash_fwd(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& kpm, bool causal,
                 double scale, Tensor& lse) {
  LD_NVTX_FN();
  if (attention_tc_eligible(q.dtype(), q.size(3)))
    return flash_fwd_tc(q, k, v, kpm, causal, scale, lse);
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  lse = Tensor::empty({q.size(0), q.size(1), q.size(2)}, DType::f32, q.device());
  AttnParams p = make_params(q, k, v, kpm, causal, scale);
  p.out = out.raw_data();
  strides3(out, p.os);
  p.lse = dptr<float>(lse);
  if (out.numel() == 0) return out;
  const size_t smem = (2 * kTile * (p.D + 1) + kWarps * p.D) * sizeof(float);
  dim3 grid(static_cast<unsigned>(ceil_div(p.Tq, kWarps)), static_cast<unsigned>(p.B * p.Hq));
  LD_CUDA_DISPATCH_FLOAT(q.dtype(), "fused_sdpa", [&] {
    auto kern = attn_fwd_kernel<scalar_t>;
    set_smem(kern, smem);
    kern<<<grid, kWarps * 32, smem, current_stream()>>>(p);
    LD_CUDA_LAUNCH_CHECK();
  });
  return out;
}

std::vector<Tensor> flash_bwd(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& kpm,
                              bool causal, double scale, const Tensor& out, const Tensor& lse,
                              const Tensor& gout_in) {
  LD_NVTX_FN();
  Tensor gout = last_dim_contiguous(gout_in.dtype() == q.dtype() ? gout_in : gout_in.to(q.dtype()));
  if (attention_tc_eligible(q.dtype(), q.size(3)))
    return flash_bwd_tc(q, k, v, kpm, causal, scale, out, lse, gout);
  Tensor dq = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor dk = Tensor::empty(k.shape(), k.dtype(), k.device());
  Tensor dv = Tensor::empty(v.shape(), v.dtype(), v.device());
  if (q.numel() == 0 || k.numel() == 0) {
    if (dq.numel()) fill(dq, 0.0);
    if (dk.numel()) fill(dk, 0.0);
    if (dv.numel()) fill(dv, 0.0);
    return {dq, dk, dv};
  }
  Tensor dvec = Tensor::empty({q.size(0), q.size(1), q.size(2)}, DType::f32, q.device());
  AttnParams p = make_params(q, k, v, kpm, causal, scale);
  p.o = out.raw_data();
  strides3(out, p.os);
  p.dout = gout.raw_data();
  strides3(gout, p.gs);
  p.lse = dptr<float>(lse);
  p.dvec = dptr<float>(dvec);
  p.dq = dq.raw_data();
  p.dk = dk.raw_data();
  p.dv = dv.raw_data();
  cudaStream_t s = current_stream();
  LD_CUDA_DISPATCH_FLOAT(q.dtype(), "fused_sdpa_backward", [&] {
    using T = scalar_t;
    const int64_t rows = p.B * p.Hq * p.Tq;
    attn_dvec_kernel<T><<<ceil_div(rows, kWarps), kWarps * 32, 0, s>>>(p);
    LD_CUDA_LAUNCH_CHECK();
    const size_t smem_q = (2 * kTile * (p.D + 1) + 2 * kWarps * p.D) * sizeof(float);
    auto kq = attn_dq_kernel<T>;
    set_smem(kq, smem_q);
    dim3 gq(static_cast<unsigned>(ceil_div(p.Tq, kWarps)), static_cast<unsigned>(p.B * p.Hq));
    kq<<<gq, kWarps * 32, smem_q, s>>>(p);
    LD_CUDA_LAUNCH_CHECK();
    const size_t smem_kv = (2 * kTile * (p.D + 1) + 2 * kWarps * p.D) * sizeof(float);
    auto kkv = attn_dkv_kernel<T>;
    set_smem(kkv, smem_kv);
    dim3 gkv(static_cast<unsigned>(ceil_div(p.Tk, kWarps)), static_cast<unsigned>(p.B * p.Hkv));
    kkv<<<gkv, kWarps * 32, smem_kv, s>>>(p);
    LD_CUDA_LAUNCH_CHECK();
  });
  return {dq, dk, dv};
}

AttentionImpl impl_from_env() {
  const char* e = std::getenv("LD_ATTENTION");
  if (!e || !*e || std::strcmp(e, "fused") == 0) return AttentionImpl::Fused;
  if (std::strcmp(e, "unfused") == 0) return AttentionImpl::Unfused;
  if (std::strcmp(e, "cudnn") == 0) return AttentionImpl::Cudnn;
  LD_FAIL("LD_ATTENTION={} is not one of fused, unfused, cudnn", e);
}

AttentionImpl& impl_ref() {
  static AttentionImpl impl = impl_from_env();
  return impl;
}

}  // namespace

AttentionImpl attention_impl() { return impl_ref(); }
void set_attention_impl(AttentionImpl impl) { impl_ref() = impl; }

Tensor fused_sdpa(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                  const Tensor& key_padding_mask, bool causal, double scale) {
  LD_NVTX_FN();
  const AttentionImpl impl = attention_impl();
  if (impl == AttentionImpl::Unfused) return Tensor();
  if (impl == AttentionImpl::Cudnn)  // core/cuda/attention_cudnn.cpp; throws when not built
    return cudnn_sdpa(q_in, k_in, v_in, key_padding_mask, causal, scale);
  // Outside the kernel's envelope: let the caller run the unfused composition.
  if (q_in.dim() != 4 || k_in.dim() != 4 || v_in.dim() != 4) return Tensor();
  const DType dt = q_in.dtype();
  if (dt != DType::bf16 && dt != DType::f16 && dt != DType::f32) return Tensor();
  if (k_in.dtype() != dt || v_in.dtype() != dt) return Tensor();
  if (q_in.size(3) > kMaxD || q_in.size(3) < 1 || v_in.size(3) != q_in.size(3)) return Tensor();
  if (k_in.size(1) == 0 || q_in.size(1) % k_in.size(1) != 0) return Tensor();
  if (key_padding_mask.defined() && (key_padding_mask.dtype() != DType::b8 ||
                                     key_padding_mask.dim() != 2 || !key_padding_mask.is_cuda()))
    return Tensor();
  if (!q_in.is_cuda() || !k_in.is_cuda() || !v_in.is_cuda()) return Tensor();
  const double sc = scale > 0 ? scale : 1.0 / std::sqrt(double(q_in.size(3)));
  Tensor q = last_dim_contiguous(q_in.detach()), k = last_dim_contiguous(k_in.detach()),
         v = last_dim_contiguous(v_in.detach());
  Tensor kpm = key_padding_mask;
  Tensor lse;
  Tensor out;
  {
    NoGradGuard ng;
    out = flash_fwd(q, k, v, kpm, causal, sc, lse);
  }
  if (!grad_enabled() || !(q_in.requires_grad() || k_in.requires_grad() || v_in.requires_grad()))
    return out;
  Tensor od = out.detach();
  return record("fused_sdpa", out, {q_in, k_in, v_in}, [=](const Tensor& g) {
    NoGradGuard ng;
    return flash_bwd(q, k, v, kpm, causal, sc, od, lse, g);
  });
}

}  // namespace ld::cuda
