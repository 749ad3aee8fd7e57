/**
 * Meter: admission control before any compute, exact pricing from engine-reported usage, a response cache, and
 * durable usage records through a Ledger.
 *
 * Admission order for `wrap(model).generate(input, { key, ... })` (every refusal is a typed error, raised before
 * the model's `generate()` is called):
 *   1. raw input bytes ≤ maxInputBytes (before tokenizing)                 → InputTooLongError('bytes')
 *   2. the ledger's spool has room                                         → SpoolFullError
 *   3. prompt tokens (model.preparePrompt, else countPrompt) ≤ maxInputTokens → InputTooLongError('tokens')
 *   4. prompt + maxNewTokens ≤ contextLength                               → ContextLengthError
 *   5. a price exists for the model                                        → PriceError
 *   6. budgets: spent + reserved + the request's maximum cost ≤ budget     → BudgetExceededError
 *   7. RPM, then TPM with prompt + maxNewTokens reserved                   → RateLimitError(retryAfterMs)
 * Steps 6–7 run synchronously after the only await (loading a key's period spend once), so concurrent requests
 * cannot overshoot a limit. When there is nothing to load (no ledger budgets, or already loaded) the whole admission
 * is synchronous and the model's generate() is called before `wrap(model).generate()` returns (the engine starts in
 * the request's tick). With a shared `limiter` (RedisLimiter, src/scale) steps 6–7 are one awaited call that
 * checks and reserves atomically in the store, across processes. At the end the reservations are replaced by the
 * real usage and cost.
 *
 * A refusal rejects `run.admitted`, `run.result` and the iterator with the same error. `result` resolves only
 * after the usage record is durable in the ledger's spool (accepted); its `record` is what will be billed.
 */
import { Buffer } from 'node:buffer';
import { BudgetTracker, BUDGET_PERIODS, type BudgetPeriod, type BudgetReservation } from './budget.js';
import {
  contextLengthError,
  InputTooLongError,
  LedgerError,
  TokmeterTypeError,
  SpoolFullError,
  UsageError,
} from './errors.js';
import type { Limiter } from '../scale/limiter.js';
import type { Ledger, ReportQuery, ReportRow } from './ledger.js';
import { parsePico } from './money.js';
import { PriceTable, type ModelPriceJson, type PriceTableJson } from './prices.js';
import { RateLimiter, type RateLimits, type TokenReservation } from './rate-limiter.js';
import { newRecordId } from './record.js';
import { ResponseCache, cacheKeyFor, type CachedResponse, type ResponseCacheOptions } from './response-cache.js';
import type {
  GenerateOptions,
  GenerationChunk,
  GenerationRun,
  GenerationResult,
  MeterableModel,
  PreparedPrompt,
  PromptInput,
  RecordFinishReason,
  TokenCounter,
  UsageRecord,
} from './types.js';

export interface KeyLimits extends RateLimits {
  /** Spending caps per calendar period (UTC), in decimal currency units, e.g. { day: '5.00', month: 100 }. */
  budget?: Partial<Record<BudgetPeriod, string | number>>;
}

export interface MeterLimits {
  /** Raw input bytes (UTF-8 of the prompt text or of all message roles + contents). Default 1 MiB. */
  maxInputBytes?: number;
  /** Prompt tokens per request. Default 4096. */
  maxInputTokens?: number;
  /** Used when a request gives no maxNewTokens. Default: the rest of the context window. */
  defaultMaxNewTokens?: number;
  /** Limits for every key. */
  perKey?: KeyLimits;
  /** Per-key overrides (fields replace those of perKey). */
  keys?: Record<string, KeyLimits>;
}

