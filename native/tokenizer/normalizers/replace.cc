// Replace: every match of a pattern replaced by `content`, as the reference's NormalizedString::replace does it.
//   - {"String": literal}: non-overlapping occurrences, left to right (an empty literal is refused).
//   - {"Regex": source}: the matches of the Oniguruma-dialect pattern (regex.h), left to right with Oniguruma's
//     find_iter rules; an empty match is a match too, so `content` is inserted at its position (but an empty text
//     stays empty).
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/normalizers/components.h"
#include "tokenizer/regex.h"

namespace tokmeter::tokenizer::normalizers {
namespace {

class Replace final : public Normalizer {
 public:
  Replace(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  bool Apply(std::string_view in, std::string& out, RegexScratch& rx) const override {
    if (regex_) return regex_->ReplaceAll(in, content_, out, rx);
    size_t pos = in.find(literal_);
    if (pos == std::string_view::npos) return false;
    out.clear();
    size_t prev = 0;
    for (; pos != std::string_view::npos; pos = in.find(literal_, prev)) {
      out.append(in.data() + prev, pos - prev);
      out += content_;
      prev = pos + literal_.size();
    }
    out.append(in.data() + prev, in.size() - prev);
    return true;
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;  // null for a literal pattern
  std::string content_;
};

}  // namespace

std::unique_ptr<Normalizer> ReplaceFromJson(const json::Value& o, const std::string& path) {
  const json::Pattern p = json::ReadPattern(o, path);
  std::string content = json::Str(o, "content", path);
  if (p.is_regex)
    return std::make_unique<Replace>(std::string(), std::make_unique<Regex>(p.text, path + ".pattern.Regex"),
                                     std::move(content));
  if (p.text.empty()) json::SpecError(path + ".pattern.String", "must not be empty");
  return std::make_unique<Replace>(p.text, nullptr, std::move(content));
}

}  // namespace tokmeter::tokenizer::normalizers
