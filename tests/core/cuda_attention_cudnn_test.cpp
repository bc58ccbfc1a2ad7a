// cuDNN SDPA attention path (core/cuda/attention_cudnn.cpp) vs the unfused composition: forward
// and gradients in bf16 (and f16), D = 64/128, causal (Tq == Tk, Tq < Tk, Tq > Tk), arbitrary
// key-padding masks (right and left padding, a fully padded batch row), grouped K/V heads. Skips
// with a message when there is no GPU or the path is not built.
#include <gtest/gtest.h>

#include "core/ops.h"
#include "core/storage.h"
#include "tests/test_util.h"
#ifdef LD_WITH_CUDA
#include "core/cuda/attention.h"
#include "core/cuda/attention_cudnn.h"
#endif

namespace ld {
namespace {

#ifdef LD_WITH_CUDA

Tensor rn(const Shape& s, uint64_t seed) { return test::randn(s, seed, DType::f32); }

// Restores the attention implementation whatever a case does.
struct ImplGuard {
  cuda::AttentionImpl prev = cuda::attention_impl();
  ~ImplGuard() { cuda::set_attention_impl(prev); }
};

TEST(CudnnAttention, NotBuiltSaysHowToBuild) {
  if (cuda::cudnn_sdpa_built()) GTEST_SKIP() << "the cuDNN path is built in this configuration";
  try {
    cuda::cudnn_sdpa(Tensor(), Tensor(), Tensor(), Tensor(), false, -1.0);
    FAIL() << "expected ld::Error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("tools/fetch_cudnn_frontend.sh"), std::string::npos)
        << e.what();
  }
}

TEST(CudnnAttentionCudaParity, MatchesUnfused) {
  if (!cuda::cudnn_sdpa_built())
    GTEST_SKIP() << "cuDNN SDPA path not built (run tools/fetch_cudnn_frontend.sh and reconfigure)";
  if (!cuda_available())
    GTEST_SKIP() << "no CUDA device: "
                 << (cuda_hooks() ? cuda_hooks()->unavailable_reason() : std::string());
  ImplGuard guard;
  struct Case {
    int64_t B, Hq, Hkv, Tq, Tk, D;
    bool causal;
    int mask;  // 0 none, 1 right padding, 2 left padding + holes + one fully padded batch row
  };
  const Case cases[] = {
      {2, 4, 4, 128, 128, 64, false, 0}, {2, 4, 4, 77, 77, 64, true, 0},
      {2, 8, 2, 96, 96, 128, true, 1},   {3, 4, 1, 65, 65, 64, false, 2},
      {3, 4, 2, 40, 40, 128, true, 2},   {2, 4, 4, 17, 90, 64, true, 0},
      {2, 4, 2, 17, 90, 64, true, 1},    {2, 2, 2, 50, 30, 64, true, 0},
      {1, 2, 1, 1, 33, 128, false, 1},
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::bf16, DType::f16}) {
      SCOPED_TRACE(fmt::format("{} B{} Hq{} Hkv{} Tq{} Tk{} D{} causal {} mask {}", dtype_name(dt),
                               c.B, c.Hq, c.Hkv, c.Tq, c.Tk, c.D, c.causal, c.mask));
      Tensor q = rn({c.B, c.Hq, c.Tq, c.D}, 90), k = rn({c.B, c.Hkv, c.Tk, c.D}, 91),
             v = rn({c.B, c.Hkv, c.Tk, c.D}, 92), w = rn({c.B, c.Hq, c.Tq, c.D}, 93);
      Tensor kpm;
      if (c.mask) {
        std::vector<bool> m(c.B * c.Tk, true);
        for (int64_t b = 0; b < c.B; ++b)
          for (int64_t j = 0; j < c.Tk; ++j) {
            if (c.mask == 1) m[b * c.Tk + j] = j < c.Tk - 3 * b;          // right padding
            if (c.mask == 2) m[b * c.Tk + j] = j >= 5 * b && j % 7 != 3;  // left padding, holes
          }
        if (c.mask == 2)
          for (int64_t j = 0; j < c.Tk; ++j) m[(c.B - 1) * c.Tk + j] = false;  // no key at all
        kpm = Tensor::from_vector(m, {c.B, c.Tk}).to(cuda_device());
      }
      auto run = [&](cuda::AttentionImpl impl, std::vector<Tensor>& grads) {
        cuda::set_attention_impl(impl);
        Tensor qg = q.to(cuda_device(), dt), kg = k.to(cuda_device(), dt),
               vg = v.to(cuda_device(), dt);
        for (Tensor* t : {&qg, &kg, &vg}) t->set_requires_grad(true);
        Tensor o = scaled_dot_product_attention(qg, kg, vg, kpm, c.causal);
        sum(mul(o, w.to(cuda_device(), dt))).backward();
        grads = {qg.grad(), kg.grad(), vg.grad()};
        return o.to(kCPU, DType::f32);
      };
      std::vector<Tensor> gu, gc;
      Tensor ou = run(cuda::AttentionImpl::Unfused, gu);
      const int64_t before = cuda::cudnn_sdpa_calls();
      Tensor oc = run(cuda::AttentionImpl::Cudnn, gc);
      ASSERT_EQ(cuda::cudnn_sdpa_calls(), before + 1) << "cuDNN did not serve this case";
      // Both sides round the same bf16/f16 inputs; they differ by the order of f32 sums and by
      // where P is rounded to 16 bits before P.V (cuDNN) or not (unfused: bf16 GEMM outputs).
      // bf16 keeps 8 bits (0.4% per rounding, a few roundings), f16 11 bits.
      const double atol = dt == DType::bf16 ? 2e-2 : 4e-3, rtol = dt == DType::bf16 ? 3e-2 : 6e-3;
      EXPECT_CLOSE(oc, ou, atol, rtol);
      for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("gradient of " + std::string("qkv").substr(i, 1));
        // Gradients sum over Tq or Tk products: 3x the forward tolerance (as the fused test).
        EXPECT_CLOSE(gc[i].to(kCPU, DType::f32), gu[i].to(kCPU, DType::f32), 3 * atol, 3 * rtol);
      }
      // Rows with no key to attend: exactly 0, not nan (masked rows' gradients are covered above).
      if (c.mask == 2) {
        Tensor last = oc.narrow(0, c.B - 1, 1);
        EXPECT_EQ(sum(abs(last)).item(), 0.0);
      }
    }
  }
}

TEST(CudnnAttentionCudaParity, F32AndOddHeadDimFallBackToUnfused) {
  if (!cuda::cudnn_sdpa_built()) GTEST_SKIP() << "cuDNN SDPA path not built";
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  ImplGuard guard;
  cuda::set_attention_impl(cuda::AttentionImpl::Cudnn);
  for (auto [dt, D] : {std::pair{DType::f32, int64_t{64}}, std::pair{DType::bf16, int64_t{20}}}) {
    Tensor q = rn({1, 2, 9, D}, 1).to(cuda_device(), dt);
    const int64_t before = cuda::cudnn_sdpa_calls();
    Tensor o = scaled_dot_product_attention(q, q, q);
    EXPECT_EQ(cuda::cudnn_sdpa_calls(), before);
    EXPECT_EQ(o.shape(), q.shape());
  }
}

#endif  // LD_WITH_CUDA

}  // namespace
}  // namespace ld
