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
export type PromptInput =
  | string
  | {
      messages: { role: string; content: string; name?: string }[];
      addGenerationPrompt?: boolean;
      continueFinalMessage?: boolean;
    };

export interface GenerateOptions {
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  signal?: AbortSignal;
  /** Ask for each sampled token's log-probability in the chunks (`GenerationChunk.logprobs`). */
  logprobs?: boolean;
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

export interface GenerationChunk {
  /** New text; never ends inside a UTF-8 character (may be empty, e.g. for EOS or held-back stop-string prefixes). */
  text: string;
  /** Token ids sampled since the previous chunk, in order. */
  tokens: Uint32Array;
  /** Log-probability of each of `tokens` (when the generation was asked for them). */
  logprobs?: Float32Array;
}

export interface GenerationResult {
  text: string;
  finishReason: FinishReason;
  usage: Usage;
}

/** A started generation: iterate it for chunks; `result` settles when it ends (also when nobody iterates). */
export interface GenerationRun extends AsyncIterable<GenerationChunk> {
  readonly result: Promise<GenerationResult>;
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
 * - `result.usage` is authoritative for billing. Errors from `generate()` may be thrown synchronously or reported
 *   by rejecting `result` (and the iterator).
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
  countPrompt(input: PromptInput): number;
  generate(input: PromptInput, options?: GenerateOptions): GenerationRun;
  renderPrompt?(input: PromptInput): string;
  preparePrompt?(input: PromptInput): PreparedPrompt;
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
  generate(options: GenerateOptions): GenerationRun;
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
