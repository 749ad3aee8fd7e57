// KV capacity and budget — the one place these rules are written (the engine, the scheduler and the generator all
// call these; nothing else computes them).
//
// Capacity: the KV tokens a generation's sequence may ever hold — the prompt plus every sampled token but the last
// (the last is never fed back) — so prompt + maxNewTokens within the context, or the whole context without
// maxNewTokens (0). Never 0.
// Reservation: what `sequences` running generations are charged when the largest capacity among them is
// `capacity`: 2 x kvBytesPerToken x sequences x capacity, exactly the running batch's two ping-pong halves with
// every row padded to the longest (batch_kv.h).
// Budget: kvCacheBytes when given, else 256 MiB raised to one full-context generation's reservation
// (2 x context x kvBytesPerToken) when that is larger, so a lone request is never refused by default. The prefix
// cache may hold at most prefixCacheBytes of it (0: all of it), and never more than the running generations leave.
// Plain functions, no state; any thread.
#pragma once

#include <algorithm>
#include <cstddef>

namespace tokmeter::engine {

// Default KV budget (kvCacheBytes 0): 256 MiB, raised to one full-context generation when that needs more.
inline constexpr size_t kDefaultKvBudget = size_t{256} << 20;

inline size_t KvCapacity(size_t contextLength, size_t promptTokens, size_t maxNewTokens) noexcept {
  size_t capacity = contextLength;
  if (maxNewTokens > 0) capacity = std::min(contextLength, promptTokens + maxNewTokens);
  return std::max<size_t>(capacity, 1);
}

inline size_t KvReservation(size_t kvBytesPerToken, size_t sequences, size_t capacity) noexcept {
  return 2 * kvBytesPerToken * sequences * capacity;
}

inline size_t KvBudget(size_t requestedBytes, size_t contextLength, size_t kvBytesPerToken) noexcept {
  if (requestedBytes > 0) return requestedBytes;
  return std::max(kDefaultKvBudget, KvReservation(kvBytesPerToken, 1, contextLength));
}

// The prefix cache's own bound within `budget`.
inline size_t PrefixCacheBound(size_t budget, size_t prefixCacheBytes) noexcept {
  return prefixCacheBytes > 0 ? std::min(prefixCacheBytes, budget) : budget;
}

}  // namespace tokmeter::engine
