// Shared test helpers: seeded random tensors, element-wise closeness (llm.c style: |a-b| <= atol +
// rtol*|b|, first mismatches printed), and the f64 central-difference gradient check.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"

namespace ld::test {

// An empty path under the system temp directory, unique to this process: <prefix>_<tag>_<pid>
// (whatever an earlier run left there is removed).
inline std::string fresh_temp_dir(const std::string& prefix, const std::string& tag) {
  const std::filesystem::path p = std::filesystem::temp_directory_path() /
                                  (prefix + "_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

inline Tensor randn(const Shape& s, uint64_t seed, DType dt = DType::f64, double std = 1.0) {
  Generator g(seed);
  return rand_normal(s, 0.0, std, g, dt);
}

inline Tensor randu(const Shape& s, uint64_t seed, double lo, double hi, DType dt = DType::f64) {
  Generator g(seed);
  return rand_uniform(s, lo, hi, g, dt);
}

// Returns "" when close, else a message listing the first mismatches.
inline std::string close_msg(const Tensor& actual, const Tensor& expected, double atol,
                             double rtol) {
  if (actual.shape() != expected.shape())
    return fmt::format("shape {} vs expected {}", shape_str(actual.shape()),
                       shape_str(expected.shape()));
  std::vector<double> a = actual.to(kCPU, DType::f64).to_vector<double>();
  std::vector<double> e = expected.to(kCPU, DType::f64).to_vector<double>();
  std::string msg;
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(e[i])) {
      if (std::isnan(e[i]) != std::isnan(a[i]) || (!std::isnan(e[i]) && a[i] != e[i])) {
        if (bad++ < 5) msg += fmt::format("  [{}] got {} expected {}\n", i, a[i], e[i]);
      }
      continue;
    }
    if (!(std::fabs(a[i] - e[i]) <= atol + rtol * std::fabs(e[i]))) {
      if (bad++ < 5) msg += fmt::format("  [{}] got {:.10g} expected {:.10g}\n", i, a[i], e[i]);
    }
  }
  if (bad)
    return fmt::format("{} of {} elements differ (atol {}, rtol {}):\n{}", bad, a.size(), atol,
                       rtol, msg);
  return "";
}

#define EXPECT_CLOSE(a, e, atol, rtol)                                \
  do {                                                                \
    std::string _m = ::ld::test::close_msg((a), (e), (atol), (rtol)); \
    EXPECT_TRUE(_m.empty()) << _m;                                    \
  } while (0)

// Central-difference gradient check in f64: f maps inputs to a tensor; the scalar checked is
// sum(f(inputs) * w) for a fixed random w, so every output element contributes.
inline void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                      std::vector<Tensor> inputs, double eps = 1e-6, double atol = 1e-7,
                      double rtol = 1e-5) {
  for (Tensor& x : inputs)
    if (x.defined() && is_floating(x.dtype())) {
      ASSERT_EQ(x.dtype(), DType::f64) << "gradcheck needs f64 inputs";
      x.set_requires_grad(true);
      x.zero_grad();  // an input reused across checks must not carry an earlier gradient
    }
  Tensor y0 = f(inputs);
  Tensor w = randn(y0.shape(), 12345);
  Tensor loss = sum(mul(y0, w));
  loss.backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor analytic = x.grad();
    ASSERT_TRUE(analytic.defined()) << "input " << k << " received no gradient";
    Tensor numeric = Tensor::zeros(x.shape(), DType::f64);
    Tensor xc = x.detach();  // may be a non-contiguous view: perturb through it
    Tensor flat_num = numeric.view({-1});
    NoGradGuard ng;
    for (int64_t i = 0; i < x.numel(); ++i) {
      // index i in row-major order of x's shape
      Shape idx(x.dim());
      int64_t r = i;
      for (int64_t d = x.dim() - 1; d >= 0; --d) {
        idx[d] = r % x.size(d);
        r /= x.size(d);
      }
      int64_t off = x.offset();
      for (int64_t d = 0; d < x.dim(); ++d) off += idx[d] * x.stride(d);
      double* p = static_cast<double*>(x.storage()->data()) + off;
      double orig = *p;
      *p = orig + eps;
      double lp = sum(mul(f(inputs), w)).item();
      *p = orig - eps;
      double lm = sum(mul(f(inputs), w)).item();
      *p = orig;
      flat_num.data<double>()[i] = (lp - lm) / (2 * eps);
    }
    std::string m = close_msg(analytic, numeric, atol, rtol);
    EXPECT_TRUE(m.empty()) << "gradient of input " << k << " " << x.desc() << ":\n" << m;
  }
}

}  // namespace ld::test
