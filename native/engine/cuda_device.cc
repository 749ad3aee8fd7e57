#include "engine/cuda_device.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "util/error.h"

namespace tokmeter::engine {

std::unique_ptr<CudaDevice> CudaDevice::Open(int deviceId) {
  const CudaPlugin& plugin = CudaPlugin::Require(deviceId);
  std::unique_ptr<CudaDevice> device(new CudaDevice(plugin, deviceId));
  TokmeterCudaDeviceInfo info{};
  plugin.Check(plugin.api().device_info(deviceId, &info), "CUDA device query");
  device->name_ = info.name;
  plugin.Check(plugin.api().create_stream(deviceId, &device->stream_), "create a CUDA stream");
  return device;
}

CudaDevice::~CudaDevice() {
  if (neg_inf_ != nullptr) plugin_.api().device_free(neg_inf_);
  plugin_.api().destroy_sampler(sampler_);  // waits for work in flight
  if (stream_ != nullptr) plugin_.api().destroy_stream(stream_);
}

uint8_t* CudaDevice::Allocate(size_t bytes) {
  void* p = nullptr;
  const int status = plugin_.api().device_alloc(device_, bytes, &p);
  if (status == TOKMETER_CUDA_OUT_OF_MEMORY) throw std::bad_alloc();
  plugin_.Check(status, "allocate GPU memory for the KV cache");
  return static_cast<uint8_t*>(p);
}

void CudaDevice::Free(uint8_t* data) noexcept {
  // cudaFree synchronises first; a failure here (a device already lost) leaves nothing to recover.
  plugin_.api().device_free(data);
}

void CudaDevice::Copy2D(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width,
                        size_t height) {
  plugin_.Check(plugin_.api().copy_2d(dst, dstPitch, src, srcPitch, width, height, stream_), "copy KV on the GPU");
}

void CudaDevice::Copy2DAndWait(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width,
                               size_t height) {
  Copy2D(dst, dstPitch, src, srcPitch, width, height);
  plugin_.Check(plugin_.api().synchronize(stream_), "copy logits from the GPU");
}

void CudaDevice::Zero2D(uint8_t* dst, size_t pitch, size_t width, size_t height) {
  plugin_.Check(plugin_.api().memset_2d(dst, pitch, 0, width, height, stream_), "clear KV on the GPU");
}

void CudaDevice::CreateSampler(size_t slots, size_t vocab) {
  if (slots == 0 || slots > (1u << 20) || vocab == 0 || vocab > (1u << 30))
    throw Error(codes::kInvalidArgument, "CUDA sampler: bad slot count or vocabulary size");
  plugin_.Check(
      plugin_.api().create_sampler(device_, static_cast<int>(slots), static_cast<int>(vocab), stream_, &sampler_),
      "create the CUDA sampler");
  std::lock_guard<std::mutex> lock(slots_mutex_);
  vocab_ = vocab;
  free_slots_.clear();
  for (size_t i = slots; i-- > 0;) free_slots_.push_back(static_cast<int>(i));
  slot_masks_.assign(slots, nullptr);
}

int CudaDevice::StartSequence(const SamplingOptions& options, std::span<const uint32_t> prompt) {
  if (sampler_ == nullptr) throw Error(codes::kInternal, "the CUDA sampler was not created");
  int slot;
  {
    std::lock_guard<std::mutex> lock(slots_mutex_);
    if (free_slots_.empty())
      throw Error(codes::kInternal, "no free CUDA sampler slot (more live sequences than the model's maxBatch)");
    slot = free_slots_.back();
    free_slots_.pop_back();
    slot_masks_[static_cast<size_t>(slot)] = options.masked;
  }
  TokmeterCudaRowOptions row{};
  row.temperature = options.temperature;
  row.top_k = options.topK;
  row.top_p = options.topP;
  row.min_p = options.minP;
  row.repetition_penalty = options.repetitionPenalty;
  row.presence_penalty = options.presencePenalty;
  row.frequency_penalty = options.frequencyPenalty;
  row.seed = options.seed;
  const int status = plugin_.api().reset_slot(sampler_, slot, &row, prompt.data(), prompt.size());
  if (status != TOKMETER_CUDA_OK) {
    ReleaseSlot(slot);
    plugin_.Check(status, "start a sequence on the CUDA sampler");
  }
  return slot;
}

void CudaDevice::ReleaseSlot(int slot) noexcept {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(slots_mutex_);
  free_slots_.push_back(slot);
  slot_masks_[static_cast<size_t>(slot)] = nullptr;
}

void CudaDevice::MaskRows(uint8_t* logits, DType dtype, int64_t rowStride, std::span<const int32_t> slots) {
  std::vector<std::shared_ptr<const TokenMask>> masks(slots.size());
  {
    std::lock_guard<std::mutex> lock(slots_mutex_);
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] < 0 || static_cast<size_t>(slots[i]) >= slot_masks_.size())
        throw Error(codes::kInternal, "CUDA sample: slot out of range");
      masks[i] = slot_masks_[static_cast<size_t>(slots[i])];
    }
  }
  const size_t element = dtype == DType::kFloat16 ? 2 : 4;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!masks[i] || masks[i]->empty()) continue;
    if (neg_inf_ == nullptr || neg_inf_dtype_ != dtype) {
      // A row of -infinity to copy from (once per model: the logits dtype is fixed by the graph).
      if (neg_inf_ != nullptr) plugin_.api().device_free(neg_inf_);
      neg_inf_ = nullptr;
      std::vector<uint8_t> host(vocab_ * element);
      for (size_t k = 0; k < vocab_; ++k) {
        if (element == 2) {
          const uint16_t h = 0xFC00;  // fp16 -infinity
          std::memcpy(host.data() + k * 2, &h, 2);
        } else {
          const float f = -std::numeric_limits<float>::infinity();
          std::memcpy(host.data() + k * 4, &f, 4);
        }
      }
      neg_inf_ = Allocate(host.size());
      neg_inf_dtype_ = dtype;
      Copy2D(neg_inf_, host.size(), host.data(), host.size(), host.size(), 1);
      plugin_.Check(plugin_.api().synchronize(stream_), "fill the token mask on the GPU");
    }
    uint8_t* row = logits + static_cast<size_t>(i) * static_cast<size_t>(rowStride) * element;
    for (const TokenRange& r : *masks[i]) {
      const size_t end = std::min<size_t>(r.end, vocab_);
      if (r.begin >= end) continue;
      Copy2D(row + r.begin * element, vocab_ * element, neg_inf_, vocab_ * element, (end - r.begin) * element, 1);
    }
  }
}

