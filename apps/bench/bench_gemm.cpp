// CPU GEMM benchmark: GFLOP/s of ld::matmul / ld::linear next to a plain cblas_sgemm on the same
// data in the same run, at transformer shapes; the ratio is the tensor layer's overhead.
// Usage: ld_bench_gemm [--min-seconds S]   (threads: OMP_NUM_THREADS; OpenBLAS follows it)
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/threads.h"

using namespace ld;

namespace {

double g_min_seconds = 0.5;

// Median seconds per call: 2 warm-up calls, then at least 5 calls and g_min_seconds of runs.
double time_call(const std::function<void()>& f) {
  f();
  f();
  std::vector<double> t;
  double total = 0;
  while (t.size() < 5 || total < g_min_seconds) {
    auto a = std::chrono::steady_clock::now();
    f();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    t.push_back(s);
    total += s;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Tensor randt(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return rand_normal(s, 0.0, 1.0, g, DType::f32);
}

void row(const char* what, const char* shape, double flops, double t_ld, double t_blas,
         const char* blas_what) {
  double g_ld = flops / t_ld * 1e-9, g_blas = flops / t_blas * 1e-9;
  std::printf("%-9s %-34s %10.1f %10.1f   %6.3f   %s\n", what, shape, g_ld, g_blas, t_ld / t_blas,
              blas_what);
}

// Plain 2-D products: ld::matmul(x, W) with W [k, n] and ld::linear(x, W) with W [n, k].
void bench_2d(int64_t m, int64_t k, int64_t n) {
  Tensor x = randt({m, k}, 1), w_kn = randt({k, n}, 2), w_nk = randt({n, k}, 3);
  Tensor out = Tensor::empty({m, n});
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  double flops = 2.0 * m * n * k;
  std::string shape = fmt::format("[{}x{}]x[{}x{}]", m, k, k, n);
  NoGradGuard ng;
  double t_blas_nn = time_call([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, xp, k, w_kn.data<float>(),
                n, 0.f, op, n);
  });
  double t_mm = time_call([&] { (void)matmul(x, w_kn); });
  row("matmul", shape.c_str(), flops, t_mm, t_blas_nn, "sgemm NN");
  double t_blas_nt = time_call([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.f, xp, k, w_nk.data<float>(), k,
                0.f, op, n);
  });
  double t_lin = time_call([&] { (void)linear(x, w_nk); });
  row("linear", shape.c_str(), flops, t_lin, t_blas_nt, "sgemm NT");
  Tensor bias = randt({n}, 4);
  double t_linb = time_call([&] { (void)linear(x, w_nk, bias); });
  row("linear+b", shape.c_str(), flops, t_linb, t_blas_nt, "sgemm NT (no bias)");
}

// Batched attention products over B*H matrices: scores = q k^T, ctx = p v.
void bench_attention(int64_t B, int64_t H, int64_t T, int64_t D) {
  Tensor q = randt({B, H, T, D}, 5), k = randt({B, H, T, D}, 6), p = randt({B, H, T, T}, 7),
         v = randt({B, H, T, D}, 8);
  Tensor s_out = Tensor::empty({B * H, T, T}), c_out = Tensor::empty({B * H, T, D});
  const int64_t nb = B * H;
  NoGradGuard ng;
  auto loop = [&](bool parallel, bool qk) {
    const float* a = qk ? q.data<float>() : p.data<float>();
    const float* b = qk ? k.data<float>() : v.data<float>();
    float* c = qk ? s_out.data<float>() : c_out.data<float>();
    const int64_t kk = qk ? D : T, nn = qk ? T : D;
    // b is k [T, D] (used transposed) or v [T, D]: batch stride T*D, leading dim D either way.
    auto one = [&](int64_t i) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, qk ? CblasTrans : CblasNoTrans, T, nn, kk, 1.f,
                  a + i * T * kk, kk, b + i * T * D, D, 0.f, c + i * T * nn, nn);
    };
    if (parallel) {
      BlasSingleThreadGuard single;
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nb; ++i) one(i);
    } else {
      for (int64_t i = 0; i < nb; ++i) one(i);
    }
  };
  for (bool qk : {true, false}) {
    double flops = 2.0 * nb * T * T * D;
    std::string shape = qk ? fmt::format("{}x[{}x{}]x[{}x{}] q@k^T", nb, T, D, D, T)
                           : fmt::format("{}x[{}x{}]x[{}x{}] p@v", nb, T, T, T, D);
    double t_seq = time_call([&] { loop(false, qk); });
    double t_par = time_call([&] { loop(true, qk); });
    double t_ld = time_call([&] {
      if (qk)
        (void)matmul(q, k.transpose(-2, -1));
      else
        (void)matmul(p, v);
    });
    row("matmul", shape.c_str(), flops, t_ld, t_seq, "sgemm loop");
    row("", "", flops, t_ld, t_par, "sgemm loop, omp over batch");
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--min-seconds") && i + 1 < argc) {
      g_min_seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--min-seconds S]\n", argv[0]);
      return 2;
    }
  }
  init_threads();
  std::printf("CPU GEMM, f32, threads: OpenMP %d, OpenBLAS %d; %s\n", omp_get_max_threads(),
              openblas_get_num_threads(), openblas_get_config());
  std::printf(
      "GFLOP/s (median); ratio = ld time / BLAS time (1.000 = no tensor-layer overhead)\n\n");
  std::printf("%-9s %-34s %10s %10s   %6s   %s\n", "op", "shape", "ld", "BLAS", "ratio",
              "BLAS call");
  try {
    bench_2d(2048, 768, 768);
    bench_2d(2048, 768, 3072);
    bench_2d(2048, 3072, 768);
    bench_attention(16, 12, 128, 64);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
