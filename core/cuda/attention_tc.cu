// Fused scaled-dot-product attention on tensor cores for bf16/f16 inputs, head dim 64 or 128
// (flash-attention 2 style): Q K^T and P V (and, backward, dO V^T, dS K, P^T dO, dS^T Q) run as
// warp-level mma.sync.m16n8k16 with f32 accumulation; the online softmax and the masks are f32
// on the accumulator fragments; the [Tq, Tk] scores never leave registers. Same contract, masks
// (key padding, causal aligned to the bottom right), grouped K/V heads and logsumexp as the
// CUDA-core kernels in attention.cu, which stay the f32 path and the fallback.
//
// Design (simple and checkable before fast):
// - 4 warps a block; each warp owns 16 rows of the block's tile (the M of one mma), so softmax
//   row statistics live in one warp: a lane holds 2 rows (g, g + 8) and a row is spread over the 4
//   lanes of a quad (mma_frag.h), reduced with two xor-shuffles.
// - Global -> shared: whole rows of 16-bit values (16-byte vector loads when every pointer and
//   stride allows, else scalar), rows past the end written as zeros so no garbage (NaN) can enter
//   an mma; shared tiles have a row pitch of D + 8 elements (16 bytes of padding) which makes the
//   fragment loads bank-conflict free (row r starts at word r * (D + 8) / 2 = 4r mod 32).
// - Fragments are loaded with plain 32-bit / 16-bit shared loads through the helpers of
//   mma_frag.h (checked on the CPU by tests/core/attention_mma_layout_test.cpp); no ldmatrix,
//   no cp.async pipelining: one K/V tile in flight.
// - Forward: block = 64 query rows x one (batch, head); K/V tiles of 64 keys. Q fragments stay in
//   registers. smem (Q + K + V tiles): 27 KiB at D = 64, 51 KiB at D = 128.
// - Backward (deterministic, no atomics, like attention.cu: every gradient element has one
//   writer): dvec = rowsum(dO * O); a dQ kernel (block = 64 query rows, key tiles of 32) and a
//   dK/dV kernel (block = 64 keys of one K/V head, looping over the query heads of its group and
//   query tiles of 32). Both recompute P from the saved logsumexp. smem: 27 / 51 KiB.
// - Fully masked rows (no visible key) give O = 0, lse = -inf, and zero gradients.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "core/cuda/attention_tc.h"
#include "core/cuda/attention_tiles.h"
#include "core/cuda/common.cuh"
#include "core/cuda/cuda_ops.h"
#include "core/cuda/mma_frag.h"

