// The generation loop (generator.h) and the inference thread (scheduler.h) against a scripted LanguageModel
// double: what is fed when, stop rules, usage counts, backpressure and abort.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "engine/generator.h"
#include "engine/scheduler.h"
#include "grammar/grammar.h"
#include "scripted_model.h"
#include "test/test_util.h"

using namespace tokmeter::engine;
using namespace tokmeter::engine::testing;
using namespace std::chrono_literals;

namespace {

// id -> bytes; holds back an incomplete UTF-8 tail like a real DecodeStream.
class TableDetokenizer final : public Detokenizer {
 public:
  explicit TableDetokenizer(std::map<uint32_t, std::string> table) : table_(std::move(table)) {}
  std::string Step(uint32_t id) override {
    auto it = table_.find(id);
    held_ += it == table_.end() ? "<" + std::to_string(id) + ">" : it->second;
    size_t cut = held_.size();
    // Back up over an unfinished UTF-8 sequence at the end.
    for (size_t back = 1; back <= 3 && back <= held_.size(); ++back) {
      const unsigned char c = static_cast<unsigned char>(held_[held_.size() - back]);
      if ((c & 0xC0) == 0x80) continue;
      const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      if (need > back) cut = held_.size() - back;
      break;
    }
    std::string out = held_.substr(0, cut);
    held_.erase(0, cut);
    return out;
  }
  std::string Flush() override {
    std::string out;
    out.swap(held_);
    return out;
  }

 private:
  std::map<uint32_t, std::string> table_;
  std::string held_;
};

std::unique_ptr<Detokenizer> Letters() {
  std::map<uint32_t, std::string> t;
  for (uint32_t i = 0; i < 26; ++i) t[i] = std::string(1, static_cast<char>('a' + i));
  t[30] = "\xE4\xBD";  // first two bytes of 你
  t[31] = "\xA0";      // its last byte
  return std::make_unique<TableDetokenizer>(t);
}

GenerationParams Greedy(size_t maxNew) {
  GenerationParams p;
  p.sampling.temperature = 0;
  p.maxNewTokens = maxNew;
  return p;
}

std::vector<uint32_t> Sampled(const Generator& g, size_t prompt) {
  return std::vector<uint32_t>(g.tokens().begin() + static_cast<std::ptrdiff_t>(prompt), g.tokens().end());
}

}  // namespace

TEST(prefill_then_one_token_per_step) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  Generator g(m, {3, 4, 5}, Greedy(4), Letters());
  std::string text;
  while (!g.done()) text += g.Step().text;
  CHECK((m->fed == std::vector<std::vector<uint32_t>>{{3, 4, 5}, {6}, {7}, {8}}));
  CHECK((Sampled(g, 3) == std::vector<uint32_t>{6, 7, 8, 9}));
  CHECK_EQ(text, std::string("ghij"));
  CHECK(g.finishReason() == FinishReason::kLength);
  CHECK_EQ(g.usage().promptTokens, size_t{3});
  CHECK_EQ(g.usage().completionTokens, size_t{4});
  CHECK_EQ(m->live.load(), 0);  // the cache is freed when the sequence ends
}

TEST(eos_stops_counts_and_is_not_text) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  m->script[4] = 2;  // after prompt (3) + 1 fed token → EOS id 2
  auto p = Greedy(0);
  p.eosTokenIds = {40, 2};
  Generator g(m, {0, 1, 2}, p, Letters());
  std::string text;
  while (!g.done()) text += g.Step().text;
  CHECK((Sampled(g, 3) == std::vector<uint32_t>{3, 2}));
  CHECK_EQ(text, std::string("d"));
  CHECK(g.finishReason() == FinishReason::kStop);
  CHECK_EQ(g.usage().completionTokens, size_t{2});  // EOS counts
}

namespace {
// Letters a..z at ids 0..25 and an EOS at 40, as a grammar vocabulary.
std::shared_ptr<const tokmeter::grammar::Vocabulary> LetterVocabulary() {
  tokmeter::grammar::VocabularyInput in;
  in.kind = tokmeter::grammar::VocabKind::kPlain;
  in.tokens.resize(50);
  for (int i = 0; i < 26; ++i) in.tokens[i] = std::string(1, static_cast<char>('a' + i));  // id i is letter i
  in.tokens[40] = "<eos>";
  in.special.assign(50, false);
  in.special[40] = true;
  return tokmeter::grammar::Vocabulary::Build(in);
}
}  // namespace

TEST(a_constraint_masks_every_step_and_forces_eos_when_complete) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  tokmeter::grammar::VocabularyInput in;
  in.kind = tokmeter::grammar::VocabKind::kPlain;
  in.tokens.resize(50);
  for (int i = 0; i < 26; ++i) in.tokens[i] = std::string(1, static_cast<char>('a' + i));  // id i is letter i
  in.tokens[40] = "<eos>";
  in.special.assign(50, false);
  in.special[40] = true;
  auto p = Greedy(10);
  p.eosTokenIds = {40};
  p.grammar = tokmeter::grammar::Grammar::Compile(R"({"type":"literal","text":"cab"})",
                                                  tokmeter::grammar::Vocabulary::Build(in));
  // The model favours (last + 1): 6, never allowed; the argmax of what the grammar leaves is its only letter.
  Generator g(m, {3, 4, 5}, p, Letters());
  std::string text;
  while (!g.done()) text += g.Step().text;
  CHECK((Sampled(g, 3) == std::vector<uint32_t>{2, 0, 1, 40}));
  CHECK_EQ(text, std::string("cab"));
  CHECK(g.finishReason() == FinishReason::kStop);
  CHECK_EQ(g.usage().completionTokens, size_t{4});  // every sampled token, EOS included
}

