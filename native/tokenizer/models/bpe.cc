// BPE with the reference's exact merge order: a min-heap of (rank, position) over a linked list of symbols, so a
// word of n symbols costs O(n log n), never O(n^2) (a 1 MB run without split points is one word).
//
// Performance notes: pair lookups use an open-addressing table keyed by (left id, right id); short words go
// through a per-thread cache (ModelScratch::cache). Rejected: a naive "scan for the lowest pair" loop for short
// words: it differs from the reference in the rare case where two pairs merge into the same token.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <functional>

#include "tokenizer/models/model.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {
namespace {

// A 4-ary min-heap of uint64 in a caller-owned vector: half the depth of a binary heap and children packed in one
// cache line, for the 1M-entry heaps of pathological words (1 MB of 'a' with o200k: 5.5 -> 5.9 MB/s over
// std::push_heap/pop_heap with 12-byte entries).
struct QuadHeap {
  std::vector<uint64_t>& v;
  void Build() {
    if (v.size() < 2) return;
    for (size_t i = (v.size() - 2) / 4 + 1; i-- > 0;) Down(i);
  }
  void Push(uint64_t x) {
    size_t i = v.size();
    v.push_back(x);
    while (i > 0) {
      size_t p = (i - 1) / 4;
      if (v[p] <= x) break;
      v[i] = v[p];
      i = p;
    }
    v[i] = x;
  }
  uint64_t Pop() {
    uint64_t top = v[0];
    uint64_t last = v.back();
    v.pop_back();
    if (!v.empty()) {
      v[0] = last;
      Down(0);
    }
    return top;
  }
  void Down(size_t i) {
    const size_t n = v.size();
    uint64_t x = v[i];
    for (;;) {
      size_t c = 4 * i + 1;
      if (c >= n) break;
      size_t best = c;
      size_t end = c + 4 < n ? c + 4 : n;
      for (size_t k = c + 1; k < end; ++k)
        if (v[k] < v[best]) best = k;
      if (v[best] >= x) break;
      v[i] = v[best];
      i = best;
    }
    v[i] = x;
  }
};

constexpr uint32_t kNone = 0xFFFFFFFFu;

uint64_t NextModelUid() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

class PairMap {
 public:
  struct Slot {
    uint64_t key;
    uint32_t rank, new_id;
  };
  void Reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, 0, 0});
    mask_ = cap - 1;
  }
  // Inserts or overwrites (the reference builds a HashMap from the merges list: a later duplicate wins).
  void Put(uint32_t a, uint32_t b, uint32_t rank, uint32_t new_id) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    uint64_t k = Key(a, b);
    size_t i = Hash(k);
    while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask_;
    if (slots_[i].key == kEmpty) ++size_;
    slots_[i] = Slot{k, rank, new_id};
  }
  size_t size() const { return size_; }
  const Slot* Find(uint32_t a, uint32_t b) const {
    uint64_t k = Key(a, b);
    size_t i = Hash(k);
    for (;;) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s;
      if (s.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ULL;
  static uint64_t Key(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }
  size_t Hash(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ULL) >> 20) & mask_; }
  void Grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    size_t cap = old.empty() ? 16 : old.size() * 2;
    slots_.assign(cap, Slot{kEmpty, 0, 0});
    mask_ = cap - 1;
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = Hash(s.key);
      while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

class Bpe final : public Model {
 public:
  Bpe(const ModelSpec& spec, const std::vector<std::pair<uint32_t, uint32_t>>& merges,
      const std::vector<std::string>& keys, const TokenMap& map, bool byte_level)
      : map_(map),
        byte_level_(byte_level),
        ignore_merges_(spec.ignore_merges),
        byte_fallback_(spec.byte_fallback),
        fuse_unk_(spec.fuse_unk),
        unk_(spec.unk_id ? *spec.unk_id : kNone) {
    unit_ids_.fill(kNone);
    fallback_ids_.fill(kNone);
    for (int b = 0; b < 256; ++b) {
      char c = static_cast<char>(b);
      if (byte_level_ || b < 0x80) {
        unit_ids_[b] = map_.Find(std::string_view(&c, 1));
      }
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      fallback_ids_[b] = map_.Find(std::string_view(hex));
    }
    if (spec.merges_from_ranks) {
      // tiktoken: any adjacent pair whose concatenation is a token merges, the lowest-ranked (= id) first. No pair
      // table: the concatenation is looked up in the vocabulary when needed (see Lookup).
      from_ranks_ = true;
    } else {
      merges_.Reserve(merges.size());
      rank_new_id_.reserve(merges.size());
      std::string cat;
      for (size_t r = 0; r < merges.size(); ++r) {
        auto [a, b] = merges[r];
        if (a >= keys.size() || b >= keys.size())
          throw tokmeter::Error("ERR_TOKENIZER_SPEC", "model.merges[" + std::to_string(r) + "]: id out of range");
        cat.assign(keys[a]).append(keys[b]);
        uint32_t merged = map_.Find(std::string_view(cat));
        if (merged == kNone)
          throw tokmeter::Error("ERR_TOKENIZER_SPEC",
                                "model.merges[" + std::to_string(r) + "]: merged token is not in the vocabulary");
        merges_.Put(a, b, static_cast<uint32_t>(r), merged);
        rank_new_id_.push_back(merged);
      }
    }
  }

