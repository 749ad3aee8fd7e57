// WordPiece decoder: continuation prefixes removed, other tokens space-separated, optional punctuation cleanup.
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"

namespace tokmeter::tokenizer::decoders {

namespace {

class WordPieceDec final : public Decoder {
 public:
  WordPieceDec(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void DecodeChain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      auto& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0)
          t.erase(0, prefix_.size());
        else
          t.insert(0, " ");
      }
      if (cleanup_) Cleanup(t);
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

}  // namespace

std::unique_ptr<Decoder> WordPieceFromJson(const json::Value& o, const std::string& path) {
  return std::make_unique<WordPieceDec>(json::OptStr(o, "prefix", path).value_or("##"),
                                        json::Bool(o, "cleanup", path, true));
}

}  // namespace tokmeter::tokenizer::decoders