TEST(masked_ids_are_never_sampled_nor_seen_by_logprobs) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  auto p = Greedy(4);
  p.logprobs = true;
  p.sampling.masked = std::make_shared<TokenMask>(TokenMask{{5, 8}, {40, 50}});
  Generator g(m, {3, 4, 5}, p, Letters());
  std::vector<float> logprobs;
  while (!g.done()) logprobs.push_back(g.Step().logprob);
  // The favoured id (6) is masked: the argmax of what is left is the lowest id, 0; then 1, 2, 3 are favoured.
  CHECK((Sampled(g, 3) == std::vector<uint32_t>{0, 1, 2, 3}));
  for (float lp : logprobs) CHECK(std::isfinite(lp));
  CHECK_NEAR(logprobs[0], -std::log(37.0), 1e-5);  // uniform over the 37 ids left

  auto s = Greedy(200);
  s.sampling.temperature = 1;
  s.sampling.seed = 3;
  s.sampling.masked = std::make_shared<TokenMask>(TokenMask{{0, 45}});
  auto favours_masked = std::make_shared<ScriptedModel>(50, 400);
  for (size_t len = 2; len <= 400; ++len) favours_masked->script[len] = 7;  // the favoured id is always masked
  Generator sampled(favours_masked, {46, 47}, s, nullptr);
  while (!sampled.done()) sampled.Step();
  for (uint32_t id : Sampled(sampled, 2)) CHECK(id >= 45);
  CHECK_ERROR(Generator(
                  m, {1, 2},
                  [] {
                    auto bad = Greedy(1);
                    bad.sampling.masked = std::make_shared<TokenMask>(TokenMask{{0, 50}});
                    return bad;
                  }(),
                  nullptr),
              "ERR_INVALID_ARGUMENT", "every token");
}

TEST(stop_string_across_tokens) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  auto p = Greedy(20);
  p.stopStrings = {"def"};
  Generator g(m, {0}, p, Letters());  // samples b, c, d, e, f, ...
  std::string text;
  while (!g.done()) text += g.Step().text;
  CHECK_EQ(text, std::string("bc"));
  CHECK(g.finishReason() == FinishReason::kStop);
  CHECK_EQ(g.usage().completionTokens, size_t{5});  // b c d e f: the token completing the stop counts
}

TEST(text_never_splits_utf8) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  m->script[1] = 30;
  m->script[2] = 31;
  Generator g(m, {7}, Greedy(3), Letters());
  std::vector<std::string> deltas;
  while (!g.done()) deltas.push_back(g.Step().text);
  CHECK((deltas == std::vector<std::string>{"", "\xE4\xBD\xA0", "<32>"}));  // 30, 31, then (31 + 1) % 50
}

TEST(context_window) {
  auto m = std::make_shared<ScriptedModel>(50, 8);
  CHECK_ERROR(Generator(m, std::vector<uint32_t>(8, 1), Greedy(0), nullptr), "ERR_CONTEXT_LENGTH",
              "the prompt has 8 tokens but the model's context length is 8");
  Generator g(m, {1, 2, 3, 4, 5}, Greedy(0), nullptr);
  while (!g.done()) g.Step();
  CHECK(g.finishReason() == FinishReason::kLength);
  CHECK_EQ(g.tokens().size(), size_t{8});  // prompt + completion never exceed the context
  CHECK_EQ(g.usage().completionTokens, size_t{3});
  CHECK_ERROR(Generator(m, {1, 60}, Greedy(0), nullptr), "ERR_INVALID_ARGUMENT",
              "outside the model's vocabulary of 50");
  auto stops = Greedy(0);
  stops.stopStrings = {"x"};
  CHECK_ERROR(Generator(m, {1}, stops, nullptr), "ERR_INVALID_ARGUMENT", "tokenizer");
}

TEST(abort_between_steps) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  Generator g(m, {1, 2}, Greedy(10), nullptr);
  g.Step();
  g.Step();
  g.Abort();
  CHECK_ERROR(g.Step(), "ERR_ABORTED", "aborted");
  g.FinishAborted();
  CHECK(g.finishReason() == FinishReason::kAbort);
  CHECK_EQ(g.usage().promptTokens, size_t{2});
  CHECK_EQ(g.usage().completionTokens, size_t{2});
  CHECK_EQ(m->live.load(), 0);
}

