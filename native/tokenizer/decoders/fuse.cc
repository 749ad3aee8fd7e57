// Fuse decoder: all tokens joined into one.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"

namespace tokmeter::tokenizer::decoders {

namespace {

class FuseDec final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

}  // namespace

std::unique_ptr<Decoder> FuseFromJson(const json::Value&, const std::string&) { return std::make_unique<FuseDec>(); }

}  // namespace tokmeter::tokenizer::decoders
