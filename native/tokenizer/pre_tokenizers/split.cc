// Split (regex or literal, with every SplitDelimiterBehavior and invert), CharDelimiterSplit, the regex splits other
// components use, and segment emission. A regex that is one of the standard tokenizer patterns is matched by a
// hand-written matcher (fast_split.h: linear time, the reference's Unicode classes); any other goes to PCRE2.
#include <memory>
#include <string>

#include "tokenizer/fast_split.h"
#include "tokenizer/json_value.h"
#include "tokenizer/pre_tokenizers/components.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

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

namespace pre_tokenizers {
namespace {

class SplitPre final : public PreTokenizer {
 public:
  // A literal pattern (both matchers null), a known pattern's matcher, or a compiled regex.
  SplitPre(std::string literal, std::unique_ptr<Splitter> splitter, std::unique_ptr<Regex> regex, bool invert,
           SplitBehavior behavior)
      : literal_(std::move(literal)),
        invert_(invert),
        behavior_(behavior),
        splitter_(std::move(splitter)),
        regex_(std::move(regex)) {}

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

  // With Isolated (inverted or not) the words are the splitter's pieces: its matches and the text between them. With
  // Removed inverted only the matches are kept, which are the pieces too when the matches cover the text (GPT-4o's
  // and gpt-oss's tokenizer.json).
  const Splitter* KnownSplit() const override {
    if (!splitter_) return nullptr;
    const bool words_are_pieces = behavior_ == SplitBehavior::kIsolated ||
                                  (invert_ && behavior_ == SplitBehavior::kRemoved && splitter_->Covers());
    return words_are_pieces ? splitter_.get() : nullptr;
  }

 private:
  std::string literal_;
  bool invert_;
  SplitBehavior behavior_;
  std::unique_ptr<Splitter> splitter_;  // a known pattern, matched without PCRE2
  std::unique_ptr<Regex> regex_;
};

}  // namespace

SplitBehavior ReadBehavior(const json::Value& o, const std::string& path, std::optional<SplitBehavior> fallback) {
  const json::Value* v = o.Get("behavior");
  if (!v && fallback) return *fallback;
  if (v && v->IsString()) {
    const std::string& b = v->str();
    if (b == "Isolated") return SplitBehavior::kIsolated;
    if (b == "Removed") return SplitBehavior::kRemoved;
    if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
    if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
    if (b == "Contiguous") return SplitBehavior::kContiguous;
  }
  json::SpecError(
      path + ".behavior",
      "expected one of Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous, got " + json::Describe(v));
}

namespace {

// The matches of a regex pattern: the known patterns' own matcher, else PCRE2 (errors name `field`).
std::unique_ptr<PreTokenizer> PatternSplit(std::string_view pattern, const std::string& field, bool invert,
                                           SplitBehavior behavior) {
  std::unique_ptr<Splitter> known = MakeKnownSplitter(pattern, invert);
  std::unique_ptr<Regex> regex;
  if (!known) regex = std::make_unique<Regex>(pattern, field);
  return std::make_unique<SplitPre>(std::string(), std::move(known), std::move(regex), invert, behavior);
}

}  // namespace

std::unique_ptr<PreTokenizer> SplitFromJson(const json::Value& o, const std::string& path) {
  json::Pattern p = json::ReadPattern(o, path);
  const bool invert = json::Bool(o, "invert", path, false);
  const SplitBehavior behavior = ReadBehavior(o, path);
  if (p.is_regex) return PatternSplit(p.text, path + ".pattern.Regex", invert, behavior);
  return std::make_unique<SplitPre>(std::move(p.text), nullptr, nullptr, invert, behavior);
}

// CharDelimiterSplit: the reference splits on every occurrence of one character, removing it; a literal Split with
// behavior Removed does exactly that.
std::unique_ptr<PreTokenizer> CharDelimiterSplitFromJson(const json::Value& o, const std::string& path) {
  const json::Value* d = o.Get("delimiter");
  if (!d || !d->IsString() || d->str().empty() || utf8::ValidSeqAt(d->str(), 0) != d->str().size())
    json::SpecError(path + ".delimiter", "expected a string of one character, got " + json::Describe(d));
  return std::make_unique<SplitPre>(d->str(), nullptr, nullptr, false, SplitBehavior::kRemoved);
}

std::unique_ptr<PreTokenizer> RegexSplit(std::string_view regex, const std::string& field) {
  return PatternSplit(regex, field, false, SplitBehavior::kIsolated);
}

std::unique_ptr<PreTokenizer> RegexMatches(std::string_view regex, const std::string& field) {
  // Keeps matches, drops what lies between them (Split with invert = true, behavior Removed).
  return PatternSplit(regex, field, true, SplitBehavior::kRemoved);
}

}  // namespace pre_tokenizers
}  // namespace tokmeter::tokenizer