export interface MeterOptions {
  /** A PriceTable, its JSON, or a bare map of model → prices (versioned by content hash). */
  prices: PriceTable | PriceTableJson | Record<string, ModelPriceJson>;
  limits?: MeterLimits;
  ledger?: Ledger;
  /** Response cache options, or false to disable it. Default: enabled with defaults. */
  cache?: ResponseCacheOptions | false;
  /**
   * A limiter shared by many processes (RedisLimiter from src/scale): replaces the in-memory RPM/TPM and budgets
   * for wrap() and record(). Admission then awaits it (one round trip); it is atomic in the store.
   */
  limiter?: Limiter;
  /** Called with every accepted record (after it is durable). */
  onRecord?: (record: UsageRecord) => void;
  /** Non-fatal problems (e.g. a budget's spend could not be loaded and memory was used instead). */
  onWarning?: (err: Error) => void;
  /** Clock (tests). */
  now?: () => number;
}

export interface MeteredGenerateOptions extends GenerateOptions {
  /** API key or tenant the request is billed to. */
  key: string;
  /** Idempotency id of the usage record (default: a random UUID). */
  requestId?: string;
  /** Custom meter quantities billed with this request (e.g. { audio_ms: 1200 }). */
  custom?: Record<string, number>;
  /** Set false to bypass the response cache for this request. */
  cache?: boolean;
}

export interface MeteredResult extends GenerationResult {
  cacheHit: boolean;
  record: UsageRecord;
}

export interface Admission {
  promptTokens: number;
  maxNewTokens: number;
  reservedTokens: number;
  reservedCost: bigint;
  cacheHit: boolean;
}

export interface MeteredRun extends AsyncIterable<GenerationChunk> {
  /** Resolves when admitted; rejects with the refusal. */
  readonly admitted: Promise<Admission>;
  readonly result: Promise<MeteredResult>;
}

/** @internal What admission decided: the reservations to settle, and how to answer (cache hit or engine). */
export interface Admitted {
  table: PriceTable;
  admission: Admission;
  tokens: Pick<TokenReservation, 'settle'>;
  budget: Pick<BudgetReservation, 'settle'>;
  cacheKey: string | undefined;
  hit: CachedResponse | undefined;
  prepared: PreparedPrompt | undefined;
}

/** Steps 1–5 passed: what the reservation steps need. */
interface Checked {
  table: PriceTable;
  promptTokens: number;
  maxNewTokens: number;
  maxCost: bigint;
  cacheKey: string | undefined;
  prepared: PreparedPrompt | undefined;
}

const DEFAULT_MAX_INPUT_BYTES = 1024 * 1024;
const DEFAULT_MAX_INPUT_TOKENS = 4096;

function posInt(v: unknown, field: string, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new TokmeterTypeError(
      `expected a ${allowZero ? 'non-negative' : 'positive'} integer for ${field}, got ${String(v)}`,
    );
  }
  return v;
}

export function inputBytes(input: PromptInput): number {
  if (typeof input === 'string') return Buffer.byteLength(input, 'utf8');
  if (!input || !Array.isArray(input.messages))
    throw new TokmeterTypeError('input: expected a string or { messages: [...] }');
  let n = 0;
  for (const [i, m] of input.messages.entries()) {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new TokmeterTypeError(`input.messages[${i}]: expected { role: string, content: string }`);
    }
    n += Buffer.byteLength(m.role, 'utf8') + Buffer.byteLength(m.content, 'utf8');
  }
  return n;
}

function canonicalInput(input: PromptInput): string {
  return typeof input === 'string'
    ? `t:${input}`
    : `m:${JSON.stringify([
        input.messages.map((m) => [m.role, m.content, m.name ?? null]),
        input.addGenerationPrompt ?? true,
        input.continueFinalMessage ?? false,
      ])}`;
}

/** Tags prepared prompts' bytes in the cache key, apart from the string forms ('t:', 'm:', 'r:', 'p:'). */
const PREPARED_BYTES_TAG = Buffer.from('b:', 'latin1');

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function toTable(p: MeterOptions['prices']): PriceTable {
  if (p instanceof PriceTable) return p;
  if (p && typeof p === 'object' && 'models' in p && typeof (p as PriceTableJson).models === 'object') {
    return PriceTable.fromJSON(p as PriceTableJson);
  }
  return PriceTable.fromJSON({ models: p as Record<string, ModelPriceJson> });
}

