// HDF5 results of paper_repro runs (schema in DESIGN.md "Results file (HDF5)"): an atomic writer
// (temp file, fsync, rename on commit, resumable), a reader, table assembly and a schema check.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ld::repro {

// Schema (every name below is fixed; validate_schema() checks all of it):
//
// /                          attributes (strings): program_version, git_commit, config_json (the
//                            full resolved config as JSON text), device, start_time, end_time
//                            (ISO-8601 UTC, e.g. 2025-01-31T12:00:00Z), schema_version.
// /<experiment>/<model>/<method>/<task>/seed_<k>/   one finished run (k >= 0, decimal)
//     attributes             optional f64 scalars: run parameters such as sample_proportion;
//                            optional strings, only those of kRunTextAttrs (init_from, ...)
//     metric                 f64 scalar; attribute `name` (string), e.g. "accuracy", "mcc"
//     trainable_params       i64 scalar (adapter parameters; a classifier head is not counted)
//     train_loss             f64 [steps]
//     eval_history           f64 [evals, 2]: (step, metric)
//     importance/<target>    f64 [L]: g_i, the mean over examples of ||ΔW_i x_i||²   (optional)
//     selected/<target>      u8 [L]: 1 when layer i keeps its own adapter          (optional)
//     hist/<target>          i64 [L, bins]: per-layer histogram of per-example ||ΔW x||²
//                            (optional); attributes bin_edges f64 [bins+1] (increasing),
//                            underflow i64 [L], overflow i64 [L]
// /tables/<table>            compound dataset, one row per (method, task) cell, fields
//                            method, task, metric_name (strings), mean, std (f64), n (i64,
//                            seeds), trainable_params (f64, mean over seeds); attributes
//                            title, experiment, model (strings). Long ("tidy") rows rather than a
//                            wide matrix, so any column set fits one fixed type; tools/plot.py
//                            pivots them to the paper's layout (rows = methods, columns = tasks).
// /text_tables/<table>       compound dataset whose fields are all strings (the columns), one row
//                            per record; attributes title, experiment, model (strings). Tables
//                            of text rather than numbers, e.g. the hyperparameter tables
//                            (columns model, task, key, value, set_in, source).
//
// Run attributes written by `loradrop repro` (all optional f64): seconds (whole run),
// finetune_seconds, finetune_steps, seconds_per_step (fine-tune / main training phase),
// sample_seconds and importance_seconds (LoRA-drop's sample training and importance pass),
// peak_memory_bytes (peak tensor storage during the main training phase), lora_params,
// sample_size, sample_proportion, threshold, importance_during (1 = collected during training).
// A run started from another run's adapter (preset `init_from`) also has the strings init_from
// (that run's task), init_from_adapter (its saved adapter directory, relative to the output
// directory) and init_from_digest (lora::adapter_digest of the adapter tensors the run started
// from), and the f64 init_from_loaded / init_from_kept (adapter tensors loaded / left fresh) and
// init_from_shared (LoRA-drop: targets whose shared adapter started from that run's).
inline constexpr const char* kSchemaVersion = "1";
// The string attributes a run group may have (every other run attribute is an f64 scalar).
inline constexpr const char* kRunTextAttrs[] = {"init_from", "init_from_adapter",
                                                "init_from_digest"};
inline bool is_run_text_attr(std::string_view name) {
  for (const char* a : kRunTextAttrs)
    if (name == a) return true;
  return false;
}

// Identifies one run: /<experiment>/<model>/<method>/<task>/seed_<seed>.
struct RunKey {
  std::string experiment, model, method, task;
  int64_t seed = 0;
  std::string path() const;  // "/exp/model/method/task/seed_0"; throws on an invalid name
  bool operator==(const RunKey&) const = default;
  auto operator<=>(const RunKey&) const = default;
};

// Per-layer histograms of one target: counts is [layers x bins] row-major.
struct LayerHistograms {
  std::vector<double> bin_edges;  // bins + 1, increasing
  int64_t layers = 0;
  std::vector<int64_t> counts;               // layers * bins
  std::vector<int64_t> underflow, overflow;  // layers each (empty = zeros)
  int64_t bins() const {
    return bin_edges.empty() ? 0 : static_cast<int64_t>(bin_edges.size()) - 1;
  }
};

// Everything one finished run writes.
struct RunRecord {
  RunKey key;
  std::string metric_name;
  double metric = 0;
  int64_t trainable_params = 0;
  std::vector<double> train_loss;
  std::vector<std::array<double, 2>> eval_history;        // (step, metric)
  std::map<std::string, std::vector<double>> importance;  // target -> g [L]
  std::map<std::string, std::vector<bool>> selected;      // target -> keep [L]
  std::map<std::string, LayerHistograms> hist;            // target -> histograms
  std::map<std::string, double> params;                   // extra f64 attributes of the run
  std::map<std::string, std::string> text;  // string attributes (names from kRunTextAttrs)
};

// Root attributes. start_time/end_time are filled in by ResultsFile when left empty.
struct RunMeta {
  std::string program_version;
  std::string git_commit;
  std::string config_json = "{}";
  std::string device;
  std::string start_time, end_time;
};

// One assembled table cell (long form); see /tables above.
struct TableRow {
  std::string method, task, metric_name;
  double mean = 0, std = 0;
  int64_t n = 0;
  double trainable_params = 0;
};

struct Table {
  std::string name, title, experiment, model;
  std::vector<TableRow> rows;
};

