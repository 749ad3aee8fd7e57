// tokmeter::tokenizer::json — purpose-built readers for the big parts of tokenizer files, so a 10 MB tokenizer.json
// or a 200k-token tiktoken rank file loads without JSON.parse-ing and re-marshalling every token in JavaScript.
//
// What is read here: the byte ranges of chosen fields of a JSON document (Locate), tokenizer.json's model.vocab
// object (string -> id) and model.merges array ("a b" strings or [a, b] pairs), JSON string literals, and tiktoken
// rank files, and the whole document as a tree with those big fields left raw (json_value.h ParseDocument).
//
// Contract: inputs are borrowed byte views, nothing is retained; results own their memory. Plain C++, no Node
// headers; safe to call from any thread (no shared state). Strings decode exactly as JSON.parse decodes them and are
// then UTF-8 encoded as Buffer.from(string) would: escapes \" \\ \/ \b \f \n \r \t and \u with four hex digits,
// an escaped surrogate pair is one code point, a lone surrogate escape becomes U+FFFD. Every malformed input throws
// tokmeter::Error("ERR_TOKENIZER_SPEC", "invalid tokenizer: <field>: <problem> at byte <offset>"), never crashes.
//
// Performance notes: one pass per field, strings without escapes are copied in runs (memchr-like loop over a
// character class table); the vocabulary's duplicate-key check (JSON.parse keeps the last value) is one flat hash
// table over the parsed keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/big_alloc.h"

namespace tokmeter::tokenizer::json {

struct Range {
  size_t begin = 0, end = 0;  // [begin, end) of the value's text, whitespace excluded
};

// For each key path (object keys from the root, e.g. {"model", "vocab"}), the range of the value JSON.parse would
// keep there: with a duplicated key the last occurrence wins, as in JSON.parse. nullopt where absent. The whole
// document is checked for well-formedness (RFC 8259 grammar; nesting deeper than 512 levels is refused).
std::vector<std::optional<Range>> Locate(std::string_view doc, const std::vector<std::vector<std::string>>& paths,
                                         std::string_view field);

// Decodes one JSON string literal (with its quotes) into UTF-8.
std::string DecodeString(std::string_view literal, std::string_view field);

// Token strings by id. present[id] == false for ids no token names.
struct Vocab {
  TokenStrings tokens;
  std::vector<bool> present;
};

// A JSON object of token -> id (tokenizer.json model.vocab for BPE and WordPiece), read as JSON.parse reads it: a
// duplicated key keeps its last id; an id is a JSON number whose value is an integer in [0, 0xFFFFFFF0] (7, 7.0 and 7e0
// alike); two tokens with one id is an error naming the second. dedupe = false skips the duplicate-key pass (a hash
// table over every key): only for a caller that checks the token strings for duplicates itself and then parses again
// with dedupe = true; an error in that mode may be an artefact of a duplicated key, so the caller also parses again
// before reporting it.
Vocab ParseVocabObject(std::string_view text, std::string_view field, bool dedupe = true);

// Merges as decoded string pairs: merge i is (bytes[ends[2i-1] .. ends[2i]), bytes[ends[2i] .. ends[2i+1])), with
// ends[-1] read as 0.
struct StringPairs {
  BigString bytes;
  BigVector<uint32_t> ends;
  size_t size() const { return ends.size() / 2; }
  std::string_view Left(size_t i) const { return Part(2 * i); }
  std::string_view Right(size_t i) const { return Part(2 * i + 1); }

 private:
  std::string_view Part(size_t k) const {
    size_t b = k == 0 ? 0 : ends[k - 1];
    return std::string_view(bytes).substr(b, ends[k] - b);
  }
};

// tokenizer.json model.merges: an array whose entries are "left right" strings (exactly one space) or [left, right]
// string pairs (the two forms may not be mixed within one entry, but may across entries).
StringPairs ParseMerges(std::string_view text, std::string_view field);

// Unigram's model.vocab: an array of [piece, score] whose index is the id. Scores must be finite numbers.
struct ScoredVocab {
  TokenStrings tokens;
  std::vector<double> scores;
};
ScoredVocab ParseUnigramVocab(std::string_view text, std::string_view field);

// tiktoken ranks: `compressed` is the tiktoken npm package's bpe_ranks text (lines "<prefix> <first rank> <b64>
// <b64> ..."); otherwise a .tiktoken file ("<b64> <rank>" per line, CRLF allowed). Ranks must increase; gaps are
// absent ids. Tokens are raw bytes.
Vocab ParseTiktokenRanks(std::string_view text, bool compressed, std::string_view field);

// The 6-bit value of a base64 character (RFC 4648 alphabet), or -1 for any other character.
int Base64Value(unsigned char c);

}  // namespace tokmeter::tokenizer::json
