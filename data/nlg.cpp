// E2E, DART and DialogSum readers (formats in nlg.h). Each parses into locals and returns only a
// complete dataset; any malformed input throws ld::Error naming the file and line.
#include "data/nlg.h"

#include <unordered_map>

#include "core/error.h"
#include "data/text_io.h"

namespace ld::data {

std::vector<std::pair<size_t, size_t>> NlgDataset::pairs() const {
  std::vector<std::pair<size_t, size_t>> p;
  for (size_t i = 0; i < examples.size(); ++i)
    for (size_t r = 0; r < examples[i].references.size(); ++r) p.emplace_back(i, r);
  return p;
}

std::vector<std::vector<std::string>> NlgDataset::references() const {
  std::vector<std::vector<std::string>> refs;
  refs.reserve(examples.size());
  for (const auto& e : examples) refs.push_back(e.references);
  return refs;
}

size_t NlgDataset::num_references() const {
  size_t n = 0;
  for (const auto& e : examples) n += e.references.size();
  return n;
}

namespace {

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

std::string_view check_text(std::string_view text, const std::string& name) {
  LD_CHECK(!text.empty(), "{}:1: empty file", name);
  check_utf8(text, name);
  return strip_bom(text);
}

}  // namespace

std::string linearize_e2e_mr(std::string_view mr) {
  std::string out;
  size_t i = 0;
  while (i < mr.size()) {
    while (i < mr.size() && (mr[i] == ' ' || mr[i] == ',')) ++i;
    if (i >= mr.size()) break;
    size_t lb = mr.find('[', i);
    LD_CHECK(lb != std::string_view::npos, "malformed E2E MR (no '[' after '{}'): {}", mr.substr(i),
             mr);
    size_t rb = mr.find(']', lb);
    LD_CHECK(rb != std::string_view::npos, "malformed E2E MR (unclosed '['): {}", mr);
    std::string key = trim(mr.substr(i, lb - i));
    LD_CHECK(!key.empty(), "malformed E2E MR (empty attribute name): {}", mr);
    if (!out.empty()) out += " | ";
    out += key + " : " + trim(mr.substr(lb + 1, rb - lb - 1));
    i = rb + 1;
    LD_CHECK(i >= mr.size() || mr[i] == ',', "malformed E2E MR (expected ',' after ']'): {}", mr);
  }
  LD_CHECK(!out.empty(), "empty E2E MR");
  return out;
}

NlgDataset read_e2e(const std::string& path) { return parse_e2e(read_file(path), path); }

NlgDataset parse_e2e(std::string_view text, const std::string& name) {
  const std::vector<CsvRecord> recs = parse_csv(check_text(text, name), name);
  LD_CHECK(!recs.empty(), "{}:1: no CSV records", name);
  const CsvRecord& header = recs[0];
  int col_mr = -1, col_ref = -1;
  for (size_t c = 0; c < header.fields.size(); ++c) {
    std::string h = lower_ascii(trim(header.fields[c]));
    if (h == "mr") col_mr = static_cast<int>(c);
    if (h == "ref") col_ref = static_cast<int>(c);
  }
  LD_CHECK(col_mr >= 0, "{}:{}: header has no 'mr' column", name, header.line);
  LD_CHECK(recs.size() > 1, "{}:{}: header but no records", name, header.line);

  NlgDataset ds;
  ds.task = "e2e";
  ds.path = name;
  std::vector<NlgExample> examples;
  std::unordered_map<std::string, size_t> index;
  for (size_t r = 1; r < recs.size(); ++r) {
    const CsvRecord& rec = recs[r];
    LD_CHECK(rec.fields.size() == header.fields.size(), "{}:{}: expected {} CSV fields, found {}",
             name, rec.line, header.fields.size(), rec.fields.size());
    const std::string& mr = rec.fields[col_mr];
    auto it = index.find(mr);
    if (it == index.end()) {
      NlgExample e;
      e.id = std::to_string(examples.size());
      e.raw = mr;
      try {
        e.source = linearize_e2e_mr(mr);
      } catch (const Error& err) {
        LD_FAIL("{}:{}: {}", name, rec.line, err.what());
      }
      e.line = rec.line;
      it = index.emplace(mr, examples.size()).first;
      examples.push_back(std::move(e));
    }
    if (col_ref >= 0) {
      LD_CHECK(!trim(rec.fields[col_ref]).empty(), "{}:{}: empty reference", name, rec.line);
      examples[it->second].references.push_back(rec.fields[col_ref]);
    }
  }
  ds.examples = std::move(examples);
  return ds;
}

NlgDataset read_dart(const std::string& path) { return parse_dart(read_file(path), path); }

NlgDataset parse_dart(std::string_view text, const std::string& name) {
  text = check_text(text, name);
  const nlohmann::json doc = parse_json(text, name);
  LD_CHECK(doc.is_array(), "{}:1: DART file must hold a JSON array, found {}", name,
           doc.type_name());
  LD_CHECK(!doc.empty(), "{}:1: DART file holds no entries", name);
  const std::vector<size_t> offs = top_level_array_offsets(text);
  LD_CHECK(offs.size() == doc.size(), "{}: found {} array elements, parser found {}", name,
           offs.size(), doc.size());
  const std::vector<int64_t> entry_lines = lines_of_offsets(text, offs);

  NlgDataset ds;
  ds.task = "dart";
  ds.path = name;
  std::vector<NlgExample> examples;
  examples.reserve(doc.size());
  for (size_t k = 0; k < doc.size(); ++k) {
    const nlohmann::json& entry = doc[k];
    const int64_t line = entry_lines[k];
    auto bad = [&](const std::string& what) {
      LD_FAIL("{}:{}: DART entry {}: {}", name, line, k, what);
    };
    if (!entry.is_object()) bad("not a JSON object");
    auto ts = entry.find("tripleset");
    if (ts == entry.end() || !ts->is_array() || ts->empty())
      bad("'tripleset' must be a non-empty list");
    NlgExample e;
    e.id = std::to_string(k);
    e.line = line;
    for (const auto& triple : *ts) {
      if (!triple.is_array() || triple.size() != 3) bad("each triple must be a list of 3 strings");
      for (const auto& x : triple)
        if (!x.is_string()) bad("each triple must be a list of 3 strings");
      if (!e.source.empty()) e.source += " | ";
      e.source += triple[0].get<std::string>() + " : " + triple[1].get<std::string>() + " : " +
                  triple[2].get<std::string>();
    }
    e.raw = e.source;
    auto ann = entry.find("annotations");
    if (ann == entry.end() || !ann->is_array()) bad("'annotations' must be a list");
    for (const auto& a : *ann) {
      if (!a.is_object()) bad("each annotation must be an object");
      auto t = a.find("text");
      if (t == a.end() || !t->is_string()) bad("annotation without a string 'text'");
      e.references.push_back(t->get<std::string>());
    }
    examples.push_back(std::move(e));
  }
  ds.examples = std::move(examples);
  return ds;
}

NlgDataset read_dialogsum(const std::string& path) {
  return parse_dialogsum(read_file(path), path);
}

NlgDataset parse_dialogsum(std::string_view text, const std::string& name) {
  text = check_text(text, name);
  const std::vector<JsonLine> lines = parse_jsonl(text, name);
  LD_CHECK(!lines.empty(), "{}:1: no JSON lines", name);
  NlgDataset ds;
  ds.task = "dialogsum";
  ds.path = name;
  std::vector<NlgExample> examples;
  examples.reserve(lines.size());
  for (const JsonLine& jl : lines) {
    const nlohmann::json& o = jl.value;
    LD_CHECK(o.is_object(), "{}:{}: expected a JSON object, found {}", name, jl.line,
             o.type_name());
    auto str = [&](const char* key, bool required) -> const nlohmann::json* {
      auto it = o.find(key);
      if (it == o.end()) {
        LD_CHECK(!required, "{}:{}: missing key '{}'", name, jl.line, key);
        return nullptr;
      }
      LD_CHECK(it->is_string(), "{}:{}: '{}' must be a string, found {}", name, jl.line, key,
               it->type_name());
      return &*it;
    };
    NlgExample e;
    e.line = jl.line;
    e.source = str("dialogue", true)->get<std::string>();
    e.raw = e.source;
    const nlohmann::json* fname = str("fname", false);
    e.id = fname ? fname->get<std::string>() : std::to_string(examples.size());
    if (const nlohmann::json* s = str("summary", false))
      e.references.push_back(s->get<std::string>());
    for (int k = 1;; ++k) {
      const std::string key = "summary" + std::to_string(k);
      const nlohmann::json* s = str(key.c_str(), false);
      if (!s) break;
      e.references.push_back(s->get<std::string>());
    }
    examples.push_back(std::move(e));
  }
  ds.examples = std::move(examples);
  return ds;
}

}  // namespace ld::data
