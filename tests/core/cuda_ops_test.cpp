// CUDA vs CPU parity for every backend op through the op layer (forward and gradients) in
// f32/bf16/f16, plus runtime checks: allocator reuse/statistics, output canaries, bit-identical
// dropout masks, fused attention vs the unfused composition, fused LoRA vs the reference.
// Every case skips with "no CUDA device: ..." when no GPU can be used.
#include <functional>

#include "core/cuda/attention.h"
#include "core/kernels.h"
#include "core/ops/lora_linear.h"
#include "tests/test_util.h"
#ifdef LD_WITH_CUDA
#include "core/cuda/attention_tc.h"
#include "core/cuda/cuda_ops.h"
#include "core/cuda/runtime.h"
#endif

namespace ld {
namespace {

#define LD_REQUIRE_CUDA()                                                 \
  do {                                                                    \
    if (!cuda_available())                                                \
      GTEST_SKIP() << "no CUDA device: "                                  \
                   << (cuda_hooks() ? cuda_hooks()->unavailable_reason()  \
                                    : std::string("built without CUDA")); \
  } while (0)

// Tolerances per dtype (llm.c style |gpu - ref| <= atol + rtol |ref|). The reference runs in f32
// on the CPU from the same (rounded) inputs; f32 differs only by summation order (GEMMs, reductions
// over a few thousand terms); bf16 keeps 8 mantissa bits (2^-8 = 0.0039 relative per rounding, a
// few roundings per op); f16 keeps 11 bits.
struct Tol {
  double atol, rtol;
};
Tol tol_for(DType dt) {
  switch (dt) {
    case DType::bf16:
      return {2e-2, 3e-2};
    case DType::f16:
      return {3e-3, 5e-3};
    default:
      return {2e-5, 2e-4};
  }
}

const DType kDtypes[] = {DType::f32, DType::bf16, DType::f16};

// Runs f on CPU f32 copies (rounded through dt) and on CUDA tensors of dtype dt; compares the
// outputs and the gradients of sum(out * w) for every floating input.
void check_parity(const std::string& what, const std::function<Tensor(std::vector<Tensor>&)>& f,
                  const std::vector<Tensor>& inputs_f32, DType dt, bool grads = true,
                  double tol_scale = 1.0) {
  SCOPED_TRACE(what + " " + dtype_name(dt));
  std::vector<Tensor> cpu, gpu;
  for (const Tensor& t : inputs_f32) {
    if (!t.defined()) {
      cpu.emplace_back();
      gpu.emplace_back();
      continue;
    }
    const bool fl = is_floating(t.dtype());
    Tensor c = fl ? t.to(dt).to(DType::f32) : t;
    Tensor g = fl ? t.to(cuda_device(), dt) : t.to(cuda_device());
    if (fl && grads) {
      c.set_requires_grad(true);
      g.set_requires_grad(true);
    }
    cpu.push_back(c);
    gpu.push_back(g);
  }
  Tensor yc = f(cpu), yg = f(gpu);
  ASSERT_TRUE(yg.is_cuda()) << yg.desc();
  Tol tol = tol_for(dt);
  EXPECT_CLOSE(yg.to(kCPU, DType::f32), yc, tol.atol * tol_scale, tol.rtol * tol_scale);
  if (!grads) return;
  Tensor w = test::randn(yc.shape(), 4242, DType::f32);
  sum(mul(yc, w)).backward();
  sum(mul(yg, w.to(cuda_device(), dt))).backward();
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!cpu[i].defined() || !cpu[i].requires_grad()) continue;
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    ASSERT_EQ(cpu[i].grad().defined(), gpu[i].grad().defined());
    if (!cpu[i].grad().defined()) continue;
    EXPECT_CLOSE(gpu[i].grad().to(kCPU, DType::f32), cpu[i].grad(), 2 * tol.atol * tol_scale,
                 2 * tol.rtol * tol_scale);
  }
}

Tensor rn(const Shape& s, uint64_t seed, double std = 1.0) {
  return test::randn(s, seed, DType::f32, std);
}

