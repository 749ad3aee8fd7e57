#include "js_tokenizer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "js_addon_data.h"
#include "js_async.h"
#include "js_convert.h"
#include "js_errors.h"
#include "tokenizer/big_alloc.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/parallel.h"
#include "util/error.h"

namespace tokmeter::addon {
namespace {

namespace tk = tokmeter::tokenizer;
constexpr const char* kTokClass = "NativeTokenizer";
constexpr const char* kStreamClass = "NativeDecodeStream";

// ---- JS value -> Spec (JS thread) ----------------------------------------------------------------------------

[[noreturn]] void SpecFail(Napi::Env env, const std::string& field, const std::string& what) {
  throw MakeJsError(env, "ERR_TOKENIZER_SPEC", "invalid tokenizer description: " + field + ": " + what);
}

std::string Str(const Napi::Object& o, const char* key, const std::string& field, const char* fallback = nullptr) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (fallback) return fallback;
    SpecFail(o.Env(), field + "." + key, "missing");
  }
  if (!v.IsString()) SpecFail(o.Env(), field + "." + key, "expected a string");
  return v.As<Napi::String>().Utf8Value();
}

bool Bool(const Napi::Object& o, const char* key, const std::string& field, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) SpecFail(o.Env(), field + "." + key, "expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

uint32_t U32(const Napi::Value& v, const std::string& field) {
  if (!v.IsNumber()) SpecFail(v.Env(), field, "expected a non-negative integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    SpecFail(v.Env(), field, "expected a non-negative integer");
  return static_cast<uint32_t>(d);
}

Napi::Array Arr(const Napi::Object& o, const char* key, const std::string& field) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return Napi::Array::New(o.Env(), 0);
  if (!v.IsArray()) SpecFail(o.Env(), field + "." + key, "expected an array");
  return v.As<Napi::Array>();
}

std::vector<uint32_t> U32List(const Napi::Object& o, const char* key, const std::string& field) {
  std::vector<uint32_t> out;
  Napi::Value v = o.Get(key);
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
    auto a = v.As<Napi::Uint32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    return out;
  }
  Napi::Array a = Arr(o, key, field);
  for (uint32_t i = 0; i < a.Length(); ++i)
    out.push_back(U32(a.Get(i), field + "." + key + "[" + std::to_string(i) + "]"));
  return out;
}

tk::SplitBehavior Behavior(const std::string& s, Napi::Env env, const std::string& field) {
  if (s == "Isolated") return tk::SplitBehavior::kIsolated;
  if (s == "Removed") return tk::SplitBehavior::kRemoved;
  if (s == "MergedWithPrevious") return tk::SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return tk::SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return tk::SplitBehavior::kContiguous;
  SpecFail(env, field, "unknown behavior " + s);
}

// A Buffer field whose bytes the spec borrows (std::string_view); `keep` holds a reference to it until the work
// that reads it has ended. Empty view when the field is absent.
std::string_view BorrowedBytes(const Napi::Object& o, const char* key, const std::string& field,
                               std::vector<Napi::ObjectReference>& keep) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsBuffer()) SpecFail(o.Env(), field + "." + key, "expected a Buffer");
  auto b = v.As<Napi::Buffer<char>>();
  keep.push_back(Napi::Persistent(b.As<Napi::Object>()));
  return std::string_view(b.Data(), b.Length());
}

