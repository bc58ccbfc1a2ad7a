// Strict TOML preset parser (toml++): every key is known, every type checked, every reference
// resolved; errors name the file, line and key.
#include "paper_repro/presets.h"

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include "core/error.h"

namespace ld::repro {
namespace {

struct Ctx {
  std::string file;
  std::string at(const toml::source_region& r) const {
    return r.begin.line ? fmt::format("{}:{}:{}", file, r.begin.line, r.begin.column) : file;
  }
};

[[noreturn]] void fail_at(const Ctx& c, const toml::source_region& r, const std::string& msg) {
  LD_FAIL("{}: {}", c.at(r), msg);
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::array:
      return "array";
    case toml::node_type::table:
      return "table";
    default:
      return "other";
  }
}

std::string get_string(const Ctx& c, const std::string& key, const toml::node& n) {
  if (auto v = n.value_exact<std::string>()) return *v;
  fail_at(c, n.source(), fmt::format("key '{}' must be a string, found {}", key, type_name(n)));
}

int64_t get_int(const Ctx& c, const std::string& key, const toml::node& n) {
  if (auto v = n.value_exact<int64_t>()) return *v;
  fail_at(c, n.source(), fmt::format("key '{}' must be an integer, found {}", key, type_name(n)));
}

double get_double(const Ctx& c, const std::string& key, const toml::node& n) {
  if (n.is_floating_point()) return *n.value_exact<double>();
  if (n.is_integer()) return static_cast<double>(*n.value_exact<int64_t>());
  fail_at(c, n.source(), fmt::format("key '{}' must be a number, found {}", key, type_name(n)));
}

bool get_bool(const Ctx& c, const std::string& key, const toml::node& n) {
  if (auto v = n.value_exact<bool>()) return *v;
  fail_at(c, n.source(),
          fmt::format("key '{}' must be true or false, found {}", key, type_name(n)));
}

const toml::array& get_array(const Ctx& c, const std::string& key, const toml::node& n) {
  if (auto a = n.as_array()) return *a;
  fail_at(c, n.source(), fmt::format("key '{}' must be an array, found {}", key, type_name(n)));
}

std::vector<std::string> get_strings(const Ctx& c, const std::string& key, const toml::node& n) {
  std::vector<std::string> out;
  for (const auto& e : get_array(c, key, n)) out.push_back(get_string(c, key, e));
  return out;
}

std::vector<int64_t> get_ints(const Ctx& c, const std::string& key, const toml::node& n) {
  std::vector<int64_t> out;
  for (const auto& e : get_array(c, key, n)) out.push_back(get_int(c, key, e));
  return out;
}

std::vector<double> get_doubles(const Ctx& c, const std::string& key, const toml::node& n) {
  std::vector<double> out;
  for (const auto& e : get_array(c, key, n)) out.push_back(get_double(c, key, e));
  return out;
}

const toml::table& get_table(const Ctx& c, const std::string& key, const toml::node& n) {
  if (auto t = n.as_table()) return *t;
  fail_at(c, n.source(), fmt::format("'{}' must be a table, found {}", key, type_name(n)));
}

[[noreturn]] void unknown_key(const Ctx& c, const toml::key& k, const std::string& section,
                              const std::string& allowed) {
  fail_at(c, k.source(),
          fmt::format("unknown key '{}' in [{}] (allowed: {})", k.str(), section, allowed));
}

// Reads a Hyper key into h; false when `k` is not a Hyper key.
bool hyper_key(const Ctx& c, const std::string& k, const toml::node& n, Hyper& h) {
  auto d = [&](std::optional<double>& f) { f = get_double(c, k, n); };
  auto i = [&](std::optional<int64_t>& f) { f = get_int(c, k, n); };
  auto s = [&](std::optional<std::string>& f) { f = get_string(c, k, n); };
  if (k == "lr")
    d(h.lr);
  else if (k == "warmup_ratio")
    d(h.warmup_ratio);
  else if (k == "weight_decay")
    d(h.weight_decay);
  else if (k == "grad_clip")
    d(h.grad_clip);
  else if (k == "adam_beta1")
    d(h.adam_beta1);
  else if (k == "adam_beta2")
    d(h.adam_beta2);
  else if (k == "adam_eps")
    d(h.adam_eps);
  else if (k == "lora_alpha")
    d(h.lora_alpha);
  else if (k == "dropout")
    d(h.dropout);
  else if (k == "epochs")
    i(h.epochs);
  else if (k == "batch_size")
    i(h.batch_size);
  else if (k == "max_length")
    i(h.max_length);
  else if (k == "lora_r")
    i(h.lora_r);
  else if (k == "max_train_examples")
    i(h.max_train_examples);
  else if (k == "max_eval_examples")
    i(h.max_eval_examples);
  else if (k == "eval_every")
    i(h.eval_every);
  else if (k == "max_steps")
    i(h.max_steps);
  else if (k == "schedule")
    s(h.schedule);
  else if (k == "optimizer")
    s(h.optimizer);
  else if (k == "init_from")
    s(h.init_from);
  else if (k == "label_smoothing")
    d(h.label_smoothing);
  else if (k == "length_penalty")
    d(h.length_penalty);
  else if (k == "pretrain_lr")
    d(h.pretrain_lr);
  else if (k == "warmup_steps")
    i(h.warmup_steps);
  else if (k == "num_beams")
    i(h.num_beams);
  else if (k == "no_repeat_ngram_size")
    i(h.no_repeat_ngram_size);
  else if (k == "max_new_tokens")
    i(h.max_new_tokens);
  else if (k == "pretrain_steps")
    i(h.pretrain_steps);
  else
    return false;
  return true;
}

const char* const kHyperKeys =
    "lr, warmup_ratio, weight_decay, grad_clip, adam_beta1, adam_beta2, adam_eps, lora_alpha, "
    "dropout, epochs, batch_size, max_length, lora_r, max_train_examples, max_eval_examples, "
    "eval_every, max_steps, schedule, optimizer, init_from, label_smoothing, length_penalty, "
    "pretrain_lr, warmup_steps, num_beams, no_repeat_ngram_size, max_new_tokens, pretrain_steps";

nlohmann::json hyper_json(const Hyper& h) {
  nlohmann::json j = nlohmann::json::object();
  auto put = [&](const char* k, const auto& opt) {
    if (opt) j[k] = *opt;
  };
  put("lr", h.lr), put("warmup_ratio", h.warmup_ratio), put("weight_decay", h.weight_decay);
  put("grad_clip", h.grad_clip), put("adam_beta1", h.adam_beta1), put("adam_beta2", h.adam_beta2);
  put("adam_eps", h.adam_eps), put("lora_alpha", h.lora_alpha), put("dropout", h.dropout);
  put("epochs", h.epochs), put("batch_size", h.batch_size), put("max_length", h.max_length);
  put("lora_r", h.lora_r), put("max_train_examples", h.max_train_examples);
  put("max_eval_examples", h.max_eval_examples), put("eval_every", h.eval_every);
  put("max_steps", h.max_steps), put("schedule", h.schedule), put("optimizer", h.optimizer);
  put("init_from", h.init_from), put("label_smoothing", h.label_smoothing);
  put("length_penalty", h.length_penalty), put("pretrain_lr", h.pretrain_lr);
  put("warmup_steps", h.warmup_steps), put("num_beams", h.num_beams);
  put("no_repeat_ngram_size", h.no_repeat_ngram_size), put("max_new_tokens", h.max_new_tokens);
  put("pretrain_steps", h.pretrain_steps);
  return j;
}

void check_positive(const Ctx& c, const toml::node& n, const std::string& k, double v) {
  if (!(v > 0)) fail_at(c, n.source(), fmt::format("key '{}' must be > 0, got {}", k, v));
}

}  // namespace