TEST(CudaRuntime, NoDeviceGivesClearError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present; this checks the no-GPU path";
  try {
    Tensor::empty({2}, DType::f32, cuda_device());
    FAIL() << "expected ld::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
  // The CPU keeps working.
  EXPECT_EQ(sum(Tensor::ones({3})).item(), 3.0);
}

#ifdef LD_WITH_CUDA
TEST(CudaRuntime, AllocatorReusesBlocksAndCounts) {
  LD_REQUIRE_CUDA();
  cuda::empty_cache();
  cuda::reset_peak();
  auto s0 = cuda::allocator_stats();
  void* p = cuda::device_alloc(1000);
  auto s1 = cuda::allocator_stats();
  EXPECT_EQ(s1.num_cuda_malloc, s0.num_cuda_malloc + 1);
  EXPECT_EQ(s1.current_bytes, s0.current_bytes + cuda::round_size(1000));
  cuda::device_free(p);
  void* q = cuda::device_alloc(900);  // same 1024-byte class: served from the cache
  auto s2 = cuda::allocator_stats();
  EXPECT_EQ(q, p);
  EXPECT_EQ(s2.num_cuda_malloc, s1.num_cuda_malloc);
  EXPECT_EQ(s2.num_cache_hits, s1.num_cache_hits + 1);
  void* big = cuda::device_alloc(size_t(5) << 20);
  EXPECT_GE(cuda::allocator_stats().peak_bytes, (size_t(5) << 20) + 1024);
  cuda::device_free(big);
  cuda::device_free(q);
  EXPECT_EQ(cuda::allocator_stats().current_bytes, s0.current_bytes);
  cuda::empty_cache();
  EXPECT_EQ(cuda::allocator_stats().reserved_bytes, s0.reserved_bytes - 0);
  // Tensors go through the same allocator: a training-step-like loop mallocs only once.
  { Tensor t = Tensor::zeros({256, 256}, DType::f32, cuda_device()); }
  auto s3 = cuda::allocator_stats();
  for (int i = 0; i < 5; ++i) Tensor t = Tensor::zeros({256, 256}, DType::f32, cuda_device());
  EXPECT_EQ(cuda::allocator_stats().num_cuda_malloc, s3.num_cuda_malloc);
}

TEST(CudaRuntime, RoundTripThroughPinnedStaging) {
  LD_REQUIRE_CUDA();
  Tensor x = rn({3, 1000, 1000}, 5);  // 12 MB: several staging chunks
  Tensor back = x.to(cuda_device()).to(kCPU);
  EXPECT_CLOSE(back, x, 0, 0);
}

TEST(CudaKernels, OutputCanariesSurvive) {
  LD_REQUIRE_CUDA();
  // The output is a window in the middle of a buffer filled with a sentinel; kernels must not
  // write outside it.
  const float kSentinel = 12345.0f;
  for (int64_t n : {1, 7, 33, 1000, 4099}) {
    Tensor buf = Tensor::full({n + 64}, kSentinel, DType::f32, cuda_device());
    Tensor out = buf.narrow(0, 32, n);
    Tensor x = rn({n}, 7).to(cuda_device());
    cuda::unary(UnaryOp::Exp, out, x, 0.0);
    cuda::binary(BinaryOp::Mul, out, out, x, 0.0);
    Tensor rows = buf.narrow(0, 32, 1);
    cuda::reduce_sum_rows(rows, x.view({1, n}));
    std::vector<float> h = buf.to_vector<float>();
    for (int64_t i = 0; i < 32; ++i) {
      EXPECT_EQ(h[i], kSentinel) << "n=" << n << " before, index " << i;
      EXPECT_EQ(h[32 + n + i], kSentinel) << "n=" << n << " after, index " << i;
    }
  }
}

TEST(CudaKernels, DropoutMaskBitIdentical) {
  LD_REQUIRE_CUDA();
  for (int64_t n : {1, 5, 1023, 100003}) {
    Tensor x = Tensor::ones({n});
    Tensor out_c = Tensor::empty({n}), keep_c = Tensor::empty({n}, DType::b8);
    cpu::dropout_fwd(out_c, keep_c, x, 0.3, 1234, 77);
    Tensor xg = x.to(cuda_device());
    Tensor out_g = Tensor::empty({n}, DType::f32, cuda_device());
    Tensor keep_g = Tensor::empty({n}, DType::b8, cuda_device());
    cuda::dropout_fwd(out_g, keep_g, xg, 0.3, 1234, 77);
    EXPECT_EQ(keep_g.to_vector<bool>(), keep_c.to_vector<bool>()) << "n=" << n;
    EXPECT_EQ(out_g.to_vector<float>(), out_c.to_vector<float>()) << "n=" << n;
  }
}
#endif

TEST(CudaElementwiseParity, UnaryOps) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes) {
    Tensor x = test::randu({5, 37}, 3, 0.2, 2.0, DType::f32);
    check_parity(
        "exp", [](auto& in) { return exp(in[0]); }, {x}, dt);
    check_parity(
        "log", [](auto& in) { return log(in[0]); }, {x}, dt);
    check_parity(
        "sqrt", [](auto& in) { return sqrt(in[0]); }, {x}, dt);
    check_parity(
        "tanh", [](auto& in) { return tanh(in[0]); }, {x}, dt);
    check_parity(
        "sigmoid", [](auto& in) { return sigmoid(in[0]); }, {x}, dt);
    Tensor y = rn({1, 129}, 4);
    check_parity(
        "gelu", [](auto& in) { return gelu(in[0]); }, {y}, dt);
    check_parity(
        "gelu_tanh", [](auto& in) { return gelu(in[0], true); }, {y}, dt);
    check_parity(
        "silu", [](auto& in) { return silu(in[0]); }, {y}, dt);
    check_parity(
        "relu", [](auto& in) { return relu(in[0]); }, {y}, dt);
    check_parity(
        "pow3", [](auto& in) { return pow(in[0], 3.0); }, {y}, dt);
    check_parity(
        "affine", [](auto& in) { return add(mul(in[0], 1.5), 0.25); }, {y}, dt);
  }
}

