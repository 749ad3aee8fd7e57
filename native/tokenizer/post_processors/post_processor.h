// Post-processing of a single sequence with add_special_tokens = true: ids before the sequence and ids after it
// (BOS / CLS / SEP / EOS). Offsets and pairs are not used by tokmeter.
//
// Construction: PostProcessor::FromJson reads tokenizer.json's "post_processor" value. It dispatches on "type" in one
// place (post_processor.cc, which also flattens Sequence); each component reads its own fields in its own file
// (components.h). Errors name the JSON path: ERR_TOKENIZER_SPEC for a malformed field, ERR_TOKENIZER_UNSUPPORTED
// for a type tokmeter does not implement.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokmeter::tokenizer {

namespace json {
class Value;
}

struct PostProcessor {
  std::vector<uint32_t> prefix, suffix;

  // The id of an added token by its content (TemplateProcessing names special tokens by content when they are not
  // in its special_tokens table); nullopt when there is none.
  using TokenLookup = std::function<std::optional<uint32_t>(std::string_view)>;
  // `v` is tokenizer.json's "post_processor" (nullptr or null: nothing added), `path` its name in messages.
  static PostProcessor FromJson(const json::Value* v, const std::string& path, const TokenLookup& added_token_id);

 private:
  void Add(const json::Value& v, const std::string& path, const TokenLookup& added_token_id, int depth);
};

}  // namespace tokmeter::tokenizer