// A table of strings (see /text_tables above); every row has columns.size() cells.
struct TextTable {
  std::string name, title, experiment, model;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// Which runs make a table: rows in `methods` order, columns in `tasks` order (cells without runs
// are left out). std is the sample standard deviation over seeds (n-1 denominator; 0 for n=1).
struct TableSpec {
  std::string name, title, experiment, model;
  std::vector<std::string> methods, tasks;
};

// Program version (CMake project version) and the git commit of the source tree at build time
// ("<sha>" or "<sha>-dirty"; "unknown" outside a git checkout or without git).
std::string program_version();
std::string build_git_commit();

// Current UTC time as ISO-8601 ("2025-01-31T12:00:00Z").
std::string iso8601_now();

class ResultsReader;

// Removes <path>.tmp-<pid> files whose writing process no longer exists (an interrupted run's
// working copy; ResultsFile::create / open_or_create call it) and returns their paths.
std::vector<std::string> remove_stale_temporaries(const std::string& path);

// The provenance string of a resumed file (git commit, program version): `now` alone when every
// earlier run was written by it, else "now (resumed; earlier runs: a, b)" listing each earlier
// version once (`old` may itself be such a string; resuming again does not nest them).
std::string resumed_provenance(const std::string& now, const std::string& old);

// What a resumed results file must agree on (see ResultsFile::open_or_create): for a preset
// config (Preset::to_json(): has "experiments"), the sections that change what a run computes,
// restricted to `experiments` (all when empty) and the models they use; free text (descriptions,
// expected_time), the preset file's path, thread count and other experiments are left out, so
// adding an experiment to a preset or editing another one does not block resuming this one.
// Any other JSON is compared whole.
nlohmann::json resume_fingerprint(const std::string& config_json,
                                  const std::set<std::string>& experiments);

// Writer. All writes go to `<path>.tmp-<pid>`; commit() fsyncs it and renames it over `path`.
// Until commit() succeeds, an existing file at `path` is never touched; a writer destroyed
// without commit() removes its temp file. After commit() the object is closed; to add results
// later (e.g. after each run, so a killed sweep keeps what finished), open it again with
// open_or_create().
class ResultsFile {
 public:
  // A new, empty results file (replacing `path` only at commit).
  static ResultsFile create(const std::string& path, const RunMeta& meta);
  // Resume: copies the existing file at `path` (when there is one) and keeps its runs, tables
  // and start_time; throws ld::Error when that file is not a valid results file or, when
  // `require_same_config`, when its config differs from meta.config_json in what its runs depend
  // on (resume_fingerprint over the experiments of the runs it holds; runs made under another
  // config would be mixed in). Without a file at `path` it is create().
  static ResultsFile open_or_create(const std::string& path, const RunMeta& meta,
                                    bool require_same_config = true);

  ResultsFile(ResultsFile&&) noexcept;
  ResultsFile& operator=(ResultsFile&&) noexcept;
  ~ResultsFile();

  bool has_run(const RunKey& key) const;
  std::vector<RunKey> runs() const;  // sorted
  // Writes a run; throws when it exists already (unless `replace`) or the record is inconsistent
  // (selected/hist length differs from importance, hist counts size != layers*bins, ...).
  void write_run(const RunRecord& rec, bool replace = false);
  RunRecord read_run(const RunKey& key) const;
  // Assembles a table from the runs present (see TableSpec) and writes it (replacing any table
  // of the same name). Returns what it wrote.
  Table write_table(const TableSpec& spec);
  void write_table(const Table& table);
  // Writes /text_tables/<name> (replacing one of the same name); throws when a row's length
  // differs from the number of columns or a name is invalid.
  void write_text_table(const TextTable& table);

  // end_time = now (unless meta.end_time was given), flush, close, fsync, rename over path,
  // fsync the directory. Throws ld::Error (and leaves `path` as it was) on failure.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  ResultsFile() = default;
  void close_discard() noexcept;
  std::string path_, tmp_;
  RunMeta meta_;
  int64_t file_ = -1;  // hid_t
  bool committed_ = false;
};

// Read-only view of a committed results file.
class ResultsReader {
 public:
  explicit ResultsReader(const std::string& path);  // throws ld::Error naming the file
  ResultsReader(ResultsReader&&) noexcept;
  ResultsReader& operator=(ResultsReader&&) noexcept;
  ~ResultsReader();

  RunMeta meta() const;
  std::vector<RunKey> runs() const;
  bool has_run(const RunKey& key) const;
  RunRecord read_run(const RunKey& key) const;
  std::vector<std::string> table_names() const;
  Table read_table(const std::string& name) const;
  std::vector<std::string> text_table_names() const;
  TextTable read_text_table(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int64_t file_ = -1;
};

// Every schema violation of the file at `path` (empty when it conforms), each naming the file and
// the object.
std::vector<std::string> schema_problems(const std::string& path);
// Throws ld::Error listing the violations (first 20) when schema_problems() is not empty.
void validate_schema(const std::string& path);

// Assembles a table from runs (used by ResultsFile::write_table; exposed for tests).
Table assemble_table(const std::vector<RunRecord>& runs, const TableSpec& spec);

// A synthetic but schema-complete results file (every kind of data the plot tool draws): two
// experiments ("main": methods lora, loradrop, full on tasks rte, mrpc, 3 seeds;
// "sample_proportion": loradrop on rte at ten sample proportions; "threshold_sweep": lora and
// loradrop_t<T> at seven T on rte; "efficiency": six methods with timings and peak memory;
// "importance_source": loradrop_pass / loradrop_during, importance only, metric NaN), 6 layers,
// targets query and value, four tables and one text table (hyperparameters_tiny). Deterministic for
// a given seed. Used by tests and the `ld_make_sample_results` tool.
void write_sample_results(const std::string& path, uint64_t seed = 0);

}  // namespace ld::repro
