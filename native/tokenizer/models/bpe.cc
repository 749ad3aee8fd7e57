// BPE with the reference's exact merge order (lowest rank first, leftmost first within a rank) over a linked list of
// symbols: a min-heap of (rank, position) for short words; for long ones (>= 256 symbols) rank buckets merged rank
// by rank (MergeByRank), near-linear, never O(n^2) (a 1 MB run without split points is one word).
//
// Performance notes: pair lookups use an open-addressing table keyed by (left id, right id); short words go
// through a per-thread cache: first a direct-mapped table of 128-byte entries (ModelScratch::word_cache, words up to
// 56 bytes with up to 12 ids; up to 24 bytes and 4 ids read from one cache line), checked before the vocabulary probe
// of ignore_merges (a whole-token word was two cache misses on multi-MB tables per piece; cl100k count on the bench
// corpus: ~5-10% more MB per CPU-second), then an open-addressing table of all short words (ModelScratch::cache),
// which catches what the direct-mapped slots evict (with the direct table alone, 5% of words missed and re-merged:
// slower than before). Rejected: a naive "scan for the lowest pair" loop for short words: it differs from the reference
// in the rare case where two pairs merge into the same token. The rank buckets replaced the heap for long words: with
// 1M-entry heaps every push/pop was a chain of cache misses (1 MB of spaces / random letters: 4.7 MB/s with the heap;
// see bench/tokenize/README.md for the new figures).
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>

#include "tokenizer/json_value.h"
#include "tokenizer/models/model.h"
#include "tokenizer/unicode.h"
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
  void Prefetch(uint32_t a, uint32_t b) const { __builtin_prefetch(&slots_[Hash(Key(a, b))]); }
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
    BigVector<Slot> old;
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
  BigVector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// Rank -> list of pair positions, with a min-heap of the ranks that have a list (MergeByRank). All storage is the
// caller's scratch, reused across words.
class RankLists {
 public:
  explicit RankLists(ModelScratch& s) : s_(s) {
    s_.rank_slots.assign(256, kEmpty);
    s_.rank_queue.clear();
  }
  void Add(uint32_t rank, uint32_t pos) { s_.rank_lists[Index(rank)].push_back(pos); }
  // Takes the lowest queued rank; its positions are swapped into `out`, leaving its list empty.
  bool PopMin(uint32_t& rank, std::vector<uint32_t>& out) {
    auto& q = s_.rank_queue;
    if (q.empty()) return false;
    std::pop_heap(q.begin(), q.end(), std::greater<>());
    rank = q.back();
    q.pop_back();
    out.clear();
    out.swap(s_.rank_lists[Index(rank)]);
    return true;
  }
  // Frees what a pathological word left behind (a 1 MB word must not pin tens of MB per thread).
  void Trim() {
    if (s_.current.capacity() > (1u << 18) || s_.rank_lists.size() > (1u << 14) || s_.rank_slots.size() > (1u << 15)) {
      std::vector<uint32_t>().swap(s_.current);
      std::vector<std::vector<uint32_t>>().swap(s_.rank_lists);
      std::vector<uint32_t>().swap(s_.rank_of_list);
      std::vector<uint64_t>().swap(s_.rank_slots);
      std::vector<uint32_t>().swap(s_.rank_queue);
      return;
    }
    for (uint32_t i = 0; i < used_; ++i)
      if (s_.rank_lists[i].capacity() > (1u << 16)) std::vector<uint32_t>().swap(s_.rank_lists[i]);
  }

