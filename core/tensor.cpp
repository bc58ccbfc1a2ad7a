// Tensor metadata, factories, views and copies.
#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/autograd.h"
#include "core/cpu/copy.h"
#include "core/kernels.h"
#ifdef LD_WITH_CUDA
#include "core/cuda/cuda_ops.h"
#endif
#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"

namespace ld {

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* what) {
  int64_t n = std::max<int64_t>(ndim, 1);
  LD_CHECK(d >= -n && d < n, "{} {} out of range for a tensor of {} dims", what, d, ndim);
  return d < 0 ? d + n : d;
}

static const TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  LD_CHECK(p != nullptr, "use of an undefined tensor");
  return *p;
}

// ---------------- factories ----------------
Tensor Tensor::make(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                    int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) LD_CHECK(d >= 0, "negative size in shape {}", shape_str(shape));
  size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return make(std::make_shared<Storage>(nbytes, device), shape, contiguous_strides(shape), 0,
              dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

// ---------------- metadata ----------------
const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::size(int64_t d) const {
  LD_CHECK(dim() > 0, "size({}) of a 0-d tensor {}", d, desc());
  return shape()[wrap_dim(d, dim())];
}
int64_t Tensor::stride(int64_t d) const {
  LD_CHECK(dim() > 0, "stride({}) of a 0-d tensor {}", d, desc());
  return strides()[wrap_dim(d, dim())];
}
int64_t Tensor::numel() const { return shape_numel(shape()); }
int64_t Tensor::offset() const { return checked(impl_).offset; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked(impl_).storage; }
bool Tensor::shares_storage(const Tensor& o) const {
  return defined() && o.defined() && storage() == o.storage();
}
const std::string& Tensor::name() const { return checked(impl_).name; }
Tensor& Tensor::set_name(std::string n) {
  checked(impl_);
  impl_->name = std::move(n);
  return *this;
}

bool Tensor::is_contiguous() const {
  const auto& s = shape();
  const auto& st = strides();
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (s[i] == 1) continue;
    if (st[i] != expect) return false;
    expect *= s[i];
  }
  return true;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined tensor";
  std::string d = fmt::format("{} {} {}", shape_str(shape()), dtype_name(dtype()), device().str());
  if (!name().empty()) d = fmt::format("'{}' {}", name(), d);
  return d;
}

void* Tensor::raw_data() const {
  const auto& im = checked(impl_);
  return static_cast<char*>(im.storage->data()) +
         static_cast<size_t>(im.offset) * dtype_size(im.dtype);
}

double Tensor::item() const {
  LD_CHECK(numel() == 1, "item() needs one element, got {}", desc());
  Tensor c = to(kCPU, DType::f64).contiguous();
  return *c.data<double>();
}

std::string Tensor::str(int64_t max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  Tensor c = to(kCPU);
  if (!is_floating(c.dtype()) || c.dtype() != DType::f64) c = c.to(DType::f64);
  c = c.contiguous();
  const double* p = c.data<double>();
  std::ostringstream os;
  bool integral = !is_floating(dtype());
  std::function<void(int64_t, int64_t)> rec = [&](int64_t d, int64_t off) {
    if (d == c.dim()) {
      if (integral)
        os << fmt::format("{}", static_cast<int64_t>(p[off]));
      else
        os << fmt::format("{:.6g}", p[off]);
      return;
    }
    os << "[";
    int64_t n = c.size(d), st = c.stride(d);
    for (int64_t i = 0; i < n; ++i) {
      if (n > max_per_dim && i == max_per_dim / 2) {
        os << "..., ";
        i = n - max_per_dim / 2;
      }
      rec(d + 1, off + i * st);
      if (i + 1 < n) os << (d + 1 == c.dim() ? ", " : ",\n" + std::string(d + 1, ' '));
    }
    os << "]";
  };
  rec(0, 0);
  os << fmt::format(" ({})", desc());
  if (requires_grad()) os << " requires_grad";
  return os.str();
}

