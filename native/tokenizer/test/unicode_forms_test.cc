// NFC / NFD / NFKC / NFKD: the normalizer copies the inert characters and normalizes only the pieces around the
// others. Its output must be exactly what utf8proc gives for the whole text (cut only at the characters the
// reference keeps, ref_chars.h), for every code point in several contexts and for random mixes of the characters
// that reorder, compose or decompose.
#include <utf8proc.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "synthetic.h"
#include "tokenizer/normalizers/components.h"
#include "tokenizer/normalizers/normalizer.h"
#include "tokenizer/ref_chars.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

using namespace tt;
namespace unicode = tokmeter::tokenizer::unicode;
namespace utf8 = tokmeter::tokenizer::utf8;
using tokmeter::tokenizer::normalizers::Form;

namespace {

struct FormCase {
  Form form;
  const char* name;
  int options;
  bool compat;
};
const FormCase kForms[] = {
    {Form::kNFC, "NFC", UTF8PROC_STABLE | UTF8PROC_COMPOSE, false},
    {Form::kNFD, "NFD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, false},
    {Form::kNFKC, "NFKC", UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, true},
    {Form::kNFKD, "NFKD", UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, true},
};

void MapWhole(std::string_view part, int options, std::string& out) {
  if (part.empty()) return;
  utf8proc_uint8_t* dst = nullptr;
  auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(part.data()),
                        static_cast<utf8proc_ssize_t>(part.size()), &dst, static_cast<utf8proc_option_t>(options));
  if (n < 0) std::abort();
  out.append(reinterpret_cast<char*>(dst), static_cast<size_t>(n));
  std::free(dst);
}

// The whole text through utf8proc, cut only at the characters the reference keeps, and in front of U+11A7. utf8proc
// (2.8) composes an LV syllable with U+11A7 as if it were a T jamo and drops it (가 U+11A7 -> 가); it is the T base,
// not a T jamo (those are U+11A8..U+11C2), and the reference leaves both characters as they are.
std::string Expected(const FormCase& f, std::string_view in) {
  std::string out;
  size_t from = 0;
  for (size_t i = 0; i < in.size();) {
    const size_t at = i;
    const char32_t c = utf8::Next(in, i);
    if (c == U'\u11A7') {
      MapWhole(in.substr(from, at - from), f.options, out);
      from = at;
    } else if (f.compat ? unicode::IsNfkdKept(c) : unicode::IsNfdKept(c)) {
      MapWhole(in.substr(from, at - from), f.options, out);
      out.append(in.data() + at, i - at);
      from = i;
    }
  }
  MapWhole(in.substr(from), f.options, out);
  return out;
}

std::string Got(const Normalizer& n, std::string_view in) {
  std::string out;
  RegexScratch rx;
  return n.Apply(in, out, rx) ? out : std::string(in);
}

bool Surrogate(char32_t c) { return c >= 0xD800 && c <= 0xDFFF; }

}  // namespace

TEST(unicode_forms_every_code_point_in_context) {
  // Each code point after a letter, before and after combining marks, after a Hangul L jamo and an LV syllable,
  // doubled, and after an Indic vowel that composes with a following length mark. The templates of 2,048 code
  // points are run as one text, so neighbouring templates meet too.
  const std::u32string before[] = {U"a", U"e\u0301", U"\u1100", U"\uAC00", U"\u0B47", U""};
  for (const FormCase& f : kForms) {
    auto n = tokmeter::tokenizer::normalizers::UnicodeForm(f.form);
    size_t mismatches = 0;
    for (char32_t block = 0; block < 0x110000; block += 2048) {
      std::string text;
      for (char32_t c = block; c < block + 2048; ++c) {
        if (Surrogate(c)) continue;
        for (const auto& b : before) {
          for (char32_t p : b) utf8::Append(text, p);
          utf8::Append(text, c);
        }
        utf8::Append(text, c);
        utf8::Append(text, U'\u0323');  // a mark of class 220 after one of class 230: reordered
        utf8::Append(text, U'\u0308');
        utf8::Append(text, U'1');
      }
      if (Got(*n, text) != Expected(f, text)) {
        // Narrow it down to the code point, for the message.
        for (char32_t c = block; c < block + 2048 && mismatches < 5; ++c) {
          if (Surrogate(c)) continue;
          std::string one;
          for (const auto& b : before) {
            for (char32_t p : b) utf8::Append(one, p);
            utf8::Append(one, c);
          }
          if (Got(*n, one) != Expected(f, one)) {
            ++mismatches;
            CHECK(false && "normalized differently from the whole text");
            std::fprintf(stderr, "  %s U+%04X\n", f.name, static_cast<unsigned>(c));
          }
        }
        CHECK_EQ(Got(*n, text), Expected(f, text));
      }
    }
  }
}

