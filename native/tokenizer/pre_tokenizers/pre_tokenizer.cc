// The pre-tokenizer chain: dispatch on "type" (Sequence flattened) and the streaming stage loop.
#include "tokenizer/pre_tokenizers/pre_tokenizer.h"

#include <string_view>
#include <vector>

#include "tokenizer/fast_split.h"
#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/components.h"

namespace tokmeter::tokenizer {

std::unique_ptr<PreTokenizerChain> PreTokenizerChain::FromJson(const json::Value* v, const std::string& path) {
  std::unique_ptr<PreTokenizerChain> chain(new PreTokenizerChain());
  if (v && !v->IsNull()) chain->Add(*v, path, 0);
  std::vector<const Splitter*> known;
  bool others_identity = true;
  for (const auto& stage : chain->stages_) {
    if (const Splitter* k = stage->KnownSplit())
      known.push_back(k);
    else if (!stage->Identity())
      others_identity = false;
  }
  if (others_identity && known.size() == 1) {
    chain->sole_splitter_ = known[0];
  } else if (others_identity && known.size() > 1) {  // a known sequence of splits (DeepSeek's) has one matcher
    std::vector<std::string_view> patterns;
    for (const Splitter* k : known) patterns.push_back(k->pattern());
    chain->sole_splitter_ = KnownChainSplitter(patterns);
  }
  return chain;
}

void PreTokenizerChain::Add(const json::Value& v, const std::string& path, int depth) {
  json::CheckSequenceDepth(depth, path);
  const json::Value& o = json::Obj(&v, path);
  const std::string& type = json::Type(o, path);
  using namespace pre_tokenizers;
  if (type == "Sequence") {
    const auto& list = json::Arr(o.Find("pretokenizers"), path + ".pretokenizers");
    for (size_t i = 0; i < list.size(); ++i)
      Add(list[i], path + ".pretokenizers[" + std::to_string(i) + "]", depth + 1);
    return;
  }
  // The model sees raw bytes after ByteLevel; a later stage would split bytes, not text.
  if (ends_with_byte_level_) json::SpecError(paths_.back(), "ByteLevel must be the last pre-tokenizer of a Sequence");
  std::unique_ptr<PreTokenizer> stage;
  if (type == "Split")
    stage = SplitFromJson(o, path);
  else if (type == "ByteLevel")
    stage = ByteLevelFromJson(o, path);
  else if (type == "Metaspace")
    stage = MetaspaceFromJson(o, path);
  else if (type == "Whitespace")
    stage = WhitespaceFromJson(o, path);
  else if (type == "WhitespaceSplit")
    stage = WhitespaceSplitFromJson(o, path);
  else if (type == "Digits")
    stage = DigitsFromJson(o, path);
  else if (type == "Punctuation")
    stage = PunctuationFromJson(o, path);
  else if (type == "BertPreTokenizer")
    stage = BertFromJson(o, path);
  else if (type == "CharDelimiterSplit")
    stage = CharDelimiterSplitFromJson(o, path);
  else
    json::Unsupported(path + ".type", "pre-tokenizer " + json::Stringify(type));
  ends_with_byte_level_ = type == "ByteLevel";
  byte_level_ = byte_level_ || ends_with_byte_level_;
  stages_.push_back(std::move(stage));
  paths_.push_back(path);
}

void PreTokenizerChain::Run(std::string_view piece, bool at_start, PreTokScratch& s,
                            FnRef<void(std::string_view)> emit) const {
  if (s.bufs.size() < 2 * stages_.size() + 2) {
    s.bufs.resize(2 * stages_.size() + 2);
    s.segs.resize(2 * stages_.size() + 2);
  }
  RunFrom(0, piece, at_start, s, emit);
}

void PreTokenizerChain::RunFrom(size_t stage, std::string_view piece, bool at_start, PreTokScratch& s,
                                FnRef<void(std::string_view)> emit) const {
  if (stage == stages_.size()) {
    if (!piece.empty()) emit(piece);
    return;
  }
  auto next = [&](std::string_view w, bool st) { RunFrom(stage + 1, w, st, s, emit); };
  stages_[stage]->Split(piece, at_start, s, 2 * stage, EmitFn(next));
}

}  // namespace tokmeter::tokenizer
