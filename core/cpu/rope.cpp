// CPU rotary position embedding, Llama's rotate-half convention (HF apply_rotary_pos_emb):
// out = x * cos + rotate_half(x) * sin with cos/sin of pos * inv_freq duplicated over both halves.
#include <cmath>
#include <vector>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

// out, x contiguous [B, H, T, D] (D even); positions i64 [B, T] (any strides).
// For f32 the angle is formed as HF does it in f32 (inv_freq = 1 / theta^(2j/D) in f32, then
// f32 pos * inv_freq, f32 cos/sin); f64 computes everything in f64. sign = -1 rotates back.
void rope(const Tensor& out, const Tensor& x, const Tensor& positions, double theta, int sign) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3), half = D / 2;
  const int64_t ps0 = positions.stride(0), ps1 = positions.stride(1);
  const int64_t* pp = static_cast<const int64_t*>(positions.raw_data());
  LD_DISPATCH_FLOAT(x.dtype(), "rope", [&] {
    using S = scalar_t;
    std::vector<S> inv_freq(half);
    for (int64_t j = 0; j < half; ++j)
      inv_freq[j] =
          S(1) / std::pow(static_cast<S>(theta), static_cast<S>(2 * j) / static_cast<S>(D));
    const S* xp = static_cast<const S*>(x.raw_data());
    S* op = static_cast<S*>(out.raw_data());
    parallel_for(B * H * T, 2 * D, [&](int64_t r) {
      const int64_t b = r / (H * T), t = r % T;
      const S pos = static_cast<S>(pp[b * ps0 + t * ps1]);
      const S* xr = xp + r * D;
      S* orow = op + r * D;
      for (int64_t j = 0; j < half; ++j) {
        const S ang = pos * inv_freq[j];
        const S c = std::cos(ang), s = sign < 0 ? -std::sin(ang) : std::sin(ang);
        const S x1 = xr[j], x2 = xr[j + half];
        orow[j] = x1 * c - x2 * s;
        orow[j + half] = x2 * c + x1 * s;
      }
    });
  });
}

}  // namespace ld::cpu
