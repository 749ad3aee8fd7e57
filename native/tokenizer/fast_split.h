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
//   DeepSeek-V3 / R1, a Sequence of three Isolated splits: \p{N}{1,3}, then [\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+,
//            then [!-/:-@[-`{-~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|
//            \s+(?!\S)|\s+  (each alone, and the three in sequence as one matcher)
//
// Character classes come from unicode_tables.h (the reference's Unicode version); \s is White_Space. Only these exact
// pattern strings are recognised; any other pattern goes to PCRE2 (regex.h). No match limit applies: every
// alternative looks at each character a bounded number of times.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "tokenizer/fn_ref.h"

namespace tokmeter::tokenizer {

// Finds the matches of one split pattern. Immutable and thread-safe.
class Splitter {
 public:
  virtual ~Splitter() = default;
  // Calls on_match(begin, end) for each match, left to right (none is empty). `s` must be valid UTF-8.
  virtual void FindAll(std::string_view s, FnRef<void(size_t, size_t)> on_match) const = 0;
  // The ends of the next (at most `cap`) pieces of an Isolated split from `from`, which must be the end of a piece
  // (or 0): the pieces are s[from, ends[0]), s[ends[0], ends[1]), ... (the matches and, for a pattern whose
  // matches leave gaps, the text between them). Returns how many were written (0 only when from == s.size()). For
  // callers that handle a batch of words at a time (Tokenizer's fused split-and-model loop): one virtual call per
  // batch instead of one callback per word.
  virtual size_t Next(std::string_view s, size_t from, size_t* ends, size_t cap) const = 0;
  // Whether the matches cover the text (no gaps): then the matches alone, as Removed with invert keeps them, are the
  // pieces too.
  virtual bool Covers() const { return true; }
  // The pattern string it matches ("" for a chain of patterns).
  virtual std::string_view pattern() const { return {}; }
};

// A hand-written splitter when `pattern` (tokenizer.json's Split.pattern.Regex, or a tiktoken pat_str) is one of the
// patterns above, else nullptr (the caller compiles it with PCRE2). The matches do not depend on `invert`; it is taken
// so that the call site passes what it knows.
std::unique_ptr<Splitter> MakeKnownSplitter(std::string_view pattern, bool invert);

// The name of the known pattern ("gpt2", "cl100k", "qwen", "o200k", "deepseek-digits", "deepseek-cjk",
// "deepseek-main"), or "" (for tests).
std::string_view KnownSplitPatternName(std::string_view pattern);

// One matcher for a sequence of Isolated splits by `patterns` (each split applied to the pieces of the one before),
// when the sequence is a known one (DeepSeek's three), else nullptr. Its FindAll and Next give the final pieces,
// which cover the text. Process-wide and immutable.
const Splitter* KnownChainSplitter(std::span<const std::string_view> patterns);

}  // namespace tokmeter::tokenizer