TEST(CudaElementwiseParity, BinaryBroadcastAndNonContiguous) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes) {
    Tensor a = rn({4, 1, 33}, 10), b = rn({5, 33}, 11);
    check_parity(
        "add_bcast", [](auto& in) { return add(in[0], in[1]); }, {a, b}, dt);
    check_parity(
        "mul_bcast", [](auto& in) { return mul(in[0], in[1]); }, {a, b}, dt);
    Tensor c = rn({33, 6}, 12), d = rn({6, 33}, 13);
    // c^T is a non-contiguous view.
    check_parity(
        "sub_transposed", [](auto& in) { return sub(in[0].t(), in[1]); }, {c, d}, dt);
    Tensor e = test::randu({7, 9}, 14, 0.5, 2.0, DType::f32);
    check_parity(
        "div", [](auto& in) { return div(in[1], in[0]); }, {e, rn({7, 9}, 15)}, dt);
    check_parity(
        "maximum", [](auto& in) { return maximum(in[0], in[1]); }, {rn({1}, 16), rn({3, 1, 2}, 17)},
        dt);
    check_parity(
        "where", [](auto& in) { return where(compare(CompareOp::Gt, in[0], 0.0), in[0], in[1]); },
        {rn({8, 3}, 18), rn({8, 3}, 19)}, dt, false);
  }
}

TEST(CudaReduceParity, SumMeanMax) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes) {
    for (Shape s : {Shape{1, 1}, Shape{3, 5}, Shape{17, 1025}, Shape{2, 4097}}) {
      Tensor x = rn(s, 20);
      check_parity(
          "sum_last", [](auto& in) { return sum(in[0], {-1}); }, {x}, dt, true, 4);
      check_parity(
          "sum_first", [](auto& in) { return sum(in[0], {0}); }, {x}, dt, true, 4);
      check_parity(
          "mean", [](auto& in) { return mean(in[0]); }, {x}, dt, true, 4);
      check_parity(
          "max", [](auto& in) { return max(in[0], -1); }, {x}, dt);
    }
  }
}

TEST(CudaGemmParity, MatmulShapesAndLayouts) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes) {
    const double sc = dt == DType::f32 ? 1.0 : 2.0;
    check_parity(
        "mm", [](auto& in) { return matmul(in[0], in[1]); }, {rn({7, 13}, 30), rn({13, 5}, 31)}, dt,
        true, sc);
    check_parity(
        "mm_1x1", [](auto& in) { return matmul(in[0], in[1]); }, {rn({1, 1}, 32), rn({1, 1}, 33)},
        dt, true, sc);
    check_parity(
        "mm_t", [](auto& in) { return matmul(in[0].t(), in[1].t()); },
        {rn({13, 7}, 34), rn({5, 13}, 35)}, dt, true, sc);
    check_parity(
        "bmm", [](auto& in) { return matmul(in[0], in[1]); },
        {rn({3, 9, 16}, 36), rn({3, 16, 4}, 37)}, dt, true, sc);
    check_parity(
        "bmm_bcast", [](auto& in) { return matmul(in[0], in[1]); },
        {rn({2, 3, 9, 16}, 38), rn({16, 11}, 39)}, dt, true, sc);
    check_parity(
        "bmm_bcast_a", [](auto& in) { return matmul(in[0], in[1]); },
        {rn({9, 16}, 40), rn({4, 16, 3}, 41)}, dt, true, sc);
    check_parity(
        "linear", [](auto& in) { return linear(in[0], in[1], in[2]); },
        {rn({2, 5, 64}, 42), rn({48, 64}, 43, 0.1), rn({48}, 44)}, dt, true, sc);
    check_parity(
        "matvec", [](auto& in) { return matmul(in[0], in[1]); }, {rn({6, 10}, 45), rn({10}, 46)},
        dt, true, sc);
  }
}

