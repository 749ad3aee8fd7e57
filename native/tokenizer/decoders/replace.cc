// Replace decoder: in each token, every match of the pattern replaced by `content`, as the reference does it (its
// decoder runs the normalizer's find_matches on each token): a literal's non-overlapping occurrences left to right,
// or a Regex's matches with Oniguruma's find_iter rules, an empty match included (an empty token stays empty).
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"
#include "tokenizer/regex.h"

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

class ReplaceRegexDec final : public Decoder {
 public:
  ReplaceRegexDec(std::unique_ptr<Regex> regex, std::string to) : regex_(std::move(regex)), to_(std::move(to)) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    thread_local RegexScratch rx;
    std::string out;
    for (auto& t : tokens)
      if (regex_->ReplaceAll(t, to_, out, rx)) t.swap(out);
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string to_;
};

}  // namespace

std::unique_ptr<Decoder> ReplaceFromJson(const json::Value& o, const std::string& path) {
  json::Pattern p = json::ReadPattern(o, path);
  std::string content = json::Str(o, "content", path);
  // An empty literal matches the empty string at every position, as the empty regex does (the reference escapes a
  // literal into a regex).
  if (p.is_regex || p.text.empty())
    return std::make_unique<ReplaceRegexDec>(
        std::make_unique<Regex>(p.text, path + (p.is_regex ? ".pattern.Regex" : ".pattern.String")),
        std::move(content));
  return std::make_unique<ReplaceDec>(std::move(p.text), std::move(content));
}

}  // namespace tokmeter::tokenizer::decoders
