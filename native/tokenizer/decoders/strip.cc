// Strip decoder: up to `start` leading and `stop` trailing copies of one character removed from each token.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::decoders {

namespace {

class StripDec final : public Decoder {
 public:
  StripDec(char32_t c, size_t start, size_t stop) : c_(c), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      auto chars = Chars(t);
      size_t b = 0;
      for (size_t i = 0; i < chars.size(); ++i) {
        if (i < start_ && chars[i] == c_)
          b = i + 1;
        else
          break;
      }
      size_t e = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        if (chars[chars.size() - i - 1] == c_)
          --e;
        else
          break;
      }
      std::string out;
      for (size_t i = b; i < e; ++i) utf8::Append(out, chars[i]);
      t.swap(out);
    }
  }

 private:
  char32_t c_;
  size_t start_, stop_;
};

}  // namespace

std::unique_ptr<Decoder> StripFromJson(const json::Value& o, const std::string& path) {
  const char32_t c = OneChar(json::Str(o, "content", path), path + ".content");
  return std::make_unique<StripDec>(c, json::Uint(o.Find("start"), path + ".start"),
                                    json::Uint(o.Find("stop"), path + ".stop"));
}

}  // namespace tokmeter::tokenizer::decoders
