// Model: turns one pre-tokenized word into token ids (BPE, WordPiece, Unigram). Immutable and thread-safe; per-call
// state lives in ModelScratch. Words reach the model in its own domain: raw bytes for byte-level tokenizers (the GPT-2
// byte-to-char mapping is folded into the vocabulary at load time), UTF-8 text otherwise.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/big_alloc.h"

namespace tokmeter::tokenizer {

// Receives ids; counts them, and stores them only when `out` is set (counting builds no id vector).
struct IdSink {
  std::vector<uint32_t>* out = nullptr;
  size_t count = 0;
  void Push(uint32_t id) {
    if (out) out->push_back(id);
    ++count;
  }
};

struct BpeSymbol {
  uint32_t id;
  int32_t prev, next;
  uint32_t len;
  uint32_t start;  // byte offset in the word
};

struct ModelScratch {
  std::vector<BpeSymbol> symbols;
  std::vector<uint64_t> heap;  // (rank << 32) | position, min-heap
  // Rank-bucket merge of long words (bpe.cc MergeByRank): per rank, the positions of its candidate pairs.
  std::vector<std::vector<uint32_t>> rank_lists;
  std::vector<uint32_t> rank_of_list;  // rank_lists[i] holds pairs of rank rank_of_list[i]
  std::vector<uint64_t> rank_slots;    // open addressing: (rank << 32) | list index
  std::vector<uint32_t> rank_queue;    // min-heap of ranks with a list
  std::vector<uint32_t> current;       // the list being merged
  // Direct-mapped cache of pair lookups (left id, right id) -> (rank, merged id); valid for pair_cache_owner only.
  struct PairCacheEntry {
    uint64_t key = ~0ULL;
    uint32_t rank = 0, new_id = 0;
  };
  std::vector<PairCacheEntry> pair_cache;
  uint64_t pair_cache_owner = 0;
  std::string word;
  std::string affixed;  // BPE: a unit with continuing_subword_prefix / end_of_word_suffix
  // Direct-mapped word cache, checked first (bpe.cc Tokenize): a word of up to 56 bytes and its ids when there are at
  // most 12. Each entry is two cache lines laid out so that a word of up to 24 bytes with up to 4 ids (most words of
  // English prose and code) is read from the first line alone; longer words and ids (Cyrillic, Greek, Arabic, Indic
  // words, which are 2-3 bytes a letter and several tokens) spill into the second line instead of missing the table.
  // Each entry names the model that wrote it (Model uid), so switching models on a thread clears nothing.
  struct WordCacheEntry {
    static constexpr uint32_t kMaxKey = 56, kMaxIds = 12, kLineIds = 4;
    uint64_t hash = 0;
    uint64_t owner = 0;  // 0: empty (model uids start at 1)
    uint32_t len = 0, n = 0;
    uint32_t ids[kLineIds];                 // the first ids (in the first cache line)
    char key[kMaxKey];                      // bytes 40..95
    uint32_t more_ids[kMaxIds - kLineIds];  // bytes 96..127
    // This entry holds `word` (whose HashBytes is h) for the model `model_uid`.
    bool Holds(uint64_t h, uint64_t model_uid, std::string_view word) const {
      return hash == h && owner == model_uid && len == word.size() && std::memcmp(key, word.data(), word.size()) == 0;
    }
    void PushIds(IdSink& sink) const {
      for (uint32_t k = 0; k < n && k < kLineIds; ++k) sink.Push(ids[k]);
      for (uint32_t k = kLineIds; k < n; ++k) sink.Push(more_ids[k - kLineIds]);
    }
    // Stores `word` (at most kMaxKey bytes) and its `count` ids (at most kMaxIds).
    void Store(uint64_t h, uint64_t model_uid, std::string_view word, const uint32_t* word_ids, uint32_t count) {
      hash = h;
      owner = model_uid;
      len = static_cast<uint32_t>(word.size());
      n = count;
      std::memcpy(key, word.data(), word.size());
      std::memcpy(ids, word_ids, std::min(count, kLineIds) * sizeof(uint32_t));
      if (count > kLineIds) std::memcpy(more_ids, word_ids + kLineIds, (count - kLineIds) * sizeof(uint32_t));
    }
  };
  static_assert(sizeof(WordCacheEntry) == 128);
  static constexpr size_t kWordCacheSize = 32768;  // 4 MB per thread (two huge pages, see big_alloc.h)
  BigVector<WordCacheEntry> word_cache;
  // The slot of the word whose HashBytes is h (the table allocated on first use).
  WordCacheEntry& WordSlot(uint64_t h) {
    if (word_cache.empty()) word_cache.resize(kWordCacheSize);
    return word_cache[(h >> 40) & (kWordCacheSize - 1)];
  }
  // The second-level cache for words of up to 64 bytes whose direct-mapped slot was taken: an open-addressing table
  // keyed by the word's HashBytes (already computed for the first level), the words' bytes in cache_keys and their
  // ids in cache_ids; emptied when half full. A std::unordered_map<std::string, ...> here (a string copy, a second
  // hash and two dependent misses per probe) was 15% of count() time for the files without ignore_merges (Qwen,
  // GPT-2), whose words missing the first level are all looked up here.
  struct ShortWord {
    uint64_t hash;
    uint32_t key_at, ids_at;
    uint16_t key_len, n;  // key_len 0: an empty slot
  };
  BigVector<ShortWord> cache;  // a power of two in size once used (huge pages: probes land anywhere in 3 MB)
  size_t cache_count = 0;
  std::string cache_keys;
  std::vector<uint32_t> cache_ids;
  uint64_t cache_owner = 0;  // Model::uid() of the model that filled the cache (never reused)
  // BPE words longer than `cache` takes: HashBytes(word) -> the word and its ids, bounded in bytes (bpe.cc).
  struct LongWord {
    std::string key;
    std::vector<uint32_t> ids;
  };
  std::unordered_map<uint64_t, LongWord> long_cache;
  size_t long_cache_bytes = 0;
  uint64_t long_cache_owner = 0;
  // The ids the long-word cache holds for `word` (HashBytes h) of the model `model_uid`, or nullptr.
  const std::vector<uint32_t>* FindLong(uint64_t model_uid, uint64_t h, std::string_view word) {
    if (long_cache_owner != model_uid) {
      long_cache.clear();
      long_cache_bytes = 0;
      long_cache_owner = model_uid;
    }
    auto it = long_cache.find(h);
    return it != long_cache.end() && it->second.key == word ? &it->second.ids : nullptr;
  }
  // Keeps `word` and its ids (after FindLong for the same model); the cache is emptied first when it would pass
  // `budget` bytes. A different word with the same hash is replaced.
  void StoreLong(uint64_t h, std::string_view word, std::vector<uint32_t> ids, size_t budget) {
    const size_t bytes = word.size() + ids.size() * sizeof(uint32_t) + 64;
    if (long_cache_bytes + bytes > budget) {
      long_cache.clear();
      long_cache_bytes = 0;
    }
    auto& e = long_cache[h];
    long_cache_bytes += bytes;
    e.key.assign(word);
    e.ids = std::move(ids);
  }
  // Unigram: best path ending at each byte offset, and the backtracked segments.
  struct LatticeNode {
    double score;
    uint32_t start, id;  // start == 0xFFFFFFFF: no path ends here yet
  };
  std::vector<LatticeNode> lattice;
  struct Segment {
    uint32_t start, end, id;
  };
  std::vector<Segment> segments;
};

// Open-addressing map from a token string to its id; the strings live in a vector owned elsewhere (the
// Tokenizer), so building it allocates one flat table and nothing per token.
//
// Performance notes: std::unordered_map<std::string_view, uint32_t> took ~1 s to build and probe for o200k's
// merges (node allocation and pointer chasing); this table takes a few tens of ms.
inline uint64_t HashBytes(std::string_view s) noexcept {
  constexpr uint64_t k1 = 0x9E3779B97F4A7C15ULL, k2 = 0xBF58476D1CE4E5B9ULL;
  uint64_t h = s.size() * k1;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    __builtin_memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * k2;
    h ^= h >> 31;
  }
  if (i < s.size()) {
    uint64_t w = 0;
    __builtin_memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * k2;
    h ^= h >> 31;
  }
  h *= k1;
  return h ^ (h >> 29);
}

