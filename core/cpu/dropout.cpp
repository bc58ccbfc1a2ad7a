// CPU inverted dropout with Philox draws: element i (row-major) is kept iff
// dropout_keep(seed, offset, i, p), and kept elements are scaled by 1 / (1 - p).
#include <algorithm>

#include "core/cpu/loops.h"
#include "core/cpu/vec_math.h"
#include "core/kernels.h"
#include "core/philox.h"

namespace ld::cpu {

// out, keep_b8 contiguous; x contiguous, all of the same shape. p == 1 drops everything.
void dropout_fwd(const Tensor& out, const Tensor& keep_b8, const Tensor& x, double p, uint64_t seed,
                 uint64_t offset) {
  const int64_t n = x.numel();
  const float pf = static_cast<float>(p);
  bool* kp = static_cast<bool*>(keep_b8.raw_data());
  LD_DISPATCH_FLOAT(x.dtype(), "dropout_fwd", [&] {
    using T = scalar_t;
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = static_cast<T*>(out.raw_data());
    const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
    constexpr int64_t kChunk = 4096;
    // Element i uses word i % 4 of Philox block i / 4 (dropout_keep); one block serves four
    // elements (chunks start at multiples of 4), the same decisions at a quarter of the cost.
    // A chunk's words come from philox_fill (eight blocks at a time with AVX2, same words).
    static_assert(kChunk % 4 == 0);
    parallel_for((n + kChunk - 1) / kChunk, kChunk, [&](int64_t c) {
      const int64_t i0 = c * kChunk, i1 = std::min(n, (c + 1) * kChunk);
      uint32_t words[kChunk];
      philox_fill(static_cast<uint64_t>(i0) >> 2, (i1 - i0 + 3) / 4, offset, seed, words);
      for (int64_t i = i0; i < i1; ++i) {
        // philox_uniform of that word:
        const float u = static_cast<float>(words[i - i0] >> 8) * (1.0f / 16777216.0f);
        const bool keep = p < 1.0 && u >= pf;
        kp[i] = keep;
        op[i] = keep ? xp[i] * scale : T(0);
      }
    });
  });
}

}  // namespace ld::cpu
