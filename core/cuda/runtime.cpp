// CUDA runtime layer: error reporting, device query, streams/events, the caching allocator and
// pinned staging copies; registers ld::CudaHooks at static-initialisation time.
#include "core/cuda/runtime.h"

#include <cublas_v2.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/nvtx.h"
#include "core/storage.h"

namespace ld::cuda {

void throw_api_error(const char* lib, const char* expr, const char* name, const char* what,
                     const char* file, int line, const char* func) {
  std::string msg = fmt::format("{} call failed: {}: {}", lib, expr, name);
  if (what && *what) msg += fmt::format(" ({})", what);
  throw_error(file, line, func, nullptr, msg);
}

const char* cublas_status_name(int s) {
  return cublasGetStatusName(static_cast<cublasStatus_t>(s));
}
const char* cublas_status_string(int s) {
  return cublasGetStatusString(static_cast<cublasStatus_t>(s));
}

// ---------------- devices ----------------
namespace {

struct DeviceInfo {
  int count = 0;
  std::string reason;
  std::vector<cudaDeviceProp> props;
};

const DeviceInfo& device_info() {
  static const DeviceInfo info = [] {
    DeviceInfo d;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      d.reason = fmt::format("cudaGetDeviceCount failed: {} ({})", cudaGetErrorName(e),
                             cudaGetErrorString(e));
      (void)cudaGetLastError();
      return d;
    }
    if (n == 0) {
      d.reason = "no CUDA devices found";
      return d;
    }
    d.props.resize(n);
    for (int i = 0; i < n; ++i) {
      e = cudaGetDeviceProperties(&d.props[i], i);
      if (e != cudaSuccess) {
        d.reason = fmt::format("cudaGetDeviceProperties({}) failed: {}", i, cudaGetErrorString(e));
        (void)cudaGetLastError();
        d.props.clear();
        return d;
      }
    }
    d.count = n;
    return d;
  }();
  return info;
}

}  // namespace

bool device_available() { return device_info().count > 0; }
std::string unavailable_reason() { return device_info().reason; }
int device_count() { return device_info().count; }

