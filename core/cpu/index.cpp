// CPU gathers and scatters: index_select / index_add_ over [outer, n, inner] views.
#include <cstring>

#include "core/cpu/loops.h"
#include "core/kernels.h"

namespace ld::cpu {

static void outer_inner(const Tensor& t, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= t.size(d);
  for (int64_t d = dim + 1; d < t.dim(); ++d) inner *= t.size(d);
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& idx) {
  int64_t outer, inner;
  outer_inner(x, dim, outer, inner);
  const int64_t n = x.size(dim), m = idx.size(0);
  Tensor ic = idx.contiguous();
  const int64_t* ip = static_cast<const int64_t*>(ic.raw_data());
  const size_t es = dtype_size(x.dtype());
  const char* src = static_cast<const char*>(x.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  parallel_for(outer * m, inner, [&](int64_t r) {
    int64_t o = r / m, j = r % m;
    std::memcpy(dst + (o * m + j) * inner * es, src + (o * n + ip[j]) * inner * es, inner * es);
  });
}

void index_add_(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  int64_t outer, inner;
  outer_inner(out, dim, outer, inner);
  const int64_t n = out.size(dim), m = idx.size(0);
  Tensor ic = idx.contiguous();
  const int64_t* ip = static_cast<const int64_t*>(ic.raw_data());
  LD_DISPATCH_FLOAT(out.dtype(), "index_add_", [&] {
    scalar_t* o = static_cast<scalar_t*>(out.raw_data());
    const scalar_t* s = static_cast<const scalar_t*>(src.raw_data());
    // Sequential over j keeps the accumulation order fixed (deterministic).
    parallel_for(outer, m * inner, [&](int64_t oi) {
      for (int64_t j = 0; j < m; ++j) {
        scalar_t* orow = o + (oi * n + ip[j]) * inner;
        const scalar_t* srow = s + (oi * m + j) * inner;
        for (int64_t i = 0; i < inner; ++i) orow[i] += srow[i];
      }
    });
  });
}

}  // namespace ld::cpu
