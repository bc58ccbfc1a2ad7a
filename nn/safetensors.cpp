// safetensors: header parsing with range checks, mmap'd zero-copy tensors, sharded index, atomic
// writer, and name-mapped loading into a Module.
#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/autograd.h"

namespace ld::nn {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

DType parse_dtype(const std::string& s, const std::string& file, const std::string& name) {
  if (s == "F32") return DType::f32;
  if (s == "F64") return DType::f64;
  if (s == "BF16") return DType::bf16;
  if (s == "F16") return DType::f16;
  if (s == "I64") return DType::i64;
  if (s == "I32") return DType::i32;
  if (s == "BOOL") return DType::b8;
  LD_FAIL(
      "{}: tensor '{}' has dtype '{}', which loradrop does not support (F64 F32 F16 BF16 "
      "I64 I32 BOOL)",
      file, name, s);
}

const char* dtype_tag(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
    case DType::i64:
      return "I64";
    case DType::i32:
      return "I32";
    case DType::b8:
      return "BOOL";
  }
  return "?";
}

std::string errno_str() { return std::strerror(errno); }

}  // namespace

// ---- SafetensorsFile ----

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LD_CHECK(fd >= 0, "cannot open safetensors file '{}': {}", path, errno_str());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    LD_FAIL("cannot stat '{}': {}", path, errno_str());
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    LD_FAIL("{}: truncated safetensors file ({} bytes; the 8-byte header length is missing)", path,
            size);
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  LD_CHECK(p != MAP_FAILED, "cannot mmap '{}': {}", path, errno_str());
  map_ = std::make_shared<Storage>(p, size, kCPU, [size](void* q) { ::munmap(q, size); });

  const auto* bytes = static_cast<const unsigned char*>(p);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian
  LD_CHECK(n <= size - 8,
           "{}: truncated safetensors file: header says {} bytes of JSON but the "
           "file has only {} bytes after the length",
           path, n, size - 8);
  data_start_ = 8 + n;
  size_t data_size = size - data_start_;
  json h;
  try {
    h = json::parse(reinterpret_cast<const char*>(bytes + 8),
                    reinterpret_cast<const char*>(bytes + 8 + n));
  } catch (const json::exception& e) {
    LD_FAIL("{}: bad safetensors header JSON: {}", path, e.what());
  }
  LD_CHECK(h.is_object(), "{}: safetensors header is not a JSON object", path);
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      LD_CHECK(v.is_object(), "{}: __metadata__ is not an object", path);
      for (auto& [k, s] : v.items()) {
        LD_CHECK(s.is_string(), "{}: __metadata__['{}'] is not a string", path, k);
        metadata_[k] = s.get<std::string>();
      }
      continue;
    }
    try {
      LD_CHECK(
          v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
          "{}: header entry '{}' needs dtype, shape and data_offsets", path, name);
      Entry e;
      e.dtype = parse_dtype(v["dtype"].get<std::string>(), path, name);
      for (auto& d : v["shape"]) {
        int64_t s = d.get<int64_t>();
        LD_CHECK(s >= 0, "{}: tensor '{}' has a negative dimension", path, name);
        e.shape.push_back(s);
      }
      auto& off = v["data_offsets"];
      LD_CHECK(off.is_array() && off.size() == 2,
               "{}: tensor '{}': data_offsets must be [begin, end]", path, name);
      e.begin = off[0].get<size_t>();
      e.end = off[1].get<size_t>();
      LD_CHECK(e.begin <= e.end && e.end <= data_size,
               "{}: tensor '{}': data_offsets [{}, {}] out of range (data section is {} bytes; "
               "truncated file?)",
               path, name, e.begin, e.end, data_size);
      size_t want = static_cast<size_t>(shape_numel(e.shape)) * dtype_size(e.dtype);
      LD_CHECK(e.end - e.begin == want,
               "{}: tensor '{}': shape {} {} needs {} bytes but data_offsets span {}", path, name,
               shape_str(e.shape), dtype_tag(e.dtype), want, e.end - e.begin);
      entries_[name] = e;
    } catch (const json::exception& ex) {
      LD_FAIL("{}: bad header entry for tensor '{}': {}", path, name, ex.what());
    }
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (auto& [n, e] : entries_) out.push_back(n);
  return out;
}

