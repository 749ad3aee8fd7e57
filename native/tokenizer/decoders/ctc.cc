// CTC decoder (speech-recognition vocabularies such as wav2vec2's): repeated tokens collapsed into one, the pad token
// removed, and with `cleanup` the WordPiece cleanup then the word delimiter turned into a space; tokens left empty are
// dropped.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"

namespace tokmeter::tokenizer::decoders {

namespace {

class CtcDec final : public Decoder {
 public:
  CtcDec(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;
      std::string t = tokens[i];
      ReplaceAll(t, pad_, "");
      if (cleanup_) {
        Cleanup(t);
        ReplaceAll(t, delimiter_, " ");
      }
      if (!t.empty()) out.push_back(std::move(t));
    }
    tokens.swap(out);
  }

 private:
  std::string pad_, delimiter_;
  bool cleanup_;
};

}  // namespace

std::unique_ptr<Decoder> CtcFromJson(const json::Value& o, const std::string& path) {
  return std::make_unique<CtcDec>(json::OptStr(o, "pad_token", path).value_or("<pad>"),
                                  json::OptStr(o, "word_delimiter_token", path).value_or("|"),
                                  json::Bool(o, "cleanup", path, true));
}

}  // namespace tokmeter::tokenizer::decoders
