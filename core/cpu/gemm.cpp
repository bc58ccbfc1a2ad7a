// CPU GEMM through OpenBLAS (sgemm/dgemm); transposed views go to BLAS without a copy.
#include <cblas.h>

#include "core/cpu/loops.h"
#include "core/kernels.h"
#include "core/threads.h"

namespace ld::cpu {

namespace {

// Products up to this many multiply-adds count as small (128x128x256 = 2^22).
constexpr int64_t kSmallGemmMacs = int64_t(1) << 22;

// Describes a strided [m, k] matrix for BLAS: row-major with leading dim, possibly transposed.
struct MatLayout {
  bool trans = false;
  int64_t ld = 0;
};

bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, MatLayout& l) {
  if (cs == 1 && (rs >= std::max<int64_t>(cols, 1) || rows == 1)) {
    l = {false, rows == 1 ? std::max<int64_t>(cols, 1) : rs};
    return true;
  }
  if (rs == 1 && (cs >= std::max<int64_t>(rows, 1) || cols == 1)) {
    l = {true, cols == 1 ? std::max<int64_t>(rows, 1) : cs};
    return true;
  }
  return false;
}

template <class T>
void gemm_one(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
              const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Runs one(i) for i in [0, B): on OpenMP threads with single-threaded BLAS, or in order.
template <class F>
void run_batches(int64_t B, bool parallel, const F& one) {
  if (parallel) {
    BlasSingleThreadGuard single;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < B; ++i) one(i);
  } else {
    for (int64_t i = 0; i < B; ++i) one(i);
  }
}

}  // namespace

void bmm(const Tensor& out, const Tensor& a_in, const Tensor& b_in, double alpha, double beta) {
  const int64_t B = out.size(0), m = out.size(1), n = out.size(2), k = a_in.size(2);
  if (B == 0 || m == 0 || n == 0) return;  // nothing to write (BLAS rejects ldc = 0)
  init_threads();
  Tensor a = a_in, b = b_in;
  MatLayout la, lb;
  if (!blas_layout(m, k, a.stride(1), a.stride(2), la)) {
    a = a.contiguous();
    blas_layout(m, k, a.stride(1), a.stride(2), la);
  }
  if (!blas_layout(k, n, b.stride(1), b.stride(2), lb)) {
    b = b.contiguous();
    blas_layout(k, n, b.stride(1), b.stride(2), lb);
  }
  LD_CHECK(out.stride(2) == 1 && out.stride(1) == n, "bmm: output must be contiguous, got {}",
           out.desc());
  LD_DISPATCH_FLOAT(out.dtype(), "matmul", [&] {
    using T = scalar_t;
    const T* ap = static_cast<const T*>(a.raw_data());
    const T* bp = static_cast<const T*>(b.raw_data());
    T* cp = static_cast<T*>(out.raw_data());
    if (k == 0) {
      for (int64_t i = 0; i < B * m * n; ++i) cp[i] = beta == 0 ? T(0) : T(beta) * cp[i];
      return;
    }
    auto one = [&](int64_t i) {
      gemm_one<T>(la.trans, lb.trans, m, n, k, T(alpha), ap + i * a.stride(0), la.ld,
                  bp + i * b.stride(0), lb.ld, T(beta), cp + i * m * n, n);
    };
    // Many small products (attention: B*H matrices of T x D): one OpenMP loop over the batch with
    // single-threaded BLAS calls. Threaded BLAS would hand each small GEMM to its pool and back,
    // B times; measured on 2 loaded cores (apps/bench/bench_gemm), that loop collapsed to 1.7
    // GFLOP/s in half the runs while the batch-parallel loop held 8-11.
    const bool batch_parallel =
        B >= 2 && m * n * k <= kSmallGemmMacs && omp_get_max_threads() > 1 && !omp_in_parallel();
    run_batches(B, batch_parallel, one);
  });
}

}  // namespace ld::cpu
