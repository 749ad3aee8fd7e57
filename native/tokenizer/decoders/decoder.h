// Decoder chain: token strings -> text, stage by stage, exactly as the reference's decode_chain. Immutable and
// thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/spec.h"

namespace tokmeter::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<Decoder> MakeDecoder(const DecoderSpec& spec, const std::string& field);

// Decodes the byte-level alphabet back to bytes; a token with any character outside the alphabet keeps its UTF-8
// bytes (as the reference does). Appends to out.
void ByteLevelToBytes(std::string_view token, std::string& out);
// Replaces `out` with the bytes of a token written wholly in the byte-level alphabet; false (out unspecified) when
// a character is outside it (such a token can never be produced by a byte-level model).
bool ByteLevelToBytesExact(std::string_view token, std::string& out);
// Bytes -> byte-level alphabet string.
std::string BytesToByteLevel(std::string_view bytes);

}  // namespace tokmeter::tokenizer
