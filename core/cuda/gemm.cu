// CUDA GEMM through cuBLASLt: row-major [B, m, k] @ [B, k, n] mapped to column-major
// D^T = op(b) op(a); bf16/f16 inputs accumulate in f32, f32 optionally in TF32, f64 in f64.
// Strided batches (stride-0 broadcast folded into one GEMM or looped), fused bias/GELU epilogues
// for linear, a per-shape cache of descriptors and heuristic results, and a cublasGemmEx fallback
// when the heuristic offers nothing for a layout.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <map>
#include <memory>
#include <mutex>

#include "core/cuda/common.cuh"
#include "core/cuda/cuda_ops.h"
#include "core/kernels.h"

namespace ld::cuda {

namespace {

constexpr size_t kWorkspace = size_t(32) << 20;

struct Handles {
  cublasLtHandle_t lt = nullptr;
  cublasHandle_t blas = nullptr;
  std::map<cudaStream_t, std::unique_ptr<DeviceBuffer>> workspaces;
  std::mutex mu;
};
Handles& handles() {
  static Handles* h = [] {
    auto* r = new Handles;
    LD_CUBLAS_CHECK(cublasLtCreate(&r->lt));
    LD_CUBLAS_CHECK(cublasCreate(&r->blas));
    return r;
  }();
  return *h;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::f64:
      return CUDA_R_64F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
    default:
      LD_FAIL("GEMM: dtype {} not supported on CUDA", dtype_name(t));
  }
}

// Column-major operand for cuBLASLt: rows x cols stored with leading dim ld, op applied.
struct Operand {
  const void* ptr;
  bool trans;
  int64_t rows, cols, ld, batch_stride;
};

enum class Epi { None, Bias, Gelu, GeluBias };

struct Problem {
  DType dt;
  Operand A, B;  // D (m x n col-major) = op(A) op(B)
  void* D;
  int64_t m, n, k, ldd, d_stride, batch;
  double alpha, beta;
  Epi epi = Epi::None;
  const void* bias = nullptr;
};

int align_of(const void* p) {
  uintptr_t v = reinterpret_cast<uintptr_t>(p);
  int a = 256;
  while (a > 1 && (v % a)) a >>= 1;
  return a;
}

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
};

cublasLtMatrixLayout_t make_layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld,
                                   int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t l;
  LD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, rows, cols, ld));
  if (batch > 1) {
    int32_t bc = static_cast<int32_t>(batch);
    LD_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof(bc)));
    LD_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                     &stride, sizeof(stride)));
  }
  return l;
}

cublasComputeType_t compute_type(DType dt) {
  if (dt == DType::f64) return CUBLAS_COMPUTE_64F;
  if (dt == DType::f32 && allow_tf32()) return CUBLAS_COMPUTE_32F_FAST_TF32;
  return CUBLAS_COMPUTE_32F;
}

Plan& plan_for(const Problem& p) {
  static std::map<std::string, Plan>* cache = new std::map<std::string, Plan>;
  const std::string key =
      fmt::format("{}|{}|{}{}|{},{},{},{}|{},{},{},{}|{},{},{}|{},{},{}|{}|{},{},{},{}", int(p.dt),
                  int(compute_type(p.dt)), p.A.trans, p.B.trans, p.A.rows, p.A.cols, p.A.ld,
                  p.A.batch_stride, p.B.rows, p.B.cols, p.B.ld, p.B.batch_stride, p.m, p.n, p.ldd,
                  p.d_stride, p.batch, p.beta != 0, int(p.epi), align_of(p.A.ptr),
                  align_of(p.B.ptr), align_of(p.D), p.bias ? align_of(p.bias) : 0);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  Plan& pl = (*cache)[key];
  const cudaDataType_t t = cuda_type(p.dt);
  const cudaDataType_t scale = p.dt == DType::f64 ? CUDA_R_64F : CUDA_R_32F;
  LD_CUBLAS_CHECK(cublasLtMatmulDescCreate(&pl.op, compute_type(p.dt), scale));
  cublasOperation_t ta = p.A.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t tb = p.B.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  LD_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  LD_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (p.epi != Epi::None) {
    cublasLtEpilogue_t e = p.epi == Epi::Bias   ? CUBLASLT_EPILOGUE_BIAS
                           : p.epi == Epi::Gelu ? CUBLASLT_EPILOGUE_GELU
                                                : CUBLASLT_EPILOGUE_GELU_BIAS;
    LD_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
    if (p.bias)
      LD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &p.bias, sizeof(p.bias)));
  }
  pl.la = make_layout(t, p.A.rows, p.A.cols, p.A.ld, p.batch, p.A.batch_stride);
  pl.lb = make_layout(t, p.B.rows, p.B.cols, p.B.ld, p.batch, p.B.batch_stride);
  pl.lc = make_layout(t, p.m, p.n, p.ldd, p.batch, p.d_stride);
  cublasLtMatmulPreference_t pref;
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = kWorkspace;
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  // Alignment of the actual pointers: the default assumes 256-byte alignment.
  uint32_t aa = align_of(p.A.ptr), ab = align_of(p.B.ptr), ad = align_of(p.D);
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof(aa)));
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof(ab)));
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ad, sizeof(ad)));
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ad, sizeof(ad)));
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handles().lt, pl.op, pl.la, pl.lb, pl.lc,
                                                     pl.lc, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
    pl.algo = res.algo;
    pl.ok = true;
  }
  return pl;
}

