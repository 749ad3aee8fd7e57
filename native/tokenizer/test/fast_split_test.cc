// The hand-written split matchers (fast_split.h) against PCRE2 running the same pattern (regex.h, whose \p{..}
// classes come from the same Unicode tables): identical matches on random strings over the characters where the
// alternatives interact (each letter category, marks, digits of several scripts, every kind of whitespace, \r \n,
// apostrophes and contraction letters, U+017F, punctuation, symbols, unassigned code points), and linear time with
// no failure on long runs of each class.
#include <chrono>
#include <memory>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "synthetic.h"
#include "tokenizer/fast_split.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

using namespace tt;
using tokmeter::tokenizer::KnownChainSplitter;
using tokmeter::tokenizer::KnownSplitPatternName;
using tokmeter::tokenizer::MakeKnownSplitter;
using tokmeter::tokenizer::Regex;
using tokmeter::tokenizer::RegexScratch;
using tokmeter::tokenizer::Splitter;
namespace utf8 = tokmeter::tokenizer::utf8;
namespace unicode = tokmeter::tokenizer::unicode;

namespace {

const char* const kPatterns[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    // DeepSeek-V3's three, as its tokenizer.json spells them (raw CR and LF inside the classes).
    "\\p{N}{1,3}",
    "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};
const char* const* const kDeepSeek = kPatterns + 4;  // the three above, applied in sequence

// Characters where the alternatives meet: Lu Ll Lt Lm Lo (old and Unicode 15/16 ones), Mn Mc Me, Nd Nl No,
// whitespace (ASCII, NEL, NBSP, U+1680, U+2000, U+2028, U+3000), U+180E (not whitespace since Unicode 6.3), CR LF,
// apostrophe and the contraction letters in both cases, U+017F, '/', punctuation, symbols, controls, unassigned.
const char32_t kAlphabet[] = {'a', 'B', 's', 'S', 't', 'T', 'r', 'R', 'e', 'E', 'v', 'l', 'L', 'd', 'D', 'm', 'M', '\'',
                              ' ', '\t', '\n', '\r', 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x2000, 0x2028, 0x2029, 0x3000,
                              0x180E, '0', '7', 0x0663, 0x2167, 0x00B2, 0x01C5, 0x02B0, 0x05D0, 0x4E2D, 0x0300, 0x0301,
                              0x0903, 0x20DD, 0x017F, '/', '.', '!', '$', '+', 0x00BF, 0x2014, 0x1F600, 0x200D, 0xFE0F,
                              0x0001, 0x0378, 0x11F00, 0x11F04, 0x10D4A, 0x10D41, 0x1C89, 0x10940, 0x1E5D0, 0x0130,
                              0x212A, 0xE000, 0x10FFFF,
                              // DeepSeek's classes: kana (Lo, Lm, Mn, Sk, Pd, Po, an unassigned one), the ends of its
                              // ideograph range, ASCII punctuation before ASCII letters, a symbol, a format character.
                              0x3042, 0x30A2, 0x30FC, 0x3099, 0x309B, 0x30A0, 0x30FB, 0x3040, 0x9FA5, 0x9FA6, 0x4E00,
                              0x4DFF, '_', '`', '~', '-', 'z', 0x00E9, 0x2192, 0x00AD};

std::string RandomString(std::mt19937_64& rng, size_t len) {
  std::string s;
  for (size_t i = 0; i < len; ++i) {
    uint64_t r = rng();
    char32_t c = (r & 7) == 0 ? static_cast<char32_t>((r >> 8) % 0x110000)
                              : kAlphabet[(r >> 8) % (sizeof kAlphabet / sizeof kAlphabet[0])];
    if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
    utf8::Append(s, c);
  }
  return s;
}

using Matches = std::vector<std::pair<size_t, size_t>>;

Matches FastMatches(const tokmeter::tokenizer::Splitter& sp, std::string_view s) {
  Matches m;
  auto on = [&](size_t b, size_t e) { m.emplace_back(b, e); };
  sp.FindAll(s, on);
  return m;
}

Matches RegexMatches(const Regex& rx, RegexScratch& scratch, std::string_view s) {
  Matches m;
  auto on = [&](size_t b, size_t e) { m.emplace_back(b, e); };
  rx.FindAll(s, scratch, on);
  return m;
}

}  // namespace

static Reg r1("known patterns are recognised exactly, others are not", [] {
  CHECK(KnownSplitPatternName(kPatterns[0]) == "gpt2");
  CHECK(KnownSplitPatternName(kPatterns[1]) == "cl100k");
  CHECK(KnownSplitPatternName(kPatterns[2]) == "qwen");
  CHECK(KnownSplitPatternName(kPatterns[3]) == "o200k");
  CHECK(KnownSplitPatternName(kDeepSeek[0]) == "deepseek-digits");
  CHECK(KnownSplitPatternName(kDeepSeek[1]) == "deepseek-cjk");
  CHECK(KnownSplitPatternName(kDeepSeek[2]) == "deepseek-main");
  std::string_view seq[] = {kDeepSeek[0], kDeepSeek[1], kDeepSeek[2]};
  CHECK(KnownChainSplitter(seq) != nullptr);
  CHECK(KnownChainSplitter(std::span<const std::string_view>(seq, 2)) == nullptr);
  std::string_view swapped[] = {kDeepSeek[1], kDeepSeek[0], kDeepSeek[2]};
  CHECK(KnownChainSplitter(swapped) == nullptr);
  CHECK(MakeKnownSplitter(std::string(kPatterns[1]) + "|x", false) == nullptr);
  CHECK(MakeKnownSplitter("\\p{N}{1,2}", false) == nullptr);
});

static Reg r2("hand-written matchers equal PCRE2 on random strings", [] {
  std::mt19937_64 rng(20261205);
  RegexScratch scratch;
  for (const char* p : kPatterns) {
    auto fast = MakeKnownSplitter(p, false);
    Regex rx(p, "test");
    CHECK(fast != nullptr);
    int bad = 0;
    for (int k = 0; k < 40000 && bad < 3; ++k) {
      std::string s = RandomString(rng, 1 + rng() % 24);
      if (FastMatches(*fast, s) != RegexMatches(rx, scratch, s)) {
        ++bad;
        std::string hex;
        for (unsigned char c : s) {
          char b[4];
          std::snprintf(b, sizeof b, "%02X", c);
          hex += b;
        }
        std::printf("  %s differs on %s\n", std::string(KnownSplitPatternName(p)).c_str(), hex.c_str());
      }
    }
    CHECK(bad == 0);
  }
});

static Reg r3("every code point between letters, spaces and marks matches PCRE2", [] {
  RegexScratch scratch;
  for (const char* p : kPatterns) {
    auto fast = MakeKnownSplitter(p, false);
    Regex rx(p, "test");
    int bad = 0;
    std::string s;
    for (char32_t c = 0; c < 0x110000 && bad < 3; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      if (s.size() > 4000 || c + 1 == 0x110000) {
        if (FastMatches(*fast, s) != RegexMatches(rx, scratch, s)) {
          ++bad;
          std::printf("  %s differs before U+%X\n", std::string(KnownSplitPatternName(p)).c_str(),
                      static_cast<unsigned>(c));
        }
        s.clear();
      }
      for (const char* ctx : {"a", " ", "A", "\n", "'", "1"}) {
        s += ctx;
        utf8::Append(s, c);
      }
      utf8::Append(s, c);
      s += "b \xCC\x81";
    }
    CHECK(bad == 0);
  }
});

static Reg r4("long runs of every class split in linear time without limits", [] {
  const char* runs[] = {" ", "a", "A", "1", "!", "\n", "\r\n", " \n", "\xCC\x81", "\xE4\xB8\xAD", "'s", "a\xCC\x81"};
  for (const char* p : kPatterns) {
    auto fast = MakeKnownSplitter(p, false);
    for (const char* unit : runs) {
      std::string s;
      while (s.size() < 10'000'000) s += unit;
      s += "x";
      auto t0 = std::chrono::steady_clock::now();
      size_t n = 0, covered = 0, prev = 0;
      bool contiguous = true;
      auto on = [&](size_t b, size_t e) {
        contiguous = contiguous && b == prev && e > b;
        prev = e;
        covered += e - b;
        ++n;
      };
      fast->FindAll(s, on);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (fast->Covers()) CHECK(contiguous && covered == s.size());
      // Not a timing assertion: a report (a quadratic matcher would take hours here, not milliseconds).
      if (ms > 2000)
        std::printf("  note: %s on 10 MB of '%s' took %.0f ms\n", KnownSplitPatternName(p).data(), unit, ms);
    }
  }
});

static Reg r5("PCRE2 classes use the reference's Unicode version", [] {
  RegexScratch scratch;
  Regex letters("\\p{L}+", "test");
  // U+10D4A (Garay, Unicode 16) is a letter; U+10940 (Sidetic, Unicode 17) is not yet.
  std::string s =
      "a\xF0\x90\xB5\x8A"
      "b";
  CHECK((RegexMatches(letters, scratch, s) == Matches{{0, s.size()}}));
  std::string t =
      "a\xF0\x90\xA5\x80"
      "b";
  CHECK((RegexMatches(letters, scratch, t) == Matches{{0, 1}, {5, 6}}));
  CHECK(unicode::Category(0x10D4A) == unicode::kLo);
  CHECK(unicode::Category(0x11F00) == unicode::kMn);
  CHECK(unicode::Category(0x10940) == unicode::kCn);
  CHECK(unicode::Props(' ') & unicode::kWhiteSpaceBit);
  CHECK(!(unicode::Props(0x180E) & unicode::kWhiteSpaceBit));
});

static Reg r5b("scripts, binary properties and blocks come from our tables, with the reference's meaning", [] {
  RegexScratch scratch;
  auto pieces = [&](const char* pattern, const std::string& s) {
    Regex rx(pattern, "test");
    return RegexMatches(rx, scratch, s);
  };
  const std::string han =
      "a\xE4\xB8\x80"
      "b";  // U+4E00
  const std::string ext_h =
      "a\xF0\xB1\x8D\x90"
      "b";  // U+31350, CJK Ext. H (Unicode 15)
  const std::string comma =
      "a\xE3\x80\x81"
      "b";  // U+3001: Script Common, Script_Extensions has Han
  const std::string kawi =
      "1\xF0\x91\xBC\x80"
      "2";  // U+11F00 (Unicode 15), Alphabetic
  for (const char* p : {"\\p{Han}+", "\\p{Hani}+", "\\p{han}+", "[\\p{Han}]+"}) {
    CHECK((pieces(p, han) == Matches{{1, 4}}));
    CHECK((pieces(p, ext_h) == Matches{{1, 5}}));
    CHECK(pieces(p, comma).empty());  // the Script property, not Script_Extensions (PCRE2's own \p{Han})
  }
  CHECK((pieces("\\p{Alphabetic}+", kawi) == Matches{{1, 5}}));
  CHECK((pieces("\\p{White Space}+",
                "a \xE3\x80\x80"
                "b") == Matches{{1, 5}}));
  CHECK((pieces("\\P{Han}+", han) == Matches{{0, 1}, {4, 5}}));
  CHECK((pieces("[^\\p{Han}\\p{Latin}]+", "a1\xE4\xB8\x80!b") == Matches{{1, 2}, {5, 6}}));
  CHECK((pieces("\\p{In_Basic_Latin}+",
                "ab\xC3\xA9"
                "c") == Matches{{0, 2}, {4, 5}}));
  CHECK((pieces("\\p{^Latin}+",
                "ab\xCE\xB1"
                "c") == Matches{{2, 4}}));
  CHECK((pieces("x\\p{Cs}|b", "ab") == Matches{{1, 2}}));  // no code point: never matches
  auto same = [](const char* a, const char* b) {
    const std::string* x = unicode::PropertyClassBody(a, false);
    const std::string* y = unicode::PropertyClassBody(b, false);
    return x && y && !x->empty() && *x == *y;
  };
  CHECK(same("Old Italic", "old_italic"));
  CHECK(same("Gukh", "Gurung_Khema"));  // a script new in Unicode 16 and its code
  CHECK(same("Alpha", "Alphabetic"));
  CHECK(same("WSpace", "White_Space"));
  CHECK(unicode::PropertyClassBody("NotAProperty", false) == nullptr);
});

namespace {

// The pieces of an Isolated split: the matches and the text between them.
Matches IsolatedPieces(const Matches& matches, size_t n) {
  Matches out;
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (b > prev) out.emplace_back(prev, b);
    out.emplace_back(b, e);
    prev = e;
  }
  if (prev < n) out.emplace_back(prev, n);
  return out;
}

// DeepSeek's three splits by PCRE2, each on the pieces of the one before (as the reference runs a Sequence).
Matches RegexChain(const std::vector<std::unique_ptr<Regex>>& rx, RegexScratch& scratch, std::string_view s) {
  Matches pieces{{0, s.size()}};
  if (s.empty()) pieces.clear();
  for (const auto& r : rx) {
    Matches next;
    for (auto [b, e] : pieces)
      for (auto [pb, pe] : IsolatedPieces(RegexMatches(*r, scratch, s.substr(b, e - b)), e - b))
        next.emplace_back(b + pb, b + pe);
    pieces = std::move(next);
  }
  return pieces;
}

// Next() in batches of `cap`, from each returned end: the pieces it gives.
Matches NextPieces(const Splitter& sp, std::string_view s, size_t cap) {
  Matches out;
  std::vector<size_t> ends(cap);
  for (size_t from = 0, n; (n = sp.Next(s, from, ends.data(), cap)) > 0; from = ends[n - 1])
    for (size_t k = 0; k < n; ++k) {
      out.emplace_back(k == 0 ? from : ends[k - 1], ends[k]);
      if (out.size() > s.size() + 1) return out;  // not a cover: stop
    }
  return out;
}

std::string Hex(std::string_view s) {
  std::string hex;
  for (unsigned char c : s) {
    char b[4];
    std::snprintf(b, sizeof b, "%02X", c);
    hex += b;
  }
  return hex;
}

}  // namespace