const SafetensorsFile::Entry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  LD_CHECK(it != entries_.end(), "{}: no tensor named '{}'", path_, name);
  return it->second;
}

Shape SafetensorsFile::shape(const std::string& name) const { return entry(name).shape; }
DType SafetensorsFile::dtype(const std::string& name) const { return entry(name).dtype; }

Tensor SafetensorsFile::get(const std::string& name) const {
  const Entry& e = entry(name);
  size_t byte_off = data_start_ + e.begin;
  size_t es = dtype_size(e.dtype);
  auto addr = reinterpret_cast<uintptr_t>(map_->data()) + byte_off;
  if (byte_off % es == 0 && addr % es == 0)
    return Tensor::make(map_, e.shape, contiguous_strides(e.shape),
                        static_cast<int64_t>(byte_off / es), e.dtype);
  // Misaligned data: copy out.
  Tensor t = Tensor::empty(e.shape, e.dtype);
  std::memcpy(t.raw_data(), static_cast<const char*>(map_->data()) + byte_off, e.end - e.begin);
  return t;
}

// ---- SafetensorsCheckpoint ----

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& path_in) {
  fs::path path(path_in);
  std::string index;
  if (fs::is_directory(path)) {
    if (fs::exists(path / "model.safetensors.index.json"))
      index = (path / "model.safetensors.index.json").string();
    else if (fs::exists(path / "model.safetensors"))
      path = path / "model.safetensors";
    else
      LD_FAIL("directory '{}' holds neither model.safetensors nor model.safetensors.index.json",
              path_in);
  } else if (path.extension() == ".json") {
    index = path.string();
  }
  if (index.empty()) {
    files_.push_back(std::make_unique<SafetensorsFile>(path.string()));
    for (auto& n : files_[0]->names()) where_[n] = 0;
    return;
  }
  std::ifstream in(index);
  LD_CHECK(in, "cannot open safetensors index '{}'", index);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    LD_FAIL("{}: bad index JSON: {}", index, e.what());
  }
  LD_CHECK(j.contains("weight_map") && j["weight_map"].is_object(),
           "{}: index has no weight_map object", index);
  std::map<std::string, size_t> file_idx;
  fs::path dir = fs::path(index).parent_path();
  for (auto& [name, f] : j["weight_map"].items()) {
    std::string fname = f.get<std::string>();
    auto it = file_idx.find(fname);
    if (it == file_idx.end()) {
      files_.push_back(std::make_unique<SafetensorsFile>((dir / fname).string()));
      it = file_idx.emplace(fname, files_.size() - 1).first;
    }
    LD_CHECK(files_[it->second]->contains(name),
             "{}: index maps tensor '{}' to '{}', which does not contain it", index, name,
             files_[it->second]->path());
    where_[name] = it->second;
  }
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (auto& [n, i] : where_) out.push_back(n);
  return out;
}

const std::string& SafetensorsCheckpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  LD_CHECK(it != where_.end(), "checkpoint has no tensor '{}'", name);
  return files_[it->second]->path();
}

Tensor SafetensorsCheckpoint::get(const std::string& name) const {
  auto it = where_.find(name);
  LD_CHECK(it != where_.end(), "checkpoint ({}) has no tensor '{}'", files_.front()->path(), name);
  return files_[it->second]->get(name);
}

std::map<std::string, Tensor> SafetensorsCheckpoint::all() const {
  std::map<std::string, Tensor> out;
  for (auto& [n, i] : where_) out[n] = files_[i]->get(n);
  return out;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path) {
  return SafetensorsCheckpoint(path).all();
}

