// Metaspace decoder: the replacement character back to spaces; the first token's leading one dropped unless
// prepend_scheme is "never".
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/components.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::decoders {

namespace {

class MetaspaceDec final : public Decoder {
 public:
  MetaspaceDec(char32_t replacement, bool prepend) : rep_(replacement), prepend_(prepend) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const auto& t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        char32_t c = utf8::Next(t, k);
        if (c == rep_) {
          if (!(i == 0 && prepend_)) out.push_back(' ');
        } else {
          utf8::Append(out, c);
        }
      }
      tokens[i].swap(out);
    }
  }

 private:
  char32_t rep_;
  bool prepend_;
};

}  // namespace

std::unique_ptr<Decoder> MetaspaceFromJson(const json::Value& o, const std::string& path) {
  const char32_t rep = OneChar(json::Str(o, "replacement", path), path + ".replacement");
  const bool prepend = pre_tokenizers::ReadPrependScheme(o, path) != pre_tokenizers::PrependScheme::kNever;
  return std::make_unique<MetaspaceDec>(rep, prepend);
}

}  // namespace tokmeter::tokenizer::decoders
