// The post-processor: dispatch on "type" (Sequence combined: later processors wrap earlier ones' ids).
#include "tokenizer/post_processors/post_processor.h"

#include "tokenizer/json_value.h"
#include "tokenizer/post_processors/components.h"

namespace tokmeter::tokenizer {

PostProcessor PostProcessor::FromJson(const json::Value* v, const std::string& path,
                                      const TokenLookup& added_token_id) {
  PostProcessor p;
  if (v && !v->IsNull()) p.Add(*v, path, added_token_id, 0);
  return p;
}

void PostProcessor::Add(const json::Value& v, const std::string& path, const TokenLookup& added_token_id, int depth) {
  json::CheckSequenceDepth(depth, path);
  const json::Value& o = json::Obj(&v, path);
  const std::string& type = json::Type(o, path);
  using namespace post_processors;
  PostProcessor part;
  if (type == "ByteLevel") {
    return;  // offsets only
  } else if (type == "Sequence") {
    const auto& list = json::Arr(o.Find("processors"), path + ".processors");
    for (size_t i = 0; i < list.size(); ++i)
      Add(list[i], path + ".processors[" + std::to_string(i) + "]", added_token_id, depth + 1);
    return;
  } else if (type == "BertProcessing") {
    part = BertProcessingFromJson(o, path);
  } else if (type == "RobertaProcessing") {
    part = RobertaProcessingFromJson(o, path);
  } else if (type == "TemplateProcessing") {
    part = TemplateFromJson(o, path, added_token_id);
  } else {
    json::Unsupported(path + ".type", "post-processor " + json::Stringify(type));
  }
  prefix.insert(prefix.begin(), part.prefix.begin(), part.prefix.end());
  suffix.insert(suffix.end(), part.suffix.begin(), part.suffix.end());
}

}  // namespace tokmeter::tokenizer