tk::Spec ToSpec(const Napi::Object& js, std::vector<Napi::ObjectReference>& keep) {
  Napi::Env env = js.Env();
  tk::Spec spec;
  // Model.
  Napi::Value mv = js.Get("model");
  if (!mv.IsObject()) SpecFail(env, "model", "expected an object");
  Napi::Object m = mv.As<Napi::Object>();
  auto& ms = spec.model;
  std::string kind = Str(m, "kind", "model");
  if (kind == "BPE")
    ms.kind = tk::ModelSpec::Kind::kBPE;
  else if (kind == "WordPiece")
    ms.kind = tk::ModelSpec::Kind::kWordPiece;
  else if (kind == "Unigram")
    ms.kind = tk::ModelSpec::Kind::kUnigram;
  else
    SpecFail(env, "model.kind", "unknown model " + kind);
  ms.vocab_json = BorrowedBytes(m, "vocabJson", "model", keep);
  ms.merges_json = BorrowedBytes(m, "mergesJson", "model", keep);
  ms.ranks = BorrowedBytes(m, "ranks", "model", keep);
  if (!ms.ranks.empty()) {
    std::string f = Str(m, "ranksFormat", "model");
    if (f == "tiktoken")
      ms.ranks_format = tk::ModelSpec::RanksFormat::kTiktoken;
    else if (f == "package-json-string")
      ms.ranks_format = tk::ModelSpec::RanksFormat::kPackageJsonString;
    else
      SpecFail(env, "model.ranksFormat", "unknown format " + f);
  }
  Napi::Value ut = m.Get("unkToken");
  if (!ut.IsUndefined() && !ut.IsNull()) ms.unk_token = Str(m, "unkToken", "model");
  const bool raw_vocab = !ms.vocab_json.empty() || !ms.ranks.empty();
  Napi::Value vb = m.Get("vocabBytes"), vo = m.Get("vocabOffsets");
  if (raw_vocab && vb.IsUndefined() && vo.IsUndefined()) {
    // The vocabulary comes from vocabJson / ranks (parsed off the JS thread).
  } else if (!vb.IsBuffer()) {
    SpecFail(env, "model.vocabBytes", "expected a Buffer");
  } else {
    if (!vo.IsTypedArray() || vo.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      SpecFail(env, "model.vocabOffsets", "expected a Uint32Array");
    auto bytes = vb.As<Napi::Buffer<char>>();
    auto offs = vo.As<Napi::Uint32Array>();
    size_t n = offs.ElementLength();
    if (n == 0) SpecFail(env, "model.vocabOffsets", "must hold vocabulary size + 1 offsets");
    n -= 1;
    Napi::Value pv = m.Get("present");
    if (!pv.IsTypedArray() || pv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        pv.As<Napi::Uint8Array>().ElementLength() != n)
      SpecFail(env, "model.present", "expected a Uint8Array with one entry per id");
    auto present = pv.As<Napi::Uint8Array>();
    ms.vocab.resize(n);
    ms.present.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t b = offs[i], e = offs[i + 1];
      if (b > e || e > bytes.Length()) SpecFail(env, "model.vocabOffsets", "offsets out of order or out of range");
      ms.vocab[i].assign(bytes.Data() + b, e - b);
      ms.present[i] = present[i] != 0;
    }
  }
  ms.vocab_is_bytes = Bool(m, "vocabIsBytes", "model", false);
  auto merges = U32List(m, "merges", "model");
  if (merges.size() % 2) SpecFail(env, "model.merges", "expected (left, right) id pairs");
  ms.merges.reserve(merges.size() / 2);
  for (size_t i = 0; i + 1 < merges.size(); i += 2) ms.merges.emplace_back(merges[i], merges[i + 1]);
  Napi::Value mt = m.Get("mergesText");
  if (!mt.IsUndefined() && !mt.IsNull()) {
    if (!mt.IsBuffer()) SpecFail(env, "model.mergesText", "expected a Buffer");
    auto b = mt.As<Napi::Buffer<char>>();
    ms.merges_text.assign(b.Data(), b.Length());
    ms.merges_text_pairs = Bool(m, "mergesTextPairs", "model", false);
  }
  ms.merges_from_ranks = Bool(m, "mergesFromRanks", "model", false);
  ms.ignore_merges = Bool(m, "ignoreMerges", "model", false);
  ms.byte_fallback = Bool(m, "byteFallback", "model", false);
  ms.fuse_unk = Bool(m, "fuseUnk", "model", false);
  Napi::Value unk = m.Get("unkId");
  if (!unk.IsUndefined() && !unk.IsNull()) ms.unk_id = U32(unk, "model.unkId");
  ms.continuing_subword_prefix = Str(m, "continuingSubwordPrefix", "model", "##");
  Napi::Value mx = m.Get("maxInputCharsPerWord");
  if (!mx.IsUndefined() && !mx.IsNull()) ms.max_input_chars_per_word = U32(mx, "model.maxInputCharsPerWord");
  Napi::Value sc = m.Get("scores");
  if (ms.kind == tk::ModelSpec::Kind::kUnigram) {
    size_t n = ms.vocab.size();
    if (!sc.IsTypedArray() || sc.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        sc.As<Napi::Float64Array>().ElementLength() != n)
      SpecFail(env, "model.scores", "expected a Float64Array with one score per id");
    auto a = sc.As<Napi::Float64Array>();
    ms.scores.assign(a.Data(), a.Data() + n);
  }

  // Normalizers.
  Napi::Array norms = Arr(js, "normalizers", "spec");
  for (uint32_t i = 0; i < norms.Length(); ++i) {
    std::string f = "normalizers[" + std::to_string(i) + "]";
    if (!norms.Get(i).IsObject()) SpecFail(env, f, "expected an object");
    Napi::Object o = norms.Get(i).As<Napi::Object>();
    tk::NormalizerSpec s;
    std::string k = Str(o, "kind", f);
    using K = tk::NormalizerSpec::Kind;
    if (k == "NFC")
      s.kind = K::kNFC;
    else if (k == "NFD")
      s.kind = K::kNFD;
    else if (k == "NFKC")
      s.kind = K::kNFKC;
    else if (k == "NFKD")
      s.kind = K::kNFKD;
    else if (k == "Lowercase")
      s.kind = K::kLowercase;
    else if (k == "Replace") {
      s.kind = K::kReplace;
      s.pattern = Str(o, "pattern", f);
      s.is_regex = Bool(o, "isRegex", f, false);
      s.content = Str(o, "content", f);
    } else if (k == "Prepend") {
      s.kind = K::kPrepend;
      s.content = Str(o, "content", f);
    } else if (k == "Strip") {
      s.kind = K::kStrip;
      s.left = Bool(o, "left", f, true);
      s.right = Bool(o, "right", f, true);
    } else if (k == "Bert") {
      s.kind = K::kBert;
      s.clean_text = Bool(o, "cleanText", f, true);
      s.handle_chinese_chars = Bool(o, "handleChineseChars", f, true);
      s.lowercase = Bool(o, "lowercase", f, true);
      Napi::Value sa = o.Get("stripAccents");
      if (!sa.IsUndefined() && !sa.IsNull()) s.strip_accents = Bool(o, "stripAccents", f, false);
    } else
      SpecFail(env, f + ".kind", "unknown normalizer " + k);
    spec.normalizers.push_back(std::move(s));
  }

  // Pre-tokenizers.
  Napi::Array pres = Arr(js, "preTokenizers", "spec");
  for (uint32_t i = 0; i < pres.Length(); ++i) {
    std::string f = "preTokenizers[" + std::to_string(i) + "]";
    if (!pres.Get(i).IsObject()) SpecFail(env, f, "expected an object");
    Napi::Object o = pres.Get(i).As<Napi::Object>();
    tk::PreTokenizerSpec s;
    using K = tk::PreTokenizerSpec::Kind;
    std::string k = Str(o, "kind", f);
    if (k == "Split") {
      s.kind = K::kSplit;
      s.pattern = Str(o, "pattern", f);
      s.is_regex = Bool(o, "isRegex", f, true);
      s.invert = Bool(o, "invert", f, false);
      s.behavior = Behavior(Str(o, "behavior", f), env, f + ".behavior");
    } else if (k == "ByteLevel") {
      s.kind = K::kByteLevel;
      s.add_prefix_space = Bool(o, "addPrefixSpace", f, false);
      s.use_regex = Bool(o, "useRegex", f, true);
    } else if (k == "Metaspace") {
      s.kind = K::kMetaspace;
      s.replacement = Str(o, "replacement", f);
      std::string ps = Str(o, "prependScheme", f, "always");
      if (ps == "always")
        s.prepend_scheme = tk::PreTokenizerSpec::Prepend::kAlways;
      else if (ps == "never")
        s.prepend_scheme = tk::PreTokenizerSpec::Prepend::kNever;
      else if (ps == "first")
        s.prepend_scheme = tk::PreTokenizerSpec::Prepend::kFirst;
      else
        SpecFail(env, f + ".prependScheme", "unknown scheme " + ps);
      s.split = Bool(o, "split", f, true);
    } else if (k == "Whitespace")
      s.kind = K::kWhitespace;
    else if (k == "WhitespaceSplit")
      s.kind = K::kWhitespaceSplit;
    else if (k == "Digits") {
      s.kind = K::kDigits;
      s.individual_digits = Bool(o, "individualDigits", f, false);
    } else if (k == "Punctuation") {
      s.kind = K::kPunctuation;
      s.behavior = Behavior(Str(o, "behavior", f, "Isolated"), env, f + ".behavior");
    } else if (k == "Bert")
      s.kind = K::kBert;
    else
      SpecFail(env, f + ".kind", "unknown pre-tokenizer " + k);
    spec.pre_tokenizers.push_back(std::move(s));
  }

  // Decoders.
  spec.has_decoder = Bool(js, "hasDecoder", "spec", false);
  Napi::Array decs = Arr(js, "decoders", "spec");
  for (uint32_t i = 0; i < decs.Length(); ++i) {
    std::string f = "decoders[" + std::to_string(i) + "]";
    if (!decs.Get(i).IsObject()) SpecFail(env, f, "expected an object");
    Napi::Object o = decs.Get(i).As<Napi::Object>();
    tk::DecoderSpec s;
    using K = tk::DecoderSpec::Kind;
    std::string k = Str(o, "kind", f);
    if (k == "ByteLevel")
      s.kind = K::kByteLevel;
    else if (k == "Metaspace") {
      s.kind = K::kMetaspace;
      s.replacement = Str(o, "replacement", f);
      s.prepend = Bool(o, "prepend", f, true);
    } else if (k == "ByteFallback")
      s.kind = K::kByteFallback;
    else if (k == "Fuse")
      s.kind = K::kFuse;
    else if (k == "Strip") {
      s.kind = K::kStrip;
      s.content = Str(o, "content", f);
      s.start = U32(o.Get("start"), f + ".start");
      s.stop = U32(o.Get("stop"), f + ".stop");
    } else if (k == "Replace") {
      s.kind = K::kReplace;
      s.pattern = Str(o, "pattern", f);
      s.content = Str(o, "content", f);
    } else if (k == "WordPiece") {
      s.kind = K::kWordPiece;
      s.prefix = Str(o, "prefix", f, "##");
      s.cleanup = Bool(o, "cleanup", f, true);
    } else
      SpecFail(env, f + ".kind", "unknown decoder " + k);
    spec.decoders.push_back(std::move(s));
  }

  // Added tokens and post-processing.
  Napi::Array added = Arr(js, "addedTokens", "spec");
  for (uint32_t i = 0; i < added.Length(); ++i) {
    std::string f = "addedTokens[" + std::to_string(i) + "]";
    if (!added.Get(i).IsObject()) SpecFail(env, f, "expected an object");
    Napi::Object o = added.Get(i).As<Napi::Object>();
    tk::AddedTokenSpec a;
    a.id = U32(o.Get("id"), f + ".id");
    a.content = Str(o, "content", f);
    a.special = Bool(o, "special", f, false);
    a.normalized = Bool(o, "normalized", f, false);
    a.lstrip = Bool(o, "lstrip", f, false);
    a.rstrip = Bool(o, "rstrip", f, false);
    a.single_word = Bool(o, "singleWord", f, false);
    spec.added_tokens.push_back(std::move(a));
  }
  spec.post_prefix = U32List(js, "postPrefix", "spec");
  spec.post_suffix = U32List(js, "postSuffix", "spec");
  return spec;
}

