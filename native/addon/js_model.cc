#include "js_model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "../engine/engine.h"
#include "../engine/model_files.h"
#include "../util/error.h"
#include "js_addon_data.h"
#include "js_async.h"
#include "js_convert.h"
#include "js_errors.h"
#if __has_include("js_tokenizer.h")
#include "../link/tokenizer_link.h"
#include "js_tokenizer.h"
#define TOKMETER_MODEL_HAS_TOKENIZER 1
#endif

namespace tokmeter::addon {
namespace {

constexpr const char* kModelClass = "NativeModel";
constexpr const char* kGenerationClass = "NativeGeneration";

struct ModelHandle {
  std::shared_ptr<engine::Engine> engine;
#ifdef TOKMETER_MODEL_HAS_TOKENIZER
  // The requests' tokenizers joined to this model: undecodable ids (never sampled), constraint vocabularies and
  // compiled constraints.
  std::unique_ptr<link::TokenizerLink> tokenizers;
#endif
};

// ---- conversions (JS thread) ----

double OptionalNumber(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    ThrowTypeError(o.Env(), std::string("expected a finite number for ") + key);
  }
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<uint32_t> ToIds(const Napi::Value& v, const char* what) {
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
    auto a = v.As<Napi::Uint32Array>();
    return std::vector<uint32_t>(a.Data(), a.Data() + a.ElementLength());
  }
  if (!v.IsArray()) ThrowTypeError(v.Env(), std::string("expected a Uint32Array or an array of token ids for ") + what);
  auto a = v.As<Napi::Array>();
  std::vector<uint32_t> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i)
    out.push_back(static_cast<uint32_t>(ToInteger(a.Get(i), what, 0, 0xffffffffLL)));
  return out;
}

// {"<token id>": bias, ...} → entries in key order. Keys must be decimal token ids (no sign, no leading zero);
// the bias bounds are checked by engine::ValidateSamplingOptions, the ids against the vocabulary by the caller.
std::vector<engine::TokenBias> ToLogitBias(const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || v.IsArray()) ThrowTypeError(env, "expected an object of token id -> bias for logitBias");
  auto o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  std::vector<engine::TokenBias> out;
  out.reserve(keys.Length());
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    const bool digits = !key.empty() && key.size() <= 10 && (key == "0" || key[0] != '0') &&
                        key.find_first_not_of("0123456789") == std::string::npos;
    const uint64_t id = digits ? std::stoull(key) : 0;
    if (!digits || id > UINT32_MAX) ThrowTypeError(env, "expected token ids as keys of logitBias, got \"" + key + "\"");
    Napi::Value bias = o.Get(key);
    if (!bias.IsNumber()) ThrowTypeError(env, "expected a number for logitBias." + key);
    out.push_back({static_cast<uint32_t>(id), static_cast<float>(bias.As<Napi::Number>().DoubleValue())});
  }
  return out;
}

engine::ModelConfig ToConfig(const Napi::Value& v) {
  if (!v.IsObject()) ThrowTypeError(v.Env(), "expected an object for config");
  auto o = v.As<Napi::Object>();
  engine::ModelConfig c;
  if (o.Get("modelType").IsString()) c.modelType = o.Get("modelType").As<Napi::String>().Utf8Value();
  c.numLayers = OptionalInteger(o, "numLayers", 0, 0, 1 << 20);
  c.numKvHeads = OptionalInteger(o, "numKvHeads", 0, 0, 1 << 20);
  c.headDim = OptionalInteger(o, "headDim", 0, 0, 1 << 20);
  c.vocabSize = OptionalInteger(o, "vocabSize", 0, 0, 1LL << 31);
  c.contextLength = ToInteger(o.Get("contextLength"), "config.contextLength", 1, 1LL << 31);
  if (!o.Get("eosTokenIds").IsUndefined()) c.eosTokenIds = ToIds(o.Get("eosTokenIds"), "config.eosTokenIds");
  return c;
}

// ---- streaming back to JS ----

