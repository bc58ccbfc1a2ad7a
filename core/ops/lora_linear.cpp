// lora_linear: checks, the CPU/reference composition, the fused CUDA path and its backward.
#include "core/ops/lora_linear.h"

#include "core/autocast.h"
#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/profiler.h"
#ifdef LD_WITH_CUDA
#include "core/cuda/cuda_ops.h"
#endif

namespace ld {

namespace {

void check_args(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& A, const Tensor& B,
                double p, const Tensor& token_mask) {
  LD_CHECK(x.defined() && W.defined() && A.defined() && B.defined(),
           "lora_linear: x, W, A and B must be defined");
  LD_CHECK(x.dim() >= 2, "lora_linear: x must be [batch, ..., d_in], got {}", x.desc());
  LD_CHECK(W.dim() == 2 && A.dim() == 2 && B.dim() == 2,
           "lora_linear: W {}, A {}, B {} must be 2-D", W.desc(), A.desc(), B.desc());
  const int64_t d_in = x.size(-1), d_out = W.size(0), r = A.size(0);
  LD_CHECK(W.size(1) == d_in, "lora_linear: x {} does not match W {} (d_in {})", x.desc(), W.desc(),
           W.size(1));
  LD_CHECK(A.size(1) == d_in, "lora_linear: A {} must be [r, {}]", A.desc(), d_in);
  LD_CHECK(B.size(0) == d_out && B.size(1) == r, "lora_linear: B {} must be [{}, {}]", B.desc(),
           d_out, r);
  if (b.defined())
    LD_CHECK(b.dim() == 1 && b.size(0) == d_out, "lora_linear: bias {} must be [{}]", b.desc(),
             d_out);
  for (const Tensor* t : {&W, &b, &A, &B}) {
    if (!t->defined()) continue;
    LD_CHECK(t->dtype() == x.dtype(), "lora_linear: dtype mismatch: {} vs x {}", t->desc(),
             x.desc());
    LD_CHECK(t->device() == x.device(), "lora_linear: device mismatch: {} vs x {}", t->desc(),
             x.desc());
  }
  LD_CHECK(p >= 0 && p <= 1, "lora_linear: dropout probability {} outside [0, 1]", p);
  if (token_mask.defined()) {
    const int64_t tokens = x.dim() == 2 ? 1 : x.numel() / (x.size(0) * d_in);
    LD_CHECK(token_mask.dtype() == DType::b8 && token_mask.dim() == 2 &&
                 token_mask.size(0) == x.size(0) && token_mask.size(1) == tokens,
             "lora_linear: token_mask {} must be bool [{}, {}]", token_mask.desc(), x.size(0),
             tokens);
    LD_CHECK(token_mask.device() == x.device(), "lora_linear: token_mask on {} but x on {}",
             token_mask.device().str(), x.device().str());
  }
}

int64_t tokens_of(const Tensor& x) {
  return x.dim() == 2 ? 1 : (x.size(0) == 0 ? 0 : x.numel() / (x.size(0) * x.size(-1)));
}

// Adds `imp` (f32 [batch]) into *out, or makes it *out.
void deliver_importance(Tensor* out, const Tensor& imp) {
  if (out->defined()) {
    LD_CHECK(
        out->shape() == imp.shape() && out->dtype() == DType::f32 && out->device() == imp.device(),
        "lora_linear: importance accumulator {} must be f32 {} on {}", out->desc(),
        shape_str(imp.shape()), imp.device().str());
    add_(*out, imp, 1.0);
  } else {
    *out = imp;
  }
}

}  // namespace

Tensor lora_linear_reference(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& A,
                             const Tensor& B, double scale, double dropout_p, bool training,
                             uint64_t seed, uint64_t offset, Tensor* importance_out,
                             const Tensor& token_mask) {
  LD_OP_SCOPE("lora_linear_reference");
  check_args(x, W, b, A, B, dropout_p, token_mask);
  Tensor xd = dropout(x, dropout_p, training, seed, offset);
  Tensor y = linear(x, W.detach(), b);
  Tensor u = linear(xd, A);  // [..., r]
  y = add(y, mul(linear(u, B), scale));
  if (importance_out) {
    NoGradGuard ng;
    const int64_t batch = x.size(0), r = A.size(0);
    Tensor u3 = u.detach().reshape({batch, tokens_of(x), r});
    Tensor G = matmul(B.detach().t(), B.detach());  // [r, r]
    Tensor q = sum(mul(matmul(u3, G), u3), {-1});   // [batch, tokens]
    if (token_mask.defined()) q = where(token_mask, q, Tensor::zeros({}, q.dtype(), q.device()));
    Tensor imp = autocast_cast(mul(sum(q, {-1}), scale * scale), DType::f32);
    deliver_importance(importance_out, imp);
  }
  return y;
}

#ifdef LD_WITH_CUDA
namespace {

Tensor lora_linear_cuda(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& A,
                        const Tensor& B, double s, double p, bool training, uint64_t seed,
                        uint64_t offset, Tensor* importance_out, const Tensor& token_mask) {
  LD_OP_SCOPE("lora_linear_cuda");
  const int64_t d_in = x.size(-1), d_out = W.size(0), r = A.size(0);
  const int64_t N = x.numel() / std::max<int64_t>(d_in, 1);
  Shape os = x.shape();
  os.back() = d_out;
  Tensor x2 = cuda::contiguous(x.detach()).view({N, d_in});
  Tensor Ad = A.detach(), Bd = B.detach(), Wd = W.detach(), bd = b.defined() ? b.detach() : b;
  const bool drop = training && p > 0;
  Tensor xd = x2, keep;
  if (drop) {
    xd = Tensor::empty({N, d_in}, x.dtype(), x.device());
    keep = Tensor::empty({N, d_in}, DType::b8, x.device());
    cuda::dropout_fwd(xd, keep, x2, p, seed, offset);
  }
  Tensor y = Tensor::empty({N, d_out}, x.dtype(), x.device());
  Tensor u = Tensor::empty({N, r}, x.dtype(), x.device());
  cuda::linear_fwd(y, x2, Wd, bd, /*gelu=*/false);  // base GEMM, bias in the epilogue
  if (r > 0) {
    cuda::linear_fwd(u, xd, Ad, Tensor(), false);  // u = A x_d
    cuda::lora_add_up(y, u, Bd, s);                // y += s u B^T
  }
  if (importance_out) {
    const int64_t batch = x.size(0);
    Tensor G = Tensor::empty({r, r}, DType::f32, x.device());
    Tensor imp = Tensor::zeros({batch}, DType::f32, x.device());
    if (r > 0 && N > 0) {
      cuda::lora_gram(G, Bd);
      cuda::lora_importance(imp, u.view({batch, tokens_of(x), r}), G,
                            token_mask.defined() ? cuda::contiguous(token_mask) : token_mask,
                            s * s);
    }
    deliver_importance(importance_out, imp);
  }
  Tensor out = y.view(os);
  const bool gx = x.requires_grad(), gA = A.requires_grad(), gB = B.requires_grad(),
             gb = b.defined() && b.requires_grad();
  if (!grad_enabled() || !(gx || gA || gB || gb)) return out;
  std::vector<Tensor> inputs{x, A, B};
  if (gb) inputs.push_back(b);
  const Shape xs = x.shape();
  return record("lora_linear", out, inputs, [=](const Tensor& g_in) {
    NoGradGuard ng;
    Tensor g = cuda::contiguous(g_in).view({N, d_out});
    Tensor gu = mul(matmul(g, Bd), s);  // [N, r]
    Tensor dx, dA, dB, db;
    if (gx) {
      Tensor dxd = matmul(gu, Ad);  // [N, d_in]
      if (drop)
        dxd = mul(where(keep, dxd, Tensor::zeros({}, dxd.dtype(), dxd.device())), 1.0 / (1.0 - p));
      dx = add(matmul(g, Wd), dxd).view(xs);
    }
    if (gA) dA = matmul(gu.t(), xd);        // [r, d_in]
    if (gB) dB = mul(matmul(g.t(), u), s);  // [d_out, r]
    if (gb) db = sum(g, {0});
    std::vector<Tensor> grads{dx, dA, dB};
    if (gb) grads.push_back(db);
    return grads;
  });
}

}  // namespace
#endif

Tensor lora_linear(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& A,
                   const Tensor& B, double scale, double dropout_p, bool training, uint64_t seed,
                   uint64_t offset, Tensor* importance_out, const Tensor& token_mask) {
  LD_OP_SCOPE("lora_linear");
  check_args(x, W, b, A, B, dropout_p, token_mask);
#ifdef LD_WITH_CUDA
  const DType dt = x.dtype();
  if (x.is_cuda() && (dt == DType::f32 || dt == DType::bf16 || dt == DType::f16))
    return lora_linear_cuda(x, W, b, A, B, scale, dropout_p, training, seed, offset, importance_out,
                            token_mask);
#endif
  return lora_linear_reference(x, W, b, A, B, scale, dropout_p, training, seed, offset,
                               importance_out, token_mask);
}

}  // namespace ld
