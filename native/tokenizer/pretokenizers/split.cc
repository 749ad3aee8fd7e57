// Split (regex or literal, with every SplitDelimiterBehavior and invert), Whitespace, and segment emission.
#include "tokenizer/fast_split.h"
#include "tokenizer/pretokenizers/pre_tokenizer.h"
#include "util/error.h"

namespace tokmeter::tokenizer {

void EmitSegments(std::string_view piece, bool at_start, const std::vector<Segment>& segs, SplitBehavior behavior,
                  EmitFn emit) {
  auto out = [&](size_t b, size_t e) {
    if (e > b) emit(piece.substr(b, e - b), at_start && b == 0);
  };
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& g : segs) out(g.begin, g.end);
      return;
    case SplitBehavior::kRemoved:
      for (const auto& g : segs)
        if (!g.is_match) out(g.begin, g.end);
      return;
    case SplitBehavior::kMergedWithPrevious: {
      bool prev_match = false, have = false;
      size_t cb = 0, ce = 0;
      for (const auto& g : segs) {
        if (g.is_match && !prev_match && have) {
          ce = g.end;
        } else {
          if (have) out(cb, ce);
          cb = g.begin;
          ce = g.end;
          have = true;
        }
        prev_match = g.is_match;
      }
      if (have) out(cb, ce);
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      // Fold from the right, as the reference does.
      std::vector<std::pair<size_t, size_t>> acc;
      bool prev_match = false;
      for (size_t k = segs.size(); k-- > 0;) {
        const auto& g = segs[k];
        if (g.is_match && !prev_match && !acc.empty())
          acc.back().first = g.begin;
        else
          acc.emplace_back(g.begin, g.end);
        prev_match = g.is_match;
      }
      for (size_t k = acc.size(); k-- > 0;) out(acc[k].first, acc[k].second);
      return;
    }
    case SplitBehavior::kContiguous: {
      bool prev_match = false, have = false;
      size_t cb = 0, ce = 0;
      for (const auto& g : segs) {
        if (g.is_match == prev_match && have) {
          ce = g.end;
        } else {
          if (have) out(cb, ce);
          cb = g.begin;
          ce = g.end;
          have = true;
        }
        prev_match = g.is_match;
      }
      if (have) out(cb, ce);
      return;
    }
  }
}

namespace {

class SplitPre final : public PreTokenizer {
 public:
  SplitPre(const PreTokenizerSpec& s, const std::string& field)
      : literal_(s.pattern), invert_(s.invert), behavior_(s.behavior) {
    if (s.is_regex && !(splitter_ = MakeKnownSplitter(s.pattern, s.invert)))
      regex_ = std::make_unique<Regex>(s.pattern, field + ".pattern.Regex");
  }
  SplitPre(std::string_view regex, SplitBehavior behavior, const std::string& field)
      : invert_(false), behavior_(behavior), splitter_(MakeKnownSplitter(regex, false)) {
    if (!splitter_) regex_ = std::make_unique<Regex>(regex, field);
  }

  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    bool streaming = behavior_ == SplitBehavior::kIsolated || behavior_ == SplitBehavior::kRemoved;
    auto& segs = s.segs[stage];
    segs.clear();
    size_t prev = 0;
    bool keep_match = behavior_ == SplitBehavior::kIsolated || invert_;
    bool keep_gap = behavior_ == SplitBehavior::kIsolated || !invert_;
    auto push = [&](size_t b, size_t e, bool m) {
      if (invert_) m = !m;
      if (streaming) {
        if (behavior_ == SplitBehavior::kIsolated || !m) {
          if (e > b) emit(piece.substr(b, e - b), at_start && b == 0);
        }
      } else {
        segs.push_back({b, e, m});
      }
    };
    (void)keep_match;
    (void)keep_gap;
    auto on_match = [&](size_t b, size_t e) {
      if (b != prev) push(prev, b, false);
      push(b, e, true);
      prev = e;
    };
    if (piece.empty()) return;
    if (splitter_) {
      splitter_->FindAll(piece, on_match);
    } else if (regex_) {
      regex_->FindAll(piece, s.rx, on_match);
    } else if (!literal_.empty()) {
      for (size_t pos = piece.find(literal_); pos != std::string_view::npos;
           pos = piece.find(literal_, pos + literal_.size()))
        on_match(pos, pos + literal_.size());
    }
    if (prev != piece.size()) push(prev, piece.size(), false);
    if (!streaming) EmitSegments(piece, at_start, segs, behavior_, emit);
  }

 private:
  std::string literal_;
  bool invert_;
  SplitBehavior behavior_;
  std::unique_ptr<Splitter> splitter_;  // a known pattern, matched without PCRE2
  std::unique_ptr<Regex> regex_;
};

}  // namespace

std::unique_ptr<PreTokenizer> MakeSplit(const PreTokenizerSpec& s, const std::string& field) {
  return std::make_unique<SplitPre>(s, field);
}

std::unique_ptr<PreTokenizer> MakeRegexIsolated(std::string_view regex, const std::string& field) {
  return std::make_unique<SplitPre>(regex, SplitBehavior::kIsolated, field);
}

std::unique_ptr<PreTokenizer> MakeRegexRemovedGaps(std::string_view regex, const std::string& field) {
  // Keeps matches, drops what lies between them (Split with invert = true, behavior Removed).
  PreTokenizerSpec s;
  s.kind = PreTokenizerSpec::Kind::kSplit;
  s.pattern = std::string(regex);
  s.is_regex = true;
  s.invert = true;
  s.behavior = SplitBehavior::kRemoved;
  return std::make_unique<SplitPre>(s, field);
}

}  // namespace tokmeter::tokenizer
