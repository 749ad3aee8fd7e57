// Test doubles for the engine's plain C++ tests: a scripted LanguageModel (the model every engine, generator and
// scheduler test runs), a sink that records what a stream delivers, and a bounded wait.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/language_model.h"
#include "engine/scheduler.h"
#include "util/error.h"

namespace tokmeter::engine::testing {

using namespace std::chrono_literals;

// Next token = script[position] when scripted, else (last + 1) % vocab. Records every Forward's tokens.
class ScriptedModel final : public LanguageModel {
 public:
  ScriptedModel(size_t vocab, size_t context) : vocab_(vocab), context_(context) {}
  struct Seq final : SequenceState {
    size_t len = 0, cap = 0;
    std::atomic<bool> terminated{false};
    size_t length() const noexcept override { return len; }
    size_t capacity() const noexcept override { return cap; }
    void Terminate() noexcept override { terminated = true; }
  };
  size_t vocabSize() const noexcept override { return vocab_; }
  size_t contextLength() const noexcept override { return context_; }
  std::unique_ptr<SequenceState> NewSequence(size_t capacity) override {
    auto s = std::make_unique<Seq>();
    s->cap = capacity;
    ++live;
    return std::unique_ptr<SequenceState>(new Owned(std::move(s), this));
  }
  void Forward(SequenceState& state, std::span<const uint32_t> tokens, std::span<float> logits) override {
    auto& s = *static_cast<Owned&>(state).seq;
    if (s.terminated) throw tokmeter::Error("ERR_ABORTED", "aborted");
    if (fail_at > 0 && s.len + tokens.size() >= fail_at)
      throw tokmeter::Error("ERR_INFERENCE", "scripted failure at " + std::to_string(fail_at) + " tokens");
    if (s.len + tokens.size() > s.cap) throw tokmeter::Error("ERR_CONTEXT_LENGTH", "over capacity");
    {
      std::lock_guard<std::mutex> lock(mutex);
      fed.emplace_back(tokens.begin(), tokens.end());
      if (tokens.size() > 1) events.push_back('P');  // a prefill (every prompt here has 2+ tokens)
    }
    s.len += tokens.size();
    std::fill(logits.begin(), logits.end(), 0.0f);
    auto it = script.find(s.len);
    const uint32_t next = it != script.end() ? it->second : (tokens.back() + 1) % static_cast<uint32_t>(vocab_);
    logits[next] = 10.0f;
    forwards++;
    if (delay.count()) std::this_thread::sleep_for(delay);
  }
  void ForwardBatch(std::span<SequenceState* const> sequences, std::span<const uint32_t> tokens,
                    std::span<float> logits) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      batches.push_back(sequences.size());
      events.push_back('B');
    }
    LanguageModel::ForwardBatch(sequences, tokens, logits);  // per-sequence Forward: rows are exact by construction
  }
  size_t kvBytesPerToken() const noexcept override { return per_token; }
  size_t maxBatchRows() const noexcept override { return max_rows; }
  bool prefillWhole() const noexcept override { return whole_prompts; }
  size_t MaxBatchSeen() {
    std::lock_guard<std::mutex> lock(mutex);
    size_t m = 0;
    for (size_t b : batches) m = std::max(m, b);
    return m;
  }
  size_t FedCount() {
    std::lock_guard<std::mutex> lock(mutex);
    return fed.size();
  }

  std::map<size_t, uint32_t> script;  // cache length after the Forward -> token to favour
  std::vector<std::vector<uint32_t>> fed;
  std::mutex mutex;
  std::atomic<int> forwards{0};
  std::atomic<int> live{0};
  std::chrono::milliseconds delay{0};
  std::vector<size_t> batches;  // rows of every ForwardBatch
  std::string events;           // 'P' prefill Forward, 'B' ForwardBatch, in order
  size_t per_token = 0;
  size_t max_rows = static_cast<size_t>(-1);  // 1: a model that cannot batch
  bool whole_prompts = false;                 // prefillWhole(): prompts are never split into chunks
  size_t fail_at = 0;  // > 0: a Forward that would bring a sequence to this many tokens throws ERR_INFERENCE

 private:
  struct Owned final : SequenceState {
    Owned(std::unique_ptr<Seq> s, ScriptedModel* m) : seq(std::move(s)), model(m) {}
    ~Owned() override { --model->live; }
    size_t length() const noexcept override { return seq->len; }
    size_t capacity() const noexcept override { return seq->cap; }
    void Terminate() noexcept override { seq->Terminate(); }
    std::unique_ptr<Seq> seq;
    ScriptedModel* model;
  };
  size_t vocab_, context_;
};

struct RecordingSink final : StreamSink {
  std::mutex mutex;
  std::vector<uint32_t> tokens;
  std::atomic<bool> done{false};
  GenerationOutcome outcome;
  void OnStep(const StepResult& s) override {
    std::lock_guard<std::mutex> lock(mutex);
    tokens.push_back(s.token);
  }
  void OnDone(const GenerationOutcome& o) override {
    std::lock_guard<std::mutex> lock(mutex);
    outcome = o;
    done = true;
  }
};
// Up to 20 s: returns as soon as `cond` holds; the bound only matters on a machine so loaded that 2 s was not enough.
inline bool WaitFor(const std::function<bool()>& cond) {
  for (int i = 0; i < 4000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

}  // namespace tokmeter::engine::testing
