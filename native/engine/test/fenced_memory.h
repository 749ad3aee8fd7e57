// FencedMemory — a KvMemory that behaves like device memory for the host: its blocks are mapped PROT_NONE, so any
// host read or write that does not go through Copy2D/Zero2D (which open the fence for their own memcpy) faults.
// The KV tests run once over host memory and once over this, which proves that KvCache, BatchKv and PrefixCache
// touch KV only through KvMemory — the property the CUDA path (cuda_device.h) relies on, checked without a GPU.
// Tests stand in for ONNX Runtime's Run (which does read and write the memory) inside an Open scope.
// It also counts live blocks, so a leak shows.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <new>
#include <optional>

#include "engine/kv_memory.h"
#include "test/test_util.h"

namespace et {

class FencedMemory final : public tokmeter::engine::KvMemory {
 public:
  bool host() const noexcept override { return false; }
  uint8_t* Allocate(size_t bytes) override {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t size = ((bytes > 0 ? bytes : 1) + page - 1) / page * page;
    void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    blocks_[static_cast<uint8_t*>(p)] = size;
    if (open_ > 0) Protect(static_cast<uint8_t*>(p), size, PROT_READ | PROT_WRITE);
    return static_cast<uint8_t*>(p);
  }
  void Free(uint8_t* data) noexcept override {
    auto it = blocks_.find(data);
    if (it == blocks_.end()) {
      ++bad_frees;
      return;
    }
    munmap(it->first, it->second);
    blocks_.erase(it);
  }
  void Copy2D(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width,
              size_t height) override {
    Scope open(*this);
    for (size_t r = 0; r < height; ++r) std::memcpy(dst + r * dstPitch, src + r * srcPitch, width);
  }
  void Zero2D(uint8_t* dst, size_t pitch, size_t width, size_t height) override {
    Scope open(*this);
    for (size_t r = 0; r < height; ++r) std::memset(dst + r * pitch, 0, width);
  }
  size_t live() const noexcept { return blocks_.size(); }
  int bad_frees = 0;

  // Opens the fence for a test's direct access (what ORT's Run does on a device) until destroyed.
  class Scope {
   public:
    explicit Scope(FencedMemory& m) : m_(m) {
      if (m_.open_++ == 0) m_.ProtectAll(PROT_READ | PROT_WRITE);
    }
    ~Scope() {
      if (--m_.open_ == 0) m_.ProtectAll(PROT_NONE);
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    FencedMemory& m_;
  };

 private:
  static void Protect(uint8_t* p, size_t size, int prot) { mprotect(p, size, prot); }
  void ProtectAll(int prot) {
    for (auto& [p, size] : blocks_) Protect(p, size, prot);
  }
  std::map<uint8_t*, size_t> blocks_;
  int open_ = 0;
};

// The memory the KV tests run over: host first, then fenced (see each test's main()).
inline tokmeter::engine::KvMemory* kv_memory = &tokmeter::engine::HostKvMemory();
inline FencedMemory* fenced = nullptr;

// RAII: direct access for the test itself (a no-op over host memory).
class Direct {
 public:
  Direct() {
    if (fenced != nullptr && kv_memory == fenced) scope_.emplace(*fenced);
  }

 private:
  std::optional<FencedMemory::Scope> scope_;
};

// Runs every registered test over host memory, then over fenced memory; fails on a leak.
inline int RunOverBothMemories() {
  std::printf("-- host memory\n");
  int result = tmtest::RunAll();
  FencedMemory memory;
  fenced = &memory;
  kv_memory = &memory;
  std::printf("-- fenced memory (host access outside KvMemory faults)\n");
  result |= tmtest::RunAll();
  kv_memory = &tokmeter::engine::HostKvMemory();
  fenced = nullptr;
  if (memory.live() != 0 || memory.bad_frees != 0) {
    std::printf("FAIL fenced memory: %zu block(s) leaked, %d bad free(s)\n", memory.live(), memory.bad_frees);
    result = 1;
  }
  return result;
}

}  // namespace et
