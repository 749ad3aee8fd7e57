// CudaSampler — the device side of the plug-in's sampler (internal to libtokmeter_cuda.so; the public face is the C
// table in interface.h). Semantics: interface.h, which mirrors native/engine/logits/*.cc and sampler.cc.
//
// Ownership: created by create_sampler, destroyed by destroy_sampler; owns every device and pinned buffer it uses.
// Thread affinity: one thread at a time; all work is enqueued on `stream_`, and Sample() synchronises it once, after
// the ids (and optional log-probabilities) are copied to pinned host memory.
//
// Device memory per slot and vocabulary entry (21 bytes): the working logits (4), the sort's keys out (4), its ids
// in and out (8), the "seen" flag of the repetition penalty (1) and the generated-token count of the presence and
// frequency penalties (4); plus cub's sort scratch, about 8 more. Penalty state is indexed by slot; everything else by
// the call's row.
//
// Performance notes (compiled and reviewed here; not yet measured on a GPU — see bench/gpu/README.md):
// - one 512-thread block per row for every stage: enough parallelism at batch >= 8; at batch 1 a 128k-entry row runs
//   on one SM (a split-row reduction is the next step if the bench shows it).
// - top-p sorts the whole row with cub::DeviceSegmentedRadixSort (rows without top-p get empty segments). The CPU
//   sorts only the finite logits; compacting the survivors of top-k before the sort is the obvious next step.
// - the draw and the top-p cut sum exp() in double, like the CPU, to keep the same boundaries within rounding.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "interface.h"

namespace tokmeter::cuda {

// One row of one sample() call, uploaded once per call.
struct RowDesc {
  int32_t slot;
  uint32_t flags;  // kFlag*
  float inv_temperature;
  float top_p;
  float log_min_p;
  float repetition_penalty;
  float presence_penalty;
  float frequency_penalty;
  int32_t top_k;
  uint32_t pad;
  uint64_t seed;
  uint64_t draw;   // Philox counter: the slot's number of earlier draws
  double uniform;  // used when kFlagHostUniform
};

enum : uint32_t {
  kFlagGreedy = 1u << 0,
  kFlagRepetition = 1u << 1,
  kFlagPresenceFrequency = 1u << 2,
  kFlagTemperature = 1u << 3,
  kFlagTopK = 1u << 4,
  kFlagTopP = 1u << 5,
  kFlagMinP = 1u << 6,
  kFlagHostUniform = 1u << 7,
};

class CudaSampler {
 public:
  // Throws nothing; returns a status and sets the thread's last error (plugin.cu).
  static int Create(int device, int max_slots, int vocab, void* stream, CudaSampler** out);
  ~CudaSampler();

  int ResetSlot(int slot, const TokmeterCudaRowOptions& options, const uint32_t* prompt, size_t length);
  int AppendTokens(int slot, const uint32_t* tokens, size_t count);
  int Sample(const void* logits, int dtype, int64_t row_stride, int n_rows, const int32_t* slots,
             const double* uniforms, uint32_t* out_ids, float* out_logprobs);
  int CopyProcessed(float* host, size_t floats);

 private:
  CudaSampler() = default;
  int MarkTokens(int slot, const uint32_t* tokens, size_t count, bool generated);

  int device_ = 0;
  int max_slots_ = 0;
  int vocab_ = 0;
  cudaStream_t stream_ = nullptr;
  int last_rows_ = 0;

  // Host mirror of each slot's options and draw count.
  std::vector<TokmeterCudaRowOptions> options_;
  std::vector<uint64_t> draws_;
  std::vector<uint8_t> active_;

  // Device buffers.
  float* work_ = nullptr;           // [max_slots, vocab] processed logits of the call's rows
  float* sort_keys_ = nullptr;      // [max_slots, vocab]
  int32_t* sort_ids_in_ = nullptr;  // [max_slots, vocab], i % vocab
  int32_t* sort_ids_ = nullptr;     // [max_slots, vocab]
  uint8_t* seen_ = nullptr;         // [max_slots, vocab] by slot
  uint32_t* counts_ = nullptr;      // [max_slots, vocab] by slot
  RowDesc* descs_ = nullptr;        // [max_slots]
  int32_t* seg_begin_ = nullptr;    // [max_slots]
  int32_t* seg_end_ = nullptr;      // [max_slots]
  float* row_max_ = nullptr;        // [max_slots]
  int32_t* row_argmax_ = nullptr;   // [max_slots]
  double* raw_stats_ = nullptr;     // [max_slots, 2]: raw max, raw sum of exp
  uint32_t* out_ids_ = nullptr;     // [max_slots]
  float* out_logprobs_ = nullptr;   // [max_slots]
  uint32_t* tokens_ = nullptr;      // scratch for reset/append
  size_t tokens_capacity_ = 0;
  void* cub_temp_ = nullptr;
  size_t cub_temp_bytes_ = 0;

  // Pinned host staging.
  void* upload_ = nullptr;  // descs, seg_begin, seg_end
  size_t upload_bytes_ = 0;
  void* download_ = nullptr;  // ids, logprobs
};

// Kernels (sampler_kernels.cu).
void LaunchPrepare(const void* logits, int dtype, int64_t row_stride, int vocab, int n_rows, const RowDesc* descs,
                   const uint8_t* seen, const uint32_t* counts, float* work, float* row_max, int32_t* row_argmax,
                   double* raw_stats, bool want_raw, cudaStream_t stream);
void LaunchTopK(int vocab, int n_rows, const RowDesc* descs, float* work, cudaStream_t stream);
void LaunchTopP(int vocab, int n_rows, const RowDesc* descs, const float* sorted_keys, const int32_t* sorted_ids,
                float* work, cudaStream_t stream);
void LaunchDraw(const void* logits, int dtype, int64_t row_stride, int vocab, int n_rows, const RowDesc* descs,
                float* work, const float* row_max, const int32_t* row_argmax, const double* raw_stats, bool want_raw,
                uint8_t* seen, uint32_t* counts, uint32_t* out_ids, float* out_logprobs, cudaStream_t stream);
void LaunchMarkTokens(const uint32_t* tokens, size_t count, int vocab, uint8_t* seen_row, uint32_t* counts_row,
                      bool generated, cudaStream_t stream);
void LaunchIota(int32_t* ids, int rows, int vocab, cudaStream_t stream);
cudaError_t SegmentedSortDescending(void* temp, size_t& temp_bytes, const float* keys_in, float* keys_out,
                                    const int32_t* ids_in, int32_t* ids_out, int num_items, int num_segments,
                                    const int32_t* begin, const int32_t* end, cudaStream_t stream);

}  // namespace tokmeter::cuda
