// Readers for the NLG datasets: E2E (CSV: mr, ref), DART (JSON), DialogSum (JSON lines), with all
// references of one input grouped together for evaluation.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ld::data {

// One input with all its references.
//   E2E:       source = the meaning representation linearised as "name : Alimentum | area : city
//              centre" (as microsoft/LoRA's E2E data); raw = the MR exactly as in the CSV.
//   DART:      source = the tripleset linearised as "s : p : o | s : p : o" (microsoft/LoRA's
//              format); raw = the same; references = annotations[*].text in file order.
//   DialogSum: source = raw = the dialogue (speaker turns "#Person1#: ..." separated by '\n');
//              references = "summary" (dev/train), or "summary1", "summary2", ... (test).
struct NlgExample {
  std::string id;  // E2E/DART: position of the input (0-based); DialogSum: fname
  std::string source;
  std::string raw;
  std::vector<std::string> references;  // may be empty for unlabelled test inputs
  int64_t line = 0;                     // 1-based line where the input (first record) starts
};

struct NlgDataset {
  std::string task;  // "e2e", "dart", "dialogsum"
  std::string path;
  std::vector<NlgExample> examples;
  // (example index, reference index) for every reference: the training pairs.
  std::vector<std::pair<size_t, size_t>> pairs() const;
  // references()[i] = examples[i].references (the layout metrics.h's corpus functions take).
  std::vector<std::vector<std::string>> references() const;
  size_t num_references() const;
};

// E2E CSV: header "mr,ref" (dev/train; every record has both fields) or "MR" alone (test inputs).
// Records with the same MR are grouped, in order of first appearance.
NlgDataset read_e2e(const std::string& path);
NlgDataset parse_e2e(std::string_view text, const std::string& name);
// "name[The Vaults], eatType[pub]" -> "name : The Vaults | eatType : pub"; throws ld::Error on a
// malformed MR.
std::string linearize_e2e_mr(std::string_view mr);

// DART JSON: a list of {"tripleset": [[s, p, o], ...], "annotations": [{"source", "text"}, ...]}.
NlgDataset read_dart(const std::string& path);
NlgDataset parse_dart(std::string_view text, const std::string& name);

// DialogSum JSONL: one {"fname", "dialogue", "summary" | "summary1".."summaryN", ...} per line.
NlgDataset read_dialogsum(const std::string& path);
NlgDataset parse_dialogsum(std::string_view text, const std::string& name);

}  // namespace ld::data
