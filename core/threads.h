// CPU thread counts: OpenMP and OpenBLAS share one budget so they never oversubscribe the cores.
// The count is OpenMP's (omp_get_max_threads(), i.e. OMP_NUM_THREADS when set, else the cores).
#pragma once

namespace ld {

// Makes OpenBLAS use OpenMP's thread count. Idempotent and cheap after the first call; runs at
// static initialisation and again lazily from the first GEMM.
void init_threads();
// Sets the thread count of both OpenMP (for this and later parallel regions) and OpenBLAS.
void set_num_threads(int n);
int num_threads();

// Within its scope, BLAS calls made from the current thread run single-threaded (for callers that
// parallelise over many small GEMMs themselves). Not reentrant across threads: use it outside
// parallel regions only.
class BlasSingleThreadGuard {
 public:
  BlasSingleThreadGuard();
  ~BlasSingleThreadGuard();
  BlasSingleThreadGuard(const BlasSingleThreadGuard&) = delete;
  BlasSingleThreadGuard& operator=(const BlasSingleThreadGuard&) = delete;

 private:
  int prev_;
};

}  // namespace ld
