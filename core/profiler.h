// A built-in op profiler for when Nsight is not at hand. Every public op opens LD_OP_SCOPE("name")
// (its NVTX range and its profile scope under one name) and the autograd engine opens
// "<node>_bwd" around each backward closure. Per name the profiler keeps calls, total time
// (inclusive of nested ops) and self time (total minus the nested scopes'), on the CPU steady
// clock and, when a GPU is present, from CUDA events on the current stream (the GPU time of the
// work the scope enqueued). Off by default; LD_PROFILE=1 in the environment or
// Profiler::enable() turns it on. Off, a scope costs one relaxed load and a not-taken branch.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/nvtx.h"

namespace ld {

namespace detail {
extern std::atomic<bool> g_profile_on;  // read by every scope; set by LD_PROFILE / enable()
}

// One row of the table. Self times sum to the time covered by the outermost scopes, so their
// shares add up to 100%; totals double count nested ops (linear includes its matmul).
struct ProfileRow {
  std::string name;
  int64_t calls = 0;
  double total_ms = 0, self_ms = 0, max_ms = 0;  // CPU wall clock (max: of one call's total)
  bool has_gpu = false;                          // CUDA events were recorded for this name
  double gpu_total_ms = 0, gpu_self_ms = 0;
};

class Profiler {
 public:
  static void enable(bool on = true);
  static bool enabled() { return detail::g_profile_on.load(std::memory_order_relaxed); }
  // Adds one call of `name` taking `ms` milliseconds (total = self = ms).
  static void record(const std::string& name, double ms);
  static void reset();
  // Rows sorted by self time (CPU), after resolving pending CUDA events.
  static std::vector<ProfileRow> rows();
  // The rows as an aligned text table with a header naming the columns.
  static std::string table();
  // {"unit": "ms", "ops": [{"name", "calls", "total_ms", "self_ms", "max_ms"[, "gpu_total_ms",
  // "gpu_self_ms"]}, ...]} in the order of rows().
  static std::string json();
};

class ProfileScope {
 public:
  explicit ProfileScope(const char* name) {
    if (Profiler::enabled()) [[unlikely]]
      start(name);
  }
  ~ProfileScope() {
    if (name_) [[unlikely]]
      stop();
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  void start(const char* name);
  void stop();

  // Off, only name_ is written (the rest is set by start()).
  const char* name_ = nullptr;  // non-null while this scope is timing
  ProfileScope* parent_;
  int64_t t0_ns_;
  double child_ms_;  // total of the scopes nested directly inside this one
  void* gpu_;        // its CUDA event record, when timing on the GPU
};

// "<name>_bwd" with static storage (one string per distinct name; cached per thread).
const char* backward_name(const char* name);

// The scope of a public op: its NVTX range and its profile scope, under one name.
class OpScope {
 public:
  explicit OpScope(const char* name) : nvtx_(name), prof_(name) {}

 private:
  NvtxRange nvtx_;
  ProfileScope prof_;
};

// The scope of a backward closure of node `name`: "<name>_bwd" in NVTX and in the profiler (the
// name is built only when one of them is on).
class BackwardScope {
 public:
  explicit BackwardScope(const char* name)
      : BackwardScope(Profiler::enabled() || nvtx_on() ? backward_name(name) : name, 0) {}

 private:
#ifdef LD_WITH_CUDA
  static bool nvtx_on() { return nvtx_enabled(); }
#else
  static constexpr bool nvtx_on() { return false; }  // no ranges without CUDA
#endif
  BackwardScope(const char* full, int) : nvtx_(full), prof_(full) {}
  NvtxRange nvtx_;
  ProfileScope prof_;
};

}  // namespace ld

#define LD_PROFILE_CAT2(a, b) a##b
#define LD_PROFILE_CAT(a, b) LD_PROFILE_CAT2(a, b)
// A profile scope alone (no NVTX range).
#define LD_PROFILE_SCOPE(name) ::ld::ProfileScope LD_PROFILE_CAT(ld_prof_, __LINE__)(name)
// First line of every public op in core/ops: NVTX range + profile scope named `name` (a literal).
#define LD_OP_SCOPE(name) ::ld::OpScope LD_PROFILE_CAT(ld_op_, __LINE__)(name)
