// Profiler storage and table; CUDA event pairs are resolved lazily when the table is built.
#include "core/profiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>
#ifdef LD_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace ld {

namespace {

struct Stat {
  int64_t calls = 0;
  double total_ms = 0;
  double max_ms = 0;
};

#ifdef LD_WITH_CUDA
struct EventPair {
  std::string name;
  cuda::Event start, stop;
  EventPair() : start(true), stop(true) {}
};
#endif

struct State {
  std::mutex mu;
  bool on = [] {
    const char* v = std::getenv("LD_PROFILE");
    return v && std::strcmp(v, "0") != 0 && std::strcmp(v, "") != 0;
  }();
  std::map<std::string, Stat> stats;
#ifdef LD_WITH_CUDA
  std::vector<std::unique_ptr<EventPair>> pending;
#endif
};
State& state() {
  static State* s = new State;
  return *s;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void add_locked(State& s, const std::string& name, double ms) {
  Stat& st = s.stats[name];
  ++st.calls;
  st.total_ms += ms;
  st.max_ms = std::max(st.max_ms, ms);
}

}  // namespace

void Profiler::enable(bool on) {
  std::lock_guard<std::mutex> lk(state().mu);
  state().on = on;
}
bool Profiler::enabled() { return state().on; }

void Profiler::record(const std::string& name, double ms) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  add_locked(s, name, ms);
}

void Profiler::reset() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.stats.clear();
#ifdef LD_WITH_CUDA
  s.pending.clear();
#endif
}

std::string Profiler::table() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
#ifdef LD_WITH_CUDA
  for (auto& p : s.pending) {
    p->stop.synchronize();
    add_locked(s, p->name, p->stop.elapsed_ms(p->start));
  }
  s.pending.clear();
#endif
  std::vector<std::pair<std::string, Stat>> rows(s.stats.begin(), s.stats.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.total_ms > b.second.total_ms; });
  double all = 0;
  for (auto& r : rows) all += r.second.total_ms;
  std::string out = fmt::format("{:<40} {:>8} {:>12} {:>10} {:>10} {:>7}\n", "op", "calls",
                                "total ms", "mean ms", "max ms", "share");
  for (auto& [name, st] : rows)
    out += fmt::format("{:<40} {:>8} {:>12.3f} {:>10.4f} {:>10.4f} {:>6.1f}%\n", name, st.calls,
                       st.total_ms, st.total_ms / std::max<int64_t>(st.calls, 1), st.max_ms,
                       all > 0 ? 100.0 * st.total_ms / all : 0.0);
  return out;
}

ProfileScope::ProfileScope(const char* name) : name_(name), on_(Profiler::enabled()) {
  if (!on_) return;
#ifdef LD_WITH_CUDA
  if (cuda::device_available()) {
    auto* p = new EventPair;
    p->name = name;
    p->start.record(cuda::current_stream());
    cuda_ = p;
    return;
  }
#endif
  t0_ns_ = now_ns();
}

ProfileScope::~ProfileScope() {
  if (!on_) return;
#ifdef LD_WITH_CUDA
  if (cuda_) {
    auto* p = static_cast<EventPair*>(cuda_);
    try {
      p->stop.record(cuda::current_stream());
    } catch (...) {
      delete p;
      return;
    }
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    s.pending.emplace_back(p);
    return;
  }
#endif
  Profiler::record(name_, (now_ns() - t0_ns_) / 1e6);
}

}  // namespace ld