 private:
  static constexpr uint64_t kEmpty = ~0ULL;
  static size_t Hash(uint32_t rank) { return static_cast<size_t>((uint64_t{rank} * 0x9E3779B97F4A7C15ULL) >> 32); }
  uint32_t Index(uint32_t rank) {
    if ((used_ + 1) * 2 > s_.rank_slots.size()) Grow();
    size_t mask = s_.rank_slots.size() - 1;
    for (size_t i = Hash(rank) & mask;; i = (i + 1) & mask) {
      uint64_t e = s_.rank_slots[i];
      if (e == kEmpty) {
        uint32_t idx = used_++;
        if (idx == s_.rank_lists.size()) {
          s_.rank_lists.emplace_back();
          s_.rank_of_list.push_back(0);
        }
        s_.rank_lists[idx].clear();
        s_.rank_of_list[idx] = rank;
        s_.rank_slots[i] = (uint64_t{rank} << 32) | idx;
        s_.rank_queue.push_back(rank);
        std::push_heap(s_.rank_queue.begin(), s_.rank_queue.end(), std::greater<>());
        return idx;
      }
      if (static_cast<uint32_t>(e >> 32) == rank) return static_cast<uint32_t>(e);
    }
  }
  void Grow() {
    std::vector<uint64_t> old;
    old.swap(s_.rank_slots);
    s_.rank_slots.assign(old.size() * 2, kEmpty);
    size_t mask = s_.rank_slots.size() - 1;
    for (uint64_t e : old) {
      if (e == kEmpty) continue;
      size_t i = Hash(static_cast<uint32_t>(e >> 32)) & mask;
      while (s_.rank_slots[i] != kEmpty) i = (i + 1) & mask;
      s_.rank_slots[i] = e;
    }
  }
  ModelScratch& s_;
  uint32_t used_ = 0;
};

