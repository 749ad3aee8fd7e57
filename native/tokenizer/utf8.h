// UTF-8 helpers for the tokenizer. Stateless, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/utf8.h"

namespace tokmeter::tokenizer::utf8 {

// SeqLen, Next and Append are the shared ones (util/utf8.h).
using tokmeter::utf8::Append;
using tokmeter::utf8::Next;
using tokmeter::utf8::SeqLen;

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