TEST(CudaNnParity, NormsSoftmaxLossRope) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes) {
    for (int64_t n : {1, 7, 768, 1500}) {
      Tensor x = rn({6, n}, 50), w = rn({n}, 51), b = rn({n}, 52);
      check_parity(
          "layer_norm", [](auto& in) { return layer_norm(in[0], in[1], in[2], 1e-5); }, {x, w, b},
          dt, true, 2);
      check_parity(
          "layer_norm_noaffine",
          [](auto& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-5); }, {x}, dt, true, 2);
      check_parity(
          "rms_norm", [](auto& in) { return rms_norm(in[0], in[1], 1e-6); }, {x, w}, dt, true, 2);
      check_parity(
          "softmax", [](auto& in) { return softmax(in[0]); }, {x}, dt);
      check_parity(
          "log_softmax", [](auto& in) { return log_softmax(in[0]); }, {x}, dt);
    }
    Tensor s = rn({2, 3, 5, 9}, 53);
    Tensor mask = Tensor::zeros({2, 1, 1, 9});
    {
      auto mv = mask.data<float>();
      for (int i : {3, 4, 9 + 0, 9 + 8}) mv[i] = -1e9f;
    }
    check_parity(
        "softmax_mask", [](auto& in) { return softmax(in[0], -1, in[1]); }, {s, mask}, dt);
    check_parity(
        "softmax_dim1", [](auto& in) { return softmax(in[0], 1); }, {s}, dt);
    Tensor logits = rn({11, 37}, 54);
    std::vector<int64_t> tg = {0, 5, 36, -100, 3, 3, 8, 9, 10, -100, 2};
    Tensor targets = Tensor::from_vector(tg, {11});
    check_parity(
        "cross_entropy", [&](auto& in) { return cross_entropy(in[0], in[1]); }, {logits, targets},
        dt, true, 2);
    Tensor q = rn({2, 3, 7, 16}, 55);
    std::vector<int64_t> pos;
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < 7; ++t) pos.push_back(3 * b + t);
    Tensor positions = Tensor::from_vector(pos, {2, 7});
    check_parity(
        "rope", [&](auto& in) { return rope(in[0], in[1]); }, {q, positions}, dt);
    check_parity(
        "rope_noncontig", [&](auto& in) { return rope(in[0].transpose(1, 2), in[1]); },
        {rn({2, 7, 3, 16}, 56), positions}, dt);
  }
}

#ifdef LD_WITH_CUDA
// Leaf copies of `ts` on device d (requiring grad), for running one op on both backends.
std::vector<Tensor> leaves_on(const std::vector<Tensor>& ts, Device d) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.to(d).clone().detach().set_requires_grad(true));
  return out;
}

