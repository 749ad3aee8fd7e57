#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <unordered_map>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/decoders/decoder.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/models/model.h"
#include "tokenizer/normalizers/normalizer.h"
#include "tokenizer/parallel.h"
#include "tokenizer/pretokenizers/pre_tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {

namespace {
[[noreturn]] void SpecError(const std::string& msg) { throw tokmeter::Error("ERR_TOKENIZER_SPEC", msg); }

struct Scratch {
  PreTokScratch pre;
  ModelScratch model;
  std::string norm_a, norm_b;
};
Scratch& ThreadScratch() {
  thread_local Scratch s;
  return s;
}
}  // namespace

struct Tokenizer::Impl {
  // id -> string as in tokenizer.json ("" when absent). Read it through Tokens(): for a tiktoken vocabulary it is
  // derived from `keys` on first use (building 200k byte-level strings at load cost ~20% of the load).
  mutable TokenStrings tokens;
  bool tokens_deferred = false;
  std::vector<std::pair<uint32_t, std::string>> deferred_added;  // added token contents, while tokens is deferred
  mutable std::once_flag tokens_once;
  const TokenStrings& Tokens() const {
    if (tokens_deferred)
      std::call_once(tokens_once, [this] {
        tokens.assign(present.size(), std::string());
        for (size_t id = 0; id < keys.size(); ++id)
          if (present[id]) tokens[id] = BytesToByteLevel(keys[id]);
        for (const auto& [id, content] : deferred_added) tokens[id] = content;
      });
    return tokens;
  }
  std::vector<uint8_t> present;  // id -> 1 when the id has a token
  std::vector<uint8_t> special;  // id -> 1 for special added tokens
  mutable TokenMap token_map;    // tokens -> id (added tokens win, as in the reference); built on first use
  mutable std::once_flag token_map_once;
  std::vector<uint32_t> added_ids;
  std::vector<uint8_t> is_added;  // id -> 1 for added tokens (they decode from their content)
  TokenStrings keys;              // model-domain strings (raw bytes for byte-level)
  TokenMap key_map;
  bool byte_level = false;
  bool later_duplicate_wins = false;  // Unigram: a repeated piece maps to its later id (as in the reference)
  bool fast_byte_decode = false;      // decoder chain is exactly [ByteLevel]
  // Byte-level fast path: id -> bytes for the few ids whose bytes are not keys[id] (added tokens, tokens outside the
  // byte-level alphabet). Sparse: a dense 200k-string table cost 6 MB of page faults per load.
  std::unordered_map<uint32_t, std::string> decode_bytes;
  static inline const std::string kNoBytes;

  const std::string& DecodeBytes(uint32_t id) const {
    if (id < keys.size() && !keys[id].empty() && !is_added[id]) return keys[id];
    auto it = decode_bytes.find(id);
    return it == decode_bytes.end() ? kNoBytes : it->second;
  }
  const TokenMap& TokenIds() const {
    std::call_once(token_map_once, [this] {
      token_map.Init(&Tokens(), tokens.size());
      for (size_t id = 0; id < keys.size(); ++id)
        if (present[id]) token_map.Insert(static_cast<uint32_t>(id), /*overwrite=*/later_duplicate_wins);
      for (uint32_t id : added_ids) token_map.Insert(id, /*overwrite=*/true);
    });
    return token_map;
  }
  std::unique_ptr<NormalizerChain> normalizer;
  std::unique_ptr<PreTokenizerChain> pre;
  std::unique_ptr<Model> model;
  std::vector<std::unique_ptr<Decoder>> decoders;
  bool has_decoder = false;
  TokenMatcher raw_tokens, normalized_tokens;
  std::vector<uint32_t> prefix, suffix;

