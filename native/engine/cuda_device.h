// CudaDevice — what a CausalLm loaded with device 'cuda' holds beside its ORT session: the CUDA plug-in
// (cuda_plugin.h), the one stream that ONNX Runtime computes on and our copies and kernels are queued on, the GPU
// memory the KV cache lives in (it is the model's KvMemory), and the device sampler with one slot per live sequence.
// Plain C++: no CUDA headers, no CUDA link; every call goes through the plug-in's function table.
//
// Ordering: ORT gets the stream as user_compute_stream, so the graph's Runs, the KV moves (Copy2D/Zero2D, async) and
// the sampling kernels are ordered on one stream without host synchronisation; ORT synchronises at the end of each
// Run and sample() returns once the ids are on the host, so host buffers (input ids, mask) are never read late.
// Errors: CUDA failures become tokmeter::Error (CudaPlugin::Check); out of GPU memory in Allocate is std::bad_alloc,
// as host memory exhaustion is, so the scheduler's KV-budget handling is the same on both devices.
// Lifetime: owned by the CausalLm and declared before everything that holds device memory, so it is destroyed last:
// the sampler, then the stream. Thread affinity: the model's inference thread (slots: any thread, under a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "engine/cuda_plugin.h"
#include "engine/kv_memory.h"
#include "engine/logits/processor.h"
#include "engine/tensor.h"

namespace tokmeter::engine {

class CudaDevice final : public KvMemory {
 public:
  // Loads the plug-in, checks the device (ERR_DEVICE_UNAVAILABLE) and creates the shared stream.
  static std::unique_ptr<CudaDevice> Open(int deviceId);
  ~CudaDevice() override;
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  int deviceId() const noexcept { return device_; }
  void* stream() const noexcept { return stream_; }
  const std::string& name() const noexcept { return name_; }

  // KvMemory: GPU memory (cudaMalloc), async copies on the stream.
  bool host() const noexcept override { return false; }
  uint8_t* Allocate(size_t bytes) override;
  void Free(uint8_t* data) noexcept override;
  void Copy2D(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width, size_t height) override;
  void Zero2D(uint8_t* dst, size_t pitch, size_t width, size_t height) override;
  // Copy2D, then waits for the stream: for a device-to-host copy the host may read `dst` on return.
  void Copy2DAndWait(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width, size_t height);

  // The sampler: `slots` sequences at once over `vocab` logits (about slots x vocab x 29 bytes of GPU memory).
  void CreateSampler(size_t slots, size_t vocab);
  // A free slot for a new sequence, with its options and prompt; ReleaseSlot when the sequence ends.
  int StartSequence(const SamplingOptions& options, std::span<const uint32_t> prompt);
  void ReleaseSlot(int slot) noexcept;
  // Samples rows r = 0..n-1 of device `logits` (row r at r * rowStride elements) for `slots`; blocks until the ids
  // (and log-probabilities) are on the host. A slot started with SamplingOptions::masked has those ids of its row
  // overwritten with -infinity first (on the stream, before the sampling kernels), as the host Generator does.
  void Sample(const void* logits, DType dtype, int64_t rowStride, std::span<const int32_t> slots,
              std::span<const double> uniforms, std::span<uint32_t> ids, std::span<float> logprobs);

 private:
  CudaDevice(const CudaPlugin& plugin, int device) : plugin_(plugin), device_(device) {}
  const CudaPlugin& plugin_;
  int device_;
  std::string name_;
  void* stream_ = nullptr;
  // Writes -infinity over each masked range of row r of `logits` (element size `element`).
  void MaskRows(uint8_t* logits, DType dtype, int64_t rowStride, std::span<const int32_t> slots);
  TokmeterCudaSampler* sampler_ = nullptr;
  size_t vocab_ = 0;
  std::mutex slots_mutex_;
  std::vector<int> free_slots_;
  std::vector<std::shared_ptr<const TokenMask>> slot_masks_;  // by slot, under slots_mutex_
  uint8_t* neg_inf_ = nullptr;                                // vocab_ elements of -infinity in neg_inf_dtype_
  DType neg_inf_dtype_ = DType::kFloat32;
};

}  // namespace tokmeter::engine
