/**
 * Meter: admission control before any compute (admission.ts), exact pricing from engine-reported usage and durable
 * usage records through a Ledger (settlement.ts), a response cache, and `wrap(model)` (metered-model.ts), which puts
 * a model's generate() between the two without a queue of its own.
 */
import {
  Admissions,
  type KeyLimits,
  type MeterLimits,
  type MeteredGenerateOptions,
  type Admitted,
} from './admission.js';
import type { BudgetTracker } from './budget.js';
import { LedgerError, TokmeterTypeError } from './errors.js';
import type { Limiter } from './limiter.js';
import type { Ledger, ReportQuery, ReportRow } from './ledger.js';
import { MeteredCounter, MeteredModel, type MeterCore } from './metered-model.js';
import { PriceTable, type ModelPriceJson, type PriceTableJson } from './prices.js';
import type { RateLimiter } from './rate-limiter.js';
import { newRecordId } from './record.js';
import { ResponseCache, type ResponseCacheOptions } from './response-cache.js';
import type { MeterableModel, MeterablePromptInput, TokenCounter, UsageRecord } from './types.js';

export { MeteredModel, MeteredCounter, type MeteredResult, type MeteredRun } from './metered-model.js';
export {
  inputBytes,
  type Admission,
  type Admitted,
  type KeyLimits,
  type MeterLimits,
  type MeteredGenerateOptions,
} from './admission.js';

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

function toTable(p: MeterOptions['prices']): PriceTable {
  if (p instanceof PriceTable) return p;
  if (p && typeof p === 'object' && 'models' in p && typeof (p as PriceTableJson).models === 'object') {
    return PriceTable.fromJSON(p as PriceTableJson);
  }
  return PriceTable.fromJSON({ models: p as Record<string, ModelPriceJson> });
}

export class Meter implements MeterCore {
  readonly ledger: Ledger | undefined;
  readonly cache: ResponseCache | undefined;
  readonly limiter: RateLimiter;
  readonly budgets: BudgetTracker;
  private table: PriceTable;
  private readonly admissions: Admissions;
  private readonly onRecord: ((r: UsageRecord) => void) | undefined;
  private readonly shared: Limiter | undefined;
  private readonly onWarning: ((e: Error) => void) | undefined;
  /** @internal */
  readonly now: () => number;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(options: MeterOptions) {
    if (!options || typeof options !== 'object') throw new TokmeterTypeError('Meter: expected an options object');
    this.table = toTable(options.prices);
    this.ledger = options.ledger;
    this.cache = options.cache === false ? undefined : new ResponseCache(options.cache ?? {}, options.now);
    this.onRecord = options.onRecord;
    this.shared = options.limiter;
    this.onWarning = options.onWarning;
    this.now = options.now ?? Date.now;
    this.admissions = new Admissions({
      limits: options.limits ?? {},
      ledger: this.ledger,
      cache: this.cache,
      shared: this.shared,
      prices: () => this.table,
      onWarning: this.onWarning,
      now: this.now,
    });
    this.limiter = this.admissions.limiter;
    this.budgets = this.admissions.budgets;
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
    if (this.shared) await this.shared.charge(entry.key, cost, this.admissions.budgetsFor(entry.key));
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
    return this.admissions.keyLimits(key);
  }

  /** @internal */
  get maxInputBytes(): number {
    return this.admissions.limits.maxInputBytes;
  }

  /** @internal */
  checkBytes(input: MeterablePromptInput): void {
    this.admissions.checkBytes(input);
  }

  /**
   * @internal Admission (admission.ts). Synchronous (a value, or a throw) unless a key's period spend must first be
   * loaded from the ledger or the limiter is shared: then a promise. Callers start the engine in the same tick when
   * they get a value (no microtask hops between the request and the engine).
   */
  admit(model: MeterableModel, input: MeterablePromptInput, o: MeteredGenerateOptions): Admitted | Promise<Admitted> {
    if (this.closed) throw new LedgerError('ERR_LEDGER_CLOSED', 'the Meter is closed');
    return this.admissions.admit(model, input, o);
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
}
