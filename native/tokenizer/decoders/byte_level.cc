// ByteLevel decoder (byte-level alphabet back to bytes, then UTF-8 with U+FFFD for invalid sequences), and the
// byte-level alphabet conversions the tokenizer uses at load time.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

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

namespace decoders {
namespace {

class ByteLevelDec final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) ByteLevelToBytes(t, bytes);
    std::string out;
    utf8::AppendLossy(out, bytes);
    tokens.assign(1, std::move(out));
  }
};

}  // namespace

std::unique_ptr<Decoder> ByteLevelFromJson(const json::Value&, const std::string&) {
  return std::make_unique<ByteLevelDec>();
}

}  // namespace decoders

}  // namespace tokmeter::tokenizer
