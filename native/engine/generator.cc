#include "engine/generator.h"

#include <algorithm>
#include <limits>

#include "engine/kv_budget.h"
#include "util/error.h"

namespace tokmeter::engine {

const char* FinishReasonName(FinishReason reason) noexcept {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    default: return "none";
  }
}

Generator::Generator(std::shared_ptr<LanguageModel> model, std::vector<uint32_t> prompt, GenerationParams params,
                     std::unique_ptr<Detokenizer> detokenizer)
    : model_(std::move(model)),
      params_(std::move(params)),
      detokenizer_(std::move(detokenizer)),
      processors_(MakeProcessorChain(params_.sampling)),
      sampler_(params_.sampling.seed),
      stops_(params_.stopStrings),
      tokens_(std::move(prompt)),
      prompt_length_(tokens_.size()) {
  const size_t context = model_->contextLength();
  const size_t vocab = model_->vocabSize();
  if (tokens_.empty()) throw Error(codes::kInvalidArgument, "expected a prompt of at least one token, got none");
  if (prompt_length_ >= context) {
    throw Error("ERR_CONTEXT_LENGTH", "the prompt has " + std::to_string(prompt_length_) +
                                          " tokens but the model's context length is " + std::to_string(context) +
                                          " (the prompt must leave room for at least one completion token)");
  }
  for (uint32_t id : tokens_) {
    if (id >= vocab) {
      throw Error(codes::kInvalidArgument, "prompt token id " + std::to_string(id) +
                                               " is outside the model's vocabulary of " + std::to_string(vocab));
    }
  }
  if (params_.sampling.masked) ValidateTokenMask(*params_.sampling.masked, vocab);
  ValidateLogitBias(params_.sampling.logitBias, vocab);
  if (params_.topLogprobs > kMaxTopLogprobs) {
    throw Error(codes::kInvalidArgument, "expected an integer in [0, " + std::to_string(kMaxTopLogprobs) +
                                             "] for topLogprobs, got " + std::to_string(params_.topLogprobs));
  }
  if (params_.grammar) {
    if (params_.grammar->vocabulary().size() > vocab) {
      throw Error(codes::kInvalidArgument, "the constraint was compiled for a larger vocabulary than the model's");
    }
    matcher_ = std::make_unique<grammar::Matcher>(params_.grammar);
    grammar_mask_.resize(params_.grammar->maskWords());
  }
  if (!stops_.empty() && !detokenizer_) {
    throw Error(codes::kInvalidArgument, "stop strings need a tokenizer to turn tokens into text");
  }
  capacity_ = KvCapacity(context, prompt_length_, params_.maxNewTokens);
  sequence_ = model_->NewSequence(capacity_);
  device_model_ = model_->samplesOnDevice();
  // Rows the device sampler cannot serve (a logit bias, alternatives, a constraint's mask) copy their logits to the
  // host and sample there; the rest of the batch still samples on the device.
  device_ = device_model_ && params_.sampling.logitBias.empty() && params_.topLogprobs == 0 && !params_.grammar;
  // Every sequence of a device model has a sampler slot: SampleLast runs over every row of a batch.
  if (device_model_) model_->StartSampling(*sequence_, params_.sampling, tokens_);
  if (!device_) logits_.resize(vocab);
  tokens_.reserve(capacity_ + 1);
}

void Generator::ReleaseSequence() noexcept {
  std::unique_ptr<SequenceState> sequence;
  {
    std::lock_guard<std::mutex> lock(sequence_mutex_);
    sequence.swap(sequence_);
  }
  // Destroyed outside the lock: an Abort() racing with it sees no sequence.
}

size_t Generator::kvCapacity() const noexcept { return sequence_ ? sequence_->capacity() : 0; }

void Generator::Abort() noexcept {
  abort_.store(true);
  std::lock_guard<std::mutex> lock(sequence_mutex_);  // the inference thread may be freeing the sequence
  if (sequence_) sequence_->Terminate();
}

void Generator::FinishAborted() noexcept {
  if (!done()) finish_ = FinishReason::kAbort;
  ReleaseSequence();
}

