// Storage: a reference-counted block of memory on one device. CPU memory is 64-byte aligned;
// CUDA memory comes from the hooks the CUDA backend registers (its caching allocator).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "core/dtype.h"

namespace ld {

// Filled by core/cuda at static-initialisation time when the CUDA backend is built in.
struct CudaHooks {
  bool (*available)();                           // a usable device is present
  std::string (*unavailable_reason)();           // why not, for the error message
  void* (*allocate)(size_t nbytes, int device);  // caching allocator
  void (*deallocate)(void* p, size_t nbytes, int device);
  // kind: 0 host->device, 1 device->host, 2 device->device (synchronous w.r.t. the host)
  void (*memcpy)(void* dst, const void* src, size_t nbytes, int kind);
  void (*memset_zero)(void* p, size_t nbytes);
};
void register_cuda_hooks(const CudaHooks* hooks);
const CudaHooks* cuda_hooks();
// Throws ld::Error("no CUDA device: ...") unless a CUDA device can be used.
void require_cuda(const char* what);
bool cuda_available();

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (an mmap'd file, a pinned buffer); `release` frees it.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  std::function<void(void*)> release_;
};

// Bytes held by tensor storage that Storage(nbytes, device) allocated (wrapped memory, e.g. an
// mmap'd checkpoint, is not counted), per device kind: current and peak since the last reset.
// What a training step's tensors need, not the process's RSS or the CUDA allocator's cache.
struct StorageMemory {
  size_t current_bytes = 0, peak_bytes = 0;
};
StorageMemory storage_memory(bool cuda);
void reset_storage_peak();  // peak := current, for both kinds

// Copies bytes between any two devices.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);

}  // namespace ld
