#include "engine/prefix_cache.h"

#include <algorithm>

#include "engine/phase_timer.h"

namespace tokmeter::engine {

size_t PrefixCache::CommonPrefix(const std::vector<uint32_t>& a, std::span<const uint32_t> b) noexcept {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

size_t PrefixCache::Reuse(LanguageModel& model, SequenceState& sequence, std::span<const uint32_t> prompt) {
  KvCache* cache = model.kvCacheOf(sequence);
  if (!cache) return 0;
  ForwardTimings* timings = model.timings();
  PhaseTimer timer(timings ? &timings->prefixLoad : nullptr);
  return Load(*cache, prompt);
}

void PrefixCache::Keep(LanguageModel& model, SequenceState& sequence, std::span<const uint32_t> prompt) {
  KvCache* cache = model.kvCacheOf(sequence);
  if (!cache) return;
  ForwardTimings* timings = model.timings();
  PhaseTimer timer(timings ? &timings->prefixStore : nullptr);
  Store(*cache, prompt);
}

size_t PrefixCache::Load(KvCache& cache, std::span<const uint32_t> prompt) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto best = entries_.end();
  size_t best_length = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const size_t length = CommonPrefix(it->tokens, prompt);
    if (length > best_length) {
      best_length = length;
      best = it;
    }
  }
  // The last prompt token is always fed: its logits pick the first completion token.
  const size_t n = std::min(best_length, prompt.empty() ? 0 : prompt.size() - 1);
  if (n == 0 || cache.length() != 0 || n > cache.capacity()) {
    ++stats_.misses;
    return 0;
  }
  const size_t length = best->tokens.size();
  const size_t tensor_bytes = length * cache.heads() * cache.rowBytes();
  for (size_t t = 0; t < cache.tensorCount(); ++t)
    cache.CopyPrefixIn(t, best->data.get() + t * tensor_bytes, length, n);
  cache.SetLoadedLength(n);
  entries_.splice(entries_.begin(), entries_, best);
  ++stats_.hits;
  stats_.cachedTokens += n;
  return n;
}

void PrefixCache::Store(const KvCache& cache, std::span<const uint32_t> prompt) {
  const size_t n = prompt.size();
  if (n == 0 || cache.length() < n) return;
  const size_t tensor_bytes = n * cache.heads() * cache.rowBytes();
  const size_t bytes = tensor_bytes * cache.tensorCount();
  std::lock_guard<std::mutex> lock(mutex_);
  if (bytes > limit_) {
    ++stats_.oversized;
    return;
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    const size_t common = CommonPrefix(it->tokens, prompt);
    if (common == n) {  // an entry already holds this whole prompt (and maybe more)
      entries_.splice(entries_.begin(), entries_, it);
      return;
    }
    if (common == it->tokens.size()) {  // the new prompt extends this entry: it replaces it
      stats_.bytes -= it->bytes;
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  EvictToLocked(limit_ - bytes);
  // From the model's KV memory without spilling past it (an arena's region, kv_arena.h): when no free run fits —
  // the region is fragmented, or transients of the running batch hold it — older entries make room, least recently
  // used first. The cache is an optimisation: no memory, no entry.
  uint8_t* block = memory_->TryAllocate(bytes);
  while (block == nullptr && !entries_.empty()) {
    stats_.bytes -= entries_.back().bytes;
    entries_.pop_back();
    ++stats_.evictions;
    block = memory_->TryAllocate(bytes);
  }
  if (block == nullptr) {
    ++stats_.noMemory;
    stats_.entries = entries_.size();
    return;
  }
  Entry entry;
  entry.data = KvBuffer::Adopt(*memory_, block);
  entry.tokens.assign(prompt.begin(), prompt.end());
  entry.bytes = bytes;
  for (size_t t = 0; t < cache.tensorCount(); ++t) cache.CopyPrefixOut(t, n, entry.data.get() + t * tensor_bytes);
  entries_.push_front(std::move(entry));
  stats_.bytes += bytes;
  ++stats_.stored;
  stats_.entries = entries_.size();
}

void PrefixCache::EvictToLocked(size_t bytes) {
  while (!entries_.empty() && stats_.bytes > bytes) {
    stats_.bytes -= entries_.back().bytes;
    entries_.pop_back();
    ++stats_.evictions;
  }
  stats_.entries = entries_.size();
}

void PrefixCache::SetLimit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  limit_ = std::min(bytes, budget_);
  EvictToLocked(limit_);
}

PrefixCacheStats PrefixCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  PrefixCacheStats s = stats_;
  s.entries = entries_.size();
  s.budget = budget_;
  s.limit = limit_;
  return s;
}

}  // namespace tokmeter::engine
