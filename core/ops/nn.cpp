// Neural-network op layer (core/ops/nn.h): input checks, backend dispatch and backward rules for
// embedding, layer/RMS norm, softmax, dropout, losses, scaled dot-product attention and RoPE.
#include "core/ops/nn.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/profiler.h"
#ifdef LD_WITH_CUDA
#include "core/cuda/attention.h"
#endif

namespace ld {

namespace {

void check_floating(const char* op, const char* what, const Tensor& t) {
  LD_CHECK(t.defined(), "{}: {} is undefined", op, what);
  LD_CHECK(is_floating(t.dtype()), "{}: {} must be floating point, got {}", op, what, t.desc());
}

void check_same(const char* op, const char* what, const Tensor& t, const Tensor& ref) {
  LD_CHECK(t.dtype() == ref.dtype(), "{}: dtype mismatch: {} is {} but input is {}", op, what,
           t.desc(), ref.desc());
  LD_CHECK(t.device() == ref.device(), "{}: device mismatch: {} is {} but input is {}", op, what,
           t.desc(), ref.desc());
}

// An affine parameter of a norm over the last dim of x: [n], x's dtype and device.
void check_norm_param(const char* op, const char* what, const Tensor& p, const Tensor& x) {
  if (!p.defined()) return;
  LD_CHECK(p.dim() == 1 && p.size(0) == x.size(-1), "{}: {} must be [{}] to match input {}, got {}",
           op, what, x.size(-1), x.desc(), p.desc());
  check_same(op, what, p, x);
}

// True when `s` broadcasts to `target` without changing it (numpy rules, fewer dims allowed).
bool broadcasts_to(const Shape& s, const Shape& target) {
  if (s.size() > target.size()) return false;
  const size_t lead = target.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != 1 && s[i] != target[lead + i]) return false;
  return true;
}

}  // namespace

// ---------------- embedding ----------------

Tensor embedding(const Tensor& weight, const Tensor& ids, int64_t padding_idx) {
  LD_OP_SCOPE("embedding");
  check_floating("embedding", "weight", weight);
  LD_CHECK(weight.dim() == 2, "embedding: weight must be [V, d], got {}", weight.desc());
  LD_CHECK(ids.defined() && ids.dtype() == DType::i64, "embedding: ids must be i64, got {}",
           ids.defined() ? ids.desc() : std::string("undefined"));
  LD_CHECK(ids.device() == weight.device(), "embedding: ids {} and weight {} on different devices",
           ids.desc(), weight.desc());
  const int64_t V = weight.size(0), d = weight.size(1), rows = ids.numel();
  LD_CHECK(padding_idx < V, "embedding: padding_idx {} is out of range for vocabulary size {} ({})",
           padding_idx, V, weight.desc());
  Tensor idc = ids.detach().contiguous().view({rows});
  {
    std::vector<int64_t> iv = idc.to_vector<int64_t>();
    for (int64_t i = 0; i < rows; ++i)
      LD_CHECK(iv[i] >= 0 && iv[i] < V,
               "embedding: id {} at position {} is out of range for vocabulary size {} "
               "(weight {}, ids {})",
               iv[i], i, V, weight.desc(), shape_str(ids.shape()));
  }
  Shape os = ids.shape();
  os.push_back(d);
  Tensor out = Tensor::empty(os, weight.dtype(), weight.device());
  Tensor out2 = out.view({rows, d});
  Tensor wd = weight.detach().contiguous();
  LD_DISPATCH_DEVICE(weight, embedding_fwd, out2, wd, idc);
  return record("embedding", out, {weight}, [=](const Tensor& g) {
    Tensor gw = Tensor::zeros({V, d}, g.dtype(), g.device());
    Tensor g2 = g.contiguous().view({rows, d});
    LD_DISPATCH_DEVICE(g, embedding_bwd, gw, g2, idc, padding_idx);
    return std::vector<Tensor>{gw};
  });
}

