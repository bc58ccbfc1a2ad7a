// WordPiece as BERT (Hugging Face BertNormalizer + BertPreTokenizer + WordPiece model): clean
// text, CJK split, accent strip (NFD), lower case, punctuation split, greedy longest match with
// "##".
#include <unordered_map>

#include "core/error.h"
#include "data/tokenizer.h"
#include "data/tokenizer_io.h"
#include "data/unicode.h"

namespace ld::data {
namespace {

namespace fs = std::filesystem;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// BERT's _is_chinese_char: the CJK Unified Ideographs blocks (not Hangul, kana or CJK punctuation).
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// HF tokenizers' is_bert_punc: ASCII punctuation (which includes symbols such as $ + < = > ^ ` |)
// or a Unicode punctuation category (P*).
bool is_bert_punct(char32_t c) {
  if (c < 128)
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
  return unicode::is_punctuation(unicode::category(c));
}

class WordPieceTokenizer final : public Tokenizer {
 public:
  WordPieceTokenizer(const fs::path& vocab_txt, const WordPieceOptions& opt)
      : lowercase_(opt.lowercase),
        strip_accents_(opt.strip_accents.value_or(opt.lowercase)),
        chinese_(opt.handle_chinese_chars),
        max_chars_(opt.max_input_chars_per_word) {
    const std::string name = vocab_txt.string();
    const std::string text = detail::read_tokenizer_file(vocab_txt);
    LD_CHECK(!text.empty(), "{}: empty vocabulary file", name);
    size_t line_no = 0;
    for (size_t pos = 0; pos < text.size();) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) nl = text.size();
      std::string_view line(text.data() + pos, nl - pos);
      pos = nl + 1;
      ++line_no;
      // HF reads each line with trim_end() (so "\r\n" files work).
      while (!line.empty()) {
        size_t last = line.size() - 1;  // start of the last UTF-8 sequence
        while (last > 0 && (static_cast<unsigned char>(line[last]) & 0xC0) == 0x80) --last;
        size_t q = last;
        if (!unicode::is_white_space(unicode::next_utf8(line, q)) || q != line.size()) break;
        line.remove_suffix(line.size() - last);
      }
      LD_CHECK(unicode::utf8_lossy(line) == line, "{}:{}: token is not valid UTF-8", name, line_no);
      const auto id = static_cast<int32_t>(id_token_.size());
      id_token_.emplace_back(line);
      vocab_.insert_or_assign(std::string(line), id);  // a repeated token keeps its last id (HF)
    }
    auto need = [&](const char* t) {
      auto id = token_to_id(t);
      LD_CHECK(id.has_value(), "{}: special token {} is not in the vocabulary ({} lines)", name, t,
               line_no);
      return *id;
    };
    special_.unk = unk_ = need("[UNK]");
    special_.cls = special_.bos = need("[CLS]");
    special_.sep = special_.eos = need("[SEP]");
    special_.pad = token_to_id("[PAD]").value_or(-1);
    special_.mask = token_to_id("[MASK]").value_or(-1);
    template_.a_prefix = {special_.cls};
    template_.a_suffix = {special_.sep};
    template_.b_suffix = {special_.sep};
    template_.b_type = 1;
    std::vector<AddedToken> added;
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
      if (auto id = token_to_id(t)) added.push_back({t, *id, true, false, false});
    set_added_tokens(std::move(added));
  }

