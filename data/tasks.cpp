// Task registry contents (see tasks.h for the paper's metric convention).
#include "data/tasks.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace ld::data {

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kAccuracy:
      return "accuracy";
    case Metric::kF1:
      return "f1";
    case Metric::kMatthews:
      return "matthews";
    case Metric::kPearson:
      return "pearson";
    case Metric::kSpearman:
      return "spearman";
    case Metric::kBleu:
      return "bleu";
    case Metric::kRougeL:
      return "rougeL";
  }
  return "?";
}

int64_t TaskInfo::num_labels() const {
  switch (kind) {
    case TaskKind::kClassification:
      return static_cast<int64_t>(label_tokens.size());
    case TaskKind::kRegression:
      return 1;
    case TaskKind::kGeneration:
      return 0;
  }
  return 0;
}

int64_t TaskInfo::label_id(const std::string& token) const {
  for (size_t i = 0; i < label_tokens.size(); ++i)
    if (label_tokens[i] == token) return static_cast<int64_t>(i);
  return -1;
}

namespace {

TaskInfo cls(std::string name, std::string display, std::vector<std::string> fields,
             std::vector<std::string> tokens, std::vector<std::string> names,
             std::vector<Metric> metrics, Metric paper) {
  TaskInfo t;
  t.name = std::move(name);
  t.display = std::move(display);
  t.kind = TaskKind::kClassification;
  t.text_fields = std::move(fields);
  t.label_tokens = std::move(tokens);
  t.label_names = std::move(names);
  t.metrics = std::move(metrics);
  t.paper_metric = paper;
  return t;
}

std::vector<TaskInfo> make_tasks() {
  using M = Metric;
  std::vector<TaskInfo> v;
  v.push_back(cls("cola", "CoLA", {"sentence"}, {"0", "1"}, {"unacceptable", "acceptable"},
                  {M::kMatthews, M::kAccuracy}, M::kMatthews));
  v.push_back(cls("sst-2", "SST-2", {"sentence"}, {"0", "1"}, {"negative", "positive"},
                  {M::kAccuracy}, M::kAccuracy));
  v.push_back(cls("mrpc", "MRPC", {"#1 String", "#2 String"}, {"0", "1"},
                  {"not_equivalent", "equivalent"}, {M::kAccuracy, M::kF1}, M::kAccuracy));
  v.push_back(cls("qqp", "QQP", {"question1", "question2"}, {"0", "1"},
                  {"not_duplicate", "duplicate"}, {M::kAccuracy, M::kF1}, M::kAccuracy));
  TaskInfo stsb;
  stsb.name = "sts-b";
  stsb.display = "STS-B";
  stsb.kind = TaskKind::kRegression;
  stsb.text_fields = {"sentence1", "sentence2"};
  stsb.metrics = {M::kPearson, M::kSpearman};
  stsb.paper_metric = M::kPearson;
  v.push_back(stsb);
  v.push_back(cls("mnli", "MNLI", {"sentence1", "sentence2"},
                  {"entailment", "neutral", "contradiction"},
                  {"entailment", "neutral", "contradiction"}, {M::kAccuracy}, M::kAccuracy));
  v.push_back(cls("qnli", "QNLI", {"question", "sentence"}, {"entailment", "not_entailment"},
                  {"entailment", "not_entailment"}, {M::kAccuracy}, M::kAccuracy));
  v.push_back(cls("rte", "RTE", {"sentence1", "sentence2"}, {"entailment", "not_entailment"},
                  {"entailment", "not_entailment"}, {M::kAccuracy}, M::kAccuracy));
  for (auto [name, display, metric] :
       {std::tuple{"e2e", "E2E", M::kBleu}, std::tuple{"dart", "DART", M::kBleu},
        std::tuple{"dialogsum", "DialogSum", M::kRougeL}}) {
    TaskInfo t;
    t.name = name;
    t.display = display;
    t.kind = TaskKind::kGeneration;
    t.metrics = {metric};
    t.paper_metric = metric;
    v.push_back(t);
  }
  return v;
}

std::string canonical(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != '-' && c != '_') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const std::vector<TaskInfo>& all_tasks() {
  static const std::vector<TaskInfo> tasks = make_tasks();
  return tasks;
}

const TaskInfo& task_info(const std::string& name) {
  const std::string key = canonical(name);
  for (const auto& t : all_tasks())
    if (canonical(t.name) == key) return t;
  std::vector<std::string> names;
  for (const auto& t : all_tasks()) names.push_back(t.name);
  LD_FAIL("unknown task '{}' (known: {})", name, fmt::join(names, ", "));
}

}  // namespace ld::data
