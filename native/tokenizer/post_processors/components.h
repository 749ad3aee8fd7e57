// One factory per post-processor type, each in its own file; `o` is the component's JSON object, `path` its JSON
// path. Only post_processor.cc (the dispatch on "type") calls them.
#pragma once

#include <string>

#include "tokenizer/post_processors/post_processor.h"

namespace tokmeter::tokenizer::post_processors {

PostProcessor BertProcessingFromJson(const json::Value& o, const std::string& path);     // BertProcessing
PostProcessor RobertaProcessingFromJson(const json::Value& o, const std::string& path);  // RobertaProcessing
PostProcessor TemplateFromJson(const json::Value& o, const std::string& path,
                               const PostProcessor::TokenLookup& added_token_id);  // TemplateProcessing
// o[key] as [token, id] (BertProcessing / RobertaProcessing cls and sep): the id.
uint32_t TokenIdPair(const json::Value& o, const char* key, const std::string& path);

}  // namespace tokmeter::tokenizer::post_processors