// The saved statistics are f32 for bf16/f16 rows on both backends (core/dtype.h stat_dtype): the
// CUDA kernels' mean/rstd/lse match the CPU kernels' on the same rounded values to f32 accuracy
// (the sums differ only in order), statistics in the input dtype are refused, and the op's
// forward and gradients in bf16/f16 agree across backends within one output rounding (2^-8
// relative for bf16) on rows with a large mean, where a rounded mean would be off by up to 0.125.
TEST(CudaNnParity, SavedStatisticsF32ForHalfInputs) {
  LD_REQUIRE_CUDA();
  const Device g = cuda_device();
  for (DType dt : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tol tol = dt == DType::bf16 ? Tol{1e-2, 1e-2} : Tol{2e-3, 2e-3};
    for (int64_t n : {7, 768, 1500}) {
      SCOPED_TRACE("n = " + std::to_string(n));
      const int64_t rows = 6;
      Tensor x = add(rn({rows, n}, 60), 37.0).to(dt), w = rn({n}, 61).to(dt),
             b = rn({n}, 62).to(dt), dy = rn({rows, n}, 63).to(dt);
      Tensor yc = Tensor::empty({rows, n}, dt), mc = Tensor::empty({rows}, DType::f32),
             rc = Tensor::empty({rows}, DType::f32);
      Tensor yg = Tensor::empty({rows, n}, dt, g), mg = Tensor::empty({rows}, DType::f32, g),
             rg = Tensor::empty({rows}, DType::f32, g);
      cpu::layer_norm_fwd(yc, mc, rc, x, w, b, 1e-5);
      cuda::layer_norm_fwd(yg, mg, rg, x.to(g), w.to(g), b.to(g), 1e-5);
      EXPECT_CLOSE(mg.to(kCPU), mc, 1e-6, 1e-6);
      EXPECT_CLOSE(rg.to(kCPU), rc, 1e-6, 1e-5);
      cpu::rms_norm_fwd(yc, rc, x, w, 1e-6);
      cuda::rms_norm_fwd(yg, rg, x.to(g), w.to(g), 1e-6);
      EXPECT_CLOSE(rg.to(kCPU), rc, 1e-8, 1e-5);
      EXPECT_THROW(cuda::layer_norm_fwd(yg, mg.to(dt), rg.to(dt), x.to(g), w.to(g), b.to(g), 1e-5),
                   Error);
      EXPECT_THROW(cuda::rms_norm_fwd(yg, rg.to(dt), x.to(g), w.to(g), 1e-6), Error);
      std::vector<Tensor> ic = leaves_on({x, w, b}, kCPU), ig = leaves_on({x, w, b}, g);
      Tensor oc = layer_norm(ic[0], ic[1], ic[2], 1e-5), og = layer_norm(ig[0], ig[1], ig[2], 1e-5);
      oc.backward(dy);
      og.backward(dy.to(g));
      EXPECT_CLOSE(og.to(kCPU, DType::f32), oc.to(DType::f32), tol.atol, tol.rtol);
      for (size_t i = 0; i < ic.size(); ++i) {
        SCOPED_TRACE("layer_norm gradient of input " + std::to_string(i));
        EXPECT_CLOSE(ig[i].grad().to(kCPU, DType::f32), ic[i].grad().to(DType::f32), tol.atol,
                     tol.rtol);
      }
      ic = leaves_on({x, w}, kCPU);
      ig = leaves_on({x, w}, g);
      oc = rms_norm(ic[0], ic[1], 1e-6);
      og = rms_norm(ig[0], ig[1], 1e-6);
      oc.backward(dy);
      og.backward(dy.to(g));
      EXPECT_CLOSE(og.to(kCPU, DType::f32), oc.to(DType::f32), tol.atol, tol.rtol);
      for (size_t i = 0; i < ic.size(); ++i) {
        SCOPED_TRACE("rms_norm gradient of input " + std::to_string(i));
        EXPECT_CLOSE(ig[i].grad().to(kCPU, DType::f32), ic[i].grad().to(DType::f32), tol.atol,
                     tol.rtol);
      }
    }
    // Cross-entropy: logits near 40 (a rounded lse would be off by up to 0.125 in bf16).
    const int64_t N = 11, C = 37;
    Tensor logits = add(mul(rn({N, C}, 64), 3.0), 40.0).to(dt);
    Tensor targets = Tensor::from_vector<int64_t>({0, 5, 36, -100, 3, 3, 8, 9, 10, -100, 2}, {N});
    Tensor lc = Tensor::empty({N}, DType::f32), sc = Tensor::empty({N}, DType::f32);
    Tensor lg = Tensor::empty({N}, DType::f32, g), sg = Tensor::empty({N}, DType::f32, g);
    cpu::cross_entropy_fwd(lc, sc, logits, targets, -100);
    cuda::cross_entropy_fwd(lg, sg, logits.to(g), targets.to(g), -100);
    EXPECT_CLOSE(sg.to(kCPU), sc, 1e-6, 1e-6);
    EXPECT_CLOSE(lg.to(kCPU), lc, 1e-5, 1e-5);
    EXPECT_THROW(cuda::cross_entropy_fwd(lg, sg.to(dt), logits.to(g), targets.to(g), -100), Error);
    std::vector<Tensor> ic = leaves_on({logits}, kCPU), ig = leaves_on({logits}, g);
    Tensor oc = cross_entropy(ic[0], targets), og = cross_entropy(ig[0], targets.to(g));
    EXPECT_EQ(og.dtype(), dt);
    EXPECT_NEAR(og.to(kCPU, DType::f64).item(), oc.to(DType::f64).item(),
                tol.rtol * std::abs(oc.to(DType::f64).item()));
    oc.backward();
    og.backward();
    EXPECT_CLOSE(ig[0].grad().to(kCPU, DType::f32), ic[0].grad().to(DType::f32), 1e-6, tol.rtol);
  }
}
#endif

TEST(CudaNnParity, EmbeddingAndIndex) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes) {
    Tensor w = rn({13, 24}, 60);
    std::vector<int64_t> ids = {1, 5, 5, 0, 12, 5, 1, 3, 3, 3, 7};
    Tensor idt = Tensor::from_vector(ids, {1, 11});
    check_parity(
        "embedding", [&](auto& in) { return embedding(in[0], in[1]); }, {w, idt}, dt, true, 2);
    check_parity(
        "embedding_pad", [&](auto& in) { return embedding(in[0], in[1], 5); }, {w, idt}, dt, true,
        2);
  }
}

TEST(CudaNnParity, DropoutSameMaskThroughOp) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes)
    check_parity(
        "dropout", [](auto& in) { return dropout(in[0], 0.25, true, 99, 3); }, {rn({9, 130}, 70)},
        dt);
}

#ifdef LD_WITH_CUDA
TEST(CudaNnParity, AdamWStepMatchesCpu) {
  LD_REQUIRE_CUDA();
  for (int64_t n : {1, 1000, 70001}) {
    Tensor p = rn({n}, 80), g = rn({n}, 81), m = rn({n}, 82, 0.1),
           v = test::randu({n}, 83, 0.0, 0.1, DType::f32);
    Tensor pg = p.to(cuda_device()), gg = g.to(cuda_device()), mg = m.to(cuda_device()),
           vg = v.to(cuda_device());
    Tensor p2 = p.clone(), m2 = m.clone(), v2 = v.clone();
    cpu::adamw_step(p2, g, m2, v2, 1e-3, 0.9, 0.999, 1e-8, 0.01, 7);
    cuda::adamw_step(pg, gg, mg, vg, 1e-3, 0.9, 0.999, 1e-8, 0.01, 7);
    EXPECT_CLOSE(pg.to(kCPU), p2, 1e-6, 1e-5);
    EXPECT_CLOSE(mg.to(kCPU), m2, 1e-6, 1e-5);
    EXPECT_CLOSE(vg.to(kCPU), v2, 1e-6, 1e-5);
    // The multi-tensor entry gives the same result as the single-tensor one.
    Tensor pm = p.to(cuda_device()), mm = m.to(cuda_device()), vm = v.to(cuda_device());
    cuda::adamw_multi({pm}, {gg}, {mm}, {vm}, 1e-3, 0.9, 0.999, 1e-8, 0.01, 7);
    EXPECT_CLOSE(pm.to(kCPU), pg.to(kCPU), 0, 0);
  }
}

