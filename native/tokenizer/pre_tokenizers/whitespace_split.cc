// WhitespaceSplit: split on Unicode whitespace, which is removed.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/char_class.h"
#include "tokenizer/pre_tokenizers/components.h"
#include "tokenizer/unicode.h"

namespace tokmeter::tokenizer::pre_tokenizers {

std::unique_ptr<PreTokenizer> WhitespaceSplitFromJson(const json::Value&, const std::string&) {
  return std::make_unique<CharClassPre<CharPredicate>>(&unicode::IsWhitespace, SplitBehavior::kRemoved, false);
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
