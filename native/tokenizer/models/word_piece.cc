// WordPiece: greedy longest-match-first, as the reference does: the longest vocabulary entry that starts the word,
// then the longest continuing_subword_prefix + rest entry, and so on. A word of more than max_input_chars_per_word
// characters, or with a remainder that no entry starts, becomes a single unk_token. An unk_token missing from the
// vocabulary fails only the encode that needs it (ERR_INVALID_ARGUMENT), as the reference fails (MissingUnkToken).
#include <algorithm>
#include <string>

#include "tokenizer/json_value.h"
#include "tokenizer/models/model.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {
namespace {

class WordPiece final : public Model {
 public:
  WordPiece(const ModelVocab& vocab, std::string prefix, size_t max_chars, std::string unk_token, uint32_t unk)
      : map_(vocab.map),
        prefix_(std::move(prefix)),
        max_chars_(max_chars),
        unk_token_(std::move(unk_token)),
        unk_(unk) {
    for (const auto& k : vocab.keys) longest_ = std::max(longest_, k.size());
  }
  void Tokenize(std::string_view w, ModelScratch& s, IdSink& sink) const override {
    // The limit counts characters (code points), not bytes.
    size_t chars = 0;
    for (size_t i = 0; i < w.size(); i += utf8::SeqLen(static_cast<unsigned char>(w[i]))) ++chars;
    if (chars > max_chars_) {
      PushUnk(sink);
      return;
    }
    // The pieces are collected first: an unmatched remainder turns the whole word into one unk.
    s.symbols.clear();
    size_t start = 0;
    while (start < w.size()) {
      // No entry is longer than the longest token: start from there (a character boundary at or below it) rather
      // than from the end of the word, which keeps a long word linear in its length.
      const size_t pre = start > 0 ? prefix_.size() : 0;
      const size_t room = longest_ > pre ? longest_ - pre : 0;
      size_t end = w.size() - start > room ? start + room : w.size();
      while (end > start && end < w.size() && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80) --end;
      uint32_t found = TokenMap::kNone;
      while (start < end) {
        std::string_view piece = w.substr(start, end - start);
        if (start > 0) {
          s.word.assign(prefix_);
          s.word.append(piece);
          piece = s.word;
        }
        found = map_.Find(piece);
        if (found != TokenMap::kNone) break;
        // One character shorter.
        do --end;
        while (end > start && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80);
      }
      if (found == TokenMap::kNone) {
        PushUnk(sink);
        return;
      }
      s.symbols.push_back({found, 0, 0, 0, 0});
      start = end;
    }
    for (const auto& sym : s.symbols) sink.Push(sym.id);
  }

 private:
  void PushUnk(IdSink& sink) const {
    if (unk_ == TokenMap::kNone)
      throw tokmeter::Error("ERR_INVALID_ARGUMENT",
                            std::string("text has a word the WordPiece vocabulary cannot encode and model.unk_token ") +
                                json::Stringify(unk_token_) + " is not in the vocabulary");
    sink.Push(unk_);
  }

  const TokenMap& map_;
  std::string prefix_;
  size_t max_chars_;
  std::string unk_token_;
  uint32_t unk_;        // TokenMap::kNone when unk_token is not in the vocabulary
  size_t longest_ = 0;  // bytes of the longest token
};

}  // namespace

std::unique_ptr<Model> WordPieceFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab) {
  const std::string& unk = json::Str(m, "unk_token", path);
  const json::Value* max = m.Get("max_input_chars_per_word");
  return std::make_unique<WordPiece>(vocab, json::OptStr(m, "continuing_subword_prefix", path).value_or("##"),
                                     max ? json::Uint(max, path + ".max_input_chars_per_word") : 100, unk,
                                     vocab.vocab_id(unk));
}

}  // namespace tokmeter::tokenizer