// What the inference thread has produced and JS has not received yet. Shared by the sink (inference thread) and
// the thread-safe function's callback (JS thread).
struct Pending {
  std::mutex mutex;
  std::vector<uint32_t> tokens;
  std::vector<float> logprobs;
  // Top-N alternatives: per token, how many, then their ids and log-probabilities (flattened).
  std::vector<uint8_t> topCounts;
  std::vector<uint32_t> topIds;
  std::vector<float> topLogprobs;
  std::string text;
  bool done = false;
  engine::GenerationOutcome outcome;
  bool hopScheduled = false;
  bool released = false;
};

void DeliverOnJsThread(Napi::Env env, Napi::Function onEvents, Pending* pending, bool wantLogprobs, bool wantTop,
                       int64_t* externalBytes, Napi::ThreadSafeFunction* tsfn);

class JsStreamSink final : public engine::StreamSink {
 public:
  JsStreamSink(Napi::ThreadSafeFunction tsfn, bool logprobs, bool top, int64_t externalBytes)
      : tsfn_(std::move(tsfn)),
        logprobs_(logprobs),
        top_(top),
        pending_(std::make_shared<Pending>()),
        external_bytes_(std::make_shared<int64_t>(externalBytes)) {}
  ~JsStreamSink() override = default;

  void OnStep(const engine::StepResult& step) override {
    std::lock_guard<std::mutex> lock(pending_->mutex);
    pending_->tokens.push_back(step.token);
    if (logprobs_) pending_->logprobs.push_back(step.logprob);
    if (top_) {
      pending_->topCounts.push_back(static_cast<uint8_t>(step.top.size()));
      for (const engine::TokenLogprob& t : step.top) {
        pending_->topIds.push_back(t.id);
        pending_->topLogprobs.push_back(t.logprob);
      }
    }
    pending_->text += step.text;
    ScheduleLocked();
  }
  void OnDone(const engine::GenerationOutcome& outcome) override {
    std::lock_guard<std::mutex> lock(pending_->mutex);
    pending_->done = true;
    pending_->outcome = outcome;
    ScheduleLocked();
  }

 private:
  void ScheduleLocked() {
    if (pending_->hopScheduled || pending_->released) return;
    pending_->hopScheduled = true;
    auto pending = pending_;
    auto bytes = external_bytes_;
    auto tsfn = std::make_shared<Napi::ThreadSafeFunction>(tsfn_);
    const bool logprobs = logprobs_;
    const bool top = top_;
    const napi_status status =
        tsfn_.NonBlockingCall([pending, bytes, tsfn, logprobs, top](Napi::Env env, Napi::Function fn) {
          DeliverOnJsThread(env, fn, pending.get(), logprobs, top, bytes.get(), tsfn.get());
        });
    if (status != napi_ok) pending_->hopScheduled = false;  // the environment is going away
  }

  Napi::ThreadSafeFunction tsfn_;
  bool logprobs_;
  bool top_;
  std::shared_ptr<Pending> pending_;
  std::shared_ptr<int64_t> external_bytes_;
};

const char* FinishName(engine::FinishReason r) { return engine::FinishReasonName(r); }

template <typename Array, typename T>
Array CopyToArray(Napi::Env env, const std::vector<T>& values) {
  auto array = Array::New(env, values.size());
  if (!values.empty()) std::memcpy(array.Data(), values.data(), values.size() * sizeof(T));
  return array;
}