TEST(CudaAttentionParity, FusedMatchesUnfused) {
  LD_REQUIRE_CUDA();
  struct Case {
    int64_t B, Hq, Hkv, Tq, Tk, D;
    bool causal, mask;
  };
  for (Case c : {Case{1, 1, 1, 1, 1, 8, false, false}, Case{2, 4, 2, 37, 37, 64, true, true},
                 Case{2, 2, 1, 5, 70, 32, true, false}, Case{1, 8, 8, 65, 65, 128, false, true},
                 Case{1, 2, 2, 33, 33, 80, true, true}}) {
    for (DType dt : kDtypes) {
      SCOPED_TRACE(fmt::format("B{} Hq{} Hkv{} Tq{} Tk{} D{} causal {} mask {}", c.B, c.Hq, c.Hkv,
                               c.Tq, c.Tk, c.D, c.causal, c.mask));
      Tensor q = rn({c.B, c.Hq, c.Tq, c.D}, 90), k = rn({c.B, c.Hkv, c.Tk, c.D}, 91),
             v = rn({c.B, c.Hkv, c.Tk, c.D}, 92);
      Tensor kpm;
      if (c.mask) {
        std::vector<bool> m(c.B * c.Tk, true);
        for (int64_t b = 0; b < c.B; ++b)
          for (int64_t j = c.Tk - 1 - b * 3; j < c.Tk; ++j) m[b * c.Tk + j] = false;
        m[0] = true;
        kpm = Tensor::from_vector(m, {c.B, c.Tk}).to(cuda_device());
      }
      auto run = [&](cuda::AttentionImpl impl, std::vector<Tensor>& grads) {
        cuda::set_attention_impl(impl);
        Tensor qg = q.to(cuda_device(), dt), kg = k.to(cuda_device(), dt),
               vg = v.to(cuda_device(), dt);
        for (Tensor* t : {&qg, &kg, &vg}) t->set_requires_grad(true);
        Tensor o = scaled_dot_product_attention(qg, kg, vg, kpm, c.causal);
        sum(mul(o, rn(o.shape(), 93).to(cuda_device(), dt))).backward();
        grads = {qg.grad(), kg.grad(), vg.grad()};
        return o;
      };
      std::vector<Tensor> gu, gf;
      Tensor ou = run(cuda::AttentionImpl::Unfused, gu);
      Tensor of = run(cuda::AttentionImpl::Fused, gf);
      cuda::set_attention_impl(cuda::AttentionImpl::Fused);
      Tol t = tol_for(dt);
      EXPECT_CLOSE(of.to(kCPU, DType::f32), ou.to(kCPU, DType::f32), t.atol, t.rtol);
      for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("gradient " + std::to_string(i));
        EXPECT_CLOSE(gf[i].to(kCPU, DType::f32), gu[i].to(kCPU, DType::f32), 3 * t.atol,
                     3 * t.rtol);
      }
    }
  }
}

// ---- the tensor-core attention kernels (core/cuda/attention_tc.cu: bf16/f16, D 64 and 128) ----
struct AttnCase {
  int64_t B, Hq, Hkv, Tq, Tk, D;
  bool causal, mask;
  int layout;  // 0: contiguous; 1: [B, T, H, D] transposed (strided rows, 16-byte aligned);
               // 2: narrowed from a last dim of D + 3 at offset 1 (odd row stride: scalar loads)
  std::string name() const {
    return fmt::format("B{} Hq{} Hkv{} Tq{} Tk{} D{} causal {} mask {} layout {}", B, Hq, Hkv, Tq,
                       Tk, D, causal, mask, layout);
  }
};

// Odd lengths (not multiples of the 64/32-row tiles, a single row), Tq != Tk both ways, the
// bottom-right causal mask, key padding with a padded tail and padded interior keys, grouped K/V
// heads (2 and 4 query heads a K/V head), several tiles per row block, both loader paths.
const AttnCase kTcCases[] = {
    {1, 1, 1, 1, 1, 64, false, false, 0},    {2, 4, 2, 37, 37, 64, true, true, 0},
    {2, 2, 1, 5, 70, 64, true, false, 0},    {1, 2, 2, 70, 33, 128, false, true, 0},
    {1, 8, 8, 65, 65, 128, false, true, 1},  {2, 8, 2, 130, 131, 128, true, true, 0},
    {1, 4, 1, 129, 200, 64, false, true, 1}, {2, 4, 1, 97, 97, 64, true, true, 2},
    {1, 2, 1, 33, 150, 128, true, true, 2},  {1, 2, 2, 200, 200, 64, true, false, 1},
};