void Hyper::merge(const Hyper& o) {
  auto m = [](auto& a, const auto& b) {
    if (b) a = b;
  };
  m(lr, o.lr), m(warmup_ratio, o.warmup_ratio), m(weight_decay, o.weight_decay);
  m(grad_clip, o.grad_clip), m(adam_beta1, o.adam_beta1), m(adam_beta2, o.adam_beta2);
  m(adam_eps, o.adam_eps), m(lora_alpha, o.lora_alpha), m(dropout, o.dropout);
  m(epochs, o.epochs), m(batch_size, o.batch_size), m(max_length, o.max_length);
  m(lora_r, o.lora_r), m(max_train_examples, o.max_train_examples);
  m(max_eval_examples, o.max_eval_examples), m(eval_every, o.eval_every);
  m(max_steps, o.max_steps), m(schedule, o.schedule), m(optimizer, o.optimizer);
  m(init_from, o.init_from), m(label_smoothing, o.label_smoothing);
  m(length_penalty, o.length_penalty), m(pretrain_lr, o.pretrain_lr);
  m(warmup_steps, o.warmup_steps), m(num_beams, o.num_beams);
  m(no_repeat_ngram_size, o.no_repeat_ngram_size), m(max_new_tokens, o.max_new_tokens);
  m(pretrain_steps, o.pretrain_steps);
}