void DeliverOnJsThread(Napi::Env env, Napi::Function onEvents, Pending* pending, bool wantLogprobs, bool wantTop,
                       int64_t* externalBytes, Napi::ThreadSafeFunction* tsfn) {
  std::vector<uint32_t> tokens;
  std::vector<float> logprobs;
  std::vector<uint8_t> top_counts;
  std::vector<uint32_t> top_ids;
  std::vector<float> top_logprobs;
  std::string text;
  bool done;
  engine::GenerationOutcome outcome;
  {
    std::lock_guard<std::mutex> lock(pending->mutex);
    tokens.swap(pending->tokens);
    logprobs.swap(pending->logprobs);
    top_counts.swap(pending->topCounts);
    top_ids.swap(pending->topIds);
    top_logprobs.swap(pending->topLogprobs);
    text.swap(pending->text);
    done = pending->done;
    outcome = pending->outcome;
    pending->hopScheduled = false;
    if (done) pending->released = true;
  }
  if (env == nullptr || onEvents.IsEmpty()) return;  // environment teardown
  Napi::HandleScope scope(env);
  Napi::Object batch = Napi::Object::New(env);
  auto ids = Napi::Uint32Array::New(env, tokens.size());
  if (!tokens.empty()) std::memcpy(ids.Data(), tokens.data(), tokens.size() * sizeof(uint32_t));
  batch.Set("tokens", ids);
  batch.Set("text", Napi::String::New(env, text));
  if (wantLogprobs) {
    auto lp = Napi::Float32Array::New(env, logprobs.size());
    if (!logprobs.empty()) std::memcpy(lp.Data(), logprobs.data(), logprobs.size() * sizeof(float));
    batch.Set("logprobs", lp);
  } else {
    batch.Set("logprobs", env.Null());
  }
  if (wantTop) {
    Napi::Object top = Napi::Object::New(env);
    top.Set("counts", CopyToArray<Napi::Uint8Array>(env, top_counts));
    top.Set("ids", CopyToArray<Napi::Uint32Array>(env, top_ids));
    top.Set("logprobs", CopyToArray<Napi::Float32Array>(env, top_logprobs));
    batch.Set("topLogprobs", top);
  } else {
    batch.Set("topLogprobs", env.Null());
  }
  if (done) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("finishReason", outcome.failed ? "error" : FinishName(outcome.finishReason));
    // The engine's Usage as it is (also on failure: what was processed is what is billed).
    Napi::Object usage = Napi::Object::New(env);
    usage.Set("promptTokens", Napi::Number::New(env, static_cast<double>(outcome.usage.promptTokens)));
    usage.Set("completionTokens", Napi::Number::New(env, static_cast<double>(outcome.usage.completionTokens)));
    usage.Set("totalTokens", Napi::Number::New(env, static_cast<double>(outcome.usage.totalTokens)));
    usage.Set("cachedTokens", Napi::Number::New(env, static_cast<double>(outcome.usage.cachedTokens)));
    d.Set("usage", usage);
    if (outcome.failed) {
      d.Set("error", MakeJsError(env, outcome.errorCode, outcome.errorMessage).Value());
    }
    batch.Set("done", d);
    if (*externalBytes > 0) {
      Napi::MemoryManagement::AdjustExternalMemory(env, -*externalBytes);
      *externalBytes = 0;
    }
  } else {
    batch.Set("done", env.Null());
  }
  try {
    onEvents.Call({batch});
  } catch (const Napi::Error& e) {
    // The TS layer's handler does not throw; if it does, surface it as an uncaught exception rather than lose it.
    if (done) tsfn->Release();
    throw;
  }
  if (done) tsfn->Release();
}

// ---- classes ----

class JsGeneration : public Napi::ObjectWrap<JsGeneration> {
 public:
  static void Init(Napi::Env env) {
    Napi::Function cls =
        DefineClass(env, kGenerationClass,
                    {InstanceMethod<&JsGeneration::Abort>("abort"), InstanceMethod<&JsGeneration::Ack>("ack")});
    AddonData::Of(env).constructors[kGenerationClass] = Napi::Persistent(cls);
  }
  explicit JsGeneration(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsGeneration>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
      ThrowTypeError(info.Env(), "NativeGeneration cannot be constructed directly; use model.generate()");
    }
  }
  void Bind(std::shared_ptr<ModelHandle> model, std::shared_ptr<engine::GenerationStream> stream) {
    model_ = std::move(model);
    stream_ = std::move(stream);
  }

 private:
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    if (stream_) stream_->Abort();
    return info.Env().Undefined();
  }
  Napi::Value Ack(const Napi::CallbackInfo& info) {
    const int64_t n = ToInteger(info[0], "ack count", 0, 1LL << 40);
    if (stream_) stream_->Acknowledge(static_cast<size_t>(n));
    return info.Env().Undefined();
  }
  std::shared_ptr<ModelHandle> model_;
  std::shared_ptr<engine::GenerationStream> stream_;
};