  template <class Sink>
  void Run(std::string_view text, bool add_special, Sink& sink) const;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

namespace {
// Thrown by CreateFrom when a vocabulary parsed without its duplicate-key pass turns out to repeat a token.
struct RetryWithExactVocab {};

// Builds `map` over keys[id] for the ids with present[id]; returns the first id whose key was already there (kNone
// if none). Hashes everything first, then inserts with the slot of a later key prefetched: the table is larger than
// the caches and building it was dominated by misses.
uint32_t BuildMap(TokenMap& map, const TokenStrings& keys, const std::vector<uint8_t>& present, size_t n,
                  bool overwrite) {
  map.Init(&keys, n);
  BigVector<uint64_t> hashes(n);
  for (size_t id = 0; id < n; ++id) hashes[id] = present[id] ? HashBytes(keys[id]) : 0;
  constexpr size_t kAhead = 16;
  uint32_t dup = TokenMap::kNone;
  for (size_t id = 0; id < n; ++id) {
    if (id + kAhead < n) map.Prefetch(hashes[id + kAhead]);
    if (!present[id] || keys[id].empty()) continue;
    if (!map.InsertHashed(static_cast<uint32_t>(id), hashes[id], overwrite) && dup == TokenMap::kNone)
      dup = static_cast<uint32_t>(id);
  }
  return dup;
}
}  // namespace

std::shared_ptr<const Tokenizer> Tokenizer::Create(const Spec& spec) {
  try {
    return CreateFrom(spec, /*exact_json_vocab=*/false);
  } catch (const RetryWithExactVocab&) {
    return CreateFrom(spec, /*exact_json_vocab=*/true);
  }
}

std::shared_ptr<const Tokenizer> Tokenizer::CreateFrom(const Spec& spec, bool exact_json_vocab) {
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  Impl& m = *t->impl_;
  const auto& ms = spec.model;

  // The vocabulary: given as strings (vocab/present), or as raw tokenizer.json / tiktoken bytes parsed here.
  json::Vocab parsed;
  const bool from_json = !ms.vocab_json.empty();
  const bool from_ranks = ms.ranks_format != ModelSpec::RanksFormat::kNone;
  if (from_json && from_ranks) SpecError("model: both vocab_json and ranks are set");
  // model.merges as JSON is parsed on a helper thread while the vocabulary is parsed here (they are independent);
  // a merges error is held and reported where it was before, after every vocabulary check.
  const bool merges_from_json = ms.merges.empty() && !ms.merges_json.empty();
  json::StringPairs early_pairs;
  std::exception_ptr merges_error;
  if (from_json) {
    // Fast path: no duplicate-key pass in the parser; the token-string map built below finds any repeated token,
    // and then (or on any error, which a duplicated key may explain) the vocabulary is parsed again exactly.
    auto parse_vocab = [&] {
      try {
        parsed = json::ParseVocabObject(ms.vocab_json, "model.vocab", exact_json_vocab);
      } catch (const tokmeter::Error&) {
        if (exact_json_vocab) throw;
        throw RetryWithExactVocab{};
      }
    };
    if (merges_from_json) {
      std::exception_ptr vocab_error;
      auto part = [&](size_t i) {
        try {
          if (i == 0)
            parse_vocab();
          else
            early_pairs = json::ParseMerges(ms.merges_json, "model.merges");
        } catch (...) {
          (i == 0 ? vocab_error : merges_error) = std::current_exception();
        }
      };
      ParallelFor(2, 2, FnRef<void(size_t)>(part));
      if (vocab_error) std::rethrow_exception(vocab_error);
    } else {
      parse_vocab();
    }
  } else if (from_ranks) {
    if (ms.ranks_format == ModelSpec::RanksFormat::kTiktoken) {
      parsed = json::ParseTiktokenRanks(ms.ranks, false, "tiktoken ranks");
    } else {
      parsed = json::ParseTiktokenRanks(json::DecodeString(ms.ranks, "bpe_ranks"), true, "bpe_ranks");
    }
  }
  const bool owned = from_json || from_ranks;
  const std::vector<bool>& present = owned ? parsed.present : ms.present;
  const size_t n = owned ? parsed.tokens.size() : ms.vocab.size();
  if (present.size() != n) SpecError("model.vocab: present[] and vocab[] differ in length");
  const bool vocab_is_bytes = ms.vocab_is_bytes || from_ranks;

  for (const auto& p : spec.pre_tokenizers)
    if (p.kind == PreTokenizerSpec::Kind::kByteLevel) m.byte_level = true;
  if (vocab_is_bytes) m.byte_level = true;
  m.later_duplicate_wins = ms.kind == ModelSpec::Kind::kUnigram;
  if (m.byte_level && ms.kind != ModelSpec::Kind::kBPE) SpecError("model.type: ByteLevel needs a BPE model");

  size_t total = n;
  // An id far beyond the number of tokens would only make us allocate gigabytes for nothing (the rule model.vocab
  // follows in json_scan.cc and spec.ts).
  const size_t tokens = n + spec.added_tokens.size();
  for (size_t i = 0; i < spec.added_tokens.size(); ++i) {
    const uint32_t id = spec.added_tokens[i].id;
    if (id > tokens * 16 + 65536)
      SpecError("added_tokens[" + std::to_string(i) + "].id: id " + std::to_string(id) +
                " is far beyond the vocabulary's " + std::to_string(tokens) + " tokens");
    total = std::max<size_t>(total, size_t{id} + 1);
  }
  if (total > 0xFFFFFFF0u) SpecError("model.vocab: too many tokens");
  m.present.assign(total, 0);
  m.special.assign(total, 0);
  m.is_added.assign(total, 0);
  // A parsed vocabulary moves into place whole (tokens, or keys for raw bytes): no second 200k-string table.
  if (owned && vocab_is_bytes) {
    m.keys = std::move(parsed.tokens);
    m.tokens_deferred = true;  // see Impl::Tokens()
  } else if (owned) {
    m.tokens = std::move(parsed.tokens);
    m.tokens.resize(total);
    m.keys.assign(n, std::string());
  } else {
    m.tokens.assign(total, std::string());
    m.keys.assign(n, std::string());
  }
  for (size_t id = 0; id < n; ++id) {
    if (!present[id]) continue;
    m.present[id] = 1;
    if (vocab_is_bytes) {
      if (owned) continue;
      m.keys[id] = ms.vocab[id];
      m.tokens[id] = BytesToByteLevel(m.keys[id]);
    } else {
      if (!owned) m.tokens[id] = ms.vocab[id];
      const std::string& v = m.tokens[id];
      if (!utf8::IsValid(v)) SpecError("model.vocab[" + std::to_string(id) + "]: not valid UTF-8");
      if (m.byte_level) {
        // Tokens outside the byte-level alphabet can never be produced by the model; they get no key.
        if (!ByteLevelToBytesExact(v, m.keys[id])) m.keys[id].clear();
      } else {
        m.keys[id] = v;
      }
    }
  }
  parsed = {};

  // Token strings -> model ids (tokenizer.json spelling), for merges and unk_token given as text. Built first for a
  // JSON vocabulary: it is where a duplicated token (a repeated JSON key, see above) shows.
  TokenMap vocab_ids;
  bool vocab_ids_built = false;
  auto build_vocab_ids = [&] {
    if (vocab_ids_built) return;
    uint32_t dup = BuildMap(vocab_ids, m.tokens, m.present, n, /*overwrite=*/false);
    vocab_ids_built = true;
    if (dup != TokenMap::kNone && from_json && !exact_json_vocab) throw RetryWithExactVocab{};
  };
  auto vocab_id = [&](std::string_view tok) {
    build_vocab_ids();
    return vocab_ids.Find(tok);
  };
  if (from_json) build_vocab_ids();

  bool unique_keys = false;
  {
    // Unigram: a duplicate piece maps to its later id, as in the reference.
    const bool unigram = ms.kind == ModelSpec::Kind::kUnigram;
    uint32_t dup = BuildMap(m.key_map, m.keys, m.present, n, /*overwrite=*/unigram);
    if (dup != TokenMap::kNone && !vocab_is_bytes && !unigram)
      SpecError("model.vocab: duplicate token for id " + std::to_string(dup));
    unique_keys = dup == TokenMap::kNone;
  }

  // Merges given as text or JSON: resolve them against the vocabulary here, off the JS thread.
  BigVector<std::pair<uint32_t, uint32_t>> resolved;
  std::span<const std::pair<uint32_t, uint32_t>> merges = ms.merges;
  auto id_of = [&](std::string_view tok, size_t i) {
    uint32_t id = vocab_id(tok);
    if (id == TokenMap::kNone)
      SpecError("model.merges[" + std::to_string(i) + "]: \"" + std::string(tok) + "\" is not in model.vocab");
    return id;
  };
  if (ms.merges.empty() && !ms.merges_json.empty()) {
    if (merges_error) std::rethrow_exception(merges_error);
    json::StringPairs pairs = from_json ? std::move(early_pairs) : json::ParseMerges(ms.merges_json, "model.merges");
    build_vocab_ids();
    // Pipelined: hash merge i + kAhead and prefetch its slots while resolving merge i (each lookup is otherwise a
    // cache miss on a multi-MB table; 450k merges).
    constexpr size_t kAhead = 16;
    uint64_t ring[kAhead][2];
    const size_t count = pairs.size();
    resolved.resize(count);
    for (size_t i = 0; i < count + kAhead; ++i) {
      if (i >= kAhead) {  // resolve merge j, whose slot (ring[j % kAhead], about to be reused) was prefetched
        size_t j = i - kAhead;
        uint32_t a = vocab_ids.FindHashed(pairs.Left(j), ring[j % kAhead][0]);
        uint32_t b = vocab_ids.FindHashed(pairs.Right(j), ring[j % kAhead][1]);
        if (a == TokenMap::kNone) id_of(pairs.Left(j), j);  // throws, naming the merge
        if (b == TokenMap::kNone) id_of(pairs.Right(j), j);
        resolved[j] = {a, b};
      }
      if (i < count) {
        uint64_t ha = HashBytes(pairs.Left(i)), hb = HashBytes(pairs.Right(i));
        ring[i % kAhead][0] = ha;
        ring[i % kAhead][1] = hb;
        vocab_ids.Prefetch(ha);
        vocab_ids.Prefetch(hb);
      }
    }
    merges = resolved;
  } else if (ms.merges.empty() && !ms.merges_text.empty()) {
    std::string_view text = ms.merges_text;
    size_t pos = 0, index = 0;
    auto next_line = [&](std::string_view& line) {
      if (pos > text.size()) return false;
      size_t e = text.find('\n', pos);
      if (e == std::string_view::npos) e = text.size();
      line = text.substr(pos, e - pos);
      pos = e + 1;
      return true;
    };
    std::string_view a, b;
    while (next_line(a)) {
      if (ms.merges_text_pairs) {
        if (!next_line(b)) SpecError("model.merges[" + std::to_string(index) + "]: expected [left, right]");
      } else {
        size_t sp = a.find(' ');
        if (sp == std::string_view::npos || a.find(' ', sp + 1) != std::string_view::npos)
          SpecError("model.merges[" + std::to_string(index) + "]: expected \"left right\"");
        b = a.substr(sp + 1);
        a = a.substr(0, sp);
      }
      resolved.emplace_back(id_of(a, index), id_of(b, index));
      ++index;
    }
    merges = resolved;
  }

  // unk_token given by its string (the JSON path): resolve it like the TS loader does.
  ModelSpec with_unk;
  const ModelSpec* model_spec = &ms;
  if (!ms.unk_id && ms.unk_token) {
    uint32_t id = vocab_id(*ms.unk_token);
    if (id == TokenMap::kNone) SpecError("model.unk_token: \"" + *ms.unk_token + "\" is not in model.vocab");
    with_unk = ms;  // cheap: the JSON path leaves the vectors of `ms` empty
    with_unk.unk_id = id;
    model_spec = &with_unk;
  }

  m.normalizer = std::make_unique<NormalizerChain>(spec.normalizers);
  m.pre = std::make_unique<PreTokenizerChain>(spec.pre_tokenizers);
  const ModelSpec& mspec = *model_spec;
  switch (ms.kind) {
    case ModelSpec::Kind::kBPE: m.model = MakeBpe(mspec, merges, m.keys, m.key_map, m.byte_level, unique_keys); break;
    case ModelSpec::Kind::kWordPiece: m.model = MakeWordPiece(mspec, m.keys, m.key_map); break;
    case ModelSpec::Kind::kUnigram: m.model = MakeUnigram(mspec, m.keys, m.key_map); break;
  }
  if (mspec.unk_id && (*mspec.unk_id >= n || !m.present[*mspec.unk_id]))
    SpecError("model.unk_token: not in the vocabulary");

  // Added tokens.
  RegexScratch rx;
  std::string na, nb;
  for (size_t i = 0; i < spec.added_tokens.size(); ++i) {
    const auto& a = spec.added_tokens[i];
    if (a.content.empty()) SpecError("added_tokens[" + std::to_string(i) + "].content: must not be empty");
    if (!utf8::IsValid(a.content)) SpecError("added_tokens[" + std::to_string(i) + "].content: not valid UTF-8");
    if (m.tokens_deferred)
      m.deferred_added.emplace_back(a.id, a.content);
    else
      m.tokens[a.id] = a.content;
    m.present[a.id] = 1;
    m.is_added[a.id] = 1;
    if (a.special) m.special[a.id] = 1;
    TokenMatcher::Entry e{a.id, a.lstrip, a.rstrip, a.single_word};
    if (a.normalized) {
      std::string_view norm = m.normalizer->Normalize(a.content, na, nb, rx);
      m.normalized_tokens.Add(norm, e);
    } else {
      m.raw_tokens.Add(a.content, e);
    }
  }
  for (const auto& a : spec.added_tokens) m.added_ids.push_back(a.id);

  // Decoders.
  m.has_decoder = spec.has_decoder;
  for (size_t i = 0; i < spec.decoders.size(); ++i)
    m.decoders.push_back(MakeDecoder(spec.decoders[i], "decoder[" + std::to_string(i) + "]"));
  m.fast_byte_decode =
      spec.has_decoder && spec.decoders.size() == 1 && spec.decoders[0].kind == DecoderSpec::Kind::kByteLevel;
  if (m.fast_byte_decode) {
    for (size_t id = 0; id < total; ++id) {
      if (!m.present[id]) continue;
      // Model tokens decode to their model-domain bytes; only added tokens and tokens outside the byte-level
      // alphabet need their own entry.
      if (id < n && !m.keys[id].empty() && !m.is_added[id]) continue;
      // (Added tokens and tokens outside the alphabet; with deferred tokens only added ones reach here.)
      std::string_view token = m.tokens_deferred ? std::string_view() : std::string_view(m.tokens[id]);
      if (m.tokens_deferred)
        for (const auto& [aid, content] : m.deferred_added)
          if (aid == id) token = content;
      ByteLevelToBytes(token, m.decode_bytes[static_cast<uint32_t>(id)]);
    }
  }

  for (uint32_t id : spec.post_prefix)
    if (id >= total || !m.present[id])
      SpecError("post_processor: special token id " + std::to_string(id) + " is not in the vocabulary");
  for (uint32_t id : spec.post_suffix)
    if (id >= total || !m.present[id])
      SpecError("post_processor: special token id " + std::to_string(id) + " is not in the vocabulary");
  m.prefix = spec.post_prefix;
  m.suffix = spec.post_suffix;
  t->vocab_size_ = static_cast<uint32_t>(total);
  return t;
}

template <class Sink>
void Tokenizer::Impl::Run(std::string_view text, bool add_special, Sink& sink) const {
  if (!utf8::IsValid(text)) throw tokmeter::Error("ERR_INVALID_ARGUMENT", "text is not valid UTF-8");
  Scratch& s = ThreadScratch();
  if (add_special)
    for (uint32_t id : prefix) sink.Push(id);
  auto on_token = [&](uint32_t id) { sink.Push(id); };
  auto on_word = [&](std::string_view w) { model->Tokenize(w, s.model, sink); };
  auto pretok = [&](std::string_view piece, bool at_start) {
    if (pre->size() == 0) {
      if (!piece.empty()) model->Tokenize(piece, s.model, sink);
    } else {
      pre->Run(piece, at_start, s.pre, FnRef<void(std::string_view)>(on_word));
    }
  };
  auto on_raw_text = [&](std::string_view piece, size_t offset) {
    std::string_view norm = piece;
    std::string own;
    if (!normalizer->empty()) {
      norm = normalizer->Normalize(piece, s.norm_a, s.norm_b, s.pre.rx);
      if (norm.data() != piece.data()) {
        own.assign(norm);  // the scratch buffers are reused by added-token normalization below
        norm = own;
      }
    }
    if (normalized_tokens.empty()) {
      pretok(norm, offset == 0);
    } else {
      auto on_text2 = [&](std::string_view p2, size_t off2) { pretok(p2, offset == 0 && off2 == 0); };
      normalized_tokens.Split(norm, FnRef<void(std::string_view, size_t)>(on_text2), FnRef<void(uint32_t)>(on_token));
    }
  };
  if (raw_tokens.empty()) {
    if (!text.empty()) on_raw_text(text, 0);
  } else {
    raw_tokens.Split(text, FnRef<void(std::string_view, size_t)>(on_raw_text), FnRef<void(uint32_t)>(on_token));
  }
  if (add_special)
    for (uint32_t id : suffix) sink.Push(id);
}

std::vector<uint32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  std::vector<uint32_t> out;
  EncodeInto(text, add_special_tokens, out);
  return out;
}

