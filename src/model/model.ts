/**
 * Model: a text-generation model folder (Hugging Face / Optimum layout) run by tokmeter's native engine.
 *
 *   const model = await Model.load('models/demo', { device: 'cpu', threads: 2 });
 *   const run = model.generate({ messages }, { maxNewTokens: 128, temperature: 0.7, seed: 1, signal });
 *   for await (const chunk of run) process.stdout.write(chunk.text);
 *   const { text, finishReason, usage } = await run.result;
 *
 * Threads: the graph loads on a libuv worker; each Model owns one inference thread (native/engine/scheduler.h)
 * that admits generations in arrival order and runs up to `maxBatch` of them together (continuous batching: one
 * model call per step for all of them; each sequence's greedy tokens equal its solo run). Nothing computes on the
 * JS thread except prompt encoding.
 *
 * Usage rule (what a Meter bills; counted by the engine, never by re-tokenizing text):
 * - promptTokens = the ids fed to the model: the chat template rendered and encoded without adding special tokens
 *   (the template writes them), or a plain prompt encoded with the tokenizer's special tokens (e.g. BOS); equal to
 *   countPrompt(input).
 * - completionTokens = tokens sampled. The EOS token that ends a generation counts (it was sampled) but adds no
 *   text; the token that completes a stop string counts; text after a stop string is dropped.
 * - totalTokens = promptTokens + completionTokens; cachedTokens = the prompt tokens whose KV came from the prefix
 *   cache (load option prefixCache), exact; they are part of promptTokens (billing may discount them).
 * - After an abort: what was processed. An abort during the prefill reports promptTokens 0 (the prefill did not
 *   complete); otherwise the prompt plus the tokens sampled before the abort.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  ClosedError,
  ContextLengthError,
  ModelLoadError,
  TokmeterTypeError,
  mapNativeErrors,
  mapNativeRejection,
  toTokmeterError,
} from '../errors.js';
import type {
  ModelStats,
  ModelTimings,
  NativeGenerateRequest,
  NativeModel,
  NativeModelApi,
  NativeModelInfo,
} from '../native/model-contract.js';
import { requireCuda } from '../cuda/index.js';
import { ensureRuntime } from '../runtime.js';
import { Tokenizer, continueFinalMessage, type ChatMessage } from '../tokenizer/index.js';
import { checkGenerateOptions, type ConstraintSpec } from '../usage/index.js';
import { describe, expectInteger, expectKnownKeys, expectObject, expectPath } from '../validate.js';
import { readModelConfig, type SamplingDefaults } from './config.js';
import { Generation } from './generation.js';
import { detokenizerFor, type DetokenizerSource } from './tokenizer-link.js';
import './errors.js'; // registers ERR_QUEUE_FULL → QueueFullError, ERR_KV_BUDGET → KvBudgetError

export type ModelDtype = 'fp32' | 'fp16' | 'int8' | 'uint8' | 'q8' | 'q4' | 'q4f16' | 'bnb4';
const DTYPES: readonly ModelDtype[] = ['fp32', 'fp16', 'int8', 'uint8', 'q8', 'q4', 'q4f16', 'bnb4'];

export interface ModelLoadOptions {
  /** 'cpu' (default) or 'cuda'. CUDA checks the device and libraries first (DeviceUnavailableError). */
  device?: 'cpu' | 'cuda';
  /** CUDA device index (device 'cuda' only). Default 0. */
  deviceId?: number;
  /** ONNX Runtime intra-op threads. Default: ONNX Runtime's choice (one per physical core). */
  threads?: number;
  /** Which onnx/model*.onnx to load, named as transformers.js names them. Default 'fp32' (onnx/model.onnx). */
  dtype?: ModelDtype;
  /**
   * Prompt-prefix KV cache. After each prefill the prompt's KV is kept (LRU, under kvCacheBytes); a later prompt
   * sharing a prefix (system prompt, document, earlier chat turns) copies it and prefills only the rest;
   * usage.cachedTokens reports how many prompt tokens were served that way. Greedy outputs are identical with and
   * without it. Default false (cachedTokens is then always 0).
   */
  prefixCache?: boolean;
  /**
   * Most KV bytes the prefix cache keeps (with prefixCache), within kvCacheBytes: the cache then holds at most this,
   * and never more than the running generations leave. Default: no bound of its own.
   */
  prefixCacheBytes?: number;
  /**
   * KV memory budget in bytes, shared by the running generations and the prefix cache. Each running generation
   * set is charged 2 x kvBytesPerToken x running x the largest capacity among them (capacity: prompt +
   * maxNewTokens, or the context length without maxNewTokens) — the batch's buffers with every row padded to the
   * longest; the prefix cache holds at most the rest (it evicts when a generation is admitted). A generation that
   * does not fit next to the running ones waits in the queue; one that alone exceeds the budget is refused with
   * KvBudgetError. Default: 256 MiB, raised to one full-context generation (2 x contextLength x kvBytesPerToken)
   * when that is larger. On the CPU all KV lives in one arena of this size, reused request after request (stats()
   * kvArena*); with prefixCache it is made resident at load, so a cache hit never pays first-touch page faults.
   * Details in native/engine/README.md.
   */
  kvCacheBytes?: number;
  /**
   * Most generations waiting for admission (FIFO). Past it, generate() throws QueueFullError (ERR_QUEUE_FULL)
   * synchronously, before any compute. Default 256; 0: unbounded.
   */
  maxQueue?: number;
  /**
   * Most generations decoding together (continuous batching), 1..1024. Default 16. A model whose graph cannot batch
   * (no attention_mask, a fixed batch dimension, or a file whose operators could not be read) runs one at a time
   * whatever this says (info.batchable, info.notBatchableReason).
   */
  maxBatch?: number;
  /**
   * Most prompt tokens a newcomer prefills per step while other generations decode (chunked prefill: a long prompt
   * delays the running ones by one chunk per step). Alone, a prompt is prefilled at once. Default 256.
   */
  prefillChunk?: number;
}

