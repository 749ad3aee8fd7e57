#include "engine/kv_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace tokmeter::engine {
namespace {

// MADV_POPULATE_WRITE (Linux 5.14) may be missing from older headers; an older kernel answers EINVAL and the pages
// are touched one by one instead.
#ifndef MADV_POPULATE_WRITE
constexpr int kMadvPopulateWrite = 23;
#else
constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#endif

constexpr size_t kHugePage = size_t{2} << 20;

class HostMemory final : public KvMemory {
 public:
  bool host() const noexcept override { return true; }
  uint8_t* Allocate(size_t bytes) override {
    if (bytes < kHugePage) return new uint8_t[bytes > 0 ? bytes : 1];  // default-initialised
    // Over-map by one huge page and trim, so the block starts on a 2 MiB boundary (huge pages need the alignment).
    const size_t length = (bytes + PageSize() - 1) / PageSize() * PageSize();
    void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    auto* base = static_cast<uint8_t*>(raw);
    const size_t lead = (kHugePage - reinterpret_cast<uintptr_t>(base) % kHugePage) % kHugePage;
    if (lead > 0) munmap(base, lead);
    munmap(base + lead + length, kHugePage - lead);  // lead < kHugePage: the tail is never empty
    uint8_t* block = base + lead;
    madvise(block, length, MADV_HUGEPAGE);  // advice only: EINVAL where THP is compiled out changes nothing
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      mapped_.emplace(block, length);
    } catch (...) {
      munmap(block, length);
      throw std::bad_alloc();
    }
    return block;
  }
  void Free(uint8_t* data) noexcept override {
    if (data == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = mapped_.find(data);
      if (it != mapped_.end()) {
        munmap(it->first, it->second);
        mapped_.erase(it);
        return;
      }
    }
    delete[] data;
  }
  void Prefault(uint8_t* data, size_t bytes) noexcept override {
    // Whole pages inside the range only: a page shared with a neighbouring block is left alone.
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + PageSize() - 1) / PageSize() * PageSize();
    const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / PageSize() * PageSize();
    if (end <= begin) return;
    auto* first = reinterpret_cast<uint8_t*>(begin);
    if (madvise(first, end - begin, kMadvPopulateWrite) == 0) return;
    for (uint8_t* p = first; p < reinterpret_cast<uint8_t*>(end); p += PageSize()) {
      volatile uint8_t* byte = p;
      *byte = *byte;  // a write fault makes the page resident and private
    }
  }
  void Copy2D(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width,
              size_t height) override {
    if (width == 0 || height == 0) return;
    if (dstPitch == width && srcPitch == width) {
      std::memcpy(dst, src, width * height);
      return;
    }
    for (size_t r = 0; r < height; ++r) std::memcpy(dst + r * dstPitch, src + r * srcPitch, width);
  }
  void Zero2D(uint8_t* dst, size_t pitch, size_t width, size_t height) override {
    if (width == 0) return;
    for (size_t r = 0; r < height; ++r) std::memset(dst + r * pitch, 0, width);
  }

 private:
  static size_t PageSize() noexcept {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return page;
  }
  std::mutex mutex_;
  std::unordered_map<uint8_t*, size_t> mapped_;  // blocks from mmap -> mapped length
};

}  // namespace

KvMemory& HostKvMemory() noexcept {
  static HostMemory memory;
  return memory;
}

}  // namespace tokmeter::engine
