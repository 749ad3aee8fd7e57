// Replace: every occurrence of a literal pattern replaced by `content`. A Regex pattern is refused as unsupported
// (its replacement semantics are not covered by the parity tests).
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class Replace final : public Normalizer {
 public:
  Replace(std::string pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch&) const override {
    out.clear();
    size_t prev = 0;
    bool changed = false;
    auto on_match = [&](size_t b, size_t e) {
      if (b == e) return;
      out.append(in.data() + prev, b - prev);
      out += content_;
      prev = e;
      changed = true;
    };
    for (size_t pos = in.find(pattern_); pos != std::string_view::npos; pos = in.find(pattern_, pos + pattern_.size()))
      on_match(pos, pos + pattern_.size());
    if (!changed) return false;
    out.append(in.data() + prev, in.size() - prev);
    return true;
  }

 private:
  std::string pattern_, content_;
};

}  // namespace

std::unique_ptr<Normalizer> ReplaceFromJson(const json::Value& o, const std::string& path) {
  const json::Pattern p = json::ReadPattern(o, path);
  std::string content = json::Str(o, "content", path);
  if (p.is_regex) json::Unsupported(path + ".pattern", "Replace normalizer with a Regex pattern");
  if (p.text.empty()) json::SpecError(path + ".pattern.String", "must not be empty");
  return std::make_unique<Replace>(p.text, content);
}

}  // namespace tokmeter::tokenizer::normalizers
