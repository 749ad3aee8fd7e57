// Unigram (SentencePiece): the highest-scoring segmentation of each word under the piece scores, exactly as the
// reference (huggingface/tokenizers models/unigram/model.rs, encode_optimized + tokenize) computes it:
//   - Viterbi over byte positions that start a UTF-8 character; at each start the pieces that prefix the rest of
//     the word are tried shortest first, and a candidate replaces the best path ending at its end only when its
//     score is strictly greater. Ties therefore keep the path found first: the one whose last piece starts
//     earliest (is longest).
//   - A character no single-character piece covers gets an unk node scored min(score) - 10.
//   - Adjacent unk nodes (and pieces whose id is unk_id) are fused into one string; a fused string that is not a
//     piece becomes its <0xXX> byte pieces when byte_fallback is set and all of them exist, otherwise unk.
//   - An unknown character with no unk_id is an error (the reference fails the encode: MissingUnkId).
// Duplicate pieces: the later id wins, as in the reference's token -> id map (which also picks the score).
// Scores: the reference reads tokenizer.json with serde_json's default float parser, which is not correctly
// rounded (see ReferenceScore); near-ties between segmentations depend on the last bit, so we re-derive its value.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "tokenizer/json_value.h"
#include "tokenizer/models/model.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {
namespace {

// Byte trie with hashed transitions: one open-addressing table keyed by (node << 8 | byte) -> child node.
class ByteTrie {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;
  void Build(const TokenStrings& keys, const std::vector<uint32_t>& ids) {
    size_t edges = 0;
    for (uint32_t id : ids) edges += keys[id].size();
    size_t cap = 16;
    while (cap < edges * 2 + 2) cap <<= 1;
    slots_.assign(cap, Slot{~0ULL, 0});
    mask_ = cap - 1;
    value_.assign(1, kNone);
    for (uint32_t id : ids) {
      uint32_t node = 0;
      for (unsigned char c : keys[id]) {
        uint64_t key = (uint64_t{node} << 8) | c;
        Slot& s = slots_[Probe(key)];
        if (s.key == ~0ULL) {
          s.key = key;
          s.child = static_cast<uint32_t>(value_.size());
          value_.push_back(kNone);
        }
        node = s.child;
      }
      value_[node] = id;  // later ids overwrite earlier duplicates
    }
  }
  // Child of `node` on byte c, or kNone.
  uint32_t Next(uint32_t node, unsigned char c) const {
    const Slot& s = slots_[Probe((uint64_t{node} << 8) | c)];
    return s.key == ~0ULL ? kNone : s.child;
  }
  uint32_t Value(uint32_t node) const { return value_[node]; }

 private:
  struct Slot {
    uint64_t key;
    uint32_t child;
  };
  // Index of the slot holding `key`, or of the empty slot where it would go.
  size_t Probe(uint64_t key) const {
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    for (size_t i = (h ^ (h >> 29)) & mask_;; i = (i + 1) & mask_)
      if (slots_[i].key == key || slots_[i].key == ~0ULL) return i;
  }
  std::vector<Slot> slots_;
  std::vector<uint32_t> value_;  // node -> piece id ending there
  size_t mask_ = 0;
};

}  // namespace

// serde_json (without its float_roundtrip feature) parses a JSON number as: decimal digits accumulated into a u64
// significand s and a power-of-ten exponent e, then f = (double)s, f *= 10^e or f /= 10^-e with a table of
// correctly rounded powers. (double)s rounds once when s > 2^53 (17-digit scores are common), so the result can be
// one ulp away from the correctly rounded value that JSON.parse gives. Measured on a Unigram file the reference
// trained: 2367 of 8000 scores differ, and 5 of 289 corpus documents tokenized differently without this.
// Input: the correctly rounded value of the number in the file. Its digits are recovered as the shortest
// round-trip representation (std::to_chars), which is what serde_json and Python write; a file spelling a score
// with extra digits (e.g. trailing zeros) could still differ. Magnitudes outside [1e-300, 1e15] are returned as is.
double ReferenceScore(double v) {
  if (v == 0 || !std::isfinite(v) || std::fabs(v) > 1e15 || std::fabs(v) < 1e-300) return v;
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  if (r.ec != std::errc()) return v;
  uint64_t sig = 0;
  int exp10 = 0, digits = 0;
  bool frac = false, neg = false;
  const char* p = buf;
  if (*p == '-') neg = true, ++p;
  for (; p < r.ptr && *p != 'e'; ++p) {
    if (*p == '.') {
      frac = true;
      continue;
    }
    sig = sig * 10 + static_cast<uint64_t>(*p - '0');
    if (sig) ++digits;
    if (frac) --exp10;
  }
  if (p < r.ptr) exp10 += static_cast<int>(std::strtol(p + 1, nullptr, 10));
  if (digits > 19 || exp10 < -308 || exp10 > 308) return v;
  static const auto pow10 = [] {
    std::vector<double> t(309);
    for (int i = 0; i <= 308; ++i) t[i] = std::strtod(("1e" + std::to_string(i)).c_str(), nullptr);
    return t;
  }();
  double f = static_cast<double>(sig);
  if (exp10 >= 0)
    f *= pow10[exp10];
  else
    f /= pow10[-exp10];
  return neg ? -f : f;
}

