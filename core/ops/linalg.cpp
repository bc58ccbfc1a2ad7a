// matmul and linear: batch dims broadcast, one bmm call per product, backward by matmuls.
#include "core/ops/linalg.h"

#include "core/autocast.h"
#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"
#include "core/profiler.h"

namespace ld {

// out = a @ b for a [..., m, k], b [..., k, n] (no autograd).
static Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  LD_CHECK(b.size(-2) == k, "matmul: inner dims differ: {} @ {}", a.desc(), b.desc());
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb);
  int64_t B = shape_numel(batch);
  Shape ea = batch, eb = batch;
  ea.insert(ea.end(), {m, k});
  eb.insert(eb.end(), {k, n});
  Tensor av = a.expand(ea), bv = b.expand(eb);
  // Collapse batch dims to one (a view when the batch strides nest, else a copy).
  auto collapse = [&](const Tensor& t, int64_t r, int64_t c) {
    return batch.empty() ? t.unsqueeze(0) : t.reshape({B, r, c});
  };
  // A broadcast batch (all batch strides 0) stays stride 0 without a copy.
  auto batch_view = [&](const Tensor& t, int64_t r, int64_t c) {
    bool all_zero = true;
    for (size_t i = 0; i < batch.size(); ++i) all_zero = all_zero && t.stride(i) == 0;
    if (!batch.empty() && all_zero) {
      Tensor base = t;
      for (size_t i = 0; i < batch.size(); ++i) base = base.select(0, 0);
      return Tensor::make(base.storage(), {B, r, c}, {0, base.stride(0), base.stride(1)},
                          base.offset(), base.dtype());
    }
    return collapse(t, r, c);
  };
  Tensor a3 = batch_view(av, m, k), b3 = batch_view(bv, k, n);
  Shape os = batch;
  os.insert(os.end(), {m, n});
  Tensor out = Tensor::empty(os, a.dtype(), a.device());
  Tensor o3 = out.view({B, m, n});
  LD_DISPATCH_DEVICE(a, bmm, o3, a3, b3, 1.0, 0.0);
  return out;
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  LD_CHECK(a_in.defined() && b_in.defined(), "matmul: undefined operand");
  LD_CHECK(a_in.dtype() == b_in.dtype(), "matmul: dtype mismatch: {} @ {}", a_in.desc(),
           b_in.desc());
  LD_CHECK(a_in.device() == b_in.device(), "matmul: device mismatch: {} @ {}", a_in.desc(),
           b_in.desc());
  LD_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: 0-d operand: {} @ {}", a_in.desc(),
           b_in.desc());
  // Mixed precision (core/autocast.h): CUDA f32 GEMMs run in bf16/f16 inside an AutocastGuard.
  // (the autocast path calls matmul again on the cast operands: that call is the one timed)
  if (Tensor r = autocast_matmul(a_in, b_in); r.defined()) return r;
  LD_OP_SCOPE("matmul");
  bool va = a_in.dim() == 1, vb = b_in.dim() == 1;
  Tensor a = va ? a_in.unsqueeze(0) : a_in;
  Tensor b = vb ? b_in.unsqueeze(1) : b_in;
  LD_CHECK(a.size(-1) == b.size(-2), "matmul: shapes {} and {} cannot be multiplied",
           shape_str(a_in.shape()), shape_str(b_in.shape()));
  Tensor out;
  {
    NoGradGuard ng;
    out = matmul_nd(a.detach(), b.detach());
  }
  if (needs_grad(a, b)) {
    Shape sa = a.shape(), sb = b.shape();
    bool ga = a.requires_grad(), gb = b.requires_grad();
    Tensor ad = a.detach(), bd = b.detach();
    out = record("matmul", out, {a, b}, [=](const Tensor& g) {
      Tensor da = ga ? sum_to(matmul_nd(g, bd.transpose(-2, -1)), sa) : Tensor();
      Tensor db = gb ? sum_to(matmul_nd(ad.transpose(-2, -1), g), sb) : Tensor();
      return std::vector<Tensor>{da, db};
    });
  }
  if (va) out = out.squeeze(-2);
  if (vb) out = out.squeeze(-1);
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  LD_OP_SCOPE("linear");
  LD_CHECK(w.defined() && w.dim() == 2, "linear: weight must be 2-D, got {}", w.desc());
  LD_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == w.size(1),
           "linear: input {} does not match weight {} (in_features {})", x.desc(), w.desc(),
           w.size(1));
  if (b.defined())
    LD_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "linear: bias {} does not match weight {}",
             b.desc(), w.desc());
  // Flatten leading dims so BLAS sees one [N, in] x [in, out] product.
  Shape os = x.shape();
  os.back() = w.size(0);
  Tensor x2 = x.reshape({-1, x.size(-1)});
  Tensor y = matmul(x2, w.t());
  if (b.defined()) y = add(y, b);
  return y.view(os);
}

}  // namespace ld
