#include "engine/generator.h"

#include <algorithm>

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
  if (!stops_.empty() && !detokenizer_) {
    throw Error(codes::kInvalidArgument, "stop strings need a tokenizer to turn tokens into text");
  }
  // The cache holds what can ever be fed: the prompt plus every sampled token but the last (which is never fed).
  size_t capacity = context;
  if (params_.maxNewTokens > 0) capacity = std::min(context, prompt_length_ + params_.maxNewTokens);
  sequence_ = model_->NewSequence(std::max<size_t>(capacity, 1));
  logits_.resize(vocab);
  tokens_.reserve(capacity + 1);
}

size_t Generator::kvCapacity() const noexcept { return sequence_ ? sequence_->capacity() : 0; }

void Generator::Abort() noexcept {
  abort_.store(true);
  if (sequence_) sequence_->Terminate();
}

void Generator::FinishAborted() noexcept {
  if (!done()) finish_ = FinishReason::kAbort;
  sequence_.reset();
}

void Generator::Finish(FinishReason reason) {
  finish_ = reason;
  if (detokenizer_) {
    std::string tail = detokenizer_->Flush();
    step_.text += stops_.Push(tail);
    step_.text += stops_.Finish();
  }
  sequence_.reset();  // frees the KV cache as soon as the sequence ends
}

const StepResult& Generator::Step() {
  if (done()) throw Error(codes::kInternal, "Step() after the generation finished");
  step_.text.clear();
  step_.logprob = 0;
  if (abort_.load()) throw Error("ERR_ABORTED", "generation aborted");
  // 1. Feed what the cache lacks (the prompt on the first step, then the last sampled token).
  //    On the first step, a prefix of the prompt may come from the model's prefix cache.
  const std::span<const uint32_t> prompt(tokens_.data(), prompt_length_);
  size_t cached = 0;
  if (!prefilled_) {
    cached = model_->ReusePrefix(*sequence_, prompt);
    fed_ = cached;
  }
  const std::span<const uint32_t> pending(tokens_.data() + fed_, tokens_.size() - fed_);
  model_->Forward(*sequence_, pending, logits_);
  if (!prefilled_) {
    prefilled_ = true;
    usage_.promptTokens = prompt_length_;
    usage_.cachedTokens = cached;
    model_->KeepPrefix(*sequence_, prompt);
  }
  fed_ = tokens_.size();

  // 2. Process and sample.
  if (params_.logprobs) raw_.assign(logits_.begin(), logits_.end());
  const LogitsContext context{std::span<const uint32_t>(tokens_), prompt_length_};
  for (auto& p : processors_) p->Apply(logits_, context);
  const uint32_t token = sampler_.Sample(logits_, params_.sampling.greedy());
  step_.token = token;
  if (params_.logprobs) step_.logprob = Sampler::LogProb(raw_, token);
  tokens_.push_back(token);
  usage_.completionTokens += 1;

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