struct AttnRun {
  Tensor out;
  std::vector<Tensor> grads;  // of q, k, v (their leaves)
};

// Restores the default attention selection when a test ends, failed or not.
struct AttnSelectionGuard {
  ~AttnSelectionGuard() {
    cuda::set_attention_impl(cuda::AttentionImpl::Fused);
    cuda::set_attention_tensor_cores(true);
  }
};

// Runs sdpa in dtype dt with the chosen implementation and returns the output and the gradients
// of sum(out * w).
AttnRun run_attention(const AttnCase& c, DType dt, cuda::AttentionImpl impl, bool tensor_cores,
                      const Tensor& kpm_override = Tensor()) {
  cuda::set_attention_impl(impl);
  cuda::set_attention_tensor_cores(tensor_cores);
  const Device dev = cuda_device();
  auto make = [&](int64_t H, int64_t T, uint64_t seed, Tensor& leaf) {
    if (c.layout == 1) {
      leaf = rn({c.B, T, H, c.D}, seed).to(dev, dt).set_requires_grad(true);
      return leaf.transpose(1, 2);
    }
    if (c.layout == 2) {
      leaf = rn({c.B, H, T, c.D + 3}, seed).to(dev, dt).set_requires_grad(true);
      return leaf.narrow(3, 1, c.D);
    }
    leaf = rn({c.B, H, T, c.D}, seed).to(dev, dt).set_requires_grad(true);
    return leaf;
  };
  Tensor ql, kl, vl;
  Tensor q = make(c.Hq, c.Tq, 90, ql), k = make(c.Hkv, c.Tk, 91, kl), v = make(c.Hkv, c.Tk, 92, vl);
  Tensor kpm = kpm_override;
  if (!kpm.defined() && c.mask) {
    std::vector<bool> m(c.B * c.Tk, true);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t j = 1; j < c.Tk; ++j)  // key 0 stays real: every row sees a key
        if (j >= c.Tk - c.Tk / 4 - b || j % 7 == 3) m[b * c.Tk + j] = false;
    kpm = Tensor::from_vector(m, {c.B, c.Tk}).to(dev);
  }
  AttnRun r;
  r.out = scaled_dot_product_attention(q, k, v, kpm, c.causal);
  sum(mul(r.out, rn(r.out.shape(), 93).to(dev, dt))).backward();
  r.grads = {ql.grad(), kl.grad(), vl.grad()};
  return r;
}

void expect_runs_close(const AttnRun& a, const AttnRun& b, Tol t) {
  EXPECT_CLOSE(a.out.to(kCPU, DType::f32), b.out.to(kCPU, DType::f32), t.atol, t.rtol);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("gradient " + std::to_string(i));
    ASSERT_TRUE(a.grads[i].defined() && b.grads[i].defined());
    EXPECT_CLOSE(a.grads[i].to(kCPU, DType::f32), b.grads[i].to(kCPU, DType::f32), 3 * t.atol,
                 3 * t.rtol);
  }
}

#define LD_REQUIRE_ATTENTION_TC()                                                     \
  do {                                                                                \
    LD_REQUIRE_CUDA();                                                                \
    if (!cuda::attention_tc_eligible(DType::bf16, 64))                                \
      GTEST_SKIP() << "tensor-core attention needs compute capability 8.0 or newer (" \
                   << cuda::device_description() << ")";                              \
  } while (0)

// Tensor-core fused attention vs the unfused composition (the reference), output and gradients.
TEST(CudaAttentionParity, TensorCoreMatchesUnfused) {
  LD_REQUIRE_ATTENTION_TC();
  AttnSelectionGuard guard;
  for (const AttnCase& c : kTcCases)
    for (DType dt : {DType::bf16, DType::f16}) {
      SCOPED_TRACE(c.name() + " " + dtype_name(dt));
      ASSERT_TRUE(cuda::attention_tc_eligible(dt, c.D));
      AttnRun tc = run_attention(c, dt, cuda::AttentionImpl::Fused, true);
      AttnRun ref = run_attention(c, dt, cuda::AttentionImpl::Unfused, true);
      expect_runs_close(tc, ref, tol_for(dt));
    }
}

