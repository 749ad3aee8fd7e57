#include "grammar/grammar_cache.h"

namespace tokmeter::grammar {

std::shared_ptr<const Grammar> GrammarCache::Get(std::string_view spec,
                                                 const std::shared_ptr<const Vocabulary>& vocabulary,
                                                 const Limits& limits) {
  std::string key = std::to_string(reinterpret_cast<uintptr_t>(vocabulary.get())) + ":" +
                    std::to_string(limits.maxStackDepth) + ":" + std::to_string(limits.maxNfaNodes) + ":" +
                    std::string(spec);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  std::shared_ptr<const Grammar> g = Grammar::Compile(spec, vocabulary, limits);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;
  lru_.emplace_front(key, g);
  index_.emplace(std::move(key), lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return g;
}

size_t GrammarCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.size();
}
uint64_t GrammarCache::hits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}
uint64_t GrammarCache::misses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return misses_;
}

}  // namespace tokmeter::grammar