static Reg r6("DeepSeek's three splits in sequence: one matcher equals PCRE2 split after split", [] {
  std::string_view seq[] = {kDeepSeek[0], kDeepSeek[1], kDeepSeek[2]};
  const Splitter* chain = KnownChainSplitter(seq);
  CHECK(chain != nullptr);
  std::vector<std::unique_ptr<Regex>> rx;
  for (int k = 0; k < 3; ++k) rx.push_back(std::make_unique<Regex>(kDeepSeek[k], "test"));
  RegexScratch scratch;
  std::mt19937_64 rng(20261206);
  int bad = 0;
  auto check = [&](const std::string& s) {
    const Matches want = RegexChain(rx, scratch, s);
    if (FastMatches(*chain, s) != want || NextPieces(*chain, s, 64) != want || NextPieces(*chain, s, 1) != want ||
        NextPieces(*chain, s, 3) != want) {
      if (++bad <= 3) std::printf("  deepseek chain differs on %s\n", Hex(s).c_str());
    }
  };
  for (int k = 0; k < 60000 && bad < 3; ++k) check(RandomString(rng, 1 + rng() % 24));
  // Every code point in the contexts where the three patterns meet.
  std::string s;
  for (char32_t c = 0; c < 0x110000 && bad < 3; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    if (s.size() > 3000) {
      check(s);
      s.clear();
    }
    for (const char* ctx : {"a", " ", "1", "\n", "!", "\xE4\xB8\xAD", "\xE3\x81\x82", " \xCC\x81", "\t"}) {
      s += ctx;
      utf8::Append(s, c);
    }
    utf8::Append(s, c);
    s += "b  ";
  }
  check(s);
  CHECK(bad == 0);
});

static Reg r7("Next gives the pieces of an Isolated split, in batches of any size", [] {
  std::mt19937_64 rng(7);
  RegexScratch scratch;
  for (const char* p : kPatterns) {
    auto fast = MakeKnownSplitter(p, false);
    int bad = 0;
    for (int k = 0; k < 5000 && bad < 3; ++k) {
      std::string s = RandomString(rng, 1 + rng() % 40);
      const Matches want = IsolatedPieces(FastMatches(*fast, s), s.size());
      for (size_t cap : {1, 2, 5, 64})
        if (NextPieces(*fast, s, cap) != want && ++bad <= 3)
          std::printf("  %s: Next(cap %zu) differs on %s\n", KnownSplitPatternName(p).data(), cap, Hex(s).c_str());
    }
    CHECK(bad == 0);
  }
});

int main() { return RunAll(); }
