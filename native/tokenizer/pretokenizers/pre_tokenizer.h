// PreTokenizer: one stage that cuts a piece of normalized text into smaller pieces ("words").
//
// Immutable and thread-safe; all per-call state is in PreTokScratch (one per thread). Stages are chained by
// PreTokenizerChain, which streams pieces from stage to stage through callbacks, so a 100 MB input never builds a
// vector of all its words. Emitted views are valid only during the callback. `at_start` is true for a piece that
// starts at offset 0 of the original text (Metaspace's prepend_scheme "first" depends on it).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/fn_ref.h"
#include "tokenizer/regex.h"
#include "tokenizer/spec.h"

namespace tokmeter::tokenizer {

struct Segment {
  size_t begin, end;
  bool is_match;
};

struct PreTokScratch {
  RegexScratch rx;
  std::vector<std::string> bufs;           // one per stage
  std::vector<std::vector<Segment>> segs;  // one per stage
};

using EmitFn = FnRef<void(std::string_view, bool)>;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void Split(std::string_view piece, bool at_start, PreTokScratch& s, size_t stage, EmitFn emit) const = 0;
};

std::unique_ptr<PreTokenizer> MakePreTokenizer(const PreTokenizerSpec& spec, const std::string& field);

// Applies `behavior` to the alternating match / non-match segments of `piece` (the tokenizers crate's
// SplitDelimiterBehavior) and emits the non-empty results.
void EmitSegments(std::string_view piece, bool at_start, const std::vector<Segment>& segs, SplitBehavior behavior,
                  EmitFn emit);

class PreTokenizerChain {
 public:
  explicit PreTokenizerChain(const std::vector<PreTokenizerSpec>& specs);
  size_t size() const { return stages_.size(); }
  // Emits the final words of `piece`.
  void Run(std::string_view piece, bool at_start, PreTokScratch& s, FnRef<void(std::string_view)> emit) const;

 private:
  void RunFrom(size_t stage, std::string_view piece, bool at_start, PreTokScratch& s,
               FnRef<void(std::string_view)> emit) const;
  std::vector<std::unique_ptr<PreTokenizer>> stages_;
};

}  // namespace tokmeter::tokenizer
