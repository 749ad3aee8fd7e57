// Decoder chain: token strings -> text, stage by stage, exactly as the reference's decode_chain. Immutable and
// thread-safe.
//
// Construction: DecoderChain::FromJson reads tokenizer.json's "decoder" value. It dispatches on "type" in one place
// (decoder.cc, which also flattens Sequence); each component reads its own fields in its own file (components.h).
// Errors name the JSON path: ERR_TOKENIZER_SPEC for a malformed field, ERR_TOKENIZER_UNSUPPORTED for a type
// tokmeter does not implement.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tokmeter::tokenizer {

namespace json {
class Value;
}

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void DecodeChain(std::vector<std::string>& tokens) const = 0;
};

class DecoderChain {
 public:
  // `v` is tokenizer.json's "decoder", `path` its name in messages. nullptr or null: no decoder (tokens are joined
  // with ' ', as the reference does).
  static std::unique_ptr<DecoderChain> FromJson(const json::Value* v, const std::string& path);
  bool present() const { return present_; }
  // The chain is exactly [ByteLevel] (the tokenizer then decodes bytes directly).
  bool byte_level_only() const { return byte_level_only_; }
  // Tokens -> text.
  std::string Decode(std::vector<std::string> tokens) const;

 private:
  DecoderChain() = default;
  void Add(const json::Value& v, const std::string& path, int depth);
  std::vector<std::unique_ptr<Decoder>> stages_;
  std::vector<std::string> types_;
  bool present_ = false;
  bool byte_level_only_ = false;
};

}  // namespace tokmeter::tokenizer
