#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <unordered_map>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/decoders/decoder.h"
#include "tokenizer/fast_split.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/json_value.h"
#include "tokenizer/models/model.h"
#include "tokenizer/normalizers/normalizer.h"
#include "tokenizer/parallel.h"
#include "tokenizer/post_processors/post_processor.h"
#include "tokenizer/pre_tokenizers/pre_tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace tokmeter::tokenizer {

namespace {
using json::SpecError;

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
  // Added token contents -> ids: they win over model tokens in TokenToId, and are found without building the
  // token map (which, for a tiktoken vocabulary, would build every byte-level string).
  std::unordered_map<std::string, uint32_t> added_by_content;
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
      const TokenStrings& all = Tokens();  // first: builds deferred strings (sizing the table on them)
      token_map.Init(&all, all.size());
      for (size_t id = 0; id < keys.size(); ++id)
        if (present[id]) token_map.Insert(static_cast<uint32_t>(id), /*overwrite=*/later_duplicate_wins);
      for (uint32_t id : added_ids) token_map.Insert(id, /*overwrite=*/true);
    });
    return token_map;
  }
  std::unique_ptr<NormalizerChain> normalizer;
  std::unique_ptr<PreTokenizerChain> pre;
  std::unique_ptr<Model> model;
  std::unique_ptr<DecoderChain> decoder;
  TokenMatcher raw_tokens, normalized_tokens;
  std::vector<uint32_t> prefix, suffix;

  template <class Sink>
  void Run(std::string_view text, bool add_special, Sink& sink) const;
};

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