class TokenMap {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;
  void Init(const TokenStrings* keys, size_t expected) {
    keys_ = keys;
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    slots_.assign(cap, Slot{kNone, 0});
    mask_ = cap - 1;
  }
  // Inserts id under (*keys)[id]; with overwrite = false an existing entry is kept. Returns false when the key was
  // already present.
  bool Insert(uint32_t id, bool overwrite = false) { return InsertHashed(id, HashBytes((*keys_)[id]), overwrite); }
  void Prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }
  bool InsertHashed(uint32_t id, uint64_t h, bool overwrite = false) {
    std::string_view k = (*keys_)[id];
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id == kNone) {
        s = Slot{id, tag};
        return true;
      }
      if (s.tag == tag && (*keys_)[s.id] == k) {
        if (overwrite) s.id = id;
        return false;
      }
    }
  }
  uint32_t Find(std::string_view k) const { return FindHashed(k, HashBytes(k)); }
  // Find with h == HashBytes(k) computed by the caller (to prefetch the slot ahead of a batch of lookups).
  uint32_t FindHashed(std::string_view k, uint64_t h) const {
    if (slots_.empty()) return kNone;
    uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id == kNone) return kNone;
      if (s.tag == tag && (*keys_)[s.id] == k) return s.id;
    }
  }

 private:
  struct Slot {
    uint32_t id, tag;
  };
  const TokenStrings* keys_ = nullptr;
  BigVector<Slot> slots_;
  size_t mask_ = 0;
};

