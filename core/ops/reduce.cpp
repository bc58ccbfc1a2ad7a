// Reductions: the reduced dims are moved last and made contiguous, then one row kernel runs.
#include "core/ops/reduce.h"

#include <algorithm>
#include <numeric>

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/ops/elementwise.h"
#include "core/profiler.h"

namespace ld {

namespace {

struct Plan {
  std::vector<int64_t> perm;  // kept dims then reduced dims
  Shape kept_shape;           // output shape without keepdim
  Shape keep_shape;           // output shape with keepdim
  int64_t rows = 1, n = 1;
};

Plan make_plan(const Tensor& x, std::vector<int64_t> dims) {
  Plan p;
  std::vector<bool> red(x.dim(), false);
  for (int64_t& d : dims) {
    d = wrap_dim(d, x.dim(), "reduce dim");
    LD_CHECK(!red[d] || x.dim() == 0, "reduce: dim {} given twice", d);
    if (x.dim() > 0) red[d] = true;
  }
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (!red[i]) {
      p.perm.push_back(i);
      p.kept_shape.push_back(x.size(i));
      p.keep_shape.push_back(x.size(i));
      p.rows *= x.size(i);
    } else {
      p.keep_shape.push_back(1);
    }
  }
  for (int64_t i = 0; i < x.dim(); ++i)
    if (red[i]) {
      p.perm.push_back(i);
      p.n *= x.size(i);
    }
  return p;
}

Tensor rows_view(const Tensor& x, const Plan& p) {
  Tensor xd = x.detach();
  if (x.dim() == 0) return xd.reshape({1, 1});
  return xd.permute(p.perm).contiguous().view({p.rows, p.n});
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  LD_OP_SCOPE("sum");
  LD_CHECK(x.defined(), "sum of an undefined tensor");
  Plan p = make_plan(x, dims);
  Tensor out = Tensor::empty({p.rows}, x.dtype(), x.device());
  if (p.n == 0) {
    out.zero_();
  } else {
    Tensor xr = rows_view(x, p);
    LD_DISPATCH_DEVICE(x, reduce_sum_rows, out, xr);
  }
  out = out.view(keepdim ? p.keep_shape : p.kept_shape);
  Shape in_shape = x.shape(), keep_shape = p.keep_shape;
  return record("sum", out, {x}, [in_shape, keep_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(keep_shape).expand(in_shape).contiguous()};
  });
}

Tensor sum(const Tensor& x) {
  std::vector<int64_t> all(x.dim());
  std::iota(all.begin(), all.end(), 0);
  return sum(x, all, false);
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  LD_OP_SCOPE("mean");
  Plan p = make_plan(x, dims);
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(p.n));
}

Tensor mean(const Tensor& x) {
  LD_OP_SCOPE("mean");
  return mul(sum(x), 1.0 / static_cast<double>(x.numel()));
}

static std::pair<Tensor, Tensor> max_impl(const Tensor& x, int64_t dim, bool keepdim) {
  LD_CHECK(x.defined(), "max of an undefined tensor");
  Plan p = make_plan(x, {dim});
  LD_CHECK(p.n > 0, "max over an empty dim of {}", x.desc());
  Tensor vals = Tensor::empty({p.rows}, x.dtype(), x.device());
  Tensor idx = Tensor::empty({p.rows}, DType::i64, x.device());
  Tensor xr = rows_view(x, p);
  LD_DISPATCH_DEVICE(x, reduce_max_rows, vals, idx, xr);
  Shape os = keepdim ? p.keep_shape : p.kept_shape;
  return {vals.view(os), idx.view(os)};
}

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  LD_OP_SCOPE("max");
  auto [vals, idx] = max_impl(x, dim, keepdim);
  int64_t d = wrap_dim(dim, x.dim());
  Shape in_shape = x.shape(), keep_shape = make_plan(x, {dim}).keep_shape;
  Tensor idx_keep = idx.reshape(keep_shape);
  return record("max", vals, {x}, [=](const Tensor& g) {
    // scatter g to the argmax positions: one-hot along d via comparison with an arange
    Shape ar_shape(in_shape.size(), 1);
    ar_shape[d] = in_shape[d];
    Tensor ar = Tensor::empty({in_shape[d]}, DType::i64, kCPU);
    int64_t* a = ar.data<int64_t>();
    for (int64_t i = 0; i < in_shape[d]; ++i) a[i] = i;
    ar = ar.to(g.device()).view(ar_shape);
    Tensor hit = compare(CompareOp::Eq, ar, idx_keep);
    Tensor zero = Tensor::zeros({}, g.dtype(), g.device());
    return std::vector<Tensor>{where(hit, g.reshape(keep_shape), zero)};
  });
}

Tensor max(const Tensor& x) { return max(x.reshape({-1}), 0, false); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  LD_OP_SCOPE("argmax");
  NoGradGuard ng;
  return max_impl(x, dim, keepdim).second;
}

}  // namespace ld