  void Tokenize(std::string_view word, ModelScratch& s, IdSink& sink) const override {
    if (word.empty()) return;
    if (word.size() == 1 && unit_ids_[static_cast<unsigned char>(word[0])] != kNone) {
      sink.Push(unit_ids_[static_cast<unsigned char>(word[0])]);
      return;
    }
    if (ignore_merges_) {
      uint32_t id = map_.Find(word);
      if (id != kNone) {
        sink.Push(id);
        return;
      }
    }
    constexpr size_t kMaxCached = 48;
    bool cacheable = word.size() <= kMaxCached;
    if (cacheable) {
      if (s.cache_owner != uid_) {
        s.cache.clear();
        s.cache_ids.clear();
        s.cache_owner = uid_;
      }
      s.word.assign(word);
      auto it = s.cache.find(s.word);
      if (it != s.cache.end()) {
        for (uint32_t k = 0; k < it->second.second; ++k) sink.Push(s.cache_ids[it->second.first + k]);
        return;
      }
    }
    Split(word, s);
    Merge(word, s);
    struct Release {  // a pathological word must not pin tens of MB per thread
      ModelScratch& s;
      ~Release() {
        if (s.symbols.capacity() > (1u << 20)) std::vector<BpeSymbol>().swap(s.symbols);
        if (s.heap.capacity() > (1u << 20)) std::vector<uint64_t>().swap(s.heap);
      }
    } release{s};
    uint32_t start = static_cast<uint32_t>(s.cache_ids.size());
    uint32_t n = 0;
    for (int32_t i = s.symbols.empty() ? -1 : 0; i != -1; i = s.symbols[i].next) {
      sink.Push(s.symbols[i].id);
      if (cacheable) s.cache_ids.push_back(s.symbols[i].id);
      ++n;
    }
    if (cacheable) {
      if (s.cache.size() > 65536) {
        s.cache.clear();
        s.cache_ids.erase(s.cache_ids.begin(), s.cache_ids.begin() + start);
        start = 0;
      }
      s.cache.emplace(s.word, std::make_pair(start, n));
    }
  }

 private:
  void Add(ModelScratch& s, uint32_t id, uint32_t len) const {
    int32_t i = static_cast<int32_t>(s.symbols.size());
    uint32_t start = 0;
    if (i > 0) {
      s.symbols.back().next = i;
      start = s.symbols.back().start + s.symbols.back().len;
    }
    s.symbols.push_back({id, i - 1, -1, len, start});
  }

  struct Found {
    uint32_t rank, new_id;
    bool ok;
  };
  // The merge of symbols x and y (adjacent, x before y), through the per-thread pair cache: the result depends on
  // the two ids only (for tiktoken, the concatenation of their bytes). Repetitive text hits the cache almost
  // always; a vocabulary-table probe is a cache miss on a 200k-token table.
  Found Lookup(std::string_view word, const BpeSymbol& x, const BpeSymbol& y, ModelScratch& s) const {
    constexpr size_t kCacheSize = 1 << 16;
    if (s.pair_cache_owner != uid_) {
      s.pair_cache.assign(kCacheSize, ModelScratch::PairCacheEntry{});
      s.pair_cache_owner = uid_;
    }
    uint64_t key = (uint64_t{x.id} << 32) | y.id;
    auto& e = s.pair_cache[((key * 0x9E3779B97F4A7C15ULL) >> 40) & (kCacheSize - 1)];
    if (e.key == key) return Found{e.rank, e.new_id, e.new_id != kNone};
    Found f = LookupUncached(word, x, y);
    e.key = key;
    e.rank = f.rank;
    e.new_id = f.ok ? f.new_id : kNone;
    return f;
  }

  Found LookupUncached(std::string_view word, const BpeSymbol& x, const BpeSymbol& y) const {
    if (from_ranks_) {
      uint32_t id = map_.Find(word.substr(x.start, x.len + y.len));
      return {id, id, id != kNone};
    }
    const auto* m = merges_.Find(x.id, y.id);
    return m ? Found{m->rank, m->new_id, true} : Found{0, 0, false};
  }

