// BigAlloc: a std allocator for the multi-megabyte tables a tokenizer builds at load time (token strings, hash
// tables, merges), backed by transparent huge pages where the platform has them.
//
// Contract: a drop-in std::allocator<T> replacement (stateless, all instances equal, any thread). Requests of at
// least kBigBytes on Linux are their own 2 MiB-aligned anonymous mapping with madvise(MADV_HUGEPAGE); smaller ones,
// other platforms use operator new. A failed mmap throws std::bad_alloc. Memory goes back to the system on deallocate.
//
// Performance notes (bench/tokenize/README.md, Loading): first-touch page faults were the largest single cost of
// loading a 200k-token tokenizer.json (~50 MB of tables). Measured on the 2-core dev VM: faulting 16 MB in 4 KiB
// pages 52 ms, with MAP_POPULATE 29 ms, as 2 MiB pages 1.1 ms (the kernel's THP mode is "madvise" there, the
// common default; with THP "never" this is a plain mmap and nothing is lost). Rejected: MAP_POPULATE (still 4 KiB
// pages, half the cost); not done: a process-wide pool of tables (memory held after dispose). Side effect: these
// tables no longer pass through malloc, so freeing them no longer raises glibc's dynamic mmap threshold, which had let
// later big mallocs (node's read buffer of the next tokenizer.json) reuse heap pages (README, qwen3 row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tokmeter::tokenizer {

inline constexpr size_t kBigBytes = size_t{1} << 20;

#if defined(__linux__)
inline constexpr size_t kHugePage = size_t{2} << 20;
inline size_t BigMappingSize(size_t bytes) { return (bytes + kHugePage - 1) & ~(kHugePage - 1); }

// A kHugePage-aligned mapping of BigMappingSize(bytes), or nullptr.
inline void* BigMap(size_t bytes) {
  const size_t size = BigMappingSize(bytes);
  void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (aligned > begin) munmap(raw, aligned - begin);
  const uintptr_t tail = aligned + size, end = begin + size + kHugePage;
  if (end > tail) munmap(reinterpret_cast<void*>(tail), end - tail);
  madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // advice only: failure changes nothing
  return reinterpret_cast<void*>(aligned);
}
#endif

template <class T>
struct BigAlloc {
  using value_type = T;
  BigAlloc() noexcept = default;
  template <class U>
  BigAlloc(const BigAlloc<U>&) noexcept {}

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
#if defined(__linux__)
    if (n * sizeof(T) >= kBigBytes) {
      if (void* p = BigMap(n * sizeof(T))) return static_cast<T*>(p);
      throw std::bad_alloc();
    }
#endif
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{alignof(T)}));
  }
  void deallocate(T* p, size_t n) noexcept {
#if defined(__linux__)
    if (n * sizeof(T) >= kBigBytes) {
      munmap(p, BigMappingSize(n * sizeof(T)));
      return;
    }
#endif
    ::operator delete(p, std::align_val_t{alignof(T)});
  }
  template <class U>
  bool operator==(const BigAlloc<U>&) const noexcept {
    return true;
  }
};

// Token strings by id, in huge pages (see above).
using TokenStrings = std::vector<std::string, BigAlloc<std::string>>;
template <class T>
using BigVector = std::vector<T, BigAlloc<T>>;
using BigString = std::basic_string<char, std::char_traits<char>, BigAlloc<char>>;

}  // namespace tokmeter::tokenizer
