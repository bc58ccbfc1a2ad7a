// Seeded random tensors and initialisers (Philox4x32-10; same numbers on every backend).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ld {

// A (seed, offset) stream: every draw of n values advances offset, so draws never overlap.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  // Reserves one counter block for a draw and returns its offset.
  uint64_t next_offset() { return offset_++; }

 private:
  uint64_t seed_, offset_;
};

Tensor rand_uniform(const Shape& shape, double lo, double hi, Generator& gen,
                    DType dtype = DType::f32, Device device = kCPU);
Tensor rand_normal(const Shape& shape, double mean, double std, Generator& gen,
                   DType dtype = DType::f32, Device device = kCPU);
Tensor rand_bernoulli(const Shape& shape, double p, Generator& gen, Device device = kCPU);  // bool

// In place, as torch.nn.init: uniform_(a, b), normal_(mean, std), kaiming_uniform_(a) with
// fan_in = size(1) * prod(size(2:)) and gain sqrt(2 / (1 + a^2)); nn.Linear's default is
// kaiming_uniform_(a = sqrt(5)) for the weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias.
void uniform_(Tensor& t, double lo, double hi, Generator& gen);
void normal_(Tensor& t, double mean, double std, Generator& gen);
void kaiming_uniform_(Tensor& t, double a, Generator& gen);
void linear_init_(Tensor& weight, Tensor& bias, Generator& gen);  // bias may be undefined
int64_t fan_in(const Tensor& t);

}  // namespace ld
