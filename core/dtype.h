// Element types and devices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/half.h"

namespace ld {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, b8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}

template <class T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct dtype_of<f16> {
  static constexpr DType value = DType::f16;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct dtype_of<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct dtype_of<bool> {
  static constexpr DType value = DType::b8;
};

struct Device {
  enum Kind : uint8_t { CPU, CUDA };
  Kind kind = CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
  bool is_cpu() const { return kind == CPU; }
  bool is_cuda() const { return kind == CUDA; }
  std::string str() const;
};
inline const Device kCPU{Device::CPU, 0};
inline Device cuda_device(int i = 0) { return Device{Device::CUDA, i}; }
Device parse_device(const std::string& s);  // "cpu", "cuda", "cuda:1"

}  // namespace ld

// One case of a dtype switch: binds `scalar_t` and returns the body's result.
#define LD_DISPATCH_CASE(DT, T, ...) \
  case ::ld::DType::DT: {            \
    using scalar_t = T;              \
    return __VA_ARGS__();            \
  }

// Dispatch a floating-point dtype to a template lambda body with `scalar_t` bound.
#define LD_DISPATCH_FLOAT(dt, name, ...)                                                       \
  [&] {                                                                                        \
    switch (dt) {                                                                              \
      LD_DISPATCH_CASE(f32, float, __VA_ARGS__)                                                \
      LD_DISPATCH_CASE(f64, double, __VA_ARGS__)                                               \
      default:                                                                                 \
        LD_FAIL("{}: dtype {} not supported here (f32/f64 only)", name, ::ld::dtype_name(dt)); \
    }                                                                                          \
  }()

// The cases of every floating dtype, bf16/f16 included.
#define LD_DISPATCH_FLOAT_HALF_CASES(...)         \
  LD_DISPATCH_CASE(f32, float, __VA_ARGS__)       \
  LD_DISPATCH_CASE(f64, double, __VA_ARGS__)      \
  LD_DISPATCH_CASE(bf16, ::ld::bf16, __VA_ARGS__) \
  LD_DISPATCH_CASE(f16, ::ld::f16, __VA_ARGS__)

// Every floating dtype, bf16/f16 included (CPU kernels that widen each element on load; every
// CUDA floating kernel: LD_CUDA_DISPATCH_FLOAT).
#define LD_DISPATCH_FLOAT_HALF(dt, name, ...)                                \
  [&] {                                                                      \
    switch (dt) {                                                            \
      LD_DISPATCH_FLOAT_HALF_CASES(__VA_ARGS__)                              \
      default:                                                               \
        LD_FAIL("{}: dtype {} is not floating", name, ::ld::dtype_name(dt)); \
    }                                                                        \
  }()

#define LD_DISPATCH_ALL(dt, name, ...)            \
  [&] {                                           \
    switch (dt) {                                 \
      LD_DISPATCH_FLOAT_HALF_CASES(__VA_ARGS__)   \
      LD_DISPATCH_CASE(i32, int32_t, __VA_ARGS__) \
      LD_DISPATCH_CASE(i64, int64_t, __VA_ARGS__) \
      LD_DISPATCH_CASE(b8, bool, __VA_ARGS__)     \
    }                                             \
    LD_FAIL("{}: bad dtype", name);               \
  }()