/** Default KV budget (raised to one full-context generation when that is larger). */
export const DEFAULT_KV_CACHE_BYTES = 256 * 1024 * 1024;
/** Default bound of a model's generation queue. */
export const DEFAULT_MAX_QUEUE = 256;
/** Default number of generations decoding together. */
export const DEFAULT_MAX_BATCH = 16;

/**
 * A prompt: plain text (special tokens added), a chat, or token ids fed as they are. A chat's `tools` (Hugging Face's
 * `{type: 'function', function: {name, description, parameters}}` list) are given to its template. A chat opens the assistant's
 * turn (`addGenerationPrompt`, default true), or with `continueFinalMessage` continues its final message (prefill:
 * the template is rendered without the generation prompt and cut right after that message's text).
 */
export type PromptInput =
  | string
  | { messages: ChatMessage[]; tools?: unknown[]; addGenerationPrompt?: boolean; continueFinalMessage?: boolean }
  | { tokens: Uint32Array | readonly number[] };

export interface GenerateOptions {
  /** Most tokens to sample. Default: until EOS or the context window is full. */
  maxNewTokens?: number;
  /**
   * 0 = greedy. Default 1, or generation_config.json's: with `do_sample: true` its temperature/top_p/top_k are the
   * defaults of temperature/topP/topK; with `do_sample: false` the default is greedy (as transformers.js).
   * Bounds of every option: GENERATE_OPTIONS (src/usage/generate-options.ts).
   */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Makes sampling reproducible. Default 0. */
  seed?: number;
  /** Stop strings (may span tokens); the text ends before the first one found. */
  stop?: string | string[];
  signal?: AbortSignal;
  /** Return each token's log-probability (raw model distribution) in the chunks. */
  logprobs?: boolean;
  /**
   * Token id (decimal string, as OpenAI's logit_bias) → bias in [-100, 100] added to its logit before the other
   * samplers: -100 effectively bans the token, +100 effectively forces it. Ids must be within the vocabulary.
   */
  logitBias?: Readonly<Record<string, number>>;
  /**
   * List the 0-20 most likely tokens of each step in the chunks (`topLogprobs`), with log-probabilities under the
   * same raw distribution as `logprobs` (before the logit bias and the samplers). Default 0 (nothing computed).
   */
  topLogprobs?: number;
  /** Ends generation on these ids instead of generation_config.json's eos_token_id. */
  eosTokenIds?: number[];
  /** Tokens the engine may compute ahead of the consumer (backpressure window). Default 64. */
  highWaterMark?: number;
  /**
   * What the output must be (JSON Schema, any JSON object, regex, choice, tool-call formats): the engine masks every
   * token that would leave it and allows EOS exactly when the document is complete, so a generation that finishes
   * with 'stop' is a complete document. Compiled off the event loop (cached by spec); a spec the engine cannot
   * enforce rejects `result` with a GrammarError naming the JSON pointer and keyword. CPU models only.
   */
  constraint?: ConstraintSpec;
}