TEST(scheduler_streams_with_backpressure_and_abort) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  Scheduler scheduler(m);
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* s = sink.get();
  auto stream = std::make_shared<GenerationStream>(std::move(sink), 4);
  scheduler.Submit({{1, 2, 3}, Greedy(500), nullptr, stream});
  // Without acknowledgements the engine stops after the window.
  CHECK(WaitFor([&] { return m->forwards.load() >= 4; }));
  std::this_thread::sleep_for(50ms);
  CHECK_EQ(m->forwards.load(), 4);
  stream->Acknowledge(3);
  CHECK(WaitFor([&] { return m->forwards.load() >= 7; }));
  std::this_thread::sleep_for(50ms);
  CHECK_EQ(m->forwards.load(), 7);
  stream->Abort();
  CHECK(WaitFor([&] { return s->done.load(); }));
  CHECK(s->outcome.finishReason == FinishReason::kAbort);
  CHECK(!s->outcome.failed);
  CHECK_EQ(s->outcome.usage.promptTokens, size_t{3});
  CHECK_EQ(s->outcome.usage.completionTokens, size_t{7});
  CHECK_EQ(s->tokens.size(), size_t{7});
  CHECK(WaitFor([&] { return m->live.load() == 0; }));
}

TEST(scheduler_runs_queue_in_order_and_shutdown_settles_everything) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->delay = 2ms;
  auto scheduler = std::make_unique<Scheduler>(m);
  std::vector<RecordingSink*> sinks;
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (int i = 0; i < 3; ++i) {
    auto sink = std::make_unique<RecordingSink>();
    sinks.push_back(sink.get());
    streams.push_back(std::make_shared<GenerationStream>(std::move(sink), 1u << 30));
    scheduler->Submit({{static_cast<uint32_t>(i)}, Greedy(i == 0 ? 3 : 100000), nullptr, streams.back()});
  }
  CHECK(WaitFor([&] { return sinks[0]->done.load(); }));
  CHECK(sinks[0]->outcome.finishReason == FinishReason::kLength);
  CHECK((sinks[0]->tokens == std::vector<uint32_t>{1, 2, 3}));
  CHECK(WaitFor([&] { return m->forwards.load() > 10; }));  // the second one is running
  scheduler->Shutdown();
  scheduler->Shutdown();  // idempotent
  for (int i = 1; i < 3; ++i) {
    CHECK(sinks[i]->done.load());
    CHECK(sinks[i]->outcome.finishReason == FinishReason::kAbort);
  }
  CHECK(sinks[1]->outcome.usage.completionTokens > 0);
  CHECK_EQ(sinks[2]->outcome.usage.completionTokens, size_t{0});
  CHECK_ERROR(scheduler->Submit({{1}, Greedy(1), nullptr, streams[0]}), "ERR_DISPOSED", "disposed");
  CHECK_EQ(m->live.load(), 0);
}

TEST(scheduler_bounded_queue_refuses_past_max_queue) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  Scheduler scheduler(m, /*maxQueue=*/2);
  auto make = [](RecordingSink** out, size_t window) {
    auto sink = std::make_unique<RecordingSink>();
    *out = sink.get();
    return std::make_shared<GenerationStream>(std::move(sink), window);
  };
  RecordingSink *held_sink, *a, *b, *c;
  auto held = make(&held_sink, 1);  // never acknowledged: holds the inference thread after one token
  scheduler.Submit({{1}, Greedy(100), nullptr, held});
  CHECK(WaitFor([&] { return scheduler.running() == 1 && m->forwards.load() >= 1; }));
  auto sa = make(&a, 1u << 30), sb = make(&b, 1u << 30), sc = make(&c, 1u << 30);
  scheduler.Submit({{2}, Greedy(3), nullptr, sa});
  scheduler.Submit({{3}, Greedy(3), nullptr, sb});
  CHECK_EQ(scheduler.queued(), size_t{2});
  CHECK_ERROR(scheduler.Submit({{4}, Greedy(3), nullptr, sc}), "ERR_QUEUE_FULL", "maxQueue 2");
  CHECK_EQ(scheduler.queued(), size_t{2});
  CHECK(!c->done.load());  // a refused request is not settled through its sink: the caller got the error
  held->Abort();
  CHECK(WaitFor([&] { return a->done.load() && b->done.load(); }));
  CHECK((a->tokens == std::vector<uint32_t>{3, 4, 5}));
  CHECK((b->tokens == std::vector<uint32_t>{4, 5, 6}));
  CHECK(held_sink->outcome.finishReason == FinishReason::kAbort);
  CHECK(WaitFor([&] { return scheduler.running() == 0; }));
  scheduler.Submit({{4}, Greedy(1), nullptr, sc});  // room again
  CHECK(WaitFor([&] { return c->done.load(); }));
}

TEST(scheduler_reports_errors_without_dying) {
  auto m = std::make_shared<ScriptedModel>(50, 10);
  Scheduler scheduler(m);
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* s = sink.get();
  auto stream = std::make_shared<GenerationStream>(std::move(sink), 8);  // the stream owns the sink
  scheduler.Submit({std::vector<uint32_t>(20, 1), Greedy(1), nullptr, stream});
  CHECK(WaitFor([&] { return s->done.load(); }));
  CHECK(s->outcome.failed);
  CHECK_EQ(s->outcome.errorCode, std::string("ERR_CONTEXT_LENGTH"));
  auto sink2 = std::make_unique<RecordingSink>();
  RecordingSink* s2 = sink2.get();
  auto stream2 = std::make_shared<GenerationStream>(std::move(sink2), 8);
  scheduler.Submit({{1}, Greedy(2), nullptr, stream2});
  CHECK(WaitFor([&] { return s2->done.load(); }));
  CHECK(!s2->outcome.failed);
}