#ifdef TOKMETER_MODEL_HAS_TOKENIZER
// engine::Detokenizer over the tokenizer's incremental DecodeStream (special tokens are skipped in the text).
class TokenizerDetokenizer final : public engine::Detokenizer {
 public:
  explicit TokenizerDetokenizer(std::shared_ptr<const tokenizer::Tokenizer> t) : stream_(std::move(t), true) {}
  std::string Step(uint32_t id) override { return stream_.Step(id); }
  std::string Flush() override { return stream_.Flush(); }

 private:
  tokenizer::DecodeStream stream_;
};
#endif

class JsModel : public Napi::ObjectWrap<JsModel> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit JsModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsModel>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
      ThrowTypeError(info.Env(), "NativeModel cannot be constructed directly; use loadModel()");
    }
    handle_ = *info[0].As<Napi::External<std::shared_ptr<ModelHandle>>>().Data();
    // V8 counts external memory towards its GC heuristics: report what lives in host memory only (a CUDA model's
    // weights and KV are in GPU memory, and reporting them would force collections that free nothing).
    const engine::EngineInfo& i = handle_->engine->info();
    external_bytes_ = i.onHost ? static_cast<int64_t>(i.model.fileBytes) : 0;
    if (external_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), external_bytes_);
  }

 private:
  std::shared_ptr<ModelHandle> Require(Napi::Env env) {
    if (!handle_) throw MakeJsError(env, "ERR_DISPOSED", "the model is disposed");
    return handle_;
  }
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value CompileConstraint(const Napi::CallbackInfo& info);
  Napi::Value Timings(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value MaskedTokens(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelHandle> handle_;
  int64_t external_bytes_ = 0;
};

class LoadModelWorker : public PromiseWorker {
 public:
  LoadModelWorker(Napi::Env env, engine::EngineOptions options)
      : PromiseWorker(env, "tokmeter:loadModel"), options_(std::move(options)) {}

 protected:
  void Work() override {
    handle_ = std::make_shared<ModelHandle>();
    handle_->engine = engine::Engine::Load(options_);
#ifdef TOKMETER_MODEL_HAS_TOKENIZER
    handle_->tokenizers = std::make_unique<link::TokenizerLink>(handle_->engine->info().vocabSize);
#endif
  }
  Napi::Value Resolve(Napi::Env env) override {
    auto external = Napi::External<std::shared_ptr<ModelHandle>>::New(env, &handle_);
    return AddonData::Of(env).Constructor(kModelClass).New({external});
  }

 private:
  engine::EngineOptions options_;
  std::shared_ptr<ModelHandle> handle_;
};

#ifdef TOKMETER_MODEL_HAS_TOKENIZER
// A compiled constraint held by JS (an External): the grammar stays alive while JS references it.
using GrammarRef = std::shared_ptr<const grammar::Grammar>;

class CompileConstraintWorker : public PromiseWorker {
 public:
  CompileConstraintWorker(Napi::Env env, std::shared_ptr<ModelHandle> handle,
                          std::shared_ptr<const tokenizer::Tokenizer> tokenizer, std::string spec)
      : PromiseWorker(env, "tokmeter:compileConstraint"),
        handle_(std::move(handle)),
        tokenizer_(std::move(tokenizer)),
        spec_(std::move(spec)) {}

 protected:
  void Work() override { grammar_ = handle_->tokenizers->Compile(spec_, tokenizer_); }
  Napi::Value Resolve(Napi::Env env) override {
    return Napi::External<GrammarRef>::New(env, new GrammarRef(std::move(grammar_)),
                                           [](Napi::Env, GrammarRef* ref) { delete ref; });
  }

 private:
  std::shared_ptr<ModelHandle> handle_;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  std::string spec_;
  GrammarRef grammar_;
};
#endif

class DisposeWorker : public PromiseWorker {
 public:
  DisposeWorker(Napi::Env env, std::shared_ptr<ModelHandle> handle)
      : PromiseWorker(env, "tokmeter:disposeModel"), handle_(std::move(handle)) {}

 protected:
  void Work() override { handle_->engine->Shutdown(); }
  Napi::Value Resolve(Napi::Env env) override { return env.Undefined(); }

 private:
  std::shared_ptr<ModelHandle> handle_;
};

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) ThrowTypeError(env, "expected an options object for loadModel");
    auto o = info[0].As<Napi::Object>();
    engine::EngineOptions options;
    options.dir = ToPath(o.Get("dir"), "dir");
    if (!o.Get("dtype").IsUndefined()) options.dtype = ToString(o.Get("dtype"), "dtype");
    engine::ModelFileFor(options.dtype);  // an unknown dtype is a TypeError now, not a rejected load
    options.threads = static_cast<int>(OptionalInteger(o, "threads", 0, 0, 1024));
    if (!o.Get("prefixCache").IsUndefined()) options.prefixCache = ToBool(o.Get("prefixCache"), "prefixCache");
    options.kvCacheBytes = static_cast<size_t>(OptionalInteger(o, "kvCacheBytes", 0, 0, 1LL << 50));
    options.prefixCacheBytes = static_cast<size_t>(OptionalInteger(o, "prefixCacheBytes", 0, 0, 1LL << 50));
    if (!o.Get("device").IsUndefined()) options.device = ToString(o.Get("device"), "device");
    if (options.device != "cpu" && options.device != "cuda")
      ThrowTypeError(env, "expected device 'cpu' or 'cuda', got '" + options.device + "'");
    options.deviceId = static_cast<int>(OptionalInteger(o, "deviceId", 0, 0, 1024));
    options.maxQueue = static_cast<size_t>(OptionalInteger(o, "maxQueue", 0, 0, 1LL << 31));
    options.maxBatch = static_cast<size_t>(OptionalInteger(o, "maxBatch", 1, 1, 1024));
    options.prefillChunk = static_cast<size_t>(OptionalInteger(o, "prefillChunk", 256, 1, 1LL << 31));
    options.config = ToConfig(o.Get("config"));
    auto* worker = new LoadModelWorker(env, std::move(options));
    worker->Queue();
    return worker->Promise();
  });
}

