// dtype names and sizes; device parsing.
#include "core/dtype.h"

#include "core/error.h"

namespace ld {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::bf16:
      return 2;
    case DType::f16:
      return 2;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
    case DType::b8:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::b8:
      return "bool";
  }
  return "?";
}

std::string Device::str() const {
  return kind == CPU ? std::string("cpu") : fmt::format("cuda:{}", index);
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return kCPU;
  if (s == "cuda") return cuda_device(0);
  if (s.rfind("cuda:", 0) == 0) {
    try {
      return cuda_device(std::stoi(s.substr(5)));
    } catch (const std::exception&) {
    }
  }
  LD_FAIL("unknown device '{}': expected cpu, cuda or cuda:N", s);
}

}  // namespace ld