void* workspace(cudaStream_t s) {
  auto& ws = handles().workspaces[s];
  if (!ws) ws = std::make_unique<DeviceBuffer>(kWorkspace);
  return ws->get();
}

// Legacy cuBLAS fallback for layouts cuBLASLt declines (no epilogue).
void run_fallback(const Problem& p, cudaStream_t s) {
  LD_CHECK(p.epi == Epi::None, "GEMM: no cuBLASLt algorithm for a fused epilogue");
  cublasHandle_t h = handles().blas;
  LD_CUBLAS_CHECK(cublasSetStream(h, s));
  const cudaDataType_t t = cuda_type(p.dt);
  const float af = float(p.alpha), bf = float(p.beta);
  const void* alpha = p.dt == DType::f64 ? static_cast<const void*>(&p.alpha) : &af;
  const void* beta = p.dt == DType::f64 ? static_cast<const void*>(&p.beta) : &bf;
  LD_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h, p.A.trans ? CUBLAS_OP_T : CUBLAS_OP_N, p.B.trans ? CUBLAS_OP_T : CUBLAS_OP_N, p.m, p.n,
      p.k, alpha, p.A.ptr, t, p.A.ld, p.A.batch_stride, p.B.ptr, t, p.B.ld, p.B.batch_stride, beta,
      p.D, t, p.ldd, p.d_stride, p.batch, compute_type(p.dt), CUBLAS_GEMM_DEFAULT));
}

void run(const Problem& p) {
  cudaStream_t s = current_stream();
  Handles& h = handles();
  std::lock_guard<std::mutex> lk(h.mu);
  Plan& pl = plan_for(p);
  if (!pl.ok) return run_fallback(p, s);
  if (p.bias)  // the cached descriptor may hold another call's bias pointer
    LD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(pl.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                   &p.bias, sizeof(p.bias)));
  const float af = float(p.alpha), bf = float(p.beta);
  const void* alpha = p.dt == DType::f64 ? static_cast<const void*>(&p.alpha) : &af;
  const void* beta = p.dt == DType::f64 ? static_cast<const void*>(&p.beta) : &bf;
  LD_CUBLAS_CHECK(cublasLtMatmul(h.lt, pl.op, alpha, p.A.ptr, pl.la, p.B.ptr, pl.lb, beta, p.D,
                                 pl.lc, p.D, pl.lc, &pl.algo, workspace(s), kWorkspace, s));
}

// Row-major [r, c] view with strides (rs, cs) as a column-major operand of the transposed
// product; returns false when neither stride is usable (the caller makes it contiguous).
bool as_operand(const Tensor& t, int64_t r, int64_t c, int64_t rs, int64_t cs, Operand& o) {
  if (cs == 1 && (rs >= std::max<int64_t>(c, 1) || r == 1)) {
    // row-major [r, c] = column-major [c, r] with ld rs: used as is (no transpose)
    o = {t.raw_data(), false, c, r, std::max<int64_t>(r == 1 ? c : rs, std::max<int64_t>(c, 1)), 0};
    return true;
  }
  if (rs == 1 && (cs >= std::max<int64_t>(r, 1) || c == 1)) {
    // column-major [r, c] with ld cs, transposed to act as [c, r]
    o = {t.raw_data(), true, r, c, std::max<int64_t>(c == 1 ? r : cs, std::max<int64_t>(r, 1)), 0};
    return true;
  }
  return false;
}

}  // namespace

