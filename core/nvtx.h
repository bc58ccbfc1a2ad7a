// NVTX ranges (nvtx3, header-only) for Nsight Systems; no-ops without CUDA. LD_NVTX=0 in the
// environment turns them off at run time.
#pragma once
#include <string>

#ifdef LD_WITH_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace ld {

bool nvtx_enabled();  // reads LD_NVTX once

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) {
#ifdef LD_WITH_CUDA
    if ((on_ = nvtx_enabled())) nvtxRangePushA(name);
#else
    (void)name;
#endif
  }
  explicit NvtxRange(const std::string& name) : NvtxRange(name.c_str()) {}
  ~NvtxRange() {
#ifdef LD_WITH_CUDA
    if (on_) nvtxRangePop();
#endif
  }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;

 private:
  bool on_ = false;
};

}  // namespace ld

#define LD_NVTX_CAT2(a, b) a##b
#define LD_NVTX_CAT(a, b) LD_NVTX_CAT2(a, b)
// One RAII range named after the enclosing function, first line of every launcher/op.
#define LD_NVTX_FN() ::ld::NvtxRange LD_NVTX_CAT(ld_nvtx_, __LINE__)(__func__)
// A named range (module forward/backward, layers).
#define LD_NVTX_RANGE(name) ::ld::NvtxRange LD_NVTX_CAT(ld_nvtx_, __LINE__)(name)
