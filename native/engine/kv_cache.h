// KvCache — the past/present key-value buffers of one sequence, preallocated for its whole life.
//
// Layout: for every layer and for key and value, two buffers ("ping" and "pong") of capacity × kv_heads × head_dim
// elements. A step reads the past from one buffer and ONNX Runtime writes the present — the past plus the new
// positions, [1, heads, length + n, head_dim], contiguous — straight into the other (bound with IO binding); then the
// roles swap. So no KV byte is copied outside ORT's Run, nothing is allocated per step, and nothing crosses into JS.
//
// Performance notes (bench/generate/kv_strategies.cc on the bench model — 12 layers, 4 KV heads x 64, fp32 — with
// 2 threads, 3 alternating rounds, 16 decode steps; the 2-core machine was shared, load average 10-14, so every
// figure is 4-5x an idle machine's and only large differences mean anything):
//   context 16:   pingpong 151 / 215 / 162 ms per step, ortalloc 160 / 207 / 169, copyback 146 / 199 / 165
//   context 1024: pingpong 264 / 173 / 195 ms per step, ortalloc 265 / 180 / 166, copyback 218 / 198 / 231
// - copyback (copy each present into one cache buffer, what a copying binding pays; onnxruntime-node then copies
//   into JS as well) has the worst best-round at long context (198 vs 166-173 ms); pingpong and ortalloc are within
//   noise of each other per step. The end-to-end comparison with onnxruntime-node is in bench/generate/README.md.
// - Chosen: pingpong — no copy, no per-step allocation, and a fixed footprint known before the first step (it is
//   reported to V8 and, being allocated without zero-fill, only touched pages become resident).
// - Rejected: ortalloc (ORT allocates `present` every step; that Ort::Value is fed back as the next past). Also
//   copy-free, but it makes 2 x layers length-growing allocations per step from ORT's arena and its peak memory
//   depends on the arena's growth policy (not measured here; that, not speed, is the reason).
// - Still paid inside Run: the standard Optimum graph's Concat(past, new) copies the whole cache once per step.
//   Only a graph rewrite (GroupQueryAttention with a shared past/present buffer) avoids it; not done yet. Graphs
//   that already use com.microsoft GroupQueryAttention (onnxruntime-genai exports) run here with separate
//   past/present buffers like any other; the op takes lengths, not the mask, and assumes right-padded rows, so their
//   running batch is right-padded (batch_kv.h, causal_lm.h, onnx_scan.h).
// - Batching: a sequence uses its own KvCache for its prefill (and while parked); decode steps of the
//   running batch use BatchKv (batch_kv.h), a [rows, heads, P, dim] ping-pong layout the sequence is copied into.
// - Prefix reuse (prefix_cache.h): a past of n positions is, per tensor, [heads, n, head_dim] contiguous, so a stored
//   prefix is copied in with one memcpy per tensor (CopyPrefixIn) and out per head (CopyPrefixOut).
// - Device: the buffers come from a KvMemory (kv_memory.h): host memory, or GPU memory for device 'cuda', where ORT
//   reads and writes them in place just the same; the prefix copies go through KvMemory::Copy2D.
// Ownership: owned by one sequence (OrtSequenceState); `memory` must outlive it. Thread affinity: inference thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/graph_spec.h"
#include "engine/kv_memory.h"

namespace tokmeter::engine {

class KvCache {
 public:
  KvCache(const GraphSpec& spec, size_t capacity, KvMemory& memory = HostKvMemory());
  KvMemory& memory() const noexcept { return *memory_; }
  size_t length() const noexcept { return length_; }
  size_t capacity() const noexcept { return capacity_; }
  size_t tensorCount() const noexcept { return tensors_; }  // 2 per layer
  size_t bytes() const noexcept { return tensors_ * 2 * slot_bytes_; }
  void* past(size_t tensor) noexcept { return Slot(tensor, current_); }
  const void* past(size_t tensor) const noexcept { return Slot(tensor, current_); }
  void* present(size_t tensor) noexcept { return Slot(tensor, current_ ^ 1); }
  // After a Run that wrote `n` more positions into present(): present becomes the past.
  void Advance(size_t n) noexcept {
    length_ += n;
    current_ ^= 1;
  }
  // Bytes of one position of one tensor for one head (head_dim x element size), and of a position over all heads.
  size_t rowBytes() const noexcept { return row_bytes_; }
  size_t heads() const noexcept { return heads_; }
  // Copies positions [0, n) of `tensor`'s past (n <= length()) to `dst` as [heads, n, head_dim] contiguous.
  void CopyPrefixOut(size_t tensor, size_t n, uint8_t* dst) const;
  // Into an empty cache: `src` holds [heads, srcLength, head_dim]; its positions [0, n) become the past of
  // `tensor`. Call for every tensor, then SetLoadedLength(n).
  void CopyPrefixIn(size_t tensor, const uint8_t* src, size_t srcLength, size_t n);
  void SetLoadedLength(size_t n) noexcept { length_ = n; }

 private:
  friend class BatchKv;  // BatchKv::Adopt takes the buffers over
  void* Slot(size_t tensor, size_t side) noexcept { return storage_.get() + (tensor * 2 + side) * slot_bytes_; }
  const uint8_t* Slot(size_t tensor, size_t side) const noexcept {
    return storage_.get() + (tensor * 2 + side) * slot_bytes_;
  }
  KvMemory* memory_;
  size_t capacity_;
  size_t tensors_;
  size_t heads_;
  size_t row_bytes_;
  size_t slot_bytes_;
  size_t length_ = 0;
  size_t current_ = 0;
  // Deliberately not zero-filled: positions beyond length() are never read. On the host the buffers come from the
  // model's KV arena (kv_arena.h), whose pages stay resident from one request to the next, so a sequence does not
  // pay first-touch faults for the memory it uses.
  KvBuffer storage_;
};

}  // namespace tokmeter::engine
