// Digits: numeric characters split off, as one run or (individual_digits) one by one.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/char_class.h"
#include "tokenizer/pre_tokenizers/components.h"
#include "tokenizer/unicode.h"

namespace tokmeter::tokenizer::pre_tokenizers {

std::unique_ptr<PreTokenizer> DigitsFromJson(const json::Value& o, const std::string& path) {
  const bool individual = json::Bool(o, "individual_digits", path, false);
  return std::make_unique<CharClassPre<CharPredicate>>(
      &unicode::IsNumeric, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, individual);
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