// ---- strings ------------------------------------------------------------------------------------------------

// Copies a JS string as UTF-8 into `out` in one pass (lone surrogates become U+FFFD, as everywhere in Node).
void Utf8Into(Napi::Env env, napi_value v, std::string& out) {
  size_t len16 = 0;
  napi_status st = napi_get_value_string_utf16(env, v, nullptr, 0, &len16);
  if (st != napi_ok) ThrowTypeError(env, "expected a string");
  size_t cap = len16 * 3 + 1;
  if (len16 > (1u << 16)) {
    // Long strings: measure first rather than zero-filling 3x the length.
    size_t exact = 0;
    napi_get_value_string_utf8(env, v, nullptr, 0, &exact);
    cap = exact + 1;
  }
  out.resize(cap);
  size_t written = 0;
  napi_get_value_string_utf8(env, v, out.data(), out.size(), &written);
  out.resize(written);
}

// The per-thread call buffer keeps its capacity between calls, except after a very large input.
void ReleaseIfHuge(std::string& buf) {
  if (buf.capacity() > (16u << 20)) std::string().swap(buf);
}

std::string& CallBuffer() {
  thread_local std::string buf;
  return buf;
}

// ---- classes --------------------------------------------------------------------------------------------------

class JsTokenizer : public Napi::ObjectWrap<JsTokenizer> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsTokenizer(const Napi::CallbackInfo& info);
  ~JsTokenizer() override { tok_.reset(); }

  const std::shared_ptr<const tk::Tokenizer>& Get(Napi::Env env) const {
    if (!tok_) throw MakeJsError(env, "ERR_DISPOSED", "the tokenizer was disposed");
    return tok_;
  }

 private:
  static Napi::Value Create(const Napi::CallbackInfo& info);
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Count(const Napi::CallbackInfo& info);
  Napi::Value EncodeIntoArray(const Napi::CallbackInfo& info);
  Napi::Value CountBatch(const Napi::CallbackInfo& info);
  Napi::Value EncodeBatch(const Napi::CallbackInfo& info);
  Napi::Value Decode(const Napi::CallbackInfo& info);
  Napi::Value TokenToId(const Napi::CallbackInfo& info);
  Napi::Value IdToToken(const Napi::CallbackInfo& info);
  Napi::Value IsSpecial(const Napi::CallbackInfo& info);
  Napi::Value VocabSize(const Napi::CallbackInfo& info);
  Napi::Value NewDecodeStream(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<const tk::Tokenizer> tok_;
};

