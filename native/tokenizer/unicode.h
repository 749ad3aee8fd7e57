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
// tokenizers' is_punc: ASCII punctuation or general category P*.
bool IsPunctuation(char32_t c);
// General category Mn (nonspacing mark).
bool IsNonspacingMark(char32_t c);
// Control per tokenizers' BertNormalizer (Cc/Cf/Cn/Co except \t \n \r).
bool IsBertControl(char32_t c);
// CJK ideograph ranges used by BertNormalizer.handle_chinese_chars.
bool IsChinese(char32_t c);
// Rust char::to_lowercase, appended as UTF-8.
void AppendLower(std::string& out, char32_t c);

// GPT-2 byte-level alphabet: byte -> code point, and the inverse (-1 for code points outside the alphabet).
const std::array<char32_t, 256>& ByteToChar();
int CharToByte(char32_t c);

}  // namespace tokmeter::tokenizer::unicode
