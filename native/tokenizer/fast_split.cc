#include "tokenizer/fast_split.h"

#include <array>
#include <cstdint>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer {
namespace {

constexpr const char* kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
constexpr const char* kCl100k =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kQwen =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kO200k =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum class Family { kGpt2, kCl100k, kQwen, kO200k };

// Character flags for the classes these patterns use.
enum : uint8_t {
  kL = 1,    // \p{L}
  kU = 2,    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
  kW = 4,    // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
  kN = 8,    // \p{N}
  kS = 16,   // \s (White_Space)
  kNl = 32,  // \r or \n
};

uint8_t FlagsOfProps(uint8_t props) {
  using namespace unicode;  // NOLINT(google-build-using-namespace)
  GcSet g = Bit(static_cast<Gc>(props & kGcMask));
  uint8_t f = 0;
  if (g & kLetter) f |= kL;
  if (g & (Bit(kLu) | Bit(kLt) | Bit(kLm) | Bit(kLo) | kMark)) f |= kU;
  if (g & (Bit(kLl) | Bit(kLm) | Bit(kLo) | kMark)) f |= kW;
  if (g & kNumber) f |= kN;
  if (props & kWhiteSpaceBit) f |= kS;
  return f;
}

struct FlagTables {
  std::array<uint8_t, 128> ascii{};
  std::array<uint8_t, 64> by_props{};
  FlagTables() {
    for (unsigned p = 0; p < by_props.size(); ++p) by_props[p] = FlagsOfProps(static_cast<uint8_t>(p));
    for (unsigned c = 0; c < ascii.size(); ++c) ascii[c] = by_props[unicode::Props(c)];
    ascii['\r'] |= kNl;
    ascii['\n'] |= kNl;
  }
};
// Built at load from the constant tables of unicode_tables.cc (constant-initialized, so ready before this).
const FlagTables kFlags;

// Flags of the character at s[i]; its byte length in `len`.
inline uint8_t At(std::string_view s, size_t i, size_t& len) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    len = 1;
    return kFlags.ascii[b];
  }
  size_t j = i;
  char32_t cp = utf8::Next(s, j);
  len = j - i;
  return kFlags.by_props[unicode::Props(cp)];
}

// End of the run of characters from i whose flags intersect `mask` (or, with kNot, do not).
template <bool kNot = false>
inline size_t RunWhile(std::string_view s, size_t i, uint8_t mask) {
  size_t n = s.size(), len = 0;
  while (i < n) {
    bool in = (At(s, i, len) & mask) != 0;
    if (in == kNot) break;
    i += len;
  }
  return i;
}

inline bool IsLowerAscii(char c, char want, bool ci) { return c == want || (ci && c == want - 32); }

// 's|'t|'re|'ve|'m|'ll|'d at s[i] (case-insensitive with `ci`, where 's also matches "'ſ", U+017F, whose simple
// case folding is 's'): the end of the contraction, or i.
inline size_t Contraction(std::string_view s, size_t i, bool ci) {
  size_t n = s.size();
  if (i + 1 >= n || s[i] != '\'') return i;
  char c1 = s[i + 1];
  if (IsLowerAscii(c1, 's', ci) || IsLowerAscii(c1, 't', ci) || IsLowerAscii(c1, 'm', ci) || IsLowerAscii(c1, 'd', ci))
    return i + 2;
  if (i + 2 >= n) return i;
  char c2 = s[i + 2];
  if (ci && c1 == '\xC5' && c2 == '\xBF') return i + 3;
  if ((IsLowerAscii(c1, 'r', ci) && IsLowerAscii(c2, 'e', ci)) ||
      (IsLowerAscii(c1, 'v', ci) && IsLowerAscii(c2, 'e', ci)) ||
      (IsLowerAscii(c1, 'l', ci) && IsLowerAscii(c2, 'l', ci)))
    return i + 3;
  return i;
}

// The whitespace alternatives at i (s[i] is whitespace): \s*[\r\n]+ (with `newline_alt`), then \s+(?!\S), then \s+.
inline size_t Whitespace(std::string_view s, size_t i, bool newline_alt) {
  size_t n = s.size(), e = i, last_start = i, nl_end = 0, len = 0;
  while (e < n) {
    uint8_t f = At(s, e, len);
    if (!(f & kS)) break;
    last_start = e;
    e += len;
    if (f & kNl) nl_end = e;
  }
  // \s*[\r\n]+: \s* gives characters back until [\r\n]+ can start, i.e. up to the last \r or \n of the run.
  if (newline_alt && nl_end) return nl_end;
  // \s+(?!\S): the whole run at the end of the subject, else the run less its last character (if that leaves one).
  if (e == n) return e;
  if (last_start > i) return last_start;
  return e;  // \s+
}