class JsDecodeStream : public Napi::ObjectWrap<JsDecodeStream> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsDecodeStream(const Napi::CallbackInfo& info);

 private:
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  std::unique_ptr<tk::DecodeStream> stream_;
};

bool BoolArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBoolean())
    ThrowTypeError(info.Env(), std::string("expected a boolean for ") + what);
  return info[i].As<Napi::Boolean>().Value();
}

Napi::Uint32Array ToJsIds(Napi::Env env, const std::vector<uint32_t>& ids) {
  auto arr = Napi::Uint32Array::New(env, ids.size());
  if (!ids.empty()) std::memcpy(arr.Data(), ids.data(), ids.size() * sizeof(uint32_t));
  return arr;
}

std::vector<std::string> ToTexts(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArray()) ThrowTypeError(info.Env(), "expected an array of strings for texts");
  auto a = info[0].As<Napi::Array>();
  std::vector<std::string> texts(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) ThrowTypeError(info.Env(), "expected a string for texts[" + std::to_string(i) + "]");
    Utf8Into(info.Env(), v, texts[i]);
  }
  return texts;
}

unsigned ThreadsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return std::max(1u, std::thread::hardware_concurrency());
  if (!info[i].IsNumber()) ThrowTypeError(info.Env(), "expected a positive integer for threads");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 256) || d != static_cast<double>(static_cast<int>(d)))
    ThrowTypeError(info.Env(), "expected an integer in [1, 256] for threads, got " + std::to_string(d));
  return static_cast<unsigned>(d);
}

