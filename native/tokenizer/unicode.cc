#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "tokenizer/ref_chars.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::unicode {

bool IsWhitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return c >= 0x2000 && c <= 0x200A;
  }
}

static utf8proc_category_t Cat(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

bool IsNumeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto k = Cat(c);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool IsAlphanumeric(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  auto k = Cat(c);
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || k == UTF8PROC_CATEGORY_NL ||
         k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NO;
}

bool IsPunctuation(char32_t c) {
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  return InRanges(ref_tables::kPunctuation, ref_tables::kPunctuationSize, c);
}

bool IsNonspacingMark(char32_t c) {
  return c >= 0x300 && InRanges(ref_tables::kNonspacingMark, ref_tables::kNonspacingMarkSize, c);
}

bool IsBertControl(char32_t c) {
  if (c < 0x80) return (c < 0x20 || c == 0x7F) && c != '\t' && c != '\n' && c != '\r';
  return InRanges(ref_tables::kOther, ref_tables::kOtherSize, c);
}

bool IsChinese(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void AppendLower(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return;
  }
  if (c == 0x130) {  // İ lowercases to "i̇" (the only unconditional multi-code-point lowercase mapping)
    out.append("i\xCC\x87");
    return;
  }
  const CodeMapping* end = ref_tables::kLower + ref_tables::kLowerSize;
  const CodeMapping* it =
      std::lower_bound(ref_tables::kLower, end, c, [](const CodeMapping& m, char32_t v) { return m.from < v; });
  utf8::Append(out, it != end && it->from == c ? it->to : c);
}

namespace {
struct ByteTables {
  std::array<char32_t, 256> to_char{};
  std::array<int16_t, 324> to_byte{};  // code points < 324 cover the whole alphabet
  ByteTables() {
    to_byte.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_char[b] = c;
      to_byte[c] = static_cast<int16_t>(b);
    }
  }
};
const ByteTables& Tables() {
  static const ByteTables t;
  return t;
}
}  // namespace

const std::array<char32_t, 256>& ByteToChar() { return Tables().to_char; }
int CharToByte(char32_t c) { return c < 324 ? Tables().to_byte[c] : -1; }

}  // namespace tokmeter::tokenizer::unicode