// ---- writer ----

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::vector<Tensor> host;
  size_t off = 0;
  for (auto& [name, t] : tensors) {
    LD_CHECK(t.defined(), "save_safetensors('{}'): tensor '{}' is undefined", path, name);
    Tensor c = t.detach().to(kCPU).contiguous();
    size_t nb = static_cast<size_t>(c.numel()) * dtype_size(c.dtype());
    h[name] = {
        {"dtype", dtype_tag(c.dtype())}, {"shape", c.shape()}, {"data_offsets", {off, off + nb}}};
    off += nb;
    host.push_back(c);
  }
  std::string hs = h.dump();
  while (hs.size() % 8) hs.push_back(' ');
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  LD_CHECK(fd >= 0, "cannot create '{}': {}", tmp, errno_str());
  auto write_all = [&](const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n) {
      ssize_t w = ::write(fd, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        std::string err = errno_str();
        ::close(fd);
        ::unlink(tmp.c_str());
        LD_FAIL("writing '{}' failed: {}", tmp, err);
      }
      c += w;
      n -= static_cast<size_t>(w);
    }
  };
  unsigned char len[8];
  uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  write_all(len, 8);
  write_all(hs.data(), hs.size());
  for (const Tensor& c : host)
    write_all(c.raw_data(), static_cast<size_t>(c.numel()) * dtype_size(c.dtype()));
  if (::fsync(fd) != 0) {
    std::string err = errno_str();
    ::close(fd);
    ::unlink(tmp.c_str());
    LD_FAIL("fsync of '{}' failed: {}", tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = errno_str();
    ::unlink(tmp.c_str());
    LD_FAIL("renaming '{}' to '{}' failed: {}", tmp, path, err);
  }
  fsync_directory(fs::path(path).parent_path().string());
}

void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// ---- loading into a module ----

namespace {

void replace_all(std::string& s, const std::string& a, const std::string& b) {
  for (size_t p = s.find(a); p != std::string::npos; p = s.find(a, p)) {
    s.replace(p, a.size(), b);
    p += b.size();
  }
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

bool any_match(const std::vector<std::string>& pats, const std::string& name) {
  for (auto& p : pats)
    if (name_matches(p, name)) return true;
  return false;
}

}  // namespace

LoadReport load_checkpoint(Module& m, const std::string& path, const LoadOptions& opt) {
  SafetensorsCheckpoint ck(path);
  std::map<std::string, Tensor> mine;
  for (auto& [n, t] : m.named_parameters()) mine[n] = t;
  for (auto& [n, t] : m.named_buffers(true)) mine[n] = t;
  std::set<std::string> prefixes;
  for (auto& [n, c] : m.named_modules())
    if (n.find('.') == std::string::npos) prefixes.insert(n + ".");

  LoadReport rep;
  std::set<std::string> done;
  NoGradGuard ng;
  for (const std::string& key : ck.names()) {
    std::string k = key;
    if (k.rfind("base_model.model.", 0) == 0) k = k.substr(17);
    replace_all(k, ".base_layer.", ".");
    replace_all(k, ".default.", ".");
    if (ends_with(k, ".gamma")) k = k.substr(0, k.size() - 6) + ".weight";
    if (ends_with(k, ".beta")) k = k.substr(0, k.size() - 5) + ".bias";
    std::string target;
    if (mine.count(k)) {
      target = k;
    } else {
      for (auto& p : prefixes)
        if (mine.count(p + k)) {
          target = p + k;
          break;
        }
    }
    if (target.empty()) {
      rep.unexpected.push_back(key);
      continue;
    }
    LD_CHECK(!done.count(target), "{}: tensors '{}' and another both map to model tensor '{}'",
             ck.file_of(key), key, target);
    Tensor src = ck.get(key);
    Tensor& dst = mine[target];
    LD_CHECK(src.shape() == dst.shape(),
             "shape mismatch for tensor '{}' (model name '{}'): the model expects {}, the file "
             "'{}' has {}",
             key, target, shape_str(dst.shape()), ck.file_of(key), shape_str(src.shape()));
    Tensor(dst).copy_(src);
    done.insert(target);
    rep.loaded.push_back(target);
  }
  for (auto& [n, t] : mine)
    if (!done.count(n)) rep.missing.push_back(n);
  if (opt.strict) {
    std::vector<std::string> bad_missing, bad_unexp;
    for (auto& n : rep.missing)
      if (!any_match(opt.allow_missing, n)) bad_missing.push_back(n);
    for (auto& n : rep.unexpected)
      if (!any_match(opt.allow_unexpected, n)) bad_unexp.push_back(n);
    LD_CHECK(bad_missing.empty(), "checkpoint '{}' lacks {} tensor(s) the model needs: {}", path,
             bad_missing.size(), fmt::join(bad_missing, ", "));
    LD_CHECK(bad_unexp.empty(), "checkpoint '{}' has {} tensor(s) the model does not know: {}",
             path, bad_unexp.size(), fmt::join(bad_unexp, ", "));
  }
  return rep;
}

}  // namespace ld::nn
