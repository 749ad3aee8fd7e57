// Hand-written matchers for the standard byte-level BPE split patterns, exact to the reference's regex semantics
// (leftmost alternative first, greedy quantifiers with backtracking) and linear in the input for every input:
//
//   gpt2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//            (GPT-2, r50k_base, p50k_base, the ByteLevel pre-tokenizer with use_regex)
//   cl100k   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
//            \s+(?!\S)|\s+      (cl100k_base, Llama 3)
//   qwen     the same with \p{N} instead of \p{N}{1,3} (Qwen 2/2.5/3)
//   o200k    [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|...|'d)?|
//            [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...|'d)?|
//            \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+   (o200k_base, GPT-4o, gpt-oss)
//
// Character classes come from unicode_tables.h (the reference's Unicode version); \s is White_Space. Only these exact
// pattern strings are recognised; any other pattern goes to PCRE2 (regex.h). No match limit applies: every
// alternative looks at each character a bounded number of times.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "tokenizer/fn_ref.h"

namespace tokmeter::tokenizer {

// Finds the matches of one split pattern. Immutable and thread-safe.
class Splitter {
 public:
  virtual ~Splitter() = default;
  // Calls on_match(begin, end) for each match, left to right (none is empty). `s` must be valid UTF-8.
  virtual void FindAll(std::string_view s, FnRef<void(size_t, size_t)> on_match) const = 0;
  // The ends of the next (at most `cap`) matches from `from`, which must be the end of a match (or 0): the matches
  // are s[from, ends[0]), s[ends[0], ends[1]), ... Returns how many were written (0 only when from == s.size()).
  // The matches of these patterns cover the text, so each starts where the previous one ended. For callers that
  // handle a batch of words at a time (Tokenizer's fused split-and-model loop): one virtual call per batch instead
  // of one callback per word.
  virtual size_t Next(std::string_view s, size_t from, size_t* ends, size_t cap) const = 0;
};

// A hand-written splitter when `pattern` (tokenizer.json's Split.pattern.Regex, or a tiktoken pat_str) is one of the
// patterns above, else nullptr (the caller compiles it with PCRE2). The matches do not depend on `invert`; it is taken
// so that the call site passes what it knows.
std::unique_ptr<Splitter> MakeKnownSplitter(std::string_view pattern, bool invert);

// The name of the known pattern ("gpt2", "cl100k", "qwen", "o200k"), or "" (for tests).
std::string_view KnownSplitPatternName(std::string_view pattern);

}  // namespace tokmeter::tokenizer
