// CPU strided copy/convert and fill.
#include "core/cpu/copy.h"

#include <cstring>

#include "core/cpu/loops.h"

namespace ld::cpu {

template <class D, class S>
static inline D convert(S v) {
  if constexpr (std::is_same_v<D, S>)
    return v;
  else if constexpr (std::is_same_v<S, bf16> || std::is_same_v<S, f16>)
    return convert<D>(static_cast<float>(v));
  else if constexpr (std::is_same_v<D, bf16> || std::is_same_v<D, f16>)
    return D(static_cast<float>(v));
  else if constexpr (std::is_same_v<D, bool>)
    return v != S(0);
  else
    return static_cast<D>(v);
}

void copy_strided(const Tensor& dst, const Tensor& src) {
  LD_CHECK(dst.shape() == src.shape(), "copy: shape {} vs {}", dst.desc(), src.desc());
  LD_CHECK(dst.device().is_cpu() && src.device().is_cpu(), "cpu::copy_strided on {} <- {}",
           dst.desc(), src.desc());
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    if (dst.raw_data() != src.raw_data())
      std::memmove(dst.raw_data(), src.raw_data(), dst.numel() * dtype_size(dst.dtype()));
    return;
  }
  LD_DISPATCH_ALL(dst.dtype(), "copy", [&] {
    using D = scalar_t;
    D* d = static_cast<D*>(dst.raw_data());
    LD_DISPATCH_ALL(src.dtype(), "copy", [&] {
      using S = scalar_t;
      const S* s = static_cast<const S*>(src.raw_data());
      strided_loop<2>(
          dst.shape(), {dst.strides(), src.strides()},
          [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
            D* dp = d + off[0];
            const S* sp = s + off[1];
            for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = convert<D>(sp[i * st[1]]);
          });
    });
  });
}

void fill(const Tensor& dst, double value) {
  LD_DISPATCH_ALL(dst.dtype(), "fill", [&] {
    using D = scalar_t;
    D v = convert<D>(value);
    D* d = static_cast<D*>(dst.raw_data());
    strided_loop<1>(
        dst.shape(), {dst.strides()},
        [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
          for (int64_t i = 0; i < n; ++i) d[off[0] + i * st[0]] = v;
        });
  });
}

}  // namespace ld::cpu