class CreateWorker final : public PromiseWorker {
 public:
  // `keep` holds the Buffers that spec's borrowed views (vocab_json, merges_json, ranks) point into.
  CreateWorker(Napi::Env env, tk::Spec spec, std::vector<Napi::ObjectReference> keep)
      : PromiseWorker(env, "tokmeter:createTokenizer"), spec_(std::move(spec)), keep_(std::move(keep)) {
    for (const auto& v : spec_.model.vocab) bytes_ += static_cast<int64_t>(v.size()) * 3 + 48;
    // Raw JSON / rank text: about one token per 12 bytes of text, each costing ~3x its bytes plus ~48 bytes.
    bytes_ += static_cast<int64_t>(spec_.model.vocab_json.size() + spec_.model.ranks.size()) * 7;
  }

 protected:
  void Work() override {
    tok_ = tk::Tokenizer::Create(spec_);
    spec_ = tk::Spec();  // drops the borrowed views; the Buffers are released with the worker (JS thread)
  }
  Napi::Value Resolve(Napi::Env env) override {
    auto ext = Napi::External<std::shared_ptr<const tk::Tokenizer>>::New(env, &tok_);
    return AddonData::Of(env).Constructor(kTokClass).New({ext, Napi::Number::New(env, static_cast<double>(bytes_))});
  }

 private:
  tk::Spec spec_;
  std::vector<Napi::ObjectReference> keep_;
  std::shared_ptr<const tk::Tokenizer> tok_;
  int64_t bytes_ = 0;
};

// scanJsonFields(bytes, paths, field) -> Promise<([begin, end] | null)[]>: the byte ranges of the values at the
// given key paths of a JSON document (tokenizer/json_scan.h Locate), found on a worker thread.
class ScanWorker final : public PromiseWorker {
 public:
  ScanWorker(Napi::Env env, Napi::Buffer<char> bytes, std::vector<std::vector<std::string>> paths, std::string field)
      : PromiseWorker(env, "tokmeter:scanJsonFields"),
        doc_(bytes.Data(), bytes.Length()),
        keep_(Napi::Persistent(bytes.As<Napi::Object>())),
        paths_(std::move(paths)),
        field_(std::move(field)) {}

 protected:
  void Work() override { ranges_ = tk::json::Locate(doc_, paths_, field_); }
  Napi::Value Resolve(Napi::Env env) override {
    auto out = Napi::Array::New(env, ranges_.size());
    for (size_t i = 0; i < ranges_.size(); ++i) {
      if (!ranges_[i]) {
        out.Set(static_cast<uint32_t>(i), env.Null());
        continue;
      }
      auto r = Napi::Array::New(env, 2);
      r.Set(0u, Napi::Number::New(env, static_cast<double>(ranges_[i]->begin)));
      r.Set(1u, Napi::Number::New(env, static_cast<double>(ranges_[i]->end)));
      out.Set(static_cast<uint32_t>(i), r);
    }
    return out;
  }

 private:
  std::string_view doc_;
  Napi::ObjectReference keep_;
  std::vector<std::vector<std::string>> paths_;
  std::string field_;
  std::vector<std::optional<tk::json::Range>> ranges_;
};

Napi::Value ScanJsonFields(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsArray() || !info[2].IsString())
      ThrowTypeError(env, "expected (bytes: Buffer, paths: string[][], field: string)");
    auto list = info[1].As<Napi::Array>();
    if (list.Length() > 32) ThrowTypeError(env, "expected at most 32 paths");
    std::vector<std::vector<std::string>> paths(list.Length());
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value p = list.Get(i);
      if (!p.IsArray()) ThrowTypeError(env, "expected an array of keys for paths[" + std::to_string(i) + "]");
      auto keys = p.As<Napi::Array>();
      for (uint32_t k = 0; k < keys.Length(); ++k) {
        Napi::Value key = keys.Get(k);
        if (!key.IsString()) ThrowTypeError(env, "expected a string key in paths[" + std::to_string(i) + "]");
        paths[i].push_back(key.As<Napi::String>().Utf8Value());
      }
    }
    auto* w =
        new ScanWorker(env, info[0].As<Napi::Buffer<char>>(), std::move(paths), info[2].As<Napi::String>().Utf8Value());
    auto p = w->Promise();
    w->Queue();
    return p;
  });
}

// readFileBig(path) -> Promise<Buffer>: a whole file read on a worker thread into a BigAlloc block (2 MiB pages
// where the kernel has them). A 10 MB tokenizer.json read by fs.readFile lands in fresh 4 KiB pages: ~30-40 ms of
// first-touch faults on this machine, a quarter of loading the file. The block is freed by the Buffer's finalizer
// and reported to V8 as external memory meanwhile.
class ReadFileWorker final : public PromiseWorker {
 public:
  ReadFileWorker(Napi::Env env, std::string path)
      : PromiseWorker(env, "tokmeter:readFileBig"), path_(std::move(path)) {}
  ~ReadFileWorker() override {
    if (data_ != nullptr) tk::BigAlloc<uint8_t>().deallocate(data_, capacity_);
  }

