/** SQL shared by the SQLite and Postgres ledgers (same columns, same semantics). */
import { LedgerError } from './errors.js';
import type { ReportRow } from './ledger.js';
import type { UsageRecord } from './types.js';

export const COLUMNS = [
  'id',
  'ts',
  'api_key',
  'model',
  'prompt_tokens',
  'cached_tokens',
  'completion_tokens',
  'total_tokens',
  'finish_reason',
  'latency_ms',
  'cache_hit',
  'custom',
  'cost',
  'currency',
  'price_version',
] as const;

export function checkTableName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new LedgerError('ERR_LEDGER', `table name must match /^[a-z_][a-z0-9_]{0,62}$/, got ${JSON.stringify(name)}`);
  }
  return name;
}

export interface RecordRow {
  id: string;
  ts: number | bigint | string;
  api_key: string;
  model: string;
  prompt_tokens: number | bigint | string;
  cached_tokens: number | bigint | string;
  completion_tokens: number | bigint | string;
  total_tokens: number | bigint | string;
  finish_reason: string;
  latency_ms: number | bigint | string;
  cache_hit: number | bigint | boolean;
  custom: string;
  cost: number | bigint | string;
  currency: string;
  price_version: string;
}

export function rowToRecord(r: RecordRow): UsageRecord {
  return {
    id: r.id,
    timestamp: Number(r.ts),
    key: r.api_key,
    model: r.model,
    promptTokens: Number(r.prompt_tokens),
    cachedTokens: Number(r.cached_tokens),
    completionTokens: Number(r.completion_tokens),
    totalTokens: Number(r.total_tokens),
    finishReason: r.finish_reason as UsageRecord['finishReason'],
    latencyMs: Number(r.latency_ms),
    cacheHit: r.cache_hit === true || Number(r.cache_hit) === 1,
    custom: JSON.parse(r.custom) as Record<string, number>,
    cost: BigInt(r.cost),
    currency: r.currency,
    priceVersion: r.price_version,
  };
}

export interface AggRow {
  grp: string;
  requests: number | bigint | string;
  cache_hits: number | bigint | string | null;
  prompt_tokens: number | bigint | string | null;
  cached_tokens: number | bigint | string | null;
  completion_tokens: number | bigint | string | null;
  total_tokens: number | bigint | string | null;
  cost: number | bigint | string | null;
}

export function aggToRow(r: AggRow): ReportRow {
  return {
    group: String(r.grp),
    requests: Number(r.requests),
    cacheHits: Number(r.cache_hits ?? 0),
    promptTokens: Number(r.prompt_tokens ?? 0),
    cachedTokens: Number(r.cached_tokens ?? 0),
    completionTokens: Number(r.completion_tokens ?? 0),
    totalTokens: Number(r.total_tokens ?? 0),
    cost: BigInt(r.cost ?? 0),
  };
}

export const AGG_SELECT = `count(*) AS requests, sum(cache_hit_i) AS cache_hits, sum(prompt_tokens) AS prompt_tokens,
  sum(cached_tokens) AS cached_tokens, sum(completion_tokens) AS completion_tokens, sum(total_tokens) AS total_tokens,
  sum(cost) AS cost`;
