// Dynamic padding, collation into ld::Tensor batches, and seeded batch planning.
#include "data/batching.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "data/sampling.h"

namespace ld::data {

std::string nlg_prompt(const std::string& task, const std::string& source) {
  if (task == "e2e" || task == "dart") return "Input: " + source + "\nOutput:";
  if (task == "dialogsum") return "Summarize the dialogue.\nDialogue:\n" + source + "\nSummary:";
  LD_FAIL("nlg_prompt: unknown NLG task '{}' (e2e, dart, dialogsum)", task);
}

std::string nlg_target(const std::string& reference) { return " " + reference; }

namespace {

// Row layout shared by every collate: each row's ids (and parallel types/labels) padded to T.
struct Rows {
  std::vector<const std::vector<int64_t>*> ids;
  std::vector<const std::vector<int64_t>*> types;  // may hold nullptr
  std::vector<std::vector<int64_t>> lm_labels;     // LM only
  std::vector<std::vector<int64_t>> concat;        // LM only: prompt ++ target storage
};

int64_t batch_length(const Rows& rows, const PadOptions& opt) {
  int64_t t = 0;
  for (const auto* v : rows.ids) {
    const auto len = static_cast<int64_t>(v->size());
    LD_CHECK(opt.max_length <= 0 || len <= opt.max_length,
             "sequence of {} tokens exceeds max_length {}", len, opt.max_length);
    t = std::max(t, len);
  }
  LD_CHECK(t > 0, "batch of empty sequences");
  const int64_t m = std::max<int64_t>(opt.pad_to_multiple_of, 1);
  return (t + m - 1) / m * m;
}

Batch pad(const Rows& rows, const std::vector<size_t>& indices, const PadOptions& opt, bool lm) {
  LD_CHECK(!indices.empty(), "collate: empty batch");
  const auto b = static_cast<int64_t>(rows.ids.size());
  const int64_t t = batch_length(rows, opt);
  std::vector<int64_t> ids(b * t, opt.pad_id), mask(b * t, 0), types(b * t, 0);
  std::vector<int64_t> labels(lm ? b * t : 0, kIgnoreIndex);
  Batch out;
  for (int64_t r = 0; r < b; ++r) {
    const std::vector<int64_t>& v = *rows.ids[r];
    const auto len = static_cast<int64_t>(v.size());
    const int64_t start = opt.side == PadSide::kRight ? 0 : t - len;
    for (int64_t j = 0; j < len; ++j) {
      ids[r * t + start + j] = v[j];
      mask[r * t + start + j] = 1;
      if (rows.types[r]) types[r * t + start + j] = (*rows.types[r])[j];
      if (lm) labels[r * t + start + j] = rows.lm_labels[r][j];
    }
    out.num_tokens += len;
  }
  out.input_ids = ld::Tensor::from_vector(ids, {b, t});
  out.attention_mask = ld::Tensor::from_vector(mask, {b, t});
  out.token_type_ids = ld::Tensor::from_vector(types, {b, t});
  if (lm) out.labels = ld::Tensor::from_vector(labels, {b, t});
  out.indices = indices;
  return out;
}

template <class Ex>
const Ex& pick(const std::vector<Ex>& v, size_t i, const char* what) {
  LD_CHECK(i < v.size(), "{}: index {} out of range ({} examples)", what, i, v.size());
  return v[i];
}

Rows encoded_rows(const std::vector<Encoded>& examples, const std::vector<size_t>& indices) {
  Rows rows;
  for (size_t i : indices) {
    const Encoded& e = pick(examples, i, "collate");
    LD_CHECK(e.type_ids.empty() || e.type_ids.size() == e.ids.size(),
             "collate: example {} has {} ids but {} token types", i, e.ids.size(),
             e.type_ids.size());
    rows.ids.push_back(&e.ids);
    rows.types.push_back(e.type_ids.empty() ? nullptr : &e.type_ids);
  }
  return rows;
}

}  // namespace

Batch collate_classification(const std::vector<Encoded>& examples,
                             const std::vector<size_t>& indices, const std::vector<int64_t>& labels,
                             const PadOptions& opt) {
  LD_CHECK(labels.size() == examples.size(), "collate: {} labels for {} examples", labels.size(),
           examples.size());
  Batch b = pad(encoded_rows(examples, indices), indices, opt, false);
  std::vector<int64_t> l;
  for (size_t i : indices) l.push_back(labels[i]);
  b.labels = ld::Tensor::from_vector(l, {static_cast<int64_t>(l.size())});
  return b;
}

Batch collate_regression(const std::vector<Encoded>& examples, const std::vector<size_t>& indices,
                         const std::vector<double>& targets, const PadOptions& opt) {
  LD_CHECK(targets.size() == examples.size(), "collate: {} targets for {} examples", targets.size(),
           examples.size());
  Batch b = pad(encoded_rows(examples, indices), indices, opt, false);
  std::vector<float> l;
  for (size_t i : indices) l.push_back(static_cast<float>(targets[i]));
  b.labels = ld::Tensor::from_vector(l, {static_cast<int64_t>(l.size())});
  return b;
}

Batch collate_lm(const std::vector<LmPair>& pairs, const std::vector<size_t>& indices,
                 const PadOptions& opt) {
  Rows rows;
  rows.concat.reserve(indices.size());
  for (size_t i : indices) {
    const LmPair& p = pick(pairs, i, "collate_lm");
    LD_CHECK(!p.target.empty(), "collate_lm: example {} has an empty target", i);
    std::vector<int64_t> ids = p.prompt;
    ids.insert(ids.end(), p.target.begin(), p.target.end());
    std::vector<int64_t> lab(p.prompt.size(), kIgnoreIndex);
    lab.insert(lab.end(), p.target.begin(), p.target.end());
    rows.concat.push_back(std::move(ids));
    rows.lm_labels.push_back(std::move(lab));
  }
  for (const auto& c : rows.concat) {
    rows.ids.push_back(&c);
    rows.types.push_back(nullptr);
  }
  return pad(rows, indices, opt, true);
}

Batch collate_generation(const std::vector<std::vector<int64_t>>& prompts,
                         const std::vector<size_t>& indices, const PadOptions& opt) {
  Rows rows;
  for (size_t i : indices) {
    rows.ids.push_back(&pick(prompts, i, "collate_generation"));
    rows.types.push_back(nullptr);
  }
  return pad(rows, indices, opt, false);
}

std::vector<std::vector<size_t>> plan_batches(const std::vector<int64_t>& lengths,
                                              const BatchPlanOptions& opt, uint64_t epoch) {
  LD_CHECK(opt.batch_size > 0, "plan_batches: batch_size must be > 0");
  const size_t n = lengths.size();
  std::mt19937_64 rng(opt.seed + epoch * 0x9E3779B97F4A7C15ull);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (opt.shuffle) shuffle_in_place(order, rng);
  if (opt.bucket_by_length) {
    const size_t window = opt.batch_size * std::max<size_t>(opt.bucket_window, 1);
    for (size_t s = 0; s < n; s += window) {
      auto b = order.begin() + static_cast<std::ptrdiff_t>(s);
      auto e = order.begin() + static_cast<std::ptrdiff_t>(std::min(n, s + window));
      std::stable_sort(b, e, [&](size_t x, size_t y) { return lengths[x] < lengths[y]; });
    }
  }
  std::vector<std::vector<size_t>> batches;
  for (size_t s = 0; s < n; s += opt.batch_size) {
    const size_t e = std::min(n, s + opt.batch_size);
    if (opt.drop_last && e - s < opt.batch_size) break;
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(s),
                         order.begin() + static_cast<std::ptrdiff_t>(e));
  }
  if (opt.bucket_by_length && opt.shuffle) shuffle_in_place(batches, rng);
  return batches;
}

}  // namespace ld::data
