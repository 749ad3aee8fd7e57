// Lowercase: Unicode lowercasing (the reference lowercases with Rust's char::to_lowercase).
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class Lowercase final : public Normalizer {
 public:
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    out.clear();
    out.reserve(in.size());
    for (size_t i = 0; i < in.size();) unicode::AppendLower(out, utf8::Next(in, i));
    return true;
  }
};

}  // namespace

std::unique_ptr<Normalizer> LowercaseFromJson(const json::Value&, const std::string&) {
  return std::make_unique<Lowercase>();
}

}  // namespace tokmeter::tokenizer::normalizers
