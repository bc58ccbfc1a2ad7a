// Helpers shared by the nn op tests: expecting an ld::Error whose message names given strings,
// and building small integer tensors.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/ops.h"

namespace ld::test {

// Runs f; expects an ld::Error whose message contains every string in `needles`.
template <class F>
void expect_error(F f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no ld::Error thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message lacks '" << n << "': " << msg;
  }
}

inline Tensor ids_tensor(const std::vector<int64_t>& v, const Shape& shape) {
  return Tensor::from_vector<int64_t>(v, shape);
}

inline double at(const Tensor& t, int64_t i) { return t.to(DType::f64).to_vector<double>()[i]; }

}  // namespace ld::test