namespace {

class Unigram final : public Model {
 public:
  Unigram(std::vector<double> scores, std::optional<uint32_t> unk, bool byte_fallback, const TokenStrings& keys,
          const TokenMap& map)
      : map_(map), scores_(std::move(scores)), unk_(unk), byte_fallback_(byte_fallback) {
    size_t n = keys.size();
    if (scores_.size() != n) throw tokmeter::Error("ERR_TOKENIZER_SPEC", "model.vocab: one score per piece needed");
    std::vector<uint32_t> ids;
    ids.reserve(n);
    min_score_ = std::numeric_limits<double>::infinity();
    for (size_t id = 0; id < n; ++id) {
      if (!std::isfinite(scores_[id]))
        throw tokmeter::Error("ERR_TOKENIZER_SPEC", "model.vocab[" + std::to_string(id) + "][1]: not a finite score");
      scores_[id] = ReferenceScore(scores_[id]);
      if (scores_[id] < min_score_) min_score_ = scores_[id];
      // The reference's trie never yields the empty piece (a prefix search consumes at least one byte).
      if (!keys[id].empty()) ids.push_back(static_cast<uint32_t>(id));
    }
    trie_.Build(keys, ids);
    if (byte_fallback_) {
      static const char* kHex = "0123456789ABCDEF";
      for (int b = 0; b < 256; ++b) {
        std::string piece = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
        byte_ids_[b] = map_.Find(piece);
      }
    }
  }

  // The segmentation depends on the word alone, and the lattice was 60% of count() time on the benchmark corpus, so
  // words go through BPE's per-thread caches (ModelScratch): those of up to 56 bytes (most Metaspace words) through
  // the direct-mapped table, and all of up to 64 kB through the long-word cache, which also catches the short words
  // whose direct-mapped slot another word took, and the long ones (CJK sentences without spaces, code: 14% of the
  // corpus's bytes are in words over 56 bytes).
  void Tokenize(std::string_view w, ModelScratch& s, IdSink& sink) const override {
    if (w.empty()) return;
    if (w.size() > kCachedMax) {
      Segment(w, s, sink);
      return;
    }
    const uint64_t h = HashBytes(w);
    ModelScratch::WordCacheEntry* slot = nullptr;
    if (w.size() <= ModelScratch::WordCacheEntry::kMaxKey) {
      slot = &s.WordSlot(h);
      if (slot->Holds(h, uid_, w)) {
        slot->PushIds(sink);
        return;
      }
    }
    if (const auto* ids = s.FindLong(uid_, h, w)) {
      for (uint32_t id : *ids) sink.Push(id);
      if (slot && ids->size() <= ModelScratch::WordCacheEntry::kMaxIds)
        slot->Store(h, uid_, w, ids->data(), static_cast<uint32_t>(ids->size()));
      return;
    }
    std::vector<uint32_t> ids;
    IdSink mine{&ids};
    Segment(w, s, mine);
    for (uint32_t id : ids) sink.Push(id);
    if (slot && ids.size() <= ModelScratch::WordCacheEntry::kMaxIds)
      slot->Store(h, uid_, w, ids.data(), static_cast<uint32_t>(ids.size()));
    s.StoreLong(h, w, std::move(ids), kCacheBytes);
  }

