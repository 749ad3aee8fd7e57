#include "tokenizer/fast_split.h"

#include <array>
#include <cstdint>
#include <span>
#include <utility>

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

// DeepSeek-V3 / R1: a Sequence of three Isolated splits (digits in threes, runs of CJK ideographs and kana, then the
// rest), each applied to the pieces of the one before.
constexpr const char* kDsDigits = "\\p{N}{1,3}";
constexpr const char* kDsCjk = "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+";
constexpr const char* kDsMain =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

enum class Family { kGpt2, kCl100k, kQwen, kO200k };

// Character flags for the classes these patterns use.
enum : uint8_t {
  kL = 1,    // \p{L}
  kU = 2,    // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
  kW = 4,    // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
  kN = 8,    // \p{N}
  kS = 16,   // \s (White_Space)
  kNl = 32,  // \r or \n
  kM = 64,   // \p{M}
  kPS = 128  // \p{P} or \p{S}
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
  if (g & kMark) f |= kM;
  if (g & (kPunct | kSymbol)) f |= kPS;
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
  std::string_view pattern() const override {
    switch (F) {
      case Family::kGpt2: return kGpt2;
      case Family::kCl100k: return kCl100k;
      case Family::kQwen: return kQwen;
      case Family::kO200k: return kO200k;
    }
    return {};
  }
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

// DeepSeek's main pattern at i: the end of the match that starts at i, or i when none does (the character is then
// left between matches: a control or format character, an unassigned one, or a digit, not followed by a letter).
inline size_t DsMainAt(std::string_view s, size_t i) {
  size_t n = s.size(), l0 = 0, len = 0;
  const auto c = static_cast<unsigned char>(s[i]);
  // [!-/:-@[-`{-~][A-Za-z]+: one ASCII punctuation character, then ASCII letters.
  auto ascii_letter = [&](size_t k) { return k < n && ((s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'z'); };
  if (((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~')) &&
      ascii_letter(i + 1)) {
    size_t e = i + 2;
    while (ascii_letter(e)) ++e;
    return e;
  }
  const uint8_t f0 = At(s, i, l0);
  // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+: with the optional character when a letter or mark follows it, else without.
  if (!(f0 & (kNl | kL | kPS)) && i + l0 < n && (At(s, i + l0, len) & (kL | kM))) return RunWhile(s, i + l0, kL | kM);
  if (f0 & (kL | kM)) return RunWhile(s, i, kL | kM);
  // ` ?[\p{P}\p{S}]+[\r\n]*`
  size_t j = i;
  if (c == ' ' && i + 1 < n && (At(s, i + 1, len) & kPS))
    j = i + 1;
  else if (!(f0 & kPS))
    j = n;
  if (j < n) {
    size_t e = RunWhile(s, j, kPS);
    while (e < n && (s[e] == '\r' || s[e] == '\n')) ++e;
    return e;
  }
  if (f0 & kS) return Whitespace(s, i, true);
  return i;
}

// The first match of a DeepSeek pattern at or after i, as [b, e); b == s.size() when there is none.
enum class Ds { kDigits, kCjk, kMain };

inline bool IsDsCjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x30FF);  // U+3040-309F and U+30A0-30FF adjoin
}

// The end of the group of up to three \p{N} that starts at i (s[i], `len` bytes long, is one).
inline size_t DigitGroupEnd(std::string_view s, size_t i, size_t len) {
  size_t e = i + len;
  for (int k = 1; k < 3 && e < s.size() && (At(s, e, len) & kN); ++k) e += len;
  return e;
}

template <Ds P>
std::pair<size_t, size_t> DsMatchFrom(std::string_view s, size_t i) {
  const size_t n = s.size();
  size_t len = 0;
  for (; i < n; i += len) {
    if constexpr (P == Ds::kDigits) {
      if (At(s, i, len) & kN) return {i, DigitGroupEnd(s, i, len)};
    } else if constexpr (P == Ds::kCjk) {
      size_t j = i;
      if (IsDsCjk(utf8::Next(s, j))) {
        size_t e = j;
        for (size_t k = e; k < n && IsDsCjk(utf8::Next(s, k));) e = k;
        return {i, e};
      }
      len = j - i;
    } else {
      size_t e = DsMainAt(s, i);
      if (e > i) return {i, e};
      At(s, i, len);
    }
  }
  return {n, n};
}

// Writes the ends of the pieces of an Isolated split of s by P, from the piece end i, at ends[k], ends[k + 1], ...
// until cap; returns where it stopped (a piece end: a later call resumes there as if it had not stopped).
template <Ds P>
size_t IsolatedEnds(std::string_view s, size_t i, size_t* ends, size_t& k, size_t cap) {
  while (i < s.size() && k < cap) {
    auto [b, e] = DsMatchFrom<P>(s, i);
    if (b > i) {
      ends[k++] = b;
      if (k == cap) return b;
    }
    if (e > b) ends[k++] = e;
    i = e;
  }
  return i;
}

// One of DeepSeek's three patterns. Its matches leave gaps, so Next() returns the pieces of an Isolated split.
template <Ds P>
class DsSplitter final : public Splitter {
 public:
  std::string_view pattern() const override { return P == Ds::kDigits ? kDsDigits : P == Ds::kCjk ? kDsCjk : kDsMain; }
  void FindAll(std::string_view s, FnRef<void(size_t, size_t)> on_match) const override {
    for (size_t i = 0, n = s.size(); i < n;) {
      auto [b, e] = DsMatchFrom<P>(s, i);
      if (e > b) on_match(b, e);
      i = e;
    }
  }
  size_t Next(std::string_view s, size_t from, size_t* ends, size_t cap) const override {
    size_t k = 0;
    IsolatedEnds<P>(s, from, ends, k, cap);
    return k;
  }
  bool Covers() const override { return false; }
};

// The three DeepSeek splits in sequence: the final pieces in one pass. A digit group never contains a match of the
// later patterns (they match no \p{N} character alone), and a CJK run never contains a digit, so the pieces are: the
// digit groups, and the main pattern's Isolated pieces within each CJK run and within each stretch of other text.
class DsChainSplitter final : public Splitter {
 public:
  // The pieces cover the text: they are the matches.
  void FindAll(std::string_view s, FnRef<void(size_t, size_t)> on_match) const override {
    constexpr size_t kBatch = 64;
    size_t ends[kBatch];
    for (size_t from = 0, n; (n = Next(s, from, ends, kBatch)) > 0; from = ends[n - 1])
      for (size_t k = 0; k < n; ++k) on_match(k == 0 ? from : ends[k - 1], ends[k]);
  }
  size_t Next(std::string_view s, size_t from, size_t* ends, size_t cap) const override {
    size_t k = 0;
    for (size_t i = from, n = s.size(); i < n && k < cap;) {
      bool digits = false;
      const size_t stretch_end = StretchEnd(s, i, digits);
      if (digits) {
        ends[k++] = stretch_end;
        i = stretch_end;
        continue;
      }
      // The main pattern sees the stretch alone: its (?!\S) looks at the stretch's end, not the text's.
      i = IsolatedEnds<Ds::kMain>(s.substr(0, stretch_end), i, ends, k, cap);
    }
    return k;
  }

 private:
  // The end of the stretch that starts at i: a digit group (up to three \p{N}; `digits` is then set), a CJK run, or
  // other text up to the next digit or CJK character.
  static size_t StretchEnd(std::string_view s, size_t i, bool& digits) {
    const size_t n = s.size();
    size_t len = 0;
    digits = (At(s, i, len) & kN) != 0;
    if (digits) return DigitGroupEnd(s, i, len);
    size_t j = i;
    const bool cjk = IsDsCjk(utf8::Next(s, j));
    size_t e = j;
    while (e < n) {
      size_t k = e;
      const char32_t c = utf8::Next(s, k);
      if (cjk ? !IsDsCjk(c) : (IsDsCjk(c) || (At(s, e, len) & kN))) break;
      e = k;
    }
    return e;
  }
};

}  // namespace

std::string_view KnownSplitPatternName(std::string_view pattern) {
  if (pattern == kGpt2) return "gpt2";
  if (pattern == kCl100k) return "cl100k";
  if (pattern == kQwen) return "qwen";
  if (pattern == kO200k) return "o200k";
  if (pattern == kDsDigits) return "deepseek-digits";
  if (pattern == kDsCjk) return "deepseek-cjk";
  if (pattern == kDsMain) return "deepseek-main";
  return {};
}

std::unique_ptr<Splitter> MakeKnownSplitter(std::string_view pattern, bool /*invert*/) {
  if (pattern == kGpt2) return std::make_unique<KnownSplitter<Family::kGpt2>>();
  if (pattern == kCl100k) return std::make_unique<KnownSplitter<Family::kCl100k>>();
  if (pattern == kQwen) return std::make_unique<KnownSplitter<Family::kQwen>>();
  if (pattern == kO200k) return std::make_unique<KnownSplitter<Family::kO200k>>();
  if (pattern == kDsDigits) return std::make_unique<DsSplitter<Ds::kDigits>>();
  if (pattern == kDsCjk) return std::make_unique<DsSplitter<Ds::kCjk>>();
  if (pattern == kDsMain) return std::make_unique<DsSplitter<Ds::kMain>>();
  return nullptr;
}

const Splitter* KnownChainSplitter(std::span<const std::string_view> patterns) {
  static const DsChainSplitter deepseek;
  if (patterns.size() == 3 && patterns[0] == kDsDigits && patterns[1] == kDsCjk && patterns[2] == kDsMain)
    return &deepseek;
  return nullptr;
}

}  // namespace tokmeter::tokenizer
