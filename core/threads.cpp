// OpenMP/OpenBLAS thread-count coordination (see threads.h).
#include "core/threads.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <mutex>

#include "core/error.h"

namespace ld {

namespace {
std::once_flag g_once;
int g_threads = 1;  // the shared budget, set by init_threads / set_num_threads

void apply(int n) {
  g_threads = std::max(n, 1);
  openblas_set_num_threads(g_threads);
}

// Runs before main, so even code that calls BLAS before any ld op agrees with OpenMP.
const bool g_static_init = [] {
  init_threads();
  return true;
}();
}  // namespace

void init_threads() {
  std::call_once(g_once, [] { apply(omp_get_max_threads()); });
}

void set_num_threads(int n) {
  LD_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got {}", n);
  init_threads();
  omp_set_num_threads(n);
  apply(n);
}

int num_threads() {
  init_threads();
  return g_threads;
}

BlasSingleThreadGuard::BlasSingleThreadGuard() : prev_(num_threads()) {
  openblas_set_num_threads(1);
}
BlasSingleThreadGuard::~BlasSingleThreadGuard() { openblas_set_num_threads(prev_); }

}  // namespace ld
