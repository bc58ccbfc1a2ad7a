// A built-in op profiler for when Nsight is not at hand: LD_PROFILE_SCOPE("name") times a scope
// (CPU steady clock; with CUDA, events on the current stream measure the GPU time of the work the
// scope enqueued), and Profiler::table() prints calls, total, mean and share per name, sorted by
// total time. Off by default; LD_PROFILE=1 in the environment or Profiler::enable() turns it on.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace ld {

class Profiler {
 public:
  static void enable(bool on = true);
  static bool enabled();
  // Adds one call of `name` taking `ms` milliseconds.
  static void record(const std::string& name, double ms);
  static void reset();
  // The table, sorted by total time (resolves pending CUDA events first).
  static std::string table();
};

class ProfileScope {
 public:
  explicit ProfileScope(const char* name);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* name_;
  bool on_;
  int64_t t0_ns_ = 0;
  void* cuda_ = nullptr;  // pending CUDA event pair, when timing on the GPU
};

}  // namespace ld

#define LD_PROFILE_CAT2(a, b) a##b
#define LD_PROFILE_CAT(a, b) LD_PROFILE_CAT2(a, b)
#define LD_PROFILE_SCOPE(name) ::ld::ProfileScope LD_PROFILE_CAT(ld_prof_, __LINE__)(name)
