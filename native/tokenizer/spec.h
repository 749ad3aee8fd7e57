// tokmeter::tokenizer::Spec — the compact, already-validated description of a tokenizer pipeline.
//
// Contract: the TypeScript loader (src/tokenizer/spec.ts) parses and validates tokenizer.json / tiktoken rank
// files and hands this plain structure to native code (through native/addon/js_tokenizer.cc); C++ tests build it
// directly. Plain data only: no ownership subtleties, copyable, no Node types. Tokenizer::Create() checks every
// field again and throws tokmeter::Error("ERR_TOKENIZER_SPEC", "<field>: <reason>") for anything it cannot honour,
// so an unsupported component is always a clear error, never a silent substitute.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokmeter::tokenizer {

// One stage of a normalizer chain (a Sequence is flattened by the loader).
struct NormalizerSpec {
  enum class Kind { kNFC, kNFD, kNFKC, kNFKD, kLowercase, kReplace, kPrepend, kStrip, kBert };
  Kind kind = Kind::kNFC;
  std::string pattern;             // Replace: literal (is_regex=false) or regex source
  bool is_regex = false;           // Replace
  std::string content;             // Replace: replacement; Prepend: prefix
  bool left = true, right = true;  // Strip
  // Bert
  bool clean_text = true, handle_chinese_chars = true, lowercase = true;
  std::optional<bool> strip_accents;  // Bert: null means "same as lowercase"
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// One stage of a pre-tokenizer chain (a Sequence is flattened by the loader).
struct PreTokenizerSpec {
  enum class Kind { kSplit, kByteLevel, kMetaspace, kWhitespace, kWhitespaceSplit, kDigits, kPunctuation, kBert };
  Kind kind = Kind::kSplit;
  std::string pattern;   // Split: regex source (Oniguruma syntax as in tokenizer.json) or literal
  bool is_regex = true;  // Split
  bool invert = false;   // Split
  SplitBehavior behavior = SplitBehavior::kIsolated;                                 // Split, Punctuation
  bool add_prefix_space = false;                                                     // ByteLevel
  bool use_regex = true;                                                             // ByteLevel
  std::string replacement = "\xE2\x96\x81";                                          // Metaspace ("▁")
  enum class Prepend { kAlways, kNever, kFirst } prepend_scheme = Prepend::kAlways;  // Metaspace
  bool split = true;                                                                 // Metaspace
  bool individual_digits = false;                                                    // Digits
};

struct DecoderSpec {
  enum class Kind { kByteLevel, kMetaspace, kByteFallback, kFuse, kStrip, kReplace, kWordPiece };
  Kind kind = Kind::kByteLevel;
  std::string pattern;                       // Replace (literal only)
  std::string content;                       // Replace: replacement; Strip: the character stripped
  uint32_t start = 0, stop = 0;              // Strip
  std::string replacement = "\xE2\x96\x81";  // Metaspace
  bool prepend = true;                       // Metaspace: prepend_scheme != never
  std::string prefix = "##";                 // WordPiece
  bool cleanup = true;                       // WordPiece
};

struct AddedTokenSpec {
  uint32_t id = 0;
  std::string content;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

struct ModelSpec {
  enum class Kind { kBPE, kWordPiece, kUnigram };
  Kind kind = Kind::kBPE;
  // vocab[id] is the token string exactly as written in tokenizer.json (UTF-8); ids with no token are absent
  // from `present` (present[id] == false). For tiktoken, `vocab` holds raw bytes and vocab_is_bytes = true.
  std::vector<std::string> vocab;
  std::vector<bool> present;
  bool vocab_is_bytes = false;
  // BPE: merges as (left id, right id) in rank order. merges_from_ranks: derive merges from the vocab, a pair's
  // priority being the id of the merged token (tiktoken semantics).
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  // Alternatively, merges as text, resolved against `vocab` by Tokenizer::Create (off the JS thread): one merge
  // per line, "left right" (merges_text_pairs = false), or left and right on consecutive lines (true, for the
  // [left, right] array form whose tokens may contain spaces). Used only when `merges` is empty.
  std::string merges_text;
  bool merges_text_pairs = false;
  // Or the raw text of tokenizer.json's fields, parsed by Tokenizer::Create (off the JS thread, see json_scan.h)
  // instead of vocab/present and merges: `vocab_json` is model.vocab (an object token -> id), `merges_json` is
  // model.merges (an array). Borrowed: the caller keeps the bytes alive until Create returns (the addon holds a
  // reference to the JS Buffer). Used when non-empty.
  std::string_view vocab_json, merges_json;
  // Or tiktoken ranks, parsed by Create: a .tiktoken file (kTiktoken) or the tiktoken npm package's bpe_ranks JSON
  // string literal, quotes included (kPackageJsonString). Borrowed like vocab_json. Implies vocab_is_bytes.
  enum class RanksFormat { kNone, kTiktoken, kPackageJsonString };
  RanksFormat ranks_format = RanksFormat::kNone;
  std::string_view ranks;
  // The unknown token by its string, resolved by Create against the model vocabulary (when unk_id is not set).
  std::optional<std::string> unk_token;
  bool merges_from_ranks = false;
  bool ignore_merges = false, byte_fallback = false, fuse_unk = false;
  std::optional<uint32_t> unk_id;
  // WordPiece
  std::string continuing_subword_prefix = "##";
  uint32_t max_input_chars_per_word = 100;
  // Unigram: scores[id]
  std::vector<double> scores;
};

struct Spec {
  ModelSpec model;
  std::vector<NormalizerSpec> normalizers;
  std::vector<PreTokenizerSpec> pre_tokenizers;
  std::vector<DecoderSpec> decoders;  // empty: tokens joined with ' ' (as the reference does with no decoder)
  bool has_decoder = false;
  std::vector<AddedTokenSpec> added_tokens;
  // Post-processing for add_special_tokens = true, single sequence: prefix ids, the sequence, suffix ids.
  std::vector<uint32_t> post_prefix, post_suffix;
};

}  // namespace tokmeter::tokenizer
