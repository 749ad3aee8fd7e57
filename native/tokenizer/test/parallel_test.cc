// tokenizer/parallel.h: every index runs exactly once, on several threads, errors come back to the caller, and
// concurrent batches (several libuv workers at once) share the pool safely.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "synthetic.h"
#include "tokenizer/parallel.h"

using namespace tokmeter::tokenizer;

// Runs first, while the pool is fresh: its two helpers are numbered 0 and 1, so each prefers its own lane.
TEST(a_repeated_batch_lands_on_the_same_threads) {
  constexpr size_t kItems = 64;
  // The second batch's documents take different times than the first's (as real documents do), so dealing from one
  // shared counter would pair indices with threads differently; lanes keep the pairing.
  auto run = [&](std::vector<std::thread::id>& where, bool varied) {
    where.assign(kItems, std::thread::id());
    std::mutex mu;
    std::map<std::thread::id, size_t> ran;  // items each thread has run
    size_t started = 0;
    auto body = [&](size_t i) {
      size_t mine;
      {
        std::lock_guard<std::mutex> lock(mu);
        where[i] = std::this_thread::get_id();
        mine = ++ran[std::this_thread::get_id()];
        ++started;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(!varied ? 300 : i % 3 == 0 ? 900 : 150));
      // Lockstep: a thread goes on only when the other has run at least one item fewer (up to 20 s on a loaded
      // machine), so a thread the scheduler leaves out for a while does not have its lane drained by the other.
      // Without it, a busy machine failed this test about 1 run in 12; what is checked here is where the lanes
      // send the items, not how fast each thread gets to run them.
      for (int k = 0; k < 20000; ++k) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (started == kItems) break;
          if (ran.size() >= 2) {
            size_t least = mine;
            for (const auto& [id, count] : ran) least = std::min(least, count);
            if (least + 1 >= mine) break;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    };
    ParallelForOnPool(kItems, 2, FnRef<void(size_t)>(body));
  };
  std::vector<std::thread::id> first, second;
  run(first, false);
  run(second, true);
  size_t same = 0;
  for (size_t i = 0; i < kItems; ++i) same += first[i] == second[i] ? 1 : 0;
  // Dealt at random, about half would match; lanes keep all but the last few (taken from the back by a thread
  // whose own lane ran out first).
  CHECK(same >= kItems * 7 / 8);
}

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
      // Every item waits until a second thread has run one (up to 20 s), so the first thread in holds its first
      // item while the batch still has thousands left for the others. Holding only index 0 was not enough: a
      // caller descheduled before its first item let the helper run its own lane and then all of lane 0 from the
      // back, index 0 included, so the caller found nothing left and the check below saw one thread.
      if (threads > 1)
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

TEST(on_pool_runs_every_index_on_helpers_only_and_returns_errors) {
  for (unsigned threads : {1u, 2u, 5u}) {
    std::vector<std::atomic<int>> hits(3000);
    std::atomic<int> on_caller{0};
    const auto caller = std::this_thread::get_id();
    auto body = [&](size_t i) {
      hits[i].fetch_add(1);
      if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
    };
    ParallelForOnPool(hits.size(), threads, FnRef<void(size_t)>(body));
    bool once = true;
    for (auto& h : hits) once = once && h.load() == 1;
    CHECK(once);
    CHECK_EQ(on_caller.load(), 0);
  }
  std::atomic<int> running{0};
  auto failing = [&](size_t i) {
    running.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    running.fetch_sub(1);
    if (i == 3) throw tokmeter::Error("ERR_Y", "index 3");
  };
  CHECK_THROWS_CODE(ParallelForOnPool(500, 3, FnRef<void(size_t)>(failing)), "ERR_Y");
  CHECK_EQ(running.load(), 0);
  auto none = [](size_t) { std::abort(); };
  ParallelForOnPool(0, 2, FnRef<void(size_t)>(none));
}

// PoolRun: the helpers start before the caller waits (they can run while the caller still prepares the input), every
// index runs once, errors come back from Wait, and destroying an unwaited run waits for its helpers.
TEST(pool_run_starts_before_the_wait) {
  std::atomic<uint32_t> ready{0};
  std::vector<std::atomic<int>> hits(64);
  auto body = [&](size_t i) {
    uint32_t have;
    while ((have = ready.load(std::memory_order_acquire)) <= i) ready.wait(have);
    hits[i].fetch_add(1);
  };
  {
    PoolRun run(hits.size(), 2, FnRef<void(size_t)>(body));
    for (uint32_t i = 1; i <= hits.size(); ++i) {  // released one index at a time, as a batch's texts are converted
      ready.store(i, std::memory_order_release);
      ready.notify_all();
    }
    run.Wait();
    run.Wait();  // a second wait returns at once
  }
  bool once = true;
  for (auto& h : hits) once = once && h.load() == 1;
  CHECK(once);
  auto failing = [](size_t i) {
    if (i == 5) throw tokmeter::Error("ERR_Z", "index 5");
  };
  PoolRun bad(20, 2, FnRef<void(size_t)>(failing));
  CHECK_THROWS_CODE(bad.Wait(), "ERR_Z");
  std::atomic<int> running{0}, ran{0};
  auto slow = [&](size_t) {
    running.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    ran.fetch_add(1);
    running.fetch_sub(1);
  };
  {
    PoolRun unwaited(30, 2, FnRef<void(size_t)>(slow));
  }
  CHECK_EQ(running.load(), 0);
  CHECK_EQ(ran.load(), 30);
}

#ifdef __linux__
// When the woken helpers and the caller outnumber the CPUs, each helper starts on a CPU of its own (the caller's
// last), and runs with its whole affinity back. Without the placement, Linux sometimes queued a second helper
// behind the first on one CPU for a whole batch while the caller's CPU stood idle. Here the caller keeps its CPU
// busy while the helpers wake (as the JS thread does while it copies a batch's texts), and each item holds its
// helper until every helper has started one, so a helper queued behind another shows up on the other's CPU.
TEST(woken_helpers_start_on_cpus_of_their_own) {
  cpu_set_t home;
  CPU_ZERO(&home);
  CHECK_EQ(sched_getaffinity(0, sizeof home, &home), 0);
  const int cpus = CPU_COUNT(&home);
  if (cpus < 2 || cpus > 63) return;  // one CPU: nothing to place; more than the pool's helpers: never placed
  const auto n = static_cast<size_t>(cpus);
  int apart = 0;
  constexpr int kRounds = 30;
  for (int round = 0; round < kRounds; ++round) {
    std::mutex mu;
    std::vector<int> where;
    bool whole_affinity = true;
    auto body = [&](size_t) {
      const int cpu = sched_getcpu();
      cpu_set_t mine;
      CPU_ZERO(&mine);
      const bool whole = sched_getaffinity(0, sizeof mine, &mine) == 0 && CPU_EQUAL(&mine, &home);
      {
        std::lock_guard<std::mutex> lock(mu);
        where.push_back(cpu);
        whole_affinity = whole_affinity && whole;
      }
      for (int k = 0; k < 20000; ++k) {  // up to 20 s on a loaded machine
        {
          std::lock_guard<std::mutex> lock(mu);
          if (where.size() == n) break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    };
    PoolRun run(n, static_cast<unsigned>(n), FnRef<void(size_t)>(body));
    const auto busy_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
    while (std::chrono::steady_clock::now() < busy_until) {
    }
    run.Wait();
    CHECK(whole_affinity);
    CHECK_EQ(where.size(), n);
    apart += std::set<int>(where.begin(), where.end()).size() == n ? 1 : 0;
  }
  // Placement decides where a helper starts; a helper that has started may still be moved by the scheduler before
  // it reads its CPU, so a rare round is allowed to see two on one CPU.
  CHECK(apart >= kRounds - 2);
}

// A child forked without exec has only the forking thread. Its batches get helpers of their own: before, it waited
// forever on the parent's (it dies here by alarm after 30 s, which fails the check).
TEST(a_forked_child_gets_helpers_of_its_own) {
  std::atomic<long> sum{0};
  auto body = [&](size_t i) { sum.fetch_add(static_cast<long>(i)); };
  ParallelForOnPool(1000, 2, FnRef<void(size_t)>(body));  // the parent's helpers exist and are idle
  CHECK_EQ(sum.load(), 1000L * 999 / 2);
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(30);
    std::atomic<long> child_sum{0};
    auto child_body = [&](size_t i) { child_sum.fetch_add(static_cast<long>(i)); };
    ParallelForOnPool(1000, 2, FnRef<void(size_t)>(child_body));
    PoolRun run(500, 2, FnRef<void(size_t)>(child_body));
    run.Wait();
    _exit(child_sum.load() == 1000L * 999 / 2 + 500L * 499 / 2 ? 0 : 1);
  }
  CHECK(pid > 0);
  int status = 0;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  sum = 0;
  ParallelForOnPool(1000, 2, FnRef<void(size_t)>(body));  // the parent's pool is as it was
  CHECK_EQ(sum.load(), 1000L * 999 / 2);
}
#endif

int main() { return tt::RunAll(); }
