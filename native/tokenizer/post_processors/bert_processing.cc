// BertProcessing: [CLS] sequence [SEP].
#include "tokenizer/json_value.h"
#include "tokenizer/post_processors/components.h"

namespace tokmeter::tokenizer::post_processors {

uint32_t TokenIdPair(const json::Value& o, const char* key, const std::string& path) {
  const std::string field = path + "." + key;
  const auto& pair = json::Arr(o.Find(key), field);
  if (pair.size() != 2 || !pair[0].IsString()) json::SpecError(field, "expected [token, id]");
  return json::Uint(&pair[1], field + "[1]");
}

PostProcessor BertProcessingFromJson(const json::Value& o, const std::string& path) {
  PostProcessor p;
  p.prefix.push_back(TokenIdPair(o, "cls", path));
  p.suffix.push_back(TokenIdPair(o, "sep", path));
  return p;
}

}  // namespace tokmeter::tokenizer::post_processors
