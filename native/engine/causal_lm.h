// CausalLm — a decoder-only ONNX model (Hugging Face / Optimum layout) behind the LanguageModel interface.
//
// Load: resolves the file for the dtype (model_files.h), opens an ORT session with the thread count asked for,
// discovers the KV layout (graph_spec.h) and checks it against the config. Construction blocks (seconds for big
// models): call it on a worker thread, never on the JS thread.
// Forward: one ORT Run through IO binding. Inputs (ids, mask, positions) live in per-sequence scratch vectors, the
// KV cache in the sequence's ping-pong buffers (kv_cache.h), the logits in a per-sequence [n, vocab] buffer (the
// prefill's is freed right after it; decode steps reuse one [1, vocab] buffer); all are bound as preallocated ORT
// values, so a decode step allocates nothing but the small Ort::Value/IoBinding handles.
// ForwardBatch: one ORT Run for one new token of each of several sequences over the model's BatchKv (batch_kv.h):
// input_ids/position_ids [rows, 1], attention_mask [rows, P + 1] with 0 over each row's holes, past/present bound
// to the batch's ping-pong halves. Position ids are each sequence's own length, so a row sees exactly the positions
// and keys it would see alone. Rows are left-padded, except in graphs with a com.microsoft GroupQueryAttention node
// (Load reads the op types from the file with onnx_scan.h): that op takes each row's length (the mask's count of
// ones), not the mask, and assumes the row's keys come first, so those graphs get a right-padded batch (the mask's
// ones over the row's keys and the last column). A changed composition (join, leave, park, resume) relayouts the
// batch first; rows whose sequence lives on but is left out go back to the sequence's own KvCache. Graphs without an
// attention_mask, with a fixed batch dimension, or whose file the op scan cannot read cannot batch:
// maxBatchRows() == 1, and notBatchableReason() says why.
// Device 'cuda' (LoadOptions.device): ORT's CUDA execution provider computes on the stream of a CudaDevice
// (cuda_device.h); the KV cache (sequences, batch, prefix cache) lives in GPU memory — the same KvCache/BatchKv code
// over the device's KvMemory, bound to ORT as "Cuda" tensors, so a step never copies KV to the host; the logits are
// an ORT-allocated GPU output that the plug-in's sampler reads (samplesOnDevice()), so only ids come back. Input ids,
// mask and positions stay host tensors (ORT copies those few bytes in).
// Lifetime: shared_ptr, owned by the model and every live sequence; a sequence must not outlive it (the Generator
// holds the model). Thread affinity: Forward/ForwardBatch and sequence destruction on the one inference thread;
// Terminate from any thread.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/batch_kv.h"
#include "engine/cuda_device.h"
#include "engine/graph_spec.h"
#include "engine/kv_arena.h"
#include "engine/kv_cache.h"
#include "engine/language_model.h"
#include "engine/model_config.h"
#include "engine/session.h"

namespace tokmeter::engine {

class OrtSequenceState;

struct LoadOptions {
  std::string dir;
  std::string dtype = "fp32";
  int threads = 0;             // ORT intra-op threads; 0: ORT's default
  size_t kvCacheBytes = 0;     // the engine's requested KV budget (kv_budget.h's KvBudget): the host arena's size
  std::string device = "cpu";  // "cpu" or "cuda"
  int deviceId = 0;            // device "cuda" only
  size_t maxSequences = 64;    // live sequences at once (the scheduler's maxBatch): the CUDA sampler's slots
};
// The KV budget and the prefix cache are the engine's (engine.h, kv_budget.h); the cache's entries live in the model's
// KV memory (kvMemory()).

class CausalLm final : public LanguageModel {
 public:
  static std::shared_ptr<CausalLm> Load(const LoadOptions& options, const ModelConfig& config);

