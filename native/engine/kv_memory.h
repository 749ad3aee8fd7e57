// KvMemory — where KV bytes live: host memory for device 'cpu', GPU memory for device 'cuda' (cuda_kv_memory.h,
// through the CUDA plug-in). KvCache, BatchKv and PrefixCache allocate and move KV only through this interface, so
// the one implementation of their layouts (ping-pong halves, left- or right-padded batch rows, compact prefix
// copies) serves both devices, and the CPU tests exercise every copy the GPU path makes.
//
// Copies are 2D (`height` rows of `width` bytes with independent row pitches) because every KV move is "for each
// head, a run of positions": one call per tensor instead of one per head, which on a GPU is one cudaMemcpy2DAsync.
// Ordering: a device implementation queues copies on the stream ONNX Runtime computes on, so they are ordered with
// the graph's Runs without host synchronisation; freeing synchronises first.
// Errors: Allocate throws std::bad_alloc when the memory is exhausted (the scheduler maps it to its KV errors);
// copies throw tokmeter::Error (a device fault). Host copies never fail.
// Thread affinity: none for the host memory; a device memory is used by its model's inference thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace tokmeter::engine {

class KvMemory {
 public:
  virtual ~KvMemory() = default;
  virtual bool host() const noexcept = 0;
  // Uninitialised (untouched host pages cost no resident memory); `bytes` 0 gives a valid 1-byte block.
  virtual uint8_t* Allocate(size_t bytes) = 0;
  virtual void Free(uint8_t* data) noexcept = 0;
  // A block, or null when none is available without overstepping this memory's own bounds (an arena's region:
  // kv_arena.h); never throws for exhaustion. Plain memories: Allocate, null instead of std::bad_alloc.
  virtual uint8_t* TryAllocate(size_t bytes) {
    try {
      return Allocate(bytes);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
  // Makes [data, data + bytes) of a block resident now, so later touches take no page faults (host: one madvise
  // call, huge pages where the system gives them); contents are kept. Device memory: nothing.
  virtual void Prefault(uint8_t* /*data*/, size_t /*bytes*/) noexcept {}
  virtual void Copy2D(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width,
                      size_t height) = 0;
  virtual void Zero2D(uint8_t* dst, size_t pitch, size_t width, size_t height) = 0;
  void Copy(uint8_t* dst, const uint8_t* src, size_t bytes) { Copy2D(dst, bytes, src, bytes, bytes, 1); }
};

// The process-wide host memory (memcpy, memset): blocks under 2 MiB from new[]; larger ones mapped directly, 2 MiB
// aligned and advised MADV_HUGEPAGE, so the kernel can back them with huge pages (far fewer first-touch faults)
// where transparent huge pages are enabled for madvise. Unmapped on Free, as glibc would.
KvMemory& HostKvMemory() noexcept;

// One allocation of a KvMemory, freed by its destructor. Move-only.
class KvBuffer {
 public:
  KvBuffer() = default;
  KvBuffer(KvMemory& memory, size_t bytes) : memory_(&memory), data_(memory.Allocate(bytes)) {}
  // Takes ownership of a block `memory` gave (TryAllocate).
  static KvBuffer Adopt(KvMemory& memory, uint8_t* data) noexcept {
    KvBuffer buffer;
    buffer.memory_ = &memory;
    buffer.data_ = data;
    return buffer;
  }
  KvBuffer(KvBuffer&& other) noexcept : memory_(other.memory_), data_(std::exchange(other.data_, nullptr)) {}
  KvBuffer& operator=(KvBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      memory_ = other.memory_;
      data_ = std::exchange(other.data_, nullptr);
    }
    return *this;
  }
  KvBuffer(const KvBuffer&) = delete;
  KvBuffer& operator=(const KvBuffer&) = delete;
  ~KvBuffer() { reset(); }

  uint8_t* get() const noexcept { return data_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }
  void reset() noexcept {
    if (data_ != nullptr) memory_->Free(data_);
    data_ = nullptr;
  }

 private:
  KvMemory* memory_ = nullptr;
  uint8_t* data_ = nullptr;
};

}  // namespace tokmeter::engine