  std::string_view kind() const override { return "wordpiece"; }
  int32_t vocab_size() const override { return static_cast<int32_t>(id_token_.size()); }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int32_t id) const override {
    LD_CHECK(id >= 0 && id < vocab_size(), "token id {} out of range [0, {})", id, vocab_size());
    return id_token_[id];
  }

  // HF's WordPiece decoder with cleanup=true: "##" continuations join, other tokens get a space;
  // each token is then cleaned (" ." -> "." etc.) on its own, as HF does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string out;
    bool first = true;
    for (int32_t id : ids) {
      LD_CHECK(id >= 0 && id < vocab_size(), "token id {} out of range [0, {})", id, vocab_size());
      if (skip_special_tokens && is_special(id)) continue;
      std::string tok = id_token_[id];
      if (!first) {
        if (tok.rfind("##", 0) == 0)
          tok.erase(0, 2);
        else
          tok.insert(0, " ");
      }
      first = false;
      cleanup(tok);
      out += tok;
    }
    return out;
  }

 protected:
  void encode_piece(std::string_view text, std::vector<int32_t>& out) const override {
    // BertNormalizer: clean text, CJK spacing, strip accents, lower case (in HF's order).
    std::u32string s;
    s.reserve(text.size() + 8);
    for (size_t i = 0; i < text.size();) {
      const char32_t c = unicode::next_utf8(text, i);
      if (c == 0 || c == 0xFFFD) continue;
      if (c == '\t' || c == '\n' || c == '\r') {
        s.push_back(' ');
        continue;
      }
      if (unicode::is_other(unicode::category(c))) continue;
      if (unicode::is_white_space(c)) {
        s.push_back(' ');
      } else if (chinese_ && is_cjk(c)) {
        s.push_back(' ');
        s.push_back(c);
        s.push_back(' ');
      } else {
        s.push_back(c);
      }
    }
    if (strip_accents_) {
      std::u32string d = unicode::nfd(s);
      s.clear();
      for (char32_t c : d)
        if (unicode::category(c) != unicode::Category::Mn) s.push_back(c);
    }
    if (lowercase_) {
      std::u32string l;
      l.reserve(s.size());
      for (char32_t c : s) unicode::append_lower(c, l);
      s.swap(l);
    }
    // BertPreTokenizer: split on white space (dropped) and on punctuation (kept alone).
    size_t i = 0;
    while (i < s.size()) {
      if (unicode::is_white_space(s[i])) {
        ++i;
        continue;
      }
      if (is_bert_punct(s[i])) {
        word_piece(std::u32string_view(s).substr(i, 1), out);
        ++i;
        continue;
      }
      size_t j = i + 1;
      while (j < s.size() && !unicode::is_white_space(s[j]) && !is_bert_punct(s[j])) ++j;
      word_piece(std::u32string_view(s).substr(i, j - i), out);
      i = j;
    }
  }

 private:
  static void cleanup(std::string& t) {
    static const std::pair<std::string_view, std::string_view> kRules[] = {
        {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
        {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
        {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules) {
      for (size_t p = t.find(from); p != std::string::npos; p = t.find(from, p + to.size()))
        t.replace(p, from.size(), to);
    }
  }

  // Greedy longest-match-first; a word with no full segmentation, or longer than
  // max_input_chars_per_word characters, becomes [UNK].
  void word_piece(std::u32string_view word, std::vector<int32_t>& out) const {
    if (word.size() > max_chars_) {
      out.push_back(unk_);
      return;
    }
    thread_local std::vector<size_t> offs;  // UTF-8 byte offset of each code point, plus end
    thread_local std::string utf8, cand;
    thread_local std::vector<int32_t> pieces;
    utf8.clear(), offs.clear(), pieces.clear();
    for (char32_t c : word) {
      offs.push_back(utf8.size());
      unicode::append_utf8(utf8, c);
    }
    offs.push_back(utf8.size());
    const size_t n = word.size();
    size_t start = 0;
    while (start < n) {
      size_t end = n;
      int32_t found = -1;
      while (end > start) {
        cand.clear();
        if (start > 0) cand = "##";
        cand.append(utf8, offs[start], offs[end] - offs[start]);
        auto it = vocab_.find(std::string_view(cand));
        if (it != vocab_.end()) {
          found = it->second;
          break;
        }
        --end;
      }
      if (found < 0) {
        out.push_back(unk_);
        return;
      }
      pieces.push_back(found);
      start = end;
    }
    out.insert(out.end(), pieces.begin(), pieces.end());
  }

  bool lowercase_, strip_accents_, chinese_;
  size_t max_chars_;
  int32_t unk_ = -1;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::vector<std::string> id_token_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_wordpiece(const fs::path& vocab_txt, const WordPieceOptions& opt) {
  return std::make_unique<WordPieceTokenizer>(vocab_txt, opt);
}

}  // namespace ld::data
