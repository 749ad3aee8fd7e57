// ByteLevel, Metaspace, Whitespace, WhitespaceSplit, Digits, Punctuation, BertPreTokenizer, and the chain.
#include "tokenizer/pretokenizers/pre_tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {

std::unique_ptr<PreTokenizer> MakeSplit(const PreTokenizerSpec& s, const std::string& field);
std::unique_ptr<PreTokenizer> MakeRegexIsolated(std::string_view regex, const std::string& field);
std::unique_ptr<PreTokenizer> MakeRegexRemovedGaps(std::string_view regex, const std::string& field);

// The GPT-2 pattern the reference's ByteLevel pre-tokenizer uses when use_regex is true.
inline constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// Byte-level: the model works on raw bytes (see models/bpe.h), so the byte-to-char mapping itself is implicit;
// what remains is add_prefix_space and the optional GPT-2 split.
class ByteLevelPre final : public PreTokenizer {
 public:
  ByteLevelPre(const PreTokenizerSpec& s, const std::string& field) : add_prefix_space_(s.add_prefix_space) {
    if (s.use_regex) split_ = MakeRegexIsolated(kGpt2Pattern, field + " (GPT-2 pattern)");
  }
  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    std::string_view p = piece;
    if (add_prefix_space_ && (p.empty() || p[0] != ' ')) {
      auto& buf = s.bufs[stage];
      buf.assign(" ");
      buf.append(piece);
      p = buf;
    }
    if (split_)
      split_->Split(p, at_start, s, stage, emit);
    else if (!p.empty())
      emit(p, at_start);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<PreTokenizer> split_;
};

class MetaspacePre final : public PreTokenizer {
 public:
  explicit MetaspacePre(const PreTokenizerSpec& s) : rep_(s.replacement), scheme_(s.prepend_scheme), split_(s.split) {
    if (rep_.empty() || utf8::SeqLen(static_cast<unsigned char>(rep_[0])) != rep_.size())
      throw tokmeter::Error("ERR_TOKENIZER_SPEC", "pre_tokenizer Metaspace.replacement: must be one character");
  }
  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    auto& buf = s.bufs[stage];
    buf.clear();
    bool starts = piece.substr(0, rep_.size()) == rep_ || (!piece.empty() && piece[0] == ' ');
    if (!starts &&
        (scheme_ == PreTokenizerSpec::Prepend::kAlways || (scheme_ == PreTokenizerSpec::Prepend::kFirst && at_start)))
      buf += rep_;
    for (char c : piece) {
      if (c == ' ')
        buf += rep_;
      else
        buf.push_back(c);
    }
    std::string_view p = buf;
    if (!split_) {
      if (!p.empty()) emit(p, at_start);
      return;
    }
    // Split on the replacement, merged with the next piece.
    auto& segs = s.segs[stage];
    segs.clear();
    size_t prev = 0;
    for (size_t pos = p.find(rep_); pos != std::string_view::npos; pos = p.find(rep_, pos + rep_.size())) {
      if (pos != prev) segs.push_back({prev, pos, false});
      segs.push_back({pos, pos + rep_.size(), true});
      prev = pos + rep_.size();
    }
    if (prev != p.size()) segs.push_back({prev, p.size(), false});
    EmitSegments(p, at_start, segs, SplitBehavior::kMergedWithNext, emit);
  }

 private:
  std::string rep_;
  PreTokenizerSpec::Prepend scheme_;
  bool split_;
};

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

class SequencePre final : public PreTokenizer {
 public:
  SequencePre(std::unique_ptr<PreTokenizer> a, std::unique_ptr<PreTokenizer> b) : a_(std::move(a)), b_(std::move(b)) {}
  void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const override {
    // Uses the scratch slots of stage for `a` and of a private slot for `b`.
    size_t sub = stage + 1;  // the chain reserves two scratch slots per stage
    auto mid = [&](std::string_view w, bool st) { b_->Split(w, st, s, sub, emit); };
    a_->Split(piece, at_start, s, stage, EmitFn(mid));
  }

 private:
  std::unique_ptr<PreTokenizer> a_, b_;
};

// Rust regex \w is Alphabetic + M + Nd + Pc + Join_Control.
constexpr const char* kWhitespacePattern =
    "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
    "\\s]+";

}  // namespace

std::unique_ptr<PreTokenizer> MakePreTokenizer(const PreTokenizerSpec& s, const std::string& field) {
  using K = PreTokenizerSpec::Kind;
  switch (s.kind) {
    case K::kSplit: return MakeSplit(s, field);
    case K::kByteLevel: return std::make_unique<ByteLevelPre>(s, field);
    case K::kMetaspace: return std::make_unique<MetaspacePre>(s);
    case K::kWhitespace: return MakeRegexRemovedGaps(kWhitespacePattern, field);
    case K::kWhitespaceSplit:
      return std::make_unique<CharClassPre<bool (*)(char32_t)>>(&unicode::IsWhitespace, SplitBehavior::kRemoved, false);
    case K::kDigits:
      return std::make_unique<CharClassPre<bool (*)(char32_t)>>(
          &unicode::IsNumeric, s.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
          s.individual_digits);
    case K::kPunctuation:
      return std::make_unique<CharClassPre<bool (*)(char32_t)>>(&unicode::IsPunctuation, s.behavior, true);
    case K::kBert:
      return std::make_unique<SequencePre>(
          std::make_unique<CharClassPre<bool (*)(char32_t)>>(&unicode::IsWhitespace, SplitBehavior::kRemoved, false),
          std::make_unique<CharClassPre<bool (*)(char32_t)>>(&unicode::IsPunctuation, SplitBehavior::kIsolated, true));
  }
  throw tokmeter::Error("ERR_TOKENIZER_SPEC", field + ": unknown pre-tokenizer kind");
}

PreTokenizerChain::PreTokenizerChain(const std::vector<PreTokenizerSpec>& specs) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (i + 1 < specs.size() && specs[i].kind == PreTokenizerSpec::Kind::kByteLevel)
      throw tokmeter::Error("ERR_TOKENIZER_SPEC", "pre_tokenizer[" + std::to_string(i) +
                                                      "]: ByteLevel must be the last pre-tokenizer of a Sequence");
    stages_.push_back(MakePreTokenizer(specs[i], "pre_tokenizer[" + std::to_string(i) + "]"));
  }
}

void PreTokenizerChain::Run(std::string_view piece, bool at_start, PreTokScratch& s,
                            FnRef<void(std::string_view)> emit) const {
  if (s.bufs.size() < 2 * stages_.size() + 2) {
    s.bufs.resize(2 * stages_.size() + 2);
    s.segs.resize(2 * stages_.size() + 2);
  }
  RunFrom(0, piece, at_start, s, emit);
}

void PreTokenizerChain::RunFrom(size_t stage, std::string_view piece, bool at_start, PreTokScratch& s,
                                FnRef<void(std::string_view)> emit) const {
  if (stage == stages_.size()) {
    if (!piece.empty()) emit(piece);
    return;
  }
  auto next = [&](std::string_view w, bool st) { RunFrom(stage + 1, w, st, s, emit); };
  stages_[stage]->Split(piece, at_start, s, 2 * stage, EmitFn(next));
}

}  // namespace tokmeter::tokenizer