namespace {
std::shared_ptr<GenerationStream> Stream(RecordingSink** out, size_t window) {
  auto sink = std::make_unique<RecordingSink>();
  *out = sink.get();
  return std::make_shared<GenerationStream>(std::move(sink), window);
}
SchedulerOptions Batch(size_t maxBatch, size_t budget = 0) {
  SchedulerOptions o;
  o.maxBatch = maxBatch;
  o.kvBudgetBytes = budget;
  o.prefillChunk = 2;
  return o;
}
}  // namespace

TEST(scheduler_batches_concurrent_generations_each_as_alone) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->delay = 1ms;
  Scheduler scheduler(m, Batch(4));
  std::vector<RecordingSink*> sinks(6);
  std::vector<std::shared_ptr<GenerationStream>> streams;  // the streams own the sinks
  for (uint32_t i = 0; i < 6; ++i) {
    streams.push_back(Stream(&sinks[i], 1u << 30));
    scheduler.Submit({std::vector<uint32_t>(1 + i, i), Greedy(5 + i), nullptr, streams.back()});
  }
  for (uint32_t i = 0; i < 6; ++i) {
    CHECK(WaitFor([&] { return sinks[i]->done.load(); }));
    CHECK(sinks[i]->outcome.finishReason == FinishReason::kLength);
    CHECK_EQ(sinks[i]->outcome.usage.promptTokens, size_t{1 + i});
    CHECK_EQ(sinks[i]->outcome.usage.completionTokens, size_t{5 + i});
    std::vector<uint32_t> want;
    for (uint32_t k = 0; k < 5 + i; ++k) want.push_back((i + 1 + k) % 50);  // (last + 1) % vocab, as alone
    CHECK((sinks[i]->tokens == want));
  }
  CHECK(m->MaxBatchSeen() > 1);
  CHECK(m->MaxBatchSeen() <= 4);
  CHECK(WaitFor([&] { return scheduler.running() == 0 && m->live.load() == 0; }));
}

TEST(scheduler_prefills_a_burst_of_short_prompts_in_one_step) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->delay = 2ms;
  SchedulerOptions o;
  o.maxBatch = 8;
  o.prefillChunk = 256;
  Scheduler scheduler(m, o);
  std::vector<RecordingSink*> sinks(6);
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (uint32_t i = 0; i < 6; ++i) {
    streams.push_back(Stream(&sinks[i], 1u << 30));
    scheduler.Submit({std::vector<uint32_t>(3 + i, i), Greedy(4), nullptr, streams.back()});
  }
  for (uint32_t i = 0; i < 6; ++i) CHECK(WaitFor([&] { return sinks[i]->done.load(); }));
  std::lock_guard<std::mutex> lock(m->mutex);
  // 6 x (3..8) tokens fit one 256-token budget: whatever arrived while the first prefill ran is prefilled in the
  // next step, before any decode step, so at most one decode step comes between the prefills.
  const size_t last_prefill = m->events.rfind('P');
  CHECK(std::count(m->events.begin(), m->events.end(), 'P') == 6);
  CHECK(std::count(m->events.begin(), m->events.begin() + static_cast<std::ptrdiff_t>(last_prefill), 'B') <= 1);
}

TEST(scheduler_prefill_budget_spreads_long_prompts_over_steps) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  SchedulerOptions o;
  o.maxBatch = 4;
  o.prefillChunk = 4;
  Scheduler scheduler(m, o);
  RecordingSink *a, *b, *c;
  auto sa = Stream(&a, 1u << 30), sb = Stream(&b, 1u << 30), sc = Stream(&c, 1u << 30);
  m->delay = 1ms;
  scheduler.Submit({{1, 2}, Greedy(100000), nullptr, sa});
  CHECK(WaitFor([&] { return a->tokens.size() >= 2; }));  // `a` decodes: the budget applies from now on
  scheduler.Submit({std::vector<uint32_t>(10, 3), Greedy(2), nullptr, sb});
  scheduler.Submit({std::vector<uint32_t>(3, 4), Greedy(2), nullptr, sc});
  CHECK(WaitFor([&] { return b->done.load() && c->done.load(); }));
  sa->Abort();
  CHECK(WaitFor([&] { return a->done.load(); }));
  std::lock_guard<std::mutex> lock(m->mutex);
  // No Forward while `a` decodes feeds more than the 4-token budget; b's 10 tokens take three steps (4 + 4 + 2),
  // and c gets the 2 tokens left in the third step's budget, then its last token in the next.
  size_t most = 0;
  for (size_t k = 1; k < m->fed.size(); ++k) most = std::max(most, m->fed[k].size());
  CHECK(most <= 4);
  CHECK_EQ(b->outcome.usage.promptTokens, size_t{10});
  CHECK_EQ(c->outcome.usage.promptTokens, size_t{3});
  CHECK(b->tokens.size() == 2 && c->tokens.size() == 2);
}

