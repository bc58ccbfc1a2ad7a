// CUDA runtime layer: checking macros, device query, current stream, events, the caching device
// allocator (registered as ld::CudaHooks at static init) and pinned host staging.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace ld::cuda {

// Throws ld::Error naming the library, the call, the error name and its description.
[[noreturn]] void throw_api_error(const char* lib, const char* expr, const char* name,
                                  const char* what, const char* file, int line, const char* func);
const char* cublas_status_name(int status);
const char* cublas_status_string(int status);

}  // namespace ld::cuda

// LD_CUDA_CHECK(cudaMalloc(...)): throws ld::Error("CUDA call failed: cudaMalloc(...):
// cudaErrorMemoryAllocation (out of memory) [func file:line]").
#define LD_CUDA_CHECK(expr)                                                                   \
  do {                                                                                        \
    cudaError_t ld_err_ = (expr);                                                             \
    if (ld_err_ != cudaSuccess) [[unlikely]] {                                                \
      (void)cudaGetLastError();                                                               \
      ::ld::cuda::throw_api_error("CUDA", #expr, cudaGetErrorName(ld_err_),                   \
                                  cudaGetErrorString(ld_err_), __FILE__, __LINE__, __func__); \
    }                                                                                         \
  } while (0)

// After every kernel launch: catches bad launch configurations at the launch site.
#define LD_CUDA_LAUNCH_CHECK() LD_CUDA_CHECK(cudaGetLastError())

// cuBLAS / cuBLASLt status (cublasStatus_t).
#define LD_CUBLAS_CHECK(expr)                                                                   \
  do {                                                                                          \
    int ld_st_ = static_cast<int>(expr);                                                        \
    if (ld_st_ != 0) [[unlikely]]                                                               \
      ::ld::cuda::throw_api_error("cuBLAS", #expr, ::ld::cuda::cublas_status_name(ld_st_),      \
                                  ::ld::cuda::cublas_status_string(ld_st_), __FILE__, __LINE__, \
                                  __func__);                                                    \
  } while (0)

// cuDNN status (cudnnStatus_t); the caller includes cudnn.h.
#define LD_CUDNN_CHECK(expr)                                                                 \
  do {                                                                                       \
    cudnnStatus_t ld_st_ = (expr);                                                           \
    if (ld_st_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                         \
      ::ld::cuda::throw_api_error("cuDNN", #expr, cudnnGetErrorString(ld_st_), "", __FILE__, \
                                  __LINE__, __func__);                                       \
  } while (0)

namespace ld::cuda {

// ---- devices ----
// True when a device can be used; never throws and never crashes without a driver.
bool device_available();
std::string unavailable_reason();  // "" when available
int device_count();                // 0 without a usable driver/device
int current_device();
const cudaDeviceProp& device_props(int device = -1);  // -1: current device
std::string device_description();                     // "NVIDIA H200 (sm_90, 132 SMs, 141 GB)"

// ---- streams and events ----
// The stream every launcher in this thread uses (default: the legacy default stream).
cudaStream_t current_stream();
void set_current_stream(cudaStream_t s);
class StreamGuard {
 public:
  explicit StreamGuard(cudaStream_t s) : prev_(current_stream()) { set_current_stream(s); }
  ~StreamGuard() { set_current_stream(prev_); }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  cudaStream_t prev_;
};
void synchronize();  // the current stream

// RAII event (timing enabled unless `timing` is false).
class Event {
 public:
  explicit Event(bool timing = true);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(cudaStream_t s = current_stream());
  void synchronize() const;
  bool query() const;                          // true when complete
  float elapsed_ms(const Event& since) const;  // this - since, both recorded
  cudaEvent_t get() const { return ev_; }

 private:
  cudaEvent_t ev_ = nullptr;
};

// ---- caching device allocator ----
// Blocks are rounded to size classes (512 B under 1 MiB, 2 MiB above) and cached per
// (device, stream) after free. A block freed while recorded on other streams (record_stream) is
// reused only after events on those streams complete. cudaMalloc failure frees the cache and
// retries once, then throws with the statistics.
struct AllocatorStats {
  size_t current_bytes = 0;   // handed out to callers (rounded)
  size_t peak_bytes = 0;      // max of current_bytes since the last reset_peak()
  size_t reserved_bytes = 0;  // held from cudaMalloc (in use + cached)
  int64_t num_cuda_malloc = 0;
  int64_t num_cuda_free = 0;
  int64_t num_alloc = 0;       // requests served
  int64_t num_cache_hits = 0;  // requests served from the cache
};
size_t round_size(size_t nbytes);
void* device_alloc(size_t nbytes, cudaStream_t stream = current_stream());
void device_free(void* p);
// Marks a block as used on `s` (other than its allocation stream) so reuse waits for `s`.
void record_stream(void* p, cudaStream_t s);
AllocatorStats allocator_stats();
void reset_peak();
void empty_cache();  // releases every cached (free) block with cudaFree

// RAII scratch buffer from the caching allocator (kernels' workspaces).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t nbytes) : p_(nbytes ? device_alloc(nbytes) : nullptr), n_(nbytes) {}
  ~DeviceBuffer() {
    if (p_) device_free(p_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  void* get() const { return p_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// ---- host <-> device copies through pinned staging buffers (synchronous for the host) ----
void copy_h2d(void* dst, const void* src, size_t nbytes);
void copy_d2h(void* dst, const void* src, size_t nbytes);
void copy_d2d(void* dst, const void* src, size_t nbytes);
// Bytes of pinned host memory held by the staging buffers.
size_t pinned_staging_bytes();

// TF32 for f32 GEMMs (off by default so f32 parity against the CPU is tight).
void set_allow_tf32(bool on);
bool allow_tf32();

}  // namespace ld::cuda
