#include "engine/kv_arena.h"

#include <algorithm>
#include <iterator>
#include <new>

namespace tokmeter::engine {
namespace {

constexpr size_t kPrefaultStep = size_t{2} << 20;  // a huge page: the touched prefix grows by whole ones

size_t RoundUp(size_t n, size_t to) noexcept { return (n + to - 1) / to * to; }

}  // namespace

KvArena::KvArena(KvMemory& upstream, size_t bytes) : upstream_(&upstream) {
  capacity_ = bytes / kAlignment * kAlignment;
  if (capacity_ > 0) {
    // One alignment unit more, so the region can start on an aligned address whatever upstream gives.
    raw_ = upstream.Allocate(capacity_ + kAlignment);
    region_ = raw_ + (kAlignment - reinterpret_cast<uintptr_t>(raw_) % kAlignment) % kAlignment;
    free_[0] = capacity_;
  }
  stats_.capacity = capacity_;
}

KvArena::~KvArena() {
  // Every KvBuffer of the model is gone by now (the model owns the arena and declares it before its buffers);
  // a spilled block still live would be a leak, so it is returned too.
  for (auto& [data, length] : spilled_) upstream_->Free(data);
  if (raw_ != nullptr) upstream_->Free(raw_);
}

uint8_t* KvArena::AllocateInRegionLocked(size_t bytes) {
  const size_t length = RoundUp(bytes > 0 ? bytes : 1, kAlignment);
  auto it = std::find_if(free_.begin(), free_.end(), [&](const auto& run) { return run.second >= length; });
  if (it == free_.end()) return nullptr;
  const size_t offset = it->first;
  const size_t rest = it->second - length;
  free_.erase(it);
  if (rest > 0) free_[offset + length] = rest;
  live_[offset] = length;
  stats_.used += length;
  stats_.peak = std::max(stats_.peak, stats_.used);
  stats_.blocks = live_.size();
  ++stats_.allocations;
  return region_ + offset;
}

uint8_t* KvArena::TryAllocate(size_t bytes) {
  // alloc_mutex_ serialises allocations across the prefault (which may take a while on fresh memory) without
  // holding mutex_, so Free and stats() never wait for it; no block is handed out from a range being prefaulted.
  std::lock_guard<std::mutex> alloc(alloc_mutex_);
  uint8_t* block;
  size_t from = 0, to = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    block = AllocateInRegionLocked(bytes);
    if (block == nullptr) {
      ++stats_.misses;
      return nullptr;
    }
    const size_t end = static_cast<size_t>(block - region_) + live_[static_cast<size_t>(block - region_)];
    if (end > stats_.touched) {
      from = stats_.touched;
      to = std::min(RoundUp(end, kPrefaultStep), capacity_);
      stats_.touched = to;
    }
  }
  if (to > from) upstream_->Prefault(region_ + from, to - from);
  return block;
}

uint8_t* KvArena::Allocate(size_t bytes) {
  if (uint8_t* block = TryAllocate(bytes)) return block;
  uint8_t* block = upstream_->Allocate(bytes);  // throws std::bad_alloc: nothing changed
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    spilled_.emplace(block, bytes);
  } catch (...) {
    upstream_->Free(block);
    throw std::bad_alloc();
  }
  stats_.spilledBytes += bytes;
  ++stats_.spills;
  return block;
}

void KvArena::Free(uint8_t* data) noexcept {
  if (data == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!Owns(data)) {
    auto it = spilled_.find(data);
    if (it == spilled_.end()) return;  // not ours: never happens with KvBuffer
    stats_.spilledBytes -= it->second;
    upstream_->Free(data);
    spilled_.erase(it);
    return;
  }
  const size_t offset = static_cast<size_t>(data - region_);
  auto live = live_.find(offset);
  if (live == live_.end()) return;
  size_t start = offset;
  size_t length = live->second;
  live_.erase(live);
  stats_.used -= length;
  stats_.blocks = live_.size();
  // Coalesce with the free runs on either side.
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + length) {
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      length += prev->second;
      free_.erase(prev);
    }
  }
  free_[start] = length;
}

void KvArena::PrefaultAll() {
  std::lock_guard<std::mutex> alloc(alloc_mutex_);
  size_t from;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    from = stats_.touched;
    stats_.touched = capacity_;
  }
  if (capacity_ > from) upstream_->Prefault(region_ + from, capacity_ - from);
}

size_t KvArena::LargestFreeLocked() const noexcept {
  size_t largest = 0;
  for (const auto& [offset, length] : free_) largest = std::max(largest, length);
  return largest;
}

KvArenaStats KvArena::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  KvArenaStats s = stats_;
  s.largestFree = LargestFreeLocked();
  return s;
}

}  // namespace tokmeter::engine
