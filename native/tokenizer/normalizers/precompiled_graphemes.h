// Extended grapheme clusters (UAX #29, Unicode 16.0, rules GB3-GB13 with GB9c), as the reference's
// unicode-segmentation crate finds them for the Precompiled normalizer. Stateless, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tokmeter::tokenizer::normalizers::grapheme {

// Grapheme_Cluster_Break values, in the order of scripts/gen-grapheme-tables.mjs.
enum Gcb : uint8_t { kOther, kCR, kLF, kControl, kExtend, kZWJ, kRI, kPrepend, kSpacingMark, kL, kV, kT, kLV, kLVT };
inline constexpr uint8_t kPictBit = 0x10;
inline constexpr int kInCBShift = 5;
enum InCB : uint8_t { kInCBNone, kInCBLinker, kInCBConsonant, kInCBExtend };

// precompiled_grapheme_tables.cc (generated): ranges of equal properties, sorted by first code point.
extern const uint32_t kRangeStart[];
extern const uint8_t kRangeProps[];
extern const size_t kRangeCount;

uint8_t Props(char32_t c);

// End of the grapheme cluster that starts at s[pos] (pos < s.size(), s valid UTF-8).
size_t ClusterEnd(std::string_view s, size_t pos);

}  // namespace tokmeter::tokenizer::normalizers::grapheme