// Tensor-core kernels vs the CUDA-core kernels of attention.cu on the same inputs.
TEST(CudaAttentionParity, TensorCoreMatchesCudaCoreKernels) {
  LD_REQUIRE_ATTENTION_TC();
  AttnSelectionGuard guard;
  for (const AttnCase& c : kTcCases)
    for (DType dt : {DType::bf16, DType::f16}) {
      SCOPED_TRACE(c.name() + " " + dtype_name(dt));
      AttnRun tc = run_attention(c, dt, cuda::AttentionImpl::Fused, true);
      AttnRun cc = run_attention(c, dt, cuda::AttentionImpl::Fused, false);
      expect_runs_close(tc, cc, tol_for(dt));
    }
}

// No atomics: two runs are bitwise identical.
TEST(CudaAttentionParity, TensorCoreDeterministic) {
  LD_REQUIRE_ATTENTION_TC();
  AttnSelectionGuard guard;
  const AttnCase c{2, 8, 2, 130, 131, 128, true, true, 0};
  AttnRun a = run_attention(c, DType::bf16, cuda::AttentionImpl::Fused, true);
  AttnRun b = run_attention(c, DType::bf16, cuda::AttentionImpl::Fused, true);
  EXPECT_CLOSE(a.out.to(kCPU, DType::f32), b.out.to(kCPU, DType::f32), 0, 0);
  for (int i = 0; i < 3; ++i)
    EXPECT_CLOSE(a.grads[i].to(kCPU, DType::f32), b.grads[i].to(kCPU, DType::f32), 0, 0);
}

// Rows that see no key (batch 1 fully padded; causal with Tq > Tk leaves the first Tq - Tk rows
// without keys): output and gradients are 0 there and finite everywhere, as with the CUDA-core
// kernels (the unfused composition has no defined answer for such rows, so it is not compared).
TEST(CudaAttentionParity, TensorCoreRowsWithoutKeys) {
  LD_REQUIRE_ATTENTION_TC();
  AttnSelectionGuard guard;
  for (int64_t D : {64, 128}) {
    const AttnCase c{2, 2, 1, 75, 40, D, true, true, 0};
    SCOPED_TRACE(c.name());
    std::vector<bool> m(c.B * c.Tk, true);
    for (int64_t j = 0; j < c.Tk; ++j) m[c.Tk + j] = false;  // batch 1: every key padded
    Tensor kpm = Tensor::from_vector(m, {c.B, c.Tk}).to(cuda_device());
    AttnRun tc = run_attention(c, DType::bf16, cuda::AttentionImpl::Fused, true, kpm);
    AttnRun cc = run_attention(c, DType::bf16, cuda::AttentionImpl::Fused, false, kpm);
    expect_runs_close(tc, cc, tol_for(DType::bf16));
    Tensor o = tc.out.to(kCPU, DType::f32);
    EXPECT_CLOSE(o.narrow(0, 1, 1), Tensor::zeros({1, c.Hq, c.Tq, D}, DType::f32), 0, 0);
    EXPECT_CLOSE(o.narrow(0, 0, 1).narrow(2, 0, c.Tq - c.Tk),
                 Tensor::zeros({1, c.Hq, c.Tq - c.Tk, D}, DType::f32), 0, 0);
    for (const Tensor& g : tc.grads) {
      Tensor gc = g.to(kCPU, DType::f32);
      EXPECT_TRUE(std::isfinite(sum(abs(gc)).item()));
      EXPECT_CLOSE(gc.narrow(0, 1, 1), Tensor::zeros(gc.narrow(0, 1, 1).shape(), DType::f32), 0, 0);
    }
  }
}

TEST(CudaLoraParity, FusedMatchesCompositionAndImportance) {
  LD_REQUIRE_CUDA();
  for (DType dt : kDtypes) {
    for (double p : {0.0, 0.2}) {
      Tensor x = rn({3, 17, 96}, 100), W = rn({80, 96}, 101, 0.1), b = rn({80}, 102),
             A = rn({8, 96}, 103, 0.1), B = rn({80, 8}, 104, 0.1);
      std::vector<bool> mk(3 * 17, true);
      for (int t = 10; t < 17; ++t) mk[2 * 17 + t] = false;
      Tensor mask_c = Tensor::from_vector(mk, {3, 17});
      Tensor imp_c, imp_g;
      check_parity(
          "lora_linear",
          [&](auto& in) {
            Tensor* imp = in[0].is_cuda() ? &imp_g : &imp_c;
            Tensor m = in[0].is_cuda() ? mask_c.to(cuda_device()) : mask_c;
            // The CPU runs the reference composition; CUDA runs the fused path.
            return lora_linear(in[0], in[1], in[2], in[3], in[4], 2.0, p, true, 5, 9, imp, m);
          },
          {x, W, b, A, B}, dt, true, 2);
      ASSERT_TRUE(imp_c.defined() && imp_g.defined());
      Tol t = tol_for(dt);
      EXPECT_CLOSE(imp_g.to(kCPU), imp_c, t.atol * 10, t.rtol * 2);
    }
  }
}
#endif

}  // namespace
}  // namespace ld