 protected:
  void Work() override {
    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Fail("open");
    struct stat st{};
    if (fstat(fd, &st) != 0) {
      const int e = errno;
      close(fd);
      errno = e;
      Fail("stat");
    }
    if (!S_ISREG(st.st_mode)) {
      close(fd);
      throw Error(codes::kInvalidArgument, path_ + " is not a regular file");
    }
    capacity_ = static_cast<size_t>(st.st_size) + 1;
    data_ = tk::BigAlloc<uint8_t>().allocate(capacity_);
    size_t done = 0;
    for (;;) {
      if (done == capacity_) break;  // grew while being read: keep what fits
      const ssize_t n = read(fd, data_ + done, capacity_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int e = errno;
        close(fd);
        errno = e;
        Fail("read");
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    close(fd);
    size_ = done;
  }
  Napi::Value Resolve(Napi::Env env) override {
    uint8_t* data = data_;
    const size_t capacity = capacity_;
    data_ = nullptr;  // the Buffer owns it now
    Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(capacity));
    return Napi::Buffer<uint8_t>::New(env, data, size_, [capacity](Napi::Env e, uint8_t* p) {
      tk::BigAlloc<uint8_t>().deallocate(p, capacity);
      Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(capacity));
    });
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    throw Error(codes::kInvalidArgument, std::string(what) + " " + path_ + ": " + std::strerror(errno) + " (errno " +
                                             std::to_string(errno) + ")");
  }
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

Napi::Value ReadFileBig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a path string");
    auto* w = new ReadFileWorker(env, ToPath(info[0], "the file path"));
    auto p = w->Promise();
    w->Queue();
    return p;
  });
}

class BatchWorker final : public PromiseWorker {
 public:
  BatchWorker(Napi::Env env, std::shared_ptr<const tk::Tokenizer> tok, std::vector<std::string> texts, bool add_special,
              unsigned threads, bool encode)
      : PromiseWorker(env, encode ? "tokmeter:encodeBatch" : "tokmeter:countBatch"),
        tok_(std::move(tok)),
        texts_(std::move(texts)),
        add_special_(add_special),
        threads_(threads),
        encode_(encode) {}

 protected:
  // Below this many bytes in all, a batch runs on the calling (JS) thread: handing it to threads costs more (a libuv
  // queue hop and pool wake-ups, tens of microseconds, plus caches that are warm on the JS thread) than the ~1 ms of
  // work, which blocks the event loop no longer than one count() of a 64 kB string.
  static constexpr size_t kInlineBytes = 64 * 1024;
  static size_t TotalBytes(const std::vector<std::string>& texts) {
    size_t n = 0;
    for (const auto& t : texts) n += t.size();
    return n;
  }

  void Work() override {
    if (encode_)
      ids_.resize(texts_.size());
    else
      counts_.resize(texts_.size());
    auto one = [&](size_t i) {
      if (encode_)
        tok_->EncodeInto(texts_[i], add_special_, ids_[i]);
      else
        counts_[i] = static_cast<uint32_t>(std::min<size_t>(tok_->Count(texts_[i], add_special_), 0xFFFFFFFFu));
    };
    size_t total = TotalBytes(texts_);
    if (total < kInlineBytes) {  // run by RunHere on the JS thread
      for (size_t i = 0; i < texts_.size(); ++i) one(i);
    } else {
      // One pool task per chunk of consecutive documents (about 1/8 of a thread's share, at least 16 kB): per-document
      // tasks made the threads trade cache lines of the result array and the task counter on every short document.
      const size_t target = std::max<size_t>(16 * 1024, total / (8 * std::max(threads_, 1u)));
      std::vector<size_t> starts{0};
      for (size_t i = 0, acc = 0; i < texts_.size(); ++i) {
        acc += texts_[i].size();
        if (acc >= target && i + 1 < texts_.size()) {
          starts.push_back(i + 1);
          acc = 0;
        }
      }
      starts.push_back(texts_.size());
      auto chunk = [&](size_t c) {
        for (size_t i = starts[c]; i < starts[c + 1]; ++i) one(i);
      };
      // On the pool's helpers only: this libuv thread is one of several and its caches are cold on most calls.
      tk::ParallelForOnPool(starts.size() - 1, threads_, tk::FnRef<void(size_t)>(chunk));
    }
    texts_.clear();
  }

 public:
  bool Small() const { return TotalBytes(texts_) < kInlineBytes; }

 protected:
  Napi::Value Resolve(Napi::Env env) override {
    if (!encode_) return ToJsIds(env, counts_);
    auto out = Napi::Array::New(env, ids_.size());
    for (size_t i = 0; i < ids_.size(); ++i) out.Set(static_cast<uint32_t>(i), ToJsIds(env, ids_[i]));
    return out;
  }

