// Tokenizers with Hugging Face-identical ids: byte-level BPE (GPT-2/RoBERTa), WordPiece (BERT) and
// SentencePiece (Llama 2), behind one interface with HF special-token templates, truncation,
// padding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ld::data {

// One tokenised example, as Hugging Face's `BatchEncoding` for a single input.
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;        // segment ids (token_type_ids); 0 for the first sequence
  std::vector<int32_t> attention_mask;  // 1 for real tokens, 0 for padding
  size_t size() const { return ids.size(); }
};

// Ids of the special tokens; -1 where the tokenizer has none (Llama has no pad/cls/sep/mask).
struct SpecialTokenIds {
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, cls = -1, sep = -1, mask = -1;
};

struct EncodeOptions {
  bool add_special_tokens = true;
  // 0: no truncation. Otherwise the result (special tokens included) is cut to at most max_length
  // tokens with HF tokenizers' `longest_first` rule: a pair keeps as much of the shorter sequence
  // as fits; when both are too long the budget is split in half, the longer one getting the odd
  // token (the first one on a tie gets the smaller half). Tokens are cut from the right. As in
  // HF tokenizers, a max_length below the number of special tokens leaves the input untruncated.
  size_t max_length = 0;
};

enum class PaddingSide { kRight, kLeft };

struct PaddingOptions {
  PaddingSide side = PaddingSide::kRight;  // kLeft for decoder-only generation
  size_t length = 0;                       // 0: pad to the longest in the batch
  size_t multiple_of = 0;         // 0/1: none; else round the length up (HF pad_to_multiple_of)
  std::optional<int32_t> pad_id;  // default: the tokenizer's pad token (throws if none)
};

// A token matched verbatim in the input text before the model runs (HF "added tokens"), e.g. "<s>".
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = true;  // skipped by decode(skip_special_tokens=true)
  bool lstrip = false;  // swallow white space on its left
  bool rstrip = false;  // ... and on its right
};

// How special tokens wrap one sequence A, or a pair A, B (as HF post-processors):
//   single: a_prefix A a_suffix                       (type 0)
//   pair:   a_prefix A a_suffix | b_prefix B b_suffix  (second half with type b_type)
struct SpecialTemplate {
  std::vector<int32_t> a_prefix, a_suffix, b_prefix, b_suffix;
  int32_t b_type = 0;
  size_t num_special(bool pair) const {
    return a_prefix.size() + a_suffix.size() + (pair ? b_prefix.size() + b_suffix.size() : 0);
  }
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // "bpe", "wordpiece" or "sentencepiece".
  virtual std::string_view kind() const = 0;
  // Number of ids (HF `len(tokenizer)`: the model vocabulary plus added tokens beyond it).
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  // The token's string as stored in the vocabulary (BPE: in the byte-to-unicode alphabet).
  virtual std::string id_to_token(int32_t id) const = 0;

  // Ids of `text` without special tokens (HF `encode(text, add_special_tokens=False)`).
  // Added tokens written in the text (e.g. "<s>") map to their ids, as in HF.
  std::vector<int32_t> encode_ids(std::string_view text) const;
  // HF `tokenizer(text)`: special tokens per template, optional truncation, mask of ones.
  Encoding encode(std::string_view text, const EncodeOptions& opt = {}) const;
  // HF `tokenizer(a, b)`.
  Encoding encode_pair(std::string_view a, std::string_view b, const EncodeOptions& opt = {}) const;
  // Text of `ids` (HF `decode`, without `clean_up_tokenization_spaces` for BPE/SentencePiece;
  // WordPiece applies its decoder's cleanup as HF's WordPiece decoder does).
  virtual std::string decode(std::span<const int32_t> ids,
                             bool skip_special_tokens = true) const = 0;

  const SpecialTokenIds& special_ids() const { return special_; }
  const SpecialTemplate& special_template() const { return template_; }
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  bool is_special(int32_t id) const;

  // Pads every encoding to one length (see PaddingOptions); type ids pad with 0, mask with 0.
  void pad(std::vector<Encoding>& batch, const PaddingOptions& opt = {}) const;

 protected:
  // The model on a piece of text that contains no added token.
  virtual void encode_piece(std::string_view text, std::vector<int32_t>& out) const = 0;
  // Sets the added tokens (sorted for matching) and the specials' ids.
  void set_added_tokens(std::vector<AddedToken> tokens);

  SpecialTokenIds special_;
  SpecialTemplate template_;

 private:
  std::vector<AddedToken> added_;
  bool added_first_byte_[256] = {};
};

// Truncates a (and b) in place with HF tokenizers' longest_first rule to `budget` tokens in all.
void truncate_longest_first(std::vector<int32_t>& a, std::vector<int32_t>* b, size_t budget);

// Byte-level BPE (GPT-2 / RoBERTa).
struct BpeOptions {
  bool add_prefix_space = false;  // RoBERTa/GPT-2 default: false
  bool roberta_specials = true;   // <s> A </s> / <s> A </s></s> B </s>; false: no template (GPT-2)
};
// vocab.json + merges.txt (HF layout). Errors name the file (and line for merges.txt).
std::unique_ptr<Tokenizer> load_bpe(const std::filesystem::path& vocab_json,
                                    const std::filesystem::path& merges_txt,
                                    const BpeOptions& opt = {});
// tokenizer.json with a BPE model, ByteLevel pre-tokenizer and (optionally) RobertaProcessing.
std::unique_ptr<Tokenizer> load_bpe_tokenizer_json(const std::filesystem::path& tokenizer_json);

// WordPiece (BERT): BasicTokenizer (clean text, CJK split, lower case, accent strip, punctuation)
// then greedy longest-match-first with "##" continuation; [CLS] A [SEP] B [SEP] with type ids.
struct WordPieceOptions {
  bool lowercase = true;              // bert-base-uncased
  std::optional<bool> strip_accents;  // default: follows lowercase (HF BertNormalizer)
  bool handle_chinese_chars = true;
  size_t max_input_chars_per_word = 100;
};
std::unique_ptr<Tokenizer> load_wordpiece(const std::filesystem::path& vocab_txt,
                                          const WordPieceOptions& opt = {});

// SentencePiece (Llama 2 tokenizer.model via libsentencepiece). Matches HF LlamaTokenizer with
// legacy=True and the Hub's Llama-2 LlamaTokenizerFast: BOS prepended, no EOS; a pair is
// `<s> A <s> B` (B with type 1); "<s>", "</s>", "<unk>" written in text are special tokens and the
// text between them is encoded by SentencePiece piece by piece (each gets the dummy prefix).
struct SentencePieceOptions {
  bool add_bos = true;
  bool add_eos = false;
};
std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model,
                                              const SentencePieceOptions& opt = {});

// Picks by the files in `dir`: tokenizer.json (BPE), else vocab.json + merges.txt, else
// tokenizer.model, else vocab.txt; throws ld::Error naming the directory when none is there.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace ld::data
