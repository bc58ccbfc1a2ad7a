// Storage allocation on CPU (aligned) and CUDA (through the registered hooks).
#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace ld {

namespace {
const CudaHooks* g_cuda = nullptr;

struct Counter {
  std::atomic<size_t> current{0}, peak{0};
  void add(size_t n) {
    const size_t now = current.fetch_add(n, std::memory_order_relaxed) + n;
    size_t p = peak.load(std::memory_order_relaxed);
    while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
  }
  void sub(size_t n) { current.fetch_sub(n, std::memory_order_relaxed); }
};
Counter g_mem[2];  // 0 = CPU, 1 = CUDA
}  // namespace

StorageMemory storage_memory(bool cuda) {
  const Counter& c = g_mem[cuda ? 1 : 0];
  return {c.current.load(std::memory_order_relaxed), c.peak.load(std::memory_order_relaxed)};
}

void reset_storage_peak() {
  for (Counter& c : g_mem) c.peak.store(c.current.load(std::memory_order_relaxed));
}

void register_cuda_hooks(const CudaHooks* hooks) { g_cuda = hooks; }
const CudaHooks* cuda_hooks() { return g_cuda; }
bool cuda_available() { return g_cuda && g_cuda->available(); }

void require_cuda(const char* what) {
  if (!g_cuda) LD_FAIL("no CUDA device: {} needs CUDA, but loradrop was built without it", what);
  if (!g_cuda->available())
    LD_FAIL("no CUDA device: {} needs CUDA: {}", what, g_cuda->unavailable_reason());
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    size_t n = (nbytes + 63) / 64 * 64;
    data_ = n ? std::aligned_alloc(64, n) : nullptr;
    LD_CHECK(n == 0 || data_, "out of host memory allocating {} bytes", nbytes);
    g_mem[0].add(n);
    release_ = [n](void* p) {
      std::free(p);
      g_mem[0].sub(n);
    };
  } else {
    require_cuda("allocating a tensor");
    int dev = device.index;
    data_ = nbytes ? g_cuda->allocate(nbytes, dev) : nullptr;
    g_mem[1].add(nbytes);
    release_ = [nbytes, dev](void* p) {
      if (p) g_cuda->deallocate(p, nbytes, dev);
      g_mem[1].sub(nbytes);
    };
  }
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) release_(data_);
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  require_cuda("copying between devices");
  int kind = src_dev.is_cpu() ? 0 : (dst_dev.is_cpu() ? 1 : 2);
  g_cuda->memcpy(dst, src, nbytes, kind);
}

}  // namespace ld
