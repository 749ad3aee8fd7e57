#include "engine/kv_cache.h"

#include <cstring>

namespace tokmeter::engine {

KvCache::KvCache(const GraphSpec& spec, size_t capacity)
    : capacity_(capacity),
      tensors_(static_cast<size_t>(spec.numLayers) * 2),
      heads_(static_cast<size_t>(spec.numKvHeads)),
      row_bytes_(static_cast<size_t>(spec.headDim) * DTypeSize(spec.kvDtype)),
      slot_bytes_(capacity * static_cast<size_t>(spec.numKvHeads * spec.headDim) * DTypeSize(spec.kvDtype)) {
  // At least one byte per slot so an empty past still has a valid data pointer.
  if (slot_bytes_ == 0) slot_bytes_ = 1;
  storage_.reset(new uint8_t[tensors_ * 2 * slot_bytes_]);  // default-initialised: no zero fill
}

void KvCache::CopyPrefixOut(size_t tensor, size_t n, uint8_t* dst) const noexcept {
  const uint8_t* past = Slot(tensor, current_);
  if (n == length_) {
    std::memcpy(dst, past, heads_ * n * row_bytes_);
    return;
  }
  for (size_t h = 0; h < heads_; ++h)
    std::memcpy(dst + h * n * row_bytes_, past + h * length_ * row_bytes_, n * row_bytes_);
}

void KvCache::CopyPrefixIn(size_t tensor, const uint8_t* src, size_t srcLength, size_t n) noexcept {
  auto* past = static_cast<uint8_t*>(Slot(tensor, current_));
  if (n == srcLength) {
    std::memcpy(past, src, heads_ * n * row_bytes_);
    return;
  }
  for (size_t h = 0; h < heads_; ++h)
    std::memcpy(past + h * n * row_bytes_, src + h * srcLength * row_bytes_, n * row_bytes_);
}

}  // namespace tokmeter::engine