TEST(scheduler_feeds_a_whole_prompt_model_its_prompts_whole_even_while_others_decode) {
  // The same arrivals as above on a model whose prompts must go in whole (prefillWhole: a DynamicQuantizeLinear
  // graph): no prompt is split, whatever the 4-token budget; a newcomer still waits for a step with budget left.
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->whole_prompts = true;
  SchedulerOptions o;
  o.maxBatch = 4;
  o.prefillChunk = 4;
  Scheduler scheduler(m, o);
  RecordingSink *a, *b, *c;
  auto sa = Stream(&a, 1u << 30), sb = Stream(&b, 1u << 30), sc = Stream(&c, 1u << 30);
  m->delay = 1ms;
  scheduler.Submit({std::vector<uint32_t>(7, 1), Greedy(100000), nullptr, sa});
  CHECK(WaitFor([&] { return a->tokens.size() >= 2; }));  // `a` decodes
  scheduler.Submit({std::vector<uint32_t>(10, 3), Greedy(2), nullptr, sb});
  scheduler.Submit({std::vector<uint32_t>(3, 4), Greedy(2), nullptr, sc});
  CHECK(WaitFor([&] { return b->done.load() && c->done.load(); }));
  sa->Abort();
  CHECK(WaitFor([&] { return a->done.load(); }));
  std::lock_guard<std::mutex> lock(m->mutex);
  // Every prompt in one Forward: a's 7, b's 10 and c's 3 tokens.
  std::vector<size_t> prompts;
  for (const auto& f : m->fed)
    if (f.size() > 1) prompts.push_back(f.size());
  CHECK((prompts == std::vector<size_t>{7, 10, 3}));
  CHECK_EQ(b->outcome.usage.promptTokens, size_t{10});
  CHECK(b->tokens.size() == 2 && c->tokens.size() == 2);
}

TEST(scheduler_abort_and_parking_touch_only_their_sequence) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->delay = 1ms;
  Scheduler scheduler(m, Batch(4));
  RecordingSink *slow, *victim, *a, *b;
  auto slow_stream = Stream(&slow, 3);  // never acknowledged: parked after 3 tokens
  auto victim_stream = Stream(&victim, 1u << 30);
  scheduler.Submit({{10}, Greedy(40), nullptr, slow_stream});
  scheduler.Submit({{20}, Greedy(100000), nullptr, victim_stream});
  auto a_stream = Stream(&a, 1u << 30), b_stream = Stream(&b, 1u << 30);  // the streams own the sinks
  scheduler.Submit({{1}, Greedy(30), nullptr, a_stream});
  scheduler.Submit({{2}, Greedy(30), nullptr, b_stream});
  CHECK(WaitFor([&] { return scheduler.stats().parked == 1; }));
  victim_stream->Abort();
  CHECK(WaitFor([&] { return victim->done.load() && a->done.load() && b->done.load(); }));
  CHECK(victim->outcome.finishReason == FinishReason::kAbort);
  CHECK_EQ(victim->outcome.usage.completionTokens, victim->tokens.size());
  CHECK_EQ(a->tokens.size(), size_t{30});
  CHECK_EQ(a->tokens.back(), uint32_t{31 % 50});
  CHECK_EQ(b->tokens.size(), size_t{30});
  CHECK_EQ(slow->tokens.size(), size_t{3});  // parked: kept its place, made no steps
  CHECK(!slow->done.load());
  CHECK_EQ(scheduler.stats().running, size_t{1});
  slow_stream->Acknowledge(1000);
  CHECK(WaitFor([&] { return slow->done.load(); }));
  CHECK_EQ(slow->tokens.size(), size_t{40});
  CHECK_EQ(slow->tokens.back(), uint32_t{(10 + 40) % 50});
  CHECK_EQ(scheduler.stats().parked, size_t{0});
}

TEST(scheduler_kv_budget_refuses_alone_and_queues_together) {
  auto m = std::make_shared<ScriptedModel>(50, 1000);
  m->per_token = 10;
  m->delay = 1ms;
  // 2 x 10 bytes x capacity: a (4 + 16)-token request reserves 400 bytes; two of them 800.
  Scheduler scheduler(m, Batch(4, 500));
  RecordingSink *big, *one, *two;
  auto big_stream = Stream(&big, 8);
  CHECK_ERROR(scheduler.Submit({std::vector<uint32_t>(4, 1), Greedy(22), nullptr, big_stream}), "ERR_KV_BUDGET",
              "kvCacheBytes budget of 500");
  auto held = Stream(&one, 1);
  scheduler.Submit({std::vector<uint32_t>(4, 1), Greedy(16), nullptr, held});
  CHECK(WaitFor([&] { return scheduler.running() == 1; }));
  CHECK_EQ(scheduler.stats().kvReservedBytes, size_t{400});
  auto two_stream = Stream(&two, 1u << 30);
  scheduler.Submit({std::vector<uint32_t>(4, 2), Greedy(16), nullptr, two_stream});
  std::this_thread::sleep_for(20ms);
  CHECK_EQ(scheduler.queued(), size_t{1});  // fits alone, not next to the first: waits
  CHECK(!two->done.load());
  held->Acknowledge(1000);
  CHECK(WaitFor([&] { return one->done.load() && two->done.load(); }));
  CHECK_EQ(two->tokens.size(), size_t{16});
  CHECK(WaitFor([&] { return scheduler.stats().kvReservedBytes == 0; }));
}