void JsModel::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, kModelClass,
                                   {
                                       InstanceMethod<&JsModel::Info>("info"),
                                       InstanceMethod<&JsModel::Generate>("generate"),
                                       InstanceMethod<&JsModel::Timings>("timings"),
                                       InstanceMethod<&JsModel::Stats>("stats"),
                                       InstanceMethod<&JsModel::Dispose>("dispose"),
                                       InstanceMethod<&JsModel::MaskedTokens>("maskedTokens"),
                                       InstanceMethod<&JsModel::CompileConstraint>("compileConstraint"),
                                   });
  AddonData::Of(env).constructors[kModelClass] = Napi::Persistent(cls);
  JsGeneration::Init(env);
  exports.Set("loadModel", Napi::Function::New<LoadModel>(env, "loadModel"));
}

Napi::Value JsModel::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Require(env);
  const engine::EngineInfo& e = h->engine->info();
  const engine::ModelInfo& m = e.model;
  auto num = [&](double v) { return Napi::Number::New(env, v); };
  Napi::Object o = Napi::Object::New(env);
  o.Set("file", m.file);
  o.Set("fileBytes", num(static_cast<double>(m.fileBytes)));
  o.Set("layers", num(static_cast<double>(m.layers)));
  o.Set("kvHeads", num(static_cast<double>(m.kvHeads)));
  o.Set("headDim", num(static_cast<double>(m.headDim)));
  o.Set("vocabSize", num(static_cast<double>(e.vocabSize)));
  o.Set("kvDtype", m.kvDtype);
  o.Set("logitsDtype", m.logitsDtype);
  o.Set("positionIds", Napi::Boolean::New(env, m.positionIds));
  o.Set("attentionMask", Napi::Boolean::New(env, m.attentionMask));
  o.Set("contextLength", num(static_cast<double>(e.contextLength)));
  o.Set("kvBytesPerToken", num(static_cast<double>(e.kvBytesPerToken)));
  o.Set("batchable", Napi::Boolean::New(env, e.batchable));
  if (!e.batchable) o.Set("notBatchableReason", m.notBatchableReason);
  if (!e.prefixCacheOffReason.empty()) o.Set("prefixCacheOffReason", e.prefixCacheOffReason);
  o.Set("device", m.device);
  o.Set("deviceName", m.deviceName);
  return o;
}

