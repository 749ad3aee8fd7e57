#include "link/tokenizer_link.h"

#include <algorithm>

namespace tokmeter::link {

TokenizerLink::TokenizerLink(size_t modelVocab, size_t grammarCacheEntries)
    : model_vocab_(modelVocab), grammars_(grammarCacheEntries) {}

std::shared_ptr<const engine::TokenMask> TokenizerLink::UndecodableIds(
    const std::shared_ptr<const tokenizer::Tokenizer>& t) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (mask_ && mask_source_.lock() == t) return mask_;
  auto ranges = std::make_shared<engine::TokenMask>();
  for (size_t id = 0; id < model_vocab_; ++id) {
    if (t->HasId(static_cast<uint32_t>(id))) continue;
    if (!ranges->empty() && ranges->back().end == id) {
      ranges->back().end = static_cast<uint32_t>(id + 1);
    } else {
      ranges->push_back({static_cast<uint32_t>(id), static_cast<uint32_t>(id + 1)});
    }
  }
  engine::ValidateTokenMask(*ranges, model_vocab_);
  mask_ = std::move(ranges);
  mask_source_ = t;
  return mask_;
}

std::shared_ptr<const grammar::Vocabulary> TokenizerLink::Vocabulary(
    const std::shared_ptr<const tokenizer::Tokenizer>& t) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (vocabulary_ && vocabulary_source_.lock() == t) return vocabulary_;
  }
  // Built outside the lock (it takes a while on a large vocabulary); two racing builds give equal vocabularies.
  grammar::VocabularyInput in;
  const size_t n = std::max<size_t>(model_vocab_, t->VocabSize());
  in.tokens.resize(n);
  in.special.assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<uint32_t>(i);
    if (!t->HasId(id)) continue;
    in.tokens[i] = t->IdToToken(id).value_or("");
    in.special[i] = t->IsSpecial(id);
  }
  in.kind = grammar::DetectVocabKind(in.tokens);
  auto built = grammar::Vocabulary::Build(in);
  std::lock_guard<std::mutex> lock(mutex_);
  vocabulary_ = built;
  vocabulary_source_ = t;
  return built;
}

std::shared_ptr<const grammar::Grammar> TokenizerLink::Compile(std::string_view spec,
                                                               const std::shared_ptr<const tokenizer::Tokenizer>& t) {
  return grammars_.Get(spec, Vocabulary(t));
}

}  // namespace tokmeter::link