TEST(top_logprobs_list_the_raw_distribution_with_the_sampled_token) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  auto p = Greedy(4);
  p.logprobs = true;
  p.topLogprobs = 3;
  Generator g(m, {3, 4, 5}, p, Letters());
  while (!g.done()) {
    const StepResult& r = g.Step();
    CHECK_EQ(r.top.size(), size_t{3});
    CHECK_EQ(r.top[0].id, r.token);  // greedy: the sampled token is the most likely
    CHECK(r.top[0].logprob == r.logprob);
    CHECK_NEAR(r.top[0].logprob, 10 - std::log(std::exp(10.0) + 49), 1e-5);
    // The rest tie at logit 0: the lowest ids other than the token, in id order.
    std::vector<uint32_t> rest = {r.top[1].id, r.top[2].id};
    CHECK((rest == (r.token == 0   ? std::vector<uint32_t>{1, 2}
                    : r.token == 1 ? std::vector<uint32_t>{0, 2}
                                   : std::vector<uint32_t>{0, 1})));
    CHECK_NEAR(r.top[1].logprob, -std::log(std::exp(10.0) + 49), 1e-5);
  }
  // Off by default; alternatives without the sampled token's logprob; more than 20 refused.
  Generator off(m, {3, 4, 5}, Greedy(1), nullptr);
  CHECK(off.Step().top.empty());
  auto only = Greedy(1);
  only.topLogprobs = 1;
  Generator alone(m, {3, 4, 5}, only, nullptr);
  const StepResult& r = alone.Step();
  CHECK_EQ(r.top.size(), size_t{1});
  CHECK(r.logprob == 0.0f);
  auto many = Greedy(1);
  many.topLogprobs = 21;
  CHECK_ERROR(Generator(m, {1, 2}, many, nullptr), "ERR_INVALID_ARGUMENT", "[0, 20] for topLogprobs, got 21");
}

TEST(logit_bias_forces_and_bans_and_checks_ids) {
  auto m = std::make_shared<ScriptedModel>(50, 100);
  auto force = Greedy(3);
  force.sampling.logitBias = {{20, 100}};
  force.logprobs = true;
  force.topLogprobs = 2;
  Generator f(m, {3, 4, 5}, force, Letters());
  while (!f.done()) {
    const StepResult& r = f.Step();
    CHECK_EQ(r.token, 20u);
    // Log-probabilities stay those of the raw distribution: the bias moved the sample, not the report.
    CHECK(r.top[0].id != 20u);
    CHECK_NEAR(r.logprob, -std::log(std::exp(10.0) + 49), 1e-5);
  }
  CHECK((Sampled(f, 3) == std::vector<uint32_t>{20, 20, 20}));
  auto ban = Greedy(1);
  ban.sampling.logitBias = {{6, -100}};
  Generator b(m, {3, 4, 5}, ban, nullptr);
  CHECK_EQ(b.Step().token, 0u);  // the favoured 6 is banned: the lowest of the ties is next
  auto sampled = Greedy(30);
  sampled.sampling.temperature = 1;
  sampled.sampling.seed = 9;
  sampled.sampling.logitBias = {{6, -100}, {7, -100}, {8, -100}};
  Generator s(m, {3, 4, 5}, sampled, nullptr);
  while (!s.done()) s.Step();
  for (uint32_t id : Sampled(s, 3)) CHECK(id < 6 || id > 8);
  auto outside = Greedy(1);
  outside.sampling.logitBias = {{3, 1}, {50, 1}};
  CHECK_ERROR(Generator(m, {1, 2}, outside, nullptr), "ERR_INVALID_ARGUMENT", "token id 50 is outside");
}