namespace ld::cuda {

namespace {

constexpr int kWarpsTc = 4;
constexpr int kThreadsTc = 32 * kWarpsTc;
constexpr int kPad = 8;          // shared row pitch = D + kPad elements
constexpr int kFwdRows = 64;     // forward: query rows per block (16 per warp)
constexpr int kFwdKeys = 64;     // forward: keys per K/V tile
constexpr int kDqRows = 64;      // dQ: query rows per block
constexpr int kDqKeys = 32;      // dQ: keys per K/V tile
constexpr int kDkvKeys = 64;     // dK/dV: keys per block
constexpr int kDkvQueries = 32;  // dK/dV: query rows per Q/dO tile
static_assert(kFwdRows == 16 * kWarpsTc && kDqRows == 16 * kWarpsTc && kDkvKeys == 16 * kWarpsTc);
static_assert(kFwdKeys % 16 == 0 && kDqKeys % 16 == 0 && kDkvQueries % 16 == 0);
static_assert(kFwdKeys <= kThreadsTc && kDqKeys <= kThreadsTc && kDkvQueries <= kThreadsTc);

struct TcParams {
  const uint16_t *q, *k, *v, *o, *g;  // bf16/f16 bits; last dim contiguous
  uint16_t *out, *dq, *dk, *dv;       // contiguous outputs
  float* lse;                         // [B, Hq, Tq]
  float* dvec;                        // [B, Hq, Tq]: rowsum(dO * O)
  const bool* kpm;                    // [B, Tk] true = real key, or null
  int64_t kpm_sb, kpm_st;
  int64_t B, Hq, Hkv, Tq, Tk;
  int64_t qs[3], ks[3], vs[3], os[3], gs[3];  // (b, h, t) strides in elements
  float scale;
  bool causal;
  bool vec16;  // every row start of q, k, v, g is 16-byte aligned: vector loads allowed
};

// ---- index helpers ----
__device__ __forceinline__ int64_t kv_head(const TcParams& p, int64_t h) {
  return h / (p.Hq / p.Hkv);
}
// The causal mask and block bounds: attention_tiles.h (the same rule as key_ok in attention.cu).
__device__ __forceinline__ bool causal_ok(const TcParams& p, int64_t i, int64_t j) {
  return attn::causal_visible(p.causal, p.Tq, p.Tk, i, j);
}
__device__ __forceinline__ bool key_real(const TcParams& p, int64_t b, int64_t j) {
  return j < p.Tk && (!p.kpm || p.kpm[b * p.kpm_sb + j * p.kpm_st]);
}
__device__ __forceinline__ int64_t key_end(const TcParams& p, int64_t m0, int rows) {
  return attn::key_end(p.causal, p.Tq, p.Tk, m0, rows);
}
__device__ __forceinline__ int64_t query_begin(const TcParams& p, int64_t n0) {
  return attn::query_begin(p.causal, p.Tq, p.Tk, n0);
}

// Row of a warp's 16-row fragment tile for C element e (see mma_frag.h).
__device__ __forceinline__ int frag_row(int warp, int lane, int e) {
  return 16 * warp + mma::c_elem(lane, e).row;
}

// ---- tensor-core primitives ----
// d += a * b for one 16x8x16 tile (f32 accumulate). Needs sm_80 (the launcher checks the device).
template <class T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4],
                                          const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, bf16>) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    static_assert(std::is_same_v<T, f16>);
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
#else
  // Compiled for an older architecture (or the host pass): never launched there, see
  // attention_tc_eligible.
  (void)d;
  (void)a;
  (void)b;
#if defined(__CUDA_ARCH__)
  __trap();
#endif
#endif
}

// Two warp-level products sharing the loop: acc0 = A0 B0ᵀ and acc1 = A1 B1ᵀ (zeroed first) for
// the warp's 16 rows of A0 / A1 (row-major, `ld` elements per row, rows at a0 / a1) against NT
// tiles of 8 rows of B0 / B1 (stored [n][k], i.e. B as the "col" operand), over KD steps of 16.
// The backward's S = Q Kᵀ with dP = dO Vᵀ, and Sᵀ = K Qᵀ with dPᵀ = V dOᵀ.
template <class T, int NT, int KD>
__device__ __forceinline__ void warp_gemm2_nt(float (&acc0)[NT][4], float (&acc1)[NT][4],
                                              const uint16_t* a0, const uint16_t* a1,
                                              const uint16_t* b0, const uint16_t* b1, int ld,
                                              int lane) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc0[nt][e] = acc1[nt][e] = 0.f;
#pragma unroll
  for (int kk = 0; kk < KD; ++kk) {
    uint32_t x0[4], x1[4];
    mma::load_a(x0, a0 + 16 * kk, ld, lane);
    mma::load_a(x1, a1 + 16 * kk, ld, lane);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      uint32_t y0[2], y1[2];
      mma::load_b_nk(y0, b0 + 8 * nt * ld + 16 * kk, ld, lane);
      mma::load_b_nk(y1, b1 + 8 * nt * ld + 16 * kk, ld, lane);
      mma_16816<T>(acc0[nt], x0, y0);
      mma_16816<T>(acc1[nt], x1, y1);
    }
  }
}