int current_device() {
  int d = 0;
  LD_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

const cudaDeviceProp& device_props(int device) {
  const DeviceInfo& info = device_info();
  LD_CHECK(info.count > 0, "no CUDA device: {}", info.reason);
  if (device < 0) device = current_device();
  LD_CHECK(device < info.count, "CUDA device {} does not exist ({} present)", device, info.count);
  return info.props[device];
}

std::string device_description() {
  if (!device_available()) return "no CUDA device: " + unavailable_reason();
  const cudaDeviceProp& p = device_props();
  return fmt::format("{} (sm_{}{}, {} SMs, {:.0f} GB)", p.name, p.major, p.minor,
                     p.multiProcessorCount, p.totalGlobalMem / 1e9);
}

// ---------------- streams and events ----------------
namespace {
thread_local cudaStream_t t_stream = nullptr;
}
cudaStream_t current_stream() { return t_stream; }
void set_current_stream(cudaStream_t s) { t_stream = s; }
void synchronize() { LD_CUDA_CHECK(cudaStreamSynchronize(current_stream())); }

Event::Event(bool timing) {
  LD_CUDA_CHECK(cudaEventCreateWithFlags(&ev_, timing ? cudaEventDefault : cudaEventDisableTiming));
}
Event::~Event() {
  if (ev_) cudaEventDestroy(ev_);
}
void Event::record(cudaStream_t s) { LD_CUDA_CHECK(cudaEventRecord(ev_, s)); }
void Event::synchronize() const { LD_CUDA_CHECK(cudaEventSynchronize(ev_)); }
bool Event::query() const {
  cudaError_t e = cudaEventQuery(ev_);
  if (e == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  LD_CUDA_CHECK(e);
  return true;
}
float Event::elapsed_ms(const Event& since) const {
  float ms = 0;
  LD_CUDA_CHECK(cudaEventElapsedTime(&ms, since.ev_, ev_));
  return ms;
}

// ---------------- caching allocator ----------------
namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // below: 512-byte classes
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;

struct Block {
  void* ptr = nullptr;
  size_t size = 0;  // rounded
  int device = 0;
  cudaStream_t stream = nullptr;      // allocation stream
  std::vector<cudaStream_t> used_on;  // other streams (record_stream)
  std::vector<cudaEvent_t> pending;   // events that must complete before reuse
  bool in_use = false;
};

struct PoolKey {
  int device;
  cudaStream_t stream;
  bool operator<(const PoolKey& o) const {
    return device != o.device ? device < o.device : std::less<cudaStream_t>()(stream, o.stream);
  }
};

class CachingAllocator {
 public:
  void* allocate(size_t nbytes, cudaStream_t stream) {
    const size_t size = round_size(nbytes);
    int dev = 0;
    LD_CUDA_CHECK(cudaGetDevice(&dev));
    std::lock_guard<std::mutex> lk(mu_);
    process_pending();
    ++stats_.num_alloc;
    auto& pool = pools_[PoolKey{dev, stream}];
    // Reuse a cached block of the same class, or a slightly larger one (at most 1/8 + one class
    // more), so a large cached block is not tied up by a small request.
    auto it = pool.lower_bound(size);
    if (it != pool.end() && it->first <= size + size / 8 + kSmallRound) {
      Block* b = it->second;
      pool.erase(it);
      b->in_use = true;
      ++stats_.num_cache_hits;
      account_alloc(b->size);
      return b->ptr;
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached_locked(/*sync_pending=*/true);
      e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      LD_FAIL(
          "CUDA out of memory: cudaMalloc({} bytes) failed: {} ({}); in use {} bytes, reserved {} "
          "bytes, peak {} bytes",
          size, cudaGetErrorName(e), cudaGetErrorString(e), stats_.current_bytes,
          stats_.reserved_bytes, stats_.peak_bytes);
    }
    ++stats_.num_cuda_malloc;
    stats_.reserved_bytes += size;
    Block* b = new Block;
    b->ptr = p;
    b->size = size;
    b->device = dev;
    b->stream = stream;
    b->in_use = true;
    blocks_[p] = b;
    account_alloc(size);
    return p;
  }

  void free(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lk(mu_);
    auto it = blocks_.find(p);
    LD_CHECK(it != blocks_.end(), "CUDA allocator: freeing {} which it did not allocate", p);
    Block* b = it->second;
    LD_CHECK(b->in_use, "CUDA allocator: double free of {}", p);
    b->in_use = false;
    stats_.current_bytes -= b->size;
    if (b->used_on.empty()) {
      pools_[PoolKey{b->device, b->stream}].emplace(b->size, b);
      return;
    }
    // Used on other streams: reuse only after work queued there so far has finished.
    for (cudaStream_t s : b->used_on) {
      cudaEvent_t ev;
      LD_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
      LD_CUDA_CHECK(cudaEventRecord(ev, s));
      b->pending.push_back(ev);
    }
    b->used_on.clear();
    pending_.push_back(b);
  }

  void record_stream(void* p, cudaStream_t s) {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = blocks_.find(p);
    LD_CHECK(it != blocks_.end(), "record_stream: {} is not from the CUDA allocator", p);
    Block* b = it->second;
    if (s == b->stream) return;
    if (std::find(b->used_on.begin(), b->used_on.end(), s) == b->used_on.end())
      b->used_on.push_back(s);
  }

  AllocatorStats stats() {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.peak_bytes = stats_.current_bytes;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lk(mu_);
    release_cached_locked(/*sync_pending=*/true);
  }

 private:
  void account_alloc(size_t size) {
    stats_.current_bytes += size;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  }

  // Moves blocks whose cross-stream events have completed back to their pools.
  void process_pending() {
    for (size_t i = 0; i < pending_.size();) {
      Block* b = pending_[i];
      bool done = true;
      for (cudaEvent_t ev : b->pending) {
        cudaError_t e = cudaEventQuery(ev);
        if (e == cudaErrorNotReady) {
          (void)cudaGetLastError();
          done = false;
          break;
        }
        LD_CUDA_CHECK(e);
      }
      if (!done) {
        ++i;
        continue;
      }
      for (cudaEvent_t ev : b->pending) cudaEventDestroy(ev);
      b->pending.clear();
      pools_[PoolKey{b->device, b->stream}].emplace(b->size, b);
      pending_[i] = pending_.back();
      pending_.pop_back();
    }
  }

  void release_cached_locked(bool sync_pending) {
    if (sync_pending) {
      for (Block* b : pending_)
        for (cudaEvent_t ev : b->pending) LD_CUDA_CHECK(cudaEventSynchronize(ev));
    }
    process_pending();
    for (auto& [key, pool] : pools_) {
      for (auto& [size, b] : pool) {
        int prev = 0;
        cudaGetDevice(&prev);
        if (prev != b->device) cudaSetDevice(b->device);
        cudaError_t e = cudaFree(b->ptr);
        if (prev != b->device) cudaSetDevice(prev);
        LD_CUDA_CHECK(e);
        ++stats_.num_cuda_free;
        stats_.reserved_bytes -= b->size;
        blocks_.erase(b->ptr);
        delete b;
      }
      pool.clear();
    }
  }

  std::mutex mu_;
  std::map<PoolKey, std::multimap<size_t, Block*>> pools_;
  std::unordered_map<void*, Block*> blocks_;
  std::vector<Block*> pending_;
  AllocatorStats stats_;
};

// Never destroyed: tensors may be released during static destruction, after the driver shut down.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator;
  return *a;
}

}  // namespace

