// CPU rotary position embedding, Llama's rotate-half convention (HF apply_rotary_pos_emb):
// out = x * cos + rotate_half(x) * sin with cos/sin of pos * inv_freq duplicated over both halves.
#include <cmath>
#include <vector>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

// out, x contiguous [B, H, T, D] (D even); positions i64 [B, T] (any strides).
// The angle pos * theta^(-2j/D) and its cos/sin are computed in f64 for every dtype (as the CUDA
// kernel does), then rounded to x's type; sign = -1 rotates back (the backward).
void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, int sign) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), half = D / 2;
  const int64_t ps0 = positions.stride(0), ps1 = positions.stride(1);
  const int64_t* pp = static_cast<const int64_t*>(positions.raw_data());
  const double log_theta = std::log(theta);
  std::vector<double> inv_freq(half);
  for (int64_t j = 0; j < half; ++j)
    inv_freq[j] = std::exp(-log_theta * (2.0 * static_cast<double>(j) / static_cast<double>(D)));
  LD_DISPATCH_FLOAT(x.dtype(), "rope", [&] {
    using S = scalar_t;
    const S* xp = static_cast<const S*>(x.raw_data());
    S* op = static_cast<S*>(out.raw_data());
    parallel_for(B * H * T, 2 * D, [&](int64_t r) {
      const int64_t b = r / (H * T), t = r % T;
      const double pos = static_cast<double>(pp[b * ps0 + t * ps1]);
      const S* xr = xp + r * D;
      S* orow = op + r * D;
      for (int64_t j = 0; j < half; ++j) {
        const double ang = pos * inv_freq[j];
        const S c = static_cast<S>(std::cos(ang)),
                s = static_cast<S>(sign < 0 ? -std::sin(ang) : std::sin(ang));
        const S x1 = xr[j], x2 = xr[j + half];
        orow[j] = x1 * c - x2 * s;
        orow[j + half] = x2 * c + x1 * s;
      }
    });
  });
}

}  // namespace ld::cpu
