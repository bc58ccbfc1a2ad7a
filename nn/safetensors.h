// safetensors reader (mmap, zero-copy when aligned; sharded checkpoints via the index JSON), atomic
// writer (temp file, fsync, rename), and loading into a Module with HF/PEFT name mapping.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace ld::nn {

// One safetensors file, memory-mapped. Tensors returned by get() are CPU tensors that view the
// mapping (private copy-on-write: writing to them never touches the file); they keep the mapping
// alive. Dtypes: F64 F32 F16 BF16 I64 I32 BOOL. Every malformed input throws ld::Error naming the
// file: truncated header or data, bad header JSON, unknown dtype, offsets out of range or not
// matching the shape.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  Shape shape(const std::string& name) const;
  DType dtype(const std::string& name) const;
  Tensor get(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    size_t begin, end;  // byte offsets into the data section
  };
  const Entry& entry(const std::string& name) const;
  std::string path_;
  std::shared_ptr<Storage> map_;  // the whole file
  size_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: one file, or shards listed by model.safetensors.index.json. `path` may be a
// .safetensors file, an index .json, or a directory holding model.safetensors(.index.json).
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::string& path);
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  Tensor get(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;
  std::map<std::string, Tensor> all() const;
  const SafetensorsFile& first_file() const { return *files_.front(); }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

// fsync of a directory (after a rename into it), best effort: errors are ignored. "" = ".".
void fsync_directory(const std::string& dir);

// Writes `tensors` (any device; written as their dtype) atomically: `path`.tmp.<pid>, fsync,
// rename, fsync of the directory. An existing file at `path` is untouched if anything fails.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
std::map<std::string, Tensor> load_safetensors(const std::string& path);

struct LoadOptions {
  // Model parameters that may be absent from the checkpoint (glob/re: patterns, see name_matches),
  // e.g. "classifier.*" when starting a classifier from a base checkpoint, or "*.lora_*".
  std::vector<std::string> allow_missing;
  // Checkpoint tensors that may have no home in the model (e.g. "*pooler*", "lm_head.*").
  std::vector<std::string> allow_unexpected;
  bool strict = true;  // false: report missing/unexpected instead of throwing
};
struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected;  // model names / checkpoint names
};

// Loads a checkpoint into `m`, mapping names: exact; without PEFT's "base_model.model." prefix;
// PEFT's ".base_layer." and ".default." infixes removed; legacy ".gamma"/".beta" -> ".weight"/
// ".bias"; and, when `m` has one top-level child (e.g. "roberta") that the key lacks, that prefix
// added (a bare RobertaModel checkpoint into RobertaForSequenceClassification). A shape mismatch
// throws naming the tensor, the expected and found shapes, and the file.
LoadReport load_checkpoint(Module& m, const std::string& path, const LoadOptions& opt = {});

}  // namespace ld::nn
