// tokmeter::grammar regex — the ECMA-262 regular-expression subset that JSON Schema `pattern` and the `regex` spec
// use, compiled to a grammar expression over UTF-8 bytes.
//
// Supported: literals, `.`, classes `[...]` / `[^...]` with ranges, escapes \d \w \s \D \W \S \t \n \r \f \v \0
// \xHH \uHHHH \u{H...} and escaped punctuation, groups `(...)`, `(?:...)`, `(?<name>...)`, alternation, quantifiers
// `* + ? {n} {n,} {n,m}` (lazy forms accepted: same language), `^` at the start and `$` at the end.
// Refused (ERR_GRAMMAR_UNSUPPORTED): backreferences, lookaround, \b \B, \p{...}, anchors elsewhere. Malformed
// patterns are ERR_GRAMMAR_INVALID. Matching is by code point (the `u` flag); counted repeats above 1000 are refused.
//
// Encodings: kRaw matches the text itself; kJsonString matches the *contents of a JSON string literal* whose decoded
// value matches: `"` and `\` are produced escaped, control characters as their short escapes (\b \f \n \r \t) or
// \u00XX; every other character as its UTF-8 bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grammar/automaton.h"

namespace tokmeter::grammar {

enum class CharEncoding { kRaw, kJsonString };

using CodeRanges = std::vector<std::pair<uint32_t, uint32_t>>;  // inclusive, any order

// One character from `ranges` (surrogates excluded), in the given encoding. Returns false when the set is empty.
bool CharClassExpr(ExprPool& pool, CodeRanges ranges, CharEncoding enc, ExprId& out);
// The literal text (UTF-8) in the given encoding.
ExprId TextExpr(ExprPool& pool, std::string_view text, CharEncoding enc);

struct RegexResult {
  ExprId expr;
  bool anchoredStart = false;
  bool anchoredEnd = false;
};
// Throws GrammarError with `pointer` / `keyword`.
RegexResult CompileRegex(ExprPool& pool, std::string_view pattern, CharEncoding enc, const std::string& pointer,
                         const std::string& keyword);

}  // namespace tokmeter::grammar
