// BPEDecoder: the end-of-word suffix of BPE models that mark word ends ("</w>": CLIP, GPT-1) becomes a space, except
// in the last token, where it is removed.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"

namespace tokmeter::tokenizer::decoders {

namespace {

class BpeDec final : public Decoder {
 public:
  explicit BpeDec(std::string suffix) : suffix_(std::move(suffix)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) ReplaceAll(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

}  // namespace

std::unique_ptr<Decoder> BpeDecoderFromJson(const json::Value& o, const std::string& path) {
  return std::make_unique<BpeDec>(json::OptStr(o, "suffix", path).value_or("</w>"));
}

}  // namespace tokmeter::tokenizer::decoders
