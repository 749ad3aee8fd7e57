// Generator — the generation loop of one sequence, as a step API:
//
//   Generator g(model, prompt, params, detokenizer);   // validates; nothing runs yet
//   while (!g.done()) { const StepResult& r = g.Step(); /* r.token, r.text, r.logprob */ }
//   g.finishReason(); g.usage();
//
// Step() feeds the tokens not yet in the KV cache (the whole prompt on the first step — prefill — then the token
// sampled last), masks the ids that are never sampled (SamplingOptions::masked), runs the logits processors and the
// sampler, and applies the stop rules in this order:
//   1. the sampled token is an EOS id → finish 'stop' (the EOS token is counted, not fed back, not turned into text);
//   2. the text completes a stop string → finish 'stop' (the text ends before the stop string);
//   3. maxNewTokens sampled → finish 'length';
//   4. the next step would not fit the context window (prompt + sampled == context length) → finish 'length'.
// Usage rule (what a Meter bills): promptTokens = tokens of the prompt fed to the model (after chat template and
// special tokens; exactly `prompt.size()`); completionTokens = tokens sampled, EOS included, i.e. one per Step();
// the token that completes a stop string counts too; cachedTokens = the prompt tokens whose KV came from the
// engine's prefix cache (UsePrefixCache), a part of promptTokens, set with it when the prefill finishes. An
// abort between steps leaves the counts of what was done; an abort during the prefill reports promptTokens = 0 when the
// prefill did not finish (nothing was processed to completion) — see Abort().
// Batched use (scheduler.h): the same loop split at the model call. Prefill(maxTokens) feeds the prompt in chunks
// (solo Forward on this sequence) and, once the whole prompt is in, samples the first token; after that the
// scheduler runs one LanguageModel::ForwardBatch over many generators' sequence() with their nextInput() and hands
// each its row of logits with Accept(). Step() is exactly Prefill(all) on the first call and Forward + Accept after.
// Thread affinity: one thread at a time (the model's inference thread); Abort() may be called from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "engine/detokenizer.h"
#include "engine/language_model.h"
#include "engine/logits/processor.h"
#include "engine/prefix_cache.h"
#include "engine/sampler.h"
#include "engine/stop_strings.h"
#include "grammar/matcher.h"

namespace tokmeter::engine {

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* FinishReasonName(FinishReason reason) noexcept;

struct GenerationParams {
  SamplingOptions sampling;
  size_t maxNewTokens = 0;            // 0: until the context window is full
  std::vector<uint32_t> eosTokenIds;  // from generation_config unless the caller overrides
  std::vector<std::string> stopStrings;
  bool logprobs = false;
  size_t topLogprobs = 0;  // 0..kMaxTopLogprobs: alternatives listed per step (StepResult::top); 0 computes nothing
  // A compiled constraint (native/grammar): the generator keeps its own Matcher, masks every id the grammar does not
  // allow next (after SamplingOptions::masked, before the logits processors) and advances it with each sampled
  // token; the EOS ids are allowed exactly when the document is complete. Host sampling only (a model that samples
  // on its device refuses it: ERR_INVALID_ARGUMENT).
  std::shared_ptr<const grammar::Grammar> grammar;
};

inline constexpr size_t kMaxTopLogprobs = 20;

// What a generation processed, as it is billed: reported unchanged to JS (the done event's `usage`), on success,
// abort and failure alike. totalTokens = promptTokens + completionTokens, kept by the generator with the counts.
struct Usage {
  size_t promptTokens = 0;
  size_t completionTokens = 0;
  size_t totalTokens = 0;
  size_t cachedTokens = 0;  // of promptTokens, served from the prefix cache (not recomputed)
};

struct StepResult {
  uint32_t token = 0;
  float logprob = 0;  // log-probability under the model's raw distribution (before processors); if params.logprobs
  std::string text;   // text released by this step (UTF-8 complete; held back across stop-string candidates)
  // The params.topLogprobs most likely ids under the same raw distribution as `logprob`, most likely first (ties to
  // the lower id; fewer when fewer ids can be sampled at all). A greedy step's token is top[0] unless a logit bias or
  // penalty moved the argmax.
  std::vector<TokenLogprob> top;
};

class Generator {
 public:
  // Throws ERR_CONTEXT_LENGTH (prompt longer than the context, naming both numbers), ERR_INVALID_ARGUMENT (empty
  // prompt, prompt or logit-bias token id outside the vocabulary, bad sampling options, topLogprobs above
  // kMaxTopLogprobs, stop strings without a detokenizer).
  Generator(std::shared_ptr<LanguageModel> model, std::vector<uint32_t> prompt, GenerationParams params,
            std::unique_ptr<Detokenizer> detokenizer);