// Rounds two f32 to T (round to nearest even) and packs them, the first in the low half.
template <class T>
struct Pack2 {
  __device__ __forceinline__ uint32_t operator()(float lo, float hi) const {
    return mma::pack_u16(from_acc<T>(lo).bits, from_acc<T>(hi).bits);
  }
};

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Copies rows [r0, r0 + kRows) of a [nrows, D] matrix (row stride rs elements) into
// sm[kRows][D + kPad]; rows at or past nrows become zeros. All threads of the block take part.
template <int kRows, int D>
__device__ __forceinline__ void load_rows(uint16_t* sm, const uint16_t* src, int64_t rs, int64_t r0,
                                          int64_t nrows, bool vec16) {
  constexpr int LD = D + kPad;
  if (vec16) {
    constexpr int kChunks = D / 8;  // 16-byte chunks a row
    for (int e = threadIdx.x; e < kRows * kChunks; e += kThreadsTc) {
      const int r = e / kChunks, c = (e % kChunks) * 8;
      uint4 val = make_uint4(0u, 0u, 0u, 0u);
      if (r0 + r < nrows) val = *reinterpret_cast<const uint4*>(src + (r0 + r) * rs + c);
      *reinterpret_cast<uint4*>(sm + r * LD + c) = val;
    }
  } else {
    for (int e = threadIdx.x; e < kRows * D; e += kThreadsTc) {
      const int r = e / D, c = e % D;
      sm[r * LD + c] = r0 + r < nrows ? src[(r0 + r) * rs + c] : uint16_t(0);
    }
  }
}

// valid[j] = key n0 + j is real (in range and not padding), for j < kKeys.
template <int kKeys>
__device__ __forceinline__ void load_key_valid(bool* valid, const TcParams& p, int64_t b,
                                               int64_t n0) {
  if (threadIdx.x < kKeys) valid[threadIdx.x] = key_real(p, b, n0 + threadIdx.x);
}

// Stores a warp's 16 x D f32 accumulator tile (times mul) as T to rows [row0, row0 + 16) of a
// contiguous [rows, D] matrix, skipping rows at or past `rows`.
template <class T, int D>
__device__ __forceinline__ void store_rows(uint16_t* dst, const float (&acc)[D / 8][4],
                                           int64_t row0, int64_t rows, float mul, int lane) {
  const Pack2<T> pack;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt)
#pragma unroll
    for (int e = 0; e < 4; e += 2) {  // elements e, e + 1 are adjacent columns of one row
      const mma::RowCol rc = mma::c_elem(lane, e);
      const int64_t i = row0 + rc.row;
      if (i < rows)
        *reinterpret_cast<uint32_t*>(dst + i * D + dt * 8 + rc.col) =
            pack(acc[dt][e] * mul, acc[dt][e + 1] * mul);
    }
}