void Generator::Finish(FinishReason reason) {
  finish_ = reason;
  if (detokenizer_) {
    std::string tail = detokenizer_->Flush();
    step_.text += stops_.Push(tail);
    step_.text += stops_.Finish();
  }
  ReleaseSequence();  // frees the KV cache as soon as the sequence ends
}

const StepResult* Generator::Prefill(size_t maxTokens) {
  if (done()) throw Error(codes::kInternal, "Prefill() after the generation finished");
  if (prefilled_) throw Error(codes::kInternal, "Prefill() after the prefill finished");
  step_.text.clear();
  step_.logprob = 0;
  step_.top.clear();
  if (abort_.load()) throw Error("ERR_ABORTED", "generation aborted");
  // On the first call, a prefix of the prompt may come from the prefix cache.
  const std::span<const uint32_t> prompt(tokens_.data(), prompt_length_);
  if (!started_) {
    started_ = true;
    cached_ = prefix_cache_ ? prefix_cache_->Reuse(*model_, *sequence_, prompt) : 0;
    fed_ = cached_;
  }
  size_t n = prompt_length_ - fed_;
  if (maxTokens > 0) n = std::min(n, maxTokens);
  model_->Forward(*sequence_, std::span<const uint32_t>(tokens_.data() + fed_, n), logits_);  // empty: device
  fed_ += n;
  if (fed_ < prompt_length_) return nullptr;
  if (device_model_ && !device_) model_->LastLogitsToHost(logits_, true);
  prefilled_ = true;
  usage_.promptTokens = prompt_length_;
  usage_.cachedTokens = cached_;
  usage_.totalTokens = usage_.promptTokens + usage_.completionTokens;
  if (prefix_cache_) prefix_cache_->Keep(*model_, *sequence_, prompt);
  return &SampleAndStop();
}

const StepResult& Generator::AcceptToken(uint32_t token, float logprob) {
  if (done() || !prefilled_) throw Error(codes::kInternal, "AcceptToken() outside the decode phase");
  if (!device_) throw Error(codes::kInternal, "AcceptToken() on a generator that samples on the host");
  step_.text.clear();
  step_.logprob = 0;
  step_.top.clear();
  fed_ = tokens_.size();
  return Took(token, params_.logprobs ? logprob : 0.0f);
}

const StepResult& Generator::Accept(std::span<const float> logits) {
  if (done() || !prefilled_) throw Error(codes::kInternal, "Accept() outside the decode phase");
  if (device_) throw Error(codes::kInternal, "Accept() on a generator that samples on its device");
  if (logits.size() != logits_.size()) throw Error(codes::kInternal, "Accept(): logits of the wrong size");
  step_.text.clear();
  step_.logprob = 0;
  step_.top.clear();
  fed_ = tokens_.size();
  // Nothing rewrites the logits (no mask, constraint or processor) and no log-probabilities are asked: the sampler
  // reads the batch's row where it is. Otherwise the row is copied first, since the chain works in place.
  if (!params_.sampling.masked && !matcher_ && processors_.empty() && !params_.logprobs && params_.topLogprobs == 0)
    return Took(sampler_.Sample(logits, params_.sampling.greedy()), 0.0f);
  std::copy(logits.begin(), logits.end(), logits_.begin());
  return SampleAndStop();
}

const StepResult& Generator::Step() {
  if (done()) throw Error(codes::kInternal, "Step() after the generation finished");
  if (!prefilled_) {
    const StepResult* first = Prefill(0);
    if (first == nullptr) throw Error(codes::kInternal, "the prefill did not complete");
    return *first;
  }
  step_.text.clear();
  step_.logprob = 0;
  step_.top.clear();
  if (abort_.load()) throw Error("ERR_ABORTED", "generation aborted");
  // Feed the token sampled last.
  const std::span<const uint32_t> pending(tokens_.data() + fed_, tokens_.size() - fed_);
  model_->Forward(*sequence_, pending, logits_);
  if (device_model_ && !device_) model_->LastLogitsToHost(logits_, true);
  fed_ = tokens_.size();
  return SampleAndStop();
}

