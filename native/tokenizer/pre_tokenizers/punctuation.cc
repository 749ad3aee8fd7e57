// Punctuation: each punctuation character split off with a behavior (default Isolated).
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/char_class.h"
#include "tokenizer/pre_tokenizers/components.h"
#include "tokenizer/unicode.h"

namespace tokmeter::tokenizer::pre_tokenizers {

std::unique_ptr<PreTokenizer> PunctuationFromJson(const json::Value& o, const std::string& path) {
  const SplitBehavior behavior = ReadBehavior(o, path, SplitBehavior::kIsolated);
  return std::make_unique<CharClassPre<CharPredicate>>(&unicode::IsPunctuation, behavior, true);
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