const GENERATE_KEYS = [
  'maxNewTokens',
  'temperature',
  'topK',
  'topP',
  'minP',
  'repetitionPenalty',
  'presencePenalty',
  'frequencyPenalty',
  'seed',
  'stop',
  'signal',
  'logprobs',
  'logitBias',
  'topLogprobs',
  'eosTokenIds',
  'highWaterMark',
  'constraint',
] as const;

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

function modelAddon(): NativeModelApi {
  // The model's slice of the addon; loads ONNX Runtime on first use and maps native errors to TokmeterErrors.
  return mapNativeErrors(() => ensureRuntime().addon);
}

/** What the engine reports about a loaded model, plus how its tokenizer covers the model's vocabulary. */
export interface ModelInfo extends NativeModelInfo {
  /**
   * Which file was loaded (the load option dtype, transformers.js's name). Its weight bytes are `fileBytes`: the
   * .onnx file plus its external data, what each decode step streams from memory.
   */
  dtype: ModelDtype;
  /** The tokenizer's vocabulary size (largest id + 1); at most `vocabSize`, the model's (its logits). */
  tokenizerVocabSize: number;
  /**
   * Ids of the model's vocabulary the tokenizer cannot decode (padding: vocabularies are often padded to a multiple
   * of 64 or 128; and holes in the tokenizer's ids). They are never sampled: masked to -infinity before the logits
   * processors, the sampler and the log-probabilities, on the CPU and on the GPU.
   */
  maskedTokens: number;
}

export class Model {
  /** The model's name (config.json `_name_or_path`, else the folder name). */
  readonly name: string;
  /** Context window in tokens (prompt + completion). */
  readonly contextLength: number;
  readonly tokenizer: Tokenizer;
  readonly info: Readonly<ModelInfo>;
  #native: NativeModel | null;
  readonly #eos: number[];
  readonly #detok: DetokenizerSource;
  readonly #sampling: SamplingDefaults | undefined;
  readonly #inFlight = new Set<Generation>();
  #disposing: Promise<void> | undefined;

  private constructor(
    native: NativeModel,
    name: string,
    tokenizer: Tokenizer,
    eos: number[],
    detok: DetokenizerSource,
    sampling: SamplingDefaults | undefined,
    dtype: ModelDtype,
  ) {
    this.#native = native;
    this.#sampling = sampling;
    this.name = name;
    this.info = Object.freeze({
      ...native.info(),
      dtype,
      tokenizerVocabSize: tokenizer.vocabSize,
      maskedTokens: native.maskedTokens(Tokenizer.nativeHandle(tokenizer)),
    });
    this.contextLength = this.info.contextLength;
    this.tokenizer = tokenizer;
    this.#eos = eos;
    this.#detok = detok;
  }

