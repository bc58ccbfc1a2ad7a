// Profiler storage, scope timing (self time via a per-thread stack of open scopes) and the table;
// CUDA event pairs are resolved lazily when rows are read.
#include "core/profiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#ifdef LD_WITH_CUDA
#include "core/cuda/runtime.h"
#endif

namespace ld {

namespace {

bool env_on() {
  const char* v = std::getenv("LD_PROFILE");
  return v && std::strcmp(v, "0") != 0 && std::strcmp(v, "") != 0;
}

}  // namespace

std::atomic<bool> detail::g_profile_on{env_on()};

namespace {

struct Stat {
  int64_t calls = 0;
  double total_ms = 0, self_ms = 0, max_ms = 0;
  bool has_gpu = false;
  double gpu_total_ms = 0, gpu_self_ms = 0;
};

#ifdef LD_WITH_CUDA
// One scope's events; parent is the record of the enclosing timed scope. A record is resolved
// only once its children are (open_children == 0), so a parent outlives every child that will
// add to its child_ms.
struct GpuRecord {
  const char* name = nullptr;
  GpuRecord* parent = nullptr;
  cuda::Event start{true}, stop{true};
  double child_ms = 0;
  int open_children = 0;
  bool done = false;
  bool failed = false;  // the stop event could not be recorded: no GPU time for this call
};
// Past this many pending records, finished ones are resolved as scopes end (without waiting), so
// a long profiled run holds a bounded number of CUDA events; resolved records are reused.
constexpr size_t kResolveEvery = 4096;
#endif

struct State {
  std::mutex mu;
  std::unordered_map<const char*, Stat> by_ptr;  // scopes: keyed by their (static) name
  std::map<std::string, Stat> by_name;           // Profiler::record
#ifdef LD_WITH_CUDA
  std::vector<std::unique_ptr<GpuRecord>> pending;  // in creation order
  std::vector<std::unique_ptr<GpuRecord>> spare;    // resolved, for reuse (events kept)
#endif
};
State& state() {
  static State* s = new State;
  return *s;
}

thread_local ProfileScope* t_top = nullptr;  // innermost open timing scope of this thread

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void add_cpu(Stat& st, double total, double self) {
  ++st.calls;
  st.total_ms += total;
  st.self_ms += self;
  st.max_ms = std::max(st.max_ms, total);
}

void merge(Stat& a, const Stat& b) {
  a.calls += b.calls;
  a.total_ms += b.total_ms;
  a.self_ms += b.self_ms;
  a.max_ms = std::max(a.max_ms, b.max_ms);
  a.has_gpu = a.has_gpu || b.has_gpu;
  a.gpu_total_ms += b.gpu_total_ms;
  a.gpu_self_ms += b.gpu_self_ms;
}

#ifdef LD_WITH_CUDA
// Resolves finished event pairs, innermost first (later records are nested in earlier ones);
// `wait`: synchronise on each stop event, else only those already complete.
void resolve_locked(State& s, bool wait) {
  for (auto it = s.pending.rbegin(); it != s.pending.rend(); ++it) {
    GpuRecord& r = **it;
    if (!r.done || r.open_children > 0) continue;
    if (!r.failed) {
      if (wait)
        r.stop.synchronize();
      else if (!r.stop.query())
        continue;
      const double ms = r.stop.elapsed_ms(r.start);
      if (r.parent) r.parent->child_ms += ms;
      Stat& st = s.by_ptr[r.name];
      st.has_gpu = true;
      st.gpu_total_ms += ms;
      st.gpu_self_ms += ms - r.child_ms;
    }
    if (r.parent) --r.parent->open_children;
    r.name = nullptr;  // resolved: moved to the spares below
  }
  for (auto& r : s.pending)
    if (r->done && !r->name) s.spare.push_back(std::move(r));
  std::erase_if(s.pending, [](const std::unique_ptr<GpuRecord>& r) { return !r; });
}
#endif

std::string json_escape(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      o += fmt::format("\\u{:04x}", static_cast<int>(c));
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

void Profiler::enable(bool on) { detail::g_profile_on.store(on, std::memory_order_relaxed); }

void Profiler::record(const std::string& name, double ms) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  add_cpu(s.by_name[name], ms, ms);
}

void Profiler::reset() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.by_ptr.clear();
  s.by_name.clear();
#ifdef LD_WITH_CUDA
  // Finished records are resolved into the (now empty) stats and dropped from them again;
  // records of scopes still open stay, as their children point at them.
  resolve_locked(s, true);
  s.by_ptr.clear();
#endif
}

std::vector<ProfileRow> Profiler::rows() {
  State& s = state();
  std::map<std::string, Stat> merged;
  {
    std::lock_guard<std::mutex> lk(s.mu);
#ifdef LD_WITH_CUDA
    resolve_locked(s, true);
#endif
    for (const auto& [name, st] : s.by_ptr) merge(merged[name], st);
    for (const auto& [name, st] : s.by_name) merge(merged[name], st);
  }
  std::vector<ProfileRow> out;
  bool gpu = false;
  for (const auto& [name, st] : merged) {
    out.push_back({name, st.calls, st.total_ms, st.self_ms, st.max_ms, st.has_gpu, st.gpu_total_ms,
                   st.gpu_self_ms});
    gpu = gpu || st.has_gpu;
  }
  // GPU self time when the GPU was timed (CPU time is then mostly launch overhead).
  std::stable_sort(out.begin(), out.end(), [gpu](const ProfileRow& a, const ProfileRow& b) {
    return gpu ? a.gpu_self_ms > b.gpu_self_ms : a.self_ms > b.self_ms;
  });
  return out;
}

std::string Profiler::table() {
  const std::vector<ProfileRow> rows = Profiler::rows();
  bool gpu = false;
  double all = 0, gpu_all = 0;
  for (const ProfileRow& r : rows) {
    gpu = gpu || r.has_gpu;
    all += r.self_ms;
    gpu_all += r.gpu_self_ms;
  }
  std::string out = fmt::format(
      "op profile ({}; total includes nested ops, self excludes them; share = self / sum of "
      "self)\n",
      gpu ? "CPU wall clock and CUDA events" : "CPU wall clock");
  out += fmt::format("{:<36} {:>8} {:>11} {:>11} {:>6} {:>10} {:>10}", "op", "calls", "total ms",
                     "self ms", "share", "mean ms", "max ms");
  if (gpu) out += fmt::format(" {:>11} {:>11} {:>6}", "gpu total", "gpu self", "share");
  out += '\n';
  for (const ProfileRow& r : rows) {
    out += fmt::format("{:<36} {:>8} {:>11.3f} {:>11.3f} {:>5.1f}% {:>10.4f} {:>10.4f}", r.name,
                       r.calls, r.total_ms, r.self_ms, all > 0 ? 100.0 * r.self_ms / all : 0.0,
                       r.total_ms / static_cast<double>(std::max<int64_t>(r.calls, 1)), r.max_ms);
    if (gpu)
      out += fmt::format(" {:>11.3f} {:>11.3f} {:>5.1f}%", r.gpu_total_ms, r.gpu_self_ms,
                         gpu_all > 0 ? 100.0 * r.gpu_self_ms / gpu_all : 0.0);
    out += '\n';
  }
  return out;
}

std::string Profiler::json() {
  const std::vector<ProfileRow> rows = Profiler::rows();
  std::string out = "{\"unit\": \"ms\", \"ops\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const ProfileRow& r = rows[i];
    out += fmt::format(
        "{}\n  {{\"name\": \"{}\", \"calls\": {}, \"total_ms\": {:.6f}, \"self_ms\": {:.6f}, "
        "\"max_ms\": {:.6f}",
        i ? "," : "", json_escape(r.name), r.calls, r.total_ms, r.self_ms, r.max_ms);
    if (r.has_gpu)
      out += fmt::format(", \"gpu_total_ms\": {:.6f}, \"gpu_self_ms\": {:.6f}", r.gpu_total_ms,
                         r.gpu_self_ms);
    out += "}";
  }
  out += rows.empty() ? "]}\n" : "\n]}\n";
  return out;
}

