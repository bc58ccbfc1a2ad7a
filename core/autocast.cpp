// Autocast state (thread-local) and the casting matmul used by core/ops/linalg.cpp.
#include "core/autocast.h"

#include "core/autograd.h"
#include "core/ops/linalg.h"
#ifdef LD_WITH_CUDA
#include "core/cuda/cuda_ops.h"
#endif

namespace ld {

namespace {
thread_local bool t_enabled = false;
thread_local DType t_dtype = DType::bf16;
}  // namespace

bool autocast_enabled() { return t_enabled; }
DType autocast_dtype() { return t_dtype; }

AutocastGuard::AutocastGuard(bool enabled, DType dtype)
    : prev_enabled_(t_enabled), prev_dtype_(t_dtype) {
  LD_CHECK(dtype == DType::bf16 || dtype == DType::f16, "autocast: dtype {} is not bf16/f16",
           dtype_name(dtype));
  t_enabled = enabled;
  t_dtype = dtype;
}
AutocastGuard::~AutocastGuard() {
  t_enabled = prev_enabled_;
  t_dtype = prev_dtype_;
}

static Tensor convert(const Tensor& x, DType dt) {
  if (x.dtype() == dt) return x;
#ifdef LD_WITH_CUDA
  if (x.is_cuda()) {
    Tensor out = Tensor::empty(x.shape(), dt, x.device());
    cuda::copy_strided(out, x.detach());
    return out;
  }
#endif
  return x.detach().to(dt);
}

Tensor autocast_cast(const Tensor& x, DType dt) {
  if (x.dtype() == dt) return x;
  Tensor out = convert(x, dt);
  if (!needs_grad(x)) return out;
  const DType src = x.dtype();
  return record("autocast_cast", out, {x},
                [src](const Tensor& g) { return std::vector<Tensor>{convert(g, src)}; });
}

Tensor autocast_matmul(const Tensor& a, const Tensor& b) {
  if (!t_enabled || !a.defined() || !b.defined()) return Tensor();
  if (!a.is_cuda() || !b.is_cuda() || a.dtype() != DType::f32 || b.dtype() != DType::f32)
    return Tensor();
  const DType dt = t_dtype;
  Tensor out;
  {
    // The inner matmul sees low-precision operands, so autocast does not apply to it again.
    out = matmul(autocast_cast(a, dt), autocast_cast(b, dt));
  }
  return autocast_cast(out, DType::f32);
}

}  // namespace ld
