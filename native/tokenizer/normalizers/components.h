// One factory per normalizer type, each in its own file; `o` is the component's JSON object, `path` its JSON path.
// Only normalizer.cc (the dispatch on "type") and bert.cc (which runs NFD) call them.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/normalizers/normalizer.h"

namespace tokmeter::tokenizer::normalizers {

enum class Form { kNFC, kNFD, kNFKC, kNFKD };
std::unique_ptr<Normalizer> UnicodeForm(Form form);  // NFC / NFD / NFKC / NFKD (no fields)
std::unique_ptr<Normalizer> LowercaseFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Normalizer> ReplaceFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Normalizer> PrependFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Normalizer> StripFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Normalizer> BertFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Normalizer> PrecompiledFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Normalizer> StripAccentsFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Normalizer> NmtFromJson(const json::Value& o, const std::string& path);

}  // namespace tokmeter::tokenizer::normalizers
