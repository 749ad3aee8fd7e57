// tokmeter::grammar::Vocabulary — a tokenizer's tokens as bytes, plus the token trie the mask computation walks.
//
// Build() turns the tokenizer's token strings (as tokenizer.json spells them) into the bytes each token decodes to:
//   kByteLevel      GPT-2 byte-level BPE: every character maps back through the byte↔unicode table; a token with a
//                   character outside the table (an added token spelled as plain text) is taken as its UTF-8 bytes;
//   kSentencePiece  "▁" (U+2581) is a space and "<0xXX>" is the byte XX (byte fallback);
//   kPlain          the token string's UTF-8 bytes.
// Special tokens (control tokens such as <|eot_id|>, BOS, padding) and tokens that decode to no bytes are never
// allowed by a grammar; the EOS ids are allowed exactly when the document is complete.
//
// The trie: the distinct token byte strings in depth-first (lexicographic) order; node i has a byte, a depth, the
// index just past its subtree (`next`) and the ids that end there. Immutable after Build; shared by every grammar
// compiled over it (std::shared_ptr<const Vocabulary>), safe to read from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tokmeter::grammar {

struct MaskEntry;

// Byte languages the trie records per subtree, so that a mask walk can accept a whole subtree at once (matcher.h,
// WalkTrie). Each is a small DFA over bytes in which every state is accepting (a token may stop anywhere):
//   0  ASCII a JSON string holds unescaped: 0x20-0x7E but '"' and '\\' (one state);
//   1  [0-9A-Za-z] (one state);
//   2  JSON string text as UTF-8: language 0 plus every well-formed multi-byte UTF-8 sequence (no overlongs, no
//      surrogates, at most U+10FFFF), cut anywhere (eight states: 0 between characters, the others inside one).
inline constexpr int kByteLanguages = 3;
inline constexpr int kByteLanguageStates = 8;  // the most states of one language
struct ByteLanguage {
  int states = 1;
  int8_t next[kByteLanguageStates][256];  // -1: the byte is outside the language there
};
const ByteLanguage& GetByteLanguage(int language);
// The bit of (language, state) in Vocabulary::trieLanguagesBelow.
constexpr int ByteLanguageBit(int language, int state) noexcept { return language < 2 ? language : 2 + state; }

// The canonical text of a rule's closure (the rule and the rules it reaches), the key of mask cache entries shared
// per vocabulary, with its hash computed once.
struct ClosureKey {
  std::string text;  // empty: the rule has no shared entries
  size_t hash = 0;
  bool operator==(const ClosureKey& o) const noexcept { return hash == o.hash && text == o.text; }
};
struct ClosureKeyHash {
  size_t operator()(const ClosureKey& k) const noexcept { return k.hash; }
};

enum class VocabKind { kByteLevel, kSentencePiece, kPlain };

struct VocabularyInput {
  std::vector<std::string> tokens;  // by id; ids with no token are empty strings
  std::vector<bool> special;        // by id (may be shorter: the rest are not special)
  std::vector<uint32_t> eos;
  VocabKind kind = VocabKind::kByteLevel;
};

// The spelling of a tokenizer.json vocabulary: SentencePiece when "▁" or <0xXX> byte tokens are common, byte-level
// when the GPT-2 byte alphabet's space/newline characters (Ġ, Ċ) are, else plain.
VocabKind DetectVocabKind(const std::vector<std::string>& tokens);

class Vocabulary {
 public:
  static std::shared_ptr<const Vocabulary> Build(const VocabularyInput& input);
  // Byte-level BPE's table, exposed for tests: the character of byte b.
  static uint32_t ByteLevelChar(uint8_t b);

  size_t size() const noexcept { return size_; }
  std::string_view bytes(uint32_t id) const noexcept {
    return std::string_view(bytes_).substr(offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  bool usable(uint32_t id) const noexcept {
    return usable_[id];
  }  // may be allowed by a grammar (not special, not empty)
  const std::vector<uint32_t>& eos() const noexcept { return eos_; }
  size_t maxTokenBytes() const noexcept { return max_len_; }

  // Mask cache entries shared by every grammar over this vocabulary, keyed by the canonical text of a rule and the
  // rules it reaches (`closure`) plus the node's offset in its rule (such an entry depends on nothing else). The
  // closure text is kept once for all of its nodes. Thread-safe; bounded by bytes (entries past the budget are not
  // kept).
  std::shared_ptr<const MaskEntry> FindShared(const ClosureKey& closure, uint32_t offset) const;
  void PutShared(const ClosureKey& closure, uint32_t offset, std::shared_ptr<const MaskEntry> entry,
                 size_t bytes) const;

  // Trie in depth-first order.
  size_t trieSize() const noexcept { return trie_byte_.size(); }
  uint8_t trieByte(size_t i) const noexcept { return trie_byte_[i]; }
  uint32_t trieDepth(size_t i) const noexcept { return trie_depth_[i]; }
  uint32_t trieNext(size_t i) const noexcept { return trie_next_[i]; }
  std::span<const uint32_t> trieTokens(size_t i) const noexcept {
    return std::span<const uint32_t>(trie_ids_.data() + trie_ids_begin_[i],
                                     trie_ids_begin_[i + 1] - trie_ids_begin_[i]);
  }
  // Bit ByteLanguageBit(l, s) set when the bytes below trie node i (in every token of its subtree, past i's own
  // depth), read from state s of byte language l, stay in that language; and the deepest depth in that subtree
  // (i's own depth for a leaf).
  uint16_t trieLanguagesBelow(size_t i) const noexcept { return trie_languages_below_[i]; }
  uint32_t trieDepthBelow(size_t i) const noexcept { return trie_depth_below_[i]; }
  // The ids ending at trie nodes [begin, end): contiguous, as the trie is in depth-first order.
  std::span<const uint32_t> trieTokensIn(size_t begin, size_t end) const noexcept {
    return std::span<const uint32_t>(trie_ids_.data() + trie_ids_begin_[begin],
                                     trie_ids_begin_[end] - trie_ids_begin_[begin]);
  }
  // Trie node where token `id` ends (usable ids only).
  uint32_t trieNodeOf(uint32_t id) const noexcept { return node_of_[id]; }

 private:
  size_t size_ = 0;
  std::string bytes_;
  std::vector<uint32_t> offsets_;
  std::vector<bool> usable_;
  std::vector<uint32_t> eos_;
  size_t max_len_ = 0;
  std::vector<uint8_t> trie_byte_;
  std::vector<uint32_t> trie_depth_, trie_next_, trie_ids_begin_, trie_ids_, node_of_;
  std::vector<uint16_t> trie_languages_below_;
  std::vector<uint32_t> trie_depth_below_;
  mutable std::mutex shared_mutex_;
  mutable std::unordered_map<ClosureKey, std::unordered_map<uint32_t, std::shared_ptr<const MaskEntry>>, ClosureKeyHash>
      shared_;
  mutable size_t shared_bytes_ = 0;
};

}  // namespace tokmeter::grammar