// ---------------- forward ----------------
template <class T, int D>
__global__ void __launch_bounds__(kThreadsTc) attn_fwd_tc_kernel(TcParams p) {
  constexpr int LD = D + kPad, KD = D / 16, NT = kFwdKeys / 8, DT = D / 8;
  extern __shared__ __align__(16) uint16_t tc_smem[];
  uint16_t* Qs = tc_smem;             // [kFwdRows][LD]
  uint16_t* Ks = Qs + kFwdRows * LD;  // [kFwdKeys][LD]
  uint16_t* Vs = Ks + kFwdKeys * LD;  // [kFwdKeys][LD]
  __shared__ bool kvalid[kFwdKeys];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y, b = bh / p.Hq, h = bh % p.Hq, hk = kv_head(p, h);
  const int64_t m0 = int64_t(blockIdx.x) * kFwdRows;
  const uint16_t* q = p.q + b * p.qs[0] + h * p.qs[1];
  const uint16_t* k = p.k + b * p.ks[0] + hk * p.ks[1];
  const uint16_t* v = p.v + b * p.vs[0] + hk * p.vs[1];
  const Pack2<T> pack;

  load_rows<kFwdRows, D>(Qs, q, p.qs[2], m0, p.Tq, p.vec16);
  __syncthreads();
  uint32_t qf[KD][4];
#pragma unroll
  for (int kk = 0; kk < KD; ++kk) mma::load_a(qf[kk], Qs + 16 * warp * LD + 16 * kk, LD, lane);

  float o[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  // This lane's two rows (hr = 0: C elements 0, 1; hr = 1: elements 2, 3): running max, and the
  // running sum over this lane's columns only (the quad's lanes share the max, so the sums are
  // combined once at the end).
  const int64_t qrow[2] = {m0 + frag_row(warp, lane, 0), m0 + frag_row(warp, lane, 2)};
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};

  const int64_t kend = key_end(p, m0, kFwdRows);
  for (int64_t n0 = 0; n0 < kend; n0 += kFwdKeys) {
    __syncthreads();  // every warp is done with the previous K/V tile
    load_rows<kFwdKeys, D>(Ks, k, p.ks[2], n0, p.Tk, p.vec16);
    load_rows<kFwdKeys, D>(Vs, v, p.vs[2], n0, p.Tk, p.vec16);
    load_key_valid<kFwdKeys>(kvalid, p, b, n0);
    __syncthreads();

    // S = Q K^T: K stored [key][d] is B as [n][k].
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        uint32_t kb[2];
        mma::load_b_nk(kb, Ks + 8 * nt * LD + 16 * kk, LD, lane);
        mma_16816<T>(s[nt], qf[kk], kb);
      }

    // Scale, mask, tile row max.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = 8 * nt + mma::c_elem(lane, e).col, hr = e >> 1;
        const bool ok = kvalid[col] && causal_ok(p, qrow[hr], n0 + col);
        s[nt][e] = ok ? s[nt][e] * p.scale : -INFINITY;
        mx[hr] = fmaxf(mx[hr], s[nt][e]);
      }
    // Online softmax update. A row with nothing visible yet keeps m = -inf; exponentiating
    // against 0 instead keeps its P, l and O at exactly 0 (no -inf - -inf).
    float m_use[2], corr[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const float m_new = fmaxf(m_run[hr], quad_max(mx[hr]));
      m_use[hr] = m_new == -INFINITY ? 0.f : m_new;
      corr[hr] = __expf(m_run[hr] - m_use[hr]);
      m_run[hr] = m_new;
      l_run[hr] *= corr[hr];
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[nt][e] = __expf(s[nt][e] - m_use[e >> 1]);
        l_run[e >> 1] += s[nt][e];
      }
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[dt][e] *= corr[e >> 1];

        // O += P V: P's C fragments of n-tiles 2ks, 2ks + 1 are the A fragment of k-step ks; V
        // stored [key][d] is B as [k][n].
#pragma unroll
    for (int ks = 0; ks < kFwdKeys / 16; ++ks) {
      uint32_t pa[4];
      mma::a_from_c(pa, s[2 * ks], s[2 * ks + 1], pack);
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        uint32_t vb[2];
        mma::load_b_kn(vb, Vs + 16 * ks * LD + 8 * dt, LD, lane);
        mma_16816<T>(o[dt], pa, vb);
      }
    }
  }

  float inv[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const float l = quad_sum(l_run[hr]);
    inv[hr] = l > 0.f ? 1.f / l : 0.f;
    if (mma::thread_in_group(lane) == 0 && qrow[hr] < p.Tq)
      p.lse[(b * p.Hq + h) * p.Tq + qrow[hr]] = l > 0.f ? m_run[hr] + logf(l) : -INFINITY;
  }
  // Rows differ in 1/l: scale each element by its own row's factor before storing.
#pragma unroll
  for (int dt = 0; dt < DT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[dt][e] *= inv[e >> 1];
  store_rows<T, D>(p.out + (b * p.Hq + h) * p.Tq * D, o, m0 + 16 * warp, p.Tq, 1.f, lane);
}

// ---------------- backward ----------------
// dvec[row] = sum_d dO[row, d] * O[row, d] in f32; a warp per row.
template <class T, int D>
__global__ void __launch_bounds__(kThreadsTc) attn_dvec_tc_kernel(TcParams p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarpsTc + warp, rows = p.B * p.Hq * p.Tq;
  if (row >= rows) return;
  const int64_t i = row % p.Tq, bh = row / p.Tq, b = bh / p.Hq, h = bh % p.Hq;
  const T* o = reinterpret_cast<const T*>(p.o + b * p.os[0] + h * p.os[1] + i * p.os[2]);
  const T* g = reinterpret_cast<const T*>(p.g + b * p.gs[0] + h * p.gs[1] + i * p.gs[2]);
  float s = 0.f;
  for (int d = lane; d < D; d += 32) s += to_acc(o[d]) * to_acc(g[d]);
  s = warp_sum(s);
  if (lane == 0) p.dvec[row] = s;
}

