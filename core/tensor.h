// Tensor: shared storage + shape/strides/offset view, dtype, device, and autograd metadata.
// Views (reshape, permute, narrow, expand, ...) share storage; ops live in core/ops/*.h.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/storage.h"

namespace ld {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (CPU by default) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = kCPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = kCPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = kCPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = kCPU);
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = kCPU);
  template <class T>
  static Tensor from_vector(const std::vector<T>& v, const Shape& shape, Device device = kCPU);
  // A tensor viewing `storage` with the given layout.
  static Tensor make(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                     int64_t offset, DType dtype);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;
  bool shares_storage(const Tensor& o) const;
  TensorImpl* impl() const { return impl_.get(); }
  const std::string& name() const;
  Tensor& set_name(std::string n);
  std::string desc() const;  // "[2, 3] f32 cpu" (+ name), for error messages

  // ---- data access (CPU) ----
  void* raw_data() const;  // pointer to element 0 of this view (storage + offset), any device
  template <class T>
  T* data() const;
  template <class T>
  std::vector<T> to_vector() const;  // contiguous copy, row-major
  double item() const;
  std::string str(int64_t max_per_dim = 6) const;

  // ---- conversion and copies ----
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor to(Device device, DType dtype) const;
  Tensor contiguous() const;
  Tensor clone() const;
  // In place: copy `src` (same shape, any dtype/device) into this tensor's elements. No autograd.
  Tensor& copy_(const Tensor& src);
  Tensor& zero_();
  Tensor& fill_(double v);

  // ---- views (recorded by autograd) ----
  Tensor view(const Shape& shape) const;     // requires compatible strides; -1 infers one dim
  Tensor reshape(const Shape& shape) const;  // view when possible, else a copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad();  // drops .grad
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor detach() const;  // same storage, no history
  // Backpropagates from this tensor; `grad` defaults to ones for a scalar.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;
  int64_t offset = 0;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
  std::string name;
};

int64_t wrap_dim(int64_t d, int64_t ndim, const char* what = "dim");

// ---- template definitions ----
template <class T>
T* Tensor::data() const {
  LD_CHECK(defined(), "data() on an undefined tensor");
  LD_CHECK(dtype() == dtype_of<T>::value, "data<{}>() on a tensor of dtype {} ({})",
           dtype_name(dtype_of<T>::value), dtype_name(dtype()), desc());
  return static_cast<T*>(raw_data());
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& v, const Shape& shape, Device device) {
  LD_CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape),
           "from_vector: {} values for shape {}", v.size(), shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value, kCPU);
  if constexpr (std::is_same_v<T, bool>) {
    bool* p = t.data<bool>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = v[i];
  } else {
    std::copy(v.begin(), v.end(), t.data<T>());
  }
  return device.is_cpu() ? t : t.to(device);
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(kCPU).contiguous();
  LD_CHECK(c.dtype() == dtype_of<T>::value, "to_vector<{}>() on a tensor of dtype {}",
           dtype_name(dtype_of<T>::value), dtype_name(dtype()));
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace ld