// ---------------- layer_norm / rms_norm ----------------

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  LD_OP_SCOPE("layer_norm");
  check_floating("layer_norm", "input", x);
  LD_CHECK(x.dim() >= 1 && x.size(-1) > 0,
           "layer_norm: input must have a non-empty last dim, got {}", x.desc());
  check_norm_param("layer_norm", "weight", w, x);
  check_norm_param("layer_norm", "bias", b, x);
  LD_CHECK(eps >= 0, "layer_norm: eps must be >= 0, got {}", eps);
  const int64_t n = x.size(-1), rows = x.numel() / n;
  const Shape xs = x.shape();
  Tensor x2 = x.detach().contiguous().view({rows, n});
  Tensor wd = w.defined() ? w.detach().contiguous() : Tensor();
  Tensor bd = b.defined() ? b.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(xs, x.dtype(), x.device());
  // Saved statistics are f32 (f64 for f64 inputs) on both backends: bf16 ones would shift xhat.
  Tensor mean = Tensor::empty({rows}, stat_dtype(x.dtype()), x.device());
  Tensor rstd = Tensor::empty({rows}, stat_dtype(x.dtype()), x.device());
  Tensor y2 = y.view({rows, n});
  LD_DISPATCH_DEVICE(x, layer_norm_fwd, y2, mean, rstd, x2, wd, bd, eps);
  if (!needs_grad({&x, &w, &b})) return y;
  const bool gx = x.requires_grad(), gw = w.defined() && w.requires_grad(),
             gb = b.defined() && b.requires_grad();
  return record("layer_norm", y, {x, w, b}, [=](const Tensor& g) {
    Tensor g2 = g.contiguous().view({rows, n});
    Tensor dx = gx ? Tensor::empty({rows, n}, g.dtype(), g.device()) : Tensor();
    Tensor dw = gw ? Tensor::empty({n}, wd.dtype(), g.device()) : Tensor();
    Tensor db = gb ? Tensor::empty({n}, bd.dtype(), g.device()) : Tensor();
    LD_DISPATCH_DEVICE(g, layer_norm_bwd, dx, dw, db, g2, x2, mean, rstd, wd);
    return std::vector<Tensor>{gx ? dx.view(xs) : Tensor(), dw, db};
  });
}

Tensor rms_norm(const Tensor& x, const Tensor& w, double eps) {
  LD_OP_SCOPE("rms_norm");
  check_floating("rms_norm", "input", x);
  LD_CHECK(x.dim() >= 1 && x.size(-1) > 0, "rms_norm: input must have a non-empty last dim, got {}",
           x.desc());
  check_norm_param("rms_norm", "weight", w, x);
  LD_CHECK(eps >= 0, "rms_norm: eps must be >= 0, got {}", eps);
  const int64_t n = x.size(-1), rows = x.numel() / n;
  const Shape xs = x.shape();
  Tensor x2 = x.detach().contiguous().view({rows, n});
  Tensor wd = w.defined() ? w.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(xs, x.dtype(), x.device());
  Tensor rstd = Tensor::empty({rows}, stat_dtype(x.dtype()), x.device());  // as layer_norm
  Tensor y2 = y.view({rows, n});
  LD_DISPATCH_DEVICE(x, rms_norm_fwd, y2, rstd, x2, wd, eps);
  if (!needs_grad(x, w)) return y;
  const bool gx = x.requires_grad(), gw = w.defined() && w.requires_grad();
  return record("rms_norm", y, {x, w}, [=](const Tensor& g) {
    Tensor g2 = g.contiguous().view({rows, n});
    Tensor dx = gx ? Tensor::empty({rows, n}, g.dtype(), g.device()) : Tensor();
    Tensor dw = gw ? Tensor::empty({n}, wd.dtype(), g.device()) : Tensor();
    LD_DISPATCH_DEVICE(g, rms_norm_bwd, dx, dw, g2, x2, rstd, wd);
    return std::vector<Tensor>{gx ? dx.view(xs) : Tensor(), dw};
  });
}

// ---------------- softmax / log_softmax ----------------