/**
 * Single-consumer async queue with end/error, used to decouple the engine's stream from the caller's pace.
 * A hand-written iterator rather than an async generator: a chunk pushed while the consumer waits resolves its
 * pending `next()` directly (one promise), without a generator's extra resume and await per chunk — every token,
 * and the first one in particular, reaches the HTTP handler a few microtask hops sooner.
 */
class ChunkQueue implements AsyncIterable<GenerationChunk> {
  private buf: GenerationChunk[] = [];
  private done = false;
  private error: unknown;
  private waiter: { resolve: (r: IteratorResult<GenerationChunk>) => void; reject: (e: unknown) => void } | undefined;
  private iterated = false;
  private finished = false; // the consumer got the end (or the error) or stopped early

  push(c: GenerationChunk): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: c, done: false });
    } else this.buf.push(c);
  }

  end(err?: unknown): void {
    this.done = true;
    this.error = err;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      this.settle(w);
    }
  }

  private settle(w: NonNullable<ChunkQueue['waiter']>): void {
    this.finished = true;
    if (this.error !== undefined) w.reject(this.error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationChunk> {
    const first = !this.iterated;
    this.iterated = true;
    const stop = (): Promise<IteratorResult<GenerationChunk>> => {
      this.finished = true;
      this.buf = [];
      return Promise.resolve({ value: undefined, done: true });
    };
    if (!first) {
      let thrown = false;
      return {
        next: () => {
          if (thrown) return Promise.resolve({ value: undefined, done: true });
          thrown = true;
          return Promise.reject(new TokmeterTypeError('a metered run can be iterated only once'));
        },
      };
    }
    return {
      next: () =>
        new Promise<IteratorResult<GenerationChunk>>((resolve, reject) => {
          if (this.finished) return resolve({ value: undefined, done: true });
          if (this.buf.length > 0) return resolve({ value: this.buf.shift()!, done: false });
          if (this.done) return this.settle({ resolve, reject });
          this.waiter = { resolve, reject };
        }),
      return: stop,
    };
  }
}

export class Meter {
  readonly ledger: Ledger | undefined;
  readonly cache: ResponseCache | undefined;
  readonly limiter: RateLimiter;
  readonly budgets: BudgetTracker;
  private table: PriceTable;
  private readonly limits: Required<Pick<MeterLimits, 'maxInputBytes' | 'maxInputTokens'>> & MeterLimits;
  private readonly budgetCache = new Map<string, ReadonlyMap<BudgetPeriod, bigint> | undefined>();
  private readonly onRecord: ((r: UsageRecord) => void) | undefined;
  private readonly shared: Limiter | undefined;
  private readonly onWarning: ((e: Error) => void) | undefined;
  /** @internal */
  readonly now: () => number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;
  private admissions = 0;

  constructor(options: MeterOptions) {
    if (!options || typeof options !== 'object') throw new TokmeterTypeError('Meter: expected an options object');
    this.table = toTable(options.prices);
    const l = options.limits ?? {};
    this.limits = {
      ...l,
      maxInputBytes:
        l.maxInputBytes === undefined ? DEFAULT_MAX_INPUT_BYTES : posInt(l.maxInputBytes, 'limits.maxInputBytes'),
      maxInputTokens:
        l.maxInputTokens === undefined ? DEFAULT_MAX_INPUT_TOKENS : posInt(l.maxInputTokens, 'limits.maxInputTokens'),
    };
    if (l.defaultMaxNewTokens !== undefined) posInt(l.defaultMaxNewTokens, 'limits.defaultMaxNewTokens');
    this.checkKeyLimits(l.perKey, 'limits.perKey');
    for (const [k, v] of Object.entries(l.keys ?? {})) this.checkKeyLimits(v, `limits.keys.${k}`);
    this.ledger = options.ledger;
    this.cache = options.cache === false ? undefined : new ResponseCache(options.cache ?? {}, options.now);
    this.onRecord = options.onRecord;
    this.shared = options.limiter;
    this.onWarning = options.onWarning;
    this.now = options.now ?? Date.now;
    this.limiter = new RateLimiter((k) => this.keyLimits(k), 60_000, this.now);
    const ledger = this.ledger;
    this.budgets = new BudgetTracker(
      (k) => this.budgetsFor(k),
      ledger
        ? async (key, from, to) => {
            try {
              return await ledger.spend(key, from, to);
            } catch (err) {
              // The database is unreachable: budgets use what this process knows (records still in the spool).
              this.onWarning?.(
                new UsageError('ERR_BUDGET_LOAD', `could not load spend of '${key}': ${(err as Error).message}`),
              );
              return ledger.pendingSpend(key, from, to);
            }
          }
        : undefined,
      this.now,
    );
  }

  /** The price table new requests are billed with. */
  get prices(): PriceTable {
    return this.table;
  }

  /** Switch to a new price version; requests already admitted keep the version they were admitted with. */
  setPrices(prices: MeterOptions['prices']): void {
    this.table = toTable(prices);
  }

  wrap(model: MeterableModel): MeteredModel {
    return new MeteredModel(this, model);
  }

  /** Metered counting API over a counting-only object (e.g. a Tokenizer): byte limit and RPM per key, no record. */
  wrapCounter(counter: TokenCounter): MeteredCounter {
    return new MeteredCounter(this, counter);
  }

  /**
   * Record usage that did not go through `wrap()` — custom meters (audio seconds, image steps) or tokens counted
   * elsewhere — priced by the same table and charged to the key's budgets. Resolves once the record is accepted.
   */
  async record(entry: {
    key: string;
    model: string;
    requestId?: string;
    promptTokens?: number;
    cachedTokens?: number;
    completionTokens?: number;
    custom?: Record<string, number>;
    latencyMs?: number;
  }): Promise<UsageRecord> {
    if (typeof entry?.key !== 'string' || entry.key === '')
      throw new TokmeterTypeError('record: key must be a non-empty string');
    if (this.closed) throw new LedgerError('ERR_LEDGER_CLOSED', 'the Meter is closed');
    const table = this.table;
    const prompt = entry.promptTokens ?? 0;
    const completion = entry.completionTokens ?? 0;
    const custom = { ...(entry.custom ?? {}) };
    const cost = table.cost(entry.model, {
      promptTokens: prompt,
      cachedTokens: entry.cachedTokens ?? 0,
      completionTokens: completion,
      custom,
    });
    const record: UsageRecord = {
      id: entry.requestId ?? newRecordId(),
      timestamp: this.now(),
      key: entry.key,
      model: entry.model,
      promptTokens: prompt,
      cachedTokens: entry.cachedTokens ?? 0,
      completionTokens: completion,
      totalTokens: prompt + completion,
      finishReason: 'custom',
      latencyMs: entry.latencyMs ?? 0,
      cacheHit: false,
      custom,
      cost,
      currency: table.currency,
      priceVersion: table.version,
    };
    if (!this.shared) await this.budgets.prepare(entry.key);
    await this.accept(record, false);
    // usage already happened: charged, never refused
    if (this.shared) await this.shared.charge(entry.key, cost, this.budgetsFor(entry.key));
    else this.budgets.charge(entry.key, cost);
    return record;
  }

  /** Totals from the ledger (flushes first so every accepted record counts). */
  async report(query: ReportQuery): Promise<ReportRow[]> {
    if (!this.ledger) throw new TokmeterTypeError('report: this Meter has no ledger');
    return this.ledger.report(query);
  }

  async flush(options?: { timeoutMs?: number }): Promise<void> {
    await this.ledger?.flush(options);
  }

  /**
   * Stop admitting (new requests get LedgerError ERR_LEDGER_CLOSED), wait for admitted requests to finish and
   * their records to be accepted, then close the ledger (which flushes, bounded by timeoutMs).
   */
  async close(options?: { timeoutMs?: number }): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.ledger?.close(options);
  }

  /** @internal */
  track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    const done = () => this.inFlight.delete(p);
    p.then(done, done);
  }

  // ---- internals used by MeteredModel / MeteredCounter ----

  /** @internal */
  keyLimits(key: string): KeyLimits {
    const o = this.limits.keys?.[key];
    return o ? { ...this.limits.perKey, ...o } : (this.limits.perKey ?? {});
  }

  /** @internal */
  get maxInputBytes(): number {
    return this.limits.maxInputBytes;
  }

  /** @internal */
  checkBytes(input: PromptInput): void {
    const bytes = inputBytes(input);
    if (bytes > this.limits.maxInputBytes) throw new InputTooLongError('bytes', bytes, this.limits.maxInputBytes);
  }

  /**
   * @internal Admission (see the file comment). Synchronous (a value, or a throw) unless a key's period spend must
   * first be loaded from the ledger or the limiter is shared: then a promise. Callers start the engine in the same
   * tick when they get a value (no microtask hops between the request and the engine).
   */
  admit(model: MeterableModel, input: PromptInput, o: MeteredGenerateOptions): Admitted | Promise<Admitted> {
    if (this.closed) throw new LedgerError('ERR_LEDGER_CLOSED', 'the Meter is closed');
    if (++this.admissions % 10_000 === 0) {
      this.limiter.sweep();
      this.budgets.sweep();
    }
    this.checkBytes(input);
    if (this.ledger && !this.ledger.hasRoom()) {
      const s = this.ledger.stats();
      throw new SpoolFullError(s.spoolBytes, s.spoolMaxBytes, s.lastError);
    }
    // One render + encode per request when the model offers it (the chat template and the tokenizer run once,
    // not once for counting, once for the cache key and once more in generate()).
    const prepared = model.preparePrompt?.(input);
    const promptTokens = prepared ? prepared.promptTokens : model.countPrompt(input);
    posInt(promptTokens, `${model.name}.${prepared ? 'preparePrompt().promptTokens' : 'countPrompt() result'}`, true);
    if (promptTokens > this.limits.maxInputTokens)
      throw new InputTooLongError('tokens', promptTokens, this.limits.maxInputTokens);
    const ctx = model.contextLength;
    // Not given: the configured default, capped by the room left in the context window (a request never fails on
    // a default it did not choose); given: exactly that, or ContextLengthError.
    const room = ctx - promptTokens;
    const maxNewTokens = o.maxNewTokens ?? Math.max(1, Math.min(this.limits.defaultMaxNewTokens ?? room, room));
    if (promptTokens + maxNewTokens > ctx) throw contextLengthError(promptTokens, maxNewTokens, ctx);
    const table = this.table;
    const maxCost = table.maxCost(model.name, promptTokens, maxNewTokens, o.custom); // PriceError if unpriced
    let cacheKey: string | undefined;
    if (this.cache && o.cache !== false) {
      const rendered = prepared
        ? typeof prepared.cacheKey === 'string'
          ? `p:${prepared.cacheKey}`
          : concatBytes(PREPARED_BYTES_TAG, prepared.cacheKey)
        : model.renderPrompt
          ? `r:${model.renderPrompt(input)}`
          : canonicalInput(input);
      cacheKey = cacheKeyFor(model.name, rendered, { ...o, maxNewTokens });
    }
    const checked: Checked = { table, promptTokens, maxNewTokens, maxCost, cacheKey, prepared };
    if (this.shared) return this.reserveShared(model, o, checked);
    const wait = this.budgets.pending(o.key);
    return wait ? wait.then(() => this.reserve(model, o, checked)) : this.reserve(model, o, checked);
  }

  /** Steps 6–7 in this process: check + reserve, synchronous, so concurrent requests cannot overshoot a limit. */
  private reserve(model: MeterableModel, o: MeteredGenerateOptions, c: Checked): Admitted {
    const hit = this.lookup(o, c);
    const { reservedCost, reservedTokens } = this.reservation(model, o, c, hit);
    const budget = this.budgets.reserve(o.key, reservedCost);
    let tokens: Pick<TokenReservation, 'settle'>;
    try {
      tokens = this.limiter.admit(o.key, reservedTokens);
    } catch (err) {
      budget.settle(0n);
      throw err;
    }
    return this.admitted(c, hit, reservedTokens, reservedCost, tokens, budget);
  }

  /** Steps 6–7 in a shared store: check + reserve are atomic there (one await), in the same order. */
  private async reserveShared(model: MeterableModel, o: MeteredGenerateOptions, c: Checked): Promise<Admitted> {
    const hit = this.lookup(o, c);
    const { reservedCost, reservedTokens } = this.reservation(model, o, c, hit);
    const { tokens, budget } = await this.shared!.admit({
      key: o.key,
      tokens: reservedTokens,
      cost: reservedCost,
      rates: this.keyLimits(o.key),
      budgets: this.budgetsFor(o.key),
    });
    return this.admitted(c, hit, reservedTokens, reservedCost, tokens, budget);
  }

  private lookup(o: MeteredGenerateOptions, c: Checked): CachedResponse | undefined {
    if (o.signal?.aborted) throw o.signal.reason ?? new DOMException('aborted', 'AbortError');
    return c.cacheKey !== undefined ? this.cache!.get(c.cacheKey) : undefined;
  }

  private reservation(
    model: MeterableModel,
    o: MeteredGenerateOptions,
    c: Checked,
    hit: CachedResponse | undefined,
  ): { reservedCost: bigint; reservedTokens: number } {
    return {
      reservedCost: hit
        ? c.table.cost(model.name, { ...hit.usage, cacheHit: true, ...(o.custom ? { custom: o.custom } : {}) })
        : c.maxCost,
      reservedTokens: hit ? 0 : c.promptTokens + c.maxNewTokens, // a hit uses no compute: RPM only
    };
  }

  private admitted(
    c: Checked,
    hit: CachedResponse | undefined,
    reservedTokens: number,
    reservedCost: bigint,
    tokens: Pick<TokenReservation, 'settle'>,
    budget: Pick<BudgetReservation, 'settle'>,
  ): Admitted {
    return {
      table: c.table,
      admission: {
        promptTokens: c.promptTokens,
        maxNewTokens: c.maxNewTokens,
        reservedTokens,
        reservedCost,
        cacheHit: hit !== undefined,
      },
      tokens,
      budget,
      cacheKey: c.cacheKey,
      hit,
      prepared: c.prepared,
    };
  }

  /** @internal */
  warn(err: Error): void {
    this.onWarning?.(err);
  }

  /** @internal Make a record durable (spool) and announce it. */
  async accept(record: UsageRecord, force: boolean): Promise<void> {
    if (this.ledger) await this.ledger.append(record, { force });
    this.onRecord?.(record);
  }

  private budgetsFor(key: string): ReadonlyMap<BudgetPeriod, bigint> | undefined {
    if (this.budgetCache.has(key)) return this.budgetCache.get(key);
    const b = this.keyLimits(key).budget;
    let m: Map<BudgetPeriod, bigint> | undefined;
    if (b) {
      m = new Map();
      for (const p of BUDGET_PERIODS) if (b[p] !== undefined) m.set(p, parsePico(b[p], `budget.${p} of key '${key}'`));
    }
    if (this.budgetCache.size > 100_000) this.budgetCache.clear();
    this.budgetCache.set(key, m);
    return m;
  }

  private checkKeyLimits(k: KeyLimits | undefined, where: string): void {
    if (!k) return;
    for (const f of Object.keys(k)) {
      if (!['requestsPerMinute', 'tokensPerMinute', 'budget'].includes(f))
        throw new TokmeterTypeError(`${where}: unknown field '${f}'`);
    }
    if (k.requestsPerMinute !== undefined) posInt(k.requestsPerMinute, `${where}.requestsPerMinute`, true);
    if (k.tokensPerMinute !== undefined) posInt(k.tokensPerMinute, `${where}.tokensPerMinute`, true);
    if (k.budget) {
      for (const [p, v] of Object.entries(k.budget)) {
        if (!BUDGET_PERIODS.includes(p as BudgetPeriod))
          throw new TokmeterTypeError(`${where}.budget: unknown period '${p}' (hour, day, month)`);
        parsePico(v, `${where}.budget.${p}`);
      }
    }
  }
}

