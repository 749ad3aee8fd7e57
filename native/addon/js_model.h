// JsModel — the JS face of a loaded generation model (an engine::Engine: the model, its inference thread, the KV
// budget). This file only converts JS values into engine::EngineOptions / engine::GenerationRequest and back,
// schedules Engine::Load and Engine::Shutdown on workers and streams steps through a thread-safe function; every
// engine decision (batch size, KV capacity and budget, request bounds) is the engine's (native/engine/engine.h).
//
// JS surface; src/native/model-contract.ts types every field (only src/model/ uses it):
//   loadModel({dir, dtype, threads, prefixCache, kvCacheBytes, maxQueue, maxBatch, prefillChunk, device, deviceId,
//              config}) → Promise<NativeModel>                                       (loads on a worker thread)
//   model.info() → NativeModelInfo: the chosen file, graph shape (layers, kvHeads, headDim, vocabSize, dtypes, inputs),
//                  contextLength, kvBytesPerToken, batchable / notBatchableReason, device, deviceName
//   model.generate(request, onEvents) → NativeGeneration {abort(), ack(n)}  (request: prompt, sampling options,
//                  eosTokenIds, stop, logprobs, window, tokenizer; runs on the model's inference thread; throws
//                  ERR_QUEUE_FULL when maxQueue generations are already waiting)
//   model.timings() → ModelTimings: run / forward time and counts, decode-only figures, decodeGapMs, decodeRows
//   model.stats() → ModelStats: running, queued, prefilling, parked, batch figures, the KV budget and reservations,
//                   the prefix cache's counters and bytes                                       (cheap; JS thread)
//   model.dispose() → Promise<void>                                         (idempotent; joins the thread off-loop)
// Streaming: the inference thread hands each step to a JsStreamSink, which queues it and schedules at most one
// thread-safe-function call at a time; that call delivers everything queued since the last one (several steps per
// hop when JS is busy) as {tokens: Uint32Array, text, logprobs: Float32Array|null, done: null|{finishReason, usage,
// error?}}; `usage` is the engine's Usage as it is (promptTokens, completionTokens, totalTokens, cachedTokens), also
// with an error. JS calls
// ack(n) as its consumer takes tokens; the engine waits when `window` tokens are unacknowledged (backpressure).
// Ownership: the JS NativeModel holds a shared_ptr<ModelHandle> (which holds the shared Engine); each
// NativeGeneration holds one too, so the engine and its thread outlive every generation object. dispose() (or GC of the
// last owner) aborts queued and running generations — each still gets its final `done` event with the usage of what was
// processed. Threads: JS thread except Work() of the workers and the scheduler's inference thread, which never touch
// N-API.
#pragma once

#include <napi.h>

namespace tokmeter::addon {

void InitModel(Napi::Env env, Napi::Object exports);

}  // namespace tokmeter::addon