// The kernels work on the last dim; another `dim` is swapped to the end and back.
static Tensor softmax_impl(const char* op, const Tensor& x, int64_t dim, const Tensor& mask,
                           bool log) {
  check_floating(op, "input", x);
  LD_CHECK(x.dim() >= 1, "{}: input must have at least one dim, got {}", op, x.desc());
  const int64_t nd = x.dim();
  dim = wrap_dim(dim, nd, "softmax dim");
  if (mask.defined()) {
    check_same(op, "mask", mask, x);
    LD_CHECK(broadcasts_to(mask.shape(), x.shape()),
             "{}: mask {} does not broadcast to input shape {}", op, shape_str(mask.shape()),
             shape_str(x.shape()));
  }
  const bool swap = dim != nd - 1;
  auto to_last = [&](const Tensor& t) { return swap ? t.transpose(dim, nd - 1) : t; };
  Tensor xl = to_last(x.detach()).contiguous();
  Tensor ml;
  if (mask.defined()) {
    Tensor m = mask.detach();
    while (m.dim() < nd) m = m.unsqueeze(0);
    ml = to_last(m.expand(x.shape()));
  }
  Tensor y = Tensor::empty(xl.shape(), x.dtype(), x.device());
  LD_DISPATCH_DEVICE(x, softmax_fwd, y, xl, ml, log);
  Tensor out = swap ? y.transpose(dim, nd - 1).contiguous() : y;
  if (!needs_grad(x, mask)) return out;
  const bool gx = x.requires_grad(), gm = mask.defined() && mask.requires_grad();
  const Shape mshape = mask.defined() ? mask.shape() : Shape();
  Tensor yd = y.detach();  // never the recorded output itself (no reference cycle)
  return record(log ? "log_softmax" : "softmax", out, {x, mask}, [=](const Tensor& g) {
    Tensor gl = (swap ? g.transpose(dim, nd - 1) : g).contiguous();
    Tensor dl = Tensor::empty(gl.shape(), g.dtype(), g.device());
    LD_DISPATCH_DEVICE(g, softmax_bwd, dl, yd, gl, log);
    Tensor dx = swap ? dl.transpose(dim, nd - 1).contiguous() : dl;
    return std::vector<Tensor>{gx ? dx : Tensor(), gm ? sum_to(dx, mshape) : Tensor()};
  });
}

Tensor softmax(const Tensor& x, int64_t dim, const Tensor& mask) {
  LD_OP_SCOPE("softmax");
  return softmax_impl("softmax", x, dim, mask, false);
}

Tensor log_softmax(const Tensor& x, int64_t dim, const Tensor& mask) {
  LD_OP_SCOPE("log_softmax");
  return softmax_impl("log_softmax", x, dim, mask, true);
}

// ---------------- dropout ----------------

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset) {
  LD_OP_SCOPE("dropout");
  check_floating("dropout", "input", x);
  LD_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got {} (input {})", p, x.desc());
  if (!training || p == 0.0) return x;
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor keep = Tensor::empty(x.shape(), DType::b8, x.device());
  LD_DISPATCH_DEVICE(x, dropout_fwd, out, keep, xc, p, seed, offset);
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  return record("dropout", out, {x}, [keep, scale](const Tensor& g) {
    Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
    return std::vector<Tensor>{where(keep, mul(g, scale), zero)};
  });
}