namespace {

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

// Merges as decoded string pairs -> (left id, right id) through the vocabulary map. Pipelined: merge i + kAhead is
// hashed and its slots prefetched while merge i is resolved (each lookup is otherwise a cache miss on a multi-MB
// table; 450k merges).
BigVector<std::pair<uint32_t, uint32_t>> ResolveMerges(const json::StringPairs& pairs, const TokenMap& vocab_ids,
                                                       const std::string& path) {
  auto id_of = [&](std::string_view tok, size_t i) {
    uint32_t id = vocab_ids.Find(tok);
    if (id == TokenMap::kNone)
      SpecError(path + ".merges[" + std::to_string(i) + "]", json::Stringify(tok) + " is not in " + path + ".vocab");
    return id;
  };
  constexpr size_t kAhead = 16;
  uint64_t ring[kAhead][2];
  const size_t count = pairs.size();
  BigVector<std::pair<uint32_t, uint32_t>> resolved(count);
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
  return resolved;
}

// The vocabulary and merges of a model, read from the raw text of model.vocab / model.merges.
struct ModelFile {
  json::Vocab vocab;            // token strings as in tokenizer.json (raw bytes for tiktoken)
  std::vector<double> scores;   // Unigram
  json::StringPairs merges;     // BPE
  std::string_view vocab_text;  // model.vocab as JSON (an object), for an exact re-read
  bool vocab_exact = true;      // false: read without the duplicate-key pass (see Build)
};

// model.vocab (an object token -> id, or Unigram's [piece, score] array) and model.merges. The merges are parsed on
// a helper thread while the vocabulary is parsed here (they are independent). The vocabulary object is first read
// without the duplicate-key pass (a hash table over 200k keys): Build finds a repeated token in the map it builds
// anyway and then reads it again exactly; any error of the fast read, which a duplicated key may explain, is
// settled by the exact read here.
ModelFile ReadModelFile(const json::Value& m, const std::string& type, const std::string& path) {
  ModelFile f;
  const json::Value* vocab = m.Get("vocab");
  const std::string vpath = path + ".vocab";
  if (type == "Unigram") {
    if (!vocab || !vocab->IsRaw() || vocab->raw()[0] != '[')
      SpecError(vpath, "expected an array, got " + json::Describe(vocab));
    json::ScoredVocab sv = json::ParseUnigramVocab(vocab->raw(), vpath);
    f.vocab.present.assign(sv.tokens.size(), true);
    f.vocab.tokens = std::move(sv.tokens);
    f.scores = std::move(sv.scores);
    return f;
  }
  if (!vocab || !vocab->IsRaw() || vocab->raw()[0] != '{')
    SpecError(vpath, "expected an object, got " + json::Describe(vocab));
  f.vocab_text = vocab->raw();
  const json::Value* merges = type == "BPE" ? m.Get("merges") : nullptr;
  if (merges && (!merges->IsRaw() || merges->raw()[0] != '['))
    SpecError(path + ".merges", "expected an array, got " + json::Describe(merges));
  auto read_vocab = [&] {
    try {
      f.vocab = json::ParseVocabObject(f.vocab_text, vpath, /*dedupe=*/false);
      f.vocab_exact = false;
    } catch (const tokmeter::Error&) {
      f.vocab = json::ParseVocabObject(f.vocab_text, vpath, /*dedupe=*/true);  // the definitive answer
    }
  };
  if (!merges) {
    read_vocab();
    return f;
  }
  std::exception_ptr errors[2];
  auto part = [&](size_t i) {
    try {
      if (i == 0)
        read_vocab();
      else
        f.merges = json::ParseMerges(merges->raw(), path + ".merges");
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  ParallelFor(2, 2, FnRef<void(size_t)>(part));
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);  // a vocabulary error first, as it names what the merges refer to
  return f;
}

}  // namespace

struct Tokenizer::Ranks {
  json::Vocab vocab;
};

std::shared_ptr<const Tokenizer> Tokenizer::FromJson(std::string_view doc, const LoadOptions& options,
                                                     std::string_view file) {
  json::Value root = json::ParseDocument(doc, {{"model", "vocab"}, {"model", "merges"}}, file);
  return Build(root, nullptr, options);
}

std::shared_ptr<const Tokenizer> Tokenizer::FromTiktoken(std::string_view bytes, const TiktokenOptions& options,
                                                         std::string_view file) {
  const std::string f(file);
  size_t first = 0;
  while (first < bytes.size() && (bytes[first] == ' ' || (bytes[first] >= '\t' && bytes[first] <= '\r'))) ++first;
  Ranks ranks;
  std::optional<std::string> pattern = options.pattern;
  std::vector<std::pair<std::string, uint32_t>> specials;
  if (first < bytes.size() && bytes[first] == '{') {
    // The tiktoken package's JSON: {pat_str, special_tokens, bpe_ranks (a 2 MB string, left raw)}.
    json::Value doc = json::ParseDocument(bytes, {{"bpe_ranks"}}, file);
    const json::Value& o = json::Obj(&doc, f);
    const json::Value* br = o.Find("bpe_ranks");
    if (!br || !br->IsRaw() || br->raw()[0] != '"')
      SpecError(f + ".bpe_ranks", "expected a string, got " + json::Describe(br));
    if (!pattern) pattern = json::Str(o, "pat_str", f);
    if (options.special_tokens) {
      specials = *options.special_tokens;
    } else if (const json::Value* st = o.Get("special_tokens")) {
      for (const auto& [content, id] : json::Obj(st, f + ".special_tokens").members())
        specials.emplace_back(content, json::Uint(&id, f + ".special_tokens[" + json::Stringify(content) + "]"));
    }
    ranks.vocab = json::ParseTiktokenRanks(json::DecodeString(br->raw(), f + ".bpe_ranks"), true, f + ".bpe_ranks");
  } else {
    if (!pattern) SpecError("pattern", "a .tiktoken rank file (" + f + ") needs a pattern (its split regex)");
    if (options.special_tokens) specials = *options.special_tokens;
    ranks.vocab = json::ParseTiktokenRanks(bytes, false, f);
  }
  // The encoding as a tokenizer.json would write it: bytes split by the pattern, whole-token pieces taken directly
  // (ignore_merges), other pieces merged lowest rank first; special tokens recognised in the text.
  using V = json::Value;
  V model = V::Object({});
  model.Set("type", V::String("BPE"));
  model.Set("ignore_merges", V::Bool(true));
  V pre = V::Object({});
  pre.Set("type", V::String("Split"));
  pre.Set("pattern", V::Object({{"Regex", V::String(*pattern)}}));
  pre.Set("behavior", V::String("Isolated"));
  pre.Set("invert", V::Bool(false));
  std::vector<V> added;
  for (const auto& [content, id] : specials)
    added.push_back(V::Object({{"id", V::Number(id)},
                               {"content", V::String(content)},
                               {"special", V::Bool(true)},
                               {"normalized", V::Bool(false)}}));
  V root = V::Object({});
  root.Set("model", std::move(model));
  root.Set("pre_tokenizer", std::move(pre));
  root.Set("decoder", V::Object({{"type", V::String("ByteLevel")}}));
  root.Set("added_tokens", V::Array(std::move(added)));
  return Build(root, &ranks, {});
}

std::shared_ptr<const Tokenizer> Tokenizer::Build(const json::Value& root_value, Ranks* ranks,
                                                  const LoadOptions& options) {
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  Impl& m = *t->impl_;
  const json::Value& root = json::Obj(&root_value, "tokenizer.json");
  // Truncation and padding settings are read past: text is always encoded whole and unpadded. A file saved after a
  // call with truncation=True keeps that call's settings, and transformers and transformers.js, which load such
  // files, ignore them too unless a call asks for truncation or padding; a meter counts what the text is.
  for (const char* key : {"truncation", "padding"})
    if (const json::Value* v = root.Get(key); v && !v->IsObject()) json::Obj(v, key);

  const json::Value& model = json::Obj(root.Find("model"), "model");
  std::string type;
  if (const json::Value* tv = model.Get("type")) {
    if (!tv->IsString()) json::Unsupported("model.type", "model " + json::Describe(tv));
    type = tv->str();
  } else if (model.Find("merges")) {
    type = "BPE";  // older files leave the type out
  }
  if (type != "BPE" && type != "WordPiece" && type != "WordLevel" && type != "Unigram")
    json::Unsupported("model.type", "model " + (type.empty() ? std::string("undefined") : json::Stringify(type)));

  // Components other than the model first: their errors are cheap to find.
  m.normalizer = NormalizerChain::FromJson(root.Find("normalizer"), "normalizer");
  m.pre = PreTokenizerChain::FromJson(root.Find("pre_tokenizer"), "pre_tokenizer");
  m.decoder = DecoderChain::FromJson(root.Find("decoder"), "decoder");
  const std::vector<AddedToken> added = AddedTokensFromJson(root.Find("added_tokens"), "added_tokens");

  // The vocabulary: tokenizer.json's model.vocab, or tiktoken ranks (raw bytes).
  ModelFile file;
  const bool vocab_is_bytes = ranks != nullptr;
  if (ranks)
    file.vocab = std::move(ranks->vocab);
  else
    file = ReadModelFile(model, type, "model");
  // Token strings -> model ids (tokenizer.json spelling), for merges and unk_token. Built first for a vocabulary read
  // without the duplicate-key pass: a repeated JSON key shows here as a repeated token, and the vocabulary is then
  // read again exactly (JSON.parse keeps a repeated key's last id).
  TokenMap vocab_ids;
  bool vocab_ids_built = false;
  if (!vocab_is_bytes) {
    m.tokens = std::move(file.vocab.tokens);
    if (!file.vocab_exact) {
      std::vector<uint8_t> present(file.vocab.present.begin(), file.vocab.present.end());
      uint32_t dup = BuildMap(vocab_ids, m.tokens, present, m.tokens.size(), /*overwrite=*/false);
      vocab_ids_built = true;
      if (dup != TokenMap::kNone) {
        file.vocab = json::ParseVocabObject(file.vocab_text, "model.vocab", /*dedupe=*/true);
        m.tokens = std::move(file.vocab.tokens);
        vocab_ids_built = false;
      }
    }
  }
  const size_t n = vocab_is_bytes ? file.vocab.tokens.size() : m.tokens.size();
  if (file.vocab.present.size() != n) SpecError("model.vocab", "present[] and tokens[] differ in length");

  m.byte_level = m.pre->byte_level() || vocab_is_bytes;
  m.later_duplicate_wins = type == "Unigram";
  if (m.byte_level && type != "BPE") SpecError("model.type", "ByteLevel needs a BPE model");

  size_t total = n;
  // An id far beyond the number of tokens would only make us allocate gigabytes for nothing (the rule model.vocab
  // follows in json_scan.cc).
  const size_t tokens = n + added.size();
  for (size_t i = 0; i < added.size(); ++i) {
    const uint32_t id = added[i].id;
    if (id > tokens * 16 + 65536)
      SpecError("added_tokens[" + std::to_string(i) + "].id",
                "id " + std::to_string(id) + " is far beyond the vocabulary's " + std::to_string(tokens) + " tokens");
    total = std::max<size_t>(total, size_t{id} + 1);
  }
  if (total > 0xFFFFFFF0u) SpecError("model.vocab", "too many tokens");
  m.present.assign(total, 0);
  for (size_t id = 0; id < n; ++id) m.present[id] = file.vocab.present[id] ? 1 : 0;
  if (vocab_is_bytes) {
    // A parsed vocabulary moves into place whole: no second 200k-string table.
    m.keys = std::move(file.vocab.tokens);
    m.tokens_deferred = true;  // see Impl::Tokens()
  } else {
    m.tokens.resize(total);
  }
  m.special.assign(total, 0);
  m.is_added.assign(total, 0);
  if (!vocab_is_bytes) m.keys.assign(n, std::string());
  for (size_t id = 0; id < n && !vocab_is_bytes; ++id) {
    if (!m.present[id]) continue;
    const std::string& v = m.tokens[id];
    if (!utf8::IsValid(v)) SpecError("model.vocab[" + std::to_string(id) + "]", "not valid UTF-8");
    if (m.byte_level) {
      // Tokens outside the byte-level alphabet can never be produced by the model; they get no key.
      if (!ByteLevelToBytesExact(v, m.keys[id])) m.keys[id].clear();
    } else {
      m.keys[id] = v;
    }
  }
  auto vocab_id = [&](std::string_view tok) -> uint32_t {
    if (vocab_is_bytes) return TokenMap::kNone;
    if (!vocab_ids_built) {
      BuildMap(vocab_ids, m.tokens, m.present, n, /*overwrite=*/m.later_duplicate_wins);
      vocab_ids_built = true;
    }
    return vocab_ids.Find(tok);
  };

  bool unique_keys = false;
  {
    // Unigram: a duplicate piece maps to its later id, as in the reference.
    const bool unigram = type == "Unigram";
    uint32_t dup = BuildMap(m.key_map, m.keys, m.present, n, /*overwrite=*/unigram);
    if (dup != TokenMap::kNone && !vocab_is_bytes && !unigram)
      SpecError("model.vocab", "duplicate token for id " + std::to_string(dup));
    unique_keys = dup == TokenMap::kNone;
  }

  ModelVocab mv{m.keys, m.key_map, vocab_id, m.byte_level, unique_keys};
  if (type == "BPE") {
    BigVector<std::pair<uint32_t, uint32_t>> merges;
    if (file.merges.size() > 0) {
      vocab_id("");  // builds the map
      merges = ResolveMerges(file.merges, vocab_ids, "model");
    }
    file.merges = {};
    m.model = BpeFromJson(model, "model", mv, merges, /*merges_from_ranks=*/vocab_is_bytes);
  } else if (type == "WordPiece") {
    m.model = WordPieceFromJson(model, "model", mv);
  } else if (type == "WordLevel") {
    m.model = WordLevelFromJson(model, "model", mv);
  } else {
    m.model = UnigramFromJson(model, "model", mv, std::move(file.scores));
  }
  file = {};

  // Added tokens.
  RegexScratch rx;
  std::string na, nb;
  for (size_t i = 0; i < added.size(); ++i) {
    const auto& a = added[i];
    if (!utf8::IsValid(a.content)) SpecError("added_tokens[" + std::to_string(i) + "].content", "not valid UTF-8");
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
  for (const auto& a : added) {
    m.added_ids.push_back(a.id);
    m.added_by_content[a.content] = a.id;
  }
  auto added_id = [&](std::string_view content) -> std::optional<uint32_t> {
    for (const auto& a : added)
      if (a.content == content) return a.id;
    return std::nullopt;
  };

  // Decoding.
  m.fast_byte_decode = m.decoder->byte_level_only();
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

  // Post-processing, then tokenizer_config.json's add_bos_token / add_eos_token.
  PostProcessor post = PostProcessor::FromJson(root.Find("post_processor"), "post_processor", added_id);
  // A config token is usually an added token; some files (InternLM2's) list none and name a model token ("<s>" at
  // id 1), which transformers then uses by its vocabulary id and counts as special (skipped by decode with
  // skip_special_tokens). It is not matched in text as an added token here.
  auto config_token = [&](const std::optional<std::string>& content, const char* key) -> std::optional<uint32_t> {
    if (!content) return std::nullopt;
    std::optional<uint32_t> id = added_id(*content);
    if (!id) {
      const uint32_t model_id = m.TokenIds().Find(*content);
      if (model_id != TokenMap::kNone) {
        m.special[model_id] = 1;
        return model_id;
      }
      SpecError(std::string("tokenizer_config.json ") + key,
                json::Stringify(*content) + " is neither an added token nor a token of tokenizer.json");
    }
    return id;
  };
  if (auto bos = config_token(options.bos_token, "bos_token"); bos && options.add_bos_token) {
    const bool has = !post.prefix.empty() && post.prefix.front() == *bos;
    if (*options.add_bos_token && !has) post.prefix.insert(post.prefix.begin(), *bos);
    if (!*options.add_bos_token && has) post.prefix.erase(post.prefix.begin());
  }
  if (auto eos = config_token(options.eos_token, "eos_token"); eos && options.add_eos_token) {
    const bool has = !post.suffix.empty() && post.suffix.back() == *eos;
    if (*options.add_eos_token && !has) post.suffix.push_back(*eos);
    if (!*options.add_eos_token && has) post.suffix.pop_back();
  }
  for (const auto* ids : {&post.prefix, &post.suffix})
    for (uint32_t id : *ids)
      if (id >= total || !m.present[id])
        SpecError("post_processor", "special token id " + std::to_string(id) + " is not in the vocabulary");
  m.prefix = std::move(post.prefix);
  m.suffix = std::move(post.suffix);
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
  const Splitter* split = pre->sole_splitter();
  auto pretok = [&](std::string_view piece, bool at_start) {
    if (pre->size() == 0) {
      if (!piece.empty()) model->Tokenize(piece, s.model, sink);
    } else if (split) {
      // One known split pattern (tiktoken encodings, GPT-2/Llama 3/Qwen/GPT-4o files): words found and tokenized a
      // batch at a time, with no callback per word through the stages.
      constexpr size_t kBatch = 64;
      size_t ends[kBatch];
      for (size_t from = 0, n; (n = split->Next(piece, from, ends, kBatch)) > 0; from = ends[n - 1])
        model->TokenizeWords(piece, from, ends, n, s.model, sink);
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
  return m.decoder->Decode(std::move(toks));
}

std::optional<uint32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(std::string(token)); it != impl_->added_by_content.end())
    return it->second;
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
