// KvArena — a KvMemory that hands out blocks of one region taken once from another KvMemory (the model's host
// memory), so sequences, the running batch and prefix-cache entries reuse the same pages request after request
// instead of each request mapping (and first-touching) fresh memory.
//
// Why: a fresh anonymous page costs a page fault on its first touch, and on the VMs measured here that is
// milliseconds per MB (native/engine/README.md, "Prefix-cache hits"): a prefix-cache hit on a 900-token prompt of a
// 72 KiB-per-token model touched ~200 MB of fresh memory (the sequence's past, the present ORT writes, the new cache
// entry) and cost ~30 decode steps. Pages an arena has touched once stay resident and cost nothing the next time.
//
// Contract:
// - The region is `bytes` long (the model's kvCacheBytes), allocated from `upstream` at construction and returned
//   at destruction. Blocks are 64-byte-aligned runs of it, first fit from the lowest address, so a steady workload
//   keeps reusing the same low pages; freeing coalesces with free neighbours.
// - Pages are made resident (KvMemory::Prefault: huge pages where the system gives them, faulted in one call) the
//   first time a block reaches past what was touched before, or all at once with PrefaultAll().
// - TryAllocate: a block of the region or null (the prefix cache then evicts and retries). Allocate: a block of the
//   region or, when no free run fits, a block from `upstream` (a spill, counted in stats()): the KV budget counts
//   the running sequences' reservations and the cache, not the transients around them (a relayout's old and new
//   batch buffers, a newcomer's prefill buffers while others run), and those must not fail a request that the budget
//   admitted. A spill that `upstream` cannot serve throws std::bad_alloc, which the scheduler maps to its errors as
//   before.
// - Copies and zero fills are `upstream`'s (the arena never reads or writes KV itself; test/kv_arena_test.cc runs it
//   over fenced memory to prove it).
// Thread safety: Allocate/Free/stats from any thread (one mutex; no copy runs under it). `upstream` must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#include "engine/kv_memory.h"

namespace tokmeter::engine {

struct KvArenaStats {
  size_t capacity = 0;       // the region's bytes (<= the model's kvCacheBytes)
  size_t used = 0;           // bytes of the region in live blocks
  size_t peak = 0;           // most bytes of the region in live blocks at once
  size_t touched = 0;        // bytes of the region made resident so far (from its start)
  size_t largestFree = 0;    // the longest free run (fragmentation: capacity - used - largestFree is scattered)
  size_t blocks = 0;         // live blocks in the region
  size_t spilledBytes = 0;   // bytes in live spilled blocks (outside the region)
  uint64_t allocations = 0;  // blocks served by the region, all time
  uint64_t spills = 0;       // blocks served by upstream because no free run fitted, all time
  uint64_t misses = 0;       // TryAllocate calls that found no free run
};

class KvArena final : public KvMemory {
 public:
  static constexpr size_t kAlignment = 64;  // a cache line: what ORT's kernels want of a tensor
  // Throws std::bad_alloc when `upstream` cannot give the region.
  KvArena(KvMemory& upstream, size_t bytes);
  ~KvArena() override;
  KvArena(const KvArena&) = delete;
  KvArena& operator=(const KvArena&) = delete;

  bool host() const noexcept override { return upstream_->host(); }
  uint8_t* Allocate(size_t bytes) override;
  uint8_t* TryAllocate(size_t bytes) override;
  void Free(uint8_t* data) noexcept override;
  void Copy2D(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width,
              size_t height) override {
    upstream_->Copy2D(dst, dstPitch, src, srcPitch, width, height);
  }
  void Zero2D(uint8_t* dst, size_t pitch, size_t width, size_t height) override {
    upstream_->Zero2D(dst, pitch, width, height);
  }
  // Makes the whole region resident now (a model that expects prefix-cache hits pays this at load, not per request).
  void PrefaultAll();
  KvArenaStats stats() const;
  bool Owns(const uint8_t* data) const noexcept { return data >= region_ && data < region_ + capacity_; }

 private:
  uint8_t* AllocateInRegionLocked(size_t bytes);
  size_t LargestFreeLocked() const noexcept;
  KvMemory* upstream_;
  uint8_t* raw_ = nullptr;     // what upstream gave
  uint8_t* region_ = nullptr;  // its first aligned byte
  size_t capacity_ = 0;
  std::mutex alloc_mutex_;  // held by allocations (and their prefault) only
  mutable std::mutex mutex_;
  std::map<size_t, size_t> free_;                 // offset -> length, disjoint, never adjacent (coalesced)
  std::unordered_map<size_t, size_t> live_;       // offset -> length of live blocks in the region
  std::unordered_map<uint8_t*, size_t> spilled_;  // live blocks from upstream -> length
  KvArenaStats stats_;
};

}  // namespace tokmeter::engine
