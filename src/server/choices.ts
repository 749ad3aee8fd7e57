/**
 * Several choices in one metered request (`n` > 1, a completion's batched `prompt` array, or both), billed as one
 * ledger record with the usage OpenAI reports: each prompt counted once, completion tokens summed over choices.
 *
 * The Meter meters one generation per `MeterableModel.generate()`; `choicesModel` is a per-request model whose
 * one prepared "generation" runs every choice of the request, so the existing admission, reservation, pricing and
 * record path applies unchanged:
 * - `promptTokens` is the sum of the prompts' tokens; the generation's `maxNewTokens` is the per-choice
 *   `max_tokens` times the number of choices (what the Meter reserves against limits and budgets is then the
 *   request's true maximum), and each choice gets its share back.
 * - `contextLength` is the room of the request's sequences together (prompts + every choice's max_tokens), so the
 *   Meter's context check passes; the real per-sequence check (`checkChoicesFit`) runs first, with real numbers.
 * - Choice 0 of each prompt starts first; the others start once it has produced a token, i.e. after its prefill
 *   stored the prompt's KV in the prefix cache: they copy it and prefill one token (prefill once, as OpenAI does).
 *   Each choice has its own seed (`seed + index`), so sampled choices differ.
 * - Usage: promptTokens and cachedTokens are the first choice's of each prompt (the prompt is billed once);
 *   completionTokens the sum over all choices. Chunks carry their choice `index`; the result carries each choice's
 *   text and finish reason (`choices`).
 * The response cache is not used for these requests (it stores one answer per key).
 */
import {
  contextLengthError,
  type FinishReason,
  type MeterableGenerateOptions,
  type MeterableChunk,
  type MeterableResult,
  type GenerationRun,
  type MeterableModel,
  type PreparedPrompt,
  type MeterablePromptInput,
} from '../usage/index.js';

export interface ChoiceChunk extends MeterableChunk {
  index: number;
}

export interface ChoiceResult {
  text: string;
  finishReason: FinishReason;
}

export interface ChoicesResult extends MeterableResult {
  choices: ChoiceResult[];
}

/**
 * Each choice's max_tokens: the request's, or the default capped by the room the longest prompt leaves. Refuses,
 * with the real numbers, a request whose longest prompt + max_tokens does not fit the context window.
 */
export function choicesMaxTokens(
  model: MeterableModel,
  inputs: MeterablePromptInput[],
  maxTokens: number | undefined,
  defaultMaxTokens: number,
): number {
  const ctx = model.contextLength;
  const longest = Math.max(...inputs.map((p) => model.countPrompt(p)));
  const each = maxTokens ?? Math.max(1, Math.min(defaultMaxTokens, ctx - longest));
  if (longest + each > ctx) throw contextLengthError(longest, each, ctx);
  return each;
}

/**
 * A single-consumer queue of choice chunks with an end or an error, with the flow control of a single generation:
 * until an iterator is requested, chunks are kept as they come (the caller may only want `result`); once a consumer
 * iterates, a producer that finds `limit` chunks unread waits for the consumer, so a client that stops reading
 * stops every choice's engine stream (the scheduler parks the sequences) instead of piling tokens up here.
 */
class Queue implements AsyncIterable<ChoiceChunk> {
  private buf: ChoiceChunk[] = [];
  private wake: (() => void) | undefined;
  private space: (() => void)[] = [];
  private iterating = false;
  private done = false;
  private error: unknown;

  constructor(
    private readonly limit: number,
    private readonly onLeave: () => void,
  ) {}

  /** Resolves when the producer may go on. */
  push(c: ChoiceChunk): Promise<void> | undefined {
    this.buf.push(c);
    this.wake?.();
    if (!this.iterating || this.done || this.buf.length <= this.limit) return undefined;
    return new Promise<void>((resolve) => this.space.push(resolve));
  }

  end(err?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = err;
    this.wake?.();
    this.release(Infinity);
  }

