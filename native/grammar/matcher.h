// tokmeter::grammar::Matcher — the per-sequence state of a grammar: which tokens may come next, and advancing.
//
// State: a set of parser stacks (persistent, interned in the matcher's own pool) whose top frames each sit on an
// automaton node that reads a byte, plus `complete` (the root rule may end here). FillMask() sets bit `id` of a
// bitset (1 bit per vocabulary id, 64 per word) for every usable token whose bytes some stack can read entirely,
// and the EOS ids iff the document is complete; so:
//   complete, nothing may follow  → only EOS;  complete but may continue → EOS plus continuations;
//   not complete                   → no EOS.
// Special tokens are never set. Accept(token) advances (returns false and keeps the state when the token is not
// allowed); accepting an EOS id ends the matcher (terminated()).
// Stacks deeper than Limits::maxStackDepth are not followed, so nesting in generated documents is bounded; a state
// from which no token can continue (only possible at that depth bound) allows EOS rather than nothing.
//
// Thread affinity: one thread at a time per Matcher; many matchers may share one Grammar across threads. Copyable
// (tests fork matchers to check masks by brute force).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"

namespace tokmeter::grammar {

// Interned persistent stacks: entry = (node, parent); -1 is the empty stack.
class StackPool {
 public:
  struct Entry {
    uint32_t node;
    int32_t parent;
    uint32_t depth;
  };
  int32_t Get(uint32_t node, int32_t parent);
  const Entry& operator[](int32_t id) const noexcept { return entries_[static_cast<size_t>(id)]; }
  uint32_t depth(int32_t id) const noexcept { return id < 0 ? 0 : entries_[static_cast<size_t>(id)].depth; }
  size_t size() const noexcept { return entries_.size(); }
  uint32_t maxDepth() const noexcept { return max_depth_; }
  void Clear();

 private:
  void Grow();
  std::vector<Entry> entries_;
  std::vector<int32_t> slots_;
  uint32_t max_depth_ = 0;
};

struct Top {
  uint32_t node;
  int32_t parent;
  bool operator==(const Top& o) const noexcept { return node == o.node && parent == o.parent; }
};

struct StateSet {
  std::vector<Top> tops;
  bool end = false;  // the bottom rule may end here
  void Clear() noexcept {
    tops.clear();
    end = false;
  }
};

// Epsilon closure (calls, returns) and byte steps over a pool.
class Stepper {
 public:
  Stepper(const Automata& automata, StackPool& pool, uint32_t maxDepth)
      : a_(automata), pool_(pool), max_depth_(maxDepth) {}
  void Start(uint32_t rule, StateSet& out);  // the closure of a fresh stack on `rule`
  void Advance(const StateSet& in, uint8_t byte, StateSet& out);
  void CloseFrom(Top top, StateSet& out);  // closure of one frame (seen-set reset)
  uint32_t topDepth(const Top& t) const noexcept { return pool_.depth(t.parent) + 1; }

 private:
  void Close(Top top, StateSet& out);
  bool Seen(const Top& t);
  const Automata& a_;
  StackPool& pool_;
  uint32_t max_depth_;
  std::vector<Top> seen_;
  std::vector<Top> work_;
};

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const Grammar> grammar);
  Matcher(const Matcher& other);
  Matcher& operator=(const Matcher&) = delete;

  // `mask` has Grammar::maskWords() words; it is overwritten.
  void FillMask(std::span<uint64_t> mask);
  bool Accept(uint32_t token);
  bool AcceptBytes(std::string_view bytes);  // byte-level advance (tests, forced text)
  bool complete() const noexcept { return state_.end; }
  bool canContinue() const noexcept { return !state_.tops.empty(); }
  bool terminated() const noexcept { return terminated_; }
  const Grammar& grammar() const noexcept { return *grammar_; }

 private:
  bool Step(std::string_view bytes, StateSet& out);
  void CheckUncertain(const Top& top, const MaskEntry& entry, std::span<uint64_t> mask);
  void SlowWalk(const Top& top, std::span<uint64_t> mask);
  void MaybeCompact();

  std::shared_ptr<const Grammar> grammar_;
  StackPool pool_;
  StateSet state_;
  bool terminated_ = false;
  // scratch
  std::vector<StateSet> levels_;
  StateSet tmp_a_, tmp_b_;
};

// Walks the vocabulary trie from `start`: calls accept(id) for tokens some path reads entirely (or ends on exactly),
// and, when `uncertain` is set, uncertain(id) for tokens in which the bottom rule ended before the last byte.
// Shared by the mask cache (bottom = the node's rule, "end" = returns to an unknown caller) and by the matcher's
// slow path (bottom = the real stack, "end" = the document is complete).
//
//
// `horizons` (Grammar::horizons(), or null) lets the walk accept a live node's whole subtree at once: when the bytes
// below it, read from a byte language's start state, stay in that language (Vocabulary::trieLanguagesBelow) and the
// deepest token below is fewer bytes away than some top frame's horizon for the language, that frame alone reads
// every token there to a node that reads bytes, so all of them are accepted (never uncertain) — what the
// byte-by-byte walk finds, as it accepts a token the moment one frame is alive at its end.
inline bool WholeSubtreeAlive(const Vocabulary& vocab, const uint32_t* horizons, const StateSet& cur, size_t i) {
  const uint16_t languages = vocab.trieLanguagesBelow(i);
  if (languages == 0) return false;
  const uint32_t below = vocab.trieDepthBelow(i) - vocab.trieDepth(i);
  for (const Top& t : cur.tops) {
    for (int l = 0; l < kByteLanguages; ++l) {
      if ((languages >> ByteLanguageBit(l, 0) & 1) &&
          horizons[static_cast<size_t>(t.node) * kByteLanguages + static_cast<size_t>(l)] > below) {
        return true;
      }
    }
  }
  return false;
}

template <class Accept, class Uncertain>
void WalkTrie(const Vocabulary& vocab, const uint32_t* horizons, Stepper& stepper, const StateSet& start,
              std::vector<StateSet>& levels, bool collectUncertain, Accept&& accept, Uncertain&& uncertain) {
  const size_t maxLen = vocab.maxTokenBytes();
  if (levels.size() < maxLen + 1) levels.resize(maxLen + 1);
  std::vector<uint8_t> endBefore(maxLen + 1, 0);
  levels[0] = start;
  levels[0].end = false;
  const size_t n = vocab.trieSize();
  size_t i = 0;
  while (i < n) {
    const uint32_t d = vocab.trieDepth(i);
    StateSet& cur = levels[d];
    stepper.Advance(levels[d - 1], vocab.trieByte(i), cur);
    const bool alive = !cur.tops.empty();
    if (alive || cur.end) {
      for (uint32_t id : vocab.trieTokens(i)) accept(id);
    } else if (collectUncertain && endBefore[d - 1]) {
      for (uint32_t id : vocab.trieTokens(i)) uncertain(id);
    }
    endBefore[d] = endBefore[d - 1] || cur.end;
    const size_t next = vocab.trieNext(i);
    if (alive) {
      if (horizons != nullptr && next > i + 1 && WholeSubtreeAlive(vocab, horizons, cur, i)) {
        for (uint32_t id : vocab.trieTokensIn(i + 1, next)) accept(id);
        i = next;
      } else {
        ++i;
      }
      continue;
    }
    if (collectUncertain && endBefore[d]) {
      for (size_t j = i + 1; j < next; ++j) {
        for (uint32_t id : vocab.trieTokens(j)) uncertain(id);
      }
    }
    i = next;
  }
}

}  // namespace tokmeter::grammar
