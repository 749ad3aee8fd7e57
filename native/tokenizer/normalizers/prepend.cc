// Prepend: a fixed prefix before non-empty text.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string p) : prefix_(std::move(p)) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    if (in.empty()) return false;
    out.assign(prefix_);
    out.append(in);
    return true;
  }

 private:
  std::string prefix_;
};

}  // namespace

std::unique_ptr<Normalizer> PrependFromJson(const json::Value& o, const std::string& path) {
  return std::make_unique<Prepend>(json::Str(o, "prepend", path));
}

}  // namespace tokmeter::tokenizer::normalizers
