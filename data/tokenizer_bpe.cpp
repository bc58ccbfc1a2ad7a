// Byte-level BPE as GPT-2/RoBERTa (Hugging Face ByteLevel pre-tokenizer + BPE model): the GPT-2
// pre-tokenisation regex written out by hand over Unicode categories, byte-to-unicode map, ranked
// merges.
#include <nlohmann/json.hpp>

#include <climits>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "data/tokenizer.h"
#include "data/tokenizer_io.h"
#include "data/unicode.h"

namespace ld::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the rest to U+0100...
struct ByteMap {
  char32_t to_unicode[256];
  std::unordered_map<char32_t, uint8_t> to_byte;
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep =
          (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_unicode[b] = keep ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_byte[to_unicode[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// Raw bytes of a vocabulary token written in the byte-to-unicode alphabet; nullopt if the token
// has a character outside it (then BPE can never produce it, e.g. an added token).
std::optional<std::string> token_bytes(std::string_view token) {
  std::string out;
  const auto& m = byte_map().to_byte;
  for (size_t i = 0; i < token.size();) {
    const char32_t c = unicode::next_utf8(token, i);
    auto it = m.find(c);
    if (it == m.end()) return std::nullopt;
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

// Character classes of the GPT-2 pattern.
enum : uint8_t { kLetter, kNumber, kSpace, kOther };

uint8_t char_class(char32_t c) {
  if (c < 128) {
    if ((c | 32) >= 'a' && (c | 32) <= 'z') return kLetter;
    if (c >= '0' && c <= '9') return kNumber;
    if (c == ' ' || (c >= 9 && c <= 13)) return kSpace;
    return kOther;
  }
  const unicode::Category k = unicode::category(c);
  if (unicode::is_letter(k)) return kLetter;
  if (unicode::is_number(k)) return kNumber;
  if (unicode::is_white_space(c)) return kSpace;
  return kOther;
}

struct MergeInfo {
  int32_t rank;
  int32_t id;
};

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class BpeTokenizer final : public Tokenizer {
 public:
  struct Source {
    std::string vocab_name, merges_name;  // for error messages
  };

  BpeTokenizer(const std::vector<std::pair<std::string, int32_t>>& vocab,
               const std::vector<std::pair<std::string, size_t>>& merges, const Source& src,
               bool add_prefix_space)
      : add_prefix_space_(add_prefix_space) {
    LD_CHECK(!vocab.empty(), "{}: empty vocabulary", src.vocab_name);
    int32_t max_id = -1;
    for (const auto& [tok, id] : vocab) {
      LD_CHECK(id >= 0, "{}: token {:?} has negative id {}", src.vocab_name, tok, id);
      max_id = std::max(max_id, id);
    }
    // Ids are dense in real vocabularies; a far larger id is a corrupt file (and would make us
    // allocate a huge table).
    LD_CHECK(static_cast<size_t>(max_id) < 2 * vocab.size() + 65536,
             "{}: id {} is far beyond the vocabulary size {}", src.vocab_name, max_id,
             vocab.size());
    id_token_.resize(max_id + 1);
    id_bytes_.resize(max_id + 1);
    vocab_.reserve(vocab.size());
    std::fill(std::begin(byte_id_), std::end(byte_id_), -1);
    for (const auto& [tok, id] : vocab) {
      vocab_.emplace(tok, id);
      id_token_[id] = tok;
      if (auto b = token_bytes(tok)) {
        id_bytes_[id] = *b;
        if (b->size() == 1) byte_id_[static_cast<uint8_t>((*b)[0])] = id;
      } else {
        id_bytes_[id] = tok;
      }
    }
    merges_.reserve(merges.size() * 2);
    int32_t rank = 0;
    for (const auto& [line, line_no] : merges) {
      const size_t sp = line.find(' ');
      LD_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < line.size() &&
                   line.find(' ', sp + 1) == std::string::npos,
               "{}:{}: malformed merge {:?} (expected two tokens separated by one space)",
               src.merges_name, line_no, line);
      const std::string a = line.substr(0, sp), b = line.substr(sp + 1);
      auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
      LD_CHECK(ia != vocab_.end(), "{}:{}: merge token {:?} is not in the vocabulary {}",
               src.merges_name, line_no, a, src.vocab_name);
      LD_CHECK(ib != vocab_.end(), "{}:{}: merge token {:?} is not in the vocabulary {}",
               src.merges_name, line_no, b, src.vocab_name);
      LD_CHECK(iab != vocab_.end(), "{}:{}: merged token {:?} is not in the vocabulary {}",
               src.merges_name, line_no, a + b, src.vocab_name);
      // A repeated pair keeps its first (best) rank, as HF's HashMap built in order would not:
      // HF overwrites, but GPT-2 files have no duplicates; keep the first for determinism.
      merges_.try_emplace(pair_key(ia->second, ib->second), MergeInfo{rank, iab->second});
      ++rank;
    }
  }

  std::string_view kind() const override { return "bpe"; }
  int32_t vocab_size() const override { return static_cast<int32_t>(id_token_.size()); }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    auto it = vocab_.find(std::string(token));
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int32_t id) const override {
    LD_CHECK(id >= 0 && id < vocab_size(), "token id {} out of range [0, {})", id, vocab_size());
    return id_token_[id];
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string bytes;
    for (int32_t id : ids) {
      LD_CHECK(id >= 0 && id < vocab_size(), "token id {} out of range [0, {})", id, vocab_size());
      if (skip_special_tokens && is_special(id)) continue;
      bytes += id_bytes_[id];
    }
    return unicode::utf8_lossy(bytes);
  }

  void configure_roberta(const std::string& vocab_name) {
    auto need = [&](const char* t) {
      auto id = token_to_id(t);
      LD_CHECK(id.has_value(), "{}: RoBERTa special token {} is not in the vocabulary", vocab_name,
               t);
      return *id;
    };
    special_.bos = special_.cls = need("<s>");
    special_.eos = special_.sep = need("</s>");
    special_.unk = token_to_id("<unk>").value_or(-1);
    special_.pad = token_to_id("<pad>").value_or(-1);
    special_.mask = token_to_id("<mask>").value_or(-1);
    template_.a_prefix = {special_.cls};
    template_.a_suffix = {special_.sep};
    template_.b_prefix = {special_.sep};
    template_.b_suffix = {special_.sep};
    template_.b_type = 0;  // RoBERTa has no segment embedding: HF gives all zeros
    std::vector<AddedToken> added;
    for (const char* t : {"<s>", "<pad>", "</s>", "<unk>", "<mask>"})
      if (auto id = token_to_id(t)) added.push_back({t, *id, true, false, false});
    set_added_tokens(std::move(added));
  }

  void configure_from_json(const std::vector<AddedToken>& added, const SpecialTemplate& tmpl,
                           const SpecialTokenIds& ids) {
    for (const AddedToken& t : added) {
      LD_CHECK(t.id < vocab_size() + 65536, "added token {:?} has id {} far beyond the vocabulary",
               t.content, t.id);
      if (t.id >= vocab_size()) {
        id_token_.resize(t.id + 1);
        id_bytes_.resize(t.id + 1);
      }
      id_token_[t.id] = t.content;
      id_bytes_[t.id] = t.content;
      vocab_.emplace(t.content, t.id);
    }
    set_added_tokens(added);
    template_ = tmpl;
    special_ = ids;
  }

 protected:
  void encode_piece(std::string_view text, std::vector<int32_t>& out) const override {
    std::string prefixed;
    if (add_prefix_space_ && !text.empty() && text[0] != ' ') {
      prefixed = " ";
      prefixed += text;
      text = prefixed;
    }
    // Code points of the piece: class and byte offset (offs has one more entry: the end).
    thread_local std::vector<uint8_t> cls;
    thread_local std::vector<uint32_t> offs;
    thread_local std::vector<char32_t> cps;
    cls.clear(), offs.clear(), cps.clear();
    for (size_t i = 0; i < text.size();) {
      offs.push_back(static_cast<uint32_t>(i));
      const char32_t c = unicode::next_utf8(text, i);
      cps.push_back(c);
      cls.push_back(char_class(c));
    }
    offs.push_back(static_cast<uint32_t>(text.size()));
    const size_t n = cps.size();
    size_t i = 0;
    while (i < n) {
      const size_t j = match_at(cls, cps, i);
      bpe_word(text.substr(offs[i], offs[j] - offs[i]), out);
      i = j;
    }
  }

 private:
  // End (code point index) of the GPT-2 pattern's match at i:
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  static size_t match_at(const std::vector<uint8_t>& cls, const std::vector<char32_t>& cps,
                         size_t i) {
    const size_t n = cps.size();
    if (cps[i] == '\'' && i + 1 < n) {
      const char32_t c1 = cps[i + 1];
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
      if (i + 2 < n) {
        const char32_t c2 = cps[i + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
          return i + 3;
      }
    }
    // " ?X+" for X in letters, numbers, others: an optional U+0020 then a run of one class.
    size_t start = i;
    if (cps[i] == ' ' && i + 1 < n && cls[i + 1] != kSpace) start = i + 1;
    const uint8_t k = cls[start];
    if (k != kSpace) {
      size_t j = start + 1;
      while (j < n && cls[j] == k) ++j;
      return j;
    }
    // White space: the whole run when it ends the text, else all but its last character (which
    // then prefixes the next word); a single space before a non-space matches alone (\s+).
    size_t j = i + 1;
    while (j < n && cls[j] == kSpace) ++j;
    if (j == n) return j;
    return j - i >= 2 ? j - 1 : j;
  }

  void bpe_word(std::string_view word, std::vector<int32_t>& out) const {
    if (word.size() == 1) {
      const int32_t id = byte_id_[static_cast<uint8_t>(word[0])];
      if (id >= 0) out.push_back(id);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      auto it = cache_.find(std::string(word));
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> sym;
    sym.reserve(word.size());
    for (char ch : word) {
      const int32_t id = byte_id_[static_cast<uint8_t>(ch)];
      if (id >= 0) sym.push_back(id);  // HF BPE without unk_token drops unknown symbols
    }
    while (sym.size() > 1) {
      int32_t best_rank = INT32_MAX, best_id = -1;
      int32_t best_a = -1, best_b = -1;
      for (size_t k = 0; k + 1 < sym.size(); ++k) {
        auto it = merges_.find(pair_key(sym[k], sym[k + 1]));
        if (it != merges_.end() && it->second.rank < best_rank) {
          best_rank = it->second.rank;
          best_id = it->second.id;
          best_a = sym[k], best_b = sym[k + 1];
        }
      }
      if (best_id < 0) break;
      size_t w = 0;
      for (size_t k = 0; k < sym.size();) {
        if (k + 1 < sym.size() && sym[k] == best_a && sym[k + 1] == best_b) {
          sym[w++] = best_id;
          k += 2;
        } else {
          sym[w++] = sym[k++];
        }
      }
      sym.resize(w);
    }
    out.insert(out.end(), sym.begin(), sym.end());
    if (word.size() <= kMaxCachedWordBytes) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::move(sym));
    }
  }

  static constexpr size_t kCacheCapacity = 10000;  // HF's BPE cache capacity
  static constexpr size_t kMaxCachedWordBytes = 256;

  bool add_prefix_space_;
  std::unordered_map<std::string, int32_t> vocab_;  // token (byte-to-unicode) -> id
  std::vector<std::string> id_token_, id_bytes_;
  int32_t byte_id_[256];
  std::unordered_map<uint64_t, MergeInfo> merges_;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

json parse_json(const std::string& text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    const auto [line, col] = detail::line_col(text, e.byte > 0 ? e.byte - 1 : 0);
    LD_FAIL("{}:{}:{}: invalid JSON: {}", name, line, col, e.what());
  }
}

std::vector<std::pair<std::string, int32_t>> vocab_from_json(const json& j,
                                                             const std::string& name) {
  LD_CHECK(j.is_object(), "{}: vocabulary must be a JSON object of token -> id, got {}", name,
           j.type_name());
  std::vector<std::pair<std::string, int32_t>> v;
  v.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    LD_CHECK(it.value().is_number_integer(), "{}: id of token {:?} is not an integer ({})", name,
             it.key(), it.value().dump());
    const int64_t id = it.value().get<int64_t>();
    LD_CHECK(id >= 0 && id < (1 << 28), "{}: id {} of token {:?} out of range", name, id, it.key());
    v.emplace_back(it.key(), static_cast<int32_t>(id));
  }
  return v;
}

}  // namespace

std::unique_ptr<Tokenizer> load_bpe(const fs::path& vocab_json, const fs::path& merges_txt,
                                    const BpeOptions& opt) {
  const std::string vname = vocab_json.string(), mname = merges_txt.string();
  const std::string vtext = detail::read_tokenizer_file(vocab_json);
  const std::string mtext = detail::read_tokenizer_file(merges_txt);
  const auto vocab = vocab_from_json(parse_json(vtext, vname), vname);
  std::vector<std::pair<std::string, size_t>> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < mtext.size();) {
    size_t nl = mtext.find('\n', pos);
    if (nl == std::string::npos) nl = mtext.size();
    std::string line = mtext.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#version", 0) == 0) continue;
    merges.emplace_back(std::move(line), line_no);
  }
  auto tok = std::make_unique<BpeTokenizer>(vocab, merges, BpeTokenizer::Source{vname, mname},
                                            opt.add_prefix_space);
  if (opt.roberta_specials) tok->configure_roberta(vname);
  return tok;
}

std::unique_ptr<Tokenizer> load_bpe_tokenizer_json(const fs::path& tokenizer_json) {
  const std::string name = tokenizer_json.string();
  const std::string text = detail::read_tokenizer_file(tokenizer_json);
  const json j = parse_json(text, name);
  try {
    LD_CHECK(j.is_object() && j.contains("model"), "{}: no \"model\" object", name);
    const json& model = j.at("model");
    const std::string type = model.value("type", std::string("BPE"));
    LD_CHECK(type == "BPE", "{}: model type {:?} is not supported here (only byte-level BPE)", name,
             type);
    LD_CHECK(!model.contains("dropout") || model["dropout"].is_null(),
             "{}: BPE dropout is not supported", name);
    const auto vocab = vocab_from_json(model.at("vocab"), name + " (model.vocab)");
    std::vector<std::pair<std::string, size_t>> merges;
    const json& jm = model.at("merges");
    LD_CHECK(jm.is_array(), "{}: model.merges must be an array", name);
    for (size_t k = 0; k < jm.size(); ++k) {
      const json& m = jm[k];
      if (m.is_string()) {
        merges.emplace_back(m.get<std::string>(), k + 1);
      } else {
        LD_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                 "{}: model.merges[{}] must be \"a b\" or [\"a\", \"b\"], got {}", name, k,
                 m.dump());
        merges.emplace_back(m[0].get<std::string>() + " " + m[1].get<std::string>(), k + 1);
      }
    }
    bool add_prefix_space = false;
    const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
    LD_CHECK(pre.is_object() && pre.value("type", "") == "ByteLevel",
             "{}: pre_tokenizer must be ByteLevel (got {})", name, pre.dump());
    LD_CHECK(pre.value("use_regex", true), "{}: ByteLevel without use_regex is not supported",
             name);
    add_prefix_space = pre.value("add_prefix_space", false);
    LD_CHECK(!j.contains("normalizer") || j["normalizer"].is_null(),
             "{}: normalizers are not supported for byte-level BPE", name);

    std::vector<AddedToken> added;
    if (j.contains("added_tokens")) {
      for (const json& a : j.at("added_tokens")) {
        AddedToken t;
        t.id = a.at("id").get<int32_t>();
        t.content = a.at("content").get<std::string>();
        t.special = a.value("special", false);
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        LD_CHECK(t.id >= 0, "{}: added token {:?} has negative id", name, t.content);
        LD_CHECK(!a.value("single_word", false), "{}: single_word added tokens are not supported",
                 name);
        added.push_back(std::move(t));
      }
    }
    auto tok = std::make_unique<BpeTokenizer>(vocab, merges, BpeTokenizer::Source{name, name},
                                              add_prefix_space);
    SpecialTemplate tmpl;
    SpecialTokenIds ids;
    auto find_added = [&](const char* s) {
      for (const AddedToken& t : added)
        if (t.content == s) return t.id;
      return tok->token_to_id(s).value_or(-1);
    };
    ids.unk = find_added("<unk>");
    ids.pad = find_added("<pad>");
    ids.mask = find_added("<mask>");
    const json& post = j.contains("post_processor") ? j["post_processor"] : json();
    if (post.is_object() && post.value("type", "") == "RobertaProcessing") {
      ids.cls = ids.bos = post.at("cls").at(1).get<int32_t>();
      ids.sep = ids.eos = post.at("sep").at(1).get<int32_t>();
      tmpl.a_prefix = {ids.cls};
      tmpl.a_suffix = {ids.sep};
      tmpl.b_prefix = {ids.sep};
      tmpl.b_suffix = {ids.sep};
    } else {
      LD_CHECK(post.is_null() || post.value("type", "") == "ByteLevel",
               "{}: post_processor {} is not supported (RobertaProcessing, ByteLevel or null)",
               name, post.dump());
      ids.bos = find_added("<s>");
      ids.eos = find_added("</s>");
    }
    tok->configure_from_json(added, tmpl, ids);
    return tok;
  } catch (const json::exception& e) {
    LD_FAIL("{}: unexpected tokenizer.json structure: {}", name, e.what());
  }
}

}  // namespace ld::data
