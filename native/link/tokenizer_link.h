// TokenizerLink — what a loaded model needs from the tokenizers its requests bring: the ids of the model's
// vocabulary a tokenizer cannot decode (never sampled), the tokenizer's vocabulary as bytes for constraints
// (native/grammar), and compiled constraints through a bounded cache. It joins three parts that do not know each
// other (the engine, the tokenizer, the grammar engine), so that the addon only converts arguments and schedules.
//
// Contract:
// - UndecodableIds(t): sorted, disjoint ranges of the ids in [0, modelVocab) for which t->HasId is false (a model
//   vocabulary padded past the tokenizer's, or holes in it). Empty when every id decodes.
// - Vocabulary(t): the grammar vocabulary over max(modelVocab, t's size) ids: each id's token text (empty where none),
//   whether it is special, and the spelling (byte-level, SentencePiece, plain) detected from the tokens. EOS ids are
//   not part of it: a request's own EOS ids are allowed by the generator when the document is complete.
// - Compile(spec, t): the grammar of `spec` over Vocabulary(t), from a cache of the last `grammarCacheEntries` specs
//   (keyed by spec text and vocabulary). Throws grammar::GrammarError (typed codes) for invalid or unsupported specs.
// Both per-tokenizer results are built once and kept for the most recent tokenizer (a model serves its own tokenizer
// in practice); a request with another tokenizer rebuilds them.
// Thread safety: every method may be called from any thread. Vocabulary and Compile may take milliseconds to
// seconds (a 128k vocabulary, a large schema): call them off the JS thread. UndecodableIds is a linear scan of ids
// (microseconds per thousand ids), done once per tokenizer.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string_view>

#include "engine/logits/processor.h"
#include "grammar/grammar_cache.h"
#include "grammar/vocabulary.h"
#include "tokenizer/tokenizer.h"

namespace tokmeter::link {

class TokenizerLink {
 public:
  explicit TokenizerLink(size_t modelVocab, size_t grammarCacheEntries = 64);

  std::shared_ptr<const engine::TokenMask> UndecodableIds(const std::shared_ptr<const tokenizer::Tokenizer>& t);
  std::shared_ptr<const grammar::Vocabulary> Vocabulary(const std::shared_ptr<const tokenizer::Tokenizer>& t);
  std::shared_ptr<const grammar::Grammar> Compile(std::string_view spec,
                                                  const std::shared_ptr<const tokenizer::Tokenizer>& t);

  size_t modelVocab() const noexcept { return model_vocab_; }
  const grammar::GrammarCache& grammars() const noexcept { return grammars_; }

 private:
  const size_t model_vocab_;
  std::mutex mutex_;  // guards the four members below
  std::weak_ptr<const tokenizer::Tokenizer> mask_source_;
  std::shared_ptr<const engine::TokenMask> mask_;
  std::weak_ptr<const tokenizer::Tokenizer> vocabulary_source_;
  std::shared_ptr<const grammar::Vocabulary> vocabulary_;
  grammar::GrammarCache grammars_;
};

}  // namespace tokmeter::link