  /**
   * Loads a model folder: config.json, generation_config.json (optional), tokenizer.json, tokenizer_config.json and
   * onnx/model{variant}.onnx (+ external data). The graph loads off the JS thread.
   * Errors: ModelLoadError ERR_MODEL_NOT_FOUND (a missing file, named), ERR_MODEL_INVALID (a graph or config
   * tokmeter cannot run, with the reason), ERR_VOCAB_MISMATCH (tokenizer ids that the model cannot embed).
   */
  static async load(dir: string, options: ModelLoadOptions = {}): Promise<Model> {
    expectPath('dir', dir);
    const o = expectObject('options', options);
    expectKnownKeys('Model.load options', o, [
      'device',
      'deviceId',
      'threads',
      'dtype',
      'prefixCache',
      'prefixCacheBytes',
      'kvCacheBytes',
      'maxQueue',
      'maxBatch',
      'prefillChunk',
    ]);
    if (options.prefixCache !== undefined && typeof options.prefixCache !== 'boolean') {
      throw new TokmeterTypeError(`expected a boolean for prefixCache, got ${describe(options.prefixCache)}`);
    }
    // Absent: the native default (DEFAULT_KV_CACHE_BYTES or one full-context generation, whichever is larger).
    const kvCacheBytes =
      options.kvCacheBytes === undefined
        ? 0
        : expectInteger('kvCacheBytes', options.kvCacheBytes, 1, Number.MAX_SAFE_INTEGER);
    const prefixCacheBytes =
      options.prefixCacheBytes === undefined
        ? 0
        : expectInteger('prefixCacheBytes', options.prefixCacheBytes, 1, Number.MAX_SAFE_INTEGER);
    if (options.prefixCacheBytes !== undefined && options.prefixCache !== true) {
      throw new TokmeterTypeError('prefixCacheBytes bounds the prefix cache: it needs prefixCache: true');
    }
    const maxQueue =
      options.maxQueue === undefined ? DEFAULT_MAX_QUEUE : expectInteger('maxQueue', options.maxQueue, 0, 2 ** 31);
    const maxBatch =
      options.maxBatch === undefined ? DEFAULT_MAX_BATCH : expectInteger('maxBatch', options.maxBatch, 1, 1024);
    const prefillChunk =
      options.prefillChunk === undefined ? 256 : expectInteger('prefillChunk', options.prefillChunk, 1, 2 ** 31);
    if (options.device !== undefined && options.device !== 'cpu' && options.device !== 'cuda') {
      throw new TokmeterTypeError(`expected device 'cpu' or 'cuda', got ${describe(options.device)}`);
    }
    if (options.deviceId !== undefined && options.device !== 'cuda') {
      throw new TokmeterTypeError("deviceId is an option of device 'cuda' only");
    }
    if (options.device === 'cuda') {
      // Names every missing piece (plug-in, provider libraries, driver, GPU) before anything loads.
      await requireCuda({ deviceId: options.deviceId ?? 0 });
    }
    const threads = options.threads === undefined ? 0 : expectInteger('threads', options.threads, 1, 1024);
    const dtype = options.dtype ?? 'fp32';
    if (!DTYPES.includes(dtype)) {
      throw new TokmeterTypeError(`expected dtype to be one of ${DTYPES.join(', ')}, got ${describe(dtype)}`);
    }
    const config = await readModelConfig(dir);
    // The graph loads on a libuv worker while the JS thread reads the tokenizer.
    const [nativeResult, tokenizerResult] = await Promise.allSettled([
      modelAddon().loadModel({
        dir,
        dtype,
        threads,
        prefixCache: options.prefixCache ?? false,
        ...(prefixCacheBytes > 0 ? { prefixCacheBytes } : {}),
        kvCacheBytes,
        maxQueue,
        maxBatch,
        prefillChunk,
        device: options.device ?? 'cpu',
        deviceId: options.deviceId ?? 0,
        config: config.native,
      }),
      Tokenizer.fromPretrained(dir),
    ]);
    const native = nativeResult.status === 'fulfilled' ? nativeResult.value : undefined;
    const tokenizer = tokenizerResult.status === 'fulfilled' ? tokenizerResult.value : undefined;
    let detok: DetokenizerSource | undefined;
    try {
      if (nativeResult.status === 'rejected') throw nativeResult.reason;
      if (tokenizerResult.status === 'rejected') {
        const e = toTokmeterError(tokenizerResult.reason) as Error & { code?: string };
        // A file that is not there is ERR_MODEL_NOT_FOUND; one that is there but wrong is ERR_MODEL_INVALID.
        const tokenizerFile = path.join(dir, 'tokenizer.json');
        const missing = !(await isFile(tokenizerFile));
        throw new ModelLoadError(
          missing || e.code !== 'ERR_TOKENIZER_SPEC' ? 'ERR_MODEL_NOT_FOUND' : 'ERR_MODEL_INVALID',
          missing ? `${tokenizerFile} is missing: ${e.message}` : `cannot load the tokenizer of ${dir}: ${e.message}`,
          { cause: tokenizerResult.reason },
        );
      }
      const info = native!.info();
      if (tokenizer!.vocabSize > info.vocabSize) {
        throw new ModelLoadError(
          'ERR_VOCAB_MISMATCH',
          `the tokenizer of ${dir} has ${tokenizer!.vocabSize} tokens but the model's vocabulary (logits) has ` +
            `${info.vocabSize}: they do not belong together (ids >= ${info.vocabSize} cannot be embedded)`,
        );
      }
      detok = detokenizerFor(tokenizer!);
      const eos =
        config.native.eosTokenIds && config.native.eosTokenIds.length > 0
          ? config.native.eosTokenIds
          : [...tokenizer!.eosTokenIds];
      return new Model(native!, config.name, tokenizer!, eos, detok, config.sampling, dtype);
    } catch (err) {
      tokenizer?.dispose();
      detok?.dispose();
      await native?.dispose();
      throw toTokmeterError(err);
    }
  }

