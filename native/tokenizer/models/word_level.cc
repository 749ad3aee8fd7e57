// WordLevel: each pre-tokenized word is one token, its vocabulary id or unk_token's (default "<unk>"). An unk_token
// missing from the vocabulary fails only the encode that needs it (ERR_INVALID_ARGUMENT), as the reference fails
// (MissingUnkToken).
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/models/model.h"
#include "util/error.h"

namespace tokmeter::tokenizer {
namespace {

class WordLevel final : public Model {
 public:
  WordLevel(const ModelVocab& vocab, std::string unk_token, uint32_t unk)
      : map_(vocab.map), unk_token_(std::move(unk_token)), unk_(unk) {}
  void Tokenize(std::string_view w, ModelScratch&, IdSink& sink) const override {
    const uint32_t id = map_.Find(w);
    if (id != TokenMap::kNone) {
      sink.Push(id);
      return;
    }
    if (unk_ == TokenMap::kNone)
      throw tokmeter::Error("ERR_INVALID_ARGUMENT",
                            std::string("text has a word the WordLevel vocabulary does not hold and model.unk_token ") +
                                json::Stringify(unk_token_) + " is not in the vocabulary");
    sink.Push(unk_);
  }

 private:
  const TokenMap& map_;
  std::string unk_token_;
  uint32_t unk_;  // TokenMap::kNone when unk_token is not in the vocabulary
};

}  // namespace

std::unique_ptr<Model> WordLevelFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab) {
  const std::string unk = json::OptStr(m, "unk_token", path).value_or("<unk>");
  return std::make_unique<WordLevel>(vocab, unk, vocab.vocab_id(unk));
}

}  // namespace tokmeter::tokenizer
