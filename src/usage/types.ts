/**
 * The seam between metering (src/usage) and the generation engine (src/model).
 *
 * `Meter.wrap()` depends only on `MeterableModel`; the real `Model` in src/model implements it structurally, and
 * tests use a test double. Usage numbers come from the engine (where tokens are evaluated and sampled); the Meter
 * never re-tokenizes response text to bill.
 */

/**
 * A prompt: raw text, or chat messages the model renders with its chat template (a message may carry more fields
 * for the template, e.g. `name`). `addGenerationPrompt` (default true) opens the assistant's turn;
 * `continueFinalMessage` continues the final (assistant) message instead of closing it.
 */
export type MeterablePromptInput =
  | string
  | {
      messages: { role: string; content: string | null; name?: string; [field: string]: unknown }[];
      /** Tool definitions for the chat template (`tools`). */
      tools?: unknown[];
      addGenerationPrompt?: boolean;
      continueFinalMessage?: boolean;
    };

/** What a metered generation may ask of the engine; types and bounds in generate-options.ts (one table). */
export interface MeterableGenerateOptions {
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  stop?: string | string[];
  signal?: AbortSignal;
  /** Ask for each sampled token's log-probability in the chunks (`GenerationChunk.logprobs`). */
  logprobs?: boolean;
  /** Token id (decimal string) → bias in [-100, 100] added to its logit before the other samplers. */
  logitBias?: Readonly<Record<string, number>>;
  /** List the 0-20 most likely tokens of each step in the chunks (`topLogprobs`). Default 0. */
  topLogprobs?: number;
}

/** One of the most likely tokens of a step, under the model's raw distribution (the one `logprobs` uses). */
export interface TopLogprob {
  /** Token id. */
  token: number;
  /** The token decoded on its own (special tokens included; part of a UTF-8 character decodes to U+FFFD). */
  text: string;
  logprob: number;
}

export type FinishReason = 'stop' | 'length' | 'abort';

/** Usage as counted by the engine for one generation. */
export interface Usage {
  /** Tokens fed to the model for the prompt: after the chat template and special tokens. */
  promptTokens: number;
  /** Tokens sampled, EOS included (see Model.generate for the exact rule). */
  completionTokens: number;
  totalTokens: number;
  /**
   * Of promptTokens, those whose KV was served from the engine's prefix cache instead of being recomputed: exact,
   * 0 on a miss or without the cache (and after an abort during the prefill).
   */
  cachedTokens: number;
}

export interface MeterableChunk {
  /** New text; never ends inside a UTF-8 character (may be empty, e.g. for EOS or held-back stop-string prefixes). */
  text: string;
  /** Token ids sampled since the previous chunk, in order. */
  tokens: Uint32Array;
  /** Log-probability of each of `tokens` (when the generation was asked for them). */
  logprobs?: Float32Array;
  /**
   * With `topLogprobs` > 0: per token of `tokens`, the most likely alternatives at its step, most likely first (ties
   * to the lower id; fewer only when fewer tokens can be sampled at all).
   */
  topLogprobs?: TopLogprob[][];
}

export interface MeterableResult {
  text: string;
  finishReason: FinishReason;
  usage: Usage;
  /**
   * Every token id sampled, in order. Optional for other engines: without it the response cache stores an answer
   * only when its whole stream went through the Meter's iterator.
   */
  tokens?: Uint32Array;
}

/**
 * How an engine that fails after it started reports what it processed: `result` (and the iterator) reject with an
 * error carrying `usage`, the engine's own count (cachedTokens included). The Meter bills exactly that.
 */
export interface GenerationFailure extends Error {
  usage: Usage;
}

/**
 * A started generation: iterate it for chunks; `result` settles when it ends (also when nobody iterates).
 * Flow control goes through the iterator: an engine may hold back while a consumer that asked for the iterator
 * does not take the next chunk; leaving the iterator early (`return()`) stops the generation, whose `result` then
 * settles with what was processed.
 */
export interface GenerationRun extends AsyncIterable<MeterableChunk> {
  readonly result: Promise<MeterableResult>;
}

/**
 * What `Meter.wrap()` needs from a model.
 *
 * Contract:
 * - `name` is the model id used to look up prices.
 * - `countPrompt(input)` returns the exact number of prompt tokens `generate(input)` will evaluate (after the chat
 *   template and special tokens). It is synchronous and must not start any compute on the accelerator.
 * - `generate()` starts work only when called; the Meter calls it only after admission succeeded. It passes an
 *   explicit `maxNewTokens` (the bound the Meter reserved); the model must not produce more completion tokens.
 * - `result.usage` is authoritative for billing. Errors from `generate()` may be thrown synchronously (a refusal:
 *   nothing ran, nothing is billed) or reported by rejecting `result` (and the iterator) with a `GenerationFailure`
 *   whose `usage` is what ran. An error without `usage` is billed as the prompt plus the tokens the consumer took.
 * - `renderPrompt` is optional: when present, the response cache keys on its output (the rendered prompt);
 *   otherwise it keys on a canonical serialization of the input, which is equivalent for a fixed template.
 * - `preparePrompt` is optional and replaces all three for one request: the Meter calls it once, before admission,
 *   and then uses its `promptTokens`, its `cacheKey` and its `generate()` instead of countPrompt, renderPrompt and
 *   generate(input). A model whose prompt work is costly (chat template, tokenizer) renders and encodes once per
 *   request this way instead of three times. Same rules: synchronous, no compute on the accelerator, `promptTokens`
 *   exact for what its `generate()` evaluates.
 */
export interface MeterableModel {
  readonly name: string;
  readonly contextLength: number;
  countPrompt(input: MeterablePromptInput): number;
  generate(input: MeterablePromptInput, options?: MeterableGenerateOptions): GenerationRun;
  renderPrompt?(input: MeterablePromptInput): string;
  preparePrompt?(input: MeterablePromptInput): PreparedPrompt;
}

/** One request's prompt, rendered and encoded once (see `MeterableModel.preparePrompt`). */
export interface PreparedPrompt {
  /** Exact prompt tokens that `generate()` evaluates. */
  readonly promptTokens: number;
  /**
   * What the response cache keys on: equal keys must mean equal model input (e.g. the prompt's token ids). Bytes
   * are hashed as they are; a string is hashed as UTF-8.
   */
  readonly cacheKey: string | Uint8Array;
  /** Starts the generation of exactly this prompt (called at most once, after admission). */
  generate(options: MeterableGenerateOptions): GenerationRun;
}

/** A counting-only object (e.g. a Tokenizer) for counting APIs. */
export interface TokenCounter {
  count(text: string): number;
}

/** Why a usage record ended. 'error' = the engine failed mid-way; 'count' = a counting-API request. */
export type RecordFinishReason = FinishReason | 'error' | 'count' | 'custom';

/**
 * One usage record. `id` is the idempotency key: every ledger stores a given id at most once.
 * Money is exact: `cost` is an integer number of pico-units of `currency` (1e-12 USD for 'USD'), as a bigint.
 */
export interface UsageRecord {
  id: string;
  /** Milliseconds since the Unix epoch when the request was admitted. */
  timestamp: number;
  key: string;
  model: string;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  totalTokens: number;
  finishReason: RecordFinishReason;
  latencyMs: number;
  /** Served from the Meter's response cache (no compute). */
  cacheHit: boolean;
  /** Quantities of custom meters (e.g. { audio_ms: 1200 }), priced by the same table. */
  custom: Record<string, number>;
  cost: bigint;
  currency: string;
  priceVersion: string;
}
