/**
 * Generation: the stream of one model.generate() call — an async iterable of chunks plus a `result` promise.
 *
 * Flow control: native events arrive on the JS thread (several steps per hop). A chunk is acknowledged to the
 * engine when the consumer takes it from the iterator, so a slow reader holds the engine at most `window` tokens
 * ahead (native/engine/scheduler.h). Until an iterator is requested, chunks are acknowledged on arrival (the caller
 * may only want `result`) and kept for a later iterator. Leaving a `for await` early (break/return/throw) aborts
 * the generation.
 */
import { TokmeterTypeError, toTokmeterError } from '../errors.js';
import type { NativeGeneration, NativeGenerationEvent, NativeUsage } from '../native/model-contract.js';
import type {
  FinishReason,
  MeterableChunk as MeteredChunk,
  MeterableResult as MeteredResult,
  TopLogprob,
  Usage,
} from '../usage/index.js';

// The usage numbers and chunk shape are the metering seam's (src/usage/types.ts): one definition, so a Model is a
// MeterableModel by construction. The Model adds log-probabilities to chunks and the sampled ids to the result.
export type { FinishReason, TopLogprob, Usage } from '../usage/index.js';

export interface GenerationChunk extends MeteredChunk {
  /** Log-probability of each token under the model's raw distribution, when `logprobs: true`. */
  logprobs?: Float32Array;
}

export interface GenerationResult extends MeteredResult {
  /** Every token id sampled, in order. */
  tokens: Uint32Array;
}

/**
 * The engine's counts of one generation, as they are billed: the native `Usage` (totalTokens included) copied field
 * by field, so nothing but the four counts reaches a Meter.
 */
export function usageOf(u: NativeUsage): Usage {
  return {
    promptTokens: u.promptTokens,
    completionTokens: u.completionTokens,
    totalTokens: u.totalTokens,
    cachedTokens: u.cachedTokens,
  };
}

const NO_USAGE: NativeUsage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedTokens: 0 };

export class Generation implements AsyncIterable<GenerationChunk> {
  /** Settles when the engine is done with this generation (also after abort); rejects on an engine error. */
  readonly result: Promise<GenerationResult>;
  #native: NativeGeneration | null = null;
  #queue: { chunk: GenerationChunk; acked: boolean }[] = [];
  #waiter: (() => void) | null = null;
  #iterating = false;
  #finished = false;
  #error: unknown;
  #text = '';
  #tokens: number[] = [];
  #resolve!: (r: GenerationResult) => void;
  #reject!: (e: unknown) => void;
  #detach: () => void = () => {};

  readonly #decodeToken: (id: number) => string;

  /** @internal Made by Model.generate(); `decodeToken` gives the text of one alternative (topLogprobs). */
  constructor(decodeToken: (id: number) => string = String) {
    this.#decodeToken = decodeToken;
    this.result = new Promise<GenerationResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.result.catch(() => {}); // the iterator reports the same error; never an unhandled rejection
  }

  #abortRequested = false;

  /** @internal */
  attach(native: NativeGeneration, detach: () => void): void {
    this.#native = native;
    this.#detach = detach;
  }

  /** @internal Whether the engine side exists (attach() was called). */
  get attached(): boolean {
    return this.#native !== null;
  }

  /** @internal abort() was called before the engine side existed (a constraint still compiling). */
  get abortRequested(): boolean {
    return this.#abortRequested;
  }

  /** @internal Settles with an error before anything ran (e.g. a constraint that does not compile): usage 0. */
  fail(err: unknown): void {
    if (this.#finished) return;
    if (typeof err === 'object' && err !== null) (err as { usage?: Usage }).usage = usageOf(NO_USAGE);
    this.#error = err;
    this.#finished = true;
    this.#detach();
    this.#reject(err);
    this.#wake();
  }

  /** @internal Settles without running (the signal was already aborted). */
  settleAborted(): void {
    this.#finish({ finishReason: 'abort', usage: NO_USAGE });
  }

  /** Stops the generation at the next step. Idempotent; `result` still resolves with the usage so far. */
  abort(): void {
    this.#abortRequested = true;
    this.#native?.abort();
  }

  /** @internal The native event callback (JS thread). */
  onEvent = (event: NativeGenerationEvent): void => {
    if (event.tokens.length > 0 || event.text.length > 0) {
      const chunk: GenerationChunk = { text: event.text, tokens: event.tokens };
      if (event.logprobs) chunk.logprobs = event.logprobs;
      if (event.topLogprobs) chunk.topLogprobs = this.#alternatives(event.topLogprobs);
      this.#text += event.text;
      for (const t of event.tokens) this.#tokens.push(t);
      // Before anyone iterates, chunks are acknowledged on arrival (a caller that only awaits `result` must not
      // stall the engine) but still queued, so an iterator started later sees every chunk.
      const acked = !this.#iterating;
      if (acked) this.#native?.ack(event.tokens.length);
      this.#queue.push({ chunk, acked });
    }
    if (event.done) {
      const done = event.done;
      if (done.finishReason === 'error') {
        // What the engine processed before it failed travels with the error: that is what a Meter bills.
        const err = toTokmeterError(done.error);
        if (typeof err === 'object' && err !== null) (err as { usage?: Usage }).usage = usageOf(done.usage);
        this.#error = err;
        this.#finished = true;
        this.#detach();
        this.#reject(this.#error);
      } else {
        this.#finish(done);
      }
    }
    this.#wake();
  };

  #alternatives(top: NonNullable<NativeGenerationEvent['topLogprobs']>): TopLogprob[][] {
    const out: TopLogprob[][] = [];
    let at = 0;
    for (const count of top.counts) {
      const step: TopLogprob[] = [];
      for (let k = 0; k < count; k++, at++) {
        const token = top.ids[at]!;
        step.push({ token, text: this.#decodeToken(token), logprob: top.logprobs[at]! });
      }
      out.push(step);
    }
    return out;
  }

  #finish(done: { finishReason: string; usage: NativeUsage }): void {
    this.#finished = true;
    this.#detach();
    this.#resolve({
      text: this.#text,
      tokens: Uint32Array.from(this.#tokens),
      finishReason: done.finishReason as FinishReason,
      usage: usageOf(done.usage),
    });
    this.#wake();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationChunk> {
    if (this.#iterating) {
      throw new TokmeterTypeError(
        'a Generation can be iterated only once (its chunks go to the first iterator)',
        'ERR_ALREADY_ITERATED',
      );
    }
    this.#iterating = true;
    return {
      next: async (): Promise<IteratorResult<GenerationChunk>> => {
        for (;;) {
          const next = this.#queue.shift();
          if (next) {
            if (!next.acked) this.#native?.ack(next.chunk.tokens.length);
            return { value: next.chunk, done: false };
          }
          if (this.#finished) {
            if (this.#error !== undefined) throw this.#error;
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => (this.#waiter = resolve));
        }
      },
      return: async (): Promise<IteratorResult<GenerationChunk>> => {
        if (!this.#finished) this.abort();
        this.#queue = [];
        return { value: undefined, done: true };
      },
    };
  }
}
