// tokenizer/utf8.h FromUtf16: the bytes V8 writes for a JS string (unpaired surrogates as U+FFFD), on the vector
// path and the portable one, for every BMP unit, every surrogate pairing, and random mixes at every offset of the
// vector path's 8-unit blocks.
#include <random>
#include <string>
#include <vector>

#include "synthetic.h"
#include "tokenizer/utf8.h"

namespace utf8 = tokmeter::tokenizer::utf8;

namespace {
// The definition, one code point at a time.
std::string Reference(const std::u16string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;
    }
    utf8::Append(out, c);
  }
  return out;
}

bool Same(const std::u16string& s) {
  const std::string want = Reference(s);
  std::string a(s.size() * 3 + 16, '\0'), b(s.size() * 3 + 16, '\0');
  a.resize(utf8::FromUtf16(s.data(), s.size(), a.data()));
  b.resize(utf8::FromUtf16Portable(s.data(), s.size(), b.data()));
  return a == want && b == want;
}
}  // namespace

TEST(every_bmp_unit_alone_and_in_a_block) {
  bool ok = true;
  for (char32_t c = 0; c <= 0xFFFF && ok; ++c) {
    const char16_t u = static_cast<char16_t>(c);
    ok = Same(std::u16string(1, u)) && Same(u"abc" + std::u16string(1, u) + u"defghijklm") &&
         Same(std::u16string(16, u));
  }
  CHECK(ok);
}

TEST(surrogates_pair_or_become_replacement_characters) {
  CHECK(Same(u"\xD83D\xDE42"));                        // a pair
  CHECK(Same(u"\xD83D"));                              // a lone high surrogate at the end
  CHECK(Same(u"\xDE42\xD83D"));                        // reversed: two lone ones
  CHECK(Same(u"abcdefg\xD83D\xDE42hijklmnop"));        // a pair across the 8-unit block boundary
  CHECK(Same(u"\xD800\xD800\xDC00\xDC00 tail text"));  // high, pair, low
  std::string out(64, '\0');
  const std::u16string lone = u"a\xD800z";
  out.resize(utf8::FromUtf16(lone.data(), lone.size(), out.data()));
  CHECK(out == "a\xEF\xBF\xBDz");
}

TEST(random_mixes_at_every_offset) {
  std::mt19937 rng(7);
  const char16_t pool[] = {u'a',   u' ',   u'\n',  0x7F,   0x80,   0xE9,   0x7FF, 0x800,
                           0x4E2D, 0xFFFF, 0xD83D, 0xDE42, 0xDBFF, 0xDC00, 0x0416};
  bool ok = true;
  for (int round = 0; round < 20000 && ok; ++round) {
    std::u16string s(rng() % 40, u'a');
    for (auto& u : s) u = rng() % 3 == 0 ? pool[rng() % std::size(pool)] : static_cast<char16_t>('a' + rng() % 26);
    ok = Same(s);
  }
  CHECK(ok);
  CHECK(Same(u""));
}
int main() { return tt::RunAll(); }