Napi::Value JsModel::Timings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Require(env);
  engine::ForwardTimings empty;
  const engine::ForwardTimings* timings = h->engine->timings();
  const engine::ForwardTimings& t = timings ? *timings : empty;
  Napi::Object o = Napi::Object::New(env);
  o.Set("runMs", Napi::Number::New(env, static_cast<double>(t.runNanos.load()) / 1e6));
  o.Set("forwardMs", Napi::Number::New(env, static_cast<double>(t.forwardNanos.load()) / 1e6));
  o.Set("forwards", Napi::Number::New(env, static_cast<double>(t.forwards.load())));
  o.Set("decodeRunMs", Napi::Number::New(env, static_cast<double>(t.decodeRunNanos.load()) / 1e6));
  o.Set("decodeForwardMs", Napi::Number::New(env, static_cast<double>(t.decodeForwardNanos.load()) / 1e6));
  o.Set("decodeForwards", Napi::Number::New(env, static_cast<double>(t.decodeForwards.load())));
  o.Set("decodeGapMs", Napi::Number::New(env, static_cast<double>(t.decodeGapNanos.load()) / 1e6));
  o.Set("decodeRows", Napi::Number::New(env, static_cast<double>(t.decodeRows.load())));
  o.Set("decodeGapCpuMs", Napi::Number::New(env, static_cast<double>(t.decodeGapCpuNanos.load()) / 1e6));
  o.Set("decodeOutsideRunCpuMs", Napi::Number::New(env, static_cast<double>(t.decodeOutsideRunCpuNanos.load()) / 1e6));
  auto phase = [&](const char* name, const engine::PhaseCounter& c) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("ms", Napi::Number::New(env, static_cast<double>(c.nanos.load()) / 1e6));
    p.Set("count", Napi::Number::New(env, static_cast<double>(c.count.load())));
    p.Set("pageFaults", Napi::Number::New(env, static_cast<double>(c.pageFaults.load())));
    o.Set(name, p);
  };
  phase("sequenceAlloc", t.sequenceAlloc);
  phase("prefixLoad", t.prefixLoad);
  phase("prefill", t.prefill);
  phase("prefixStore", t.prefixStore);
  phase("relayout", t.relayout);
  return o;
}