void ProfileScope::start(const char* name) {
  name_ = name;
  parent_ = t_top;
  t_top = this;
  child_ms_ = 0;
  gpu_ = nullptr;
#ifdef LD_WITH_CUDA
  if (cuda::device_available()) {
    State& s = state();
    std::lock_guard<std::mutex> lk(s.mu);
    std::unique_ptr<GpuRecord> rec;
    if (!s.spare.empty()) {
      rec = std::move(s.spare.back());
      s.spare.pop_back();
      rec->child_ms = 0;
      rec->open_children = 0;
      rec->done = rec->failed = false;
    } else {
      rec = std::make_unique<GpuRecord>();
    }
    rec->name = name;
    rec->parent = parent_ ? static_cast<GpuRecord*>(parent_->gpu_) : nullptr;
    if (rec->parent) ++rec->parent->open_children;
    rec->start.record(cuda::current_stream());
    gpu_ = rec.get();
    s.pending.push_back(std::move(rec));
  }
#endif
  t0_ns_ = now_ns();
}

void ProfileScope::stop() {
  const double ms = static_cast<double>(now_ns() - t0_ns_) / 1e6;
  t_top = parent_;
  if (parent_) parent_->child_ms_ += ms;
  State& s = state();
#ifdef LD_WITH_CUDA
  if (gpu_) {
    auto* rec = static_cast<GpuRecord*>(gpu_);
    bool failed = false;
    try {
      rec->stop.record(cuda::current_stream());
    } catch (...) {  // called from a destructor: drop this call's GPU time rather than throw
      failed = true;
    }
    std::lock_guard<std::mutex> lk(s.mu);
    rec->failed = failed;
    rec->done = true;
    if (s.pending.size() >= kResolveEvery) resolve_locked(s, false);
  }
#endif
  std::lock_guard<std::mutex> lk(s.mu);
  add_cpu(s.by_ptr[name_], ms, ms - child_ms_);
}

const char* backward_name(const char* name) {
  // The strings live for the whole process (the profiler keys its rows by their address); each
  // thread caches the lookups so only a first sight takes the lock.
  thread_local std::unordered_map<const char*, const char*> cache;
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  static std::mutex mu;
  static auto* interned = new std::map<std::string, std::unique_ptr<std::string>>;
  std::string full = std::string(name) + "_bwd";
  const char* p;
  {
    std::lock_guard<std::mutex> lk(mu);
    auto& slot = (*interned)[full];
    if (!slot) slot = std::make_unique<std::string>(full);
    p = slot->c_str();
  }
  cache.emplace(name, p);
  return p;
}

}  // namespace ld
