// ByteLevel decoder: byte-level alphabet back to bytes (unicode.h ByteLevelToBytes), then UTF-8 with U+FFFD for
// invalid sequences.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer {

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
