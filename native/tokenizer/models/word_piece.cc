// WordPiece: greedy longest-match-first, as the reference does (a word longer than max_input_chars_per_word, or
// with any unmatched remainder, becomes a single unk).
#include "tokenizer/json_value.h"
#include "tokenizer/models/model.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {
namespace {

class WordPiece final : public Model {
 public:
  WordPiece(const TokenMap& map, std::string prefix, size_t max_chars, uint32_t unk)
      : map_(map), prefix_(std::move(prefix)), max_chars_(max_chars), unk_(unk) {}
  void Tokenize(std::string_view w, ModelScratch& s, IdSink& sink) const override {
    size_t chars = 0;
    for (size_t i = 0; i < w.size(); i += utf8::SeqLen(static_cast<unsigned char>(w[i]))) ++chars;
    if (chars > max_chars_) {
      sink.Push(unk_);
      return;
    }
    // Collect first, since an unmatched remainder turns the whole word into unk.
    size_t mark = s.symbols.size();
    s.symbols.clear();
    (void)mark;
    size_t start = 0;
    while (start < w.size()) {
      size_t end = w.size();
      uint32_t found = 0xFFFFFFFFu;
      while (start < end) {
        s.word.clear();
        if (start > 0) s.word += prefix_;
        s.word.append(w.substr(start, end - start));
        uint32_t id = map_.Find(std::string_view(s.word));
        if (id != TokenMap::kNone) {
          found = id;
          break;
        }
        // Step back one character.
        do --end;
        while (end > start && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80);
      }
      if (found == 0xFFFFFFFFu) {
        sink.Push(unk_);
        return;
      }
      s.symbols.push_back({found, 0, 0, 0, 0});
      start = end;
    }
    for (const auto& sym : s.symbols) sink.Push(sym.id);
  }

 private:
  const TokenMap& map_;
  std::string prefix_;
  size_t max_chars_;
  uint32_t unk_;
};

}  // namespace

std::unique_ptr<Model> WordPieceFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab) {
  const std::string& unk = json::Str(m, "unk_token", path);
  const uint32_t unk_id = vocab.vocab_id(unk);
  if (unk_id == TokenMap::kNone)
    json::SpecError(path + ".unk_token", json::Stringify(unk) + " is not in " + path + ".vocab");
  const json::Value* max = m.Get("max_input_chars_per_word");
  return std::make_unique<WordPiece>(vocab.map, json::OptStr(m, "continuing_subword_prefix", path).value_or("##"),
                                     max ? json::Uint(max, path + ".max_input_chars_per_word") : 100, unk_id);
}

}  // namespace tokmeter::tokenizer
