// CharClassPre: splits by a per-character predicate with a behavior (WhitespaceSplit, Digits, Punctuation, and
// BertPreTokenizer's two stages).
#pragma once

#include "tokenizer/pre_tokenizers/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace tokmeter::tokenizer::pre_tokenizers {

// Splits by a per-character predicate with a behavior (WhitespaceSplit, Digits, Punctuation).
template <class Pred>
class CharClassPre final : public PreTokenizer {
 public:
  CharClassPre(Pred pred, SplitBehavior b, bool each_char) : pred_(pred), behavior_(b), each_char_(each_char) {}
  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    auto& segs = s.segs[stage];
    segs.clear();
    size_t run_b = 0;
    bool in_run = false;
    size_t i = 0;
    while (i < piece.size()) {
      size_t b = i;
      bool m = pred_(utf8::Next(piece, i));
      if (m && each_char_) {
        if (in_run) segs.push_back({run_b, b, false});
        in_run = false;
        segs.push_back({b, i, true});
        continue;
      }
      if (m) {
        if (in_run) segs.push_back({run_b, b, false});
        in_run = false;
        segs.push_back({b, i, true});
      } else if (!in_run) {
        in_run = true;
        run_b = b;
      }
    }
    if (in_run) segs.push_back({run_b, piece.size(), false});
    EmitSegments(piece, at_start, segs, behavior_, emit);
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
  bool each_char_;
};

using CharPredicate = bool (*)(char32_t);

}  // namespace tokmeter::tokenizer::pre_tokenizers
