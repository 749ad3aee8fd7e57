// tokmeter::grammar::GrammarError — the typed compile error of the grammar engine.
//
// Codes (stable, mapped in the addon and src/errors.ts):
//   ERR_GRAMMAR_INVALID      the spec is malformed (bad JSON, a field of the wrong type, a regex that does not parse,
//                            a schema that no value satisfies, a $ref that resolves nowhere, a left-recursive $ref
//                            cycle)
//   ERR_GRAMMAR_UNSUPPORTED  a keyword or form the engine cannot enforce (never silently ignored)
//   ERR_GRAMMAR_TOO_LARGE    a compile limit (automaton states, rules, nesting, compile time) was exceeded
// `pointer` is the JSON pointer (RFC 6901) of the offending schema/spec node within the spec document ("" for the
// root); `keyword` the keyword at fault ("" when none).
#pragma once

#include <string>

#include "util/error.h"

namespace tokmeter::grammar {

inline constexpr const char* kErrInvalid = "ERR_GRAMMAR_INVALID";
inline constexpr const char* kErrUnsupported = "ERR_GRAMMAR_UNSUPPORTED";
inline constexpr const char* kErrTooLarge = "ERR_GRAMMAR_TOO_LARGE";

class GrammarError : public Error {
 public:
  GrammarError(std::string code, std::string pointer, std::string keyword, const std::string& message)
      : Error(std::move(code), Describe(pointer, keyword, message)),
        pointer_(std::move(pointer)),
        keyword_(std::move(keyword)) {}
  const std::string& pointer() const noexcept { return pointer_; }
  const std::string& keyword() const noexcept { return keyword_; }

 private:
  static std::string Describe(const std::string& pointer, const std::string& keyword, const std::string& message) {
    std::string out = message;
    if (!keyword.empty() || !pointer.empty()) {
      out += " (at '" + pointer + "'";
      if (!keyword.empty()) out += ", keyword '" + keyword + "'";
      out += ")";
    }
    return out;
  }
  std::string pointer_;
  std::string keyword_;
};

// A schema or spec that admits no value at all (ERR_GRAMMAR_INVALID). Compilers catch it where an empty part is
// harmless (an optional property, one branch of several) and drop that part.
class EmptyLanguageError : public GrammarError {
 public:
  using GrammarError::GrammarError;
};

}  // namespace tokmeter::grammar
