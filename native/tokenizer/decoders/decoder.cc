// The decoder chain: dispatch on "type" (Sequence flattened) and the stage loop.
#include "tokenizer/decoders/decoder.h"

#include "tokenizer/decoders/components.h"
#include "tokenizer/json_value.h"

namespace tokmeter::tokenizer {

std::unique_ptr<DecoderChain> DecoderChain::FromJson(const json::Value* v, const std::string& path) {
  std::unique_ptr<DecoderChain> chain(new DecoderChain());
  if (v && !v->IsNull()) {
    chain->present_ = true;
    chain->Add(*v, path, 0);
  }
  chain->byte_level_only_ = chain->types_.size() == 1 && chain->types_[0] == "ByteLevel";
  return chain;
}

void DecoderChain::Add(const json::Value& v, const std::string& path, int depth) {
  json::CheckSequenceDepth(depth, path);
  const json::Value& o = json::Obj(&v, path);
  const std::string& type = json::Type(o, path);
  using namespace decoders;
  if (type == "Sequence") {
    const auto& list = json::Arr(o.Find("decoders"), path + ".decoders");
    for (size_t i = 0; i < list.size(); ++i) Add(list[i], path + ".decoders[" + std::to_string(i) + "]", depth + 1);
    return;
  }
  std::unique_ptr<Decoder> stage;
  if (type == "ByteLevel")
    stage = ByteLevelFromJson(o, path);
  else if (type == "Metaspace")
    stage = MetaspaceFromJson(o, path);
  else if (type == "ByteFallback")
    stage = ByteFallbackFromJson(o, path);
  else if (type == "Fuse")
    stage = FuseFromJson(o, path);
  else if (type == "Strip")
    stage = StripFromJson(o, path);
  else if (type == "Replace")
    stage = ReplaceFromJson(o, path);
  else if (type == "WordPiece")
    stage = WordPieceFromJson(o, path);
  else if (type == "BPEDecoder")
    stage = BpeDecoderFromJson(o, path);
  else if (type == "CTC")
    stage = CtcFromJson(o, path);
  else
    json::Unsupported(path + ".type", "decoder " + json::Stringify(type));
  stages_.push_back(std::move(stage));
  types_.push_back(type);
}

std::string DecoderChain::Decode(std::vector<std::string> tokens) const {
  std::string out;
  if (!present_) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  for (const auto& d : stages_) d->DecodeChain(tokens);
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace tokmeter::tokenizer
