// PrefixCache — the engine's prompt-prefix KV cache (one per loaded model, owned by the Engine, engine.h): the KV of
// prompts already prefilled, kept so that a later prompt sharing a prefix (a system prompt, a document, earlier chat
// turns) copies it into its own sequence and prefills only the rest.
//
// Contract:
// - Store(cache, prompt) right after a prefill keeps positions [0, prompt.size()) of the sequence's KV, compacted to
//   [heads, n, head_dim] per tensor (n x KvBytesPerToken bytes). Not kept: a prompt whose KV alone is larger than
//   the limit — the budget minus what running sequences reserve (SetLimit) — (the request still runs, its prompt is
//   just not kept — counted in `oversized`), or a prompt that an entry already
//   covers (that entry becomes most recent). Entries that are prefixes of the new prompt are dropped (it covers
//   them). Least recently used entries are evicted until the new one fits the byte budget.
// - Load(cache, prompt) into an empty sequence copies the longest common prefix with any entry, capped at
//   prompt.size() - 1 (the last prompt token is always fed, its logits start the generation), and returns its
//   length: the exact `cachedTokens` of the request (0: a miss). The reused positions are 0..n-1 of the new
//   sequence, as they were in the entry, so position ids (past length + i) and the all-ones attention mask of the
//   rest of the prefill are exactly what a full prefill would use.
// - Exactness: a hit feeds the same KV values a full prefill computes for those positions; greedy outputs with and
//   without the cache are compared in test/model/prefix-cache.test.ts.
// Device: entries live in the model's KvMemory (LanguageModel::kvMemory()) (the host KV arena, kv_arena.h, or GPU
// memory for device 'cuda'), copied with KvMemory::Copy2D. An entry is taken with TryAllocate, never spilled past the
// arena: when no free run fits, least recently used entries are evicted until one does, or the prompt is not kept
// (stats().noMemory). Thread affinity: Load/Store on the inference thread; stats() from any thread (one mutex; the
// copies run under it, so stats() may wait for one memcpy). Matching is a linear scan over the entries (longest common
// prefix); fine for the tens of entries a budget holds.
//
// Performance notes (bench/concurrency on the bench model — 12 layers, 4 KV heads x 64, fp32, 24 KiB of KV per
// token — 2 threads, shared 2-core machine): time to first token of a 1000-token prefix + 16-token suffix,
// 1 new token: uncached best 1537 ms, cached best 265 ms (5.8x); a hit copies 24 MB in and the Store after the
// prefill copies ~25 MB out, both small next to the 16-token prefill over a 1000-token past.
// On the 72 KiB-per-token MHA model (native/engine/README.md, "Prefix-cache hits") a hit's copies first-touched
// ~200 MB of fresh memory; from the arena they are plain memcpys.
// Decisions:
// - Whole prompts are stored, each entry its own copy (no radix tree): simple and exact, but prompts sharing a long
//   prefix with different suffixes each hold the prefix (the bench's 4 prompts = 4 x 25 MB). A tree of shared
//   blocks (vLLM / SGLang style) would store it once; not done.
// - Copy in, not share: the sequence's ping-pong buffers stay private, so an entry never changes under a running
//   sequence and eviction needs no reference counts.
// - A prompt larger than the budget runs uncached rather than failing: the cache is an optimisation and a request
//   must not fail because of it (stats().cacheOversized counts these).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/language_model.h"

namespace tokmeter::engine {

struct PrefixCacheStats {
  uint64_t hits = 0;          // Loads that reused at least one token
  uint64_t misses = 0;        // Loads that reused nothing
  uint64_t cachedTokens = 0;  // tokens served from the cache, all Loads together
  uint64_t stored = 0;        // entries added
  uint64_t evictions = 0;     // entries evicted for room (LRU); dominated entries are not counted
  uint64_t oversized = 0;     // prompts not kept because their KV alone exceeds the budget
  uint64_t noMemory = 0;      // prompts not kept because the KV memory had no room even with every entry evicted
  size_t entries = 0;
  size_t bytes = 0;  // KV bytes held now (<= limit)
  size_t budget = 0;
  size_t limit = 0;  // what the cache may hold now: the budget minus the running sequences' KV reservation
};

class PrefixCache {
 public:
  explicit PrefixCache(size_t budgetBytes, KvMemory& memory = HostKvMemory())
      : memory_(&memory), budget_(budgetBytes), limit_(budgetBytes) {}
  size_t Load(KvCache& cache, std::span<const uint32_t> prompt);
  // The budget is shared with running sequences (scheduler.h): the cache may hold at most min(bytes, budget) from
  // now on; least recently used entries are evicted at once to fit (counted in evictions).
  void SetLimit(size_t bytes);
  void Store(const KvCache& cache, std::span<const uint32_t> prompt);
  PrefixCacheStats stats() const;

  // The generator's side: Load and Store on `sequence`'s own KV (model.kvCacheOf; none: a miss, nothing kept),
  // timed in the model's prefixLoad / prefixStore phases.
  size_t Reuse(LanguageModel& model, SequenceState& sequence, std::span<const uint32_t> prompt);
  void Keep(LanguageModel& model, SequenceState& sequence, std::span<const uint32_t> prompt);

 private:
  struct Entry {
    std::vector<uint32_t> tokens;
    KvBuffer data;  // tensor t at t * tokens.size() * heads * rowBytes
    size_t bytes = 0;
  };
  static size_t CommonPrefix(const std::vector<uint32_t>& a, std::span<const uint32_t> b) noexcept;

  void EvictToLocked(size_t bytes);
  KvMemory* memory_;
  size_t budget_;
  size_t limit_;
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // front: most recently used
  PrefixCacheStats stats_;
};

}  // namespace tokmeter::engine
