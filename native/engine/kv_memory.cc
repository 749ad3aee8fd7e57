#include "engine/kv_memory.h"

#include <cstring>

namespace tokmeter::engine {
namespace {

class HostMemory final : public KvMemory {
 public:
  bool host() const noexcept override { return true; }
  uint8_t* Allocate(size_t bytes) override { return new uint8_t[bytes > 0 ? bytes : 1]; }  // default-initialised
  void Free(uint8_t* data) noexcept override { delete[] data; }
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
};

}  // namespace

KvMemory& HostKvMemory() noexcept {
  static HostMemory memory;
  return memory;
}

}  // namespace tokmeter::engine