const std::vector<std::string>& known_methods() {
  static const std::vector<std::string> m = {"full",
                                             "frozen",
                                             "lora",
                                             "loradrop",
                                             "sparse",
                                             "vera",
                                             "tied",
                                             "loradrop_noshare",
                                             "loradrop_inverted",
                                             "loradrop_random",
                                             "loradrop_lastk"};
  return m;
}

const ExperimentPreset& Preset::experiment(const std::string& n) const {
  for (const auto& e : experiments)
    if (e.name == n) return e;
  LD_FAIL("{}: preset '{}' has no experiment '{}'", source_file, name, n);
}

std::string Preset::source_of(const std::string& section, const std::string& key) const {
  if (auto it = sources.find(section + "." + key); it != sources.end()) return it->second;
  if (auto it = sources.find(section); it != sources.end()) return it->second;
  // A task section without its own entry inherits its model's.
  if (const auto p = section.find(".task."); p != std::string::npos)
    return source_of(section.substr(0, p), key);
  return "";
}

Hyper Preset::resolve(const std::string& model, const std::string& task) const {
  auto it = models.find(model);
  LD_CHECK(it != models.end(), "{}: preset '{}' has no model '{}'", source_file, name, model);
  Hyper h = defaults;
  h.merge(it->second.hyper);
  if (auto t = it->second.tasks.find(task); t != it->second.tasks.end()) h.merge(t->second);
  return h;
}

Hyper Preset::resolve(const ExperimentPreset& e, const std::string& model,
                      const std::string& task) const {
  Hyper h = resolve(model, task);
  h.merge(e.override_);
  return h;
}

std::string Preset::expand(const std::string& s) const {
  std::string out = s;
  for (auto [k, v] : {std::pair<std::string, std::string>{"${assets}", assets_dir},
                      std::pair<std::string, std::string>{"${data}", data_dir}})
    for (size_t p; (p = out.find(k)) != std::string::npos;) out.replace(p, k.size(), v);
  return out;
}