class Bpe final : public Model {
 public:
  struct Options {
    bool ignore_merges = false, byte_fallback = false, fuse_unk = false, merges_from_ranks = false;
    uint32_t unk = kNone;
    // continuing_subword_prefix / end_of_word_suffix, in the keys' encoding (raw bytes for a byte-level vocabulary).
    std::string prefix, suffix;
  };
  Bpe(const Options& o, std::span<const std::pair<uint32_t, uint32_t>> merges, const TokenStrings& keys,
      const TokenMap& map, bool byte_level, bool unique_keys)
      : map_(map),
        byte_level_(byte_level),
        ignore_merges_(o.ignore_merges),
        byte_fallback_(o.byte_fallback),
        fuse_unk_(o.fuse_unk),
        unk_(o.unk),
        prefix_(o.prefix),
        suffix_(o.suffix) {
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
    // A one-unit word is its unit's token, unless an end_of_word_suffix is appended to the last unit (then Split).
    word_unit_ids_ = unit_ids_;
    if (!suffix_.empty()) word_unit_ids_.fill(kNone);
    // Not with ignore_merges: the reference looks the whole word up before merging, and a piece found whole in the
    // vocabulary may merge into other tokens.
    metaspace_cuts_ = !byte_level_ && !o.merges_from_ranks && !ignore_merges_ && prefix_.empty() && suffix_.empty() &&
                      map_.Find(kMetaspace) != kNone && !AnyKeyJoinsAtMetaspace(keys);
    if (o.merges_from_ranks) {
      // tiktoken: any adjacent pair whose concatenation is a token merges, the lowest-ranked (= id) first. No pair
      // table: the concatenation is looked up in the vocabulary when needed (see Lookup).
      from_ranks_ = true;
    } else {
      merges_.Reserve(merges.size());
      rank_new_id_.reserve(merges.size());
      std::string cat;
      // Merged tokens usually come in merge order in the vocabulary: the id after the previous merged one is tried
      // first (a sequential read instead of a hash-table miss). Only with unique keys, so that it is the id Find
      // would return.
      uint32_t guess = kNone;
      constexpr size_t kAhead = 8;
      for (size_t r = 0; r < merges.size(); ++r) {
        if (r + kAhead < merges.size()) merges_.Prefetch(merges[r + kAhead].first, merges[r + kAhead].second);
        auto [a, b] = merges[r];
        if (a >= keys.size() || b >= keys.size())
          throw tokmeter::Error("ERR_TOKENIZER_SPEC", "model.merges[" + std::to_string(r) + "]: id out of range");
        const std::string& ka = keys[a];
        // The merged token is the left one followed by the right one without its continuing_subword_prefix.
        if (!prefix_.empty() && keys[b].compare(0, prefix_.size(), prefix_) != 0)
          throw tokmeter::Error("ERR_TOKENIZER_SPEC", "model.merges[" + std::to_string(r) +
                                                          "]: the right token does not start with "
                                                          "continuing_subword_prefix");
        const std::string_view kb = std::string_view(keys[b]).substr(prefix_.size());
        uint32_t merged = kNone;
        if (unique_keys && guess + 1 < keys.size()) {
          const std::string& g = keys[guess + 1];
          if (!g.empty() && g.size() == ka.size() + kb.size() && g.compare(0, ka.size(), ka) == 0 &&
              g.compare(ka.size(), kb.size(), kb) == 0)
            merged = guess + 1;
        }
        if (merged == kNone) {
          cat.assign(ka).append(kb);
          merged = map_.Find(std::string_view(cat));
        }
        guess = merged;
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
    if (metaspace_cuts_ && word.size() > kMetaspace.size()) {
      TokenizeMetaspaceWords(word, s, sink);
      return;
    }
    if (word.size() == 1 && word_unit_ids_[static_cast<unsigned char>(word[0])] != kNone) {
      sink.Push(word_unit_ids_[static_cast<unsigned char>(word[0])]);
      return;
    }
    TokenizeHashed(word, HashBytes(word), s, sink);
  }

  // A batch of words from the split: their hashes first, with the direct-mapped cache slot of each short word
  // prefetched, then the words in order. The slots are random lines of a 4 MB table: without the look-ahead each
  // word of repetitive text waited for one cache miss.
  void TokenizeWords(std::string_view text, size_t from, const size_t* ends, size_t n, ModelScratch& s,
                     IdSink& sink) const override {
    constexpr size_t kBlock = 32;
    uint64_t hashes[kBlock];
    for (size_t k0 = 0; k0 < n; k0 += kBlock) {
      const size_t k1 = std::min(n, k0 + kBlock);
      for (size_t k = k0, b = k0 == 0 ? from : ends[k0 - 1]; k < k1; b = ends[k++]) {
        const size_t len = ends[k] - b;
        if (len == 1) continue;
        const uint64_t h = HashBytes(text.substr(b, len));
        hashes[k - k0] = h;
        if (len <= ModelScratch::WordCacheEntry::kMaxKey) {
          const auto* e = &s.WordSlot(h);
          __builtin_prefetch(e);
          if (len > 24) __builtin_prefetch(reinterpret_cast<const char*>(e) + 64);
        }
      }
      for (size_t k = k0, b = k0 == 0 ? from : ends[k0 - 1]; k < k1; b = ends[k++]) {
        const size_t len = ends[k] - b;
        if (len == 1) {
          const uint32_t id = word_unit_ids_[static_cast<unsigned char>(text[b])];
          if (id != kNone) {
            sink.Push(id);
            continue;
          }
          hashes[k - k0] = HashBytes(text.substr(b, 1));
        }
        TokenizeHashed(text.substr(b, len), hashes[k - k0], s, sink);
      }
    }
  }

 private:
  static constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

  // SentencePiece-style files without a pre-tokenizer (Llama 2, Mistral, Gemma, Yi) give the model the whole text as
  // one word: merging it took ~45 ms per 0.56 MB of new text (the whole-text cache made repeated text fast). When no
  // token has U+2581 right after another character, no merge can join a character to a following U+2581, so the
  // word cut in front of each U+2581 that follows another character merges, piece by piece, exactly as the whole:
  // the reference's merge queue never pairs symbols across a cut, and within a piece it pops the same pairs in the
  // same order. (U+2581 is in the vocabulary, so no run of unknown characters spans a cut either.) The pieces then go
  // through the word caches like the words of a split.
  // s[p..] starts with U+2581 (p > 0): whether the character before it is another one (no cut there).
  static bool AfterMetaspace(std::string_view s, size_t p) {
    return p >= kMetaspace.size() && s.substr(p - kMetaspace.size(), kMetaspace.size()) == kMetaspace;
  }
  static bool AnyKeyJoinsAtMetaspace(const TokenStrings& keys) {
    for (std::string_view k : keys) {
      for (size_t p = k.find(kMetaspace, 1); p != std::string_view::npos; p = k.find(kMetaspace, p + 1))
        if (!AfterMetaspace(k, p)) return true;
    }
    return false;
  }
  void TokenizeMetaspaceWords(std::string_view word, ModelScratch& s, IdSink& sink) const {
    constexpr size_t kBatch = 64;
    size_t ends[kBatch];
    size_t n = 0, from = 0;
    for (size_t p = word.find(kMetaspace, 1); p != std::string_view::npos; p = word.find(kMetaspace, p + 1)) {
      if (AfterMetaspace(word, p)) continue;
      ends[n++] = p;
      if (n == kBatch) {
        TokenizeWords(word, from, ends, n, s, sink);
        from = ends[n - 1];
        n = 0;
      }
    }
    ends[n++] = word.size();
    TokenizeWords(word, from, ends, n, s, sink);
  }

  // Tokenize of a word of 1+ bytes whose HashBytes is h.
  void TokenizeHashed(std::string_view word, uint64_t h, ModelScratch& s, IdSink& sink) const {
    // The direct-mapped cache first: most words of real text repeat, and a hit costs one cache line, where the
    // vocabulary probe below (ignore_merges) is two misses on multi-MB tables.
    ModelScratch::WordCacheEntry* slot = nullptr;
    if (word.size() <= sizeof slot->key) {
      slot = &s.WordSlot(h);
      if (slot->Holds(h, uid_, word)) {
        slot->PushIds(sink);
        return;
      }
    }
    if (ignore_merges_) {
      uint32_t id = map_.FindHashed(word, h);
      if (id != kNone) {
        sink.Push(id);
        if (slot) slot->Store(h, uid_, word, &id, 1);
        return;
      }
    }
    constexpr size_t kMaxCached = 64;  // at least the direct-mapped key: its Store below reads ids from cache_ids
    static_assert(kMaxCached >= ModelScratch::WordCacheEntry::kMaxKey);
    bool cacheable = word.size() <= kMaxCached;
    if (cacheable) {
      if (s.cache_owner != uid_) {
        ClearShortWords(s, 0);
        s.cache_owner = uid_;
      }
      if (const auto* e = FindShortWord(s, word, h)) {
        const uint32_t* ids = s.cache_ids.data() + e->ids_at;
        for (uint32_t k = 0; k < e->n; ++k) sink.Push(ids[k]);
        if (slot && e->n <= ModelScratch::WordCacheEntry::kMaxIds) slot->Store(h, uid_, word, ids, e->n);
        return;
      }
    }
    // Long words (runs of spaces, newlines, digits or punctuation, long identifiers): their own bounded cache, as
    // repeated text (a conversation counted again at every turn) repeats them too.
    const bool long_cacheable = !cacheable && word.size() <= kLongWordMax;
    if (long_cacheable) {
      if (const auto* ids = s.FindLong(uid_, h, word)) {
        for (uint32_t id : *ids) sink.Push(id);
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
    if (long_cacheable) {
      std::vector<uint32_t> ids;
      for (int32_t i = s.symbols.empty() ? -1 : 0; i != -1; i = s.symbols[i].next) ids.push_back(s.symbols[i].id);
      for (uint32_t id : ids) sink.Push(id);
      s.StoreLong(h, word, std::move(ids), kLongCacheBytes);
      return;
    }
    uint32_t start = static_cast<uint32_t>(s.cache_ids.size());
    uint32_t n = 0;
    for (int32_t i = s.symbols.empty() ? -1 : 0; i != -1; i = s.symbols[i].next) {
      sink.Push(s.symbols[i].id);
      if (cacheable) s.cache_ids.push_back(s.symbols[i].id);
      ++n;
    }
    if (slot && n <= ModelScratch::WordCacheEntry::kMaxIds) slot->Store(h, uid_, word, s.cache_ids.data() + start, n);
    if (cacheable && n <= 0xFFFF) {  // also here: the second level for words whose direct-mapped slot was taken over
      if (s.cache_count + 1 > kShortWordSlots / 2) {
        ClearShortWords(s, start);
        start = 0;
      }
      AddShortWord(s, word, h, start, n);
    }
  }

  // The second-level cache (ModelScratch::cache): linear probing from the hash's low bits (the direct-mapped level
  // uses bits 40 and up).
  static const ModelScratch::ShortWord* FindShortWord(const ModelScratch& s, std::string_view word, uint64_t h) {
    if (s.cache.empty()) return nullptr;
    for (size_t i = h & (kShortWordSlots - 1);; i = (i + 1) & (kShortWordSlots - 1)) {
      const auto& e = s.cache[i];
      if (e.key_len == 0) return nullptr;
      if (e.hash == h && e.key_len == word.size() &&
          std::memcmp(s.cache_keys.data() + e.key_at, word.data(), word.size()) == 0)
        return &e;
    }
  }
  static void AddShortWord(ModelScratch& s, std::string_view word, uint64_t h, uint32_t ids_at, uint32_t n) {
    if (s.cache.empty()) s.cache.assign(kShortWordSlots, ModelScratch::ShortWord{});
    size_t i = h & (kShortWordSlots - 1);
    while (s.cache[i].key_len != 0) i = (i + 1) & (kShortWordSlots - 1);
    s.cache[i] = {h, static_cast<uint32_t>(s.cache_keys.size()), ids_at, static_cast<uint16_t>(word.size()),
                  static_cast<uint16_t>(n)};
    s.cache_keys.append(word);
    ++s.cache_count;
  }
  // Empties the second level, keeping cache_ids from `keep_from` on (the ids of the word being added).
  static void ClearShortWords(ModelScratch& s, size_t keep_from) {
    if (s.cache_count != 0) std::fill(s.cache.begin(), s.cache.end(), ModelScratch::ShortWord{});
    s.cache_count = 0;
    s.cache_keys.clear();
    s.cache_ids.erase(s.cache_ids.begin(), s.cache_ids.begin() + static_cast<std::ptrdiff_t>(keep_from));
  }

  static constexpr size_t kShortWordSlots = 131072;  // 3 MB per thread, up to 65,536 words
  // The long-word cache: words of up to 64 kB, at most 2 MB per thread (words, ids and bookkeeping).
  static constexpr size_t kLongWordMax = 64 * 1024, kLongCacheBytes = 2u << 20;

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

  // Initial symbols, with unknown/byte-fallback handling exactly as the reference's merge_word: each unit (a byte of
  // a byte-level word, else a character) is looked up with continuing_subword_prefix in front when it is not the
  // first and end_of_word_suffix after it when it is the last; byte fallback covers those affixes' bytes too.
  void Split(std::string_view w, ModelScratch& s) const {
    s.symbols.clear();
    s.symbols.reserve(w.size());
    uint32_t unk_id = kNone, unk_len = 0;
    size_t i = 0;
    while (i < w.size()) {
      unsigned char b0 = static_cast<unsigned char>(w[i]);
      size_t n = byte_level_ ? 1 : utf8::SeqLen(b0);
      if (i + n > w.size()) n = w.size() - i;
      std::string_view unit = w.substr(i, n);
      const bool prefixed = i != 0 && !prefix_.empty(), suffixed = i + n == w.size() && !suffix_.empty();
      uint32_t id = kNone;
      if (prefixed || suffixed) {
        s.affixed.assign(prefixed ? prefix_ : std::string()).append(unit).append(suffixed ? suffix_ : std::string());
        unit = s.affixed;
        id = map_.Find(unit);
      } else {
        id = n == 1 ? unit_ids_[b0] : map_.Find(unit);
      }
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
          for (char c : unit) all = all && fallback_ids_[static_cast<unsigned char>(c)] != kNone;
          if (all) {
            for (char c : unit) Add(s, fallback_ids_[static_cast<unsigned char>(c)], 1);
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

  // Merges the pair at `pos` into new_id if that pair is still there (the reference's staleness rule: the pair now
  // at pos merges into the id this entry was queued for); then reports the two new neighbour pairs to add(rank, pos).
  template <class Add>
  void MergeAt(std::string_view word, ModelScratch& s, uint32_t pos, uint32_t new_id, Add&& add) const {
    auto& sym = s.symbols;
    BpeSymbol& cur = sym[pos];
    if (cur.len == 0 || cur.next == -1) return;
    int32_t nx = cur.next;
    Found m = Lookup(word, cur, sym[nx], s);
    if (!m.ok || m.new_id != new_id) return;
    cur.id = new_id;
    cur.len += sym[nx].len;
    cur.next = sym[nx].next;
    sym[nx].len = 0;
    if (cur.next != -1) sym[cur.next].prev = static_cast<int32_t>(pos);
    if (cur.prev >= 0) {
      Found pm = Lookup(word, sym[cur.prev], cur, s);
      if (pm.ok) add(pm.rank, static_cast<uint32_t>(cur.prev));
    }
    if (cur.next != -1) {
      Found nm = Lookup(word, cur, sym[cur.next], s);
      if (nm.ok) add(nm.rank, pos);
    }
  }

  // Pops (rank, position) entries lowest first until the heap is empty.
  void HeapLoop(std::string_view word, ModelScratch& s) const {
    QuadHeap q{s.heap};
    auto add = [&](uint32_t rank, uint32_t p) { q.Push((uint64_t{rank} << 32) | p); };
    while (!s.heap.empty()) {
      uint64_t top = q.Pop();
      MergeAt(word, s, static_cast<uint32_t>(top), NewIdOfRank(static_cast<uint32_t>(top >> 32)), add);
    }
  }

  // Words of at least this many symbols merge rank by rank (MergeByRank); shorter ones through the heap.
  static constexpr size_t kRankMergeMin = 256;

  void Merge(std::string_view word, ModelScratch& s) const {
    auto& sym = s.symbols;
    auto& heap = s.heap;
    heap.clear();
    if (sym.size() < 2) return;
    if (sym.size() >= kRankMergeMin) {
      MergeByRank(word, s);
      return;
    }
    heap.reserve(sym.size() * 2);  // initial pairs plus the pushes of the first merges, without regrowth copies
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      Found f = Lookup(word, sym[i], sym[i + 1], s);
      if (f.ok) heap.push_back((uint64_t{f.rank} << 32) | i);
    }
    QuadHeap{heap}.Build();
    HeapLoop(word, s);
  }

  // The heap's order — lowest rank first, leftmost first within a rank — without a heap over every pair: pairs are
  // bucketed by rank, ranks are taken lowest first from a small heap of distinct ranks, and each rank's positions
  // are merged left to right. A merge of rank r mostly creates pairs of higher rank (a merged token comes after its
  // parts); those join their rank's list, which is complete when its turn comes. A new pair of rank <= r (possible
  // in tiktoken vocabularies: "a"+"bc" may be a token older than "bc") sits at or left of the merge just made, so it
  // precedes everything still queued: it goes to a small heap that is drained before the next queued position. The
  // order of merges is therefore exactly the heap's. O(n) list work plus O(distinct ranks x log) instead of
  // O(n log n) operations on a 1M-entry heap.
  void MergeByRank(std::string_view word, ModelScratch& s) const {
    auto& sym = s.symbols;
    RankLists lists(s);
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      Found f = Lookup(word, sym[i], sym[i + 1], s);
      if (f.ok) lists.Add(f.rank, static_cast<uint32_t>(i));
    }
    uint32_t cur_rank = 0;
    s.heap.clear();
    QuadHeap urgent{s.heap};
    auto add = [&](uint32_t rank, uint32_t p) {
      if (rank <= cur_rank)
        urgent.Push((uint64_t{rank} << 32) | p);
      else
        lists.Add(rank, p);
    };
    auto& cur = s.current;
    while (lists.PopMin(cur_rank, cur)) {
      if (!std::is_sorted(cur.begin(), cur.end())) std::sort(cur.begin(), cur.end());
      const uint32_t new_id = NewIdOfRank(cur_rank);
      for (uint32_t pos : cur) {
        MergeAt(word, s, pos, new_id, add);
        while (!s.heap.empty()) {
          uint64_t top = urgent.Pop();
          MergeAt(word, s, static_cast<uint32_t>(top), NewIdOfRank(static_cast<uint32_t>(top >> 32)), add);
        }
      }
    }
    cur.clear();
    lists.Trim();
  }

  const TokenMap& map_;
  bool byte_level_, ignore_merges_, byte_fallback_, fuse_unk_;
  uint32_t unk_;
  std::string prefix_, suffix_;
  bool metaspace_cuts_ = false;  // Tokenize cuts words in front of U+2581 (TokenizeMetaspaceWords)
  std::array<uint32_t, 256> unit_ids_;
  std::array<uint32_t, 256> word_unit_ids_;  // words of one byte (Tokenize, TokenizeWords)
  std::array<uint32_t, 256> fallback_ids_;
  PairMap merges_;
  bool from_ranks_ = false;
  BigVector<uint32_t> rank_new_id_;  // merges mode: rank -> merged id
  uint64_t uid_ = NextModelUid();
};

}  // namespace

uint64_t NextModelUid() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

std::unique_ptr<Model> BpeFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab,
                                   std::span<const std::pair<uint32_t, uint32_t>> merges, bool merges_from_ranks) {
  // A dropout of 0 skips no merge (the reference encodes as without one); any other is random per encode.
  if (const json::Value* d = m.Get("dropout"); d && !(d->IsNumber() && d->number() == 0))
    json::Unsupported(path + ".dropout", "BPE dropout (non-deterministic)");
  Bpe::Options o;
  // Affixes are written like the vocabulary's keys (in the byte-level alphabet for a byte-level vocabulary).
  auto affix = [&](const char* key) {
    std::string v = json::OptStr(m, key, path).value_or(std::string());
    if (!vocab.byte_level || v.empty()) return v;
    std::string bytes;
    if (!ByteLevelToBytesExact(v, bytes))
      json::Unsupported(path + "." + key, std::string("BPE ") + key + " " + json::Stringify(v) +
                                              " outside the byte-level alphabet of the vocabulary");
    return bytes;
  };
  o.prefix = affix("continuing_subword_prefix");
  o.suffix = affix("end_of_word_suffix");
  o.ignore_merges = json::Bool(m, "ignore_merges", path, false);
  o.byte_fallback = json::Bool(m, "byte_fallback", path, false);
  o.fuse_unk = json::Bool(m, "fuse_unk", path, false);
  o.merges_from_ranks = merges_from_ranks;
  if (std::optional<std::string> unk = json::OptStr(m, "unk_token", path)) {
    o.unk = vocab.vocab_id(*unk);
    if (o.unk == kNone) json::SpecError(path + ".unk_token", json::Stringify(*unk) + " is not in " + path + ".vocab");
  }
  return std::make_unique<Bpe>(o, merges, vocab.keys, vocab.map, vocab.byte_level, vocab.unique_keys);
}

}  // namespace tokmeter::tokenizer
