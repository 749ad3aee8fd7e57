// BertPreTokenizer: split on whitespace (removed), then each punctuation character isolated.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/char_class.h"
#include "tokenizer/pre_tokenizers/components.h"
#include "tokenizer/unicode.h"

namespace tokmeter::tokenizer::pre_tokenizers {

namespace {

class SequencePre final : public PreTokenizer {
 public:
  SequencePre(std::unique_ptr<PreTokenizer> a, std::unique_ptr<PreTokenizer> b) : a_(std::move(a)), b_(std::move(b)) {}
  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    // Uses the scratch slots of stage for `a` and of a private slot for `b`.
    size_t sub = stage + 1;  // the chain reserves two scratch slots per stage
    auto mid = [&](std::string_view w, bool st) { b_->Split(w, st, s, sub, emit); };
    a_->Split(piece, at_start, s, stage, EmitFn(mid));
  }

 private:
  std::unique_ptr<PreTokenizer> a_, b_;
};

}  // namespace

std::unique_ptr<PreTokenizer> BertFromJson(const json::Value&, const std::string&) {
  return std::make_unique<SequencePre>(
      std::make_unique<CharClassPre<CharPredicate>>(&unicode::IsWhitespace, SplitBehavior::kRemoved, false),
      std::make_unique<CharClassPre<CharPredicate>>(&unicode::IsPunctuation, SplitBehavior::kIsolated, true));
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
