/** The Model slice of the native addon's contract (native/addon/js_model.h). Only src/model/ uses it. */
import type { NativeTokenizer } from './tokenizer-contract.js';

declare const modelBrand: unique symbol;
declare const generationBrand: unique symbol;

/** Numbers from config.json / generation_config.json (parsed in src/model/config.ts); 0 or absent: from the graph. */
export interface NativeModelConfig {
  modelType?: string;
  numLayers?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
  contextLength: number;
  eosTokenIds?: number[];
}

export interface NativeLoadModelOptions {
  dir: string;
  /** transformers.js variant name: fp32 (onnx/model.onnx), fp16, int8, uint8, q8, q4, q4f16, bnb4. */
  dtype?: string;
  /** ONNX Runtime intra-op threads; 0: its default. */
  threads?: number;
  /** Keep prompt KV for reuse by later prompts sharing a prefix (native/engine/prefix_cache.h). Default false. */
  prefixCache?: boolean;
  /**
   * KV budget in bytes: the running sequences' reservation plus the prefix cache (native/engine/scheduler.h).
   * 0 or absent: 256 MiB, raised to one full-context sequence (2 x contextLength x kvBytesPerToken) when larger.
   */
  kvCacheBytes?: number;
  /** Most KV bytes the prefix cache keeps, within kvCacheBytes. 0 or absent: all that running sequences leave. */
  prefixCacheBytes?: number;
  /** Most generations waiting for admission; generate() throws ERR_QUEUE_FULL past it. 0: unbounded. */
  maxQueue?: number;
  /** Most generations decoding together (continuous batching). 1..1024; default 1 here (the TS layer passes 16). */
  maxBatch?: number;
  /** Most prompt tokens a newcomer prefills per step while others decode. Default 256. */
  prefillChunk?: number;
  /** 'cpu' (default) or 'cuda': ONNX Runtime's CUDA provider, KV cache and sampling on the GPU (native/cuda). */
  device?: 'cpu' | 'cuda';
  /** CUDA device index (device 'cuda'). Default 0. */
  deviceId?: number;
  config: NativeModelConfig;
}

export interface NativeModelInfo {
  file: string;
  /** Bytes of the loaded .onnx file and its external data (`<file>_data*`). */
  fileBytes: number;
  layers: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  kvDtype: 'float32' | 'float16';
  logitsDtype: 'float32' | 'float16';
  positionIds: boolean;
  attentionMask: boolean;
  contextLength: number;
  kvBytesPerToken: number;
  /**
   * Whether the graph can run several sequences per step: a free batch dimension, an attention_mask, and operators
   * the engine could read from the file (com.microsoft GroupQueryAttention, which assumes right-padded rows, gets a
   * right-padded batch; every other graph a left-padded one).
   */
  batchable: boolean;
  /** Present when `batchable` is false: why the model runs one sequence at a time. */
  notBatchableReason?: string;
  /** Set when `prefixCache: true` was asked for and the graph cannot reuse KV exactly (why); the cache is off. */
  prefixCacheOffReason?: string;
  /** Where the model runs: 'cpu', or 'cuda' (KV cache and sampling on the GPU). */
  device: 'cpu' | 'cuda';
  /** 'cpu', or the GPU's name. */
  deviceName: string;
}

export interface NativeGenerateRequest {
  prompt: Uint32Array;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  eosTokenIds?: number[];
  stop?: string[];
  logprobs?: boolean;
  /** Token id (decimal string) → bias in [-100, 100]; ids must be within the vocabulary. */
  logitBias?: Readonly<Record<string, number>>;
  /** 0-20 most likely alternatives per step (NativeGenerationEvent.topLogprobs). */
  topLogprobs?: number;
  /** Tokens the engine may run ahead of ack() (backpressure window). Default 64. */
  window?: number;
  /** Turns tokens into text (and enables stop strings); without it, events carry ids only. */
  tokenizer?: NativeTokenizer;
  /** A compiled constraint (compileConstraint()): every sampled token keeps the output inside it. */
  constraint?: NativeConstraint;
}

declare const constraintBrand: unique symbol;
/** A constraint spec compiled over a tokenizer's vocabulary (opaque; kept alive while referenced). */
export interface NativeConstraint {
  readonly [constraintBrand]: true;
}

/** The engine's count of what a generation processed (native/engine/generator.h `Usage`), passed on unchanged. */
export interface NativeUsage {
  promptTokens: number;
  completionTokens: number;
  /** promptTokens + completionTokens, kept by the engine. */
  totalTokens: number;
  /** Of promptTokens, those whose KV came from the prefix cache. */
  cachedTokens: number;
}

export interface NativeGenerationDone {
  finishReason: 'stop' | 'length' | 'abort' | 'error';
  /** Also on 'error': what was processed before the failure, which is what is billed. */
  usage: NativeUsage;
  error?: Error;
}

/** One hop from the inference thread: every step since the previous hop. */
export interface NativeGenerationEvent {
  tokens: Uint32Array;
  text: string;
  logprobs: Float32Array | null;
  /** With topLogprobs > 0: counts[i] alternatives for tokens[i], their ids and log-probabilities in order. */
  topLogprobs: { counts: Uint8Array; ids: Uint32Array; logprobs: Float32Array } | null;
  done: NativeGenerationDone | null;
}

export interface NativeGeneration {
  readonly [generationBrand]: true;
  abort(): void;
  ack(tokens: number): void;
}