void bmm(const Tensor& out, const Tensor& a_in, const Tensor& b_in, double alpha, double beta) {
  LD_NVTX_FN();
  const int64_t B = out.size(0), m = out.size(1), n = out.size(2), k = a_in.size(2);
  LD_CHECK(out.is_contiguous(), "bmm: output must be contiguous, got {}", out.desc());
  LD_CHECK(a_in.dtype() == out.dtype() && b_in.dtype() == out.dtype(),
           "bmm: dtypes differ: {} @ {} -> {}", a_in.desc(), b_in.desc(), out.desc());
  if (B == 0 || m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0) {
      LD_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.numel() * dtype_size(out.dtype()),
                                    current_stream()));
    } else {
      unary(UnaryOp::MulScalar, out, out, beta);
    }
    return;
  }
  Tensor a = a_in, b = b_in;
  Operand oa, ob;
  if (!as_operand(a, m, k, a.stride(1), a.stride(2), oa)) {
    a = contiguous(a);
    as_operand(a, m, k, a.stride(1), a.stride(2), oa);
  }
  if (!as_operand(b, k, n, b.stride(1), b.stride(2), ob)) {
    b = contiguous(b);
    as_operand(b, k, n, b.stride(1), b.stride(2), ob);
  }
  // D^T [n, m] (column-major, ld n) = op(b-operand) [n, k] @ op(a-operand) [k, m].
  Problem p{out.dtype(), ob, oa, out.raw_data(), n, m, k, n, m * n, B, alpha, beta};
  const int64_t sa = B > 1 ? a.stride(0) : 0, sb = B > 1 ? b.stride(0) : 0;
  p.A.batch_stride = sb;
  p.B.batch_stride = sa;
  if (B > 1 && sb == 0 && !oa.trans && sa == m * oa.ld) {
    // b shared by the batch and a's rows nest across batches: one GEMM with m' = B * m.
    p.B.cols = B * m;
    p.n = B * m;
    p.batch = 1;
    p.d_stride = 0;
    p.B.batch_stride = 0;
    p.A.batch_stride = 0;
    return run(p);
  }
  if (B > 1 && (sa == 0 || sb == 0)) {
    // Other broadcasts: one GEMM per batch (stride-0 batches are not relied on in cuBLASLt).
    const size_t es = dtype_size(out.dtype());
    Problem q = p;
    q.batch = 1;
    q.A.batch_stride = q.B.batch_stride = q.d_stride = 0;
    for (int64_t i = 0; i < B; ++i) {
      q.A.ptr = static_cast<const char*>(ob.ptr) + i * sb * es;
      q.B.ptr = static_cast<const char*>(oa.ptr) + i * sa * es;
      q.D = static_cast<char*>(out.raw_data()) + i * m * n * es;
      run(q);
    }
    return;
  }
  run(p);
}

void linear_fwd(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, bool gelu) {
  LD_NVTX_FN();
  const int64_t N = x.size(0), in = x.size(1), out_f = w.size(0);
  LD_CHECK(y.is_contiguous() && y.size(0) == N && y.size(1) == out_f,
           "linear_fwd: output {} for x {} and w {}", y.desc(), x.desc(), w.desc());
  if (N == 0 || out_f == 0) return;
  auto usable = [](const Tensor& t) {
    return t.stride(1) == 1 && (t.stride(0) >= t.size(1) || t.size(0) == 1);
  };
  Tensor xc = usable(x) ? x : contiguous(x), wc = usable(w) ? w : contiguous(w);
  // D^T [out, N] = W [out, in] (col-major view of row-major W is [in, out]: transposed) @ X^T.
  Operand ow{wc.raw_data(), true, in, out_f, std::max<int64_t>(wc.stride(0), in), 0};
  Operand ox{xc.raw_data(), false, in, N, std::max<int64_t>(xc.stride(0), in), 0};
  Problem p{y.dtype(), ow, ox, y.raw_data(), out_f, N, in, out_f, 0, 1, 1.0, 0.0};
  p.bias = bias.defined() ? bias.raw_data() : nullptr;
  p.epi = gelu ? (p.bias ? Epi::GeluBias : Epi::Gelu) : (p.bias ? Epi::Bias : Epi::None);
  LD_CHECK(in > 0, "linear_fwd: in_features 0 is not supported on CUDA");
  bool fused_ok;
  {
    Handles& h = handles();
    std::lock_guard<std::mutex> lk(h.mu);
    fused_ok = plan_for(p).ok;
  }
  if (fused_ok || p.epi == Epi::None) return run(p);
  // No fused algorithm: plain GEMM, then bias and GELU as elementwise passes.
  Problem q = p;
  q.epi = Epi::None;
  q.bias = nullptr;
  run(q);
  if (bias.defined()) binary(BinaryOp::Add, y, y, bias, 0.0);
  if (gelu) unary(UnaryOp::GeluTanh, y, y, 0.0);
}

void lora_add_up(const Tensor& y, const Tensor& u, const Tensor& B, double s) {
  LD_NVTX_FN();
  // y[N, out] += s * u[N, r] @ B[out, r]^T: bmm with beta = 1 on a [1, N, out] view.
  const int64_t N = u.size(0), r = u.size(1), out_f = B.size(0);
  Tensor y3 =
      Tensor::make(y.storage(), {1, N, out_f}, {N * out_f, out_f, 1}, y.offset(), y.dtype());
  Tensor u3 =
      Tensor::make(u.storage(), {1, N, r}, {0, u.stride(0), u.stride(1)}, u.offset(), u.dtype());
  Tensor bt = Tensor::make(B.storage(), {1, r, out_f}, {0, B.stride(1), B.stride(0)}, B.offset(),
                           B.dtype());
  bmm(y3, u3, bt, s, 1.0);
}

}  // namespace ld::cuda
