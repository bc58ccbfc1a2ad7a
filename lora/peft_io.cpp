// PEFT adapter export/import (adapter_config.json + adapter_model.safetensors), atomic writes.
#include "lora/peft_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "nn/safetensors.h"

namespace ld::lora {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kPrefix = "base_model.model.";

// temp file, fsync, rename, fsync of the directory
void write_file_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LD_CHECK(fd >= 0, "cannot create '{}': {}", tmp, std::strerror(errno));
  const char* p = text.data();
  size_t n = text.size();
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      LD_FAIL("writing '{}' failed: {}", tmp, err);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    LD_FAIL("fsync of '{}' failed: {}", tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    LD_FAIL("renaming '{}' to '{}' failed: {}", tmp, path, err);
  }
  std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

bool top_level_child(const nn::Module& root, const std::string& name) {
  for (auto& [n, m] : root.named_modules())
    if (n == name) return true;
  return false;
}

}  // namespace

void export_peft(const AdapterSet& set, const std::string& dir, const PeftExportOptions& opt) {
  const AdapterConfig& cfg = set.config();
  LD_CHECK(cfg.method == Method::LoRA || cfg.method == Method::Sparse,
           "export_peft writes LoRA adapters; method {} has no PEFT LoRA form",
           method_name(cfg.method));
  std::map<std::string, Tensor> tensors;
  json adapter_of = json::object();
  std::vector<std::string> adapted;
  for (const Site& s : set.sites()) {
    if (!s.module) continue;
    LD_CHECK(!s.module->merged(), "export_peft: site '{}' is merged; unmerge before exporting",
             s.name);
    NoGradGuard ng;
    const AdapterPtr& a = s.module->adapter();
    tensors[kPrefix + s.name + ".lora_A.weight"] =
        a->eff_A().detach().to(kCPU, DType::f32).contiguous();
    tensors[kPrefix + s.name + ".lora_B.weight"] =
        a->eff_B().detach().to(kCPU, DType::f32).contiguous();
    adapter_of[s.name] = a->id;
    adapted.push_back(s.name);
  }
  LD_CHECK(!adapted.empty(), "export_peft: no site has an adapter");
  std::vector<std::string> saved;
  for (const std::string& mod : opt.modules_to_save) {
    if (!top_level_child(set.root(), mod)) continue;
    saved.push_back(mod);
    for (auto& [n, t] : set.root().find_module(mod)->named_parameters())
      tensors[kPrefix + mod + "." + n] = t.detach().to(kCPU, DType::f32).contiguous();
  }
  // target_modules: the target names when every matching Linear is adapted, else exact paths.
  std::set<std::string> targets;
  for (const std::string& n : adapted) targets.insert(target_of(n));
  bool all = true;
  for (auto& [name, m] : set.root().named_modules()) {
    if (!dynamic_cast<nn::Linear*>(m.get()) || !targets.count(target_of(name))) continue;
    if (std::find(adapted.begin(), adapted.end(), name) == adapted.end()) all = false;
  }
  json c;
  c["peft_type"] = "LORA";
  if (opt.task_type.empty())
    c["task_type"] = nullptr;
  else
    c["task_type"] = opt.task_type;
  c["base_model_name_or_path"] = opt.base_model_name_or_path;
  c["r"] = cfg.r;
  c["lora_alpha"] = cfg.alpha;
  c["lora_dropout"] = cfg.dropout;
  c["target_modules"] =
      all ? json(std::vector<std::string>(targets.begin(), targets.end())) : json(adapted);
  c["bias"] = "none";
  c["fan_in_fan_out"] = false;
  c["inference_mode"] = true;
  c["init_lora_weights"] = true;
  c["use_rslora"] = false;
  c["use_dora"] = false;
  c["modules_to_save"] = saved.empty() ? json(nullptr) : json(saved);
  c["rank_pattern"] = json::object();
  c["alpha_pattern"] = json::object();
  c["revision"] = nullptr;
  fs::create_directories(dir);
  nn::save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors,
                       {{"format", "pt"}, {"loradrop.adapter_of", adapter_of.dump()}});
  write_file_atomic((fs::path(dir) / "adapter_config.json").string(), c.dump(2) + "\n");
}