 private:
  std::shared_ptr<const tk::Tokenizer> tok_;
  std::vector<std::string> texts_;
  bool add_special_;
  unsigned threads_;
  bool encode_;
  std::vector<uint32_t> counts_;
  std::vector<std::vector<uint32_t>> ids_;
};

void JsTokenizer::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, kTokClass,
                                   {
                                       InstanceMethod<&JsTokenizer::Encode>("encode"),
                                       InstanceMethod<&JsTokenizer::Count>("count"),
                                       InstanceMethod<&JsTokenizer::EncodeIntoArray>("encodeInto"),
                                       InstanceMethod<&JsTokenizer::CountBatch>("countBatch"),
                                       InstanceMethod<&JsTokenizer::EncodeBatch>("encodeBatch"),
                                       InstanceMethod<&JsTokenizer::Decode>("decode"),
                                       InstanceMethod<&JsTokenizer::TokenToId>("tokenToId"),
                                       InstanceMethod<&JsTokenizer::IdToToken>("idToToken"),
                                       InstanceMethod<&JsTokenizer::IsSpecial>("isSpecial"),
                                       InstanceMethod<&JsTokenizer::VocabSize>("vocabSize"),
                                       InstanceMethod<&JsTokenizer::NewDecodeStream>("decodeStream"),
                                       InstanceMethod<&JsTokenizer::Dispose>("dispose"),
                                   });
  AddonData::Of(env).constructors[kTokClass] = Napi::Persistent(cls);
  exports.Set("createTokenizer", Napi::Function::New<&JsTokenizer::Create>(env, "createTokenizer"));
  exports.Set("scanJsonFields", Napi::Function::New<&ScanJsonFields>(env, "scanJsonFields"));
  exports.Set("readFileBig", Napi::Function::New<&ReadFileBig>(env, "readFileBig"));
}

JsTokenizer::JsTokenizer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsTokenizer>(info) {
  if (info.Length() < 1 || !info[0].IsExternal())
    ThrowTypeError(info.Env(), "NativeTokenizer cannot be constructed directly; use createTokenizer()");
  tok_ = *info[0].As<Napi::External<std::shared_ptr<const tk::Tokenizer>>>().Data();
  if (info.Length() > 1 && info[1].IsNumber())
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), info[1].As<Napi::Number>().Int64Value());
}

Napi::Value JsTokenizer::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) ThrowTypeError(env, "expected a tokenizer description object");
    std::vector<Napi::ObjectReference> keep;
    tk::Spec spec = ToSpec(info[0].As<Napi::Object>(), keep);
    auto* w = new CreateWorker(env, std::move(spec), std::move(keep));
    auto p = w->Promise();
    w->Queue();
    return p;
  });
}

Napi::Value JsTokenizer::Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for text");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    std::string& buf = CallBuffer();
    Utf8Into(env, info[0], buf);
    thread_local std::vector<uint32_t> ids;
    ids.clear();
    tok->EncodeInto(buf, add, ids);
    ReleaseIfHuge(buf);
    auto out = ToJsIds(env, ids);
    if (ids.capacity() > (4u << 20)) std::vector<uint32_t>().swap(ids);
    return out;
  });
}

// encodeInto(text, addSpecialTokens, out: Uint32Array) -> number of ids; writes them when they fit. Saves creating
// a typed array in native code per call (the JS side slices a reused array), which dominated short-string encode.
Napi::Value JsTokenizer::EncodeIntoArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for text");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    if (info.Length() < 3 || !info[2].IsTypedArray() ||
        info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      ThrowTypeError(env, "expected a Uint32Array for out");
    auto out = info[2].As<Napi::Uint32Array>();
    std::string& buf = CallBuffer();
    Utf8Into(env, info[0], buf);
    thread_local std::vector<uint32_t> ids;
    ids.clear();
    tok->EncodeInto(buf, add, ids);
    ReleaseIfHuge(buf);
    if (ids.size() <= out.ElementLength() && !ids.empty())
      std::memcpy(out.Data(), ids.data(), ids.size() * sizeof(uint32_t));
    size_t n = ids.size();
    if (ids.capacity() > (4u << 20)) std::vector<uint32_t>().swap(ids);
    return Napi::Number::New(env, static_cast<double>(n));
  });
}

Napi::Value JsTokenizer::Count(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for text");
    bool add = BoolArg(info, 1, "addSpecialTokens");
    std::string& buf = CallBuffer();
    Utf8Into(env, info[0], buf);
    size_t n = tok->Count(buf, add);
    ReleaseIfHuge(buf);
    return Napi::Number::New(env, static_cast<double>(n));
  });
}

Napi::Value JsTokenizer::CountBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tok = Get(env);
    auto texts = ToTexts(info);
    bool add = BoolArg(info, 1, "addSpecialTokens");
    unsigned threads = ThreadsArg(info, 2);
    auto w = std::make_unique<BatchWorker>(env, tok, std::move(texts), add, threads, false);
    auto p = w->Promise();
    if (w->Small())
      w->RunHere();
    else
      w.release()->Queue();
    return p;
  });
}