 private:
  // The best segmentation of w (non-empty), without the cache.
  void Segment(std::string_view w, ModelScratch& s, IdSink& sink) const {
    const size_t size = w.size();
    const double unk_score = min_score_ - 10.0;
    auto& best = s.lattice;
    best.assign(size + 1, ModelScratch::LatticeNode{0.0, 0xFFFFFFFFu, 0xFFFFFFFFu});
    for (size_t start = 0; start < size;) {
      const double here = best[start].score;
      const size_t mblen = utf8::SeqLen(static_cast<unsigned char>(w[start]));
      bool has_single = false;
      uint32_t node = 0;
      for (size_t end = start; end < size;) {
        node = trie_.Next(node, static_cast<unsigned char>(w[end]));
        if (node == ByteTrie::kNone) break;
        ++end;
        uint32_t id = trie_.Value(node);
        if (id == ByteTrie::kNone) continue;
        auto& t = best[end];
        double cand = scores_[id] + here;
        if (t.start == 0xFFFFFFFFu || cand > t.score) t = {cand, static_cast<uint32_t>(start), id};
        if (end - start == mblen) has_single = true;
      }
      if (!has_single) {
        if (!unk_)
          throw tokmeter::Error(
              "ERR_INVALID_ARGUMENT",
              "text has a character the Unigram vocabulary cannot encode and the model has no unk_id");
        auto& t = best[start + mblen];
        double cand = unk_score + here;
        if (t.start == 0xFFFFFFFFu || cand > t.score) t = {cand, static_cast<uint32_t>(start), *unk_};
      }
      start += mblen;
    }
    // Backtrack into (start, end, id) segments, fusing unk runs; ids are emitted in order afterwards.
    auto& segs = s.segments;
    segs.clear();
    size_t end = size, fused_start = 0;
    bool in_unk = false;
    while (end > 0) {
      const auto& nd = best[end];
      if (unk_ && nd.id == *unk_) {
        if (!in_unk) fused_start = end;  // fused_start holds the end of the run while in it
        in_unk = true;
      } else {
        if (in_unk) segs.push_back({static_cast<uint32_t>(end), static_cast<uint32_t>(fused_start), *unk_});
        in_unk = false;
        segs.push_back({nd.start, static_cast<uint32_t>(end), nd.id});
      }
      end = nd.start;
    }
    if (in_unk) segs.push_back({0, static_cast<uint32_t>(fused_start), *unk_});
    for (size_t i = segs.size(); i-- > 0;) {
      const auto& g = segs[i];
      std::string_view piece = w.substr(g.start, g.end - g.start);
      // The reference looks every piece up by its string (for a non-unk node this is its own id, duplicates
      // resolved to the later one; a fused unk run may spell a piece).
      uint32_t id = map_.Find(piece);
      if (id != TokenMap::kNone) {
        sink.Push(id);
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        for (unsigned char c : piece)
          if (byte_ids_[c] == TokenMap::kNone) {
            all = false;
            break;
          }
        if (all) {
          for (unsigned char c : piece) sink.Push(byte_ids_[c]);
          continue;
        }
      }
      if (!unk_)
        throw tokmeter::Error("ERR_INVALID_ARGUMENT",
                              "text has a character the Unigram vocabulary cannot encode and the model has no unk_id");
      sink.Push(*unk_);
    }
  }

  const TokenMap& map_;
  std::vector<double> scores_;
  std::optional<uint32_t> unk_;
  bool byte_fallback_;
  double min_score_ = 0;
  ByteTrie trie_;
  uint32_t byte_ids_[256] = {};
  uint64_t uid_ = NextModelUid();
  // Words cached up to this size, in at most kCacheBytes per thread (words, ids and bookkeeping).
  static constexpr size_t kCachedMax = 64 * 1024, kCacheBytes = 8u << 20;
};

}  // namespace

std::unique_ptr<Model> UnigramFromJson(const json::Value& m, const std::string& path, const ModelVocab& vocab,
                                       std::vector<double> scores) {
  std::optional<uint32_t> unk;
  if (const json::Value* u = m.Get("unk_id")) {
    unk = json::Uint(u, path + ".unk_id");
    if (*unk >= vocab.keys.size())
      json::SpecError(path + ".unk_id",
                      std::to_string(*unk) + " is not below the vocabulary size " + std::to_string(vocab.keys.size()));
  }
  return std::make_unique<Unigram>(std::move(scores), unk, json::Bool(m, "byte_fallback", path, false), vocab.keys,
                                   vocab.map);
}

}  // namespace tokmeter::tokenizer
