// Bounded fuzz: random bytes and random Unicode through several synthetic pipelines. Checks: no crash, invalid
// UTF-8 is rejected with ERR_INVALID_ARGUMENT, Count == Encode().size(), and decode(encode(x)) == x for the lossless
// byte-level tokenizer. TOKMETER_FUZZ_CASES overrides the number of cases (default 1,000,000).
#include <random>

#include "synthetic.h"
#include "tokenizer/utf8.h"

using namespace tt;

static std::string RandomUnicode(std::mt19937_64& rng, size_t len) {
  static const char32_t kPicks[] = {' ',    '\n',   '\t',   'a',    'Z',    '0',    '9',      '\'',    '-',    '.',
                                    0xA0,   0x85,   0x300,  0x301,  0x200D, 0xFE0F, 0x1F469,  0x1F3FD, 0x4E2D, 0x3042,
                                    0x0627, 0x0915, 0x0E01, 0x2028, 0x180E, 0xFEFF, 0x10FFFF, 0xFFFD,  0x130,  0x3A3};
  std::string s;
  for (size_t i = 0; i < len; ++i) {
    uint64_t r = rng();
    char32_t c;
    switch (r % 4) {
      case 0: c = kPicks[(r >> 8) % (sizeof kPicks / sizeof kPicks[0])]; break;
      case 1: c = static_cast<char32_t>(0x20 + (r >> 8) % 0x5F); break;
      case 2: c = static_cast<char32_t>((r >> 8) % 0x3000); break;
      default: c = static_cast<char32_t>((r >> 8) % 0x110000); break;
    }
    if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
    tokmeter::tokenizer::utf8::Append(s, c);
  }
  return s;
}

int main() {
  const char* env = std::getenv("TOKMETER_FUZZ_CASES");
  size_t cases = env ? std::strtoull(env, nullptr, 10) : 1000000;
  ByteBpeBuilder b;
  b.Merge(" ", "a");
  b.Merge("a", "a");
  b.Merge("\xE4", "\xB8");
  b.Merge("\xF0", "\x9F");
  b.doc.added.push_back(AddedJson(b.Size(), "<|x|>", true));
  auto byte_level = b.Build();
  // A GPT-4o-like split on top, after NFKC.
  Doc d2 = b.Document();
  const std::string pattern =
      "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'"
      "ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  d2.pre_tokenizer = R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":)" + J(pattern) +
                     R"(},"behavior":"Removed","invert":true},{"type":"ByteLevel","add_prefix_space":false,)"
                     R"("use_regex":false}]})";
  d2.normalizer = R"({"type":"NFKC"})";
  auto split_nfkc = d2.Build();

  std::mt19937_64 rng(12345);
  size_t invalid = 0, lossless_checked = 0;
  for (size_t i = 0; i < cases; ++i) {
    std::string text;
    size_t len = rng() % 24;
    if (i % 3 == 0) {
      for (size_t k = 0; k < len; ++k) text.push_back(static_cast<char>(rng()));
    } else {
      text = RandomUnicode(rng, len);
      if (i % 7 == 0) text += "<|x|>";
    }
    bool valid = tokmeter::tokenizer::utf8::IsValid(text);
    const auto& tok = (i % 2) ? split_nfkc : byte_level;
    try {
      auto ids = tok->Encode(text, false);
      if (!valid) {
        std::printf("accepted invalid UTF-8 at case %zu\n", i);
        return 1;
      }
      if (tok->Count(text, false) != ids.size()) {
        std::printf("count != encode size at case %zu\n", i);
        return 1;
      }
      if (tok == byte_level) {
        ++lossless_checked;
        if (tok->Decode(ids, false) != text) {
          std::printf("decode(encode(x)) != x at case %zu\n", i);
          return 1;
        }
      } else {
        (void)tok->Decode(ids, false);
      }
    } catch (const tokmeter::Error& e) {
      if (valid || e.code() != "ERR_INVALID_ARGUMENT") {
        std::printf("unexpected error at case %zu: %s %s\n", i, e.code().c_str(), e.what());
        return 1;
      }
      ++invalid;
    }
  }
  std::printf("fuzz: %zu cases, %zu invalid UTF-8 rejected, %zu round trips checked\n", cases, invalid,
              lossless_checked);
  return 0;
}
