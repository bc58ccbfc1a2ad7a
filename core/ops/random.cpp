// Random tensors from Philox (seed, offset) streams; generated on the CPU and moved, so every
// backend sees the same numbers.
#include "core/ops/random.h"

#include <cmath>

#include "core/autograd.h"
#include "core/philox.h"
#include "core/profiler.h"

namespace ld {

static Tensor finish(Tensor t, DType dtype, Device device) { return t.to(device, dtype); }

Tensor rand_uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype,
                    Device device) {
  LD_OP_SCOPE("rand_uniform");
  Tensor t = Tensor::empty(shape, DType::f64, kCPU);
  double* p = t.data<double>();
  uint64_t off = gen.next_offset();
  for (int64_t i = 0; i < t.numel(); ++i) {
    // 53-bit uniform from two 32-bit draws
    uint64_t a = philox_u32(gen.seed(), off, 2 * i) >> 5,
             b = philox_u32(gen.seed(), off, 2 * i + 1) >> 6;
    double u = (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) / 9007199254740992.0;
    p[i] = lo + (hi - lo) * u;
  }
  return finish(t, dtype, device);
}

Tensor rand_normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype,
                   Device device) {
  LD_OP_SCOPE("rand_normal");
  Tensor t = Tensor::empty(shape, DType::f64, kCPU);
  double* p = t.data<double>();
  uint64_t off = gen.next_offset();
  for (int64_t i = 0; i < t.numel(); ++i) {
    // Box-Muller on (0, 1] x [0, 1)
    double u1 = (static_cast<double>(philox_u32(gen.seed(), off, 2 * i)) + 1.0) / 4294967296.0;
    double u2 = static_cast<double>(philox_u32(gen.seed(), off, 2 * i + 1)) / 4294967296.0;
    p[i] = mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  return finish(t, dtype, device);
}

Tensor rand_bernoulli(const Shape& shape, double p, Generator& gen, Device device) {
  LD_OP_SCOPE("rand_bernoulli");
  Tensor t = Tensor::empty(shape, DType::b8, kCPU);
  bool* q = t.data<bool>();
  uint64_t off = gen.next_offset();
  for (int64_t i = 0; i < t.numel(); ++i)
    q[i] = static_cast<double>(philox_u32(gen.seed(), off, i)) / 4294967296.0 < p;
  return t.to(device);
}

static void assign(Tensor& t, const Tensor& src) {
  NoGradGuard ng;
  t.detach().copy_(src);
}

void uniform_(Tensor& t, double lo, double hi, Generator& gen) {
  assign(t, rand_uniform(t.shape(), lo, hi, gen, DType::f64));
}

void normal_(Tensor& t, double mean, double std, Generator& gen) {
  assign(t, rand_normal(t.shape(), mean, std, gen, DType::f64));
}

int64_t fan_in(const Tensor& t) {
  LD_CHECK(t.dim() >= 2, "fan_in needs a tensor of at least 2 dims, got {}", t.desc());
  int64_t f = t.size(1);
  for (int64_t d = 2; d < t.dim(); ++d) f *= t.size(d);
  return f;
}

void kaiming_uniform_(Tensor& t, double a, Generator& gen) {
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in(t)));
  uniform_(t, -bound, bound, gen);
}

void linear_init_(Tensor& weight, Tensor& bias, Generator& gen) {
  kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (bias.defined()) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(weight)));
    uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace ld