namespace {
// A model that samples "on its device" (LanguageModel::samplesOnDevice, the CUDA path's contract): it keeps each
// Forward's argmax as its device-side result, never receives host logits, and records what the loop hands it.
class DeviceModel final : public LanguageModel {
 public:
  DeviceModel(size_t vocab, size_t context) : inner_(vocab, context) {}
  size_t vocabSize() const noexcept override { return inner_.vocabSize(); }
  size_t contextLength() const noexcept override { return inner_.contextLength(); }
  std::unique_ptr<SequenceState> NewSequence(size_t capacity) override { return inner_.NewSequence(capacity); }
  bool samplesOnDevice() const noexcept override { return true; }
  void StartSampling(SequenceState& s, const SamplingOptions& o, std::span<const uint32_t> prompt) override {
    std::lock_guard<std::mutex> lock(mutex);
    if (started.count(&s) != 0) ++errors;    // twice for one sequence
    if (forwarded.count(&s) != 0) ++errors;  // after its first Forward
    started[&s] = std::vector<uint32_t>(prompt.begin(), prompt.end());
    temperature = o.temperature;
  }
  void Forward(SequenceState& s, std::span<const uint32_t> tokens, std::span<float> logits) override {
    std::fill(logits.begin(), logits.end(), std::nanf(""));  // never host logits: LastLogitsToHost copies them
    std::vector<float> device(vocabSize());
    inner_.Forward(s, tokens, device);
    std::lock_guard<std::mutex> lock(mutex);
    if (started.count(&s) == 0) ++errors;
    forwarded[&s] = true;
    pending[&s] = static_cast<uint32_t>(std::max_element(device.begin(), device.end()) - device.begin());
    rows[&s] = device;
    last = {&s};
  }
  void LastLogitsToHost(std::span<float> out, bool release) override {
    std::lock_guard<std::mutex> lock(mutex);
    if (out.size() != last.size() * vocabSize()) ++errors;
    for (size_t i = 0; i < last.size() && (i + 1) * vocabSize() <= out.size(); ++i)
      std::copy(rows[last[i]].begin(), rows[last[i]].end(), out.begin() + static_cast<std::ptrdiff_t>(i * vocabSize()));
    hostCopies += 1;
    if (release) last.clear();
  }
  void ForwardBatch(std::span<SequenceState* const> sequences, std::span<const uint32_t> tokens,
                    std::span<float> logits) override {
    if (!logits.empty()) ++errors;
    std::vector<SequenceState*> rows(sequences.begin(), sequences.end());
    for (size_t i = 0; i < sequences.size(); ++i) Forward(*sequences[i], tokens.subspan(i, 1), {});
    std::lock_guard<std::mutex> lock(mutex);
    last = rows;
    maxRows = std::max(maxRows, rows.size());
  }
  void SampleLast(std::span<SequenceState* const> sequences, std::span<const double> u, std::span<uint32_t> ids,
                  std::span<float> logprobs) override {
    std::lock_guard<std::mutex> lock(mutex);
    if (std::vector<SequenceState*>(sequences.begin(), sequences.end()) != last) ++errors;
    if (u.size() != sequences.size() || ids.size() != sequences.size() || logprobs.size() != sequences.size()) ++errors;
    for (size_t i = 0; i < sequences.size(); ++i) {
      ids[i] = pending[sequences[i]];
      logprobs[i] = -0.5f;
      uniforms.push_back(u[i]);
    }
    last.clear();
  }
  ScriptedModel& inner() { return inner_; }

  std::mutex mutex;
  std::map<SequenceState*, std::vector<uint32_t>> started;
  std::map<SequenceState*, bool> forwarded;
  std::map<SequenceState*, uint32_t> pending;
  std::map<SequenceState*, std::vector<float>> rows;  // each sequence's last logits, "on the device"
  std::vector<SequenceState*> last;
  int hostCopies = 0;
  std::vector<double> uniforms;
  std::atomic<int> errors{0};
  size_t maxRows = 0;
  float temperature = -1;

 private:
  ScriptedModel inner_;
};
}  // namespace

TEST(device_sampling_generator_feeds_the_same_and_samples_on_the_model) {
  auto host = std::make_shared<ScriptedModel>(50, 100);
  auto device = std::make_shared<DeviceModel>(50, 100);
  host->script[5] = 40;
  device->inner().script[5] = 40;
  auto p = Greedy(5);
  p.logprobs = true;
  Generator a(host, {3, 4, 5}, p, Letters());
  Generator b(device, {3, 4, 5}, p, Letters());
  while (!a.done()) a.Step();
  std::vector<float> logprobs;
  while (!b.done()) logprobs.push_back(b.Step().logprob);
  CHECK((Sampled(b, 3) == Sampled(a, 3)));
  CHECK((device->inner().fed == host->fed));
  CHECK_EQ(device->errors.load(), 0);
  CHECK_EQ(device->started.size(), size_t{1});
  CHECK((device->started.begin()->second == std::vector<uint32_t>{3, 4, 5}));
  CHECK((logprobs == std::vector<float>(5, -0.5f)));         // the model's log-probabilities, as asked
  CHECK((device->uniforms == std::vector<double>(5, 0.0)));  // greedy rows draw nothing
  CHECK(b.usage().completionTokens == a.usage().completionTokens);
}

TEST(device_sampling_passes_the_cpu_samplers_draws) {
  auto device = std::make_shared<DeviceModel>(50, 100);
  GenerationParams p;
  p.sampling.temperature = 0.7f;
  p.sampling.seed = 42;
  p.maxNewTokens = 6;
  Generator g(device, {1, 2}, p, nullptr);
  while (!g.done()) g.Step();
  Sampler reference(42);
  std::vector<double> want;
  for (int i = 0; i < 6; ++i) want.push_back(reference.NextUniform());
  CHECK((device->uniforms == want));  // so a seed draws the same tokens on CPU and GPU
  CHECK(device->temperature == 0.7f);
  CHECK_EQ(device->errors.load(), 0);
  // Host logits are refused by a device generator, device ids by a host one.
  Generator d(device, {1, 2}, Greedy(3), nullptr);
  d.Step();
  CHECK_ERROR(d.Accept(std::vector<float>(50, 0.0f)), "ERR_INTERNAL", "samples on its device");
  auto host = std::make_shared<ScriptedModel>(50, 100);
  Generator h(host, {1, 2}, Greedy(3), nullptr);
  h.Step();
  CHECK_ERROR(h.AcceptToken(3, 0.0f), "ERR_INTERNAL", "samples on the host");
}

