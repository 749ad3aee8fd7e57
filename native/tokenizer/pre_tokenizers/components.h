// One factory per pre-tokenizer type, each in its own file; `o` is the component's JSON object, `path` its JSON
// path. Only pre_tokenizer.cc (the dispatch on "type") calls them, plus the shared readers and regex helpers below.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tokenizer/pre_tokenizers/pre_tokenizer.h"

namespace tokmeter::tokenizer::pre_tokenizers {

std::unique_ptr<PreTokenizer> SplitFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> ByteLevelFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> MetaspaceFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> WhitespaceFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> WhitespaceSplitFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> DigitsFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> PunctuationFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> BertFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<PreTokenizer> CharDelimiterSplitFromJson(const json::Value& o, const std::string& path);

// o.behavior (one of the SplitDelimiterBehavior names); `fallback` when absent, an error without one.
SplitBehavior ReadBehavior(const json::Value& o, const std::string& path, std::optional<SplitBehavior> fallback = {});
// Metaspace's prepend_scheme (or the older add_prefix_space), shared with the Metaspace decoder.
enum class PrependScheme { kAlways, kNever, kFirst };
PrependScheme ReadPrependScheme(const json::Value& o, const std::string& path);

// Regex splits used inside other components (split.cc): matches isolated and gaps kept (RegexSplit), or matches
// kept and gaps dropped (RegexMatches). `field` names the pattern in regex errors.
std::unique_ptr<PreTokenizer> RegexSplit(std::string_view regex, const std::string& field);
std::unique_ptr<PreTokenizer> RegexMatches(std::string_view regex, const std::string& field);

}  // namespace tokmeter::tokenizer::pre_tokenizers
