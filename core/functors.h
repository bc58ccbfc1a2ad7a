// Elementwise math written once as __host__ __device__ templates and shared by the CPU and CUDA
// backends, so a formula (RoBERTa's exact erf GELU, Llama's SiLU, ...) cannot drift between them.
// Each backend switches on the enum once per launch and instantiates a loop/kernel per op.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/half.h"

namespace ld {

// Unary ops; `s` is the scalar operand where there is one (x + s, x * s, x^s, s / x, ...).
enum class UnaryOp : uint8_t {
  Neg,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Tanh,
  Relu,
  Sigmoid,
  Silu,
  GeluErf,
  GeluTanh,
  Abs,
  Square,
  AddScalar,
  MulScalar,
  PowScalar,
  RSubScalar,
  RDivScalar,
  Sign,
};

// Binary ops over broadcast operands. The *Grad ops take (x or y, grad_out) and return grad_in.
enum class BinaryOp : uint8_t {
  Add,
  Sub,
  Mul,
  Div,
  Maximum,
  Minimum,
  ReluGrad,      // (x, g) -> g * (x > 0)
  SiluGrad,      // (x, g)
  GeluErfGrad,   // (x, g)
  GeluTanhGrad,  // (x, g)
  TanhGrad,      // (y, g) -> g * (1 - y^2)
  SigmoidGrad,   // (y, g) -> g * y * (1 - y)
  PowGrad,       // (x, g) with scalar p: g * p * x^(p-1)
};

enum class CompareOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge };

namespace fn {

template <class T>
LD_HD inline T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

// GELU tanh approximation constants, as PyTorch's gelu(approximate="tanh").
template <class T>
LD_HD inline T gelu_tanh_inner(T x) {
  const T k0 = T(0.7978845608028654);  // sqrt(2/pi)
  const T k1 = T(0.044715);
  return k0 * (x + k1 * x * x * x);
}

template <UnaryOp OP, class T>
LD_HD inline T unary(T x, T s) {
  using std::exp, std::log, std::sqrt, std::tanh, std::erf, std::fabs, std::pow;
  if constexpr (OP == UnaryOp::Neg)
    return -x;
  else if constexpr (OP == UnaryOp::Exp)
    return exp(x);
  else if constexpr (OP == UnaryOp::Log)
    return log(x);
  else if constexpr (OP == UnaryOp::Sqrt)
    return sqrt(x);
  else if constexpr (OP == UnaryOp::Rsqrt)
    return T(1) / sqrt(x);
  else if constexpr (OP == UnaryOp::Tanh)
    return tanh(x);
  else if constexpr (OP == UnaryOp::Relu)
    return x > T(0) ? x : T(0);
  else if constexpr (OP == UnaryOp::Sigmoid)
    return sigmoid(x);
  else if constexpr (OP == UnaryOp::Silu)
    return x * sigmoid(x);
  else if constexpr (OP == UnaryOp::GeluErf)
    return T(0.5) * x * (T(1) + erf(x * T(0.7071067811865476)));
  else if constexpr (OP == UnaryOp::GeluTanh)
    return T(0.5) * x * (T(1) + tanh(gelu_tanh_inner(x)));
  else if constexpr (OP == UnaryOp::Abs)
    return fabs(x);
  else if constexpr (OP == UnaryOp::Square)
    return x * x;
  else if constexpr (OP == UnaryOp::AddScalar)
    return x + s;
  else if constexpr (OP == UnaryOp::MulScalar)
    return x * s;
  else if constexpr (OP == UnaryOp::PowScalar)
    return s == T(2) ? x * x : pow(x, s);
  else if constexpr (OP == UnaryOp::RSubScalar)
    return s - x;
  else if constexpr (OP == UnaryOp::RDivScalar)
    return s / x;
  else if constexpr (OP == UnaryOp::Sign)
    return T((x > T(0)) - (x < T(0)));
  else
    return x;
}

template <BinaryOp OP, class T>
LD_HD inline T binary(T a, T b, T s) {
  using std::exp, std::tanh, std::erf, std::pow;
  if constexpr (OP == BinaryOp::Add)
    return a + b;
  else if constexpr (OP == BinaryOp::Sub)
    return a - b;
  else if constexpr (OP == BinaryOp::Mul)
    return a * b;
  else if constexpr (OP == BinaryOp::Div)
    return a / b;
  else if constexpr (OP == BinaryOp::Maximum)
    return a > b ? a : b;
  else if constexpr (OP == BinaryOp::Minimum)
    return a < b ? a : b;
  else if constexpr (OP == BinaryOp::ReluGrad)
    return a > T(0) ? b : T(0);
  else if constexpr (OP == BinaryOp::SiluGrad) {
    T sg = sigmoid(a);
    return b * sg * (T(1) + a * (T(1) - sg));
  } else if constexpr (OP == BinaryOp::GeluErfGrad) {
    const T inv_sqrt2 = T(0.7071067811865476), inv_sqrt_2pi = T(0.3989422804014327);
    T cdf = T(0.5) * (T(1) + erf(a * inv_sqrt2));
    T pdf = inv_sqrt_2pi * exp(T(-0.5) * a * a);
    return b * (cdf + a * pdf);
  } else if constexpr (OP == BinaryOp::GeluTanhGrad) {
    const T k0 = T(0.7978845608028654), k1 = T(0.044715);
    T th = tanh(gelu_tanh_inner(a));
    T dinner = k0 * (T(1) + T(3) * k1 * a * a);
    return b * (T(0.5) * (T(1) + th) + T(0.5) * a * (T(1) - th * th) * dinner);
  } else if constexpr (OP == BinaryOp::TanhGrad)
    return b * (T(1) - a * a);
  else if constexpr (OP == BinaryOp::SigmoidGrad)
    return b * a * (T(1) - a);
  else if constexpr (OP == BinaryOp::PowGrad)
    return s == T(2) ? b * T(2) * a : b * s * pow(a, s - T(1));
  else
    return a;
}

template <CompareOp OP, class T>
LD_HD inline bool compare(T a, T b) {
  if constexpr (OP == CompareOp::Eq)
    return a == b;
  else if constexpr (OP == CompareOp::Ne)
    return a != b;
  else if constexpr (OP == CompareOp::Lt)
    return a < b;
  else if constexpr (OP == CompareOp::Le)
    return a <= b;
  else if constexpr (OP == CompareOp::Gt)
    return a > b;
  else
    return a >= b;
}

}  // namespace fn
}  // namespace ld