TEST(scheduler_batches_device_sampled_generations_each_as_alone) {
  auto m = std::make_shared<DeviceModel>(50, 1000);
  Scheduler scheduler(m, Batch(4));
  std::vector<RecordingSink*> sinks(6);
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (uint32_t i = 0; i < 6; ++i) {
    streams.push_back(Stream(&sinks[i], 1u << 30));
    scheduler.Submit({std::vector<uint32_t>(1 + i, i), Greedy(5 + i), nullptr, streams.back()});
  }
  for (uint32_t i = 0; i < 6; ++i) {
    CHECK(WaitFor([&] { return sinks[i]->done.load(); }));
    CHECK_EQ(sinks[i]->outcome.usage.completionTokens, size_t{5 + i});
    std::vector<uint32_t> want;
    for (uint32_t k = 0; k < 5 + i; ++k) want.push_back((i + 1 + k) % 50);
    CHECK((sinks[i]->tokens == want));
  }
  CHECK(WaitFor([&] { return scheduler.running() == 0; }));
  CHECK_EQ(m->errors.load(), 0);
  CHECK_EQ(m->started.size(), size_t{6});
  std::lock_guard<std::mutex> lock(m->mutex);
  CHECK(m->maxRows > 1);
}

TEST(device_model_rows_with_bias_or_alternatives_sample_on_the_host) {
  auto host = std::make_shared<ScriptedModel>(50, 100);
  auto device = std::make_shared<DeviceModel>(50, 100);
  auto p = Greedy(4);
  p.logprobs = true;
  p.topLogprobs = 2;
  p.sampling.logitBias = {{9, 5}};
  Generator a(host, {3, 4, 5}, p, Letters());
  Generator b(device, {3, 4, 5}, p, Letters());
  CHECK(!b.samplesOnDevice());
  std::vector<StepResult> want, got;
  while (!a.done()) want.push_back(a.Step());
  while (!b.done()) got.push_back(b.Step());
  CHECK((Sampled(b, 3) == Sampled(a, 3)));
  CHECK_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    CHECK(got[i].logprob == want[i].logprob);  // the host's numbers, not the device's -0.5
    CHECK_EQ(got[i].top.size(), size_t{2});
    CHECK_EQ(got[i].top[0].id, want[i].top[0].id);
  }
  CHECK_EQ(device->hostCopies, 4);
  CHECK(device->uniforms.empty());  // SampleLast never ran for it
  CHECK_EQ(device->errors.load(), 0);
}

TEST(device_model_rows_with_a_constraint_sample_on_the_host) {
  auto host = std::make_shared<ScriptedModel>(50, 100);
  auto device = std::make_shared<DeviceModel>(50, 100);
  auto p = Greedy(10);
  p.eosTokenIds = {40};
  p.grammar = tokmeter::grammar::Grammar::Compile(R"({"type":"choice","choices":["cab","dog"]})", LetterVocabulary());
  Generator a(host, {3, 4, 5}, p, Letters());
  Generator b(device, {3, 4, 5}, p, Letters());
  CHECK(!b.samplesOnDevice());
  std::string want, got;
  while (!a.done()) want += a.Step().text;
  while (!b.done()) got += b.Step().text;
  CHECK((Sampled(b, 3) == Sampled(a, 3)));
  CHECK(got == "cab" || got == "dog");
  CHECK_EQ(got, want);
  CHECK(b.finishReason() == FinishReason::kStop);
  CHECK_EQ(device->hostCopies, static_cast<int>(b.usage().completionTokens));  // every step's logits came to the host
  CHECK(device->uniforms.empty());                                             // SampleLast never ran for it
  CHECK_EQ(device->errors.load(), 0);
}

TEST(scheduler_mixes_device_and_host_sampled_rows_in_one_batch) {
  auto m = std::make_shared<DeviceModel>(50, 1000);
  Scheduler scheduler(m, Batch(4));
  std::vector<RecordingSink*> sinks(4);
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (uint32_t i = 0; i < 4; ++i) {
    auto p = Greedy(8);
    if (i % 2 == 1) p.sampling.logitBias = {{30 + i, 100}};  // host rows, forced to one id
    streams.push_back(Stream(&sinks[i], 1u << 30));
    scheduler.Submit({std::vector<uint32_t>(2, i), p, nullptr, streams.back()});
  }
  for (uint32_t i = 0; i < 4; ++i) {
    CHECK(WaitFor([&] { return sinks[i]->done.load(); }));
    std::vector<uint32_t> want;
    for (uint32_t k = 0; k < 8; ++k) want.push_back(i % 2 == 1 ? 30 + i : (i + 1 + k) % 50);
    CHECK((sinks[i]->tokens == want));
  }
  CHECK(WaitFor([&] { return scheduler.running() == 0; }));
  CHECK_EQ(m->errors.load(), 0);
  CHECK(m->hostCopies > 0);
  std::lock_guard<std::mutex> lock(m->mutex);
  CHECK(m->maxRows > 1);
}

TEST_MAIN()