function validateGenerateOptions(o: MeteredGenerateOptions): void {
  if (!o || typeof o !== 'object') throw new TokmeterTypeError('generate: options with a key are required');
  if (typeof o.key !== 'string' || o.key === '')
    throw new TokmeterTypeError(`generate: expected a non-empty string for key, got ${JSON.stringify(o.key)}`);
  if (o.maxNewTokens !== undefined) posInt(o.maxNewTokens, 'maxNewTokens');
  if (
    o.temperature !== undefined &&
    !(typeof o.temperature === 'number' && o.temperature >= 0 && Number.isFinite(o.temperature))
  ) {
    throw new TokmeterTypeError(`expected a non-negative number for temperature, got ${String(o.temperature)}`);
  }
  if (o.topP !== undefined && !(typeof o.topP === 'number' && o.topP > 0 && o.topP <= 1)) {
    throw new TokmeterTypeError(`expected a number in (0, 1] for topP, got ${String(o.topP)}`);
  }
  if (o.seed !== undefined) posInt(o.seed, 'seed', true);
  if (
    o.requestId !== undefined &&
    (typeof o.requestId !== 'string' || o.requestId === '' || o.requestId.length > 200)
  ) {
    throw new TokmeterTypeError('expected a non-empty string of at most 200 characters for requestId');
  }
  if (o.stop !== undefined && !(Array.isArray(o.stop) && o.stop.every((s) => typeof s === 'string'))) {
    throw new TokmeterTypeError('expected an array of strings for stop');
  }
}

