// Storage allocation on CPU (aligned) and CUDA (through the registered hooks).
#include "core/storage.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace ld {

namespace {
const CudaHooks* g_cuda = nullptr;
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
    release_ = [](void* p) { std::free(p); };
  } else {
    require_cuda("allocating a tensor");
    int dev = device.index;
    data_ = nbytes ? g_cuda->allocate(nbytes, dev) : nullptr;
    release_ = [nbytes, dev](void* p) {
      if (p) g_cuda->deallocate(p, nbytes, dev);
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