Napi::Value JsModel::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = Require(env);
  auto num = [&](double v) { return Napi::Number::New(env, v); };
  Napi::Object o = Napi::Object::New(env);
  const engine::EngineStats e = h->engine->stats();
  const engine::SchedulerStats& q = e.scheduler;
  o.Set("running", num(static_cast<double>(q.running)));
  o.Set("queued", num(static_cast<double>(q.queued)));
  o.Set("prefilling", num(static_cast<double>(q.prefilling)));
  o.Set("parked", num(static_cast<double>(q.parked)));
  o.Set("maxBatch", num(static_cast<double>(q.maxBatch)));
  o.Set("lastBatch", num(static_cast<double>(q.lastBatch)));
  o.Set("batchSteps", num(static_cast<double>(q.steps)));
  o.Set("batchRows", num(static_cast<double>(q.rows)));
  o.Set("kvReservedBytes", num(static_cast<double>(q.kvReservedBytes)));
  o.Set("prefixCache", Napi::Boolean::New(env, e.prefixCache));
  const engine::PrefixCacheStats& s = e.cache;
  o.Set("cacheHits", num(static_cast<double>(s.hits)));
  o.Set("cacheMisses", num(static_cast<double>(s.misses)));
  o.Set("cachedTokens", num(static_cast<double>(s.cachedTokens)));
  o.Set("cacheEntries", num(static_cast<double>(s.entries)));
  o.Set("cacheEvictions", num(static_cast<double>(s.evictions)));
  o.Set("cacheOversized", num(static_cast<double>(s.oversized)));
  o.Set("cacheBytes", num(static_cast<double>(s.bytes)));
  o.Set("cacheLimitBytes", num(static_cast<double>(e.prefixCache ? s.limit : 0)));
  o.Set("kvCacheBytes", num(static_cast<double>(e.kvBudgetBytes)));
  o.Set("cacheNoMemory", num(static_cast<double>(s.noMemory)));
  const engine::KvArenaStats& a = e.kvArena;
  o.Set("kvArenaBytes", num(static_cast<double>(a.capacity)));
  o.Set("kvArenaUsedBytes", num(static_cast<double>(a.used)));
  o.Set("kvArenaPeakBytes", num(static_cast<double>(a.peak)));
  o.Set("kvArenaTouchedBytes", num(static_cast<double>(a.touched)));
  o.Set("kvArenaSpills", num(static_cast<double>(a.spills)));
  o.Set("kvArenaSpilledBytes", num(static_cast<double>(a.spilledBytes)));
  return o;
}

Napi::Value JsModel::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto h = Require(env);
    if (!info[0].IsObject()) ThrowTypeError(env, "expected a request object for generate");
    if (!info[1].IsFunction()) ThrowTypeError(env, "expected an event callback for generate");
    auto r = info[0].As<Napi::Object>();
    engine::GenerationRequest request;
    request.prompt = ToIds(r.Get("prompt"), "prompt");
    auto& p = request.params;
    // Absent: until the context is full (0 for the engine); given: the option table's bounds.
    p.maxNewTokens =
        static_cast<size_t>(OptionalInteger(r, "maxNewTokens", 0, 1, static_cast<int64_t>(engine::kMaxNewTokensLimit)));
    p.sampling.temperature = static_cast<float>(OptionalNumber(r, "temperature", 1.0));
    p.sampling.topK = static_cast<int32_t>(OptionalInteger(r, "topK", 0, 0, INT32_MAX));
    p.sampling.topP = static_cast<float>(OptionalNumber(r, "topP", 1.0));
    p.sampling.minP = static_cast<float>(OptionalNumber(r, "minP", 0.0));
    p.sampling.repetitionPenalty = static_cast<float>(OptionalNumber(r, "repetitionPenalty", 1.0));
    p.sampling.presencePenalty = static_cast<float>(OptionalNumber(r, "presencePenalty", 0.0));
    p.sampling.frequencyPenalty = static_cast<float>(OptionalNumber(r, "frequencyPenalty", 0.0));
    p.sampling.seed = static_cast<uint64_t>(OptionalInteger(r, "seed", 0, 0, (1LL << 53) - 1));
    if (!r.Get("logitBias").IsUndefined()) p.sampling.logitBias = ToLogitBias(r.Get("logitBias"));
    p.topLogprobs =
        static_cast<size_t>(OptionalInteger(r, "topLogprobs", 0, 0, static_cast<int64_t>(engine::kMaxTopLogprobs)));
    if (!r.Get("eosTokenIds").IsUndefined()) p.eosTokenIds = ToIds(r.Get("eosTokenIds"), "eosTokenIds");
    if (!r.Get("stop").IsUndefined()) p.stopStrings = ToStringArray(r.Get("stop"), "stop");
    if (!r.Get("logprobs").IsUndefined()) p.logprobs = ToBool(r.Get("logprobs"), "logprobs");
    const auto window =
        static_cast<size_t>(OptionalInteger(r, "window", 64, 1, static_cast<int64_t>(engine::kMaxWindow)));
    Napi::Value tok = r.Get("tokenizer");
    if (!tok.IsUndefined() && !tok.IsNull()) {
#ifdef TOKMETER_MODEL_HAS_TOKENIZER
      auto tokenizer = UnwrapTokenizer(tok);
      p.sampling.masked = h->tokenizers->UndecodableIds(tokenizer);
      if (p.sampling.masked->empty()) p.sampling.masked = nullptr;
      request.detokenizer = [tokenizer]() -> std::unique_ptr<engine::Detokenizer> {
        return std::make_unique<TokenizerDetokenizer>(tokenizer);
      };
#else
      ThrowTypeError(env, "this build of tokmeter has no native tokenizer");
#endif
    }
    Napi::Value constraint = r.Get("constraint");
    if (!constraint.IsUndefined()) {
#ifdef TOKMETER_MODEL_HAS_TOKENIZER
      if (!constraint.IsExternal())
        ThrowTypeError(env, "expected a compiled constraint (compileConstraint()) for constraint");
      p.grammar = *constraint.As<Napi::External<GrammarRef>>().Data();
      if (!p.grammar) ThrowTypeError(env, "expected a compiled constraint for constraint");
#else
      ThrowTypeError(env, "this build of tokmeter has no native tokenizer");
#endif
    }
    // Report the KV cache this generation will hold to V8 (released when its final event is delivered).
    const auto kv_bytes = static_cast<int64_t>(h->engine->kvHostBytes(request));
    const bool logprobs = p.logprobs;
    const bool top = p.topLogprobs > 0;
    auto tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "tokmeter:generate", 0, 1);
    std::shared_ptr<engine::GenerationStream> stream;
    try {
      stream =
          h->engine->Start(std::move(request), std::make_unique<JsStreamSink>(tsfn, logprobs, top, kv_bytes), window);
    } catch (...) {
      tsfn.Release();
      throw;
    }
    Napi::MemoryManagement::AdjustExternalMemory(env, kv_bytes);
    Napi::Object object =
        AddonData::Of(env).Constructor(kGenerationClass).New({Napi::External<void>::New(env, nullptr)});
    JsGeneration::Unwrap(object)->Bind(h, stream);
    return object;
  });
}