// dQ = scale * dS K with dS = P * (dO V^T - dvec): block = kDqRows query rows of one (b, h).
template <class T, int D>
__global__ void __launch_bounds__(kThreadsTc) attn_dq_tc_kernel(TcParams p) {
  constexpr int LD = D + kPad, KD = D / 16, NT = kDqKeys / 8, DT = D / 8;
  extern __shared__ __align__(16) uint16_t tc_smem[];
  uint16_t* Qs = tc_smem;            // [kDqRows][LD]
  uint16_t* Gs = Qs + kDqRows * LD;  // [kDqRows][LD] (dO)
  uint16_t* Ks = Gs + kDqRows * LD;  // [kDqKeys][LD]
  uint16_t* Vs = Ks + kDqKeys * LD;  // [kDqKeys][LD]
  __shared__ bool kvalid[kDqKeys];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y, b = bh / p.Hq, h = bh % p.Hq, hk = kv_head(p, h);
  const int64_t m0 = int64_t(blockIdx.x) * kDqRows;
  const uint16_t* q = p.q + b * p.qs[0] + h * p.qs[1];
  const uint16_t* g = p.g + b * p.gs[0] + h * p.gs[1];
  const uint16_t* k = p.k + b * p.ks[0] + hk * p.ks[1];
  const uint16_t* v = p.v + b * p.vs[0] + hk * p.vs[1];
  const Pack2<T> pack;

  load_rows<kDqRows, D>(Qs, q, p.qs[2], m0, p.Tq, p.vec16);
  load_rows<kDqRows, D>(Gs, g, p.gs[2], m0, p.Tq, p.vec16);
  // Per-row logsumexp and dvec of this lane's two rows. A row past Tq or with no visible key
  // (lse = -inf) gets lse = +inf, so its P = exp(s - inf) = 0 and it adds nothing.
  const int64_t qrow[2] = {m0 + frag_row(warp, lane, 0), m0 + frag_row(warp, lane, 2)};
  float lse_r[2], dvec_r[2];
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t idx = (b * p.Hq + h) * p.Tq + qrow[hr];
    const float l = qrow[hr] < p.Tq ? p.lse[idx] : -INFINITY;
    lse_r[hr] = l == -INFINITY ? INFINITY : l;
    dvec_r[hr] = qrow[hr] < p.Tq ? p.dvec[idx] : 0.f;
  }
  float dq[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) dq[dt][0] = dq[dt][1] = dq[dt][2] = dq[dt][3] = 0.f;

  const int64_t kend = key_end(p, m0, kDqRows);
  for (int64_t n0 = 0; n0 < kend; n0 += kDqKeys) {
    __syncthreads();
    load_rows<kDqKeys, D>(Ks, k, p.ks[2], n0, p.Tk, p.vec16);
    load_rows<kDqKeys, D>(Vs, v, p.vs[2], n0, p.Tk, p.vec16);
    load_key_valid<kDqKeys>(kvalid, p, b, n0);
    __syncthreads();

    // S = Q K^T and dP = dO V^T (K, V stored [key][d]: B as [n][k]).
    float s[NT][4], dp[NT][4];
    warp_gemm2_nt<T, NT, KD>(s, dp, Qs + 16 * warp * LD, Gs + 16 * warp * LD, Ks, Vs, LD, lane);
    // dS = P * (dP - dvec), into s.
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = 8 * nt + mma::c_elem(lane, e).col, hr = e >> 1;
        const bool ok = kvalid[col] && causal_ok(p, qrow[hr], n0 + col);
        const float pij = ok ? __expf(s[nt][e] * p.scale - lse_r[hr]) : 0.f;
        s[nt][e] = pij * (dp[nt][e] - dvec_r[hr]);
      }
      // dQ += dS K: dS's C fragments as A; K stored [key][d] is B as [k][n].
#pragma unroll
    for (int ks = 0; ks < kDqKeys / 16; ++ks) {
      uint32_t da[4];
      mma::a_from_c(da, s[2 * ks], s[2 * ks + 1], pack);
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        uint32_t kb[2];
        mma::load_b_kn(kb, Ks + 16 * ks * LD + 8 * dt, LD, lane);
        mma_16816<T>(dq[dt], da, kb);
      }
    }
  }
  store_rows<T, D>(p.dq + (b * p.Hq + h) * p.Tq * D, dq, m0 + 16 * warp, p.Tq, p.scale, lane);
}

