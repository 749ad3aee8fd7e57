/**
 * `meter.wrap(model)`: the model's generate() between admission (before) and settlement (after), with no queue of
 * its own in between. The metered run's iterator pulls from the engine run's iterator, one chunk per `next()`, so
 * the engine sees the consumer's pace: a consumer that stops reading holds its generation back in the engine (the
 * scheduler parks it) instead of letting unread tokens pile up here. Settlement follows the engine's `result`:
 * when the generation ends, when the consumer leaves the iterator early (`return()` stops the generation, which
 * then settles with what was processed), and when the engine fails (billed with the failure's own usage).
 *
 * A refusal rejects `run.admitted`, `run.result` and the iterator with the same error. `result` resolves only
 * after the usage record is durable in the ledger's spool (accepted); its `record` is what will be billed.
 */
import { TokmeterTypeError } from './errors.js';
import { validateGenerateOptions, type Admission, type Admitted, type MeteredGenerateOptions } from './admission.js';
import type { RateLimiter } from './rate-limiter.js';
import type { ResponseCache } from './response-cache.js';
import { billedUsage, failureUsage, joinIds, settle, type SettlementContext } from './settlement.js';
import type {
  MeterableChunk,
  MeterableResult,
  GenerationRun,
  MeterableModel,
  MeterablePromptInput,
  TokenCounter,
  Usage,
  UsageRecord,
} from './types.js';

export interface MeteredResult extends MeterableResult {
  cacheHit: boolean;
  record: UsageRecord;
}

export interface MeteredRun extends AsyncIterable<MeterableChunk> {
  /** Resolves when admitted; rejects with the refusal. */
  readonly admitted: Promise<Admission>;
  readonly result: Promise<MeteredResult>;
}

/** @internal What the wrapper needs from its Meter. */
export interface MeterCore {
  readonly cache: ResponseCache | undefined;
  readonly limiter: RateLimiter;
  readonly now: () => number;
  checkBytes(input: MeterablePromptInput): void;
  admit(model: MeterableModel, input: MeterablePromptInput, o: MeteredGenerateOptions): Admitted | Promise<Admitted>;
  accept(record: UsageRecord, force: boolean): Promise<void>;
  warn(err: Error): void;
  track(p: Promise<unknown>): void;
}

/** Admission's decision with the engine's run, started when the cache had no answer. */
type Started = Admitted & { run: GenerationRun | undefined };

const DONE: IteratorResult<MeterableChunk> = Object.freeze({ value: undefined, done: true });

/** The single chunk of a response-cache hit. */
function hitIterator(chunk: MeterableChunk): AsyncIterator<MeterableChunk> {
  let sent = false;
  return {
    next: () => {
      if (sent) return Promise.resolve(DONE);
      sent = true;
      return Promise.resolve({ value: chunk, done: false });
    },
    return: () => {
      sent = true;
      return Promise.resolve(DONE);
    },
  };
}

/** `meter.wrap(model)`: the model's generate(), plus key, limits, cost and ledger. */
export class MeteredModel {
  constructor(
    private readonly meter: MeterCore,
    readonly model: MeterableModel,
  ) {}

  get name(): string {
    return this.model.name;
  }

  get contextLength(): number {
    return this.model.contextLength;
  }

  countPrompt(input: MeterablePromptInput): number {
    this.meter.checkBytes(input);
    return this.model.countPrompt(input);
  }