  get disposed(): boolean {
    return this.#native === null;
  }

  #handle(): NativeModel {
    if (!this.#native) throw new ClosedError('ERR_DISPOSED', 'the model is disposed');
    return this.#native;
  }

  /**
   * What generate() feeds for `input`: text to encode (a chat rendered with the model's template, encoded without
   * extra special tokens since the template writes them; plain text with the tokenizer's special tokens), or ids
   * given as they are. One place, so that encodePrompt() and countPrompt() cannot disagree.
   */
  #promptSource(input: PromptInput): { text: string; addSpecialTokens: boolean } | { ids: Uint32Array } {
    this.#handle();
    if (typeof input === 'string') return { text: input, addSpecialTokens: true };
    const o = expectObject('prompt', input);
    if ('messages' in o) {
      expectKnownKeys('prompt', o, ['messages', 'tools', 'addGenerationPrompt', 'continueFinalMessage']);
      const messages = o.messages as ChatMessage[];
      if (o.tools !== undefined && !Array.isArray(o.tools)) {
        throw new TokmeterTypeError(`expected an array of tool definitions for prompt.tools, got ${describe(o.tools)}`);
      }
      const tools = o.tools === undefined ? {} : { tools: o.tools as unknown[] };
      if (o.continueFinalMessage !== undefined && typeof o.continueFinalMessage !== 'boolean') {
        throw new TokmeterTypeError(
          `expected a boolean for prompt.continueFinalMessage, got ${describe(o.continueFinalMessage)}`,
        );
      }
      if (o.continueFinalMessage === true) {
        if (o.addGenerationPrompt === true) {
          throw new TokmeterTypeError('continueFinalMessage and addGenerationPrompt exclude each other');
        }
        const text = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false, ...tools });
        return { text: continueFinalMessage(text, messages), addSpecialTokens: false };
      }
      const text = this.tokenizer.applyChatTemplate(messages, {
        addGenerationPrompt: (o.addGenerationPrompt as boolean | undefined) ?? true,
        ...tools,
      });
      return { text, addSpecialTokens: false };
    }
    if ('tokens' in o) {
      expectKnownKeys('prompt', o, ['tokens']);
      const t = o.tokens;
      const ids = t instanceof Uint32Array ? t : Array.isArray(t) ? Uint32Array.from(t as number[]) : undefined;
      if (!ids)
        throw new TokmeterTypeError(`expected a Uint32Array or an array of ids for prompt.tokens, got ${describe(t)}`);
      if (Array.isArray(t)) (t as unknown[]).forEach((v, i) => expectInteger(`prompt.tokens[${i}]`, v, 0, 0xffffffff));
      for (const id of ids) {
        if (id >= this.info.vocabSize) {
          throw new TokmeterTypeError(
            `prompt token id ${id} is outside the model's vocabulary of ${this.info.vocabSize}`,
          );
        }
      }
      return { ids };
    }
    throw new TokmeterTypeError(`expected a string, {messages} or {tokens} for the prompt, got ${describe(input)}`);
  }

  /** The exact ids generate() would feed for `input` (chat template and special tokens applied). */
  encodePrompt(input: PromptInput): Uint32Array {
    const src = this.#promptSource(input);
    return 'ids' in src ? src.ids : this.tokenizer.encode(src.text, { addSpecialTokens: src.addSpecialTokens });
  }

  /**
   * Exact prompt tokens generate() would bill for `input` (the metering seam). Counts through the tokenizer's
   * counting path, which builds no id array (the Meter calls this on every request before admission).
   */
  countPrompt(input: PromptInput): number {
    const src = this.#promptSource(input);
    return 'ids' in src ? src.ids.length : this.tokenizer.count(src.text, { addSpecialTokens: src.addSpecialTokens });
  }

  /**
   * Starts a generation on the model's inference thread. Throws synchronously, before any compute, on invalid
   * options (TypeError), a prompt that does not fit the context window (ContextLengthError with both numbers), a
   * full queue (QueueFullError, see the load option maxQueue), a request whose KV alone exceeds the budget
   * (KvBudgetError, see kvCacheBytes), or a disposed model (ClosedError). The usage rule
   * is in this file's header.
   */
  generate(input: PromptInput, options: GenerateOptions = {}): Generation {
    const native = this.#handle();
    const o = expectObject('options', options);
    expectKnownKeys('generate options', o, GENERATE_KEYS);
    const prompt = this.encodePrompt(input);
    if (prompt.length === 0) throw new TokmeterTypeError('the prompt encodes to no tokens; nothing to generate from');
    if (prompt.length >= this.contextLength) {
      throw new ContextLengthError(
        'ERR_CONTEXT_LENGTH',
        `the prompt has ${prompt.length} tokens but ${this.name}'s context length is ${this.contextLength} ` +
          '(the prompt must leave room for at least one completion token)',
        { promptTokens: prompt.length, contextLength: this.contextLength },
      );
    }
    // Types and bounds of the sampling options: one table (generate-options.ts), shared with the Meter and the server.
    checkGenerateOptions(o);
    const stop = options.stop === undefined ? [] : typeof options.stop === 'string' ? [options.stop] : options.stop;
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TokmeterTypeError(`expected an AbortSignal for signal, got ${describe(signal)}`);
    }
    if (options.logprobs !== undefined && typeof options.logprobs !== 'boolean') {
      throw new TokmeterTypeError(`expected a boolean for logprobs, got ${describe(options.logprobs)}`);
    }
    const eos = options.eosTokenIds ?? this.#eos;
    if (!Array.isArray(eos))
      throw new TokmeterTypeError(`expected an array of ids for eosTokenIds, got ${describe(eos)}`);
    eos.forEach((id, i) => expectInteger(`eosTokenIds[${i}]`, id, 0, 0xffffffff));
    const request: NativeGenerateRequest = {
      prompt,
      eosTokenIds: [...eos],
      stop,
      logprobs: options.logprobs ?? false,
      tokenizer: this.#detok.handle(),
      window: options.highWaterMark ?? 64,
    };
    if (options.maxNewTokens !== undefined) request.maxNewTokens = options.maxNewTokens;
    // generation_config.json's sampling defaults (config.ts SamplingDefaults) fill what the caller left out.
    const d = this.#sampling;
    const t = options.temperature;
    if (t !== undefined) request.temperature = t;
    else if (d && !d.doSample) request.temperature = 0;
    else if (d?.temperature !== undefined) request.temperature = d.temperature;
    if (options.topK !== undefined) request.topK = options.topK;
    else if (d?.doSample && d.topK !== undefined) request.topK = d.topK;
    if (options.topP !== undefined) request.topP = options.topP;
    else if (d?.doSample && d.topP !== undefined) request.topP = d.topP;
    if (options.minP !== undefined) request.minP = options.minP;
    if (options.repetitionPenalty !== undefined) request.repetitionPenalty = options.repetitionPenalty;
    if (options.presencePenalty !== undefined) request.presencePenalty = options.presencePenalty;
    if (options.frequencyPenalty !== undefined) request.frequencyPenalty = options.frequencyPenalty;
    if (options.seed !== undefined) request.seed = options.seed;
    if (options.logitBias !== undefined && Object.keys(options.logitBias).length > 0) {
      request.logitBias = { ...options.logitBias };
    }
    if (options.topLogprobs) request.topLogprobs = options.topLogprobs;

    const tokenizer = this.tokenizer;
    const run = new Generation((id) => tokenizer.decode([id], { skipSpecialTokens: false }));
    if (signal?.aborted) {
      run.settleAborted(); // nothing was processed: usage 0
      return run;
    }
    const onAbort = (): void => run.abort();
    const start = (): void => {
      const handle = mapNativeErrors(() => native.generate(request, run.onEvent));
      run.attach(handle, () => {
        signal?.removeEventListener('abort', onAbort);
        this.#inFlight.delete(run);
      });
    };
    this.#inFlight.add(run);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (options.constraint === undefined) {
      try {
        start();
      } catch (err) {
        signal?.removeEventListener('abort', onAbort);
        this.#inFlight.delete(run);
        throw err;
      }
      return run;
    }
    // The constraint compiles on a worker thread (cached by spec); its errors, and an abort meanwhile, settle `run`.
    const vocabulary = request.tokenizer;
    if (!vocabulary) throw new TokmeterTypeError('a constraint needs the model tokenizer');
    mapNativeRejection(native.compileConstraint(JSON.stringify(options.constraint), vocabulary))
      .then((compiled) => {
        if (signal?.aborted || run.abortRequested) {
          run.settleAborted();
          return;
        }
        request.constraint = compiled;
        start();
      })
      .catch((err: unknown) => run.fail(toTokmeterError(err)))
      .finally(() => {
        if (!run.attached) {
          signal?.removeEventListener('abort', onAbort);
          this.#inFlight.delete(run);
        }
      });
    return run;
  }

  /** Scheduler and prefix-cache counters: running, queued, cache hits, cached tokens, cache memory used. */
  stats(): ModelStats {
    return this.#handle().stats();
  }

  /** Engine timings so far (benchmarks): time inside ONNX Runtime's Run vs. the whole model step. */
  timings(): ModelTimings {
    return this.#handle().timings();
  }

  /**
   * Releases the model. Idempotent; generations still running or queued are aborted (their `result` resolves with
   * finishReason 'abort' and the usage processed) and waited for. Later calls throw ClosedError.
   */
  async dispose(): Promise<void> {
    if (this.#disposing) return this.#disposing;
    const native = this.#native;
    this.#native = null;
    const runs = [...this.#inFlight];
    this.#disposing = (async () => {
      await native?.dispose();
      await Promise.allSettled(runs.map((r) => r.result));
      this.#detok.dispose();
      this.tokenizer.dispose();
    })();
    return this.#disposing;
  }
}