// dV = P^T dO and dK = scale * dS^T Q: block = kDkvKeys keys of one (b, K/V head), over every query
// head of its group. Works on the transposed scores S^T = K Q^T (keys are the mma rows).
template <class T, int D>
__global__ void __launch_bounds__(kThreadsTc) attn_dkv_tc_kernel(TcParams p) {
  constexpr int LD = D + kPad, KD = D / 16, NT = kDkvQueries / 8, DT = D / 8;
  extern __shared__ __align__(16) uint16_t tc_smem[];
  uint16_t* Ks = tc_smem;                // [kDkvKeys][LD]
  uint16_t* Vs = Ks + kDkvKeys * LD;     // [kDkvKeys][LD]
  uint16_t* Qs = Vs + kDkvKeys * LD;     // [kDkvQueries][LD]
  uint16_t* Gs = Qs + kDkvQueries * LD;  // [kDkvQueries][LD] (dO)
  __shared__ float lse_s[kDkvQueries], dvec_s[kDkvQueries];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = blockIdx.y, b = bh / p.Hkv, hk = bh % p.Hkv, group = p.Hq / p.Hkv;
  const int64_t n0 = int64_t(blockIdx.x) * kDkvKeys;
  const uint16_t* k = p.k + b * p.ks[0] + hk * p.ks[1];
  const uint16_t* v = p.v + b * p.vs[0] + hk * p.vs[1];
  const Pack2<T> pack;

  load_rows<kDkvKeys, D>(Ks, k, p.ks[2], n0, p.Tk, p.vec16);
  load_rows<kDkvKeys, D>(Vs, v, p.vs[2], n0, p.Tk, p.vec16);
  // This lane's two key rows; a padded or out-of-range key gets P = 0, so dK = dV = 0 there.
  const int64_t krow[2] = {n0 + frag_row(warp, lane, 0), n0 + frag_row(warp, lane, 2)};
  const bool kreal[2] = {key_real(p, b, krow[0]), key_real(p, b, krow[1])};
  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[dt][e] = dv[dt][e] = 0.f;

  const int64_t qbeg = query_begin(p, n0);
  for (int64_t hq = hk * group; hq < (hk + 1) * group; ++hq) {
    const uint16_t* q = p.q + b * p.qs[0] + hq * p.qs[1];
    const uint16_t* g = p.g + b * p.gs[0] + hq * p.gs[1];
    const int64_t rowbase = (b * p.Hq + hq) * p.Tq;
    for (int64_t t0 = qbeg; t0 < p.Tq; t0 += kDkvQueries) {
      __syncthreads();  // K/V loaded (first pass) / previous Q, dO tile consumed
      load_rows<kDkvQueries, D>(Qs, q, p.qs[2], t0, p.Tq, p.vec16);
      load_rows<kDkvQueries, D>(Gs, g, p.gs[2], t0, p.Tq, p.vec16);
      if (threadIdx.x < kDkvQueries) {  // same +inf convention as the dQ kernel
        const int64_t i = t0 + threadIdx.x;
        const float l = i < p.Tq ? p.lse[rowbase + i] : -INFINITY;
        lse_s[threadIdx.x] = l == -INFINITY ? INFINITY : l;
        dvec_s[threadIdx.x] = i < p.Tq ? p.dvec[rowbase + i] : 0.f;
      }
      __syncthreads();

      // S^T = K Q^T and dP^T = V dO^T (K, V rows as A; Q, dO stored [query][d]: B as [n][k]).
      float st[NT][4], dpt[NT][4];
      warp_gemm2_nt<T, NT, KD>(st, dpt, Ks + 16 * warp * LD, Vs + 16 * warp * LD, Qs, Gs, LD, lane);
      // P^T into st, dS^T = P^T * (dP^T - dvec[query]) into dpt.
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = 8 * nt + mma::c_elem(lane, e).col, hr = e >> 1;
          const int64_t i = t0 + col;
          const bool ok = kreal[hr] && i < p.Tq && causal_ok(p, i, krow[hr]);
          const float pt = ok ? __expf(st[nt][e] * p.scale - lse_s[col]) : 0.f;
          st[nt][e] = pt;
          dpt[nt][e] = pt * (dpt[nt][e] - dvec_s[col]);
        }
        // dV += P^T dO and dK += dS^T Q (dO, Q stored [query][d]: B as [k][n]).
#pragma unroll
      for (int ks = 0; ks < kDkvQueries / 16; ++ks) {
        uint32_t pa[4], da[4];
        mma::a_from_c(pa, st[2 * ks], st[2 * ks + 1], pack);
        mma::a_from_c(da, dpt[2 * ks], dpt[2 * ks + 1], pack);
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
          uint32_t gb[2], qb[2];
          mma::load_b_kn(gb, Gs + 16 * ks * LD + 8 * dt, LD, lane);
          mma::load_b_kn(qb, Qs + 16 * ks * LD + 8 * dt, LD, lane);
          mma_16816<T>(dv[dt], pa, gb);
          mma_16816<T>(dk[dt], da, qb);
        }
      }
    }
  }
  const int64_t base = (b * p.Hkv + hk) * p.Tk * D;
  store_rows<T, D>(p.dk + base, dk, n0 + 16 * warp, p.Tk, p.scale, lane);
  store_rows<T, D>(p.dv + base, dv, n0 + 16 * warp, p.Tk, 1.f, lane);
}