/** Engine time inside ONNX Runtime's Run vs. the whole model call; decode* count one-token steps only. */
export interface ModelTimings {
  runMs: number;
  forwardMs: number;
  forwards: number;
  decodeRunMs: number;
  decodeForwardMs: number;
  decodeForwards: number;
  /** Engine time between decode steps of a sequence (sampling, detokenizing, stop checks, streaming hand-off). */
  decodeGapMs: number;
  /** Sequence-steps done by the decode calls (a batched step counts each of its rows). */
  decodeRows: number;
  /** The inference thread's CPU time in those gaps (its own work; the wall time adds waiting for a core). */
  decodeGapCpuMs: number;
  /** Its CPU time in the batched decode steps outside Run (binding, logits), relayouts excepted. */
  decodeOutsideRunCpuMs: number;
  /** A sequence's KV buffers allocated (one per request, and one per parked sequence). */
  sequenceAlloc: PhaseTiming;
  /** Prefix-cache lookups, with the copy of a hit's KV into the sequence. */
  prefixLoad: PhaseTiming;
  /** Prompt Forwards (every Forward of more than one token, and a sequence's first). */
  prefill: PhaseTiming;
  /** Prompts offered to the prefix cache, with the copy of their KV into an entry. */
  prefixStore: PhaseTiming;
  /** The running batch's composition changes (rows copied into or out of the batch KV). */
  relayout: PhaseTiming;
}

/** One phase of the engine's KV handling, cumulative since load. */
export interface PhaseTiming {
  ms: number;
  count: number;
  /** Minor page faults the inference thread took during the phase (first touches of fresh memory). */
  pageFaults: number;
}

/** Scheduler and prefix-cache counters (cumulative since load, except running/queued/cacheEntries/cacheBytes). */
export interface ModelStats {
  /** Generations admitted and not finished: prefilling + decoding + parked (at most maxBatch). */
  running: number;
  /** Generations waiting in the FIFO queue (for a batch slot or for KV budget). */
  queued: number;
  /** Of running, those whose prompt is not fully prefilled yet. */
  prefilling: number;
  /** Of running, those left out of the steps because their consumer has `highWaterMark` tokens unread. */
  parked: number;
  /** The effective batch limit (1 for a model that cannot batch). */
  maxBatch: number;
  /** Sequences in the last decode step. */
  lastBatch: number;
  /** Decode steps (batched model calls) since load. */
  batchSteps: number;
  /** Sequence-steps those made (batchRows / batchSteps = mean batch size). */
  batchRows: number;
  /** KV bytes reserved by the running generations (2 x kvBytesPerToken x running x largest capacity). */
  kvReservedBytes: number;
  /** Whether the model was loaded with prefixCache: true (all cache counters are 0 otherwise). */
  prefixCache: boolean;
  /** Prefills that reused at least one cached token. */
  cacheHits: number;
  /** Prefills that reused nothing. */
  cacheMisses: number;
  /** Prompt tokens served from the cache, all requests together (the sum of usage.cachedTokens). */
  cachedTokens: number;
  cacheEntries: number;
  /** Entries evicted (least recently used first) to stay within kvCacheBytes. */
  cacheEvictions: number;
  /** Prompts not kept because their KV alone exceeds kvCacheBytes (they ran uncached). */
  cacheOversized: number;
  /** KV bytes the cache holds now (<= cacheLimitBytes). */
  cacheBytes: number;
  /** What the cache may hold now: kvCacheBytes minus kvReservedBytes (0 without prefixCache). */
  cacheLimitBytes: number;
  /** The KV budget shared by running generations and the prefix cache. */
  kvCacheBytes: number;
  /** Prompts not kept because the KV memory had no room for them even with every entry evicted. */
  cacheNoMemory: number;
  /**
   * The host KV arena every sequence, the running batch and the prefix cache take their KV from (0 on a GPU, whose
   * KV is device memory): its size (<= kvCacheBytes), bytes in live blocks now, the most at once, and how much of
   * it has been made resident (all of it from load with prefixCache).
   */
  kvArenaBytes: number;
  kvArenaUsedBytes: number;
  kvArenaPeakBytes: number;
  kvArenaTouchedBytes: number;
  /**
   * Blocks served outside the arena because no free run fitted (transients the KV budget does not count: a relayout's
   * old and new batch buffers, a newcomer's prefill buffers while others run), all time; bytes of those live now.
   */
  kvArenaSpills: number;
  kvArenaSpilledBytes: number;
}

export interface NativeModel {
  readonly [modelBrand]: true;
  info(): NativeModelInfo;
  generate(request: NativeGenerateRequest, onEvents: (event: NativeGenerationEvent) => void): NativeGeneration;
  timings(): ModelTimings;
  stats(): ModelStats;
  /**
   * How many ids of the model's vocabulary `tokenizer` cannot decode (a vocabulary padded past the tokenizer's).
   * Generations given that tokenizer never sample them: their logits are -infinity before the processors, the
   * sampler and the log-probabilities, on the CPU and in the CUDA sampler alike.
   */
  maskedTokens(tokenizer: NativeTokenizer): number;
  /** Compiles a constraint spec (JSON text) over the tokenizer's vocabulary on a worker thread (cached by spec). */
  compileConstraint(spec: string, tokenizer: NativeTokenizer): Promise<NativeConstraint>;
  dispose(): Promise<void>;
}

export interface NativeModelApi {
  loadModel(options: NativeLoadModelOptions): Promise<NativeModel>;
}
