#include "engine/batch_kv.h"

#include <algorithm>

namespace tokmeter::engine {

BatchKv::BatchKv(size_t tensors, size_t heads, size_t rowBytes, KvMemory& memory, Padding padding)
    : memory_(&memory), padding_(padding), tensors_(tensors), heads_(heads), row_bytes_(rowBytes) {}

void BatchKv::Advance() noexcept {
  past_ += 1;
  for (auto& length : lengths_) length += 1;
  current_ ^= 1;
}

void BatchKv::ExtractRow(size_t row, KvCache& dst) const {
  const size_t length = lengths_[row];
  for (size_t t = 0; t < tensors_; ++t) {
    // Head h of the row: its `length` real columns of P -> [heads, length, dim].
    const uint8_t* src = Region(current_, t) + (row * heads_ * past_ + Start(past_, length)) * row_bytes_;
    memory_->Copy2D(static_cast<uint8_t*>(dst.past(t)), length * row_bytes_, src, past_ * row_bytes_,
                    length * row_bytes_, heads_);
  }
  dst.SetLoadedLength(length);
}

void BatchKv::Adopt(KvCache& cache) noexcept {
  // KvCache keeps [tensor][side] slots of slot_bytes_ each; its past is [heads, length, dim] at its slot's start.
  storage_ = std::move(cache.storage_);
  region_bytes_ = cache.slot_bytes_;
  half_stride_ = cache.slot_bytes_;
  tensor_stride_ = 2 * cache.slot_bytes_;
  current_ = cache.current_;
  past_ = cache.length_;
  lengths_.assign(1, cache.length_);
  cache.length_ = 0;
  cache.current_ = 0;
}

void BatchKv::Relayout(std::span<const Source> rows, size_t capacityTokens) {
  std::vector<size_t> lengths(rows.size());
  size_t past = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    lengths[i] = rows[i].cache != nullptr ? rows[i].cache->length() : lengths_[rows[i].oldRow];
    past = std::max(past, lengths[i]);
  }
  capacityTokens = std::max(capacityTokens, past + 1);
  const size_t needed = rows.size() * capacityTokens * heads_ * row_bytes_;
  if (rows.empty()) {
    storage_.reset();
    region_bytes_ = 0;
    half_stride_ = 0;
    tensor_stride_ = 0;
    lengths_.clear();
    past_ = 0;
    current_ = 0;
    return;
  }
  // Where the new layout goes: the other half when it fits (and is not wasteful), else fresh buffers.
  KvBuffer fresh;
  if (!(needed <= region_bytes_ && region_bytes_ <= 2 * needed)) {
    fresh = KvBuffer(*memory_, 2 * tensors_ * needed);  // throws bad_alloc: nothing changed yet
  }
  for (size_t t = 0; t < tensors_; ++t) {
    uint8_t* dst_tensor = fresh ? fresh.get() + t * needed : Region(current_ ^ 1, t);
    for (size_t i = 0; i < rows.size(); ++i) {
      // Row i, every head at once: the row's `length` real positions from column `start`, `hole` zero columns in
      // front of them (kLeft) or behind them (kRight).
      const size_t length = lengths[i];
      const size_t hole = past - length;
      const size_t start = Start(past, length);
      const size_t hole_start = padding_ == Padding::kLeft ? 0 : length;
      uint8_t* dst = dst_tensor + i * heads_ * past * row_bytes_;
      const size_t pitch = past * row_bytes_;
      if (hole > 0) memory_->Zero2D(dst + hole_start * row_bytes_, pitch, hole * row_bytes_, heads_);
      const uint8_t* src;
      size_t src_pitch;
      if (rows[i].cache != nullptr) {
        src = static_cast<const uint8_t*>(rows[i].cache->past(t));
        src_pitch = length * row_bytes_;
      } else {
        src = Region(current_, t) + (rows[i].oldRow * heads_ * past_ + Start(past_, length)) * row_bytes_;
        src_pitch = past_ * row_bytes_;
      }
      if (length > 0) memory_->Copy2D(dst + start * row_bytes_, pitch, src, src_pitch, length * row_bytes_, heads_);
    }
  }
  if (fresh) {
    storage_ = std::move(fresh);
    region_bytes_ = needed;
    half_stride_ = tensors_ * needed;
    tensor_stride_ = needed;
    current_ = 0;
  } else {
    current_ ^= 1;
  }
  lengths_ = std::move(lengths);
  past_ = past;
}

}  // namespace tokmeter::engine
