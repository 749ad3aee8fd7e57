// tokenizer/parallel.h: every index runs exactly once, on several threads, errors come back to the caller, and
// concurrent batches (several libuv workers at once) share the pool safely.
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "synthetic.h"
#include "tokenizer/parallel.h"

using namespace tokmeter::tokenizer;

TEST(every_index_runs_once_on_several_threads) {
  for (unsigned threads : {1u, 2u, 4u, 9u}) {
    std::vector<std::atomic<int>> hits(5000);
    std::mutex mu;
    std::set<std::thread::id> ids;
    auto distinct = [&] {
      std::lock_guard<std::mutex> lock(mu);
      return ids.size();
    };
    auto body = [&](size_t i) {
      hits[i].fetch_add(1);
      {
        std::lock_guard<std::mutex> lock(mu);
        ids.insert(std::this_thread::get_id());
      }
      // Whoever runs index 0 holds it until another thread has run an index (up to 20 s), so a loaded machine
      // that wakes the helpers late cannot let one thread do the whole batch and fail the check below.
      if (i == 0 && threads > 1)
        for (int k = 0; k < 20000 && distinct() < 2; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    };
    ParallelFor(hits.size(), threads, FnRef<void(size_t)>(body));
    bool once = true;
    for (auto& h : hits) once = once && h.load() == 1;
    CHECK(once);
    CHECK(ids.size() <= threads);
    if (threads > 1) CHECK(ids.size() > 1);
  }
  auto none = [](size_t) { std::abort(); };
  ParallelFor(0, 4, FnRef<void(size_t)>(none));
}

TEST(the_first_error_reaches_the_caller_after_all_started_work) {
  std::atomic<int> running{0}, max_after{0};
  auto body = [&](size_t i) {
    running.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    running.fetch_sub(1);
    if (i == 7) throw tokmeter::Error("ERR_X", "index 7");
  };
  CHECK_THROWS_CODE(ParallelFor(1000, 4, FnRef<void(size_t)>(body)), "ERR_X");
  max_after = running.load();
  CHECK_EQ(max_after.load(), 0);  // nobody is still inside body
}

TEST(concurrent_batches_share_the_pool) {
  std::vector<std::thread> callers;
  std::atomic<long> total{0};
  for (int c = 0; c < 6; ++c)
    callers.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        std::atomic<long> sum{0};
        auto body = [&](size_t i) { sum.fetch_add(static_cast<long>(i)); };
        ParallelFor(300, 3, FnRef<void(size_t)>(body));
        total.fetch_add(sum.load() == 300L * 299 / 2 ? 1 : 0);
      }
    });
  for (auto& t : callers) t.join();
  CHECK_EQ(total.load(), 120L);
}

int main() { return tt::RunAll(); }