  // Before the first Step/Prefill: the prefill starts from the longest cached prefix of the prompt in `cache`, and
  // the prompt's KV is offered to it once prefilled. Null (the default): no prefix cache.
  void UsePrefixCache(std::shared_ptr<PrefixCache> cache) noexcept { prefix_cache_ = std::move(cache); }

  bool done() const noexcept { return finish_ != FinishReason::kNone; }
  // Throws ERR_ABORTED after Abort() (then call FinishAborted()); the returned reference lives until the next Step.
  const StepResult& Step();
  // Thread-safe: stops the loop at the next step (or interrupts a Run in progress); finishReason becomes 'abort'.
  void Abort() noexcept;
  // Marks the generation as aborted from the loop's own thread (after Step threw ERR_ABORTED).
  void FinishAborted() noexcept;

  // Batched use. Prefill: feeds up to `maxTokens` more prompt tokens (0: all that remain); when the prompt is
  // complete, samples the first token and returns it (else nullptr). Throws like Step().
  const StepResult* Prefill(size_t maxTokens);
  bool prefilled() const noexcept { return prefilled_; }
  // Prompt tokens run through the model so far (not those served by the prefix cache): a scheduler's prefill budget.
  size_t promptComputed() const noexcept { return fed_ - cached_; }
  bool abortRequested() const noexcept { return abort_.load(); }
  SequenceState& sequence() noexcept { return *sequence_; }
  uint32_t nextInput() const noexcept { return tokens_.back(); }  // the token the next decode step feeds
  // After a ForwardBatch fed nextInput(): processes this sequence's logits (vocabSize() floats), samples, applies
  // the stop rules. The returned reference lives until the next Prefill/Accept/Step.
  const StepResult& Accept(std::span<const float> logits);
  // KV tokens the sequence may hold (kv_budget.h KvCapacity, fixed at construction).
  size_t capacity() const noexcept { return capacity_; }
  // Device sampling (LanguageModel::samplesOnDevice()): after a ForwardBatch the scheduler draws each row's uniform
  // here (none for greedy rows, as the CPU sampler), samples all rows with LanguageModel::SampleLast, and hands each
  // generator its id with AcceptToken, which applies the stop rules like Accept.
  // A generator that needs the logits on the host (a logit bias, top-N alternatives: the device sampler has
  // neither) samples on the host even on such a model (samplesOnDevice() false): the scheduler copies its row of
  // logits to the host (LanguageModel::LastLogitsToHost) and hands it over with Accept; its row of SampleLast is
  // ignored, so it draws no uniform for it.
  bool samplesOnDevice() const noexcept { return device_; }
  double DrawUniform() { return params_.sampling.greedy() || !device_ ? 0.0 : sampler_.NextUniform(); }
  const StepResult& AcceptToken(uint32_t token, float logprob);

  FinishReason finishReason() const noexcept { return finish_; }
  Usage usage() const noexcept { return usage_; }
  const std::vector<uint32_t>& tokens() const noexcept { return tokens_; }  // prompt + sampled
  size_t kvCapacity() const noexcept;

 private:
  void Finish(FinishReason reason);
  void ReleaseSequence() noexcept;
  const StepResult& SampleAndStop();  // samples from the last Forward (logits_, or on the device), then Took()
  const StepResult& Took(uint32_t token, float logprob);  // records the token, applies the stop rules
  std::shared_ptr<LanguageModel> model_;
  std::shared_ptr<PrefixCache> prefix_cache_;  // null: none
  GenerationParams params_;
  std::unique_ptr<Detokenizer> detokenizer_;
  std::unique_ptr<SequenceState> sequence_;
  std::vector<std::unique_ptr<LogitsProcessor>> processors_;
  Sampler sampler_;
  StopStringMatcher stops_;
  std::vector<uint32_t> tokens_;
  size_t prompt_length_;
  size_t fed_ = 0;  // tokens_[0, fed_) are in the KV cache
  size_t capacity_ = 0;
  size_t cached_ = 0;
  bool started_ = false;  // the prefix cache was asked (first Prefill call)
  bool prefilled_ = false;
  bool device_ = false;        // this generator samples on the model's device (logits_ unused)
  bool device_model_ = false;  // the model samples on its device (its Forward leaves the logits there)
  std::vector<float> logits_;  // the last position's logits (host sampling only)
  std::vector<float> raw_;
  std::unique_ptr<grammar::Matcher> matcher_;
  std::vector<uint64_t> grammar_mask_;
  void ApplyGrammar();
  StepResult step_;
  Usage usage_;
  FinishReason finish_ = FinishReason::kNone;
  std::atomic<bool> abort_{false};
  std::mutex sequence_mutex_;  // guards sequence_ between Abort() (any thread) and its release
};

}  // namespace tokmeter::engine
