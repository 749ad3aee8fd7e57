// ByteLevel: the model works on raw bytes (see models/bpe.cc), so the byte-to-char mapping itself is implicit;
// what remains is add_prefix_space and the optional GPT-2 split.
#include <memory>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/components.h"

namespace tokmeter::tokenizer::pre_tokenizers {

namespace {

// The GPT-2 pattern the reference's ByteLevel pre-tokenizer uses when use_regex is true.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, std::unique_ptr<PreTokenizer> split)
      : add_prefix_space_(add_prefix_space), split_(std::move(split)) {}
  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    std::string_view p = piece;
    if (add_prefix_space_ && (p.empty() || p[0] != ' ')) {
      auto& buf = s.bufs[stage];
      buf.assign(" ");
      buf.append(piece);
      p = buf;
    }
    if (split_)
      split_->Split(p, at_start, s, stage, emit);
    else if (!p.empty())
      emit(p, at_start);
  }
  // The model works on raw bytes (the byte-to-char mapping is in the vocabulary), so without the prefix space this
  // stage is its GPT-2 split, or nothing.
  const Splitter* KnownSplit() const override { return !add_prefix_space_ && split_ ? split_->KnownSplit() : nullptr; }
  bool Identity() const override { return !add_prefix_space_ && !split_; }

 private:
  bool add_prefix_space_;
  std::unique_ptr<PreTokenizer> split_;
};

}  // namespace

std::unique_ptr<PreTokenizer> ByteLevelFromJson(const json::Value& o, const std::string& path) {
  const bool add_prefix_space = json::Bool(o, "add_prefix_space", path, true);
  std::unique_ptr<PreTokenizer> split;
  if (json::Bool(o, "use_regex", path, true)) split = RegexSplit(kGpt2Pattern, path + " (GPT-2 pattern)");
  return std::make_unique<ByteLevelPre>(add_prefix_space, std::move(split));
}

}  // namespace tokmeter::tokenizer::pre_tokenizers
