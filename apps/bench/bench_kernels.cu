// CUDA kernel benchmarks for tools/gpu_check.sh. Every figure is reported with the limit measured
// in the same run: GEMM TFLOP/s vs cuBLASLt's best algorithm from a heuristic sweep; softmax,
// LayerNorm, RMSNorm, AdamW GB/s vs a device-to-device cudaMemcpy; attention fwd+bwd TFLOP/s vs the
// bf16 GEMM rate and next to cuDNN's fused SDPA (null when this build lacks it or cuDNN declines);
// fused LoRA vs the unfused composition.
// Usage: ld_bench_kernels [--json out.json]
#include <cublasLt.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/cuda/attention.h"
#include "core/cuda/attention_cudnn.h"
#include "core/cuda/attention_tc.h"
#include "core/cuda/cuda_ops.h"
#include "core/cuda/runtime.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/ops/lora_linear.h"

using namespace ld;

namespace {

// Median milliseconds of `iters` timed runs after `warm` untimed ones (CUDA events).
double time_ms(const std::function<void()>& f, int iters = 10, int warm = 3) {
  for (int i = 0; i < warm; ++i) f();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    cuda::Event a, b;
    a.record();
    f();
    b.record();
    b.synchronize();
    ms.push_back(b.elapsed_ms(a));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

Tensor randn_dev(const Shape& s, DType dt, uint64_t seed, double std = 1.0) {
  Generator g(seed);
  return rand_normal(s, 0.0, std, g, DType::f32).to(cuda_device(), dt);
}

std::vector<std::string> g_json;
void emit(const std::string& key, const std::string& obj) {
  std::printf("%-28s %s\n", key.c_str(), obj.c_str());
  g_json.push_back(fmt::format("\"{}\": {}", key, obj));
}

// cuBLASLt best: every algorithm the heuristic offers (up to 32) for C[n,m] = A^T B, timed.
double cublaslt_best_ms(int64_t M, int64_t N, int64_t K, const Tensor& a, const Tensor& b,
                        const Tensor& c) {
  cublasLtHandle_t h;
  LD_CUBLAS_CHECK(cublasLtCreate(&h));
  cublasLtMatmulDesc_t op;
  LD_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t tn = CUBLAS_OP_N;
  LD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &tn, sizeof(tn)));
  LD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tn, sizeof(tn)));
  // Row-major out[M, N] = a[M, K] b[K, N]  <=>  column-major out^T[N, M] = b^T[N, K] a^T[K, M].
  cublasLtMatrixLayout_t la, lb, lc;
  LD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, N, K, N));
  LD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, K, M, K));
  LD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, N, M, N));
  cublasLtMatmulPreference_t pref;
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  uint64_t ws = size_t(64) << 20;
  cuda::DeviceBuffer wsb(ws);
  LD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  cublasLtMatmulHeuristicResult_t res[32];
  int found = 0;
  LD_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, lc, lc, pref, 32, res, &found));
  float alpha = 1, beta = 0;
  double best = 1e30;
  for (int i = 0; i < found; ++i) {
    double ms = time_ms(
        [&] {
          LD_CUBLAS_CHECK(cublasLtMatmul(h, op, &alpha, b.raw_data(), la, a.raw_data(), lb, &beta,
                                         c.raw_data(), lc, c.raw_data(), lc, &res[i].algo,
                                         wsb.get(), ws, cuda::current_stream()));
        },
        5, 2);
    best = std::min(best, ms);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
  cublasLtDestroy(h);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--json") json_path = argv[i + 1];
  if (!cuda::device_available()) {
    std::fprintf(stderr, "no CUDA device: %s\n", cuda::unavailable_reason().c_str());
    return 2;
  }
  try {
    emit("device", fmt::format("\"{}\"", cuda::device_description()));
    // ---- limits measured here ----
    const size_t bytes = size_t(1) << 30;
    cuda::DeviceBuffer m0(bytes), m1(bytes);
    double cp_ms = time_ms([&] {
      LD_CUDA_CHECK(cudaMemcpyAsync(m1.get(), m0.get(), bytes, cudaMemcpyDeviceToDevice,
                                    cuda::current_stream()));
    });
    const double memcpy_gbs = 2.0 * bytes / (cp_ms * 1e6);
    emit("memcpy_d2d", fmt::format("{{\"GB_per_s\": {:.1f}}}", memcpy_gbs));

    const int64_t M = 8192, N = 8192, K = 8192;
    Tensor a = randn_dev({M, K}, DType::bf16, 1), b = randn_dev({K, N}, DType::bf16, 2);
    Tensor c = Tensor::empty({M, N}, DType::bf16, cuda_device());
    const double flops = 2.0 * M * N * K;
    double best_ms = cublaslt_best_ms(M, N, K, a, b, c);
    Tensor c3 = c.view({1, M, N});
    double ours_ms = time_ms([&] { cuda::bmm(c3, a.view({1, M, K}), b.view({1, K, N}), 1, 0); });
    const double gemm_tflops = flops / (ours_ms * 1e9), best_tflops = flops / (best_ms * 1e9);
    emit("gemm_bf16_8192", fmt::format("{{\"TFLOP_per_s\": {:.1f}, \"cublaslt_best_TFLOP_per_s\": "
                                       "{:.1f}, \"ratio\": {:.3f}}}",
                                       gemm_tflops, best_tflops, gemm_tflops / best_tflops));

    // ---- memory-bound kernels vs memcpy ----
    auto membound = [&](const char* name, double nbytes, const std::function<void()>& f) {
      double ms = time_ms(f);
      double gbs = nbytes / (ms * 1e6);
      emit(name, fmt::format("{{\"GB_per_s\": {:.1f}, \"memcpy_GB_per_s\": {:.1f}, \"ratio\": "
                             "{:.3f}}}",
                             gbs, memcpy_gbs, gbs / memcpy_gbs));
    };
    const int64_t R = 16384, C = 4096;
    Tensor x = randn_dev({R, C}, DType::bf16, 3),
           y = Tensor::empty({R, C}, DType::bf16, cuda_device());
    Tensor w = randn_dev({C}, DType::bf16, 4), bb = randn_dev({C}, DType::bf16, 5);
    Tensor mean = Tensor::empty({R}, DType::f32, cuda_device()),  // statistics are f32
        rstd = Tensor::empty({R}, DType::f32, cuda_device());
    const double rw = 2.0 * R * C * 2;
    membound("softmax_bf16", rw, [&] { cuda::softmax_fwd(y, x, Tensor(), false); });
    membound("layer_norm_bf16", rw, [&] { cuda::layer_norm_fwd(y, mean, rstd, x, w, bb, 1e-5); });
    membound("rms_norm_bf16", rw, [&] { cuda::rms_norm_fwd(y, rstd, x, w, 1e-6); });
    const int64_t P = 64 << 20;
    Tensor p = randn_dev({P}, DType::f32, 6), g = randn_dev({P}, DType::f32, 7),
           m = Tensor::zeros({P}, DType::f32, cuda_device()),
           v = Tensor::zeros({P}, DType::f32, cuda_device());
    int64_t step = 1;
    membound("adamw_f32", 7.0 * 4 * P,
             [&] { cuda::adamw_multi({p}, {g}, {m}, {v}, 1e-4, 0.9, 0.999, 1e-8, 0.01, step++); });

    // ---- attention fwd+bwd vs the bf16 GEMM rate ----
    {
      const int64_t B = 4, H = 16, T = 2048, D = 64;
      Tensor q = randn_dev({B, H, T, D}, DType::bf16, 8),
             k = randn_dev({B, H, T, D}, DType::bf16, 9),
             vv = randn_dev({B, H, T, D}, DType::bf16, 10);
      for (Tensor* t : {&q, &k, &vv}) t->set_requires_grad(true);
      Tensor go = randn_dev({B, H, T, D}, DType::bf16, 11);
      // cuDNN's fused SDPA on the same problem: TFLOP/s as a JSON number, or null.
      auto cudnn_tflops = [&](bool causal, bool bwd, double flop) -> std::string {
        if (!cuda::cudnn_sdpa_built()) return "null";
        cuda::set_attention_impl(cuda::AttentionImpl::Cudnn);
        const int64_t before = cuda::cudnn_sdpa_calls();
        double ms = 0;
        try {  // a cuDNN failure costs this figure only
          ms = time_ms(
              [&] {
                if (bwd) {
                  scaled_dot_product_attention(q, k, vv, Tensor(), causal).backward(go);
                } else {
                  NoGradGuard ng;
                  scaled_dot_product_attention(q, k, vv, Tensor(), causal);
                }
              },
              5, 2);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "cuDNN SDPA failed: %s\n", e.what());
        }
        const bool served = ms > 0 && cuda::cudnn_sdpa_calls() > before;
        cuda::set_attention_impl(cuda::AttentionImpl::Fused);
        return served ? fmt::format("{:.1f}", flop / (ms * 1e9)) : "null";
      };
      for (bool causal : {false, true}) {
        cuda::set_attention_impl(cuda::AttentionImpl::Fused);
        double ms = time_ms(
            [&] {
              Tensor o = scaled_dot_product_attention(q, k, vv, Tensor(), causal);
              o.backward(go);
            },
            5, 2);
        const double f = 4.0 * B * H * T * T * D * (causal ? 0.5 : 1.0) * 3.5;  // fwd + 2.5x bwd
        const double tf = f / (ms * 1e9);
        emit(causal ? "attention_fwd_bwd_causal" : "attention_fwd_bwd",
             fmt::format("{{\"TFLOP_per_s\": {:.1f}, \"gemm_TFLOP_per_s\": {:.1f}, "
                         "\"ratio_vs_gemm\": {:.3f}, \"cudnn_sdpa_TFLOP_per_s\": {}}}",
                         tf, gemm_tflops, tf / gemm_tflops, cudnn_tflops(causal, true, f)));
      }
      NoGradGuard ng;
      double ms = time_ms([&] { scaled_dot_product_attention(q, k, vv); }, 5, 2);
      const double tf = 4.0 * B * H * T * T * D / (ms * 1e9);
      emit("attention_fwd",
           fmt::format("{{\"TFLOP_per_s\": {:.1f}, \"ratio_vs_gemm\": {:.3f}, "
                       "\"cudnn_sdpa_TFLOP_per_s\": {}}}",
                       tf, tf / gemm_tflops, cudnn_tflops(false, false, 4.0 * B * H * T * T * D)));
    }

    // ---- fused attention by kernel family: tensor cores (attention_tc.cu) vs CUDA cores ----
    // bf16, B 4, H 16, T 2048, head dims 64 and 128, forward and forward + backward, with and
    // without the causal mask. FLOPs as flash-attention counts them: forward 4 B H T^2 D (Q K^T and
    // P V), backward 2.5x the forward, halved under the causal mask (our backward does more: it
    // recomputes Q K^T in both its kernels). Ratios against the bf16 GEMM of this run: cuBLASLt's
    // best algorithm (ratio_vs_cublaslt) and our cuda::bmm (ratio_vs_gemm).
    {
      const int64_t B = 4, H = 16, T = 2048;
      for (int64_t D : {64, 128}) {
        Tensor q = randn_dev({B, H, T, D}, DType::bf16, 20),
               k = randn_dev({B, H, T, D}, DType::bf16, 21),
               vv = randn_dev({B, H, T, D}, DType::bf16, 22);
        for (Tensor* t : {&q, &k, &vv}) t->set_requires_grad(true);
        Tensor go = randn_dev({B, H, T, D}, DType::bf16, 23);
        cuda::set_attention_impl(cuda::AttentionImpl::Fused);
        for (bool tc : {true, false}) {
          cuda::set_attention_tensor_cores(tc);
          const std::string path = tc ? "attention_tc" : "attention_cuda_core";
          if (tc && !cuda::attention_tc_eligible(DType::bf16, D)) {
            emit(fmt::format("{}_d{}", path, D),
                 "{\"TFLOP_per_s\": null, \"note\": \"tensor cores need sm_80+\"}");
            continue;
          }
          for (bool causal : {false, true}) {
            const double fwd_flops = 4.0 * B * H * T * T * D * (causal ? 0.5 : 1.0);
            auto report = [&](const char* what, double flops, double ms) {
              const double tf = flops / (ms * 1e9);
              emit(fmt::format("{}_d{}_{}{}", path, D, what, causal ? "_causal" : ""),
                   fmt::format("{{\"TFLOP_per_s\": {:.1f}, \"ms\": {:.3f}, "
                               "\"cublaslt_best_TFLOP_per_s\": {:.1f}, \"ratio_vs_cublaslt\": "
                               "{:.3f}, \"ratio_vs_gemm\": {:.3f}}}",
                               tf, ms, best_tflops, tf / best_tflops, tf / gemm_tflops));
            };
            const int iters = tc ? 10 : 3;
            double ms = time_ms(
                [&] {
                  Tensor o = scaled_dot_product_attention(q, k, vv, Tensor(), causal);
                  o.backward(go);
                },
                iters, 2);
            report("fwd_bwd", 3.5 * fwd_flops, ms);
            NoGradGuard ng;
            ms = time_ms([&] { scaled_dot_product_attention(q, k, vv, Tensor(), causal); }, iters,
                         2);
            report("fwd", fwd_flops, ms);
          }
        }
        cuda::set_attention_tensor_cores(true);
      }
    }

    // ---- fused LoRA vs the unfused composition (forward, with importance) ----
    {
      NoGradGuard ng;
      const int64_t Bt = 8, T = 512, d = 4096, r = 16;
      Tensor xx = randn_dev({Bt, T, d}, DType::bf16, 12),
             W = randn_dev({d, d}, DType::bf16, 13, 0.02), bias = randn_dev({d}, DType::bf16, 14),
             A = randn_dev({r, d}, DType::bf16, 15, 0.02),
             Bm = randn_dev({d, r}, DType::bf16, 16, 0.02);
      Tensor imp1, imp2;
      double fused = time_ms([&] {
        imp1 = Tensor();
        lora_linear(xx, W, bias, A, Bm, 2.0, 0.1, true, 1, 2, &imp1);
      });
      double unfused = time_ms([&] {
        imp2 = Tensor();
        lora_linear_reference(xx, W, bias, A, Bm, 2.0, 0.1, true, 1, 2, &imp2);
      });
      emit("lora_linear_fwd_importance",
           fmt::format("{{\"fused_ms\": {:.3f}, \"unfused_ms\": {:.3f}, \"speedup\": {:.2f}}}",
                       fused, unfused, unfused / fused));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "benchmark failed: %s\n", e.what());
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '"', '\'');
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    g_json.push_back(fmt::format("\"error\": \"{}\"", msg));
  }
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (f) {
      std::fprintf(f, "{\n");
      for (size_t i = 0; i < g_json.size(); ++i)
        std::fprintf(f, "  %s%s\n", g_json[i].c_str(), i + 1 < g_json.size() ? "," : "");
      std::fprintf(f, "}\n");
      std::fclose(f);
    }
  }
  return 0;
}
