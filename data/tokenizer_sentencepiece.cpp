// SentencePiece tokenizer for Llama 2's tokenizer.model through libsentencepiece, wrapped with
// Hugging Face's special-token handling (BOS prepended; "<s>"/"</s>"/"<unk>" in text are specials).
#include <sentencepiece_processor.h>

#include "core/error.h"
#include "data/tokenizer.h"
#include "data/tokenizer_io.h"

namespace ld::data {
namespace {

namespace fs = std::filesystem;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const fs::path& model, const SentencePieceOptions& opt) {
    const std::string name = model.string();
    // Read the bytes ourselves so that a missing file gets our message, then hand them over.
    const std::string bytes = detail::read_tokenizer_file(model);
    LD_CHECK(!bytes.empty(), "{}: empty SentencePiece model file", name);
    const auto status = sp_.LoadFromSerializedProto(bytes);
    LD_CHECK(status.ok(), "{}: not a valid SentencePiece model: {}", name, status.ToString());
    LD_CHECK(sp_.GetPieceSize() > 0, "{}: SentencePiece model has no pieces", name);
    special_.unk = sp_.unk_id();
    special_.bos = sp_.bos_id();
    special_.eos = sp_.eos_id();
    special_.pad = sp_.pad_id();  // -1 for Llama 2: it has no pad token
    LD_CHECK(!opt.add_bos || special_.bos >= 0, "{}: add_bos requested but the model has no BOS",
             name);
    LD_CHECK(!opt.add_eos || special_.eos >= 0, "{}: add_eos requested but the model has no EOS",
             name);
    if (opt.add_bos) template_.a_prefix = {special_.bos}, template_.b_prefix = {special_.bos};
    if (opt.add_eos) template_.a_suffix = {special_.eos}, template_.b_suffix = {special_.eos};
    template_.b_type = 1;
    std::vector<AddedToken> added;
    for (int32_t id : {special_.unk, special_.bos, special_.eos})
      if (id >= 0) added.push_back({sp_.IdToPiece(id), id, true, false, false});
    set_added_tokens(std::move(added));
  }

  std::string_view kind() const override { return "sentencepiece"; }
  int32_t vocab_size() const override { return sp_.GetPieceSize(); }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    const int id = sp_.PieceToId(std::string(token));
    // PieceToId answers unk_id for unknown pieces; tell them apart from "<unk>" itself.
    if (id == sp_.unk_id() && token != sp_.IdToPiece(id)) return std::nullopt;
    return id;
  }
  std::string id_to_token(int32_t id) const override {
    LD_CHECK(id >= 0 && id < vocab_size(), "token id {} out of range [0, {})", id, vocab_size());
    return sp_.IdToPiece(id);
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::vector<int> keep;
    keep.reserve(ids.size());
    for (int32_t id : ids) {
      LD_CHECK(id >= 0 && id < vocab_size(), "token id {} out of range [0, {})", id, vocab_size());
      if (skip_special_tokens && is_special(id)) continue;
      keep.push_back(id);
    }
    std::string out;
    const auto status = sp_.Decode(keep, &out);
    LD_CHECK(status.ok(), "SentencePiece decode failed: {}", status.ToString());
    return out;
  }

 protected:
  void encode_piece(std::string_view text, std::vector<int32_t>& out) const override {
    thread_local std::vector<int> ids;
    ids.clear();
    const auto status = sp_.Encode(text, &ids);
    LD_CHECK(status.ok(), "SentencePiece encode failed: {}", status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const fs::path& model,
                                              const SentencePieceOptions& opt) {
  return std::make_unique<SentencePieceTokenizer>(model, opt);
}

}  // namespace ld::data