Napi::Value JsTokenizer::EncodeBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tok = Get(env);
    auto texts = ToTexts(info);
    bool add = BoolArg(info, 1, "addSpecialTokens");
    unsigned threads = ThreadsArg(info, 2);
    auto w = std::make_unique<BatchWorker>(env, tok, std::move(texts), add, threads, true);
    auto p = w->Promise();
    if (w->Small())
      w->RunHere();
    else
      w.release()->Queue();
    return p;
  });
}

Napi::Value JsTokenizer::Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      ThrowTypeError(env, "expected a Uint32Array for ids");
    auto a = info[0].As<Napi::Uint32Array>();
    bool skip = BoolArg(info, 1, "skipSpecialTokens");
    std::string s = tok->Decode(std::span<const uint32_t>(a.Data(), a.ElementLength()), skip);
    return Napi::String::New(env, s);
  });
}

Napi::Value JsTokenizer::TokenToId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsString()) ThrowTypeError(env, "expected a string for token");
    auto id = tok->TokenToId(info[0].As<Napi::String>().Utf8Value());
    return id ? Napi::Number::New(env, *id) : env.Undefined();
  });
}

Napi::Value JsTokenizer::IdToToken(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsNumber()) ThrowTypeError(env, "expected an integer for id");
    double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 4294967296.0) || d != static_cast<double>(static_cast<uint32_t>(d))) return env.Undefined();
    auto t = tok->IdToToken(static_cast<uint32_t>(d));
    return t ? Napi::String::New(env, *t) : env.Undefined();
  });
}

Napi::Value JsTokenizer::IsSpecial(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const auto& tok = Get(env);
    if (info.Length() < 1 || !info[0].IsNumber()) ThrowTypeError(env, "expected an integer for id");
    double d = info[0].As<Napi::Number>().DoubleValue();
    bool ok = d >= 0 && d < 4294967296.0 && d == static_cast<double>(static_cast<uint32_t>(d));
    return Napi::Boolean::New(env, ok && tok->IsSpecial(static_cast<uint32_t>(d)));
  });
}

Napi::Value JsTokenizer::VocabSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value { return Napi::Number::New(env, Get(env)->VocabSize()); });
}

Napi::Value JsTokenizer::NewDecodeStream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tok = Get(env);
    bool skip = BoolArg(info, 0, "skipSpecialTokens");
    auto* holder = new std::shared_ptr<const tk::Tokenizer>(tok);
    auto ext = Napi::External<std::shared_ptr<const tk::Tokenizer>>::New(
        env, holder, [](Napi::Env, std::shared_ptr<const tk::Tokenizer>* p) { delete p; });
    return AddonData::Of(env).Constructor(kStreamClass).New({ext, Napi::Boolean::New(env, skip)});
  });
}

Napi::Value JsTokenizer::Dispose(const Napi::CallbackInfo& info) {
  tok_.reset();
  return info.Env().Undefined();
}

void JsDecodeStream::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, kStreamClass,
                                   {
                                       InstanceMethod<&JsDecodeStream::Step>("step"),
                                       InstanceMethod<&JsDecodeStream::Flush>("flush"),
                                   });
  AddonData::Of(env).constructors[kStreamClass] = Napi::Persistent(cls);
  (void)exports;
}

JsDecodeStream::JsDecodeStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsDecodeStream>(info) {
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsBoolean())
    ThrowTypeError(info.Env(), "NativeDecodeStream cannot be constructed directly; use tokenizer.decodeStream()");
  auto tok = *info[0].As<Napi::External<std::shared_ptr<const tk::Tokenizer>>>().Data();
  stream_ = std::make_unique<tk::DecodeStream>(tok, info[1].As<Napi::Boolean>().Value());
}

Napi::Value JsDecodeStream::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) ThrowTypeError(env, "expected a token id");
    double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 4294967296.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
      ThrowTypeError(env, "expected a non-negative integer token id, got " + std::to_string(d));
    return Napi::String::New(env, stream_->Step(static_cast<uint32_t>(d)));
  });
}

Napi::Value JsDecodeStream::Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value { return Napi::String::New(env, stream_->Flush()); });
}

}  // namespace

void InitTokenizer(Napi::Env env, Napi::Object exports) {
  JsTokenizer::Init(env, exports);
  JsDecodeStream::Init(env, exports);
}

std::shared_ptr<const tokmeter::tokenizer::Tokenizer> UnwrapTokenizer(Napi::Value v) {
  Napi::Env env = v.Env();
  Napi::Function cls = AddonData::Of(env).Constructor(kTokClass);
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(cls)) ThrowTypeError(env, "expected a NativeTokenizer");
  return JsTokenizer::Unwrap(v.As<Napi::Object>())->Get(env);
}

}  // namespace tokmeter::addon
