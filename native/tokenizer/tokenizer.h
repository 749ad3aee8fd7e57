// tokmeter::tokenizer::Tokenizer — an exact, native implementation of the Hugging Face tokenizers pipeline
// (added tokens -> normalizer -> pre-tokenizer -> model -> post-processor; decoders for the way back).
//
// Construction: Tokenizer::FromJson reads a tokenizer.json document itself, once: the small parts as a json::Value
// tree (json_value.h), model.vocab / model.merges with the purpose-built readers of json_scan.h; each component
// builds itself from its JSON (normalizers/, pre_tokenizers/, models/, post_processors/, decoders/).
// Tokenizer::FromTiktoken reads tiktoken ranks and goes through the same construction with a tokenizer.json-shaped
// tree made for the encoding (a Split pre-tokenizer, a ByteLevel decoder, the special tokens as added tokens).
//
// Lifetime and ownership: build one with FromJson or FromTiktoken; it is immutable afterwards and always held through
// std::shared_ptr<const Tokenizer>. Anything that must outlive a JS handle (a DecodeStream, an in-flight batch)
// keeps its own shared_ptr, so disposing the JS object never frees a tokenizer that is still in use.
//
// Threads: every const method may be called from any number of threads at once, without locks. Per-call working
// memory (regex match state, BPE symbols and heap, a word cache) lives in a thread-local scratch; nothing is shared
// between threads. A DecodeStream is single-threaded (one generation loop owns it).
//
// Errors: tokmeter::Error (native/util/error.h) with codes
//   ERR_TOKENIZER_SPEC         the document is malformed (the message names the JSON path and the problem)
//   ERR_TOKENIZER_UNSUPPORTED  a component type tokmeter does not implement (the message names its JSON path)
//   ERR_INVALID_ARGUMENT    text that is not valid UTF-8; a token id outside the vocabulary
//   ERR_TOKENIZER_INTERNAL  the regex engine failed (e.g. resource limit)
//
// Users: the addon (native/addon/js_tokenizer.cc; js_model.cc adapts DecodeStream to the engine's Detokenizer
// interface, native/engine/detokenizer.h) and the C++ tests. native/engine does not include this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokmeter::tokenizer {

namespace json {
class Value;
}

// Settings from outside tokenizer.json that change the pipeline (tokenizer_config.json's add_bos_token /
// add_eos_token, as transformers applies them): with bos_token set (the content of an added token), add_bos_token
// true puts it first in the post-processor's prefix when it is not there, false removes it from there; likewise
// eos_token / add_eos_token at the end of the suffix. A bos_token / eos_token that is not an added token is looked up
// in the model's vocabulary (some files list no added tokens); one that is in neither is an error naming
// tokenizer_config.json.
struct LoadOptions {
  std::optional<std::string> bos_token, eos_token;
  std::optional<bool> add_bos_token, add_eos_token;
};

// A tiktoken encoding: `ranks` is a .tiktoken file ("<base64> <rank>" per line) or the tiktoken npm package's JSON
// ({pat_str, special_tokens, bpe_ranks}). pattern / special_tokens override the package's (a .tiktoken file needs a
// pattern).
struct TiktokenOptions {
  std::optional<std::string> pattern;
  std::optional<std::vector<std::pair<std::string, uint32_t>>> special_tokens;
};

class Tokenizer : public std::enable_shared_from_this<Tokenizer> {
 public:
  // Reads a tokenizer.json document; `file` names it in messages. Throws tokmeter::Error (ERR_TOKENIZER_SPEC,
  // ERR_TOKENIZER_UNSUPPORTED) naming the JSON path at fault.
  static std::shared_ptr<const Tokenizer> FromJson(std::string_view tokenizer_json, const LoadOptions& options = {},
                                                   std::string_view file = "tokenizer.json");
  // Reads a tiktoken encoding (see TiktokenOptions).
  static std::shared_ptr<const Tokenizer> FromTiktoken(std::string_view ranks, const TiktokenOptions& options,
                                                       std::string_view file = "tiktoken ranks");
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Token ids of UTF-8 `text`. add_special_tokens applies the post-processor (e.g. a BOS id). Added/special tokens
  // written in the text are always recognised, as in the reference.
  std::vector<uint32_t> Encode(std::string_view text, bool add_special_tokens) const;
  // Appends the ids to `out` (reuse one vector across calls to avoid allocation).
  void EncodeInto(std::string_view text, bool add_special_tokens, std::vector<uint32_t>& out) const;
  // Number of tokens Encode would return, without building the id vector.
  size_t Count(std::string_view text, bool add_special_tokens) const;

  // Text of `ids`. Ids outside the vocabulary throw ERR_INVALID_ARGUMENT.
  std::string Decode(std::span<const uint32_t> ids, bool skip_special_tokens) const;

  // Largest id + 1, added tokens included.
  uint32_t VocabSize() const { return vocab_size_; }
  std::optional<uint32_t> TokenToId(std::string_view token) const;
  // The token string as written in tokenizer.json (byte-level alphabet for byte-level vocabularies).
  std::optional<std::string> IdToToken(uint32_t id) const;
  bool IsSpecial(uint32_t id) const;
  // Whether Decode accepts `id` (ids below VocabSize() may be holes that no token names).
  bool HasId(uint32_t id) const;

  struct Impl;

 private:
  Tokenizer();
  struct Ranks;  // a parsed tiktoken vocabulary (tokenizer.cc)
  static std::shared_ptr<const Tokenizer> Build(const json::Value& root, Ranks* ranks, const LoadOptions& options);
  std::unique_ptr<Impl> impl_;
  uint32_t vocab_size_ = 0;
};

// Incremental decoder for streaming generation: feed ids one at a time; each Step returns the new text that is
// now final (possibly empty), never half a UTF-8 character (a byte-level or byte-fallback token that ends inside
// a character is held back until the character completes). Flush returns what is held back, with incomplete
// bytes decoded as U+FFFD. The concatenation of all Step outputs plus Flush equals Decode(all ids) whenever the
// decoded text is prefix-stable. It is not when a later id changes text already emitted (ByteFallback shows a
// valid byte token as its character, then as U+FFFD once an invalid byte joins its group): the reference raises
// an error there; this stream keeps what it emitted and decodes the new ids on their own, so a generation of
// arbitrary ids never fails in its decoder.
// Algorithm: the reference's DecodeStream (decode a small window of ids, emit the suffix beyond the prefix).
class DecodeStream {
 public:
  DecodeStream(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens);
  std::string Step(uint32_t id);
  std::string Flush();
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tok_; }

 private:
  std::string UnemittedText() const;  // ids not yet emitted, decoded without the emitted context
  std::shared_ptr<const Tokenizer> tok_;
  bool skip_special_;
  std::vector<uint32_t> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

}  // namespace tokmeter::tokenizer