  private release(room: number): void {
    while (this.space.length > 0 && room-- > 0) this.space.shift()!();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ChoiceChunk> {
    this.iterating = true;
    let finished = false;
    try {
      for (;;) {
        const c = this.buf.shift();
        if (c) {
          this.release(this.limit - this.buf.length);
          yield c;
          continue;
        }
        if (this.done) {
          finished = true;
          if (this.error !== undefined) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      // Leaving early (break/return/throw) stops every choice, like leaving a single generation's loop.
      if (!finished) {
        this.onLeave();
        this.release(Infinity);
      }
    }
  }
}

/**
 * A per-request model whose one generation runs `n` choices of each of `inputs`. `inner` must offer
 * `preparePrompt` (asMeterable does). `seed` is the first choice's seed (undefined: the engine's default for all).
 */
export function choicesModel(
  inner: MeterableModel,
  inputs: MeterablePromptInput[],
  n: number,
  seed: number | undefined,
): MeterableModel {
  const prepare = inner.preparePrompt?.bind(inner);
  if (!prepare) throw new TypeError('choicesModel needs a model with preparePrompt');
  const choices = inputs.length * n;
  const model: MeterableModel = {
    name: inner.name,
    // The Meter's context check would compare the prompts' sum + every choice's tokens against one window; the real
    // per-sequence check is checkChoicesFit's, done before with the real numbers.
    contextLength: Number.MAX_SAFE_INTEGER,
    countPrompt: () => {
      throw new TypeError('choicesModel prepares its prompts once (preparePrompt)');
    },
    generate: () => {
      throw new TypeError('choicesModel generates from its prepared prompts (preparePrompt)');
    },
    preparePrompt: (): PreparedPrompt => {
      const prepared = inputs.map((p) => prepare(p));
      return {
        promptTokens: prepared.reduce((s, p) => s + p.promptTokens, 0),
        cacheKey: 'choices', // never looked up: these requests bypass the response cache
        generate: (o: MeterableGenerateOptions) => run(prepared, o),
      };
    },
  };

  function run(prepared: PreparedPrompt[], o: MeterableGenerateOptions): GenerationRun {
    const each = Math.floor((o.maxNewTokens ?? choices) / choices);
    const results: (MeterableResult | undefined)[] = new Array(choices);
    const runs: GenerationRun[] = [];
    const ac = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, ac.signal]) : ac.signal;
    let failed = false;
    let resolve!: (r: ChoicesResult) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<ChoicesResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    result.catch(() => undefined);
    let pending = choices;
    const queue = new Queue(choices, () => ac.abort());

    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      ac.abort(err);
      queue.end(err);
      reject(err);
    };
    const finish = (): void => {
      const rs = results as MeterableResult[];
      let promptTokens = 0;
      let cachedTokens = 0;
      let completionTokens = 0;
      rs.forEach((r, i) => {
        if (i % n === 0) {
          promptTokens += r.usage.promptTokens;
          cachedTokens += r.usage.cachedTokens;
        }
        completionTokens += r.usage.completionTokens;
      });
      const finishReason: FinishReason = rs.some((r) => r.finishReason === 'abort')
        ? 'abort'
        : rs.some((r) => r.finishReason === 'length')
          ? 'length'
          : 'stop';
      queue.end();
      resolve({
        text: rs.map((r) => r.text).join(''),
        finishReason,
        usage: { promptTokens, cachedTokens, completionTokens, totalTokens: promptTokens + completionTokens },
        choices: rs.map((r) => ({ text: r.text, finishReason: r.finishReason })),
      });
    };
    // One choice: started synchronously for choice 0 (an engine refusal is then the Meter's refusal).
    const start = (p: number, j: number, onFirst?: () => void): void => {
      const index = p * n + j;
      const g = prepared[p]!.generate({
        ...o,
        maxNewTokens: each,
        signal,
        ...(seed !== undefined ? { seed: seed + index } : {}),
      });
      runs.push(g);
      void (async () => {
        let first = onFirst;
        try {
          for await (const chunk of g) {
            if (first) {
              first();
              first = undefined;
            }
            await queue.push({ ...chunk, index });
          }
          results[index] = await g.result;
        } catch (err) {
          fail(err);
          return;
        }
        first?.();
        if (--pending === 0 && !failed) finish();
      })();
    };
    const later = (p: number) => (): void => {
      if (failed) return;
      for (let j = 1; j < n; j++) {
        try {
          start(p, j);
        } catch (err) {
          fail(err);
          return;
        }
      }
    };
    try {
      for (let p = 0; p < prepared.length; p++) start(p, 0, later(p));
    } catch (err) {
      // The engine refused a first choice: nothing of this request may run (the Meter records none of it).
      failed = true;
      ac.abort(err);
      throw err;
    }
    return { result, [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator]() };
  }

  return model;
}