  size_t vocabSize() const noexcept override { return static_cast<size_t>(spec_.vocabSize); }
  size_t contextLength() const noexcept override { return context_; }
  std::unique_ptr<SequenceState> NewSequence(size_t capacity) override;
  void Forward(SequenceState& sequence, std::span<const uint32_t> tokens, std::span<float> lastLogits) override;
  void ForwardBatch(std::span<SequenceState* const> sequences, std::span<const uint32_t> tokens,
                    std::span<float> logits) override;
  size_t maxBatchRows() const noexcept override { return batchable() ? static_cast<size_t>(-1) : 1; }
  // DynamicQuantizeLinear graphs: a prompt's tokens share one activation scale per tensor, so it goes in whole.
  bool prefillWhole() const noexcept override { return rows_couple_; }
  size_t kvBytesPerToken() const noexcept override { return spec_.KvBytesPerToken(); }
  KvMemory* kvMemory() noexcept override { return &kvMemoryRef(); }
  KvCache* kvCacheOf(SequenceState& sequence) noexcept override;
  std::string prefixCacheRefusal() const override;
  void PrefaultKvMemory() override;
  ModelInfo Describe() const override;
  ForwardTimings* timings() noexcept override { return &timings_; }
  bool samplesOnDevice() const noexcept override { return cuda_ != nullptr; }
  void StartSampling(SequenceState& sequence, const SamplingOptions& options,
                     std::span<const uint32_t> prompt) override;
  void SampleLast(std::span<SequenceState* const> sequences, std::span<const double> uniforms, std::span<uint32_t> ids,
                  std::span<float> logprobs) override;
  void LastLogitsToHost(std::span<float> out, bool release) override;
  const char* device() const noexcept { return cuda_ ? "cuda" : "cpu"; }
  std::string deviceName() const { return cuda_ ? cuda_->name() : std::string("cpu"); }
  bool batchable() const noexcept { return not_batchable_reason_.empty(); }
  // Why the model runs one sequence at a time ("" when batchable()).
  const std::string& notBatchableReason() const noexcept { return not_batchable_reason_; }
  size_t batchBytes() const noexcept { return batch_->bytes(); }  // the running batch's KV buffers, allocated
  KvArenaStats kvArenaStats() const override { return arena_ ? arena_->stats() : KvArenaStats{}; }

  const GraphSpec& spec() const noexcept { return spec_; }
  const std::string& file() const noexcept { return file_; }
  uint64_t fileBytes() const noexcept { return file_bytes_; }

 private:
  friend class OrtSequenceState;
  CausalLm(std::unique_ptr<CudaDevice> cuda, std::unique_ptr<Ort::Session> session, GraphSpec spec, size_t context,
           std::string file, uint64_t bytes, BatchKv::Padding padding, size_t kvBudget);
  void Relayout(std::span<SequenceState* const> sequences);
  void ReleaseRow(size_t row) noexcept;  // a sequence in the batch was destroyed: its row is dead
  KvMemory& kvMemoryRef() noexcept {
    if (cuda_) return *cuda_;
    return arena_ ? static_cast<KvMemory&>(*arena_) : HostKvMemory();
  }
  // Binds the logits output, before any other output: a host tensor over `host` (`bytes`, [rows, n, vocab]), or on
  // the GPU left to ORT to allocate (the returned value is then empty). Must outlive the Run.
  Ort::Value BindLogits(Ort::IoBinding& binding, uint8_t* host, size_t bytes, const int64_t* shape);
  // Host: float32 or float16 logits from `src` into float32 `dst`.
  void CopyLogits(const uint8_t* src, std::span<float> dst) const;
  // Device: after a Run whose logits output ORT allocated on the GPU, keeps it (and which sequences its rows are)
  // for SampleLast.
  void KeepLogits(Ort::IoBinding& binding, std::span<SequenceState* const> rows);
  // Declared first, destroyed last: everything below may hold GPU memory or use its stream.
  std::unique_ptr<CudaDevice> cuda_;
  // Host: where every KV buffer below comes from (kv_arena.h), kvCacheBytes long; declared before them, so it
  // outlives them. Null on the GPU (CudaDevice is the KV memory there).
  std::unique_ptr<KvArena> arena_;
  std::unique_ptr<Ort::Session> session_;
  GraphSpec spec_;
  // The running batch (inference thread only): rows_[r] owns row r of batch_ (null: dead, dropped at the next
  // relayout); scratch inputs and logits reused by every batched step.
  std::unique_ptr<BatchKv> batch_;
  std::vector<OrtSequenceState*> rows_;
  std::vector<int64_t> batch_ids_, batch_positions_, batch_mask_;
  std::vector<uint8_t> batch_logits_;
  Ort::RunOptions batch_run_options_;
  std::chrono::steady_clock::time_point batch_last_end_{};
  uint64_t batch_last_end_cpu_ = 0;   // the inference thread's CPU time at batch_last_end_
  std::string not_batchable_reason_;  // "": the graph batches
  bool rows_couple_ = false;          // DynamicQuantizeLinear: one scale per tensor couples rows (no prefix cache)
  size_t context_;
  std::string file_;
  uint64_t file_bytes_;
  Ort::MemoryInfo memory_;                 // host: input ids, mask, positions (and everything on the CPU)
  Ort::MemoryInfo kv_info_;                // where KV and logits live: host, or "Cuda" device memory
  Ort::Value last_logits_{nullptr};        // device: the last Forward's logits on the GPU
  std::vector<SequenceState*> last_rows_;  // device: the sequences of that Forward, one logits row each
  ForwardTimings timings_;
};

}  // namespace tokmeter::engine
