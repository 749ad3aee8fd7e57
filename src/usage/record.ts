/** Usage record (de)serialization and validation shared by the spool and the ledgers. */
import { nodeCrypto } from '../lazy.js';
import { TokmeterTypeError } from './errors.js';
import { RECORD_COLUMNS, validateColumn } from './columns.js';
import type { UsageRecord } from './types.js';

export function newRecordId(): string {
  return nodeCrypto().randomUUID();
}

/** JSON form: identical fields, `cost` as a decimal string of pico-units. */
export interface UsageRecordJson extends Omit<UsageRecord, 'cost'> {
  cost: string;
}

export function recordToJson(r: UsageRecord): UsageRecordJson {
  return { ...r, cost: r.cost.toString() };
}

/** Validate a record (from JSON or from code), column by column (columns.ts). Throws TokmeterTypeError naming the field. */
export function validateRecord(x: unknown): UsageRecord {
  if (typeof x !== 'object' || x === null) throw new TokmeterTypeError('usage record: expected an object');
  const o = x as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (let i = 0; i < RECORD_COLUMNS.length; i++) {
    const c = RECORD_COLUMNS[i]!;
    out[c.field] = validateColumn(c, o[c.field]);
  }
  const r = out as unknown as UsageRecord;
  if (r.cachedTokens > r.promptTokens) throw new TokmeterTypeError('usage record: cachedTokens exceeds promptTokens');
  if (r.totalTokens !== r.promptTokens + r.completionTokens) {
    throw new TokmeterTypeError('usage record: totalTokens must equal promptTokens + completionTokens');
  }
  return r;
}