size_t round_size(size_t n) {
  if (n == 0) return kSmallRound;
  if (n < kSmallLimit) return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}
void* device_alloc(size_t nbytes, cudaStream_t stream) {
  LD_CHECK(device_available(), "no CUDA device: {}", unavailable_reason());
  return allocator().allocate(nbytes, stream);
}
void device_free(void* p) { allocator().free(p); }
void record_stream(void* p, cudaStream_t s) { allocator().record_stream(p, s); }
AllocatorStats allocator_stats() { return allocator().stats(); }
void reset_peak() { allocator().reset_peak(); }
void empty_cache() {
  if (device_available()) allocator().empty_cache();
}

// ---------------- pinned staging copies ----------------
namespace {

constexpr size_t kStageChunk = size_t(4) << 20;    // per buffer; two buffers alternate
constexpr size_t kDirectLimit = size_t(64) << 10;  // small copies go straight through the driver

struct Staging {
  std::mutex mu;
  void* buf[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
  size_t bytes = 0;
  void ensure() {
    if (buf[0]) return;
    for (int i = 0; i < 2; ++i) {
      LD_CUDA_CHECK(cudaMallocHost(&buf[i], kStageChunk));
      LD_CUDA_CHECK(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
    }
    bytes = 2 * kStageChunk;
  }
};
Staging& staging() {
  static Staging* s = new Staging;
  return *s;
}

}  // namespace

size_t pinned_staging_bytes() { return staging().bytes; }

void copy_h2d(void* dst, const void* src, size_t n) {
  LD_NVTX_FN();
  cudaStream_t st = current_stream();
  if (n <= kDirectLimit) {
    LD_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, st));
    LD_CUDA_CHECK(cudaStreamSynchronize(st));
    return;
  }
  Staging& S = staging();
  std::lock_guard<std::mutex> lk(S.mu);
  S.ensure();
  // Double buffering: fill buffer i on the host while the other one is being copied.
  bool used[2] = {false, false};
  for (size_t off = 0, k = 0; off < n; off += kStageChunk, ++k) {
    const int i = static_cast<int>(k & 1);
    const size_t len = std::min(kStageChunk, n - off);
    if (used[i]) LD_CUDA_CHECK(cudaEventSynchronize(S.done[i]));
    std::memcpy(S.buf[i], static_cast<const char*>(src) + off, len);
    LD_CUDA_CHECK(
        cudaMemcpyAsync(static_cast<char*>(dst) + off, S.buf[i], len, cudaMemcpyHostToDevice, st));
    LD_CUDA_CHECK(cudaEventRecord(S.done[i], st));
    used[i] = true;
  }
  LD_CUDA_CHECK(cudaStreamSynchronize(st));
}