std::string Preset::to_json() const {
  nlohmann::json j;
  j["preset"] = {{"name", name},
                 {"description", description},
                 {"source_file", source_file},
                 {"device", device},
                 {"threads", threads},
                 {"seeds", seeds},
                 {"assets_dir", assets_dir},
                 {"data_dir", data_dir},
                 {"expected_time", expected_time}};
  j["loradrop"] = {{"sample_proportion", loradrop.sample_proportion},
                   {"sample_epochs", loradrop.sample_epochs},
                   {"threshold", loradrop.threshold}};
  j["baselines"] = {{"sparse_adapter_sparsity", baselines.sparse_adapter_sparsity},
                    {"vera_r", baselines.vera_r},
                    {"tied_lora_r", baselines.tied_lora_r}};
  for (const auto& [n, m] : models)
    j["models"][n] = {{"source", expand(m.source)}, {"family", m.family}, {"targets", m.targets}};
  for (const auto& e : experiments) {
    nlohmann::json je = {{"description", e.description},
                         {"kind", e.kind},
                         {"thresholds", e.thresholds},
                         {"importance_sources", e.importance_sources},
                         {"importance_only", e.importance_only},
                         {"hist_range", e.hist_range ? nlohmann::json::array({e.hist_range->first,
                                                                              e.hist_range->second})
                                                     : nlohmann::json("auto")},
                         {"produces", e.produces},
                         {"models", e.models},
                         {"methods", e.methods},
                         {"tasks", e.tasks},
                         {"seeds", e.seeds.empty() ? seeds : e.seeds},
                         {"sample_proportions", e.sample_proportions},
                         {"histograms", e.histograms},
                         {"hist_bins", e.hist_bins},
                         {"enabled", e.enabled},
                         {"disabled_reason", e.disabled_reason}};
    for (const auto& m : e.models)
      for (const auto& t : e.tasks) je["resolved"][m][t] = hyper_json(resolve(e, m, t));
    j["experiments"][e.name] = je;
  }
  if (!sources.empty()) j["sources"] = sources;
  return j.dump();
}

std::vector<SettingRow> describe_settings(const Preset& p, const ExperimentPreset& e,
                                          const std::string& model, const std::string& task) {
  const ModelPreset& mp = p.models.at(model);
  const Hyper* task_h = nullptr;
  if (auto it = mp.tasks.find(task); it != mp.tasks.end()) task_h = &it->second;
  // Most specific first: where a run's value comes from (Preset::resolve's order, reversed).
  std::vector<std::pair<std::string, const Hyper*>> layers = {
      {"experiment." + e.name + ".override", &e.override_},
      {"model." + model + ".task." + task, task_h},
      {"model." + model, &mp.hyper},
      {"defaults", &p.defaults}};
  auto num = [](double v) { return fmt::format("{:g}", v); };
  std::vector<SettingRow> rows;
  auto add = [&](const char* key, bool required, auto field) {
    for (const auto& [sec, h] : layers) {
      if (!h) continue;
      const auto& f = field(*h);
      if (!f) continue;
      std::string v;
      if constexpr (std::is_same_v<std::decay_t<decltype(*f)>, std::string>)
        v = *f;
      else if constexpr (std::is_same_v<std::decay_t<decltype(*f)>, double>)
        v = num(*f);
      else
        v = std::to_string(*f);
      rows.push_back({key, v, "[" + sec + "]", p.source_of(sec, key)});
      return;
    }
    if (required) rows.push_back({key, "not recorded", "-", ""});
  };
  add(
      "lr", true, [](const Hyper& h) -> const auto& { return h.lr; });
  add(
      "epochs", true, [](const Hyper& h) -> const auto& { return h.epochs; });
  add(
      "batch_size", true, [](const Hyper& h) -> const auto& { return h.batch_size; });
  add(
      "max_length", true, [](const Hyper& h) -> const auto& { return h.max_length; });
  add(
      "lora_r", false, [](const Hyper& h) -> const auto& { return h.lora_r; });
  add(
      "lora_alpha", false, [](const Hyper& h) -> const auto& { return h.lora_alpha; });
  add(
      "dropout", false, [](const Hyper& h) -> const auto& { return h.dropout; });
  add(
      "optimizer", false, [](const Hyper& h) -> const auto& { return h.optimizer; });
  add(
      "adam_beta1", false, [](const Hyper& h) -> const auto& { return h.adam_beta1; });
  add(
      "adam_beta2", false, [](const Hyper& h) -> const auto& { return h.adam_beta2; });
  add(
      "adam_eps", false, [](const Hyper& h) -> const auto& { return h.adam_eps; });
  add(
      "weight_decay", false, [](const Hyper& h) -> const auto& { return h.weight_decay; });
  add(
      "warmup_ratio", false, [](const Hyper& h) -> const auto& { return h.warmup_ratio; });
  add(
      "schedule", false, [](const Hyper& h) -> const auto& { return h.schedule; });
  add(
      "grad_clip", false, [](const Hyper& h) -> const auto& { return h.grad_clip; });
  add(
      "max_train_examples", false,
      [](const Hyper& h) -> const auto& { return h.max_train_examples; });
  add(
      "max_eval_examples", false,
      [](const Hyper& h) -> const auto& { return h.max_eval_examples; });
  add(
      "eval_every", false, [](const Hyper& h) -> const auto& { return h.eval_every; });
  add(
      "max_steps", false, [](const Hyper& h) -> const auto& { return h.max_steps; });
  add(
      "init_from", false, [](const Hyper& h) -> const auto& { return h.init_from; });
  const std::string msec = "model." + model;
  rows.push_back({"targets", fmt::format("{}", fmt::join(mp.targets, ", ")), "[" + msec + "]",
                  p.source_of(msec, "targets")});
  auto fixed = [&](const char* sec, const char* key, const std::string& v) {
    rows.push_back({key, v, fmt::format("[{}]", sec), p.source_of(sec, key)});
  };
  fixed("loradrop", "sample_proportion", num(p.loradrop.sample_proportion));
  fixed("loradrop", "sample_epochs", std::to_string(p.loradrop.sample_epochs));
  fixed("loradrop", "threshold", num(p.loradrop.threshold));
  fixed("baselines", "sparse_adapter_sparsity", num(p.baselines.sparse_adapter_sparsity));
  fixed("baselines", "vera_r", std::to_string(p.baselines.vera_r));
  fixed("baselines", "tied_lora_r", std::to_string(p.baselines.tied_lora_r));
  fixed("preset", "seeds", fmt::format("{}", fmt::join(p.seeds, ", ")));
  return rows;
}

