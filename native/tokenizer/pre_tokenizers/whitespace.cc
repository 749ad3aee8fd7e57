// Whitespace: runs of word characters and runs of other non-space characters (the reference's \w+|[^\w\s]+).
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/components.h"

namespace tokmeter::tokenizer::pre_tokenizers {

namespace {

// Rust regex \w is Alphabetic + M + Nd + Pc + Join_Control.
constexpr const char* kWhitespacePattern =
    "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
    "\\s]+";

}  // namespace

std::unique_ptr<PreTokenizer> WhitespaceFromJson(const json::Value&, const std::string& path) {
  return RegexMatches(kWhitespacePattern, path);
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
