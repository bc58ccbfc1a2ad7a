// GLUE readers for the official TSV layouts of all eight tasks (CoLA, SST-2, MRPC, QQP, STS-B,
// MNLI, QNLI, RTE), labelled train/dev files and unlabelled test files.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "data/tasks.h"

namespace ld::data {

// Column layouts (tab-separated, read with NO quote processing: GLUE text holds unbalanced '"'):
//   CoLA  train/dev: no header; source, label, original-annotation, sentence.   test: index,
//   sentence SST-2 train/dev: sentence, label.                                            test:
//   index, sentence MRPC  train/dev: Quality, #1 ID, #2 ID, #1 String, #2 String (UTF-8 BOM). test:
//   index, #1 ID, ... QQP   train/dev: id, qid1, qid2, question1, question2, is_duplicate. test:
//   id, question1, question2 STS-B train/dev: index, genre, filename, year, old_index, source1,
//   source2, sentence1, sentence2,
//                    score (float 0..5).                                         test: without
//                    score
//   MNLI  train: index .. sentence1, sentence2, label1, gold_label (12 columns); dev_matched /
//                dev_mismatched: ... label1..label5, gold_label (16);            test_*: 10 columns
//   QNLI  index, question, sentence, label.                                      test: without
//   label RTE   index, sentence1, sentence2, label.                                    test:
//   without label
// Columns are found by header name, so the extra MNLI/QQP columns need no special code. Every row
// must have exactly as many fields as the header (CoLA: 4). Blank lines are skipped.
enum class GlueSplit { kTrain, kDev, kTest, kDevMismatched, kTestMismatched };

struct GlueExample {
  std::string guid;  // the file's index/id column, or the line number where there is none
  std::string text_a;
  std::string text_b;  // empty for single-sentence tasks
  int64_t label = -1;  // class id (TaskInfo::label_tokens order); -1 when unlabelled or regression
  double score = std::numeric_limits<double>::quiet_NaN();  // STS-B similarity
  int64_t line = 0;                                         // 1-based line in the file
};

struct GlueDataset {
  std::string task;  // registry name, e.g. "mnli"
  std::string path;
  bool labelled = false;
  std::vector<GlueExample> examples;
  std::vector<int64_t> labels() const;  // class ids, in file order
  std::vector<double> scores() const;   // regression targets, in file order
};

// File name of a split in the GLUE layout: "train.tsv", "dev.tsv", "test.tsv"; MNLI:
// "dev_matched.tsv", "dev_mismatched.tsv", "test_matched.tsv", "test_mismatched.tsv".
std::string glue_file_name(const std::string& task, GlueSplit split);

// Reads <glue_root>/<CoLA|SST-2|...>/<glue_file_name>; test splits are read without labels.
GlueDataset read_glue_split(const std::string& task, const std::string& glue_root, GlueSplit split);

// Reads one GLUE TSV file. `labelled` = the file has a label column that must be read (train/dev).
// Throws ld::Error "<path>:<line>: ..." on a missing file, empty file, bad UTF-8, missing header
// column, wrong column count, unknown label or unparsable score; nothing is returned then.
GlueDataset read_glue(const std::string& task, const std::string& path, bool labelled);

// The same on text already in memory; `name` stands for the file in messages.
GlueDataset parse_glue(const std::string& task, std::string_view text, const std::string& name,
                       bool labelled);

}  // namespace ld::data
