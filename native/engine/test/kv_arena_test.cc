// The KV arena (kv_arena.h): page-aligned blocks inside its one region, first fit from the lowest address, reuse
// after free, exhaustion (TryAllocate null, Allocate spills to upstream, bad_alloc when upstream refuses too),
// fragmentation and coalescing, random alloc/free against a model of the region, the prefix cache evicting to make
// room in a fragmented region, and KV data moved through it. Every test runs over host memory and over fenced memory
// (fenced_memory.h), where any host access to the region outside KvMemory's copies faults: the arena's bookkeeping
// never touches the memory it manages.
#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "engine/kv_arena.h"
#include "engine/kv_cache.h"
#include "engine/prefix_cache.h"
#include "fenced_memory.h"
#include "test/test_util.h"

using namespace tokmeter::engine;

namespace {

constexpr size_t kPage = 4096;  // test sizes in whole pages (a multiple of the arena's alignment)

// An upstream that refuses blocks once `limit` bytes are live (a host or device that is out of memory).
class LimitedMemory final : public KvMemory {
 public:
  LimitedMemory(KvMemory& inner, size_t limit) : inner_(inner), limit_(limit) {}
  bool host() const noexcept override { return inner_.host(); }
  uint8_t* Allocate(size_t bytes) override {
    if (live_ + bytes > limit_) throw std::bad_alloc();
    uint8_t* p = inner_.Allocate(bytes);
    sizes_[p] = bytes;
    live_ += bytes;
    return p;
  }
  void Free(uint8_t* data) noexcept override {
    auto it = sizes_.find(data);
    if (it == sizes_.end()) return;
    live_ -= it->second;
    sizes_.erase(it);
    inner_.Free(data);
  }
  void Copy2D(uint8_t* dst, size_t dstPitch, const uint8_t* src, size_t srcPitch, size_t width,
              size_t height) override {
    inner_.Copy2D(dst, dstPitch, src, srcPitch, width, height);
  }
  void Zero2D(uint8_t* dst, size_t pitch, size_t width, size_t height) override {
    inner_.Zero2D(dst, pitch, width, height);
  }
  size_t live() const noexcept { return live_; }