AdapterSet import_peft(nn::Module& root, const std::string& dir, Generator& gen) {
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  const std::string st_path = (fs::path(dir) / "adapter_model.safetensors").string();
  std::ifstream in(cfg_path);
  LD_CHECK(in, "cannot open '{}'", cfg_path);
  std::stringstream ss;
  ss << in.rdbuf();
  json c;
  try {
    c = json::parse(ss.str());
  } catch (const json::exception& e) {
    LD_FAIL("'{}' is not valid JSON: {}", cfg_path, e.what());
  }
  auto get = [&](const char* key) -> const json& {
    LD_CHECK(c.contains(key) && !c[key].is_null(), "'{}': missing key '{}'", cfg_path, key);
    return c[key];
  };
  LD_CHECK(get("peft_type") == "LORA", "'{}': peft_type {} is not LORA", cfg_path,
           get("peft_type").dump());
  for (const char* flag : {"use_dora", "use_rslora", "fan_in_fan_out"})
    LD_CHECK(!c.contains(flag) || !c[flag].is_boolean() || !c[flag].get<bool>(),
             "'{}': {} = true is not supported", cfg_path, flag);
  for (const char* pat : {"rank_pattern", "alpha_pattern"})
    LD_CHECK(!c.contains(pat) || c[pat].is_null() || c[pat].empty(), "'{}': {} is not supported",
             cfg_path, pat);
  LD_CHECK(!c.contains("bias") || c["bias"] == "none", "'{}': bias {} is not supported", cfg_path,
           c["bias"].dump());
  AdapterConfig cfg;
  cfg.method = Method::LoRA;
  cfg.r = get("r").get<int64_t>();
  cfg.alpha = get("lora_alpha").get<double>();
  cfg.dropout = c.contains("lora_dropout") && c["lora_dropout"].is_number()
                    ? c["lora_dropout"].get<double>()
                    : 0.0;
  std::vector<std::string> mts;
  if (c.contains("modules_to_save") && c["modules_to_save"].is_array())
    mts = c["modules_to_save"].get<std::vector<std::string>>();

  nn::SafetensorsFile f(st_path);
  std::vector<std::string> sites;
  std::map<std::string, Tensor> head;
  for (const std::string& k : f.names()) {
    LD_CHECK(k.rfind(kPrefix, 0) == 0, "'{}': key '{}' does not start with '{}'", st_path, k,
             kPrefix);
    std::string rest = k.substr(kPrefix.size());
    if (rest.ends_with(".lora_A.weight")) {
      sites.push_back(rest.substr(0, rest.size() - std::string(".lora_A.weight").size()));
      LD_CHECK(f.contains(kPrefix + sites.back() + ".lora_B.weight"), "'{}': '{}' has no lora_B",
               st_path, sites.back());
      continue;
    }
    if (rest.ends_with(".lora_B.weight")) continue;
    bool saved = false;
    for (const std::string& m : mts) saved = saved || rest.rfind(m + ".", 0) == 0;
    LD_CHECK(saved, "'{}': unexpected key '{}' (neither LoRA nor modules_to_save)", st_path, k);
    head[rest] = f.get(k);
  }
  LD_CHECK(!sites.empty(), "'{}' holds no lora_A tensors", st_path);
  std::map<std::string, std::string> adapter_of;
  auto meta = f.metadata().find("loradrop.adapter_of");
  if (meta != f.metadata().end()) {
    json j = json::parse(meta->second);
    for (auto& [site, id] : j.items()) adapter_of[site] = id.get<std::string>();
  }
  AdapterSet set(root, sites, cfg, gen);
  // Sharing recorded at export: one adapter per id.
  std::map<std::string, AdapterPtr> by_id;
  for (const std::string& s : sites) {
    auto it = adapter_of.find(s);
    if (it == adapter_of.end()) continue;
    auto [pos, fresh] = by_id.emplace(it->second, set.site(s).module->adapter());
    if (!fresh) set.set_adapter(s, pos->second);
  }
  for (auto& [n, t] : head) root.parameter(n);  // throws naming a head tensor the model lacks
  NoGradGuard ng;
  std::set<const LoraAdapter*> loaded;
  for (const std::string& s : sites) {
    const AdapterPtr& a = set.site(s).module->adapter();
    const bool again = !loaded.insert(a.get()).second;
    for (auto [key, dst] : {std::pair{".lora_A.weight", a->A}, std::pair{".lora_B.weight", a->B}}) {
      Tensor t = f.get(kPrefix + s + key);
      LD_CHECK(t.shape() == dst.shape(), "'{}': '{}' has shape {} but the model expects {}",
               st_path, kPrefix + s + key, shape_str(t.shape()), shape_str(dst.shape()));
      if (again) {  // a shared adapter: every site's copy must hold the same values
        Tensor diff = abs(dst.detach().to(kCPU, DType::f64) - t.to(DType::f64));
        LD_CHECK(max(diff).item() == 0.0,
                 "'{}': sites sharing adapter '{}' hold different values at '{}'", st_path,
                 adapter_of.at(s), kPrefix + s + key);
        continue;
      }
      Tensor(dst).copy_(t);
    }
  }
  if (!head.empty()) root.load_state_dict(head, false);
  return set;
}

}  // namespace ld::lora
