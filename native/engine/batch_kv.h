// BatchKv — the KV cache of the running batch (continuous batching, scheduler.h): for every KV tensor (2 per layer)
// one [rows, heads, P, head_dim] tensor, contiguous, in one of two buffers ("ping" and "pong", as kv_cache.h). A
// batched step binds the past half as the graph's past_key_values ([rows, heads, P, dim]) and the other half as its
// present ([rows, heads, P + 1, dim]), then the halves swap: no KV byte is copied outside ORT's Run while the batch
// keeps its composition.
//
// Padding (fixed at construction, chosen by the model for its graph):
// - kLeft (graphs whose attention honours the mask): row r holds its rowLength(r) real positions in columns
//   [P - rowLength(r), P); the columns in front are holes, zero-filled (finite, so a masked column times a zero
//   probability stays exactly zero) and masked out with attention_mask = 0. A step appends every row's new key at
//   column P.
// - kRight (com.microsoft GroupQueryAttention, which ignores the mask beyond each row's length): row r holds its
//   positions in columns [0, rowLength(r)); the holes behind them are zero-filled by a relayout and never read (the
//   op reads the first seqlens_k + 1 keys of each row), so whatever a step leaves there does not matter. A step
//   writes each row's new key at column rowLength(r) (the op does; CausalLm::ForwardBatch gives it the lengths).
// Either way every step appends one real position to every row, so the holes keep their size.
// Relayout() changes the composition (rows join from their own KvCache or stay; rows left out must be taken out with
// ExtractRow first) and compacts: P becomes the longest row, each row is re-padded, and no hole survives longer
// than needed. A relayout copies every row once (rows x length x KvBytesPerToken); it runs only when a sequence
// joins, leaves, is parked or resumes, never on a plain step.
//
// Memory: each half holds rows x capacityTokens positions per tensor (capacityTokens: the largest capacity of the
// rows, so P + 1 always fits); the buffers are reallocated when a layout does not fit or uses less than half.
// Deliberately not zero-filled on allocation (only holes are written with zeros): untouched pages cost nothing.
// Device: the buffers come from a KvMemory (kv_memory.h), the same one as the rows' KvCaches; every move is a
// KvMemory::Copy2D / Zero2D (one per tensor and row), so the GPU path runs exactly this code.
// Ownership: owned by the model (one per CausalLm); `memory` must outlive it. Thread affinity: the inference thread
// only. Plain C++ (no ORT), unit-tested in test/batch_kv_test.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/kv_cache.h"

namespace tokmeter::engine {

class BatchKv {
 public:
  static constexpr size_t kNoRow = static_cast<size_t>(-1);
  // Where a row of the next layout comes from: a row of the current layout, or a sequence's own (compact) cache.
  struct Source {
    size_t oldRow = kNoRow;
    const KvCache* cache = nullptr;
  };

  enum class Padding { kLeft, kRight };

  BatchKv(size_t tensors, size_t heads, size_t rowBytes, KvMemory& memory = HostKvMemory(),
          Padding padding = Padding::kLeft);
  Padding padding() const noexcept { return padding_; }
  size_t rows() const noexcept { return lengths_.size(); }
  size_t pastLength() const noexcept { return past_; }  // P
  size_t rowLength(size_t row) const noexcept { return lengths_[row]; }
  size_t bytes() const noexcept { return tensors_ * 2 * region_bytes_; }  // allocated, both halves
  void* past(size_t tensor) noexcept { return Region(current_, tensor); }
  void* present(size_t tensor) noexcept { return Region(current_ ^ 1, tensor); }
  // After a Run wrote [rows, heads, P + 1, dim] into present(): it becomes the past.
  void Advance() noexcept;
  // Copies row `row`'s real positions into `dst` (empty; capacity >= rowLength(row)) and sets its length.
  void ExtractRow(size_t row, KvCache& dst) const;
  // The next layout: row i comes from rows[i]. `capacityTokens` (>= longest row + 1) sizes the buffers.
  // Throws std::bad_alloc when the buffers cannot grow (the current layout is then unchanged), tokmeter::Error when a
  // device copy fails.
  void Relayout(std::span<const Source> rows, size_t capacityTokens);
  // A one-row layout without a copy: takes over `cache`'s buffers (a one-row batch has the layout of a sequence's
  // own cache, [1, heads, length, dim] per tensor), leaving `cache` empty, and drops the current layout (rows
  // leaving it must have been extracted first). Precondition: `cache` has this batch's heads and row bytes. A lone
  // sequence thus joins for free instead of copying its whole prompt's KV (tens of MB for a long prompt). `cache`
  // must use this batch's KvMemory.
  void Adopt(KvCache& cache) noexcept;

 private:
  uint8_t* Region(size_t half, size_t tensor) noexcept {
    return storage_.get() + half * half_stride_ + tensor * tensor_stride_;
  }
  const uint8_t* Region(size_t half, size_t tensor) const noexcept {
    return storage_.get() + half * half_stride_ + tensor * tensor_stride_;
  }
  // The first column of a row's real positions in a past of `past` columns.
  size_t Start(size_t past, size_t length) const noexcept { return padding_ == Padding::kLeft ? past - length : 0; }
  KvMemory* memory_;
  Padding padding_;
  size_t tensors_;
  size_t heads_;
  size_t row_bytes_;         // one position of one head
  size_t region_bytes_ = 0;  // one tensor in one half
  // Where regions sit: [half][tensor] in buffers allocated here, [tensor][half] in buffers adopted from a KvCache.
  size_t half_stride_ = 0;
  size_t tensor_stride_ = 0;
  size_t past_ = 0;
  size_t current_ = 0;
  std::vector<size_t> lengths_;
  KvBuffer storage_;
};

}  // namespace tokmeter::engine
