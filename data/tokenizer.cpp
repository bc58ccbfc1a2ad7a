// The model-independent part of ld::data::Tokenizer: added-token splitting, special-token
// templates, longest_first truncation, padding, and choosing a tokenizer from a directory.
#include "data/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "data/unicode.h"

namespace ld::data {

namespace fs = std::filesystem;

void Tokenizer::set_added_tokens(std::vector<AddedToken> tokens) {
  // Longest first, so that at one position the longest added token wins (HF: leftmost-longest).
  std::stable_sort(tokens.begin(), tokens.end(), [](const AddedToken& x, const AddedToken& y) {
    return x.content.size() > y.content.size();
  });
  std::fill(std::begin(added_first_byte_), std::end(added_first_byte_), false);
  for (const AddedToken& t : tokens) {
    LD_CHECK(!t.content.empty(), "added token with id {} has empty content", t.id);
    added_first_byte_[static_cast<unsigned char>(t.content[0])] = true;
  }
  added_ = std::move(tokens);
}

bool Tokenizer::is_special(int32_t id) const {
  for (const AddedToken& t : added_)
    if (t.id == id && t.special) return true;
  return false;
}

std::vector<int32_t> Tokenizer::encode_ids(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  size_t piece_begin = 0;
  for (size_t i = 0; i < text.size();) {
    if (!added_first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    const AddedToken* hit = nullptr;
    for (const AddedToken& t : added_) {
      if (text.compare(i, t.content.size(), t.content) == 0) {
        hit = &t;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t start = i, end = i + hit->content.size();
    if (hit->lstrip) {
      while (start > piece_begin) {
        // Step back over one UTF-8 code point and test it.
        size_t p = start - 1;
        while (p > piece_begin && (static_cast<unsigned char>(text[p]) & 0xC0) == 0x80) --p;
        size_t q = p;
        if (!unicode::is_white_space(unicode::next_utf8(text, q))) break;
        start = p;
      }
    }
    if (hit->rstrip) {
      while (end < text.size()) {
        size_t q = end;
        if (!unicode::is_white_space(unicode::next_utf8(text, q))) break;
        end = q;
      }
    }
    if (start > piece_begin) encode_piece(text.substr(piece_begin, start - piece_begin), out);
    out.push_back(hit->id);
    piece_begin = i = end;
  }
  if (piece_begin < text.size()) encode_piece(text.substr(piece_begin), out);
  return out;
}

void truncate_longest_first(std::vector<int32_t>& a, std::vector<int32_t>* b, size_t budget) {
  if (!b) {
    if (a.size() > budget) a.resize(budget);
    return;
  }
  if (a.size() + b->size() <= budget) return;
  // HF tokenizers (utils/truncation.rs), with n1 the shorter length.
  size_t n1 = a.size(), n2 = b->size();
  const bool swap = n1 > n2;
  if (swap) std::swap(n1, n2);
  n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = budget / 2;
    n2 = n1 + budget % 2;
  }
  if (swap) std::swap(n1, n2);
  if (a.size() > n1) a.resize(n1);
  if (b->size() > n2) b->resize(n2);
}

namespace {

void append(Encoding& e, const std::vector<int32_t>& ids, int32_t type) {
  e.ids.insert(e.ids.end(), ids.begin(), ids.end());
  e.type_ids.insert(e.type_ids.end(), ids.size(), type);
}

}  // namespace

Encoding Tokenizer::encode(std::string_view text, const EncodeOptions& opt) const {
  std::vector<int32_t> a = encode_ids(text);
  if (opt.max_length > 0) {
    const size_t n_special = opt.add_special_tokens ? template_.num_special(false) : 0;
    if (opt.max_length >= n_special) truncate_longest_first(a, nullptr, opt.max_length - n_special);
  }
  Encoding e;
  if (opt.add_special_tokens) append(e, template_.a_prefix, 0);
  append(e, a, 0);
  if (opt.add_special_tokens) append(e, template_.a_suffix, 0);
  e.attention_mask.assign(e.ids.size(), 1);
  return e;
}

Encoding Tokenizer::encode_pair(std::string_view text_a, std::string_view text_b,
                                const EncodeOptions& opt) const {
  std::vector<int32_t> a = encode_ids(text_a);
  std::vector<int32_t> b = encode_ids(text_b);
  if (opt.max_length > 0) {
    const size_t n_special = opt.add_special_tokens ? template_.num_special(true) : 0;
    if (opt.max_length >= n_special) truncate_longest_first(a, &b, opt.max_length - n_special);
  }
  Encoding e;
  const int32_t bt = opt.add_special_tokens ? template_.b_type : 1;
  if (opt.add_special_tokens) append(e, template_.a_prefix, 0);
  append(e, a, 0);
  if (opt.add_special_tokens) {
    append(e, template_.a_suffix, 0);
    append(e, template_.b_prefix, bt);
  }
  append(e, b, bt);
  if (opt.add_special_tokens) append(e, template_.b_suffix, bt);
  e.attention_mask.assign(e.ids.size(), 1);
  return e;
}

void Tokenizer::pad(std::vector<Encoding>& batch, const PaddingOptions& opt) const {
  const int32_t pad_id = opt.pad_id.value_or(special_.pad);
  LD_CHECK(pad_id >= 0,
           "padding needs a pad token: this {} tokenizer has none, pass PaddingOptions::pad_id",
           kind());
  size_t len = opt.length;
  for (const Encoding& e : batch) len = std::max(len, e.ids.size());
  if (opt.multiple_of > 1 && len % opt.multiple_of != 0)
    len += opt.multiple_of - len % opt.multiple_of;
  for (Encoding& e : batch) {
    LD_CHECK(e.type_ids.size() == e.ids.size() && e.attention_mask.size() == e.ids.size(),
             "encoding has {} ids but {} type ids and {} mask entries", e.ids.size(),
             e.type_ids.size(), e.attention_mask.size());
    const size_t n = len - e.ids.size();
    if (n == 0) continue;
    if (opt.side == PaddingSide::kRight) {
      e.ids.insert(e.ids.end(), n, pad_id);
      e.type_ids.insert(e.type_ids.end(), n, 0);
      e.attention_mask.insert(e.attention_mask.end(), n, 0);
    } else {
      e.ids.insert(e.ids.begin(), n, pad_id);
      e.type_ids.insert(e.type_ids.begin(), n, 0);
      e.attention_mask.insert(e.attention_mask.begin(), n, 0);
    }
  }
}

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) {
  if (fs::exists(dir / "tokenizer.json")) return load_bpe_tokenizer_json(dir / "tokenizer.json");
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
    return load_bpe(dir / "vocab.json", dir / "merges.txt");
  if (fs::exists(dir / "tokenizer.model")) return load_sentencepiece(dir / "tokenizer.model");
  if (fs::exists(dir / "vocab.txt")) return load_wordpiece(dir / "vocab.txt");
  LD_FAIL(
      "{}: no tokenizer files (expected tokenizer.json, vocab.json + merges.txt, tokenizer.model "
      "or vocab.txt)",
      dir.string());
}

}  // namespace ld::data