// ` ?` + a run of [^\s\p{L}\p{N}] + [\r\n]* (with '/' in o200k's final class), or i.
inline size_t Punctuation(std::string_view s, size_t i, uint8_t f0, bool slash) {
  size_t n = s.size(), j = i, len = 0;
  uint8_t f = f0;
  if (s[i] == ' ' && i + 1 < n) {
    j = i + 1;
    f = At(s, j, len);
  }
  if (f & (kS | kL | kN)) return i;
  size_t e = RunWhile<true>(s, j, kS | kL | kN);
  while (e < n && (s[e] == '\r' || s[e] == '\n' || (slash && s[e] == '/'))) ++e;
  return e;
}

// o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ from a: the end, or 0 when it does not match.
inline size_t UpperThenLower(std::string_view s, size_t a) {
  size_t n = s.size(), e = a, last_both_end = 0, len = 0;
  while (e < n) {
    uint8_t f = At(s, e, len);
    if (!(f & kU)) break;
    e += len;
    if (f & kW) last_both_end = e;
  }
  // The greedy U* first: W+ can start right after it only at a character that is W but not U (Ll).
  if (e < n && (At(s, e, len) & kW)) return RunWhile(s, e, kW);
  // U* gives back characters until W+ can start: at the last character that is in both classes, which W+ then
  // takes alone (what follows it in the run is U only, or the run's end).
  return last_both_end;
}

// o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]* from a: the end, or 0.
inline size_t UpperRun(std::string_view s, size_t a) {
  size_t len = 0;
  if (a >= s.size() || !(At(s, a, len) & kU)) return 0;
  return RunWhile(s, RunWhile(s, a, kU), kW);
}

template <Family F>
size_t MatchAt(std::string_view s, size_t i) {
  size_t n = s.size(), l0 = 0, len = 0;
  uint8_t f0 = At(s, i, l0);
  if constexpr (F == Family::kGpt2) {
    size_t e = Contraction(s, i, false);
    if (e > i) return e;
    size_t j = i;
    uint8_t f = f0;
    if (s[i] == ' ' && i + 1 < n) {
      j = i + 1;
      f = At(s, j, len);
    }
    if (f & kL) return RunWhile(s, j, kL);
    if (f & kN) return RunWhile(s, j, kN);
    if (!(f & kS)) return RunWhile<true>(s, j, kS | kL | kN);
    return Whitespace(s, i, false);
  } else if constexpr (F == Family::kO200k) {
    bool prefixable = !(f0 & (kL | kN | kNl));
    size_t e = 0;
    if (prefixable) e = UpperThenLower(s, i + l0);
    if (!e && (f0 & (kU | kW))) e = UpperThenLower(s, i);
    if (!e && prefixable) e = UpperRun(s, i + l0);
    if (!e && (f0 & kU)) e = UpperRun(s, i);
    if (e) return Contraction(s, e, true);
    if (f0 & kN) {
      e = i + l0;
      for (int k = 1; k < 3 && e < n && (At(s, e, len) & kN); ++k) e += len;
      return e;
    }
    e = Punctuation(s, i, f0, true);
    if (e > i) return e;
    return Whitespace(s, i, true);
  } else {
    size_t e = Contraction(s, i, true);
    if (e > i) return e;
    if (!(f0 & (kL | kN | kNl))) {
      if (i + l0 < n && (At(s, i + l0, len) & kL)) return RunWhile(s, i + l0, kL);
    } else if (f0 & kL) {
      return RunWhile(s, i, kL);
    }
    if (f0 & kN) {
      e = i + l0;
      if constexpr (F == Family::kCl100k)
        for (int k = 1; k < 3 && e < n && (At(s, e, len) & kN); ++k) e += len;
      return e;
    }
    e = Punctuation(s, i, f0, false);
    if (e > i) return e;
    return Whitespace(s, i, true);
  }
}

template <Family F>
class KnownSplitter final : public Splitter {
 public:
  void FindAll(std::string_view s, FnRef<void(size_t, size_t)> on_match) const override {
    for (size_t i = 0, n = s.size(); i < n;) {
      size_t e = MatchAt<F>(s, i);
      on_match(i, e);
      i = e;
    }
  }
  size_t Next(std::string_view s, size_t from, size_t* ends, size_t cap) const override {
    size_t k = 0;
    for (size_t i = from, n = s.size(); i < n && k < cap; ++k) ends[k] = i = MatchAt<F>(s, i);
    return k;
  }
};

}  // namespace

std::string_view KnownSplitPatternName(std::string_view pattern) {
  if (pattern == kGpt2) return "gpt2";
  if (pattern == kCl100k) return "cl100k";
  if (pattern == kQwen) return "qwen";
  if (pattern == kO200k) return "o200k";
  return {};
}

std::unique_ptr<Splitter> MakeKnownSplitter(std::string_view pattern, bool /*invert*/) {
  if (pattern == kGpt2) return std::make_unique<KnownSplitter<Family::kGpt2>>();
  if (pattern == kCl100k) return std::make_unique<KnownSplitter<Family::kCl100k>>();
  if (pattern == kQwen) return std::make_unique<KnownSplitter<Family::kQwen>>();
  if (pattern == kO200k) return std::make_unique<KnownSplitter<Family::kO200k>>();
  return nullptr;
}

}  // namespace tokmeter::tokenizer