// ---------------- host side ----------------
bool env_tc_default() {
  const char* e = std::getenv("LD_ATTENTION_TC");
  return !(e && std::strcmp(e, "0") == 0);
}
bool& tc_flag() {
  static bool on = env_tc_default();
  return on;
}

void strides3(const Tensor& t, int64_t* s) {
  s[0] = t.stride(0);
  s[1] = t.stride(1);
  s[2] = t.stride(2);
}

// 16-byte loads need every row start aligned: base pointer and all three strides.
bool rows_aligned16(const Tensor& t) {
  return aligned16(t.raw_data()) && t.stride(0) % 8 == 0 && t.stride(1) % 8 == 0 &&
         t.stride(2) % 8 == 0;
}

TcParams make_tc_params(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& kpm,
                        bool causal, double scale) {
  TcParams p{};
  p.q = static_cast<const uint16_t*>(q.raw_data());
  p.k = static_cast<const uint16_t*>(k.raw_data());
  p.v = static_cast<const uint16_t*>(v.raw_data());
  p.B = q.size(0);
  p.Hq = q.size(1);
  p.Tq = q.size(2);
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
  p.vec16 = rows_aligned16(q) && rows_aligned16(k) && rows_aligned16(v);
  LD_CHECK(p.B * std::max(p.Hq, p.Hkv) <= 65535,
           "fused attention: B * heads = {} exceeds the grid's y limit (65535)",
           p.B * std::max(p.Hq, p.Hkv));
  return p;
}

template <class K>
void allow_smem(K kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    LD_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(bytes)));
}

constexpr size_t tile_bytes(int rows, int64_t D) { return size_t(rows) * (D + kPad) * 2; }

// Calls go(T{}, std::integral_constant<int, D>{}) for the supported (dtype, head dim).
template <class F>
void dispatch_tc(DType dt, int64_t D, F&& go) {
  auto by_d = [&](auto t) {
    if (D == 64) return go(t, std::integral_constant<int, 64>{});
    if (D == 128) return go(t, std::integral_constant<int, 128>{});
    LD_FAIL("fused attention (tensor cores): head dim {} is not 64 or 128", D);
  };
  if (dt == DType::bf16) return by_d(bf16{});
  if (dt == DType::f16) return by_d(f16{});
  LD_FAIL("fused attention (tensor cores): dtype {} is not bf16 or f16", dtype_name(dt));
}

}  // namespace

void set_attention_tensor_cores(bool on) { tc_flag() = on; }
bool attention_tensor_cores() { return tc_flag(); }

