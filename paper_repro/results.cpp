// HDF5 results writer/reader (HDF5 C API behind small RAII handles), table assembly, schema check
// and the synthetic sample file used to test the plot tool.
#include "paper_repro/results.h"

#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <regex>
#include <set>

#include "core/error.h"

namespace ld::repro {
namespace fs = std::filesystem;

namespace {

// ---- HDF5 plumbing ----

void quiet_hdf5() {
  // HDF5 prints its error stack to stderr by default; we report through ld::Error instead.
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// Owns one hid_t and closes it with the matching H5?close.
class H5 {
 public:
  using Closer = herr_t (*)(hid_t);
  H5() = default;
  H5(hid_t id, Closer c) : id_(id), close_(c) {}
  H5(H5&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  H5& operator=(H5&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  H5(const H5&) = delete;
  H5& operator=(const H5&) = delete;
  ~H5() { reset(); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Context for error messages: "<file>: <object>".
std::string where(const std::string& file, const std::string& obj) {
  return fmt::format("{}: {}", file, obj);
}

H5 check_id(hid_t id, H5::Closer c, const std::string& ctx, const char* what) {
  LD_CHECK(id >= 0, "HDF5 {} failed for {}", what, ctx);
  return H5(id, c);
}

void check_status(herr_t st, const std::string& ctx, const char* what) {
  LD_CHECK(st >= 0, "HDF5 {} failed for {}", what, ctx);
}

H5 str_type() {
  H5 t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

bool link_exists(hid_t loc, const std::string& path) {
  // H5Lexists needs every intermediate component to exist; walk them.
  size_t pos = 0;
  while (true) {
    size_t next = path.find('/', pos + 1);
    std::string part = path.substr(0, next);
    if (!part.empty() && part != "/") {
      htri_t e = H5Lexists(loc, part.c_str(), H5P_DEFAULT);
      if (e <= 0) return false;
    }
    if (next == std::string::npos) return true;
    pos = next;
  }
}

H5O_type_t object_type(hid_t loc, const std::string& path) {
  H5O_info_t info;
  if (H5Oget_info_by_name(loc, path.c_str(), &info, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
  return info.type;
}

std::vector<std::string> children(hid_t loc, const std::string& path) {
  std::vector<std::string> out;
  H5 g(H5Gopen2(loc, path.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return out;
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0) return out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n =
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) continue;
    std::string name(static_cast<size_t>(n), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1,
                       H5P_DEFAULT);
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> out;
  H5O_info_t info;
  if (H5Oget_info(obj, &info) < 0) return out;
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    ssize_t n =
        H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) continue;
    std::string name(static_cast<size_t>(n), '\0');
    H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1,
                       H5P_DEFAULT);
    out.push_back(name);
  }
  return out;
}

// ---- attributes ----

void write_str_attr(hid_t obj, const std::string& name, const std::string& value,
                    const std::string& ctx) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H5 t = str_type();
  H5 sp(H5Screate(H5S_SCALAR), H5Sclose);
  H5 a = check_id(H5Acreate2(obj, name.c_str(), t.get(), sp.get(), H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose, where(ctx, "attribute " + name), "attribute create");
  const char* p = value.c_str();
  check_status(H5Awrite(a.get(), t.get(), &p), where(ctx, "attribute " + name), "attribute write");
}

template <class T>
hid_t native_of();
template <>
hid_t native_of<double>() {
  return H5T_NATIVE_DOUBLE;
}
template <>
hid_t native_of<int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
hid_t native_of<uint8_t>() {
  return H5T_NATIVE_UINT8;
}

template <class T>
void write_array_attr(hid_t obj, const std::string& name, const std::vector<T>& v,
                      const std::string& ctx) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  hsize_t dims[1] = {v.size()};
  H5 sp(H5Screate_simple(1, dims, nullptr), H5Sclose);
  H5 a = check_id(H5Acreate2(obj, name.c_str(), native_of<T>(), sp.get(), H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose, where(ctx, "attribute " + name), "attribute create");
  if (!v.empty())
    check_status(H5Awrite(a.get(), native_of<T>(), v.data()), where(ctx, "attribute " + name),
                 "attribute write");
}

void write_f64_attr(hid_t obj, const std::string& name, double v, const std::string& ctx) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H5 sp(H5Screate(H5S_SCALAR), H5Sclose);
  H5 a =
      check_id(H5Acreate2(obj, name.c_str(), H5T_NATIVE_DOUBLE, sp.get(), H5P_DEFAULT, H5P_DEFAULT),
               H5Aclose, where(ctx, "attribute " + name), "attribute create");
  check_status(H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &v), where(ctx, "attribute " + name),
               "attribute write");
}

// Reads a scalar string attribute (variable or fixed length); nullopt when absent or not a string.
std::optional<std::string> read_str_attr(hid_t obj, const std::string& name) {
  if (H5Aexists(obj, name.c_str()) <= 0) return std::nullopt;
  H5 a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a.ok()) return std::nullopt;
  H5 ft(H5Aget_type(a.get()), H5Tclose);
  H5 sp(H5Aget_space(a.get()), H5Sclose);
  if (H5Tget_class(ft.get()) != H5T_STRING || H5Sget_simple_extent_npoints(sp.get()) != 1)
    return std::nullopt;
  if (H5Tis_variable_str(ft.get()) > 0) {
    H5 mt = str_type();
    char* p = nullptr;
    if (H5Aread(a.get(), mt.get(), &p) < 0) return std::nullopt;
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t n = H5Tget_size(ft.get());
  std::string s(n, '\0');
  H5 mt(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mt.get(), n);
  if (H5Aread(a.get(), mt.get(), s.data()) < 0) return std::nullopt;
  s.resize(std::strlen(s.c_str()));
  return s;
}

// Shape and class of a dataset or attribute, for reading and for the schema check.
struct Layout {
  H5T_class_t cls = H5T_NO_CLASS;
  size_t size = 0;
  H5T_sign_t sign = H5T_SGN_ERROR;
  std::vector<hsize_t> dims;  // empty = scalar
  int64_t points() const {
    int64_t n = 1;
    for (hsize_t d : dims) n *= static_cast<int64_t>(d);
    return n;
  }
};

Layout layout_of(hid_t type, hid_t space) {
  Layout l;
  l.cls = H5Tget_class(type);
  l.size = H5Tget_size(type);
  if (l.cls == H5T_INTEGER) l.sign = H5Tget_sign(type);
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank > 0) {
    l.dims.resize(static_cast<size_t>(rank));
    H5Sget_simple_extent_dims(space, l.dims.data(), nullptr);
  }
  return l;
}

std::optional<Layout> dataset_layout(hid_t loc, const std::string& path) {
  H5 d(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) return std::nullopt;
  H5 t(H5Dget_type(d.get()), H5Tclose);
  H5 s(H5Dget_space(d.get()), H5Sclose);
  return layout_of(t.get(), s.get());
}

std::optional<Layout> attr_layout(hid_t obj, const std::string& name) {
  if (H5Aexists(obj, name.c_str()) <= 0) return std::nullopt;
  H5 a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a.ok()) return std::nullopt;
  H5 t(H5Aget_type(a.get()), H5Tclose);
  H5 s(H5Aget_space(a.get()), H5Sclose);
  return layout_of(t.get(), s.get());
}

std::string layout_str(const Layout& l) {
  const char* c = l.cls == H5T_FLOAT      ? "float"
                  : l.cls == H5T_INTEGER  ? (l.sign == H5T_SGN_NONE ? "uint" : "int")
                  : l.cls == H5T_STRING   ? "string"
                  : l.cls == H5T_COMPOUND ? "compound"
                                          : "other";
  return fmt::format("{}{} [{}]", c, l.size * 8, fmt::join(l.dims, ", "));
}

template <class T>
std::vector<T> read_array_attr(hid_t obj, const std::string& name, const std::string& ctx) {
  H5 a = check_id(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose,
                  where(ctx, "attribute " + name), "attribute open");
  H5 s(H5Aget_space(a.get()), H5Sclose);
  std::vector<T> v(static_cast<size_t>(H5Sget_simple_extent_npoints(s.get())));
  if (!v.empty())
    check_status(H5Aread(a.get(), native_of<T>(), v.data()), where(ctx, "attribute " + name),
                 "attribute read");
  return v;
}

// ---- datasets ----

template <class T>
void write_dataset(hid_t loc, const std::string& name, const std::vector<T>& data,
                   const std::vector<hsize_t>& dims, const std::string& ctx) {
  H5 sp = dims.empty()
              ? H5(H5Screate(H5S_SCALAR), H5Sclose)
              : H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5 lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5 d = check_id(
      H5Dcreate2(loc, name.c_str(), native_of<T>(), sp.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose, where(ctx, name), "dataset create");
  if (!data.empty())
    check_status(H5Dwrite(d.get(), native_of<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
                 where(ctx, name), "dataset write");
}

// Reads a numeric dataset, converting to T; checks the rank (and class when `cls` is given).
template <class T>
std::vector<T> read_dataset(hid_t loc, const std::string& name, size_t rank, H5T_class_t cls,
                            const std::string& ctx, std::vector<hsize_t>* dims_out = nullptr) {
  H5 d(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  LD_CHECK(d.ok(), "{}: missing dataset", where(ctx, name));
  H5 t(H5Dget_type(d.get()), H5Tclose);
  H5 s(H5Dget_space(d.get()), H5Sclose);
  Layout l = layout_of(t.get(), s.get());
  LD_CHECK(l.dims.size() == rank && l.cls == cls, "{}: expected a rank-{} {} dataset, found {}",
           where(ctx, name), rank, cls == H5T_FLOAT ? "float" : "integer", layout_str(l));
  std::vector<T> v(static_cast<size_t>(l.points()));
  if (!v.empty())
    check_status(H5Dread(d.get(), native_of<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
                 where(ctx, name), "dataset read");
  if (dims_out) *dims_out = l.dims;
  return v;
}

// ---- names ----

bool valid_name(const std::string& s) {
  static const std::regex re("[A-Za-z0-9_+\\-][A-Za-z0-9_.+\\-]*");
  return !s.empty() && std::regex_match(s, re);
}

void check_name(const std::string& s, const char* what) {
  LD_CHECK(valid_name(s),
           "invalid {} name '{}': use letters, digits and _ . + - (not starting with '.')", what,
           s);
}

bool parse_seed_name(const std::string& s, int64_t* seed) {
  static const std::regex re("seed_(0|[1-9][0-9]{0,17})");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  if (seed) *seed = std::stoll(m[1].str());
  return true;
}

bool iso8601(const std::string& s) {
  static const std::regex re(
      "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})");
  return std::regex_match(s, re);
}

const char* const kRootAttrs[] = {"program_version", "git_commit", "config_json",   "device",
                                  "start_time",      "end_time",   "schema_version"};

// ---- run enumeration / reading shared by writer and reader ----

std::vector<RunKey> list_runs(hid_t file) {
  std::vector<RunKey> out;
  for (const auto& e : children(file, "/")) {
    if (e == "tables" || e == "text_tables" || object_type(file, "/" + e) != H5O_TYPE_GROUP)
      continue;
    for (const auto& m : children(file, "/" + e))
      for (const auto& me : children(file, fmt::format("/{}/{}", e, m)))
        for (const auto& t : children(file, fmt::format("/{}/{}/{}", e, m, me)))
          for (const auto& s : children(file, fmt::format("/{}/{}/{}/{}", e, m, me, t))) {
            int64_t seed = 0;
            if (parse_seed_name(s, &seed)) out.push_back(RunKey{e, m, me, t, seed});
          }
  }
  std::sort(out.begin(), out.end());
  return out;
}

RunRecord read_run_impl(hid_t file, const std::string& fname, const RunKey& key) {
  const std::string p = key.path();
  LD_CHECK(link_exists(file, p) && object_type(file, p) == H5O_TYPE_GROUP, "{}: no such run",
           where(fname, p));
  H5 g = check_id(H5Gopen2(file, p.c_str(), H5P_DEFAULT), H5Gclose, where(fname, p), "group open");
  const std::string ctx = fname + ": " + p;
  RunRecord r;
  r.key = key;
  r.metric = read_dataset<double>(g.get(), "metric", 0, H5T_FLOAT, ctx)[0];
  {
    H5 d(H5Dopen2(g.get(), "metric", H5P_DEFAULT), H5Dclose);
    auto n = read_str_attr(d.get(), "name");
    LD_CHECK(n.has_value(), "{}/metric: missing string attribute 'name'", ctx);
    r.metric_name = *n;
  }
  r.trainable_params = read_dataset<int64_t>(g.get(), "trainable_params", 0, H5T_INTEGER, ctx)[0];
  r.train_loss = read_dataset<double>(g.get(), "train_loss", 1, H5T_FLOAT, ctx);
  std::vector<hsize_t> dims;
  auto eh = read_dataset<double>(g.get(), "eval_history", 2, H5T_FLOAT, ctx, &dims);
  LD_CHECK(dims[1] == 2, "{}/eval_history: expected [evals, 2], found [{}, {}]", ctx, dims[0],
           dims[1]);
  for (size_t i = 0; i < dims[0]; ++i) r.eval_history.push_back({eh[2 * i], eh[2 * i + 1]});
  for (const auto& t : children(g.get(), "importance"))
    r.importance[t] = read_dataset<double>(g.get(), "importance/" + t, 1, H5T_FLOAT, ctx);
  for (const auto& t : children(g.get(), "selected")) {
    auto v = read_dataset<uint8_t>(g.get(), "selected/" + t, 1, H5T_INTEGER, ctx);
    r.selected[t] = std::vector<bool>(v.begin(), v.end());
  }
  for (const auto& t : children(g.get(), "hist")) {
    LayerHistograms h;
    h.counts = read_dataset<int64_t>(g.get(), "hist/" + t, 2, H5T_INTEGER, ctx, &dims);
    h.layers = static_cast<int64_t>(dims[0]);
    H5 d(H5Dopen2(g.get(), ("hist/" + t).c_str(), H5P_DEFAULT), H5Dclose);
    LD_CHECK(H5Aexists(d.get(), "bin_edges") > 0, "{}/hist/{}: missing attribute bin_edges", ctx,
             t);
    h.bin_edges = read_array_attr<double>(d.get(), "bin_edges", ctx + "/hist/" + t);
    LD_CHECK(h.bins() == static_cast<int64_t>(dims[1]),
             "{}/hist/{}: {} bin_edges for {} bins (expected bins + 1)", ctx, t, h.bin_edges.size(),
             dims[1]);
    if (H5Aexists(d.get(), "underflow") > 0)
      h.underflow = read_array_attr<int64_t>(d.get(), "underflow", ctx + "/hist/" + t);
    if (H5Aexists(d.get(), "overflow") > 0)
      h.overflow = read_array_attr<int64_t>(d.get(), "overflow", ctx + "/hist/" + t);
    r.hist[t] = std::move(h);
  }
  for (const auto& a : attr_names(g.get())) {
    auto l = attr_layout(g.get(), a);
    if (l && l->cls == H5T_FLOAT && l->dims.empty()) {
      H5 at(H5Aopen(g.get(), a.c_str(), H5P_DEFAULT), H5Aclose);
      double v = 0;
      H5Aread(at.get(), H5T_NATIVE_DOUBLE, &v);
      r.params[a] = v;
    } else if (auto t = read_str_attr(g.get(), a)) {
      r.text[a] = *t;
    }
  }
  return r;
}

// ---- tables ----

struct RowMem {
  const char* method;
  const char* task;
  const char* metric_name;
  double mean, std;
  int64_t n;
  double trainable_params;
};

const char* const kTableFields[] = {"method", "task", "metric_name",     "mean",
                                    "std",    "n",    "trainable_params"};

H5 row_type() {
  H5 s = str_type();
  H5 t(H5Tcreate(H5T_COMPOUND, sizeof(RowMem)), H5Tclose);
  H5Tinsert(t.get(), "method", HOFFSET(RowMem, method), s.get());
  H5Tinsert(t.get(), "task", HOFFSET(RowMem, task), s.get());
  H5Tinsert(t.get(), "metric_name", HOFFSET(RowMem, metric_name), s.get());
  H5Tinsert(t.get(), "mean", HOFFSET(RowMem, mean), H5T_NATIVE_DOUBLE);
  H5Tinsert(t.get(), "std", HOFFSET(RowMem, std), H5T_NATIVE_DOUBLE);
  H5Tinsert(t.get(), "n", HOFFSET(RowMem, n), H5T_NATIVE_INT64);
  H5Tinsert(t.get(), "trainable_params", HOFFSET(RowMem, trainable_params), H5T_NATIVE_DOUBLE);
  return t;
}

// A 1-d compound dataset of `n` rows of type `t` at `p` (intermediate groups created) with the
// title / experiment / model attributes: the body of /tables and /text_tables entries.
void write_table_dataset(hid_t file, const std::string& fname, const std::string& p, hid_t t,
                         size_t n, const void* data, const std::string& title,
                         const std::string& experiment, const std::string& model) {
  hsize_t dims[1] = {n};
  H5 sp(H5Screate_simple(1, dims, nullptr), H5Sclose);
  H5 lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5 d = check_id(H5Dcreate2(file, p.c_str(), t, sp.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                  H5Dclose, where(fname, p), "dataset create");
  if (n > 0)
    check_status(H5Dwrite(d.get(), t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where(fname, p),
                 "dataset write");
  write_str_attr(d.get(), "title", title, where(fname, p));
  write_str_attr(d.get(), "experiment", experiment, where(fname, p));
  write_str_attr(d.get(), "model", model, where(fname, p));
}

void write_table_impl(hid_t file, const std::string& fname, const Table& tb) {
  check_name(tb.name, "table");
  const std::string p = "/tables/" + tb.name;
  if (link_exists(file, p))
    check_status(H5Ldelete(file, p.c_str(), H5P_DEFAULT), where(fname, p), "delete");
  std::vector<RowMem> rows;
  for (const auto& r : tb.rows)
    rows.push_back({r.method.c_str(), r.task.c_str(), r.metric_name.c_str(), r.mean, r.std, r.n,
                    r.trainable_params});
  H5 t = row_type();
  write_table_dataset(file, fname, p, t.get(), rows.size(), rows.data(), tb.title, tb.experiment,
                      tb.model);
}

Table read_table_impl(hid_t file, const std::string& fname, const std::string& name) {
  const std::string p = "/tables/" + name;
  LD_CHECK(link_exists(file, p) && object_type(file, p) == H5O_TYPE_DATASET, "{}: no such table",
           where(fname, p));
  H5 d = check_id(H5Dopen2(file, p.c_str(), H5P_DEFAULT), H5Dclose, where(fname, p), "open");
  H5 ft(H5Dget_type(d.get()), H5Tclose);
  LD_CHECK(H5Tget_class(ft.get()) == H5T_COMPOUND, "{}: a table must be a compound dataset",
           where(fname, p));
  for (const char* f : kTableFields)
    LD_CHECK(H5Tget_member_index(ft.get(), f) >= 0, "{}: table has no field '{}'", where(fname, p),
             f);
  H5 sp(H5Dget_space(d.get()), H5Sclose);
  std::vector<RowMem> rows(static_cast<size_t>(H5Sget_simple_extent_npoints(sp.get())));
  H5 t = row_type();
  Table tb;
  tb.name = name;
  if (!rows.empty()) {
    check_status(H5Dread(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
                 where(fname, p), "dataset read");
    for (const auto& r : rows)
      tb.rows.push_back({r.method ? r.method : "", r.task ? r.task : "",
                         r.metric_name ? r.metric_name : "", r.mean, r.std, r.n,
                         r.trainable_params});
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(t.get(), sp.get(), H5P_DEFAULT, rows.data());
#else
    H5Dvlen_reclaim(t.get(), sp.get(), H5P_DEFAULT, rows.data());
#endif
  }
  tb.title = read_str_attr(d.get(), "title").value_or("");
  tb.experiment = read_str_attr(d.get(), "experiment").value_or("");
  tb.model = read_str_attr(d.get(), "model").value_or("");
  return tb;
}

// Text tables: one compound member (variable-length string) per column.
H5 text_row_type(const std::vector<std::string>& columns) {
  H5 s = str_type();
  H5 t(H5Tcreate(H5T_COMPOUND, std::max<size_t>(1, columns.size()) * sizeof(char*)), H5Tclose);
  for (size_t i = 0; i < columns.size(); ++i)
    H5Tinsert(t.get(), columns[i].c_str(), i * sizeof(char*), s.get());
  return t;
}

void write_text_table_impl(hid_t file, const std::string& fname, const TextTable& tb) {
  check_name(tb.name, "text table");
  const std::string p = "/text_tables/" + tb.name;
  LD_CHECK(!tb.columns.empty(), "{}: a text table needs columns", where(fname, p));
  std::set<std::string> seen;
  for (const auto& c : tb.columns) {
    check_name(c, "text table column");
    LD_CHECK(seen.insert(c).second, "{}: column '{}' twice", where(fname, p), c);
  }
  std::vector<const char*> cells;
  for (size_t i = 0; i < tb.rows.size(); ++i) {
    LD_CHECK(tb.rows[i].size() == tb.columns.size(), "{}: row {} has {} cells for {} columns",
             where(fname, p), i, tb.rows[i].size(), tb.columns.size());
    for (const auto& c : tb.rows[i]) cells.push_back(c.c_str());
  }
  if (link_exists(file, p))
    check_status(H5Ldelete(file, p.c_str(), H5P_DEFAULT), where(fname, p), "delete");
  H5 t = text_row_type(tb.columns);
  write_table_dataset(file, fname, p, t.get(), tb.rows.size(), cells.data(), tb.title,
                      tb.experiment, tb.model);
}

TextTable read_text_table_impl(hid_t file, const std::string& fname, const std::string& name) {
  const std::string p = "/text_tables/" + name;
  LD_CHECK(link_exists(file, p) && object_type(file, p) == H5O_TYPE_DATASET,
           "{}: no such text table", where(fname, p));
  H5 d = check_id(H5Dopen2(file, p.c_str(), H5P_DEFAULT), H5Dclose, where(fname, p), "open");
  H5 ft(H5Dget_type(d.get()), H5Tclose);
  LD_CHECK(H5Tget_class(ft.get()) == H5T_COMPOUND, "{}: a text table must be a compound dataset",
           where(fname, p));
  TextTable tb;
  tb.name = name;
  const int nm = H5Tget_nmembers(ft.get());
  for (int i = 0; i < nm; ++i) {
    char* n = H5Tget_member_name(ft.get(), static_cast<unsigned>(i));
    tb.columns.emplace_back(n ? n : "");
    H5free_memory(n);
    LD_CHECK(H5Tget_member_class(ft.get(), static_cast<unsigned>(i)) == H5T_STRING,
             "{}: column '{}' is not a string", where(fname, p), tb.columns.back());
  }
  H5 sp(H5Dget_space(d.get()), H5Sclose);
  const size_t n = static_cast<size_t>(H5Sget_simple_extent_npoints(sp.get()));
  std::vector<char*> cells(n * tb.columns.size(), nullptr);
  H5 t = text_row_type(tb.columns);
  if (n > 0 && !tb.columns.empty()) {
    check_status(H5Dread(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, cells.data()),
                 where(fname, p), "dataset read");
    for (size_t r = 0; r < n; ++r) {
      std::vector<std::string> row;
      for (size_t c = 0; c < tb.columns.size(); ++c) {
        const char* x = cells[r * tb.columns.size() + c];
        row.emplace_back(x ? x : "");
      }
      tb.rows.push_back(std::move(row));
    }
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(t.get(), sp.get(), H5P_DEFAULT, cells.data());
#else
    H5Dvlen_reclaim(t.get(), sp.get(), H5P_DEFAULT, cells.data());
#endif
  }
  tb.title = read_str_attr(d.get(), "title").value_or("");
  tb.experiment = read_str_attr(d.get(), "experiment").value_or("");
  tb.model = read_str_attr(d.get(), "model").value_or("");
  return tb;
}

RunMeta read_meta_impl(hid_t file) {
  H5 root(H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose);
  RunMeta m;
  m.program_version = read_str_attr(root.get(), "program_version").value_or("");
  m.git_commit = read_str_attr(root.get(), "git_commit").value_or("");
  m.config_json = read_str_attr(root.get(), "config_json").value_or("");
  m.device = read_str_attr(root.get(), "device").value_or("");
  m.start_time = read_str_attr(root.get(), "start_time").value_or("");
  m.end_time = read_str_attr(root.get(), "end_time").value_or("");
  return m;
}

void write_meta(hid_t file, const std::string& fname, const RunMeta& m) {
  H5 root(H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose);
  const std::string ctx = fname + ": /";
  write_str_attr(root.get(), "program_version", m.program_version, ctx);
  write_str_attr(root.get(), "git_commit", m.git_commit, ctx);
  write_str_attr(root.get(), "config_json", m.config_json, ctx);
  write_str_attr(root.get(), "device", m.device, ctx);
  write_str_attr(root.get(), "start_time", m.start_time, ctx);
  write_str_attr(root.get(), "end_time", m.end_time, ctx);
  write_str_attr(root.get(), "schema_version", kSchemaVersion, ctx);
}

void check_meta(const RunMeta& m) {
  LD_CHECK(!m.program_version.empty(), "results: program_version is empty");
  LD_CHECK(!m.git_commit.empty(), "results: git_commit is empty (use \"unknown\")");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(m.config_json);
  } catch (const std::exception& e) {
    LD_FAIL("results: config_json is not valid JSON: {}", e.what());
  }
  LD_CHECK(j.is_object(), "results: config_json must be a JSON object");
  LD_CHECK(m.start_time.empty() || iso8601(m.start_time),
           "results: start_time '{}' is not ISO-8601", m.start_time);
  LD_CHECK(m.end_time.empty() || iso8601(m.end_time), "results: end_time '{}' is not ISO-8601",
           m.end_time);
}

// Validates a record before anything is written, so a bad record leaves the file unchanged.
void check_record(const RunRecord& r) {
  r.key.path();
  const std::string ctx = r.key.path();
  LD_CHECK(!r.metric_name.empty(), "{}: metric_name is empty", ctx);
  LD_CHECK(r.trainable_params >= 0, "{}: trainable_params {} < 0", ctx, r.trainable_params);
  auto layers_of = [&](const std::string& target) -> std::optional<size_t> {
    if (auto it = r.importance.find(target); it != r.importance.end()) return it->second.size();
    return std::nullopt;
  };
  for (const auto& [t, g] : r.importance) {
    check_name(t, "target");
    LD_CHECK(!g.empty(), "{}: importance/{} is empty", ctx, t);
  }
  for (const auto& [t, s] : r.selected) {
    check_name(t, "target");
    auto L = layers_of(t);
    LD_CHECK(!L || *L == s.size(), "{}: selected/{} has {} layers, importance/{} has {}", ctx, t,
             s.size(), t, L.value_or(0));
  }
  for (const auto& [t, h] : r.hist) {
    check_name(t, "target");
    auto L = layers_of(t);
    LD_CHECK(!L || static_cast<int64_t>(*L) == h.layers,
             "{}: hist/{} has {} layers, importance/{} has {}", ctx, t, h.layers, t, L.value_or(0));
    LD_CHECK(h.bins() >= 1, "{}: hist/{} needs at least 2 bin_edges, got {}", ctx, t,
             h.bin_edges.size());
    for (size_t i = 1; i < h.bin_edges.size(); ++i)
      LD_CHECK(h.bin_edges[i] > h.bin_edges[i - 1], "{}: hist/{} bin_edges not increasing at {}",
               ctx, t, i);
    LD_CHECK(static_cast<int64_t>(h.counts.size()) == h.layers * h.bins(),
             "{}: hist/{} has {} counts, expected layers*bins = {}*{}", ctx, t, h.counts.size(),
             h.layers, h.bins());
    LD_CHECK(h.underflow.empty() || static_cast<int64_t>(h.underflow.size()) == h.layers,
             "{}: hist/{} underflow has {} entries for {} layers", ctx, t, h.underflow.size(),
             h.layers);
    LD_CHECK(h.overflow.empty() || static_cast<int64_t>(h.overflow.size()) == h.layers,
             "{}: hist/{} overflow has {} entries for {} layers", ctx, t, h.overflow.size(),
             h.layers);
  }
  for (const auto& [k, v] : r.params) {
    check_name(k, "parameter");
    LD_CHECK(k != "name", "{}: parameter name 'name' is reserved", ctx);
    (void)v;
  }
}

void write_run_impl(hid_t file, const std::string& fname, const RunRecord& r) {
  const std::string p = r.key.path();
  const std::string ctx = fname + ": " + p;
  H5 lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5 g = check_id(H5Gcreate2(file, p.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose, ctx,
                  "group create");
  write_dataset<double>(g.get(), "metric", {r.metric}, {}, ctx);
  {
    H5 d(H5Dopen2(g.get(), "metric", H5P_DEFAULT), H5Dclose);
    write_str_attr(d.get(), "name", r.metric_name, ctx + "/metric");
  }
  write_dataset<int64_t>(g.get(), "trainable_params", {r.trainable_params}, {}, ctx);
  write_dataset<double>(g.get(), "train_loss", r.train_loss, {r.train_loss.size()}, ctx);
  std::vector<double> eh;
  for (const auto& e : r.eval_history) eh.insert(eh.end(), e.begin(), e.end());
  write_dataset<double>(g.get(), "eval_history", eh, {r.eval_history.size(), 2}, ctx);
  for (const auto& [t, v] : r.importance)
    write_dataset<double>(g.get(), "importance/" + t, v, {v.size()}, ctx);
  for (const auto& [t, v] : r.selected) {
    std::vector<uint8_t> u(v.begin(), v.end());
    write_dataset<uint8_t>(g.get(), "selected/" + t, u, {u.size()}, ctx);
  }
  for (const auto& [t, h] : r.hist) {
    write_dataset<int64_t>(g.get(), "hist/" + t, h.counts,
                           {static_cast<hsize_t>(h.layers), static_cast<hsize_t>(h.bins())}, ctx);
    H5 d(H5Dopen2(g.get(), ("hist/" + t).c_str(), H5P_DEFAULT), H5Dclose);
    const std::string dctx = ctx + "/hist/" + t;
    write_array_attr<double>(d.get(), "bin_edges", h.bin_edges, dctx);
    auto zeros = std::vector<int64_t>(static_cast<size_t>(h.layers), 0);
    write_array_attr<int64_t>(d.get(), "underflow", h.underflow.empty() ? zeros : h.underflow,
                              dctx);
    write_array_attr<int64_t>(d.get(), "overflow", h.overflow.empty() ? zeros : h.overflow, dctx);
  }
  for (const auto& [k, v] : r.params) write_f64_attr(g.get(), k, v, ctx);
  for (const auto& [k, v] : r.text) {
    LD_CHECK(is_run_text_attr(k), "{}: '{}' is not a string attribute of the results schema", ctx,
             k);
    write_str_attr(g.get(), k, v, ctx);
  }
}

void fsync_path(const std::string& p, bool dir) {
  int fd = ::open(p.c_str(), dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  LD_CHECK(fd >= 0, "cannot open {} to fsync: {}", p, std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  LD_CHECK(rc == 0, "fsync of {} failed: {}", p, std::strerror(err));
}

hid_t open_hdf5(const std::string& path, unsigned flags) {
  quiet_hdf5();
  std::error_code ec;
  LD_CHECK(fs::exists(path, ec), "results file {} does not exist", path);
  LD_CHECK(fs::is_regular_file(path, ec), "results file {} is not a regular file", path);
  LD_CHECK(H5Fis_hdf5(path.c_str()) > 0, "{} is not an HDF5 file", path);
  hid_t f = H5Fopen(path.c_str(), flags, H5P_DEFAULT);
  LD_CHECK(f >= 0, "cannot open HDF5 file {}", path);
  return f;
}

}  // namespace

// ---- RunKey ----

std::string RunKey::path() const {
  check_name(experiment, "experiment");
  LD_CHECK(experiment != "tables" && experiment != "text_tables",
           "experiment name '{}' is reserved for /{}", experiment, experiment);
  check_name(model, "model");
  check_name(method, "method");
  check_name(task, "task");
  LD_CHECK(seed >= 0, "seed {} < 0", seed);
  return fmt::format("/{}/{}/{}/{}/seed_{}", experiment, model, method, task, seed);
}

std::string iso8601_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- ResultsFile ----

std::vector<std::string> remove_stale_temporaries(const std::string& path) {
  // A writer works on <path>.tmp-<pid> and renames it over <path> at each commit, so a temporary
  // left behind holds nothing the results file lacks but the interrupted run itself.
  std::vector<std::string> removed;
  const fs::path p(path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = p.filename().string() + ".tmp-";
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 9 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or unknown
    std::error_code rm;
    if (fs::remove(it->path(), rm)) removed.push_back(it->path().string());
  }
  return removed;
}

namespace {
void clean_stale_temporaries(const std::string& path) {
  for (const std::string& f : remove_stale_temporaries(path))
    fmt::print(stderr, "results: removed {} (left by an interrupted run whose process is gone)\n",
               f);
}
}  // namespace

ResultsFile ResultsFile::create(const std::string& path, const RunMeta& meta) {
  quiet_hdf5();
  check_meta(meta);
  LD_CHECK(!path.empty(), "results: empty path");
  clean_stale_temporaries(path);
  std::error_code ec;
  LD_CHECK(!fs::is_directory(path, ec), "results path {} is a directory", path);
  fs::path parent = fs::path(path).parent_path();
  LD_CHECK(parent.empty() || fs::is_directory(parent, ec),
           "results: directory {} of {} does not exist", parent.string(), path);
  ResultsFile r;
  r.path_ = path;
  r.tmp_ = fmt::format("{}.tmp-{}", path, ::getpid());
  r.meta_ = meta;
  if (r.meta_.start_time.empty()) r.meta_.start_time = iso8601_now();
  hid_t f = H5Fcreate(r.tmp_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  LD_CHECK(f >= 0, "cannot create HDF5 file {}", r.tmp_);
  r.file_ = f;
  write_meta(f, r.tmp_, r.meta_);
  return r;
}

std::string resumed_provenance(const std::string& now, const std::string& old) {
  static const std::string kTag = " (resumed; earlier runs: ";
  // old: "<v>" or "<v> (resumed; earlier runs: <a>, <b>)": every version that wrote runs, once.
  // Files written before this was flattened nest the form inside itself: walk it recursively.
  std::vector<std::string> earlier;
  std::function<void(const std::string&)> collect = [&](const std::string& v) {
    const size_t tag = v.find(kTag);
    if (tag == std::string::npos || v.back() != ')') {
      if (!v.empty() && v != now && std::find(earlier.begin(), earlier.end(), v) == earlier.end())
        earlier.push_back(v);
      return;
    }
    // The earlier versions first (oldest first), then the one that resumed them.
    const std::string list = v.substr(tag + kTag.size(), v.size() - tag - kTag.size() - 1);
    // Split at ", " outside parentheses.
    int depth = 0;
    size_t b = 0;
    for (size_t i = 0; i <= list.size(); ++i) {
      if (i == list.size() || (depth == 0 && list.compare(i, 2, ", ") == 0)) {
        collect(list.substr(b, i - b));
        b = i + 2;
        ++i;
      } else if (list[i] == '(') {
        ++depth;
      } else if (list[i] == ')') {
        --depth;
      }
    }
    collect(v.substr(0, tag));
  };
  collect(old);
  if (earlier.empty()) return now;
  return fmt::format("{}{}{})", now, kTag, fmt::join(earlier, ", "));
}

nlohmann::json resume_fingerprint(const std::string& config_json,
                                  const std::set<std::string>& experiments) {
  nlohmann::json j = nlohmann::json::parse(config_json);
  if (!j.is_object() || !j.contains("experiments") || !j["experiments"].is_object()) return j;
  nlohmann::json out;
  if (j.contains("preset") && j["preset"].is_object()) {
    nlohmann::json p = j["preset"];
    // Free text, the file's own path and the thread count do not change what a run computes.
    for (const char* k : {"name", "description", "source_file", "expected_time", "threads"})
      p.erase(k);
    out["preset"] = p;
  }
  for (const char* k : {"loradrop", "baselines", "defaults"})
    if (j.contains(k)) out[k] = j[k];
  std::set<std::string> models;
  for (const auto& [name, e] : j["experiments"].items()) {
    if (!experiments.empty() && !experiments.count(name)) continue;
    nlohmann::json je = e;
    for (const char* k : {"description", "produces", "disabled_reason"}) je.erase(k);
    out["experiments"][name] = je;
    if (je.contains("models") && je["models"].is_array())
      for (const auto& m : je["models"])
        if (m.is_string()) models.insert(m.get<std::string>());
  }
  if (j.contains("models") && j["models"].is_object())
    for (const auto& [name, m] : j["models"].items())
      if (experiments.empty() || models.count(name)) out["models"][name] = m;
  return out;
}

ResultsFile ResultsFile::open_or_create(const std::string& path, const RunMeta& meta,
                                        bool require_same_config) {
  quiet_hdf5();
  std::error_code ec;
  if (!fs::exists(path, ec)) return create(path, meta);
  check_meta(meta);
  clean_stale_temporaries(path);
  auto problems = schema_problems(path);
  LD_CHECK(problems.empty(), "cannot resume from {}: not a valid results file ({}{})", path,
           problems.front(),
           problems.size() > 1 ? fmt::format(", and {} more", problems.size() - 1) : "");
  RunMeta old;
  {
    ResultsReader rd(path);
    old = rd.meta();
  }
  if (require_same_config) {
    std::set<std::string> exps;
    for (const RunKey& k : ResultsReader(path).runs()) exps.insert(k.experiment);
    auto a = resume_fingerprint(old.config_json, exps),
         b = resume_fingerprint(meta.config_json, exps);
    // Settings that a newer program added to the preset or experiment sections (absent from the
    // old file's config) cannot have changed the old runs: only the keys both know are compared.
    auto drop_new_keys = [](const nlohmann::json& from, nlohmann::json& to) {
      if (!from.is_object() || !to.is_object()) return;
      for (auto it = to.begin(); it != to.end();)
        it = from.contains(it.key()) ? std::next(it) : to.erase(it);
    };
    if (a.contains("preset") && b.contains("preset")) drop_new_keys(a["preset"], b["preset"]);
    // Runs are keyed by (model, method, task, seed): the lists of those, and the order of the
    // tasks, do not change a finished run; each run's resolved settings must match where both
    // configs have that model and task.
    if (a.contains("experiments") && b.contains("experiments")) {
      for (auto* c : {&a, &b})
        for (auto& [name, e] : (*c)["experiments"].items())
          for (const char* k : {"models", "methods", "tasks", "seeds"}) e.erase(k);
      for (auto& [name, e] : b["experiments"].items()) {
        if (!a["experiments"].contains(name)) continue;
        auto& ea = a["experiments"][name];
        drop_new_keys(ea, e);
        if (ea.contains("resolved") && e.contains("resolved")) {
          // Keep the (model, task) entries both have.
          auto prune = [&](nlohmann::json& x, const nlohmann::json& y) {
            for (auto it = x.begin(); it != x.end();) {
              if (!y.contains(it.key())) {
                it = x.erase(it);
                continue;
              }
              drop_new_keys(y[it.key()], it.value());
              ++it;
            }
          };
          prune(ea["resolved"], e["resolved"]);
          prune(e["resolved"], ea["resolved"]);
        }
      }
    }
    LD_CHECK(a == b,
             "cannot resume {}: its config differs from this run's config in what its runs depend "
             "on (write to a new path, or resume with the same config)",
             path);
  }
  ResultsFile r;
  r.path_ = path;
  r.tmp_ = fmt::format("{}.tmp-{}", path, ::getpid());
  fs::copy_file(path, r.tmp_, fs::copy_options::overwrite_existing, ec);
  LD_CHECK(!ec, "cannot copy {} to {}: {}", path, r.tmp_, ec.message());
  hid_t f = H5Fopen(r.tmp_.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) {
    fs::remove(r.tmp_, ec);
    LD_FAIL("cannot open HDF5 file {} (copy of {})", r.tmp_, path);
  }
  r.file_ = f;
  r.meta_ = meta;
  r.meta_.start_time = old.start_time;
  r.meta_.git_commit = resumed_provenance(meta.git_commit, old.git_commit);
  r.meta_.program_version = resumed_provenance(meta.program_version, old.program_version);
  write_meta(f, r.tmp_, r.meta_);
  return r;
}

ResultsFile::ResultsFile(ResultsFile&& o) noexcept
    : path_(std::move(o.path_)),
      tmp_(std::move(o.tmp_)),
      meta_(std::move(o.meta_)),
      file_(o.file_),
      committed_(o.committed_) {
  o.file_ = -1;
  o.tmp_.clear();
}

ResultsFile& ResultsFile::operator=(ResultsFile&& o) noexcept {
  if (this != &o) {
    close_discard();
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    meta_ = std::move(o.meta_);
    file_ = o.file_;
    committed_ = o.committed_;
    o.file_ = -1;
    o.tmp_.clear();
  }
  return *this;
}

ResultsFile::~ResultsFile() { close_discard(); }

void ResultsFile::close_discard() noexcept {
  if (file_ >= 0) H5Fclose(file_);
  file_ = -1;
  if (!committed_ && !tmp_.empty()) {
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
  tmp_.clear();
}

bool ResultsFile::has_run(const RunKey& key) const {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed)", path_);
  const std::string p = key.path();
  return link_exists(file_, p) && object_type(file_, p) == H5O_TYPE_GROUP;
}

std::vector<RunKey> ResultsFile::runs() const {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed)", path_);
  return list_runs(file_);
}

void ResultsFile::write_run(const RunRecord& rec, bool replace) {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed)", path_);
  check_record(rec);
  const std::string p = rec.key.path();
  if (has_run(rec.key)) {
    LD_CHECK(replace, "{}: run {} exists already", path_, p);
    check_status(H5Ldelete(file_, p.c_str(), H5P_DEFAULT), where(tmp_, p), "delete");
  }
  try {
    write_run_impl(file_, tmp_, rec);
  } catch (...) {
    // Leave no half-written run behind.
    if (link_exists(file_, p)) H5Ldelete(file_, p.c_str(), H5P_DEFAULT);
    throw;
  }
}

RunRecord ResultsFile::read_run(const RunKey& key) const {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed)", path_);
  return read_run_impl(file_, tmp_, key);
}

Table ResultsFile::write_table(const TableSpec& spec) {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed)", path_);
  std::vector<RunRecord> recs;
  for (const auto& k : list_runs(file_))
    if (k.experiment == spec.experiment && k.model == spec.model)
      recs.push_back(read_run_impl(file_, tmp_, k));
  Table t = assemble_table(recs, spec);
  write_table(t);
  return t;
}

void ResultsFile::write_table(const Table& table) {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed)", path_);
  write_table_impl(file_, tmp_, table);
}

void ResultsFile::write_text_table(const TextTable& table) {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed)", path_);
  write_text_table_impl(file_, tmp_, table);
}

void ResultsFile::commit() {
  LD_CHECK(file_ >= 0, "results file {} is closed (committed already?)", path_);
  if (meta_.end_time.empty()) meta_.end_time = iso8601_now();
  {
    H5 root(H5Gopen2(file_, "/", H5P_DEFAULT), H5Gclose);
    write_str_attr(root.get(), "end_time", meta_.end_time, tmp_ + ": /");
  }
  check_status(H5Fflush(file_, H5F_SCOPE_GLOBAL), tmp_, "flush");
  herr_t st = H5Fclose(file_);
  file_ = -1;
  check_status(st, tmp_, "close");
  fsync_path(tmp_, false);
  LD_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot rename {} to {}: {}", tmp_, path_,
           std::strerror(errno));
  committed_ = true;
  fs::path parent = fs::path(path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), true);
}

// ---- ResultsReader ----

ResultsReader::ResultsReader(const std::string& path)
    : path_(path), file_(open_hdf5(path, H5F_ACC_RDONLY)) {}

ResultsReader::ResultsReader(ResultsReader&& o) noexcept
    : path_(std::move(o.path_)), file_(o.file_) {
  o.file_ = -1;
}

ResultsReader& ResultsReader::operator=(ResultsReader&& o) noexcept {
  if (this != &o) {
    if (file_ >= 0) H5Fclose(file_);
    path_ = std::move(o.path_);
    file_ = o.file_;
    o.file_ = -1;
  }
  return *this;
}

ResultsReader::~ResultsReader() {
  if (file_ >= 0) H5Fclose(file_);
}

RunMeta ResultsReader::meta() const { return read_meta_impl(file_); }
std::vector<RunKey> ResultsReader::runs() const { return list_runs(file_); }
bool ResultsReader::has_run(const RunKey& key) const {
  const std::string p = key.path();
  return link_exists(file_, p) && object_type(file_, p) == H5O_TYPE_GROUP;
}
RunRecord ResultsReader::read_run(const RunKey& key) const {
  return read_run_impl(file_, path_, key);
}
std::vector<std::string> ResultsReader::table_names() const {
  if (!link_exists(file_, "/tables")) return {};
  return children(file_, "/tables");
}
Table ResultsReader::read_table(const std::string& name) const {
  return read_table_impl(file_, path_, name);
}

std::vector<std::string> ResultsReader::text_table_names() const {
  if (!link_exists(file_, "/text_tables")) return {};
  return children(file_, "/text_tables");
}
TextTable ResultsReader::read_text_table(const std::string& name) const {
  return read_text_table_impl(file_, path_, name);
}

// ---- tables ----

Table assemble_table(const std::vector<RunRecord>& runs, const TableSpec& spec) {
  check_name(spec.name, "table");
  Table t{spec.name, spec.title, spec.experiment, spec.model, {}};
  for (const auto& m : spec.methods)
    for (const auto& task : spec.tasks) {
      std::vector<const RunRecord*> cell;
      for (const auto& r : runs)
        if (r.key.experiment == spec.experiment && r.key.model == spec.model && r.key.method == m &&
            r.key.task == task)
          cell.push_back(&r);
      if (cell.empty()) continue;
      TableRow row;
      row.method = m;
      row.task = task;
      row.metric_name = cell.front()->metric_name;
      for (const auto* r : cell)
        LD_CHECK(r->metric_name == row.metric_name,
                 "table {}: runs of {}/{} report different metrics ({} vs {})", spec.name, m, task,
                 row.metric_name, r->metric_name);
      row.n = static_cast<int64_t>(cell.size());
      double s = 0, sp = 0;
      for (const auto* r : cell) s += r->metric, sp += static_cast<double>(r->trainable_params);
      row.mean = s / static_cast<double>(row.n);
      row.trainable_params = sp / static_cast<double>(row.n);
      double ss = 0;
      for (const auto* r : cell) ss += (r->metric - row.mean) * (r->metric - row.mean);
      row.std = row.n > 1 ? std::sqrt(ss / static_cast<double>(row.n - 1)) : 0.0;
      t.rows.push_back(row);
    }
  return t;
}

// ---- schema check ----

std::vector<std::string> schema_problems(const std::string& path) {
  quiet_hdf5();
  std::vector<std::string> P;
  auto bad = [&](const std::string& obj, const std::string& msg) {
    P.push_back(fmt::format("{}: {}: {}", path, obj, msg));
  };
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    bad("/", "no such file");
    return P;
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    bad("/", "not an HDF5 file");
    return P;
  }
  H5 f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) {
    bad("/", "cannot open");
    return P;
  }
  H5 root(H5Gopen2(f.get(), "/", H5P_DEFAULT), H5Gclose);
  for (const char* a : kRootAttrs) {
    auto v = read_str_attr(root.get(), a);
    if (!v) {
      bad("/", fmt::format("missing string attribute '{}'", a));
      continue;
    }
    std::string s(a);
    if ((s == "start_time" || s == "end_time") && !iso8601(*v))
      bad("/", fmt::format("attribute {} '{}' is not ISO-8601", a, *v));
    if (s == "config_json") {
      try {
        if (!nlohmann::json::parse(*v).is_object()) bad("/", "config_json is not a JSON object");
      } catch (const std::exception&) {
        bad("/", "config_json is not valid JSON");
      }
    }
    if (s == "schema_version" && *v != kSchemaVersion)
      bad("/", fmt::format("schema_version '{}', expected '{}'", *v, kSchemaVersion));
  }
  const hid_t F = f.get();
  auto is_group = [&](const std::string& p) { return object_type(F, p) == H5O_TYPE_GROUP; };
  auto check_ds = [&](const std::string& p, H5T_class_t cls, size_t size, size_t rank,
                      const char* what) -> std::optional<Layout> {
    if (!link_exists(F, p)) {
      bad(p, fmt::format("missing dataset ({})", what));
      return std::nullopt;
    }
    auto l = dataset_layout(F, p);
    if (!l) {
      bad(p, fmt::format("not a dataset (expected {})", what));
      return std::nullopt;
    }
    if (l->cls != cls || l->size != size || l->dims.size() != rank) {
      bad(p, fmt::format("expected {}, found {}", what, layout_str(*l)));
      return std::nullopt;
    }
    return l;
  };

  for (const auto& top : children(F, "/")) {
    const std::string tp = "/" + top;
    if (top == "tables" || top == "text_tables") {
      // Both hold compound datasets with title / experiment / model attributes: /tables numeric
      // rows with kTableFields, /text_tables 1-D rows of string fields.
      const bool text = top == "text_tables";
      const char* kind = text ? "a text table" : "a table";
      if (!is_group(tp)) {
        bad(tp, "must be a group");
        continue;
      }
      for (const auto& tn : children(F, tp)) {
        const std::string p = tp + "/" + tn;
        H5 d(H5Dopen2(F, p.c_str(), H5P_DEFAULT), H5Dclose);
        if (!d.ok()) {
          bad(p, fmt::format("{} must be a dataset", kind));
          continue;
        }
        H5 t(H5Dget_type(d.get()), H5Tclose);
        if (H5Tget_class(t.get()) != H5T_COMPOUND || (text && H5Tget_nmembers(t.get()) < 1)) {
          bad(p, fmt::format("{} must be a compound dataset{}", kind,
                             text ? " with at least one field" : ""));
          continue;
        }
        if (text) {
          for (int i = 0; i < H5Tget_nmembers(t.get()); ++i)
            if (H5Tget_member_class(t.get(), static_cast<unsigned>(i)) != H5T_STRING) {
              char* n = H5Tget_member_name(t.get(), static_cast<unsigned>(i));
              bad(p, fmt::format("field '{}' is not a string", n ? n : "?"));
              H5free_memory(n);
            }
          H5 sp(H5Dget_space(d.get()), H5Sclose);
          if (H5Sget_simple_extent_ndims(sp.get()) != 1) bad(p, "a text table must be 1-D");
        } else {
          for (const char* fld : kTableFields)
            if (H5Tget_member_index(t.get(), fld) < 0)
              bad(p, fmt::format("missing field '{}'", fld));
        }
        for (const char* a : {"title", "experiment", "model"})
          if (!read_str_attr(d.get(), a)) bad(p, fmt::format("missing string attribute '{}'", a));
      }
      continue;
    }
    if (!valid_name(top) || !is_group(tp)) {
      bad(tp, "an experiment must be a group with a valid name");
      continue;
    }
    for (const auto& m : children(F, tp)) {
      const std::string mp = tp + "/" + m;
      if (!is_group(mp)) {
        bad(mp, "a model must be a group");
        continue;
      }
      for (const auto& me : children(F, mp)) {
        const std::string mep = mp + "/" + me;
        if (!is_group(mep)) {
          bad(mep, "a method must be a group");
          continue;
        }
        for (const auto& t : children(F, mep)) {
          const std::string tkp = mep + "/" + t;
          if (!is_group(tkp)) {
            bad(tkp, "a task must be a group");
            continue;
          }
          for (const auto& s : children(F, tkp)) {
            const std::string sp = tkp + "/" + s;
            if (!parse_seed_name(s, nullptr) || !is_group(sp)) {
              bad(sp, "expected a group named seed_<k>");
              continue;
            }
            // One run.
            {
              H5 rg(H5Gopen2(F, sp.c_str(), H5P_DEFAULT), H5Gclose);
              for (const auto& a : attr_names(rg.get())) {
                const bool text = is_run_text_attr(a);
                auto l = attr_layout(rg.get(), a);
                if (text ? !read_str_attr(rg.get(), a)
                         : (!l || l->cls != H5T_FLOAT || l->size != 8 || !l->dims.empty()))
                  bad(sp, fmt::format("attribute '{}' must be {}", a,
                                      text ? "a scalar string" : "an f64 scalar"));
              }
            }
            if (check_ds(sp + "/metric", H5T_FLOAT, 8, 0, "f64 scalar")) {
              H5 d(H5Dopen2(F, (sp + "/metric").c_str(), H5P_DEFAULT), H5Dclose);
              if (!read_str_attr(d.get(), "name"))
                bad(sp + "/metric", "missing string attribute 'name'");
            }
            check_ds(sp + "/trainable_params", H5T_INTEGER, 8, 0, "i64 scalar");
            check_ds(sp + "/train_loss", H5T_FLOAT, 8, 1, "f64 [steps]");
            if (auto l = check_ds(sp + "/eval_history", H5T_FLOAT, 8, 2, "f64 [evals, 2]");
                l && l->dims[1] != 2)
              bad(sp + "/eval_history",
                  fmt::format("expected [evals, 2], found {}", layout_str(*l)));
            std::map<std::string, int64_t> layers;  // target -> L, consistent across groups
            auto note_layers = [&](const std::string& p, const std::string& target, int64_t L) {
              auto [it, fresh] = layers.emplace(target, L);
              if (!fresh && it->second != L)
                bad(p, fmt::format("{} layers, but another dataset of target '{}' has {}", L,
                                   target, it->second));
            };
            for (const auto& c : children(F, sp)) {
              const std::string cp = sp + "/" + c;
              if (c == "metric" || c == "trainable_params" || c == "train_loss" ||
                  c == "eval_history")
                continue;
              if (c != "importance" && c != "selected" && c != "hist") {
                bad(cp, "unknown object in a run group");
                continue;
              }
              if (!is_group(cp)) {
                bad(cp, "must be a group");
                continue;
              }
              for (const auto& tg : children(F, cp)) {
                const std::string dp = cp + "/" + tg;
                if (c == "importance") {
                  if (auto l = check_ds(dp, H5T_FLOAT, 8, 1, "f64 [L]"))
                    note_layers(dp, tg, static_cast<int64_t>(l->dims[0]));
                } else if (c == "selected") {
                  if (auto l = check_ds(dp, H5T_INTEGER, 1, 1, "u8 [L]")) {
                    note_layers(dp, tg, static_cast<int64_t>(l->dims[0]));
                    auto v = read_dataset<uint8_t>(F, dp, 1, H5T_INTEGER, path);
                    if (std::any_of(v.begin(), v.end(), [](uint8_t x) { return x > 1; }))
                      bad(dp, "values must be 0 or 1");
                  }
                } else if (auto l = check_ds(dp, H5T_INTEGER, 8, 2, "i64 [L, bins]")) {
                  note_layers(dp, tg, static_cast<int64_t>(l->dims[0]));
                  H5 d(H5Dopen2(F, dp.c_str(), H5P_DEFAULT), H5Dclose);
                  auto el = attr_layout(d.get(), "bin_edges");
                  if (!el || el->cls != H5T_FLOAT || el->dims.size() != 1 ||
                      el->dims[0] != l->dims[1] + 1) {
                    bad(dp, fmt::format("attribute bin_edges must be f64 [bins + 1 = {}]",
                                        l->dims[1] + 1));
                  } else {
                    auto e = read_array_attr<double>(d.get(), "bin_edges", dp);
                    for (size_t i = 1; i < e.size(); ++i)
                      if (!(e[i] > e[i - 1])) {
                        bad(dp, "bin_edges are not increasing");
                        break;
                      }
                  }
                  for (const char* a : {"underflow", "overflow"}) {
                    auto al = attr_layout(d.get(), a);
                    if (!al || al->cls != H5T_INTEGER || al->dims.size() != 1 ||
                        al->dims[0] != l->dims[0])
                      bad(dp, fmt::format("attribute {} must be i64 [L = {}]", a, l->dims[0]));
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return P;
}

void validate_schema(const std::string& path) {
  auto p = schema_problems(path);
  if (p.empty()) return;
  size_t shown = std::min<size_t>(p.size(), 20);
  std::vector<std::string> head(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(shown));
  LD_FAIL("{} violates the results schema ({} problem{}):\n  {}{}", path, p.size(),
          p.size() == 1 ? "" : "s", fmt::join(head, "\n  "), p.size() > shown ? "\n  ..." : "");
}

// ---- synthetic sample ----

void write_sample_results(const std::string& path, uint64_t seed) {
  RunMeta meta;
  meta.program_version = program_version();
  meta.git_commit = build_git_commit();
  meta.config_json = nlohmann::json{
      {"preset", "sample"},
      {"note", "synthetic data for testing tools/plot.py"},
      {"seed", seed}}.dump();
  meta.device = "synthetic (no model was run)";
  ResultsFile f = ResultsFile::create(path, meta);
  std::mt19937_64 rng(seed);
  auto unif = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  auto gauss = [&] { return std::sqrt(-2 * std::log(unif())) * std::cos(2 * M_PI * unif()); };
  const int64_t L = 6, bins = 24, examples = 200;
  std::vector<double> edges(bins + 1);
  for (int64_t i = 0; i <= bins; ++i) edges[i] = 1e-6 * std::pow(1e8, double(i) / double(bins));
  const std::vector<std::string> targets = {"query", "value"};

  // Synthetic importance profile: later layers matter more for `value`, a bump for `query`.
  auto run = [&](const RunKey& key, const std::string& metric_name, double base_metric,
                 bool with_importance, bool drop, double scale) {
    RunRecord r;
    r.key = key;
    r.metric_name = metric_name;
    r.metric = base_metric + 0.01 * gauss();
    r.trainable_params = key.method == "full" ? 1000000 : drop ? 9216 : 18432;
    for (int s = 0; s < 40; ++s)
      r.train_loss.push_back(0.7 * std::exp(-s / 15.0) + 0.2 + 0.02 * gauss());
    for (int s = 10; s <= 40; s += 10) r.eval_history.push_back({double(s), r.metric - 0.1 / s});
    if (with_importance)
      for (size_t ti = 0; ti < targets.size(); ++ti) {
        const auto& t = targets[ti];
        LayerHistograms h;
        h.bin_edges = edges;
        h.layers = L;
        h.counts.assign(L * bins, 0);
        h.underflow.assign(L, 0);
        h.overflow.assign(L, 0);
        std::vector<double> g(L);
        for (int64_t l = 0; l < L; ++l) {
          double center = ti == 0 ? -1.0 - 1.5 * std::abs(double(l) - 2.0) : -3.0 + 0.8 * double(l);
          center += std::log10(scale);
          double sum = 0;
          for (int64_t e = 0; e < examples; ++e) {
            double v = std::pow(10.0, center + 0.5 * gauss());
            sum += v;
            auto it = std::upper_bound(edges.begin(), edges.end(), v);
            if (it == edges.begin())
              ++h.underflow[l];
            else if (it == edges.end())
              ++h.overflow[l];
            else
              ++h.counts[l * bins + (it - edges.begin() - 1)];
          }
          g[l] = sum / examples;
        }
        r.importance[t] = g;
        r.hist[t] = h;
        if (drop) {
          // Keep layers by descending importance until 90% of the total (the paper's rule).
          std::vector<int64_t> order(L);
          for (int64_t l = 0; l < L; ++l) order[l] = l;
          std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return g[a] > g[b]; });
          double tot = 0, cum = 0;
          for (double x : g) tot += x;
          std::vector<bool> keep(L, false);
          for (int64_t l : order) {
            keep[l] = true;
            cum += g[l] / tot;
            if (cum >= 0.9) break;
          }
          r.selected[t] = keep;
        }
      }
    f.write_run(r);
  };
  const std::vector<std::pair<std::string, std::string>> tasks = {{"rte", "accuracy"},
                                                                  {"sts-b", "pearson"}};
  for (const auto& [task, metric] : tasks)
    for (int64_t s = 0; s < 3; ++s) {
      run({"main", "tiny", "full", task, s}, metric, 0.80, false, false, 1.0);
      run({"main", "tiny", "lora", task, s}, metric, 0.78, true, false, 1.0);
      run({"main", "tiny", "loradrop", task, s}, metric, 0.77, true, true, 0.5);
    }
  std::vector<std::string> sp_methods;
  for (int i = 1; i <= 10; ++i) {
    double p = i / 10.0;
    std::string m = fmt::format("loradrop_p{:.2f}", p);
    sp_methods.push_back(m);
    run({"sample_proportion", "tiny", m, "rte", 0}, "accuracy", 0.75 + 0.002 * i, true, true,
        1.0 + 0.05 * i);
    RunRecord r = f.read_run({"sample_proportion", "tiny", m, "rte", 0});
    r.params["sample_proportion"] = p;
    r.hist.clear();  // the sensitivity experiment keeps importance only
    f.write_run(r, /*replace=*/true);
  }
  // Threshold sweep: LoRA and LoRA-drop at seven T; retained share grows with T.
  const std::vector<double> Ts = {0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0};
  std::vector<std::string> ts_methods = {"lora"};
  run({"threshold_sweep", "tiny", "lora", "rte", 0}, "accuracy", 0.78, false, false, 1.0);
  for (double T : Ts) {
    const std::string m = fmt::format("loradrop_t{:.2f}", T);
    ts_methods.push_back(m);
    run({"threshold_sweep", "tiny", m, "rte", 0}, "accuracy", 0.72 + 0.06 * T, true, true, 1.0);
    RunRecord r = f.read_run({"threshold_sweep", "tiny", m, "rte", 0});
    const int64_t kept = std::max<int64_t>(1, std::llround(T * T * L));
    for (auto& [t, sel] : r.selected)
      for (int64_t l = 0; l < L; ++l) sel[l] = l >= L - kept;
    r.trainable_params = 1536 * (2 * kept + (kept < L ? 2 : 0));
    r.params["threshold"] = T;
    r.params["lora_params"] = 1536.0 * 2 * L;
    r.hist.clear();
    f.write_run(r, /*replace=*/true);
  }
  // Efficiency: every method, with timings and peak memory.
  const std::vector<std::string> eff_methods = {"full", "lora", "sparse",
                                                "vera", "tied", "loradrop"};
  for (size_t i = 0; i < eff_methods.size(); ++i) {
    const std::string& m = eff_methods[i];
    RunKey k{"efficiency", "tiny", m, "rte", 0};
    run(k, "accuracy", 0.75 + 0.01 * static_cast<double>(i), false, false, 1.0);
    RunRecord r = f.read_run(k);
    const double full = m == "full" ? 1.0 : 0.0;
    r.trainable_params = m == "full"       ? 1000000
                         : m == "vera"     ? 3100
                         : m == "loradrop" ? 9216
                                           : 18432;
    r.params["finetune_steps"] = 40;
    r.params["seconds_per_step"] = 0.05 + 0.04 * full + 0.002 * static_cast<double>(i);
    r.params["finetune_seconds"] = 40 * r.params["seconds_per_step"];
    r.params["peak_memory_bytes"] = (40.0 + 30.0 * full + static_cast<double>(i)) * (1 << 20);
    if (m == "loradrop") {
      r.params["sample_seconds"] = 0.3 * r.params["finetune_seconds"];
      r.params["importance_seconds"] = 0.02 * r.params["finetune_seconds"];
      r.params["lora_params"] = 18432;
    }
    r.params["seconds"] = r.params["finetune_seconds"] + 0.5;
    if (m == "loradrop")
      r.params["seconds"] += r.params["sample_seconds"] + r.params["importance_seconds"];
    f.write_run(r, /*replace=*/true);
  }
  // Importance source: a separate pass vs during training (importance only, metric NaN).
  for (const auto& [task, metric] : tasks)
    for (int during = 0; during < 2; ++during) {
      RunKey k{"importance_source", "tiny", during ? "loradrop_during" : "loradrop_pass", task, 0};
      run(k, metric, 0.0, true, true, during ? 1.3 : 1.0);
      RunRecord r = f.read_run(k);
      r.metric = std::numeric_limits<double>::quiet_NaN();
      r.train_loss.clear();
      r.eval_history.clear();
      r.hist.clear();
      r.params["importance_during"] = during;
      f.write_run(r, /*replace=*/true);
    }
  // A hyperparameter table (text).
  TextTable hp{"hyperparameters_tiny",
               "Synthetic hyperparameter table (sample data)",
               "hyperparameters",
               "tiny",
               {"model", "task", "key", "value", "set_in", "source"},
               {}};
  for (const auto& [task, metric] : tasks) {
    hp.rows.push_back({"tiny", task, "lr", task == "rte" ? "5e-4" : "4e-4",
                       "[model.tiny.task." + task + "]", "sample scripts"});
    hp.rows.push_back({"tiny", task, "epochs", "3", "[defaults]", "sample defaults"});
    hp.rows.push_back({"tiny", task, "lora_r", "8", "[defaults]", "paper"});
    hp.rows.push_back({"tiny", task, "threshold", "0.9", "[loradrop]", "paper"});
    hp.rows.push_back({"tiny", task, "max_steps", "not recorded", "-", ""});
  }
  f.write_text_table(hp);
  f.write_table(TableSpec{"threshold_sweep",
                          "Synthetic threshold table (sample data)",
                          "threshold_sweep",
                          "tiny",
                          ts_methods,
                          {"rte"}});
  f.write_table(TableSpec{"efficiency",
                          "Synthetic efficiency table (sample data)",
                          "efficiency",
                          "tiny",
                          eff_methods,
                          {"rte"}});
  f.write_table(TableSpec{"main",
                          "Synthetic main table (sample data)",
                          "main",
                          "tiny",
                          {"full", "lora", "loradrop"},
                          {"rte", "sts-b"}});
  f.write_table(TableSpec{"sample_proportion",
                          "Synthetic sample-proportion table (sample data)",
                          "sample_proportion",
                          "tiny",
                          sp_methods,
                          {"rte"}});
  f.commit();
}

}  // namespace ld::repro
