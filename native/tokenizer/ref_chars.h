// Character classes and the lowercase mapping as the reference (Hugging Face `tokenizers`) has them where it does not
// follow the Unicode version of unicode_tables.h, generated into ref_chars.cc by scripts/gen-ref-chars.mjs from the
// reference itself:
//   - BertNormalizer, BertPreTokenizer and Punctuation take their classes from the unicode_categories crate
//     (Unicode 8.0; its "other" is Cc Cf Co, without Cn) and BertNormalizer's strip_accents uses an NFD of Unicode 12;
//   - Lowercase and BertNormalizer's lowercase are Rust's char::to_lowercase (a newer Unicode than utf8proc's);
//   - NFC, NFD, NFKC and NFKD leave alone what the reference's (older) Unicode does not decompose;
//   - StripAccents drops the combining marks of the reference's unicode-normalization tables.
// unicode.h's IsPunctuation, IsNonspacingMark, IsBertControl and AppendLower read them. Stateless, thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>

namespace tokmeter::tokenizer::unicode {

struct CodeRange {
  char32_t first, last;
};
struct CodeMapping {
  char32_t from, to;
};

namespace ref_tables {
extern const CodeRange kOther[];
extern const size_t kOtherSize;
extern const CodeRange kPunctuation[];
extern const size_t kPunctuationSize;
extern const CodeRange kNonspacingMark[];
extern const size_t kNonspacingMarkSize;
extern const CodeRange kNfdKept[];
extern const size_t kNfdKeptSize;
extern const CodeRange kNfkdKept[];
extern const size_t kNfkdKeptSize;
extern const CodeRange kCombiningMark[];
extern const size_t kCombiningMarkSize;
// Every code point that lowercases to one other code point (U+0130, the one that lowercases to two, is not here).
extern const CodeMapping kLower[];
extern const size_t kLowerSize;
}  // namespace ref_tables

// Whether c lies in one of the sorted, disjoint ranges.
inline bool InRanges(const CodeRange* ranges, size_t n, char32_t c) {
  const CodeRange* end = ranges + n;
  const CodeRange* it = std::upper_bound(ranges, end, c, [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != ranges && c <= (it - 1)->last;
}

// A code point the reference's NFD leaves alone as a starter (it is newer than the reference's tables) where a newer
// NFD decomposes it or gives it a combining class that reorders it.
inline bool IsNfdKept(char32_t c) {
  return c >= ref_tables::kNfdKept[0].first && InRanges(ref_tables::kNfdKept, ref_tables::kNfdKeptSize, c);
}
// The same for compatibility decompositions (a superset of IsNfdKept).
inline bool IsNfkdKept(char32_t c) {
  return c >= ref_tables::kNfkdKept[0].first && InRanges(ref_tables::kNfkdKept, ref_tables::kNfkdKeptSize, c);
}
// A combining mark as the StripAccents normalizer has it (all of M in the reference's unicode-normalization tables).
inline bool IsStripAccentsMark(char32_t c) {
  return c >= 0x300 && InRanges(ref_tables::kCombiningMark, ref_tables::kCombiningMarkSize, c);
}

}  // namespace tokmeter::tokenizer::unicode
