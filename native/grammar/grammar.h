// tokmeter::grammar::Grammar — a constraint spec compiled over one vocabulary: immutable, shared by every Matcher.
//
//   auto vocab = Vocabulary::Build(input);                       // once per tokenizer
//   auto g = Grammar::Compile(R"({"type":"json_schema","schema":{...}})", vocab);   // or through GrammarCache
//   Matcher m(g);  /* per sequence: m.FillMask(bits); sample; m.Accept(token); */
//
// Spec forms (one JSON object with a "type" field):
//   {"type":"json_schema","schema":S}   a JSON document valid under JSON Schema S (schema.h lists the coverage)
//   {"type":"json_object"}              any JSON value whose top level is an object
//   {"type":"regex","pattern":P}        the whole output matches the ECMA-262 regex subset P (regex.h)
//   {"type":"choice","choices":[...]}   exactly one of the strings
//   {"type":"literal","text":T}         exactly T
//   {"type":"sequence","items":[...]}   the specs one after another
//   {"type":"any_of","items":[...]}     one of the specs
//   {"type":"repeat","item":X,"min":0,"max":N}   X repeated min..max times (max absent: unbounded)
// Errors: GrammarError (errors.h) with the JSON pointer inside the spec document and the keyword.
//
// Mask cache (the speed of Matcher::FillMask): for each automaton node that reads a byte, the tokens are classified
// once per grammar, walking the vocabulary trie with a stack that starts at that node and has nothing below it:
// accepted (some path reads the whole token inside the node's rule, or ends the rule exactly at the token's end —
// allowed whatever the stack below holds), uncertain (the rule can end inside the token; the bytes after the end
// depend on the callers) and rejected (everything else). A matcher ORs the accepted set and checks only the
// uncertain tokens against its real stack. Entries are computed on first use under a mutex, by any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/automaton.h"
#include "grammar/vocabulary.h"

namespace tokmeter::grammar {

struct MaskEntry {
  std::vector<uint64_t> bits;       // accepted, as a bitset (dense entries) ...
  std::vector<uint32_t> ids;        // ... or as ids (sparse entries)
  std::vector<uint32_t> uncertain;  // ids in trie (byte) order
  uint32_t maxTopDepth = 1;         // deepest stack frame the walk created, counting the start frame as 1
};

class Grammar {
 public:
  static std::shared_ptr<const Grammar> Compile(std::string_view spec, std::shared_ptr<const Vocabulary> vocabulary,
                                                const Limits& limits = {});
  // A grammar built directly from automata (tests, and the spec compiler).
  Grammar(Automata automata, std::shared_ptr<const Vocabulary> vocabulary, const Limits& limits);

  const Automata& automata() const noexcept { return automata_; }
  const Vocabulary& vocabulary() const noexcept { return *vocabulary_; }
  const std::shared_ptr<const Vocabulary>& vocabularyPtr() const noexcept { return vocabulary_; }
  const Limits& limits() const noexcept { return limits_; }
  size_t maskWords() const noexcept { return (vocabulary_->size() + 63) / 64; }

  // The mask cache entry of a node that reads bytes (computed on first use; thread-safe).
  std::shared_ptr<const MaskEntry> Entry(uint32_t node) const;
  size_t cachedEntries() const;

  // Byte horizons, kByteLanguages per node (index node * kByteLanguages + language): the trie walk accepts a whole
  // subtree when its bytes are in a byte language (vocabulary.h) and fewer than the language's horizon at a top
  // frame's node (WalkTrie). Over pairs (node q, language state s): horizon 0 when q reads no byte, or its edges do
  // not read every byte s allows exactly once; else 1 + the least horizon among the successor pairs (UINT32_MAX when
  // no horizon-0 pair is reachable). The value kept is the pair (q, start state)'s. So every string of the language
  // shorter than the horizon, read from q by byte edges alone, ends on a node that reads bytes: the frame stays
  // alive whatever the stack below holds.
  const uint32_t* horizons() const noexcept { return horizons_.data(); }

 private:
  void ComputeHorizons();

  Automata automata_;
  std::shared_ptr<const Vocabulary> vocabulary_;
  Limits limits_;
  mutable std::mutex mutex_;
  mutable std::vector<std::shared_ptr<const MaskEntry>> entries_;
  mutable size_t entry_bytes_ = 0;
  std::vector<ClosureKey> leaf_keys_;  // per rule: its closure's canonical text (<= 16 rules, < 1 MiB), else empty
  std::vector<uint32_t> horizons_;
};

}  // namespace tokmeter::grammar
