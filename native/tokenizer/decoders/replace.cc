// Replace decoder: a literal pattern replaced in each token (a Regex pattern is refused as unsupported).
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"

namespace tokmeter::tokenizer::decoders {

namespace {

class ReplaceDec final : public Decoder {
 public:
  ReplaceDec(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) ReplaceAll(t, from_, to_);
  }

 private:
  std::string from_, to_;
};

}  // namespace

std::unique_ptr<Decoder> ReplaceFromJson(const json::Value& o, const std::string& path) {
  json::Pattern p = json::ReadPattern(o, path);
  if (p.is_regex) json::Unsupported(path + ".pattern", "Replace decoder with a Regex pattern");
  return std::make_unique<ReplaceDec>(std::move(p.text), json::Str(o, "content", path));
}

}  // namespace tokmeter::tokenizer::decoders
