// RobertaProcessing: <s> sequence </s> for a single sequence (trim_offsets and add_prefix_space touch offsets only).
#include "tokenizer/json_value.h"
#include "tokenizer/post_processors/components.h"

namespace tokmeter::tokenizer::post_processors {

PostProcessor RobertaProcessingFromJson(const json::Value& o, const std::string& path) {
  return BertProcessingFromJson(o, path);  // the same ids around a single sequence
}

}  // namespace tokmeter::tokenizer::post_processors