// ---------------- losses ----------------

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  LD_OP_SCOPE("cross_entropy");
  check_floating("cross_entropy", "logits", logits);
  LD_CHECK(logits.dim() == 2 && logits.size(1) > 0,
           "cross_entropy: logits must be [N, C] with C > 0, got {}", logits.desc());
  const int64_t N = logits.size(0), C = logits.size(1);
  LD_CHECK(targets.defined() && targets.dtype() == DType::i64 && targets.dim() == 1 &&
               targets.size(0) == N,
           "cross_entropy: targets must be i64 [{}] to match logits {}, got {}", N, logits.desc(),
           targets.defined() ? targets.desc() : std::string("undefined"));
  LD_CHECK(targets.device() == logits.device(),
           "cross_entropy: targets {} and logits {} on different devices", targets.desc(),
           logits.desc());
  Tensor tc = targets.detach().contiguous();
  int64_t count = 0;
  {
    std::vector<int64_t> tv = tc.to_vector<int64_t>();
    for (int64_t i = 0; i < N; ++i) {
      if (tv[i] == ignore_index) continue;
      LD_CHECK(tv[i] >= 0 && tv[i] < C,
               "cross_entropy: target {} at row {} is out of range for {} classes (logits {}, "
               "ignore_index {})",
               tv[i], i, C, logits.desc(), ignore_index);
      ++count;
    }
  }
  // Per-row loss/lse (and grad_row in backward) are statistics: f32 (f64 for f64 logits) on both
  // backends, so a bf16 lse cannot skew the softmax the backward recomputes and the mean is taken
  // over unrounded row losses. The result has the logits' dtype.
  const DType sdt = stat_dtype(logits.dtype());
  Tensor xc = logits.detach().contiguous();
  Tensor loss = Tensor::empty({N}, sdt, logits.device());
  Tensor lse = Tensor::empty({N}, sdt, logits.device());
  LD_DISPATCH_DEVICE(logits, cross_entropy_fwd, loss, lse, xc, tc, ignore_index);
  Tensor out;
  {
    NoGradGuard ng;
    // Mean over the counted rows; 0 counted rows gives nan (as torch), never a silent 0.
    const double inv =
        count > 0 ? 1.0 / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
    out = mul(sum(loss), inv);
    if (out.dtype() != logits.dtype()) out = out.to(logits.dtype());
  }
  const double row_scale = count > 0 ? 1.0 / static_cast<double>(count) : 0.0;
  return record("cross_entropy", out, {logits}, [=](const Tensor& g) {
    Tensor grad_row = mul(g.to(sdt).reshape({1}).expand({N}), row_scale);
    Tensor dl = Tensor::empty({N, C}, xc.dtype(), g.device());
    LD_DISPATCH_DEVICE(g, cross_entropy_bwd, dl, grad_row, xc, lse, tc, ignore_index);
    return std::vector<Tensor>{dl};
  });
}

Tensor mse_loss(const Tensor& input, const Tensor& target) {
  LD_OP_SCOPE("mse_loss");
  check_floating("mse_loss", "input", input);
  check_floating("mse_loss", "target", target);
  LD_CHECK(input.shape() == target.shape(), "mse_loss: input {} and target {} differ in shape",
           input.desc(), target.desc());
  check_same("mse_loss", "target", target, input);
  return mean(square(sub(input, target)));
}

