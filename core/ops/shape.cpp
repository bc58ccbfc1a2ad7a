// cat/split/stack, index_select, arange.
#include "core/ops/shape.h"

#include "core/autograd.h"
#include "core/kernels.h"
#include "core/profiler.h"

namespace ld {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  LD_OP_SCOPE("cat");
  LD_CHECK(!xs.empty(), "cat: no tensors");
  const Tensor& x0 = xs[0];
  dim = wrap_dim(dim, x0.dim());
  Shape os = x0.shape();
  os[dim] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    LD_CHECK(x.dim() == x0.dim(), "cat: tensor {} is {} but tensor 0 is {}", i, x.desc(),
             x0.desc());
    LD_CHECK(x.dtype() == x0.dtype() && x.device() == x0.device(),
             "cat: tensor {} is {} but tensor 0 is {}", i, x.desc(), x0.desc());
    for (int64_t d = 0; d < x.dim(); ++d)
      LD_CHECK(d == dim || x.size(d) == x0.size(d),
               "cat along dim {}: tensor {} has shape {} but tensor 0 has {}", dim, i,
               shape_str(x.shape()), shape_str(x0.shape()));
    os[dim] += x.size(dim);
    sizes.push_back(x.size(dim));
  }
  Tensor out = Tensor::empty(os, x0.dtype(), x0.device());
  int64_t at = 0;
  for (const Tensor& x : xs) {
    out.detach().narrow(dim, at, x.size(dim)).copy_(x);
    at += x.size(dim);
  }
  return record("cat", out, xs, [sizes, dim](const Tensor& g) {
    std::vector<Tensor> gs;
    int64_t at = 0;
    for (int64_t s : sizes) {
      gs.push_back(g.narrow(dim, at, s));
      at += s;
    }
    return gs;
  });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  LD_OP_SCOPE("split");
  dim = wrap_dim(dim, x.dim());
  int64_t total = 0;
  for (int64_t s : sizes) {
    LD_CHECK(s >= 0, "split: negative size in [{}]", fmt::join(sizes, ", "));
    total += s;
  }
  LD_CHECK(total == x.size(dim), "split: sizes [{}] sum to {} but dim {} of {} is {}",
           fmt::join(sizes, ", "), total, dim, x.desc(), x.size(dim));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  LD_CHECK(chunks > 0, "chunk: chunks must be positive, got {}", chunks);
  int64_t n = x.size(dim), each = (n + chunks - 1) / chunks;
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += each) sizes.push_back(std::min(each, n - at));
  return split(x, sizes, dim);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  LD_OP_SCOPE("stack");
  LD_CHECK(!xs.empty(), "stack: no tensors");
  std::vector<Tensor> us;
  for (const Tensor& x : xs) us.push_back(x.unsqueeze(wrap_dim(dim, x.dim() + 1)));
  return cat(us, dim);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx) {
  LD_OP_SCOPE("index_select");
  LD_CHECK(idx.defined() && idx.dim() == 1 && idx.dtype() == DType::i64,
           "index_select: index must be 1-D i64, got {}", idx.desc());
  LD_CHECK(idx.device() == x.device(), "index_select: index on {} but input on {}",
           idx.device().str(), x.device().str());
  dim = wrap_dim(dim, x.dim());
  const int64_t n = x.size(dim);
  {
    std::vector<int64_t> iv = idx.to_vector<int64_t>();
    for (size_t i = 0; i < iv.size(); ++i)
      LD_CHECK(iv[i] >= 0 && iv[i] < n,
               "index_select: index {} at position {} is out of range "
               "for dim {} of size {} ({})",
               iv[i], i, dim, n, x.desc());
  }
  Shape os = x.shape();
  os[dim] = idx.size(0);
  Tensor out = Tensor::empty(os, x.dtype(), x.device());
  Tensor xc = x.detach().contiguous();
  LD_DISPATCH_DEVICE(x, index_select, out, xc, dim, idx);
  Shape in_shape = x.shape();
  return record("index_select", out, {x}, [=](const Tensor& g) {
    Tensor gx = Tensor::zeros(in_shape, g.dtype(), g.device());
    Tensor gc = g.contiguous();
    LD_DISPATCH_DEVICE(g, index_add_, gx, dim, idx, gc);
    return std::vector<Tensor>{gx};
  });
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  LD_OP_SCOPE("arange");
  LD_CHECK(step != 0, "arange: step must be non-zero");
  int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((end - start) / step)));
  Tensor t = Tensor::empty({n}, DType::f64, kCPU);
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = start + static_cast<double>(i) * step;
  return t.to(device, dtype);
}

}  // namespace ld
