#include "engine/kv_cache.h"

namespace tokmeter::engine {

KvCache::KvCache(const GraphSpec& spec, size_t capacity, KvMemory& memory)
    : memory_(&memory),
      capacity_(capacity),
      tensors_(static_cast<size_t>(spec.numLayers) * 2),
      heads_(static_cast<size_t>(spec.numKvHeads)),
      row_bytes_(static_cast<size_t>(spec.headDim) * DTypeSize(spec.kvDtype)),
      slot_bytes_(capacity * static_cast<size_t>(spec.numKvHeads * spec.headDim) * DTypeSize(spec.kvDtype)) {
  // At least one byte per slot so an empty past still has a valid data pointer.
  if (slot_bytes_ == 0) slot_bytes_ = 1;
  storage_ = KvBuffer(memory, tensors_ * 2 * slot_bytes_);  // uninitialised: no zero fill
}

void KvCache::CopyPrefixOut(size_t tensor, size_t n, uint8_t* dst) const {
  // Head h's first n positions: [heads, length, dim] -> [heads, n, dim].
  memory_->Copy2D(dst, n * row_bytes_, Slot(tensor, current_), length_ * row_bytes_, n * row_bytes_, heads_);
}

void KvCache::CopyPrefixIn(size_t tensor, const uint8_t* src, size_t srcLength, size_t n) {
  auto* past = static_cast<uint8_t*>(Slot(tensor, current_));
  memory_->Copy2D(past, n * row_bytes_, src, srcLength * row_bytes_, n * row_bytes_, heads_);
}

}  // namespace tokmeter::engine