/** `meter.wrap(model)`: the model's generate(), plus key, limits, cost and ledger. */
export class MeteredModel {
  constructor(
    private readonly meter: Meter,
    readonly model: MeterableModel,
  ) {}

  get name(): string {
    return this.model.name;
  }

  get contextLength(): number {
    return this.model.contextLength;
  }

  countPrompt(input: PromptInput): number {
    this.meter.checkBytes(input);
    return this.model.countPrompt(input);
  }

  /**
   * Argument errors (missing key, bad option types) throw synchronously; refusals reject `admitted`, `result` and
   * the iterator. The engine's stream is drained eagerly into a queue, so `result` settles even if nobody iterates.
   *
   * The model's generate() is called before `admitted` resolves: an engine that refuses the job synchronously
   * (its queue is full, the KV budget cannot hold it, ...) ran nothing, so that is a refusal like the Meter's own:
   * `admitted` rejects, the reservations are released and no record is written (nothing is billed).
   */
  generate(input: PromptInput, options: MeteredGenerateOptions): MeteredRun {
    validateGenerateOptions(options);
    const meter = this.meter;
    const model = this.model;
    const started = performance.now();
    const timestamp = meter.now();
    const queue = new ChunkQueue();
    const { key, requestId, custom, cache: _c, ...genOptions } = options;
    const start = (adm: Admitted): Admitted & { run: GenerationRun | undefined } => {
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
    let admittedP: Promise<ReturnType<typeof start>>;
    try {
      const adm = meter.admit(model, input, options);
      admittedP = adm instanceof Promise ? adm.then(start) : Promise.resolve(start(adm));
    } catch (err) {
      admittedP = Promise.reject(err as Error);
    }
    const resultP = (async (): Promise<MeteredResult> => {
      let adm: Awaited<typeof admittedP>;
      try {
        adm = await admittedP;
      } catch (err) {
        queue.end(err);
        throw err;
      }
      const { table, admission, tokens, budget, cacheKey, hit } = adm;
      const finish = async (
        res: { text: string; finishReason: RecordFinishReason; usage: GenerationResult['usage'] },
        cacheHit: boolean,
      ): Promise<UsageRecord> => {
        let cost: bigint;
        try {
          cost = table.cost(model.name, { ...res.usage, cacheHit, ...(custom ? { custom } : {}) });
        } catch (err) {
          tokens.settle(res.usage.totalTokens);
          budget.settle(admission.reservedCost);
          throw err;
        }
        tokens.settle(cacheHit ? 0 : res.usage.totalTokens);
        budget.settle(cost);
        const record: UsageRecord = {
          id: requestId ?? newRecordId(),
          timestamp,
          key,
          model: model.name,
          promptTokens: res.usage.promptTokens,
          cachedTokens: res.usage.cachedTokens,
          completionTokens: res.usage.completionTokens,
          totalTokens: res.usage.promptTokens + res.usage.completionTokens,
          finishReason: res.finishReason,
          latencyMs: Math.round(performance.now() - started),
          cacheHit,
          custom: { ...(custom ?? {}) },
          cost,
          currency: table.currency,
          priceVersion: table.version,
        };
        await meter.accept(record, true); // admitted work is always recorded, even past the spool bound
        return record;
      };

      if (hit) {
        queue.push({ text: hit.text, tokens: hit.tokens });
        queue.end();
        const record = await finish({ text: hit.text, finishReason: hit.finishReason, usage: hit.usage }, true);
        return { text: hit.text, finishReason: hit.finishReason, usage: { ...hit.usage }, cacheHit: true, record };
      }

      const ids: Uint32Array[] = [];
      let streamedTokens = 0;
      let result: GenerationResult;
      const run = adm.run!; // started at admission whenever the cache had no answer
      try {
        for await (const chunk of run) {
          ids.push(chunk.tokens);
          streamedTokens += chunk.tokens.length;
          queue.push(chunk);
        }
        result = await run.result;
      } catch (err) {
        // The engine failed mid-way: bill what it processed (prompt + tokens streamed so far) and report the error.
        queue.end(err);
        const usage = {
          promptTokens: admission.promptTokens,
          completionTokens: streamedTokens,
          totalTokens: admission.promptTokens + streamedTokens,
          cachedTokens: 0,
        };
        await finish({ text: '', finishReason: 'error', usage }, false).catch((e: Error) => meter.warn(e));
        throw err;
      }
      queue.end();
      const u = result.usage;
      const usage = {
        promptTokens: u.promptTokens,
        completionTokens: u.completionTokens,
        totalTokens: u.promptTokens + u.completionTokens,
        cachedTokens: u.cachedTokens,
      };
      const record = await finish({ text: result.text, finishReason: result.finishReason, usage }, false);
      if (cacheKey !== undefined && result.finishReason !== 'abort') {
        let n = 0;
        for (const a of ids) n += a.length;
        const all = new Uint32Array(n);
        let off = 0;
        for (const a of ids) {
          all.set(a, off);
          off += a.length;
        }
        meter.cache!.set(cacheKey, { text: result.text, tokens: all, finishReason: result.finishReason, usage });
      }
      return { ...result, usage, cacheHit: false, record };
    })();
    const admitted = admittedP.then((a) => a.admission);
    admitted.catch(() => undefined); // the same error reaches result and the iterator
    resultP.catch(() => undefined);
    meter.track(resultP);
    return {
      admitted,
      result: resultP,
      [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator](),
    };
  }
}

/** Counting API over a Tokenizer: enforces the byte limit and the key's RPM; counting is not billed. */
export class MeteredCounter {
  constructor(
    private readonly meter: Meter,
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