  // Initial symbols, with unknown/byte-fallback handling exactly as the reference's merge_word.
  void Split(std::string_view w, ModelScratch& s) const {
    s.symbols.clear();
    s.symbols.reserve(w.size());
    uint32_t unk_id = kNone, unk_len = 0;
    size_t i = 0;
    while (i < w.size()) {
      unsigned char b0 = static_cast<unsigned char>(w[i]);
      size_t n = byte_level_ ? 1 : utf8::SeqLen(b0);
      if (i + n > w.size()) n = w.size() - i;
      uint32_t id = n == 1 ? unit_ids_[b0] : kNone;
      if (id == kNone && n > 1) id = map_.Find(w.substr(i, n));
      if (id != kNone) {
        if (unk_id != kNone) {
          Add(s, unk_id, unk_len);
          unk_id = kNone;
        }
        Add(s, id, static_cast<uint32_t>(n));
      } else {
        bool done = false;
        if (byte_fallback_) {
          bool all = true;
          for (size_t k = 0; k < n; ++k) all = all && fallback_ids_[static_cast<unsigned char>(w[i + k])] != kNone;
          if (all) {
            for (size_t k = 0; k < n; ++k) Add(s, fallback_ids_[static_cast<unsigned char>(w[i + k])], 1);
            done = true;
          }
        }
        if (!done && unk_ != kNone) {
          if (unk_id != kNone && fuse_unk_) {
            unk_len += static_cast<uint32_t>(n);
          } else {
            if (unk_id != kNone) Add(s, unk_id, unk_len);
            unk_id = unk_;
            unk_len = static_cast<uint32_t>(n);
          }
        }
      }
      i += n;
    }
    if (unk_id != kNone) Add(s, unk_id, unk_len);
  }

  // Heap entries are (rank << 32 | position); the merged id of an entry is rank_new_id_[rank] (tiktoken: the rank
  // itself), so an entry is current exactly when the pair now at its position merges into that id — the
  // reference's staleness rule — with 8-byte entries instead of 12.
  uint32_t NewIdOfRank(uint32_t rank) const { return from_ranks_ ? rank : rank_new_id_[rank]; }

  void Merge(std::string_view word, ModelScratch& s) const {
    auto& sym = s.symbols;
    auto& heap = s.heap;
    heap.clear();
    if (sym.size() < 2) return;
    heap.reserve(sym.size() * 2);  // initial pairs plus the pushes of the first merges, without regrowth copies
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      Found f = Lookup(word, sym[i], sym[i + 1], s);
      if (f.ok) heap.push_back((uint64_t{f.rank} << 32) | i);
    }
    QuadHeap q{heap};
    q.Build();
    while (!heap.empty()) {
      uint64_t top = q.Pop();
      uint32_t pos = static_cast<uint32_t>(top);
      uint32_t new_id = NewIdOfRank(static_cast<uint32_t>(top >> 32));
      BpeSymbol& cur = sym[pos];
      if (cur.len == 0 || cur.next == -1) continue;
      int32_t nx = cur.next;
      Found m = Lookup(word, cur, sym[nx], s);
      if (!m.ok || m.new_id != new_id) continue;
      cur.id = new_id;
      cur.len += sym[nx].len;
      cur.next = sym[nx].next;
      sym[nx].len = 0;
      if (cur.next != -1) sym[cur.next].prev = static_cast<int32_t>(pos);
      if (cur.prev >= 0) {
        Found pm = Lookup(word, sym[cur.prev], cur, s);
        if (pm.ok) {
          q.Push((uint64_t{pm.rank} << 32) | static_cast<uint32_t>(cur.prev));
        }
      }
      if (cur.next != -1) {
        Found nm = Lookup(word, cur, sym[cur.next], s);
        if (nm.ok) {
          q.Push((uint64_t{nm.rank} << 32) | pos);
        }
      }
    }
  }

  const TokenMap& map_;
  bool byte_level_, ignore_merges_, byte_fallback_, fuse_unk_;
  uint32_t unk_;
  std::array<uint32_t, 256> unit_ids_;
  std::array<uint32_t, 256> fallback_ids_;
  PairMap merges_;
  bool from_ranks_ = false;
  std::vector<uint32_t> rank_new_id_;  // merges mode: rank -> merged id
  uint64_t uid_ = NextModelUid();
};

}  // namespace

std::unique_ptr<Model> MakeBpe(const ModelSpec& spec, const std::vector<std::pair<uint32_t, uint32_t>>& merges,
                               const std::vector<std::string>& keys, const TokenMap& map, bool byte_level) {
  return std::make_unique<Bpe>(spec, merges, keys, map, byte_level);
}

}  // namespace tokmeter::tokenizer
