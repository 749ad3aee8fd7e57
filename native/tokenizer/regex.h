// Regex: a compiled PCRE2 (JIT) pattern written in the Oniguruma dialect of tokenizer.json.
//
// Immutable after construction and shared by all threads; per-call match state lives in RegexScratch (one per
// thread). Oniguruma's Unicode \s, \S, \w, \W, \d, \D are rewritten to explicit PCRE2 classes so that both engines
// agree (PCRE2's own \s also matches U+180E, its \w lacks marks). Subjects must be valid UTF-8 (checked once by
// Tokenizer before any match).
//
// Budget: patterns come from tokenizer files, so each match attempt runs under PCRE2's match and depth limits set to
// kMatchBudgetBase steps plus kMatchBudgetPerByte per byte of the subject. Tokenizer patterns need a few steps per
// byte, so they never reach it at any input length; a catastrophically backtracking one ((a+)+$) stops within
// milliseconds with ERR_TOKENIZER_REGEX_LIMIT instead of holding a thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/fn_ref.h"

namespace tokmeter::tokenizer {

class RegexScratch {
 public:
  RegexScratch();
  ~RegexScratch();
  RegexScratch(const RegexScratch&) = delete;
  RegexScratch& operator=(const RegexScratch&) = delete;
  void* match_data() const { return match_data_; }
  void* match_context() const { return match_context_; }

 private:
  void* match_data_;
  void* match_context_;
  void* jit_stack_;
};

class Regex {
 public:
  // Throws tokmeter::Error(ERR_TOKENIZER_SPEC) naming `field` when the pattern does not compile.
  Regex(std::string_view onig_pattern, std::string_view field);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  static constexpr uint64_t kMatchBudgetBase = 1000000;
  static constexpr uint64_t kMatchBudgetPerByte = 100;

  // Calls on_match(start, end) for each match, left to right, with Oniguruma's find_iter rules for empty matches.
  // Throws tokmeter::Error(ERR_TOKENIZER_REGEX_LIMIT) naming the field when a match attempt exceeds its budget.
  void FindAll(std::string_view subject, RegexScratch& scratch, FnRef<void(size_t, size_t)> on_match) const;

  // Every match in `subject` replaced by `content`, into `out`, as the reference's Replace (normalizer and decoder)
  // does it: FindAll's matches, an empty one included, but none at all in an empty subject. Returns false (out
  // unspecified) when nothing matched.
  bool ReplaceAll(std::string_view subject, std::string_view content, std::string& out, RegexScratch& scratch) const;

  // The PCRE2 source after translation (for tests).
  const std::string& pcre2_source() const { return source_; }

 private:
  void* code_ = nullptr;
  bool jit_ = false;  // JIT-compiled: matched through pcre2_jit_match, without pcre2_match's per-call checks
  std::string source_;
  std::string field_;  // where the pattern comes from, for errors
};

// Exposed for tests: Oniguruma-dialect pattern -> PCRE2 pattern.
std::string TranslateOnigPattern(std::string_view pattern);

}  // namespace tokmeter::tokenizer
