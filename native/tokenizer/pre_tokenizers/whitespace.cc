// Whitespace: runs of word characters and runs of other non-space characters (the reference's \w+|[^\w\s]+).
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/components.h"

namespace tokmeter::tokenizer::pre_tokenizers {

namespace {

// The reference's \w (Rust regex): Alphabetic + M + Nd + Pc + Join_Control, of its Unicode version. Alphabetic is
// spelled out as the letters, Nl and the Other_Alphabetic characters outside M (circled and squared Latin letters,
// category So), so that every class comes from our own tables (regex.cc): PCRE2's \p{Alphabetic} is of an older
// Unicode, which split words at letters added since (Kawi, Garay, ...).
constexpr const char* kWord =
    "\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{24B6}-\\x{24E9}\\x{1F130}-\\x{1F149}\\x{1F150}-\\x{1F169}\\x{1F170}-\\x{"
    "1F189}"
    "\\x{200C}\\x{200D}";

}  // namespace

std::unique_ptr<PreTokenizer> WhitespaceFromJson(const json::Value&, const std::string& path) {
  return RegexMatches(std::string("[") + kWord + "]+|[^" + kWord + "\\s]+", path);
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