// compileConstraint(spec: string, tokenizer): Promise<External> — compiles a constraint spec (native/grammar) over
// the tokenizer's vocabulary on a worker thread, through the model's GrammarCache. Rejects with the grammar's typed
// errors (code, pointer, keyword).
Napi::Value JsModel::CompileConstraint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto h = Require(env);
#ifdef TOKMETER_MODEL_HAS_TOKENIZER
    std::string spec = ToString(info[0], "constraint");
    auto* worker = new CompileConstraintWorker(env, h, UnwrapTokenizer(info[1]), std::move(spec));
    worker->Queue();
    return worker->Promise();
#else
    ThrowTypeError(env, "this build of tokmeter has no native tokenizer");
#endif
  });
}

// How many ids of the model's vocabulary `tokenizer` cannot decode (they are never sampled in its generations).
Napi::Value JsModel::MaskedTokens(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto h = Require(env);
#ifdef TOKMETER_MODEL_HAS_TOKENIZER
    auto mask = h->tokenizers->UndecodableIds(UnwrapTokenizer(info[0]));
    size_t count = 0;
    for (const auto& r : *mask) count += r.end - r.begin;
    return Napi::Number::New(env, static_cast<double>(count));
#else
    ThrowTypeError(env, "this build of tokmeter has no native tokenizer");
#endif
  });
}

Napi::Value JsModel::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<ModelHandle> handle = std::move(handle_);
  handle_.reset();
  if (external_bytes_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env, -external_bytes_);
  external_bytes_ = 0;
  if (!handle) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  auto* worker = new DisposeWorker(env, std::move(handle));
  worker->Queue();
  return worker->Promise();
}

}  // namespace

void InitModel(Napi::Env env, Napi::Object exports) { JsModel::Init(env, exports); }

}  // namespace tokmeter::addon