TEST(unicode_forms_random_mixes) {
  // Random texts over the characters that take part in normalization: combining marks of several classes, ccc-0
  // characters that compose with what precedes them, Hangul jamo and syllables, precomposed and compatibility
  // characters, characters the reference keeps, and inert ones between them.
  std::vector<char32_t> pool = {
      U'a',          U'e',          U'A',          U' ',         U'\n',     U'1',      U'\u00E9', U'\u0301',
      U'\u0300',     U'\u0323',     U'\u0308',     U'\u0338',    U'\u1100', U'\u1161', U'\u11A7', U'\u11A8',
      U'\uAC00',     U'\uAC01',     U'\u0B47',     U'\u0B3E',    U'\u0B57', U'\u0CC6', U'\u0CD5', U'\u0DD9',
      U'\u0DCF',     U'\u1025',     U'\u102E',     U'\u3099',    U'\u304B', U'\u30AB', U'\uFB01', U'\u2126',
      U'\u212B',     U'\u1E9B',     U'\uFF21',     U'\u00BD',    U'\u2460', U'\u4E00', U'\u0416', U'\U0001F600',
      U'\U00011131', U'\U00011127', U'\U0001133E', U'\U00011347'};
  for (char32_t c = 0; c < 0x30000; ++c) {  // every character the reference keeps, below the inert tables' end
    if (!Surrogate(c) && (unicode::IsNfkdKept(c) || unicode::IsNfdKept(c))) pool.push_back(c);
  }
  std::mt19937 rng(20261206);
  for (const FormCase& f : kForms) {
    auto n = tokmeter::tokenizer::normalizers::UnicodeForm(f.form);
    int failures = 0;
    for (int k = 0; k < 40000 && failures < 5; ++k) {
      std::string text;
      const size_t len = 1 + rng() % 12;
      for (size_t j = 0; j < len; ++j) utf8::Append(text, pool[rng() % pool.size()]);
      const std::string got = Got(*n, text), want = Expected(f, text);
      if (got != want) {
        ++failures;
        std::fprintf(stderr, "  %s on %zu bytes\n", f.name, text.size());
      }
      CHECK_EQ(got, want);
    }
  }
}

TEST(unicode_forms_unchanged_text_is_not_copied) {
  // Text made only of inert characters comes back unchanged (Apply returns false), whatever the script; precomposed
  // letters are inert to NFC.
  auto nfc = tokmeter::tokenizer::normalizers::UnicodeForm(Form::kNFC);
  std::string out = "sentinel";
  RegexScratch rx;
  const std::string text =
      "caf\xC3\xA9 \xE1\xBA\xBFt \xE2\x80\x94 \xE4\xB8\xAD\xE6\x96\x87 \xD0\x96 \xF0\x9F\x98\x80 "
      "\xE2\x80\x9Cq\xE2\x80\x9D";
  CHECK(!nfc->Apply(text, out, rx));
  CHECK_EQ(out, std::string("sentinel"));
  // A decomposed letter is composed, and the text around it kept.
  CHECK(nfc->Apply("x e\xCC\x81 y", out, rx));
  CHECK_EQ(out, std::string("x \xC3\xA9 y"));
}

int main() { return tt::RunAll(); }
