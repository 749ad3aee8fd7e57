/**
 * Settlement: after a metered generation ends, its reservations are replaced by the real usage and cost, and its
 * usage record is made durable. The usage billed is the engine's own `Usage`, unchanged: from `result` when the
 * generation ended (stop, length, abort), from the failure's `usage` when the engine failed after it started.
 */
import type { BudgetReservation } from './budget.js';
import type { PriceTable } from './prices.js';
import type { TokenReservation } from './rate-limiter.js';
import { newRecordId } from './record.js';
import type { GenerationFailure, RecordFinishReason, Usage, UsageRecord } from './types.js';

/** What a settlement needs to know about the request, fixed when it was admitted. */
export interface SettlementContext {
  table: PriceTable;
  model: string;
  key: string;
  requestId: string | undefined;
  custom: Record<string, number> | undefined;
  /** Admission time (ms since the epoch) and start of the latency measure (performance.now()). */
  timestamp: number;
  started: number;
  reservedCost: bigint;
  tokens: Pick<TokenReservation, 'settle'>;
  budget: Pick<BudgetReservation, 'settle'>;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * An engine's usage as it is billed: its four counts, unchanged. Undefined when `u` is not a usage: counts that are
 * not non-negative integers, or a totalTokens other than promptTokens + completionTokens (what every ledger checks).
 */
export function billedUsage(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const { promptTokens, completionTokens, totalTokens, cachedTokens } = u as Partial<Usage>;
  if (!isCount(promptTokens) || !isCount(completionTokens) || !isCount(totalTokens) || !isCount(cachedTokens)) {
    return undefined;
  }
  if (totalTokens !== promptTokens + completionTokens) return undefined;
  return { promptTokens, completionTokens, totalTokens, cachedTokens };
}

/** The usage an engine attached to its failure (`GenerationFailure`), or undefined when it gave none. */
export function failureUsage(err: unknown): Usage | undefined {
  return billedUsage((err as Partial<GenerationFailure> | null | undefined)?.usage);
}

/**
 * Replaces the reservations by the real usage and cost and makes the record durable (past the spool bound:
 * admitted work is always recorded). A price error releases the token reservation to what ran and keeps the
 * reserved cost charged, then throws.
 */
export async function settle(
  c: SettlementContext,
  end: { finishReason: RecordFinishReason; usage: Usage; cacheHit: boolean },
  accept: (record: UsageRecord) => Promise<void>,
): Promise<UsageRecord> {
  const { usage, cacheHit } = end;
  let cost: bigint;
  try {
    cost = c.table.cost(c.model, { ...usage, cacheHit, ...(c.custom ? { custom: c.custom } : {}) });
  } catch (err) {
    c.tokens.settle(usage.totalTokens);
    c.budget.settle(c.reservedCost);
    throw err;
  }
  c.tokens.settle(cacheHit ? 0 : usage.totalTokens);
  c.budget.settle(cost);
  const record: UsageRecord = {
    id: c.requestId ?? newRecordId(),
    timestamp: c.timestamp,
    key: c.key,
    model: c.model,
    promptTokens: usage.promptTokens,
    cachedTokens: usage.cachedTokens,
    completionTokens: usage.completionTokens,
    totalTokens: usage.totalTokens,
    finishReason: end.finishReason,
    latencyMs: Math.round(performance.now() - c.started),
    cacheHit,
    custom: { ...(c.custom ?? {}) },
    cost,
    currency: c.table.currency,
    priceVersion: c.table.version,
  };
  await accept(record);
  return record;
}

/** Joins the chunks' ids into one array (what the response cache stores when the result carries none). */
export function joinIds(parts: readonly Uint32Array[]): Uint32Array {
  let n = 0;
  for (const a of parts) n += a.length;
  const all = new Uint32Array(n);
  let off = 0;
  for (const a of parts) {
    all.set(a, off);
    off += a.length;
  }
  return all;
}