bool attention_tc_eligible(DType dt, int64_t head_dim) {
  if (!tc_flag() || (dt != DType::bf16 && dt != DType::f16)) return false;
  if (head_dim != 64 && head_dim != 128) return false;
  return device_available() && device_props().major >= 8;
}

Tensor flash_fwd_tc(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& kpm,
                    bool causal, double scale, Tensor& lse) {
  LD_NVTX_FN();
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  lse = Tensor::empty({q.size(0), q.size(1), q.size(2)}, DType::f32, q.device());
  if (out.numel() == 0) return out;
  TcParams p = make_tc_params(q, k, v, kpm, causal, scale);
  p.out = static_cast<uint16_t*>(out.raw_data());
  p.lse = dptr<float>(lse);
  const int64_t D = q.size(3);
  const size_t smem = tile_bytes(kFwdRows, D) + 2 * tile_bytes(kFwdKeys, D);
  const dim3 grid(static_cast<unsigned>(ceil_div(p.Tq, kFwdRows)),
                  static_cast<unsigned>(p.B * p.Hq));
  dispatch_tc(q.dtype(), D, [&](auto t, auto d) {
    auto kern = attn_fwd_tc_kernel<decltype(t), decltype(d)::value>;
    allow_smem(kern, smem);
    kern<<<grid, kThreadsTc, smem, current_stream()>>>(p);
    LD_CUDA_LAUNCH_CHECK();
  });
  return out;
}

std::vector<Tensor> flash_bwd_tc(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& kpm, bool causal, double scale, const Tensor& out,
                                 const Tensor& lse, const Tensor& gout) {
  LD_NVTX_FN();
  LD_CHECK(gout.dtype() == q.dtype() && gout.stride(3) == 1 && out.stride(3) == 1,
           "fused attention backward (tensor cores): gout {} / out {} must be {} with a "
           "contiguous last dim",
           gout.desc(), out.desc(), dtype_name(q.dtype()));
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
  TcParams p = make_tc_params(q, k, v, kpm, causal, scale);
  p.vec16 = p.vec16 && rows_aligned16(gout);
  p.o = static_cast<const uint16_t*>(out.raw_data());
  strides3(out, p.os);
  p.g = static_cast<const uint16_t*>(gout.raw_data());
  strides3(gout, p.gs);
  p.lse = dptr<float>(lse);
  p.dvec = dptr<float>(dvec);
  p.dq = static_cast<uint16_t*>(dq.raw_data());
  p.dk = static_cast<uint16_t*>(dk.raw_data());
  p.dv = static_cast<uint16_t*>(dv.raw_data());
  const int64_t D = q.size(3);
  cudaStream_t s = current_stream();
  dispatch_tc(q.dtype(), D, [&](auto t, auto d) {
    using T = decltype(t);
    constexpr int kD = decltype(d)::value;
    const int64_t rows = p.B * p.Hq * p.Tq;
    attn_dvec_tc_kernel<T, kD>
        <<<static_cast<unsigned>(ceil_div(rows, kWarpsTc)), kThreadsTc, 0, s>>>(p);
    LD_CUDA_LAUNCH_CHECK();

    const size_t smem_q = 2 * tile_bytes(kDqRows, D) + 2 * tile_bytes(kDqKeys, D);
    auto kq = attn_dq_tc_kernel<T, kD>;
    allow_smem(kq, smem_q);
    const dim3 gq(static_cast<unsigned>(ceil_div(p.Tq, kDqRows)),
                  static_cast<unsigned>(p.B * p.Hq));
    kq<<<gq, kThreadsTc, smem_q, s>>>(p);
    LD_CUDA_LAUNCH_CHECK();

    const size_t smem_kv = 2 * tile_bytes(kDkvKeys, D) + 2 * tile_bytes(kDkvQueries, D);
    auto kkv = attn_dkv_tc_kernel<T, kD>;
    allow_smem(kkv, smem_kv);
    const dim3 gkv(static_cast<unsigned>(ceil_div(p.Tk, kDkvKeys)),
                   static_cast<unsigned>(p.B * p.Hkv));
    kkv<<<gkv, kThreadsTc, smem_kv, s>>>(p);
    LD_CUDA_LAUNCH_CHECK();
  });
  return {dq, dk, dv};
}

}  // namespace ld::cuda
