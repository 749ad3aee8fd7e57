// Unicode character classes used by the pipeline, defined as the reference (Rust std / tokenizers) defines them.
// Stateless, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokmeter::tokenizer::unicode {

// Rust char::is_whitespace (the White_Space property).
bool IsWhitespace(char32_t c);
// Rust char::is_numeric (general categories Nd, Nl, No).
bool IsNumeric(char32_t c);
// Rust char::is_alphanumeric (Alphabetic || Numeric); Alphabetic approximated by L*, Nl, Mn/Mc with
// Other_Alphabetic is not available in utf8proc: letters + marks + Nl (used for single_word added tokens only).
bool IsAlphanumeric(char32_t c);
// tokenizers' is_punc (BertPreTokenizer, Punctuation): ASCII punctuation or general category P* of Unicode 8.0
// (ref_chars.h).
bool IsPunctuation(char32_t c);
// General category Mn of Unicode 8.0, as BertNormalizer's strip_accents has it (ref_chars.h).
bool IsNonspacingMark(char32_t c);
// BertNormalizer's control: Cc, Cf or Co of Unicode 8.0 (not Cn), except \t \n \r (ref_chars.h).
bool IsBertControl(char32_t c);
// CJK ideograph ranges used by BertNormalizer.handle_chinese_chars.
bool IsChinese(char32_t c);
// Rust char::to_lowercase (as the reference has it: ref_chars.h), appended as UTF-8.
void AppendLower(std::string& out, char32_t c);

// GPT-2 byte-level alphabet: byte -> code point, and the inverse (-1 for code points outside the alphabet).
const std::array<char32_t, 256>& ByteToChar();
int CharToByte(char32_t c);

}  // namespace tokmeter::tokenizer::unicode

namespace tokmeter::tokenizer {

// Decodes the byte-level alphabet back to bytes; a token with any character outside the alphabet keeps its UTF-8
// bytes (as the reference does). Appends to out.
void ByteLevelToBytes(std::string_view token, std::string& out);
// Replaces `out` with the bytes of a token written wholly in the byte-level alphabet; false (out unspecified) when
// a character is outside it (such a token can never be produced by a byte-level model).
bool ByteLevelToBytesExact(std::string_view token, std::string& out);
// Bytes -> byte-level alphabet string.
std::string BytesToByteLevel(std::string_view bytes);

}  // namespace tokmeter::tokenizer