void Tokenizer::EncodeInto(std::string_view text, bool add_special_tokens, std::vector<uint32_t>& out) const {
  IdSink sink;
  sink.out = &out;
  impl_->Run(text, add_special_tokens, sink);
}

size_t Tokenizer::Count(std::string_view text, bool add_special_tokens) const {
  IdSink sink;
  impl_->Run(text, add_special_tokens, sink);
  return sink.count;
}

std::string Tokenizer::Decode(std::span<const uint32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  for (uint32_t id : ids)
    if (id >= vocab_size_ || !m.present[id])
      throw tokmeter::Error(
          "ERR_INVALID_ARGUMENT",
          "token id " + std::to_string(id) + " is not in the vocabulary (size " + std::to_string(vocab_size_) + ")");
  if (m.fast_byte_decode) {
    std::string bytes;
    for (uint32_t id : ids)
      if (!(skip_special && m.special[id])) bytes += m.DecodeBytes(id);
    std::string out;
    utf8::AppendLossy(out, bytes);
    return out;
  }
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (uint32_t id : ids)
    if (!(skip_special && m.special[id])) toks.push_back(m.Tokens()[id]);
  if (!m.has_decoder) {
    std::string out;
    for (size_t i = 0; i < toks.size(); ++i) {
      if (i) out.push_back(' ');
      out += toks[i];
    }
    return out;
  }
  for (const auto& d : m.decoders) d->DecodeChain(toks);
  std::string out;
  for (const auto& t : toks) out += t;
  return out;
}

