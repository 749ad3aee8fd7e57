// LanguageModel — the one operation the generation loop needs from a model: run some tokens of one sequence
// through it, extending that sequence's KV cache, and return the logits of the last position.
//
// Why an interface: the loop (generator.h) and the scheduler (scheduler.h) are tested in plain C++ against a
// scripted double; ForwardBatch is the batched seam (one model call for one new token of each of several sequences).
// Lifetime: a LanguageModel is shared (std::shared_ptr) by the loaded model and every live sequence; a
// SequenceState belongs to one sequence and frees its KV cache when destroyed.
// Thread affinity: Forward runs on the model's inference thread; SequenceState::Terminate may be called from any
// thread (it asks a Forward in progress to stop early; that Forward then throws ERR_ABORTED).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "engine/kv_arena.h"
#include "engine/logits/processor.h"
#include "util/error.h"

namespace tokmeter::engine {

class KvCache;
class KvMemory;

// What a model tells about itself beyond the loop's needs (Engine::info()); a double leaves the defaults.
struct ModelInfo {
  std::string file;  // the .onnx file loaded
  uint64_t fileBytes = 0;
  size_t layers = 0, kvHeads = 0, headDim = 0;
  std::string kvDtype, logitsDtype;
  bool positionIds = false, attentionMask = false;
  std::string notBatchableReason;  // "" when the model batches
  std::string device = "cpu", deviceName = "cpu";
};

// Time spent in ORT's Run and in the whole Forward, for the benchmark's overhead figure; the decode* counters
// cover only decode steps (one-token Forwards after a sequence's first), so a prefill never blurs the per-step split.
struct PhaseCounter {
  std::atomic<uint64_t> nanos{0};
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> pageFaults{0};
};

struct ForwardTimings {
  std::atomic<uint64_t> runNanos{0};
  std::atomic<uint64_t> forwardNanos{0};
  std::atomic<uint64_t> forwards{0};
  std::atomic<uint64_t> decodeRunNanos{0};
  std::atomic<uint64_t> decodeForwardNanos{0};
  std::atomic<uint64_t> decodeForwards{0};
  std::atomic<uint64_t> decodeRows{0};  // sequences stepped by the decode Forwards (a batched step counts its rows)
  // Between one Forward of a sequence returning and its next decode Forward starting: sampling, detokenizing,
  // stop checks, handing the step to the stream (and any backpressure wait).
  std::atomic<uint64_t> decodeGapNanos{0};
  // The inference thread's own CPU time (CLOCK_THREAD_CPUTIME_ID) in those gaps and in the decode Forwards outside
  // Run (binding, logits): the engine's work per step, which a loaded machine does not stretch the way it stretches
  // wall time (waiting for a core, or for the JS thread woken by the step's hand-off, counts in the wall time only).
  std::atomic<uint64_t> decodeGapCpuNanos{0};
  std::atomic<uint64_t> decodeOutsideRunCpuNanos{0};
  // Where a request's time to first token goes besides the graph (what a prefix-cache hit pays): each phase's wall
  // time, count and the minor page faults the inference thread took during it (first touches of fresh memory).
  PhaseCounter sequenceAlloc;  // NewSequence: the sequence's KV buffers
  PhaseCounter prefixLoad;     // PrefixCache::Reuse: the match and the copy of the cached KV in
  PhaseCounter prefill;        // Forwards of more than one token, or a sequence's first (the prompt)
  PhaseCounter prefixStore;    // PrefixCache::Keep: the copy of the prompt's KV into a cache entry
  PhaseCounter relayout;       // the running batch's composition changed (copies into or out of BatchKv)
};

class SequenceState {
 public:
  virtual ~SequenceState() = default;
  virtual size_t length() const noexcept = 0;    // tokens already in the cache
  virtual size_t capacity() const noexcept = 0;  // tokens the cache can hold
  virtual void Terminate() noexcept = 0;
};

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual size_t vocabSize() const noexcept = 0;
  virtual size_t contextLength() const noexcept = 0;
  // A fresh, empty sequence whose cache holds up to `capacity` tokens (<= contextLength()).
  virtual std::unique_ptr<SequenceState> NewSequence(size_t capacity) = 0;
  // Feeds `tokens` after what the sequence already holds; writes the last position's logits (float32, vocabSize()
  // entries) to `lastLogits`. Throws ERR_CONTEXT_LENGTH if the tokens do not fit the sequence's capacity.
  virtual void Forward(SequenceState& sequence, std::span<const uint32_t> tokens, std::span<float> lastLogits) = 0;

