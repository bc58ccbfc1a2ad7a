// GLUE TSV readers (layouts in glue.h).
#include "data/glue.h"

#include <charconv>
#include <cmath>

#include "core/error.h"
#include "data/text_io.h"

namespace ld::data {

std::vector<int64_t> GlueDataset::labels() const {
  std::vector<int64_t> v;
  v.reserve(examples.size());
  for (const auto& e : examples) v.push_back(e.label);
  return v;
}

std::vector<double> GlueDataset::scores() const {
  std::vector<double> v;
  v.reserve(examples.size());
  for (const auto& e : examples) v.push_back(e.score);
  return v;
}

namespace {

// Header name of the label column in train/dev files.
std::string label_column(const TaskInfo& t) {
  if (t.name == "mrpc") return "Quality";
  if (t.name == "qqp") return "is_duplicate";
  if (t.name == "sts-b") return "score";
  if (t.name == "mnli") return "gold_label";
  return "label";
}

int find_column(const std::vector<std::string>& header, const std::string& col) {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == col) return static_cast<int>(i);
  return -1;
}

double parse_score(const std::string& s, const std::string& name, int64_t line) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  LD_CHECK(ec == std::errc() && p == s.data() + s.size() && std::isfinite(v) && !s.empty(),
           "{}:{}: score '{}' is not a finite number", name, line, s);
  return v;
}

}  // namespace

std::string glue_file_name(const std::string& task, GlueSplit split) {
  const bool mnli = task_info(task).name == "mnli";
  switch (split) {
    case GlueSplit::kTrain:
      return "train.tsv";
    case GlueSplit::kDev:
      return mnli ? "dev_matched.tsv" : "dev.tsv";
    case GlueSplit::kTest:
      return mnli ? "test_matched.tsv" : "test.tsv";
    case GlueSplit::kDevMismatched:
      LD_CHECK(mnli, "split dev_mismatched exists only for MNLI, not {}", task);
      return "dev_mismatched.tsv";
    case GlueSplit::kTestMismatched:
      LD_CHECK(mnli, "split test_mismatched exists only for MNLI, not {}", task);
      return "test_mismatched.tsv";
  }
  LD_FAIL("bad GlueSplit");
}

GlueDataset read_glue_split(const std::string& task, const std::string& glue_root,
                            GlueSplit split) {
  const TaskInfo& t = task_info(task);
  const bool labelled =
      split == GlueSplit::kTrain || split == GlueSplit::kDev || split == GlueSplit::kDevMismatched;
  return read_glue(task, glue_root + "/" + t.display + "/" + glue_file_name(task, split), labelled);
}

GlueDataset read_glue(const std::string& task, const std::string& path, bool labelled) {
  const std::string text = read_file(path);
  return parse_glue(task, text, path, labelled);
}

GlueDataset parse_glue(const std::string& task, std::string_view text, const std::string& name,
                       bool labelled) {
  const TaskInfo& t = task_info(task);
  LD_CHECK(t.kind != TaskKind::kGeneration, "{}: {} is not a GLUE task", name, task);
  LD_CHECK(!text.empty(), "{}:1: empty file", name);
  check_utf8(text, name);
  const std::vector<TsvRow> rows = split_tsv(strip_bom(text));
  LD_CHECK(!rows.empty(), "{}:1: file holds only blank lines", name);

  GlueDataset ds;
  ds.task = t.name;
  ds.path = name;
  ds.labelled = labelled;

  // Column positions, and the row where the data starts.
  size_t ncols = 0, first = 0;
  int col_a = -1, col_b = -1, col_label = -1, col_guid = -1;
  if (t.name == "cola" && labelled) {
    ncols = 4;  // no header: source, label, original annotation, sentence
    col_label = 1;
    col_a = 3;
  } else {
    const std::vector<std::string>& header = rows[0].fields;
    const int64_t hl = rows[0].line;
    ncols = header.size();
    first = 1;
    auto need = [&](const std::string& col) {
      int c = find_column(header, col);
      LD_CHECK(c >= 0, "{}:{}: header has no column '{}' (header: {})", name, hl, col,
               fmt::join(header, " | "));
      return c;
    };
    col_a = need(t.text_fields.at(0));
    if (t.text_fields.size() > 1) col_b = need(t.text_fields[1]);
    if (labelled) col_label = need(label_column(t));
    col_guid = find_column(header, "index");
    if (col_guid < 0) col_guid = find_column(header, "id");
    LD_CHECK(rows.size() > 1, "{}:{}: header but no data rows", name, hl);
  }

  std::vector<GlueExample> examples;
  examples.reserve(rows.size());
  for (size_t r = first; r < rows.size(); ++r) {
    const TsvRow& row = rows[r];
    LD_CHECK(row.fields.size() == ncols, "{}:{}: expected {} tab-separated columns, found {}", name,
             row.line, ncols, row.fields.size());
    GlueExample e;
    e.line = row.line;
    e.guid = col_guid >= 0 ? row.fields[col_guid] : std::to_string(row.line);
    e.text_a = row.fields[col_a];
    if (col_b >= 0) e.text_b = row.fields[col_b];
    if (col_label >= 0) {
      const std::string& tok = row.fields[col_label];
      if (t.is_regression()) {
        e.score = parse_score(tok, name, row.line);
      } else {
        e.label = t.label_id(tok);
        LD_CHECK(e.label >= 0, "{}:{}: unknown {} label '{}' (expected one of: {})", name, row.line,
                 t.display, tok, fmt::join(t.label_tokens, ", "));
      }
    }
    examples.push_back(std::move(e));
  }
  ds.examples = std::move(examples);
  return ds;
}

}  // namespace ld::data