void copy_d2h(void* dst, const void* src, size_t n) {
  LD_NVTX_FN();
  cudaStream_t st = current_stream();
  if (n <= kDirectLimit) {
    LD_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, st));
    LD_CUDA_CHECK(cudaStreamSynchronize(st));
    return;
  }
  Staging& S = staging();
  std::lock_guard<std::mutex> lk(S.mu);
  S.ensure();
  // Queue chunk k+1 before draining chunk k from its pinned buffer.
  size_t nchunks = (n + kStageChunk - 1) / kStageChunk;
  auto issue = [&](size_t k) {
    const int i = static_cast<int>(k & 1);
    const size_t off = k * kStageChunk, len = std::min(kStageChunk, n - off);
    LD_CUDA_CHECK(cudaMemcpyAsync(S.buf[i], static_cast<const char*>(src) + off, len,
                                  cudaMemcpyDeviceToHost, st));
    LD_CUDA_CHECK(cudaEventRecord(S.done[i], st));
  };
  issue(0);
  for (size_t k = 0; k < nchunks; ++k) {
    const int i = static_cast<int>(k & 1);
    const size_t off = k * kStageChunk, len = std::min(kStageChunk, n - off);
    if (k + 1 < nchunks) issue(k + 1);  // the other buffer was drained in the previous round
    LD_CUDA_CHECK(cudaEventSynchronize(S.done[i]));
    std::memcpy(static_cast<char*>(dst) + off, S.buf[i], len);
  }
}

void copy_d2d(void* dst, const void* src, size_t n) {
  cudaStream_t st = current_stream();
  LD_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, st));
  LD_CUDA_CHECK(cudaStreamSynchronize(st));
}

namespace {
std::atomic<bool> g_tf32{false};
}
void set_allow_tf32(bool on) { g_tf32 = on; }
bool allow_tf32() { return g_tf32; }

// ---------------- hooks for core/storage ----------------
namespace {

bool hook_available() { return device_available(); }
std::string hook_reason() { return unavailable_reason(); }
void* hook_allocate(size_t n, int device) {
  int prev = current_device();
  if (prev != device) LD_CUDA_CHECK(cudaSetDevice(device));
  void* p = device_alloc(n, current_stream());
  if (prev != device) LD_CUDA_CHECK(cudaSetDevice(prev));
  return p;
}
void hook_deallocate(void* p, size_t, int) { device_free(p); }
void hook_memcpy(void* dst, const void* src, size_t n, int kind) {
  if (kind == 0)
    copy_h2d(dst, src, n);
  else if (kind == 1)
    copy_d2h(dst, src, n);
  else
    copy_d2d(dst, src, n);
}
void hook_memset_zero(void* p, size_t n) {
  LD_CUDA_CHECK(cudaMemsetAsync(p, 0, n, current_stream()));
}

const CudaHooks kHooks{hook_available,  hook_reason, hook_allocate,
                       hook_deallocate, hook_memcpy, hook_memset_zero};

struct Registrar {
  Registrar() { register_cuda_hooks(&kHooks); }
} g_registrar;

}  // namespace

}  // namespace ld::cuda
