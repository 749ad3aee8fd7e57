// UTF-8 helpers for the tokenizer. Stateless, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokmeter::tokenizer::utf8 {

// Length of the UTF-8 sequence that starts with lead byte b (1 for invalid lead bytes).
inline size_t SeqLen(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b >> 5) == 0x6) return 2;
  if ((b >> 4) == 0xE) return 3;
  if ((b >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8); advances i.
inline char32_t Next(std::string_view s, size_t& i) {
  unsigned char b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    ++i;
    return b;
  }
  size_t n = SeqLen(b);
  char32_t cp = b & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

inline void Append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 when s[i] does not start one (strict: no overlongs,
// no surrogates, nothing above U+10FFFF).
size_t ValidSeqAt(std::string_view s, size_t i);

// True when s is valid UTF-8.
bool IsValid(std::string_view s);

// A JS string's UTF-16 code units to UTF-8, each unpaired surrogate as U+FFFD: the bytes V8's String::WriteUtf8
// writes with REPLACE_INVALID_UTF8 (what napi_get_value_string_utf8 returns). `out` must hold 3 * n + 16 bytes (a
// pair of units takes 4, one unit at most 3; the stores write whole 4- and 16-byte words past the end of what
// counts). Returns the bytes written. Little-endian hosts only. On x86 with SSSE3, 8 units at a time.
size_t FromUtf16(const char16_t* in, size_t n, char* out);
// The same, one unit at a time on every host (for tests that compare the two).
size_t FromUtf16Portable(const char16_t* in, size_t n, char* out);

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
void AppendLossy(std::string& out, std::string_view bytes);

// Length of the longest prefix of s that does not end inside an incomplete (but so far valid) sequence.
size_t CompletePrefix(std::string_view s);

}  // namespace tokmeter::tokenizer::utf8