Preset parse_preset(const std::string& text, const std::string& source_name) {
  Ctx c{source_name};
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    LD_FAIL("{}: TOML syntax error: {}", c.at(e.source()), std::string(e.description()));
  }
  Preset p;
  p.source_file = source_name;
  bool have_preset = false;
  // Experiments come after models in meaning, not necessarily in the file: collect first, check
  // references at the end with their source positions.
  std::vector<std::pair<ExperimentPreset, toml::source_region>> exps;
  std::map<std::string, toml::source_region> ref_pos;  // "exp/field/i" -> position

  for (auto&& [key, node] : root) {
    const std::string k(key.str());
    if (k == "preset") {
      have_preset = true;
      for (auto&& [pk, pn] : get_table(c, k, node)) {
        const std::string s(pk.str());
        if (s == "name")
          p.name = get_string(c, s, pn);
        else if (s == "description")
          p.description = get_string(c, s, pn);
        else if (s == "device") {
          p.device = get_string(c, s, pn);
          if (p.device != "cpu" && p.device != "cuda")
            fail_at(c, pn.source(), fmt::format("device must be cpu or cuda, got '{}'", p.device));
        } else if (s == "threads") {
          p.threads = get_int(c, s, pn);
          check_positive(c, pn, s, static_cast<double>(p.threads));
        } else if (s == "seeds")
          p.seeds = get_ints(c, s, pn);
        else if (s == "assets_dir")
          p.assets_dir = get_string(c, s, pn);
        else if (s == "data_dir")
          p.data_dir = get_string(c, s, pn);
        else if (s == "expected_time")
          p.expected_time = get_string(c, s, pn);
        else
          unknown_key(c, pk, "preset",
                      "name, description, device, threads, seeds, assets_dir, data_dir, "
                      "expected_time");
      }
    } else if (k == "defaults") {
      for (auto&& [hk, hn] : get_table(c, k, node))
        if (!hyper_key(c, std::string(hk.str()), hn, p.defaults))
          unknown_key(c, hk, "defaults", kHyperKeys);
    } else if (k == "loradrop") {
      for (auto&& [lk, ln] : get_table(c, k, node)) {
        const std::string s(lk.str());
        if (s == "sample_proportion") {
          p.loradrop.sample_proportion = get_double(c, s, ln);
          if (!(p.loradrop.sample_proportion > 0 && p.loradrop.sample_proportion <= 1))
            fail_at(c, ln.source(), "sample_proportion must be in (0, 1]");
        } else if (s == "sample_epochs") {
          p.loradrop.sample_epochs = get_int(c, s, ln);
          check_positive(c, ln, s, static_cast<double>(p.loradrop.sample_epochs));
        } else if (s == "threshold") {
          p.loradrop.threshold = get_double(c, s, ln);
          if (!(p.loradrop.threshold > 0 && p.loradrop.threshold <= 1))
            fail_at(c, ln.source(), "threshold must be in (0, 1]");
        } else
          unknown_key(c, lk, "loradrop", "sample_proportion, sample_epochs, threshold");
      }
    } else if (k == "baselines") {
      for (auto&& [bk, bn] : get_table(c, k, node)) {
        const std::string s(bk.str());
        if (s == "sparse_adapter_sparsity") {
          p.baselines.sparse_adapter_sparsity = get_double(c, s, bn);
          if (!(p.baselines.sparse_adapter_sparsity >= 0 &&
                p.baselines.sparse_adapter_sparsity < 1))
            fail_at(c, bn.source(), "sparse_adapter_sparsity must be in [0, 1)");
        } else if (s == "vera_r") {
          p.baselines.vera_r = get_int(c, s, bn);
          check_positive(c, bn, s, static_cast<double>(p.baselines.vera_r));
        } else if (s == "tied_lora_r") {
          p.baselines.tied_lora_r = get_int(c, s, bn);
          check_positive(c, bn, s, static_cast<double>(p.baselines.tied_lora_r));
        } else
          unknown_key(c, bk, "baselines", "sparse_adapter_sparsity, vera_r, tied_lora_r");
      }
    } else if (k == "model") {
      for (auto&& [mk, mn] : get_table(c, k, node)) {
        ModelPreset m;
        m.name = std::string(mk.str());
        const std::string sec = "model." + m.name;
        for (auto&& [fk, fn] : get_table(c, sec, mn)) {
          const std::string s(fk.str());
          if (s == "source")
            m.source = get_string(c, s, fn);
          else if (s == "family")
            m.family = get_string(c, s, fn);
          else if (s == "targets")
            m.targets = get_strings(c, s, fn);
          else if (s == "task") {
            for (auto&& [tk, tn] : get_table(c, sec + ".task", fn)) {
              Hyper h;
              const std::string tsec = sec + ".task." + std::string(tk.str());
              for (auto&& [hk, hn] : get_table(c, tsec, tn))
                if (!hyper_key(c, std::string(hk.str()), hn, h))
                  unknown_key(c, hk, tsec, kHyperKeys);
              m.tasks[std::string(tk.str())] = h;
            }
          } else if (!hyper_key(c, s, fn, m.hyper))
            unknown_key(c, fk, sec, std::string("source, family, targets, task, ") + kHyperKeys);
        }
        if (m.source.empty()) fail_at(c, mn.source(), fmt::format("[{}] needs 'source'", sec));
        if (m.family.empty()) fail_at(c, mn.source(), fmt::format("[{}] needs 'family'", sec));
        if (m.targets.empty()) m.targets = {"query", "value"};
        p.models[m.name] = m;
      }
    } else if (k == "experiment") {
      for (auto&& [ek, en] : get_table(c, k, node)) {
        ExperimentPreset e;
        e.name = std::string(ek.str());
        const std::string sec = "experiment." + e.name;
        for (auto&& [fk, fn] : get_table(c, sec, en)) {
          const std::string s(fk.str());
          auto pos = [&](const std::string& field, size_t i, const toml::node& n) {
            if (auto a = n.as_array(); a && i < a->size())
              ref_pos[e.name + "/" + field + "/" + std::to_string(i)] = (*a)[i].source();
          };
          if (s == "description")
            e.description = get_string(c, s, fn);
          else if (s == "kind") {
            e.kind = get_string(c, s, fn);
            if (e.kind != "train" && e.kind != "hyperparameters")
              fail_at(
                  c, fn.source(),
                  fmt::format("kind must be \"train\" or \"hyperparameters\", got '{}'", e.kind));
          } else if (s == "thresholds") {
            e.thresholds = get_doubles(c, s, fn);
            for (double x : e.thresholds)
              if (!(x > 0 && x <= 1)) fail_at(c, fn.source(), "thresholds must be in (0, 1]");
          } else if (s == "importance_sources") {
            e.importance_sources = get_strings(c, s, fn);
            for (const auto& x : e.importance_sources)
              if (x != "pass" && x != "during")
                fail_at(c, fn.source(),
                        fmt::format("importance_sources: '{}' is not \"pass\" or \"during\"", x));
          } else if (s == "importance_only")
            e.importance_only = get_bool(c, s, fn);
          else if (s == "hist_range") {
            if (fn.is_string()) {
              if (get_string(c, s, fn) != "auto")
                fail_at(c, fn.source(), "hist_range must be \"auto\" or [lo, hi]");
            } else {
              auto v = get_doubles(c, s, fn);
              if (v.size() != 2 || !(v[0] > 0 && v[1] > v[0]))
                fail_at(c, fn.source(), "hist_range must be \"auto\" or [lo, hi] with 0 < lo < hi");
              e.hist_range = std::make_pair(v[0], v[1]);
            }
          } else if (s == "produces")
            e.produces = get_strings(c, s, fn);
          else if (s == "models" || s == "methods" || s == "tasks") {
            auto v = get_strings(c, s, fn);
            for (size_t i = 0; i < v.size(); ++i) pos(s, i, fn);
            (s == "models" ? e.models : s == "methods" ? e.methods : e.tasks) = v;
          } else if (s == "seeds")
            e.seeds = get_ints(c, s, fn);
          else if (s == "sample_proportions") {
            e.sample_proportions = get_doubles(c, s, fn);
            for (double x : e.sample_proportions)
              if (!(x > 0 && x <= 1))
                fail_at(c, fn.source(), "sample_proportions must be in (0, 1]");
          } else if (s == "histograms")
            e.histograms = get_bool(c, s, fn);
          else if (s == "hist_bins") {
            e.hist_bins = get_int(c, s, fn);
            check_positive(c, fn, s, static_cast<double>(e.hist_bins));
          } else if (s == "override") {
            for (auto&& [hk, hn] : get_table(c, sec + ".override", fn))
              if (!hyper_key(c, std::string(hk.str()), hn, e.override_))
                unknown_key(c, hk, sec + ".override", kHyperKeys);
          } else if (s == "enabled")
            e.enabled = get_bool(c, s, fn);
          else if (s == "disabled_reason")
            e.disabled_reason = get_string(c, s, fn);
          else
            unknown_key(c, fk, sec,
                        "description, kind, produces, models, methods, tasks, seeds, "
                        "sample_proportions, thresholds, importance_sources, importance_only, "
                        "histograms, hist_bins, hist_range, override, enabled, disabled_reason");
        }
        if (e.kind == "hyperparameters" && e.methods.empty()) e.methods = {"lora", "loradrop"};
        if (e.methods.empty() && (!e.importance_sources.empty() || !e.sample_proportions.empty()))
          e.methods = {"loradrop"};
        for (const char* req : {"models", "methods", "tasks"})
          if ((std::string(req) == "models"    ? e.models
               : std::string(req) == "methods" ? e.methods
                                               : e.tasks)
                  .empty())
            fail_at(c, en.source(), fmt::format("[{}] needs a non-empty '{}'", sec, req));
        if (!e.enabled && e.disabled_reason.empty())
          fail_at(c, en.source(),
                  fmt::format("[{}] is disabled: say why in 'disabled_reason'", sec));
        exps.emplace_back(e, en.source());
      }
    } else if (k == "sources") {
      for (auto&& [sk, sn] : get_table(c, k, node))
        p.sources[std::string(sk.str())] = get_string(c, std::string(sk.str()), sn);
    } else {
      unknown_key(c, key, "top level",
                  "preset, defaults, loradrop, baselines, model, experiment, sources");
    }
  }
  LD_CHECK(have_preset, "{}: missing [preset] table", source_name);
  LD_CHECK(!p.name.empty(), "{}: [preset] needs 'name'", source_name);
  LD_CHECK(!p.seeds.empty(), "{}: [preset] seeds must not be empty", source_name);
  LD_CHECK(!exps.empty(), "{}: no [experiment.*] tables", source_name);

  // toml++ tables iterate in key order; keep the experiments in file order.
  std::stable_sort(exps.begin(), exps.end(), [](const auto& a, const auto& b) {
    return a.second.begin.line < b.second.begin.line;
  });
  // References and completeness: every (model, task) of an experiment must resolve the settings
  // a run needs.
  for (auto& [e, region] : exps) {
    auto at = [&](const std::string& field, size_t i) {
      auto it = ref_pos.find(e.name + "/" + field + "/" + std::to_string(i));
      return it != ref_pos.end() ? it->second : region;
    };
    for (size_t i = 0; i < e.models.size(); ++i)
      if (!p.models.count(e.models[i]))
        fail_at(c, at("models", i),
                fmt::format("[experiment.{}] names model '{}', which has no [model.{}]", e.name,
                            e.models[i], e.models[i]));
    const auto& km = known_methods();
    for (size_t i = 0; i < e.methods.size(); ++i)
      if (std::find(km.begin(), km.end(), e.methods[i]) == km.end())
        fail_at(c, at("methods", i),
                fmt::format("[experiment.{}]: unknown method '{}' (known: {})", e.name,
                            e.methods[i], fmt::join(km, ", ")));
    for (const auto& m : e.models)
      for (size_t i = 0; i < e.tasks.size() && e.enabled && e.kind == "train"; ++i) {
        Hyper h = p.resolve(e, m, e.tasks[i]);
        std::vector<std::string> missing;
        if (!h.lr) missing.push_back("lr");
        if (!h.epochs && !h.max_steps) missing.push_back("epochs (or max_steps)");
        if (!h.batch_size) missing.push_back("batch_size");
        if (!h.max_length) missing.push_back("max_length");
        if (!missing.empty())
          fail_at(c, at("tasks", i),
                  fmt::format("[experiment.{}]: model '{}' task '{}' has no {} (set it in "
                              "[defaults], [model.{}] or [model.{}.task.{}])",
                              e.name, m, e.tasks[i], fmt::join(missing, ", "), m, m, e.tasks[i]));
        if (h.init_from) {
          const auto& mt = p.models.at(m).tasks;
          if (!mt.count(*h.init_from))
            fail_at(c, at("tasks", i),
                    fmt::format("model '{}' task '{}': init_from '{}' is not a task of that model",
                                m, e.tasks[i], *h.init_from));
        }
      }
    p.experiments.push_back(e);
  }
  return p;
}

Preset load_preset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LD_CHECK(in.good(), "cannot open preset file {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_preset(ss.str(), path);
}

}  // namespace ld::repro
