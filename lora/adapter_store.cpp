// Saved run adapters (PEFT for LoRA-family sets, our safetensors file for VeRA / Tied-LoRA) and
// initialising a new run's adapters from one.
#include "lora/adapter_store.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/hash.h"
#include "lora/peft_io.h"
#include "nn/safetensors.h"

namespace ld::lora {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kPrefix = "base_model.model.";
const char* kOwnFile = "adapter_tensors.safetensors";
const char* kPeftFile = "adapter_model.safetensors";
const std::vector<std::string> kHead = {"classifier.*", "score.*"};

bool is_head(const std::string& name) {
  for (const std::string& p : kHead)
    if (nn::name_matches(p, name)) return true;
  return false;
}

// The adapter parameters of `set` by model name (a shared tensor under each of its names): every
// trainable parameter outside the head. The base model is frozen by AdapterSet.
std::map<std::string, Tensor> adapter_params(const AdapterSet& set) {
  std::map<std::string, Tensor> out;
  for (auto& [n, t] : set.root().named_parameters())
    if (t.requires_grad() && !is_head(n)) out.emplace(n, t);
  return out;
}

}  // namespace

void save_adapter(const AdapterSet& set, const std::string& dir,
                  const std::string& base_model_name) {
  const AdapterConfig& cfg = set.config();
  LD_CHECK(cfg.method != Method::FullFT, "save_adapter: full fine-tuning has no adapter");
  const fs::path target = fs::path(dir).lexically_normal();
  const fs::path parent = target.parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  const fs::path tmp = target.string() + ".tmp." + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    if (cfg.method == Method::LoRA || cfg.method == Method::Sparse) {
      PeftExportOptions po;
      po.base_model_name_or_path = base_model_name;
      export_peft(set, tmp.string(), po);
    } else {
      std::map<std::string, Tensor> t;
      NoGradGuard ng;
      for (auto& [n, p] : adapter_params(set)) t[n] = p.detach().to(kCPU, DType::f32).contiguous();
      LD_CHECK(!t.empty(), "save_adapter: the {} set has no trainable adapter parameter",
               method_name(cfg.method));
      nn::save_safetensors((tmp / kOwnFile).string(), t,
                           {{"format", "pt"},
                            {"loradrop.method", method_name(cfg.method)},
                            {"loradrop.r", std::to_string(cfg.r)},
                            {"loradrop.alpha", fmt::format("{}", cfg.alpha)},
                            {"loradrop.vera_prng_key", std::to_string(cfg.vera_prng_key)}});
    }
    nn::fsync_directory(tmp.string());
    // A directory cannot be renamed over a non-empty one: an old copy (a run redone after a crash
    // between saving its adapter and recording it) goes first.
    if (fs::exists(target)) fs::remove_all(target);
    fs::rename(tmp, target);
    nn::fsync_directory(parent.string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

bool has_saved_adapter(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / kOwnFile) ||
         (fs::is_regular_file(fs::path(dir) / kPeftFile) &&
          fs::is_regular_file(fs::path(dir) / "adapter_config.json"));
}

StoredAdapter load_adapter(const std::string& dir) {
  StoredAdapter s;
  s.dir = dir;
  const fs::path own = fs::path(dir) / kOwnFile;
  if (fs::is_regular_file(own)) {
    nn::SafetensorsFile f(own.string());
    auto meta = [&](const char* k) {
      auto it = f.metadata().find(k);
      LD_CHECK(it != f.metadata().end(), "'{}': metadata '{}' is missing", own.string(), k);
      return it->second;
    };
    s.method = parse_method(meta("loradrop.method"));
    s.r = std::stoll(meta("loradrop.r"));
    s.alpha = std::stod(meta("loradrop.alpha"));
    s.vera_prng_key = std::stoull(meta("loradrop.vera_prng_key"));
    for (const std::string& n : f.names()) s.tensors[n] = f.get(n);
    LD_CHECK(!s.tensors.empty(), "'{}' holds no tensors", own.string());
    return s;
  }
  const fs::path cfg_path = fs::path(dir) / "adapter_config.json";
  const fs::path st_path = fs::path(dir) / kPeftFile;
  LD_CHECK(fs::is_regular_file(cfg_path) && fs::is_regular_file(st_path),
           "'{}' holds no saved adapter ({} + adapter_config.json, or {})", dir, kPeftFile,
           kOwnFile);
  std::ifstream in(cfg_path);
  std::stringstream ss;
  ss << in.rdbuf();
  json c = json::parse(ss.str(), nullptr, false);
  LD_CHECK(c.is_object() && c.value("peft_type", "") == "LORA" && c.contains("r") &&
               c.contains("lora_alpha"),
           "'{}' is not a PEFT LoRA adapter config", cfg_path.string());
  s.method = Method::LoRA;
  s.r = c["r"].get<int64_t>();
  s.alpha = c["lora_alpha"].get<double>();
  nn::SafetensorsFile f(st_path.string());
  for (const std::string& k : f.names()) {
    LD_CHECK(k.rfind(kPrefix, 0) == 0, "'{}': key '{}' does not start with '{}'", st_path.string(),
             k, kPrefix);
    const std::string n = k.substr(kPrefix.size());
    if (is_head(n)) continue;  // the task-specific head is never carried over
    s.tensors[n] = f.get(k);
  }
  LD_CHECK(!s.tensors.empty(), "'{}' holds no adapter tensors", st_path.string());
  auto meta = f.metadata().find("loradrop.adapter_of");
  if (meta != f.metadata().end()) {
    json j = json::parse(meta->second, nullptr, false);
    LD_CHECK(j.is_object(), "'{}': metadata loradrop.adapter_of is not a JSON object",
             st_path.string());
    for (auto& [site, id] : j.items()) s.adapter_of[site] = id.get<std::string>();
  }
  return s;
}

std::pair<std::string, std::string> StoredAdapter::shared_of(const std::string& target) const {
  for (const auto& [site, id] : adapter_of)
    if (target_of(site) == target && id.rfind(target + ".shared", 0) == 0)
      return {site + ".lora_A.weight", site + ".lora_B.weight"};
  return {};
}

InitReport init_adapters_from(AdapterSet& set, const StoredAdapter& src) {
  const AdapterConfig& cfg = set.config();
  const Method want = cfg.method == Method::Sparse ? Method::LoRA : cfg.method;
  LD_CHECK(src.method == want, "'{}' holds a {} adapter; this run's adapters are {}", src.dir,
           method_name(src.method), method_name(cfg.method));
  LD_CHECK(src.r == cfg.r && src.alpha == cfg.alpha,
           "'{}' has r = {}, alpha = {}; this run has r = {}, alpha = {}", src.dir, src.r,
           src.alpha, cfg.r, cfg.alpha);
  LD_CHECK(cfg.method != Method::VeRA || src.vera_prng_key == cfg.vera_prng_key,
           "'{}': VeRA projections from key {}, this run's from key {} (its lambdas would scale "
           "other projections)",
           src.dir, src.vera_prng_key, cfg.vera_prng_key);
  InitReport rep;
  std::map<std::string, Tensor> now;
  NoGradGuard ng;
  for (auto& [n, p] : adapter_params(set)) {
    auto it = src.tensors.find(n);
    if (it == src.tensors.end()) {
      rep.kept.push_back(n);
      continue;
    }
    LD_CHECK(it->second.shape() == p.shape(), "'{}': '{}' has shape {} but this run's is {}",
             src.dir, n, shape_str(it->second.shape()), shape_str(p.shape()));
    Tensor(p).copy_(it->second.to(p.dtype()).to(p.device()));
    rep.loaded.push_back(n);
    now[n] = p;
  }
  LD_CHECK(!rep.loaded.empty(), "'{}': none of its tensors names an adapter of this model",
           src.dir);
  rep.digest = adapter_digest(now);
  return rep;
}

std::vector<std::string> init_shared_from(AdapterSet& set, const StoredAdapter& src) {
  std::vector<std::string> done;
  NoGradGuard ng;
  for (const std::string& target : set.targets()) {
    const auto [a_name, b_name] = src.shared_of(target);
    if (a_name.empty()) continue;
    std::set<const LoraAdapter*> seen;
    for (const Site* s : set.sites_of(target)) {
      if (!s->module) continue;
      const AdapterPtr& a = s->module->adapter();
      if (a->id.rfind(target + ".shared", 0) != 0 || !seen.insert(a.get()).second) continue;
      const Tensor& sa = src.tensors.at(a_name);
      const Tensor& sb = src.tensors.at(b_name);
      LD_CHECK(sa.shape() == a->A.shape() && sb.shape() == a->B.shape(),
               "'{}': shared adapter of '{}' is A {} / B {}, this run's A {} / B {}", src.dir,
               target, shape_str(sa.shape()), shape_str(sb.shape()), shape_str(a->A.shape()),
               shape_str(a->B.shape()));
      Tensor(a->A).copy_(sa.to(a->A.dtype()).to(a->A.device()));
      Tensor(a->B).copy_(sb.to(a->B.dtype()).to(a->B.device()));
    }
    if (!seen.empty()) done.push_back(target);
  }
  return done;
}

std::string adapter_digest(const std::map<std::string, Tensor>& tensors) {
  uint64_t h = kFnv1aOffset;
  for (const auto& [n, t] : tensors) {
    h = fnv1a(n.data(), n.size() + 1, h);  // with the terminating NUL: names stay separated
    for (int64_t d : t.shape()) h = fnv1a(&d, sizeof d, h);
    std::vector<float> v = t.detach().to(kCPU, DType::f32).contiguous().to_vector<float>();
    h = fnv1a(v.data(), v.size() * sizeof(float), h);
  }
  return fmt::format("{:016x}", h);
}

}  // namespace ld::lora
