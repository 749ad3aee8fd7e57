/**
 * Admission: every check a metered request passes before any compute, in order (each refusal is a typed error,
 * raised before the model's `generate()` is called):
 *   1. raw input bytes ≤ maxInputBytes (before tokenizing)                 → InputTooLongError('bytes')
 *   2. the ledger's spool has room                                         → SpoolFullError
 *   3. prompt tokens (model.preparePrompt, else countPrompt) ≤ maxInputTokens → InputTooLongError('tokens')
 *   4. prompt + maxNewTokens ≤ contextLength                               → ContextLengthError
 *   5. a price exists for the model                                        → PriceError
 *   6. budgets: spent + reserved + the request's maximum cost ≤ budget     → BudgetExceededError
 *   7. RPM, then TPM with prompt + maxNewTokens reserved                   → RateLimitError(retryAfterMs)
 * Steps 6–7 run synchronously after the only await (loading a key's period spend once), so concurrent requests
 * cannot overshoot a limit. When there is nothing to load (no ledger budgets, or already loaded) the whole admission
 * is synchronous, so the engine can start in the request's tick. With a shared `limiter` (one store for many
 * processes) steps 6–7 are one awaited call that checks and reserves atomically in the store. What admission
 * reserves is replaced by the real usage and cost at settlement (settlement.ts).
 */
import { Buffer } from 'node:buffer';
import { BudgetTracker, BUDGET_PERIODS, type BudgetPeriod, type BudgetReservation } from './budget.js';
import { contextLengthError, InputTooLongError, TokmeterTypeError, SpoolFullError, UsageError } from './errors.js';
import { checkGenerateOptions } from './generate-options.js';
import type { Limiter } from './limiter.js';
import type { Ledger } from './ledger.js';
import { parsePico } from './money.js';
import type { PriceTable } from './prices.js';
import { RateLimiter, type RateLimits, type TokenReservation } from './rate-limiter.js';
import { ResponseCache, cacheKeyFor, type CachedResponse } from './response-cache.js';
import type { MeterableGenerateOptions, MeterableModel, PreparedPrompt, MeterablePromptInput } from './types.js';

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

export interface MeteredGenerateOptions extends MeterableGenerateOptions {
  /** API key or tenant the request is billed to. */
  key: string;
  /** Idempotency id of the usage record (default: a random UUID). */
  requestId?: string;
  /** Custom meter quantities billed with this request (e.g. { audio_ms: 1200 }). */
  custom?: Record<string, number>;
  /** Set false to bypass the response cache for this request. */
  cache?: boolean;
}

export interface Admission {
  promptTokens: number;
  maxNewTokens: number;
  reservedTokens: number;
  reservedCost: bigint;
  cacheHit: boolean;
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

export function posInt(v: unknown, field: string, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new TokmeterTypeError(
      `expected a ${allowZero ? 'non-negative' : 'positive'} integer for ${field}, got ${String(v)}`,
    );
  }
  return v;
}

export function inputBytes(input: MeterablePromptInput): number {
  if (typeof input === 'string') return Buffer.byteLength(input, 'utf8');
  if (!input || !Array.isArray(input.messages))
    throw new TokmeterTypeError('input: expected a string or { messages: [...] }');
  let n = 0;
  for (const [i, m] of input.messages.entries()) {
    if (!m || typeof m.role !== 'string' || (typeof m.content !== 'string' && m.content !== null)) {
      throw new TokmeterTypeError(`input.messages[${i}]: expected { role: string, content: string | null }`);
    }
    n += Buffer.byteLength(m.role, 'utf8') + Buffer.byteLength(m.content ?? '', 'utf8');
    // An assistant message's tool calls are part of the prompt the template renders.
    if (m.tool_calls !== undefined) n += Buffer.byteLength(JSON.stringify(m.tool_calls), 'utf8');
  }
  if (input.tools !== undefined) n += Buffer.byteLength(JSON.stringify(input.tools), 'utf8');
  return n;
}

