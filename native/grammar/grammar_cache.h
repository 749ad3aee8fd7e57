// tokmeter::grammar::GrammarCache — compiled grammars by (spec text, vocabulary), least recently used first out.
//
// Thread-safe. Compilation runs outside the lock (two threads asking for the same new spec may both compile it; the
// second result is dropped). Errors are not cached. A cached Grammar keeps its Vocabulary alive, so the
// vocabulary's address is a sound part of the key.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "grammar/grammar.h"

namespace tokmeter::grammar {

class GrammarCache {
 public:
  explicit GrammarCache(size_t capacity = 64) : capacity_(capacity == 0 ? 1 : capacity) {}
  std::shared_ptr<const Grammar> Get(std::string_view spec, const std::shared_ptr<const Vocabulary>& vocabulary,
                                     const Limits& limits = {});
  size_t size() const;
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const Grammar>>;
  size_t capacity_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front: most recent
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace tokmeter::grammar