 private:
  KvMemory& inner_;
  size_t limit_;
  size_t live_ = 0;
  std::map<uint8_t*, size_t> sizes_;
};

TEST(blocks_are_aligned_disjoint_and_inside_the_region) {
  constexpr size_t kA = KvArena::kAlignment;
  KvArena arena(*et::kv_memory, 16 * kPage + kA + 10);  // rounded down to the alignment
  CHECK_EQ(arena.stats().capacity, 16 * kPage + kA);
  uint8_t* a = arena.Allocate(1);
  uint8_t* b = arena.Allocate(kPage + 1);
  uint8_t* c = arena.Allocate(0);
  CHECK(arena.Owns(a) && arena.Owns(b) && arena.Owns(c));
  CHECK_EQ(reinterpret_cast<uintptr_t>(b) % kA, uintptr_t{0});
  CHECK_EQ(b - a, static_cast<ptrdiff_t>(kA));  // first fit from the lowest address
  CHECK_EQ(c - b, static_cast<ptrdiff_t>(kPage + kA));
  const KvArenaStats s = arena.stats();
  CHECK_EQ(s.used, kPage + 3 * kA);
  CHECK_EQ(s.blocks, size_t{3});
  CHECK_EQ(s.allocations, uint64_t{3});
  CHECK_EQ(s.largestFree, 15 * kPage - 2 * kA);
  CHECK(s.touched >= s.used);  // what was handed out has been made resident
  arena.Free(a);
  arena.Free(b);
  arena.Free(c);
  CHECK_EQ(arena.stats().used, size_t{0});
  CHECK_EQ(arena.stats().peak, kPage + 3 * kA);
  CHECK_EQ(arena.stats().largestFree, 16 * kPage + kA);  // coalesced back into one run
}

TEST(a_freed_block_is_reused_not_fresh_memory) {
  KvArena arena(*et::kv_memory, 64 * kPage);
  uint8_t* first = arena.Allocate(10 * kPage);
  const size_t touched = arena.stats().touched;
  arena.Free(first);
  for (int i = 0; i < 5; ++i) {  // a request after request of the same size: the same pages every time
    uint8_t* again = arena.Allocate(10 * kPage);
    CHECK(again == first);
    arena.Free(again);
  }
  CHECK_EQ(arena.stats().touched, touched);
  CHECK_EQ(arena.stats().spills, uint64_t{0});
}

TEST(exhaustion_try_allocate_misses_allocate_spills_upstream_refusal_throws) {
  LimitedMemory upstream(*et::kv_memory, 12 * kPage);
  KvArena arena(upstream, 8 * kPage);
  uint8_t* a = arena.Allocate(6 * kPage);
  CHECK(arena.TryAllocate(3 * kPage) == nullptr);
  CHECK_EQ(arena.stats().misses, uint64_t{1});
  uint8_t* spilled = arena.Allocate(3 * kPage);  // no free run fits: upstream serves it
  CHECK(spilled != nullptr && !arena.Owns(spilled));
  CHECK_EQ(arena.stats().spills, uint64_t{1});
  CHECK_EQ(arena.stats().spilledBytes, 3 * kPage);
  bool threw = false;
  try {
    arena.Allocate(4 * kPage);  // neither the region nor upstream (8 + 3 of 12 pages live) has room
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK(threw);
  CHECK_EQ(arena.stats().used, 6 * kPage);  // a failed allocation changes nothing
  arena.Free(spilled);
  CHECK_EQ(arena.stats().spilledBytes, size_t{0});
  CHECK_EQ(upstream.live(), 8 * kPage + KvArena::kAlignment);  // only the region (with its alignment slack) is left
  uint8_t* b = arena.Allocate(2 * kPage);                      // the region's tail still serves what fits
  CHECK(arena.Owns(b));
  arena.Free(a);
  arena.Free(b);
}

TEST(fragmentation_and_coalescing) {
  KvArena arena(*et::kv_memory, 8 * kPage);
  uint8_t* a = arena.Allocate(2 * kPage);
  uint8_t* b = arena.Allocate(2 * kPage);
  uint8_t* c = arena.Allocate(2 * kPage);
  uint8_t* d = arena.Allocate(2 * kPage);
  CHECK(arena.TryAllocate(1) == nullptr);
  arena.Free(b);
  arena.Free(d);
  // 4 pages free, but in two runs of 2: a 3-page block does not fit.
  CHECK_EQ(arena.stats().largestFree, 2 * kPage);
  CHECK(arena.TryAllocate(3 * kPage) == nullptr);
  uint8_t* small = arena.TryAllocate(kPage);  // the lowest run that fits: b's
  CHECK(small == b);
  arena.Free(small);
  arena.Free(c);  // b, c and d coalesce into one run of 6
  CHECK_EQ(arena.stats().largestFree, 6 * kPage);
  uint8_t* big = arena.TryAllocate(6 * kPage);
  CHECK(big == b);
  arena.Free(a);
  arena.Free(big);
  CHECK_EQ(arena.stats().largestFree, 8 * kPage);
  CHECK_EQ(arena.stats().blocks, size_t{0});
}

TEST(random_allocations_never_overlap_and_all_coalesce_at_the_end) {
  constexpr size_t kA = KvArena::kAlignment;
  constexpr size_t kBytes = 256 * kPage;
  KvArena arena(*et::kv_memory, kBytes);
  std::mt19937 rng(7);
  std::map<uint8_t*, size_t> live;  // block -> its length (the request rounded up to the alignment)
  size_t used = 0;
  for (int step = 0; step < 4000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      const size_t bytes = 1 + rng() % (24 * kPage);
      const size_t length = (bytes + kA - 1) / kA * kA;
      uint8_t* p = arena.TryAllocate(bytes);
      if (p == nullptr) {
        CHECK(arena.stats().largestFree < length);  // a miss only when no run fits
        continue;
      }
      CHECK(arena.Owns(p) && arena.Owns(p + length - 1));
      auto next = live.lower_bound(p);
      if (next != live.end()) CHECK(p + length <= next->first);
      if (next != live.begin()) {
        auto prev = std::prev(next);
        CHECK(prev->first + prev->second <= p);
      }
      live[p] = length;
      used += length;
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      arena.Free(it->first);
      used -= it->second;
      live.erase(it);
    }
    CHECK_EQ(arena.stats().used, used);
    CHECK(arena.stats().used <= arena.stats().capacity);
  }
  for (auto& [p, length] : live) arena.Free(p);
  CHECK_EQ(arena.stats().largestFree, kBytes);
  CHECK_EQ(arena.stats().spills, uint64_t{0});
}

GraphSpec Spec() {
  GraphSpec s;
  s.numLayers = 2;  // 4 tensors
  s.numKvHeads = 2;
  s.headDim = 256;  // 1 KiB per head and position (fp32): one token of KV is 8 KiB, two pages
  s.vocabSize = 100;
  s.kvDtype = DType::kFloat32;
  return s;
}
constexpr size_t kBytesPerToken = 4 * 2 * 256 * sizeof(float);

void Prefill(KvCache& cache, const std::vector<uint32_t>& tokens) {
  et::Direct direct;
  const size_t n = tokens.size();
  for (size_t t = 0; t < cache.tensorCount(); ++t) {
    auto* out = static_cast<float*>(cache.present(t));
    for (size_t h = 0; h < 2; ++h)
      for (size_t p = 0; p < n; ++p)
        for (size_t d = 0; d < 256; ++d) out[(h * n + p) * 256 + d] = static_cast<float>(t * 1000 + tokens[p] + d);
  }
  cache.Advance(n);
}

TEST(prefix_cache_evicts_to_make_room_in_the_region_and_round_trips_kv) {
  // The cache's own budget allows 5 entries of 4 tokens (32 KiB each), but the region (160 KiB) also holds the
  // sequence being stored (64 KiB: two halves of 4 tokens): from the 4th store on, an entry finds no free run and
  // the oldest entries make room. Nothing spills outside the region.
  KvArena arena(*et::kv_memory, 5 * 4 * kBytesPerToken);
  PrefixCache cache(5 * 4 * kBytesPerToken, arena);
  for (uint32_t i = 0; i < 6; ++i) {
    KvCache seq(Spec(), 4, arena);
    const std::vector<uint32_t> prompt = {10 * i + 1, 10 * i + 2, 10 * i + 3, 10 * i + 4};
    Prefill(seq, prompt);
    cache.Store(seq, prompt);
  }
  const PrefixCacheStats s = cache.stats();
  CHECK_EQ(s.stored, uint64_t{6});
  CHECK_EQ(s.entries, size_t{3});
  CHECK_EQ(s.evictions, uint64_t{3});
  CHECK_EQ(s.noMemory, uint64_t{0});
  CHECK_EQ(arena.stats().spills, uint64_t{0});
  CHECK_EQ(arena.stats().peak, arena.stats().capacity);
  // The newest entry's KV comes back exactly through the arena; the oldest is gone.
  KvCache reader(Spec(), 4, arena);
  CHECK_EQ(cache.Load(reader, std::vector<uint32_t>{51, 52, 53, 77}), size_t{3});
  {
    et::Direct direct;
    const auto* past = static_cast<const float*>(reader.past(1));
    CHECK_EQ(past[(1 * 3 + 2) * 256 + 5], static_cast<float>(1000 + 53 + 5));
  }
  KvCache other(Spec(), 4, arena);
  CHECK_EQ(cache.Load(other, std::vector<uint32_t>{1, 2, 3, 4}), size_t{0});
  // A prompt whose KV cannot fit even with every entry evicted is not kept (the request is unaffected).
  KvArena small(*et::kv_memory, 10 * kBytesPerToken);
  PrefixCache tight(64 * kBytesPerToken, small);
  KvCache seq(Spec(), 4, small);  // 8 tokens of the region's 10
  Prefill(seq, {1, 2, 3, 4});
  tight.Store(seq, std::vector<uint32_t>{1, 2, 3, 4});
  CHECK_EQ(tight.stats().noMemory, uint64_t{1});
  CHECK_EQ(tight.stats().entries, size_t{0});
}

TEST(prefault_keeps_contents_and_prefault_all_touches_the_whole_region) {
  KvArena arena(*et::kv_memory, 32 * kPage);
  uint8_t* block = arena.Allocate(3 * kPage);
  {
    et::Direct direct;
    std::memset(block, 0x5a, 3 * kPage);
  }
  arena.PrefaultAll();
  CHECK_EQ(arena.stats().touched, 32 * kPage);
  if (et::kv_memory->host()) {
    // Host prefaulting (madvise, or a read-and-write per page) must not change what a live block holds.
    et::kv_memory->Prefault(block, 3 * kPage);
    bool same = true;
    for (size_t i = 0; i < 3 * kPage; ++i) same = same && block[i] == 0x5a;
    CHECK(same);
  }
  arena.Free(block);
}

}  // namespace

int main() { return et::RunOverBothMemories(); }
