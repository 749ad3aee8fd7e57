// Unicode general category and White_Space of every code point, at the Unicode version of the reference tokenizer
// (16.0; generated into unicode_tables.cc by scripts/gen-unicode-tables.mjs). PCRE2's and utf8proc's tables are
// older, so the split patterns' classes (\p{L}, \p{N}, \s, ...) are decided here instead. Stateless, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokmeter::tokenizer::unicode {

// General category; Cn (unassigned, and code points past U+10FFFF) is 0.
enum Gc : uint8_t {
  kCn,
  kLu,
  kLl,
  kLt,
  kLm,
  kLo,
  kMn,
  kMc,
  kMe,
  kNd,
  kNl,
  kNo,
  kPc,
  kPd,
  kPs,
  kPe,
  kPi,
  kPf,
  kPo,
  kSm,
  kSc,
  kSk,
  kSo,
  kZs,
  kZl,
  kZp,
  kCc,
  kCf,
  kCs,
  kCo,
  kGcCount
};

inline constexpr int kBlockShift = 7;
inline constexpr uint8_t kWhiteSpaceBit = 0x20;
inline constexpr uint8_t kGcMask = 0x1F;

extern const uint16_t kPropStage1[0x110000 >> kBlockShift];
extern const uint8_t kPropStage2[];

// General category | kWhiteSpaceBit.
inline uint8_t Props(char32_t c) {
  if (c >= 0x110000) return 0;
  return kPropStage2[(static_cast<uint32_t>(kPropStage1[c >> kBlockShift]) << kBlockShift) |
                     (c & ((1u << kBlockShift) - 1))];
}
inline Gc Category(char32_t c) { return static_cast<Gc>(Props(c) & kGcMask); }

// A set of general categories, one bit per Gc.
using GcSet = uint32_t;
constexpr GcSet Bit(Gc g) { return GcSet{1} << g; }
inline constexpr GcSet kLetter = Bit(kLu) | Bit(kLl) | Bit(kLt) | Bit(kLm) | Bit(kLo);
inline constexpr GcSet kMark = Bit(kMn) | Bit(kMc) | Bit(kMe);
inline constexpr GcSet kNumber = Bit(kNd) | Bit(kNl) | Bit(kNo);
inline constexpr GcSet kPunct = Bit(kPc) | Bit(kPd) | Bit(kPs) | Bit(kPe) | Bit(kPi) | Bit(kPf) | Bit(kPo);
inline constexpr GcSet kSymbol = Bit(kSm) | Bit(kSc) | Bit(kSk) | Bit(kSo);
inline constexpr GcSet kSeparator = Bit(kZs) | Bit(kZl) | Bit(kZp);
inline constexpr GcSet kOther = Bit(kCn) | Bit(kCc) | Bit(kCf) | Bit(kCs) | Bit(kCo);

// The categories named by a Unicode property in a pattern (\p{L}, \p{Letter}, \p{Lu}, \p{N}, ...), or 0 when the
// name is not a general category (scripts, binary properties). Names compare as the reference's regex engine
// compares them: case, spaces, hyphens and underscores ignored.
GcSet CategoriesByName(std::string_view name);

// Scripts (long names and ISO 15924 codes), binary properties and blocks ("In" + name), as code point ranges: entry
// k names kPropertyRanges[2 * first .. 2 * (first + count)), [first, last] pairs. Names are stored lower case without
// spaces, hyphens and underscores, sorted.
struct NamedRanges {
  const char* name;
  uint32_t first, count;
};
extern const NamedRanges kNamedRanges[];
extern const size_t kNamedRangesCount;
extern const uint32_t kPropertyRanges[];

// The code points of the script, binary property or block `name` names (\p{Han}, \p{Hani}, \p{Alphabetic},
// \p{In_Basic_Latin}; the Script property, not Script_Extensions, as the reference's regex engine has it), or of
// their complement with `negate`, as a PCRE2 class body; nullptr when `name` is none of these. Cached.
const std::string* PropertyClassBody(std::string_view name, bool negate);

// The code points of `set` (with White_Space when `white_space`), as a PCRE2 class body "\x{41}-\x{5A}\x{61}...".
// Computed once per distinct argument pair and cached.
const std::string& ClassBody(GcSet set, bool white_space = false);

}  // namespace tokmeter::tokenizer::unicode
