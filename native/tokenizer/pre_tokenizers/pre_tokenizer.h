// PreTokenizer: one stage that cuts a piece of normalized text into smaller pieces ("words").
//
// Immutable and thread-safe; all per-call state is in PreTokScratch (one per thread). Stages are chained by
// PreTokenizerChain, which streams pieces from stage to stage through callbacks, so a 100 MB input never builds a
// vector of all its words. Emitted views are valid only during the callback. `at_start` is true for a piece that
// starts at offset 0 of the original text (Metaspace's prepend_scheme "first" depends on it).
//
// Construction: PreTokenizerChain::FromJson reads tokenizer.json's "pre_tokenizer" value. It dispatches on "type"
// in one place (pre_tokenizer.cc, which also flattens Sequence); each component reads its own fields in its own
// file (components.h). Errors name the JSON path: ERR_TOKENIZER_SPEC for a malformed field, ERR_TOKENIZER_UNSUPPORTED
// for a type tokmeter does not implement.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/fn_ref.h"
#include "tokenizer/regex.h"

namespace tokmeter::tokenizer {

namespace json {
class Value;
}
class Splitter;  // fast_split.h

// The reference's SplitDelimiterBehavior.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

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
  // The hand-written matcher when this stage emits exactly the pieces that matcher's Next gives (fast_split.h: a known
  // pattern's matches, and the text between them where its matches leave gaps), whatever `at_start` is; else
  // nullptr. Lets the tokenizer split and run the model in one loop.
  virtual const Splitter* KnownSplit() const { return nullptr; }
  // True when this stage emits every non-empty piece unchanged.
  virtual bool Identity() const { return false; }
};

// Applies `behavior` to the alternating match / non-match segments of `piece` (the tokenizers crate's
// SplitDelimiterBehavior) and emits the non-empty results.
void EmitSegments(std::string_view piece, bool at_start, const std::vector<Segment>& segs, SplitBehavior behavior,
                  EmitFn emit);

class PreTokenizerChain {
 public:
  // `v` is tokenizer.json's "pre_tokenizer" (nullptr or null: none), `path` its name in messages.
  static std::unique_ptr<PreTokenizerChain> FromJson(const json::Value* v, const std::string& path);
  size_t size() const { return stages_.size(); }
  // Whether a ByteLevel stage is present (the model then works on raw bytes).
  bool byte_level() const { return byte_level_; }
  // The matcher when the whole chain is one KnownSplit stage, or a known sequence of them (fast_split.h
  // KnownChainSplitter), the other stages Identity: its words are that matcher's pieces. nullptr otherwise.
  const Splitter* sole_splitter() const { return sole_splitter_; }
  // Emits the final words of `piece`.
  void Run(std::string_view piece, bool at_start, PreTokScratch& s, FnRef<void(std::string_view)> emit) const;

 private:
  void RunFrom(size_t stage, std::string_view piece, bool at_start, PreTokScratch& s,
               FnRef<void(std::string_view)> emit) const;
  PreTokenizerChain() = default;
  void Add(const json::Value& v, const std::string& path, int depth);
  std::vector<std::unique_ptr<PreTokenizer>> stages_;
  std::vector<std::string> paths_;  // each stage's JSON path
  bool byte_level_ = false;
  bool ends_with_byte_level_ = false;
  const Splitter* sole_splitter_ = nullptr;
};

}  // namespace tokmeter::tokenizer