  /**
   * Argument errors (missing key, bad option types) throw synchronously; refusals reject `admitted`, `result` and
   * the iterator. `result` settles when the engine's result does: also when nobody iterates, but not while a
   * consumer that asked for the iterator holds the generation back by not reading (abort it, or `return()`).
   *
   * The model's generate() is called before `admitted` resolves: an engine that refuses the job synchronously
   * (its queue is full, the KV budget cannot hold it, ...) ran nothing, so that is a refusal like the Meter's own:
   * `admitted` rejects, the reservations are released and no record is written (nothing is billed).
   */
  generate(input: MeterablePromptInput, options: MeteredGenerateOptions): MeteredRun {
    validateGenerateOptions(options);
    const meter = this.meter;
    const model = this.model;
    const started = performance.now();
    const timestamp = meter.now();
    const { key, requestId, custom, cache: _c, ...genOptions } = options;
    const start = (adm: Admitted): Started => {
      if (adm.hit) return { ...adm, run: undefined };
      const o = { ...genOptions, maxNewTokens: adm.admission.maxNewTokens };
      try {
        return { ...adm, run: adm.prepared ? adm.prepared.generate(o) : model.generate(input, o) };
      } catch (err) {
        adm.tokens.settle(0);
        adm.budget.settle(0n);
        throw err;
      }
    };
    // Admission is synchronous when nothing has to be loaded: the engine then starts before this call returns.
    let decided: Started | undefined;
    let admittedP: Promise<Started>;
    try {
      const adm = meter.admit(model, input, options);
      if (adm instanceof Promise) {
        admittedP = adm.then(start).then((s) => (decided = s));
      } else {
        decided = start(adm);
        admittedP = Promise.resolve(decided);
      }
    } catch (err) {
      admittedP = Promise.reject(err as Error);
    }

    // What the consumer took through the iterator: the ids (for the response cache when the result has none) and
    // their count (billed when an engine fails without reporting its usage).
    const taken: Uint32Array[] = [];
    let takenTokens = 0;
    let sawEnd = false;

    const resultP = (async (): Promise<MeteredResult> => {
      const adm = await admittedP;
      const { table, admission, tokens, budget, cacheKey, hit } = adm;
      const ctx: SettlementContext = {
        table,
        model: model.name,
        key,
        requestId,
        custom,
        timestamp,
        started,
        reservedCost: admission.reservedCost,
        tokens,
        budget,
      };
      const accept = (r: UsageRecord): Promise<void> => meter.accept(r, true); // admitted work is always recorded

      if (hit) {
        const usage = { ...hit.usage };
        const record = await settle(ctx, { finishReason: hit.finishReason, usage, cacheHit: true }, accept);
        return { text: hit.text, finishReason: hit.finishReason, usage, tokens: hit.tokens, cacheHit: true, record };
      }

      // What ran when the engine gives no usage of its own: the prompt and the tokens the consumer took.
      const estimate = (): Usage => ({
        promptTokens: admission.promptTokens,
        completionTokens: takenTokens,
        totalTokens: admission.promptTokens + takenTokens,
        cachedTokens: 0,
      });
      const failed = async (err: unknown, usage: Usage): Promise<never> => {
        await settle(ctx, { finishReason: 'error', usage, cacheHit: false }, accept).catch((e: Error) => meter.warn(e));
        throw err;
      };
      let result: MeterableResult;
      try {
        result = await adm.run!.result;
      } catch (err) {
        // The engine failed after it started: bill what it processed, by its own count when it gave one.
        return failed(err, failureUsage(err) ?? estimate());
      }
      const usage = billedUsage(result.usage);
      if (!usage) {
        const err = new TokmeterTypeError(`${model.name}: generate() reported no valid usage`);
        return failed(err, estimate());
      }
      const record = await settle(ctx, { finishReason: result.finishReason, usage, cacheHit: false }, accept);
      if (cacheKey !== undefined && result.finishReason !== 'abort') {
        const ids = result.tokens ?? (sawEnd ? joinIds(taken) : undefined);
        if (ids)
          meter.cache!.set(cacheKey, { text: result.text, tokens: ids, finishReason: result.finishReason, usage });
      }
      return { ...result, usage, cacheHit: false, record };
    })();
    const admitted = admittedP.then((a) => a.admission);
    admitted.catch(() => undefined); // the same error reaches result and the iterator
    resultP.catch(() => undefined);
    meter.track(resultP);

    let iterated = false;
    const iterator = (): AsyncIterator<MeterableChunk> => {
      if (iterated) {
        let thrown = false;
        return {
          next: () => {
            if (thrown) return Promise.resolve(DONE);
            thrown = true;
            return Promise.reject(new TokmeterTypeError('a metered run can be iterated only once'));
          },
        };
      }
      iterated = true;
      let keep = false;
      let source: AsyncIterator<MeterableChunk> | undefined;
      let finished = false;
      const open = (s: Started): AsyncIterator<MeterableChunk> => {
        if (s.hit) return hitIterator({ text: s.hit.text, tokens: s.hit.tokens });
        keep = s.cacheKey !== undefined;
        return s.run![Symbol.asyncIterator]();
      };
      // Ask the engine for its iterator now when admission is decided: from here on the engine's chunks are
      // acknowledged as the consumer takes them.
      if (decided) source = open(decided);
      const pull = (src: AsyncIterator<MeterableChunk>): Promise<IteratorResult<MeterableChunk>> =>
        src.next().then(
          (r) => {
            if (r.done) {
              finished = true;
              sawEnd = true;
              return DONE;
            }
            takenTokens += r.value.tokens.length;
            if (keep) taken.push(r.value.tokens);
            return r;
          },
          (err: unknown) => {
            finished = true;
            throw err;
          },
        );
      return {
        next: () => {
          if (finished) return Promise.resolve(DONE);
          if (source) return pull(source);
          return admittedP.then(
            (s) => {
              if (finished) return DONE;
              source ??= open(s);
              return pull(source);
            },
            (err: unknown) => {
              finished = true;
              throw err;
            },
          );
        },
        return: async () => {
          if (finished) return DONE;
          finished = true;
          // Leaving early stops the generation; `result` settles with what was processed and is billed.
          if (source) await source.return?.();
          else
            void admittedP.then(
              (s) => open(s).return?.(),
              () => undefined,
            );
          return DONE;
        },
      };
    };
    return { admitted, result: resultP, [Symbol.asyncIterator]: iterator };
  }
}

/** Counting API over a Tokenizer: enforces the byte limit and the key's RPM; counting is not billed. */
export class MeteredCounter {
  constructor(
    private readonly meter: MeterCore,
    readonly counter: TokenCounter,
  ) {}

  count(text: string, options: { key: string }): number {
    if (typeof text !== 'string') throw new TokmeterTypeError('count: expected a string');
    if (typeof options?.key !== 'string' || options.key === '')
      throw new TokmeterTypeError('count: expected a non-empty string for key');
    this.meter.checkBytes(text);
    this.meter.limiter.admit(options.key, 0);
    return this.counter.count(text);
  }
}