  // Continuous batching (scheduler.h). ForwardBatch feeds one token to each of `sequences` (all prefilled, distinct)
  // and writes their logits as [sequences.size(), vocabSize()] to `logits`. Each row must equal what Forward of that
  // token alone would give (the batch is exact, not approximate). The default runs Forward per sequence, so a model
  // that cannot batch (and the test double) works unchanged. Sequences may join or leave between calls; a sequence
  // left out of a call keeps its KV. A sequence's Terminate() does not interrupt a ForwardBatch in progress: the
  // scheduler drops aborted sequences between calls, so one abort never disturbs the others.
  virtual void ForwardBatch(std::span<SequenceState* const> sequences, std::span<const uint32_t> tokens,
                            std::span<float> logits) {
    const size_t vocab = vocabSize();
    for (size_t i = 0; i < sequences.size(); ++i)
      Forward(*sequences[i], tokens.subspan(i, 1), logits.subspan(i * vocab, vocab));
  }
  // Most sequences one ForwardBatch may take (1: the model cannot batch; the scheduler then runs one at a time).
  virtual size_t maxBatchRows() const noexcept { return static_cast<size_t>(-1); }
  // Bytes of KV one token of one sequence occupies (all layers, key and value); 0 when unknown (no KV budget).
  // True when a prompt must go through the model in one Forward: a graph that quantizes activations with one scale
  // per tensor (DynamicQuantizeLinear) gives a prompt's tokens other logits when it is fed in pieces than when it is
  // fed whole, as transformers.js and onnxruntime feed it. The scheduler then never splits a prompt into
  // prefillChunk pieces: the prompt waits for the step's budget, then goes in whole.
  virtual bool prefillWhole() const noexcept { return false; }
  virtual size_t kvBytesPerToken() const noexcept { return 0; }
  // What the engine's prompt-prefix cache (prefix_cache.h, owned by the engine) needs of a model: the memory its
  // entries live in (where the sequences' KV lives, so copies stay on one device), each sequence's own KV (null while
  // the sequence is not in its own cache, e.g. a row of a running batch), and whether reused KV gives the same tokens
  // ("" when it does, else why not). A model that keeps the defaults gets no prefix cache.
  virtual KvMemory* kvMemory() noexcept { return nullptr; }
  virtual KvCache* kvCacheOf(SequenceState& /*sequence*/) noexcept { return nullptr; }
  virtual std::string prefixCacheRefusal() const { return ""; }
  // Makes the whole KV memory resident now (a prefix cache's hits should never pay first touches); optional.
  virtual void PrefaultKvMemory() {}
  virtual ModelInfo Describe() const { return {}; }
  virtual ForwardTimings* timings() noexcept { return nullptr; }  // null: not measured
  // The host KV arena's counters (kv_arena.h); all zero where KV does not come from an arena (the GPU, test models).
  virtual KvArenaStats kvArenaStats() const { return {}; }

  // Device sampling (device 'cuda'): the logits stay on the device and are processed and sampled there (native/cuda),
  // so only ids reach the host. When samplesOnDevice():
  // - StartSampling(sequence, options, prompt) is called once, before the sequence's first Forward: it gives the
  //   device sampler the options and the prompt (for the repetition penalty);
  // - Forward/ForwardBatch leave their `logits` argument untouched (an empty span, or a host row LastLogitsToHost
  // fills);
  // - SampleLast(sequences, uniforms, ids, logprobs) picks each sequence's next token from the logits of the last
  //   Forward or ForwardBatch, which must have run exactly these sequences in this order. uniforms[i] is the draw of
  //   a sampling row (the sequence's CPU Sampler::NextUniform(), so a seed gives the CPU's tokens), ignored for
  //   greedy rows; logprobs[i] receives the raw log-probability of ids[i]. Penalty state follows the sampled ids.
  // - LastLogitsToHost(out, release) copies the last position of each row of that last Forward or ForwardBatch to
  //   the host (float32, rows x vocab) for the rows that sample on the host (Generator::samplesOnDevice), before
  //   SampleLast; `release` (no SampleLast follows) lets the model drop the kept logits.
  virtual bool samplesOnDevice() const noexcept { return false; }
  virtual void LastLogitsToHost(std::span<float> /*out*/, bool /*release*/) {
    throw Error(codes::kInternal, "LastLogitsToHost on a model that samples on the host");
  }
  virtual void StartSampling(SequenceState& /*sequence*/, const SamplingOptions& /*options*/,
                             std::span<const uint32_t> /*prompt*/) {}
  virtual void SampleLast(std::span<SequenceState* const> /*sequences*/, std::span<const double> /*uniforms*/,
                          std::span<uint32_t> /*ids*/, std::span<float> /*logprobs*/) {
    throw Error(codes::kInternal, "SampleLast on a model that samples on the host");
  }
};

}  // namespace tokmeter::engine