// ---------------- conversion and copies ----------------
Tensor& Tensor::copy_(const Tensor& src) {
  LD_CHECK(src.shape() == shape(), "copy_: source {} does not match destination {}", src.desc(),
           desc());
  if (device().is_cpu() && src.device().is_cpu()) {
    cpu::copy_strided(*this, src);
    return *this;
  }
  if (device().is_cuda() && src.device() == device()) {
    // On one device: the kernel converts dtypes and handles any strides (no staging, no recursion).
    LD_CUDA_ONLY(cuda::copy_strided(*this, src));
    return *this;
  }
  // Cross-device: stage through a contiguous tensor of the destination dtype on the source side.
  Tensor s = src.to(dtype()).contiguous();
  if (is_contiguous()) {
    copy_bytes(raw_data(), device(), s.raw_data(), s.device(), s.numel() * dtype_size(dtype()));
  } else {
    Tensor tmp = Tensor::empty(shape(), dtype(), device());
    copy_bytes(tmp.raw_data(), device(), s.raw_data(), s.device(), s.numel() * dtype_size(dtype()));
    copy_(tmp);
  }
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::fill_(double v) {
  if (device().is_cpu()) {
    cpu::fill(*this, v);
  } else {
    LD_CUDA_ONLY(cuda::fill(*this, v));
  }
  return *this;
}

Tensor Tensor::to(Device device) const { return to(device, dtype()); }
Tensor Tensor::to(DType dt) const { return to(device(), dt); }

Tensor Tensor::to(Device dev, DType dt) const {
  if (dev == device() && dt == dtype()) return *this;
  Tensor out;
  if (dev == device() || device().is_cpu()) {
    // convert on the source side (CPU) first, then move
    Tensor conv = *this;
    if (dt != dtype()) {
      LD_CHECK(device().is_cpu() || cuda_hooks(), "dtype conversion on {} needs the CUDA backend",
               device().str());
      conv = Tensor::empty(shape(), dt, device());
      conv.copy_(*this);
    }
    if (dev == device()) {
      out = conv;
    } else {
      out = Tensor::empty(shape(), dt, dev);
      out.copy_(conv);
    }
  } else {
    // CUDA -> CPU (possibly with conversion): move bytes, then convert on the CPU.
    Tensor c = contiguous();
    Tensor host = Tensor::empty(shape(), dtype(), kCPU);
    copy_bytes(host.raw_data(), kCPU, c.raw_data(), c.device(), c.numel() * dtype_size(dtype()));
    out = host.to(dev, dt);
  }
  if (needs_grad(*this) && is_floating(dt)) {
    DType src_dt = dtype();
    Device src_dev = device();
    out = record("to", out, {*this}, [src_dt, src_dev](const Tensor& g) {
      return std::vector<Tensor>{g.to(src_dev, src_dt)};
    });
  }
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  out.copy_(*this);
  return record("clone", out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

// ---------------- views ----------------
static Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides,
                        int64_t offset) {
  return Tensor::make(base.storage(), shape, strides, offset, base.dtype());
}

static Shape infer_shape(const Shape& shape, int64_t numel) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      LD_CHECK(infer < 0, "view/reshape: only one -1 allowed in {}", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      LD_CHECK(s[i] >= 0, "view/reshape: bad size in {}", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    LD_CHECK(known > 0 && numel % known == 0, "view/reshape: cannot infer -1 in {} for {} elements",
             shape_str(shape), numel);
    s[infer] = numel / known;
  }
  LD_CHECK(shape_numel(s) == numel, "view/reshape: shape {} is invalid for {} elements",
           shape_str(shape), numel);
  return s;
}

// Strides for viewing (shape, strides) as new_shape without copying, if possible (as PyTorch).
static bool view_strides(const Shape& shape, const Shape& strides, const Shape& ns, Shape& out) {
  out.assign(ns.size(), 0);
  if (shape.empty()) {  // a 0-d tensor views as any all-ones shape
    out.assign(ns.size(), 1);
    return true;
  }
  if (shape_numel(shape) == 0) {
    out = contiguous_strides(ns);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(ns.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= shape[td];
    if (td == 0 || (shape[td - 1] != 1 && strides[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || ns[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= ns[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Tensor Tensor::view(const Shape& shape_in) const {
  Shape ns = infer_shape(shape_in, numel());
  Shape st;
  LD_CHECK(view_strides(shape(), strides(), ns, st),
           "view: cannot view {} with strides {} as {} without a copy (use reshape)", desc(),
           shape_str(strides()), shape_str(ns));
  Tensor out = make_view(*this, ns, st, offset());
  Shape old = shape();
  return record("view", out, {*this},
                [old](const Tensor& g) { return std::vector<Tensor>{g.reshape(old)}; });
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  Shape ns = infer_shape(shape_in, numel());
  Shape st;
  if (view_strides(shape(), strides(), ns, st)) return view(ns);
  return clone().view(ns);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  LD_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: {} dims given for {}", dims.size(),
           desc());
  Shape ns(dims.size()), st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  std::vector<int64_t> inv(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute dim");
    LD_CHECK(!seen[d], "permute: repeated dim {} in [{}]", d, fmt::join(dims, ", "));
    seen[d] = true;
    ns[i] = shape()[d];
    st[i] = strides()[d];
    inv[d] = static_cast<int64_t>(i);
  }
  Tensor out = make_view(*this, ns, st, offset());
  return record("permute", out, {*this},
                [inv](const Tensor& g) { return std::vector<Tensor>{g.permute(inv)}; });
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(a, dim())], p[wrap_dim(b, dim())]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim());
  int64_t n = size(d);
  LD_CHECK(step >= 1, "slice: step must be >= 1, got {}", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape ns = shape(), st = strides();
  ns[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, ns, st, offset() + start * strides()[d]);
  Shape old = shape();
  DType dt = dtype();
  Device dev = device();
  return record("slice", out, {*this}, [=](const Tensor& g) {
    Tensor z = Tensor::zeros(old, dt, dev);
    z.slice(d, start, end, step).copy_(g);
    return std::vector<Tensor>{z};
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim());
  LD_CHECK(start >= 0 && length >= 0 && start + length <= size(d),
           "narrow: [{}, {}) out of range for dim {} of {}", start, start + length, d, desc());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim());
  int64_t n = size(d);
  LD_CHECK(index >= -n && index < n, "select: index {} out of range for dim {} of {}", index, d,
           desc());
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& ns_in) const {
  LD_CHECK(ns_in.size() >= shape().size(), "expand: {} cannot expand to fewer dims {}", desc(),
           shape_str(ns_in));
  size_t lead = ns_in.size() - shape().size();
  Shape ns = ns_in, st(ns_in.size(), 0);
  for (size_t i = 0; i < ns.size(); ++i) {
    if (i < lead) {
      LD_CHECK(ns[i] >= 0, "expand: bad size in {}", shape_str(ns_in));
      continue;
    }
    int64_t s = shape()[i - lead];
    if (ns[i] == -1) ns[i] = s;
    if (s == ns[i]) {
      st[i] = strides()[i - lead];
    } else {
      LD_CHECK(s == 1, "expand: cannot expand {} to {} (dim {} is {} not 1)", desc(),
               shape_str(ns_in), i - lead, s);
    }
  }
  Tensor out = make_view(*this, ns, st, offset());
  Shape old = shape();
  return record("expand", out, {*this},
                [old](const Tensor& g) { return std::vector<Tensor>{sum_to(g, old)}; });
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim());
  LD_CHECK(size(d) == 1, "squeeze: dim {} of {} is not 1", d, desc());
  Shape ns = shape(), st = strides();
  ns.erase(ns.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, ns, st, offset());
  return record("squeeze", out, {*this},
                [d](const Tensor& g) { return std::vector<Tensor>{g.unsqueeze(d)}; });
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1);
  Shape ns = shape(), st = strides();
  int64_t s = d < dim() ? strides()[d] * shape()[d] : 1;
  ns.insert(ns.begin() + d, 1);
  st.insert(st.begin() + d, s);
  Tensor out = make_view(*this, ns, st, offset());
  return record("unsqueeze", out, {*this},
                [d](const Tensor& g) { return std::vector<Tensor>{g.squeeze(d)}; });
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim());
  end = wrap_dim(end, dim());
  Shape ns;
  for (int64_t i = 0; i < start; ++i) ns.push_back(size(i));
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= size(i);
  ns.push_back(m);
  for (int64_t i = end + 1; i < dim(); ++i) ns.push_back(size(i));
  return reshape(ns);
}

// ---------------- autograd accessors ----------------
bool Tensor::requires_grad() const { return defined() && impl_->requires_grad; }
Tensor& Tensor::set_requires_grad(bool r) {
  LD_CHECK(is_leaf(), "set_requires_grad on a non-leaf tensor {} (use detach())", desc());
  LD_CHECK(!r || is_floating(dtype()), "only floating tensors can require grad, got {}", desc());
  impl_->requires_grad = r;
  return *this;
}
bool Tensor::is_leaf() const { return checked(impl_).grad_fn == nullptr; }
Tensor Tensor::grad() const { return Tensor(checked(impl_).grad); }
void Tensor::set_grad(const Tensor& g) {
  checked(impl_);
  if (g.defined())
    LD_CHECK(g.shape() == shape(), "set_grad: gradient {} does not match {}", g.desc(), desc());
  impl_->grad = g.defined() ? g.detach().impl_ : nullptr;
}
void Tensor::zero_grad() {
  checked(impl_);
  impl_->grad.reset();
}
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }

Tensor Tensor::detach() const {
  const auto& im = checked(impl_);
  Tensor t = make(im.storage, im.shape, im.strides, im.offset, im.dtype);
  t.impl_->name = im.name;
  return t;
}

}  // namespace ld