function canonicalInput(input: MeterablePromptInput): string {
  return typeof input === 'string'
    ? `t:${input}`
    : `m:${JSON.stringify([
        input.messages.map((m) =>
          m.tool_calls === undefined && m.tool_call_id === undefined
            ? [m.role, m.content, m.name ?? null]
            : [m.role, m.content, m.name ?? null, m.tool_calls ?? null, m.tool_call_id ?? null],
        ),
        input.addGenerationPrompt ?? true,
        input.continueFinalMessage ?? false,
        ...(input.tools !== undefined ? [input.tools] : []),
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

/** What admission works with: the Meter's limits, stores and price table. */
export interface AdmissionOptions {
  limits: MeterLimits;
  ledger: Ledger | undefined;
  cache: ResponseCache | undefined;
  /** A limiter shared by many processes: replaces the in-memory RPM/TPM and budgets. */
  shared: Limiter | undefined;
  /** The price table new requests are admitted (and later billed) with. */
  prices: () => PriceTable;
  onWarning: ((err: Error) => void) | undefined;
  now: () => number;
}

/** The per-key limits, budgets and reservations of one Meter, and the admission steps over them. */
export class Admissions {
  readonly limiter: RateLimiter;
  readonly budgets: BudgetTracker;
  readonly limits: Required<Pick<MeterLimits, 'maxInputBytes' | 'maxInputTokens'>> & MeterLimits;
  private readonly ledger: Ledger | undefined;
  private readonly cache: ResponseCache | undefined;
  private readonly shared: Limiter | undefined;
  private readonly prices: () => PriceTable;
  private readonly budgetCache = new Map<string, ReadonlyMap<BudgetPeriod, bigint> | undefined>();
  private admissions = 0;

  constructor(o: AdmissionOptions) {
    const l = o.limits;
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
    this.ledger = o.ledger;
    this.cache = o.cache;
    this.shared = o.shared;
    this.prices = o.prices;
    this.limiter = new RateLimiter((k) => this.keyLimits(k), 60_000, o.now);
    const ledger = o.ledger;
    this.budgets = new BudgetTracker(
      (k) => this.budgetsFor(k),
      ledger
        ? async (key, from, to) => {
            try {
              return await ledger.spend(key, from, to);
            } catch (err) {
              // The database is unreachable: budgets use what this process knows (records still in the spool).
              o.onWarning?.(
                new UsageError('ERR_BUDGET_LOAD', `could not load spend of '${key}': ${(err as Error).message}`),
              );
              return ledger.pendingSpend(key, from, to);
            }
          }
        : undefined,
      o.now,
    );
  }

  /** The limits of `key`: perKey, with the key's own overrides. */
  keyLimits(key: string): KeyLimits {
    const o = this.limits.keys?.[key];
    return o ? { ...this.limits.perKey, ...o } : (this.limits.perKey ?? {});
  }

  /** Step 1: raw input bytes. */
  checkBytes(input: MeterablePromptInput): void {
    const bytes = inputBytes(input);
    if (bytes > this.limits.maxInputBytes) throw new InputTooLongError('bytes', bytes, this.limits.maxInputBytes);
  }

  /**
   * @internal Admission (see the file comment). Synchronous (a value, or a throw) unless a key's period spend must
   * first be loaded from the ledger or the limiter is shared: then a promise. Callers start the engine in the same
   * tick when they get a value (no microtask hops between the request and the engine).
   */
  admit(model: MeterableModel, input: MeterablePromptInput, o: MeteredGenerateOptions): Admitted | Promise<Admitted> {
    const table = this.prices();
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

  /** The key's budgets in pico-units, parsed once per key. */
  budgetsFor(key: string): ReadonlyMap<BudgetPeriod, bigint> | undefined {
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

export function validateGenerateOptions(o: MeteredGenerateOptions): void {
  if (!o || typeof o !== 'object') throw new TokmeterTypeError('generate: options with a key are required');
  if (typeof o.key !== 'string' || o.key === '')
    throw new TokmeterTypeError(`generate: expected a non-empty string for key, got ${JSON.stringify(o.key)}`);
  checkGenerateOptions(o as unknown as Record<string, unknown>);
  if (
    o.requestId !== undefined &&
    (typeof o.requestId !== 'string' || o.requestId === '' || o.requestId.length > 200)
  ) {
    throw new TokmeterTypeError('expected a non-empty string of at most 200 characters for requestId');
  }
}
