/** Usage record (de)serialization and validation shared by the spool and the ledgers. */
import { randomUUID } from 'node:crypto';
import { TokmeterTypeError } from './errors.js';
import type { RecordFinishReason, UsageRecord } from './types.js';

const FINISH: readonly RecordFinishReason[] = ['stop', 'length', 'abort', 'error', 'count', 'custom'];

export function newRecordId(): string {
  return randomUUID();
}

/** JSON form: identical fields, `cost` as a decimal string of pico-units. */
export interface UsageRecordJson extends Omit<UsageRecord, 'cost'> {
  cost: string;
}

export function recordToJson(r: UsageRecord): UsageRecordJson {
  return { ...r, cost: r.cost.toString() };
}

function int(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new TokmeterTypeError(`usage record: expected a non-negative integer for ${field}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(v: unknown, field: string, max = 512): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw new TokmeterTypeError(
      `usage record: expected a non-empty string (≤${max} chars) for ${field}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** Validate a record (from JSON or from code). Throws TokmeterTypeError naming the field. */
export function validateRecord(x: unknown): UsageRecord {
  if (typeof x !== 'object' || x === null) throw new TokmeterTypeError('usage record: expected an object');
  const o = x as Record<string, unknown>;
  const cost =
    typeof o.cost === 'bigint'
      ? o.cost
      : typeof o.cost === 'string' && /^-?\d+$/.test(o.cost)
        ? BigInt(o.cost)
        : undefined;
  if (cost === undefined || cost < 0n)
    throw new TokmeterTypeError(`usage record: expected a non-negative integer cost, got ${String(o.cost)}`);
  if (!FINISH.includes(o.finishReason as RecordFinishReason)) {
    throw new TokmeterTypeError(`usage record: unknown finishReason ${JSON.stringify(o.finishReason)}`);
  }
  const custom: Record<string, number> = {};
  if (o.custom !== undefined) {
    if (typeof o.custom !== 'object' || o.custom === null)
      throw new TokmeterTypeError('usage record: custom must be an object');
    for (const [k, v] of Object.entries(o.custom)) custom[k] = int(v, `custom.${k}`);
  }
  const r: UsageRecord = {
    id: str(o.id, 'id', 200),
    timestamp: int(o.timestamp, 'timestamp'),
    key: str(o.key, 'key'),
    model: str(o.model, 'model'),
    promptTokens: int(o.promptTokens, 'promptTokens'),
    cachedTokens: int(o.cachedTokens, 'cachedTokens'),
    completionTokens: int(o.completionTokens, 'completionTokens'),
    totalTokens: int(o.totalTokens, 'totalTokens'),
    finishReason: o.finishReason as RecordFinishReason,
    latencyMs: int(o.latencyMs, 'latencyMs'),
    cacheHit: o.cacheHit === true,
    custom,
    cost,
    currency: str(o.currency, 'currency', 8),
    priceVersion: str(o.priceVersion, 'priceVersion', 200),
  };
  if (r.cachedTokens > r.promptTokens) throw new TokmeterTypeError('usage record: cachedTokens exceeds promptTokens');
  if (r.totalTokens !== r.promptTokens + r.completionTokens) {
    throw new TokmeterTypeError('usage record: totalTokens must equal promptTokens + completionTokens');
  }
  return r;
}
