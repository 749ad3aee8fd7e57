// AddedVocabulary: finds added/special tokens in text before the model sees it, as the reference does: tokens with
// normalized=false are matched in the raw text first; the rest of the text is normalized, then tokens with
// normalized=true are matched in the normalized pieces. Leftmost-longest, non-overlapping; lstrip/rstrip absorb
// surrounding whitespace; single_word tokens only match between non-word characters. Immutable, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/fn_ref.h"

namespace tokmeter::tokenizer {

namespace json {
class Value;
}

// One entry of tokenizer.json's added_tokens (or a tiktoken special token).
struct AddedToken {
  uint32_t id = 0;
  std::string content;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

// tokenizer.json's "added_tokens" (nullptr or null: none). Defaults as in the reference (normalized = !special);
// two entries with one id or one content are an error naming both. `path` names the array in messages.
std::vector<AddedToken> AddedTokensFromJson(const json::Value* v, const std::string& path);

class TokenMatcher {
 public:
  struct Entry {
    uint32_t id;
    bool lstrip, rstrip, single_word;
  };
  void Add(std::string_view pattern, Entry e);
  bool empty() const { return nodes_.size() <= 1; }
  // Calls on_text(piece, offset) for text between matches and on_token(id) for matches, in order.
  void Split(std::string_view text, FnRef<void(std::string_view, size_t)> on_text,
             FnRef<void(uint32_t)> on_token) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> next;  // sorted by byte
    int32_t entry = -1;
  };
  uint32_t Child(uint32_t n, unsigned char b) const;
  std::vector<Node> nodes_{1};
  std::vector<Entry> entries_;
  bool first_[256] = {};
};

}  // namespace tokmeter::tokenizer
