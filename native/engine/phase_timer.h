// Phase timing for ForwardTimings (language_model.h): wall time, count and the calling thread's minor page faults
// (first touches of fresh anonymous memory count there) of a scope. Two clock reads and two getrusage calls (about
// a microsecond), cheap next to any phase it measures.
#pragma once

#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdint>

#include "engine/language_model.h"

namespace tokmeter::engine {

inline uint64_t SinceNanos(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
}

// CPU time of the calling thread so far (well under a microsecond per call).
inline uint64_t ThreadCpuNanos() noexcept {
  timespec t{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return 0;
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

// Minor page faults of the calling thread so far.
inline uint64_t ThreadMinorFaults() noexcept {
  rusage usage{};
  return getrusage(RUSAGE_THREAD, &usage) == 0 ? static_cast<uint64_t>(usage.ru_minflt) : 0;
}

// Adds the scope's wall time and page faults to `counter`; a null counter (a model that measures nothing) is skipped.
class PhaseTimer {
 public:
  explicit PhaseTimer(PhaseCounter* counter)
      : counter_(counter),
        start_(counter ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}),
        faults_(counter ? ThreadMinorFaults() : 0) {}
  explicit PhaseTimer(PhaseCounter& counter) : PhaseTimer(&counter) {}
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;
  ~PhaseTimer() {
    if (!counter_) return;
    counter_->nanos += SinceNanos(start_);
    counter_->count += 1;
    counter_->pageFaults += ThreadMinorFaults() - faults_;
  }

 private:
  PhaseCounter* counter_;
  std::chrono::steady_clock::time_point start_;
  uint64_t faults_;
};

}  // namespace tokmeter::engine