namespace tokmeter::tokenizer {

void ByteLevelToBytes(std::string_view t, std::string& out) {
  size_t mark = out.size();
  for (size_t i = 0; i < t.size();) {
    int b = unicode::CharToByte(utf8::Next(t, i));
    if (b < 0) {
      out.resize(mark);
      out.append(t);
      return;
    }
    out.push_back(static_cast<char>(b));
  }
}

bool ByteLevelToBytesExact(std::string_view t, std::string& out) {
  out.clear();
  for (size_t i = 0; i < t.size();) {
    const unsigned char c = static_cast<unsigned char>(t[i]);
    if (c >= 0x21 && c <= 0x7E) {  // '!'..'~' stand for themselves in the byte-level alphabet (a load-time fast path)
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    int b = unicode::CharToByte(utf8::Next(t, i));
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
  }
  return true;
}

std::string BytesToByteLevel(std::string_view bytes) {
  std::string s;
  const auto& map = unicode::ByteToChar();
  for (unsigned char b : bytes) utf8::Append(s, map[b]);
  return s;
}

}  // namespace tokmeter::tokenizer

// ---- Property classes from unicode_tables.h (the reference's Unicode version) ----

namespace tokmeter::tokenizer::unicode {

namespace {
// A property name as the reference's regex engine compares names: lower case, spaces, hyphens and underscores
// dropped.
std::string LooseName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '_') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

// Appends [a, b] to a PCRE2 class body, without the surrogates (not characters in UTF mode).
void AppendClassRange(std::string& out, uint32_t a, uint32_t b) {
  if (a <= 0xDFFF && b >= 0xD800) {
    if (a < 0xD800) AppendClassRange(out, a, 0xD7FF);
    if (b > 0xDFFF) AppendClassRange(out, 0xE000, b);
    return;
  }
  char buf[40];
  if (a == b)
    snprintf(buf, sizeof buf, "\\x{%X}", a);
  else
    snprintf(buf, sizeof buf, "\\x{%X}-\\x{%X}", a, b);
  out += buf;
}
}  // namespace

GcSet CategoriesByName(std::string_view name) {
  struct Entry {
    const char* short_name;
    const char* long_name;
    GcSet set;
  };
  static const Entry kEntries[] = {
      {"L", "Letter", kLetter},
      {"LC", "Cased_Letter", Bit(kLu) | Bit(kLl) | Bit(kLt)},
      {"Lu", "Uppercase_Letter", Bit(kLu)},
      {"Ll", "Lowercase_Letter", Bit(kLl)},
      {"Lt", "Titlecase_Letter", Bit(kLt)},
      {"Lm", "Modifier_Letter", Bit(kLm)},
      {"Lo", "Other_Letter", Bit(kLo)},
      {"M", "Mark", kMark},
      {"Mn", "Nonspacing_Mark", Bit(kMn)},
      {"Mc", "Spacing_Mark", Bit(kMc)},
      {"Me", "Enclosing_Mark", Bit(kMe)},
      {"N", "Number", kNumber},
      {"Nd", "Decimal_Number", Bit(kNd)},
      {"Nl", "Letter_Number", Bit(kNl)},
      {"No", "Other_Number", Bit(kNo)},
      {"P", "Punctuation", kPunct},
      {"Pc", "Connector_Punctuation", Bit(kPc)},
      {"Pd", "Dash_Punctuation", Bit(kPd)},
      {"Ps", "Open_Punctuation", Bit(kPs)},
      {"Pe", "Close_Punctuation", Bit(kPe)},
      {"Pi", "Initial_Punctuation", Bit(kPi)},
      {"Pf", "Final_Punctuation", Bit(kPf)},
      {"Po", "Other_Punctuation", Bit(kPo)},
      {"S", "Symbol", kSymbol},
      {"Sm", "Math_Symbol", Bit(kSm)},
      {"Sc", "Currency_Symbol", Bit(kSc)},
      {"Sk", "Modifier_Symbol", Bit(kSk)},
      {"So", "Other_Symbol", Bit(kSo)},
      {"Z", "Separator", kSeparator},
      {"Zs", "Space_Separator", Bit(kZs)},
      {"Zl", "Line_Separator", Bit(kZl)},
      {"Zp", "Paragraph_Separator", Bit(kZp)},
      {"C", "Other", kOther},
      {"Cc", "Control", Bit(kCc)},
      {"Cf", "Format", Bit(kCf)},
      {"Cn", "Unassigned", Bit(kCn)},
      {"Co", "Private_Use", Bit(kCo)},
      {"Cs", "Surrogate", Bit(kCs)},
  };
  static const auto kLoose = [] {  // the entries' names as they are compared
    std::vector<std::pair<std::string, std::string>> names;
    for (const auto& e : kEntries) names.emplace_back(LooseName(e.short_name), LooseName(e.long_name));
    return names;
  }();
  const std::string want = LooseName(name);
  for (size_t k = 0; k < kLoose.size(); ++k)
    if (want == kLoose[k].first || want == kLoose[k].second) return kEntries[k].set;
  return 0;
}

const std::string* PropertyClassBody(std::string_view name, bool negate) {
  const std::string key = LooseName(name);
  const NamedRanges* end = kNamedRanges + kNamedRangesCount;
  const NamedRanges* it = std::lower_bound(
      kNamedRanges, end, key, [](const NamedRanges& e, const std::string& k) { return std::string_view(e.name) < k; });
  if (it == end || key != it->name) return nullptr;
  static std::mutex mu;
  static std::map<std::pair<const NamedRanges*, bool>, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto [slot, fresh] = cache.try_emplace({it, negate});
  if (!fresh) return &slot->second;
  std::string& out = slot->second;
  auto add = [&](uint32_t a, uint32_t b) { AppendClassRange(out, a, b); };
  const uint32_t* r = kPropertyRanges + 2 * it->first;
  if (!negate) {
    for (uint32_t k = 0; k < it->count; ++k) add(r[2 * k], r[2 * k + 1]);
  } else {
    uint32_t next = 0;  // the first code point not yet covered
    for (uint32_t k = 0; k < it->count; ++k) {
      if (r[2 * k] > next) add(next, r[2 * k] - 1);
      next = r[2 * k + 1] + 1;
    }
    if (next <= 0x10FFFF) add(next, 0x10FFFF);
  }
  return &out;
}

const std::string& ClassBody(GcSet set, bool white_space) {
  static std::mutex mu;
  static std::map<std::pair<GcSet, bool>, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, fresh] = cache.try_emplace({set, white_space});
  if (!fresh) return it->second;
  std::string& out = it->second;
  auto in = [&](char32_t c) {
    if (c >= 0xD800 && c <= 0xDFFF) return false;  // not characters in UTF mode
    uint8_t p = Props(c);
    return ((set >> (p & kGcMask)) & 1) != 0 || (white_space && (p & kWhiteSpaceBit));
  };
  for (char32_t c = 0; c < 0x110000;) {
    if (!in(c)) {
      ++c;
      continue;
    }
    char32_t e = c;
    while (e + 1 < 0x110000 && in(e + 1)) ++e;
    AppendClassRange(out, c, e);
    c = e + 1;
  }
  return out;
}

}  // namespace tokmeter::tokenizer::unicode