std::optional<uint32_t> Tokenizer::TokenToId(std::string_view token) const {
  uint32_t id = impl_->TokenIds().Find(token);
  if (id == TokenMap::kNone) return std::nullopt;
  return id;
}

std::optional<std::string> Tokenizer::IdToToken(uint32_t id) const {
  if (id >= vocab_size_ || !impl_->present[id]) return std::nullopt;
  return impl_->Tokens()[id];
}

bool Tokenizer::HasId(uint32_t id) const { return id < vocab_size_ && impl_->present[id]; }

bool Tokenizer::IsSpecial(uint32_t id) const { return id < vocab_size_ && impl_->special[id]; }

DecodeStream::DecodeStream(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens)
    : tok_(std::move(tokenizer)), skip_special_(skip_special_tokens) {
  if (!tok_) throw tokmeter::Error("ERR_INVALID_ARGUMENT", "DecodeStream needs a tokenizer");
}

std::string DecodeStream::Step(uint32_t id) {
  if (id >= tok_->VocabSize() || !tok_->IdToToken(id))
    throw tokmeter::Error("ERR_INVALID_ARGUMENT", "token id " + std::to_string(id) + " is not in the vocabulary");
  ids_.push_back(id);
  std::string text = tok_->Decode(ids_, skip_special_);
  // Hold back text that ends inside a character (U+FFFD from an incomplete sequence), as the reference does.
  bool incomplete = text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
  if (text.size() <= prefix_.size() || incomplete) return std::string();
  std::string fresh;
  if (text.compare(0, prefix_.size(), prefix_) == 0) {
    fresh = text.substr(prefix_.size());
  } else {
    // A new token changed how text already emitted decodes (ByteFallback turns a byte it has already shown as a
    // character into U+FFFD once an invalid byte follows it). The reference stream raises an error here; a stream
    // cannot take text back, so it keeps what it emitted and emits the new tokens decoded on their own.
    fresh = UnemittedText();
  }
  size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tok_->Decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return fresh;
}

std::string DecodeStream::UnemittedText() const {
  std::vector<uint32_t> rest(ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_), ids_.end());
  return tok_->Decode(rest, skip_special_);
}

std::string DecodeStream::Flush() {
  std::string text = tok_->Decode(ids_, skip_special_);
  std::string rest;
  if (text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0)
    rest = text.substr(prefix_.size());
  else if (text.compare(0, prefix_.size(), prefix_) != 0)
    rest = UnemittedText();  // as in Step: keep what was emitted, decode the rest on its own

  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return rest;
}

}  // namespace tokmeter::tokenizer
