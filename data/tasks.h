// Task registry: for every GLUE task and NLG dataset the paper uses, its text fields, label set,
// metrics and the metric the LoRA-drop paper reports.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ld::data {

enum class TaskKind { kClassification, kRegression, kGeneration };

enum class Metric {
  kAccuracy,
  kF1,        // binary, positive class 1
  kMatthews,  // Matthews correlation coefficient
  kPearson,
  kSpearman,
  kBleu,    // corpus BLEU, sacrebleu defaults
  kRougeL,  // ROUGE-L F, rouge-score defaults, mean over examples
};
const char* metric_name(Metric m);  // "accuracy", "f1", "matthews", ...

struct TaskInfo {
  std::string name;     // registry key, lower case: "cola", "sts-b", "e2e", ...
  std::string display;  // "CoLA", "STS-B", "E2E", ...
  TaskKind kind = TaskKind::kClassification;
  std::vector<std::string> text_fields;  // GLUE: one or two sentence columns (header names)
  // Classification: label_tokens[i] is how label id i is written in the file ("0", "entailment");
  // label_names[i] is its human name (Hugging Face's `datasets` glue names). Empty otherwise.
  std::vector<std::string> label_tokens;
  std::vector<std::string> label_names;
  std::vector<Metric> metrics;              // every metric computed on dev
  Metric paper_metric = Metric::kAccuracy;  // the single number in the paper's tables
  bool is_regression() const { return kind == TaskKind::kRegression; }
  int64_t num_labels() const;  // classes; 1 for regression; 0 for generation
  // Label id for a file token, or -1 when the token is not in the label set.
  int64_t label_id(const std::string& token) const;
};

// Paper convention (LoRA-drop follows LoRA, Hu et al. 2021, Table 2): Matthews correlation for
// CoLA, Pearson correlation for STS-B, accuracy for every other GLUE task (MRPC and QQP included:
// accuracy, not F1; MNLI: matched accuracy, mismatched reported separately). E2E/DART: BLEU;
// DialogSum: ROUGE-L. F1 (MRPC, QQP) and Spearman (STS-B) are still computed, as GLUE does.
const TaskInfo& task_info(const std::string& name);  // case-insensitive; "sst2" == "sst-2"
const std::vector<TaskInfo>& all_tasks();

}  // namespace ld::data