// A process-wide id per model, never reused: names the model that wrote a per-thread cache entry, so that switching
// models on a thread clears nothing.
uint64_t NextModelUid();

class Model {
 public:
  virtual ~Model() = default;
  virtual void Tokenize(std::string_view word, ModelScratch& scratch, IdSink& sink) const = 0;
  // Tokenizes the consecutive words text[from, ends[0]), text[ends[0], ends[1]), ..., text[ends[n-2], ends[n-1]) (all
  // non-empty), as n calls of Tokenize would. A model may override it to work on a batch (look ahead, prefetch).
  virtual void TokenizeWords(std::string_view text, size_t from, const size_t* ends, size_t n, ModelScratch& scratch,
                             IdSink& sink) const {
    for (size_t k = 0; k < n; from = ends[k++]) Tokenize(text.substr(from, ends[k] - from), scratch, sink);
  }
};

namespace json {
class Value;
}

// What a model is built over, owned by the Tokenizer and outliving the model: keys[id] is the model-domain form of
// each token (raw bytes for byte-level tokenizers; empty for absent ids), `map` looks keys up, `vocab_id` finds an id
// by its tokenizer.json spelling (TokenMap::kNone when absent; for unk_token). unique_keys: no two ids share a key
// (lets BPE skip lookups it can verify directly).
struct ModelVocab {
  const TokenStrings& keys;
  const TokenMap& map;
  std::function<uint32_t(std::string_view)> vocab_id;
  bool byte_level = false;
  bool unique_keys = false;
};

// Each model reads its own options from tokenizer.json's "model" object `m` (`path` names it in messages); the
// vocabulary and merges are read by the tokenizer (the big fields, json_scan.h) and handed over.
// BPE: `merges` are (left, right) id pairs in rank order; merges_from_ranks (tiktoken): no merge list, any adjacent
// pair whose concatenation is a token merges, the lowest id first.
std::unique_ptr<Model> BpeFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab,
                                   std::span<const std::pair<uint32_t, uint32_t>> merges, bool merges_from_ranks);
std::unique_ptr<Model> WordPieceFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab);
std::unique_ptr<Model> WordLevelFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab);
// The value the reference's JSON parser gives a score whose correctly rounded value is v (see unigram.cc).
double ReferenceScore(double v);
// Unigram: `vocab.map` must resolve duplicate pieces to the later id (built with overwrite = true); scores[id].
std::unique_ptr<Model> UnigramFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab,
                                       std::vector<double> scores);

}  // namespace tokmeter::tokenizer