const StepResult& Generator::SampleAndStop() {
  // 2. Process and sample.
  if (device_) {
    SequenceState* sequence = sequence_.get();
    const double uniform = DrawUniform();
    uint32_t token = 0;
    float logprob = 0;
    model_->SampleLast(std::span<SequenceState* const>(&sequence, 1), std::span<const double>(&uniform, 1),
                       std::span<uint32_t>(&token, 1), std::span<float>(&logprob, 1));
    return Took(token, params_.logprobs ? logprob : 0.0f);
  }
  // Host sampling is three stages, in this order: (1) the token mask — ids that must never be sampled get -inf, so no
  // processor, draw or log-probability sees them (a constraint that forbids tokens belongs here); (2) the logits
  // processors (processor.h's chain); (3) the sampler.
  if (params_.sampling.masked) ApplyTokenMask(logits_, *params_.sampling.masked);
  const bool raw = params_.logprobs || params_.topLogprobs > 0;
  if (raw) raw_.assign(logits_.begin(), logits_.end());
  if (matcher_) ApplyGrammar();
  const LogitsContext context{std::span<const uint32_t>(tokens_), prompt_length_};
  for (auto& p : processors_) p->Apply(logits_, context);
  const uint32_t token = sampler_.Sample(logits_, params_.sampling.greedy());
  if (!raw) return Took(token, 0.0f);
  // The raw distribution (after the mask, before the processors) for the sampled token and the alternatives alike.
  const LogSoftmaxNorm norm = Sampler::Norm(raw_);
  Sampler::TopLogProbs(raw_, norm, params_.topLogprobs, step_.top);
  return Took(token, params_.logprobs ? norm.At(raw_[token]) : 0.0f);
}

void Generator::ApplyGrammar() {
  matcher_->FillMask(grammar_mask_);
  // The request's EOS ids (they may differ from the vocabulary's): allowed exactly when the document is complete,
  // or when nothing else is (a state at the nesting bound).
  bool any = false;
  for (uint64_t w : grammar_mask_) any = any || w != 0;
  for (uint32_t e : params_.eosTokenIds) {
    if (e >= grammar_mask_.size() * 64) continue;
    if (matcher_->complete() || !any) grammar_mask_[e >> 6] |= 1ull << (e & 63);
  }
  // Word by word: a constrained mask is mostly all-zero words (64 logits masked at once) and a few mixed ones.
  const size_t n = logits_.size();
  const float kMasked = -std::numeric_limits<float>::infinity();
  for (size_t base = 0; base < n; base += 64) {
    const size_t end = std::min(n, base + 64);
    const uint64_t bits = (base >> 6) < grammar_mask_.size() ? grammar_mask_[base >> 6] : 0;
    if (bits == 0) {
      std::fill(logits_.begin() + static_cast<std::ptrdiff_t>(base), logits_.begin() + static_cast<std::ptrdiff_t>(end),
                kMasked);
    } else if (bits != ~0ull) {
      for (size_t id = base; id < end; ++id) {
        if (!(bits >> (id - base) & 1)) logits_[id] = kMasked;
      }
    }
  }
}

const StepResult& Generator::Took(uint32_t token, float logprob) {
  if (matcher_ &&
      std::find(params_.eosTokenIds.begin(), params_.eosTokenIds.end(), token) == params_.eosTokenIds.end() &&
      !matcher_->Accept(token)) {
    throw Error(codes::kInternal, "the sampled token " + std::to_string(token) + " is not allowed by the constraint");
  }
  step_.token = token;
  step_.logprob = logprob;
  tokens_.push_back(token);
  usage_.completionTokens += 1;
  usage_.totalTokens = usage_.promptTokens + usage_.completionTokens;

  // 3. Stop rules.
  if (std::find(params_.eosTokenIds.begin(), params_.eosTokenIds.end(), token) != params_.eosTokenIds.end()) {
    Finish(FinishReason::kStop);
    return step_;
  }
  if (detokenizer_) {
    step_.text = stops_.Push(detokenizer_->Step(token));
    if (stops_.matched()) {
      Finish(FinishReason::kStop);
      return step_;
    }
  }
  if (params_.maxNewTokens > 0 && usage_.completionTokens >= params_.maxNewTokens) {
    Finish(FinishReason::kLength);
  } else if (tokens_.size() >= model_->contextLength()) {
    Finish(FinishReason::kLength);
  }
  return step_;
}

}  // namespace tokmeter::engine