void CudaDevice::Sample(const void* logits, DType dtype, int64_t rowStride, std::span<const int32_t> slots,
                        std::span<const double> uniforms, std::span<uint32_t> ids, std::span<float> logprobs) {
  const size_t n = slots.size();
  if (uniforms.size() != n || ids.size() != n || (!logprobs.empty() && logprobs.size() != n))
    throw Error(codes::kInternal, "CUDA sample: spans of different lengths");
  int cuda_dtype;
  if (dtype == DType::kFloat32) {
    cuda_dtype = TOKMETER_CUDA_FLOAT32;
  } else if (dtype == DType::kFloat16) {
    cuda_dtype = TOKMETER_CUDA_FLOAT16;
  } else {
    throw Error(codes::kModelInvalid, "the CUDA sampler takes float32 or float16 logits");
  }
  // The logits are the last Run's output, which nothing reads before these kernels: masked in place.
  MaskRows(static_cast<uint8_t*>(const_cast<void*>(logits)), dtype, rowStride, slots);
  plugin_.Check(plugin_.api().sample(sampler_, logits, cuda_dtype, rowStride, static_cast<int>(n), slots.data(),
                                     uniforms.data(), ids.data(), logprobs.empty() ? nullptr : logprobs.data()),
                "sample on the GPU");
}

}  // namespace tokmeter::engine
