// One factory per decoder type, each in its own file; `o` is the component's JSON object, `path` its JSON path.
// Only decoder.cc (the dispatch on "type") calls them. Also the small helpers several decoders share.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/decoders/decoder.h"

namespace tokmeter::tokenizer::decoders {

std::unique_ptr<Decoder> ByteLevelFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> MetaspaceFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> ByteFallbackFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> FuseFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> StripFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> ReplaceFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> WordPieceFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> BpeDecoderFromJson(const json::Value& o, const std::string& path);
std::unique_ptr<Decoder> CtcFromJson(const json::Value& o, const std::string& path);

std::vector<char32_t> Chars(std::string_view s);
// The one character of `s`; ERR_TOKENIZER_SPEC naming `field` otherwise.
char32_t OneChar(const std::string& s, const std::string& field);
void ReplaceAll(std::string& s, const std::string& from, const std::string& to);
// The reference's wordpiece cleanup: spaces before punctuation and English contractions removed (WordPiece, CTC).
void Cleanup(std::string& s);

}  // namespace tokmeter::tokenizer::decoders