// ---------------- attention ----------------

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_padding_mask, bool causal, double scale) {
  LD_OP_SCOPE("scaled_dot_product_attention");
  // clang-format off
#ifdef LD_WITH_CUDA
  if (q.is_cuda()) { Tensor r = cuda::fused_sdpa(q, k, v, key_padding_mask, causal, scale); if (r.defined()) return r; }
#endif
  // clang-format on
  const char* op = "scaled_dot_product_attention";
  check_floating(op, "q", q);
  check_floating(op, "k", k);
  check_floating(op, "v", v);
  LD_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
           "{}: q, k, v must be [B, H, T, D], got q {}, k {}, v {}", op, q.desc(), k.desc(),
           v.desc());
  check_same(op, "k", k, q);
  check_same(op, "v", v, q);
  const int64_t B = q.size(0), Hq = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Tk = k.size(2), Dv = v.size(3);
  LD_CHECK(
      k.size(0) == B && v.size(0) == B && v.size(1) == Hkv && v.size(2) == Tk && k.size(3) == D,
      "{}: shapes do not match: q {} [B, Hq, Tq, D], k {} [B, Hkv, Tk, D], v {} [B, Hkv, Tk, "
      "Dv]",
      op, shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  LD_CHECK(Hkv > 0 && Hq % Hkv == 0,
           "{}: query heads {} are not a multiple of key/value heads {} (q {}, k {})", op, Hq, Hkv,
           shape_str(q.shape()), shape_str(k.shape()));
  if (key_padding_mask.defined()) {
    LD_CHECK(key_padding_mask.dtype() == DType::b8 && key_padding_mask.dim() == 2 &&
                 key_padding_mask.size(0) == B && key_padding_mask.size(1) == Tk,
             "{}: key_padding_mask must be bool [B, Tk] = [{}, {}], got {}", op, B, Tk,
             key_padding_mask.desc());
    LD_CHECK(key_padding_mask.device() == q.device(),
             "{}: key_padding_mask {} and q {} on different devices", op, key_padding_mask.desc(),
             q.desc());
  }
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(D));

  // Grouped K/V heads: query head h reads key/value head h / G (as HF repeat_kv). expand +
  // reshape copies, and its backward sums the G copies back into the shared head.
  Tensor kk = k, vv = v;
  if (Hq != Hkv) {
    const int64_t G = Hq / Hkv;
    kk = k.unsqueeze(2).expand({B, Hkv, G, Tk, D}).reshape({B, Hq, Tk, D});
    vv = v.unsqueeze(2).expand({B, Hkv, G, Tk, Dv}).reshape({B, Hq, Tk, Dv});
  }
  Tensor scores = mul(matmul(q, kk.transpose(-2, -1)), s);  // [B, Hq, Tq, Tk]

  // Additive mask, 0 where attended and -inf where not: [B or 1, 1, Tq or 1, Tk].
  const double ninf = -std::numeric_limits<double>::infinity();
  Tensor bias;
  if (key_padding_mask.defined()) {
    Tensor zero = Tensor::zeros({}, q.dtype(), q.device());
    Tensor minus_inf = Tensor::full({}, ninf, q.dtype(), q.device());
    bias = where(key_padding_mask.reshape({B, 1, 1, Tk}), zero, minus_inf);
  }
  if (causal) {
    Tensor c = Tensor::zeros({1, 1, Tq, Tk}, DType::f64, kCPU);
    double* cp = c.data<double>();
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tk; ++j)
        if (j > i + (Tk - Tq)) cp[i * Tk + j] = ninf;
    c = c.to(q.device(), q.dtype());
    bias = bias.defined() ? add(bias, c) : c;
  }
  // Rows with no attended key give an all-zero softmax row (core/cpu/softmax.cpp), so their
  // output is 0 rather than nan.
  Tensor attn = softmax(scores, -1, bias);
  return matmul(attn, vv);  // [B, Hq, Tq, Dv]
}

// ---------------- RoPE ----------------

Tensor rope(const Tensor& x, const Tensor& positions, double theta) {
  LD_OP_SCOPE("rope");
  check_floating("rope", "x", x);
  LD_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rope: x must be [B, H, T, D] with D even, got {}",
           x.desc());
  const int64_t B = x.size(0), T = x.size(2);
  LD_CHECK(positions.defined() && positions.dtype() == DType::i64,
           "rope: positions must be i64 [B, T] or [T], got {}",
           positions.defined() ? positions.desc() : std::string("undefined"));
  LD_CHECK((positions.dim() == 1 && positions.size(0) == T) ||
               (positions.dim() == 2 && positions.size(0) == B && positions.size(1) == T),
           "rope: positions {} must be [B, T] = [{}, {}] or [T] = [{}] for x {}",
           shape_str(positions.shape()), B, T, T, x.desc());
  LD_CHECK(positions.device() == x.device(), "rope: positions {} and x {} on different devices",
           positions.desc(), x.desc());
  LD_CHECK(theta > 0, "rope: theta must be positive, got {}", theta);
  Tensor pos =
      (positions.dim() == 1 ? positions.unsqueeze(0).expand({B, T}) : positions).contiguous();
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  LD_DISPATCH_DEVICE(x, rope, out, xc, pos, theta, +1);
  return record("rope", out, {x}, [pos, theta](const Tensor& g) {
    // The rotation is orthogonal: its transpose (the gradient map) is the inverse rotation.
    Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(g.shape(), g.dtype(), g.device());
    LD_DISPATCH_DEVICE(g, rope, dx, gc, pos, theta, -1);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace ld
