/** SQL shared by the SQLite and Postgres ledgers (same columns, same semantics), generated from columns.ts. */
import { LedgerError } from './errors.js';
import type { ReportRow } from './ledger.js';
import type { UsageRecord } from './types.js';
import {
  RECORD_COLUMNS,
  RECORD_INDEXES,
  fromDatabase,
  postgresArrayType,
  postgresReadsAsText,
  postgresValue,
  sqlName,
  type RecordColumn,
} from './columns.js';

/** Column names in table order (both databases). */
export const COLUMNS: readonly string[] = RECORD_COLUMNS.map((c) => c.sql);

export function checkTableName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new LedgerError('ERR_LEDGER', `table name must match /^[a-z_][a-z0-9_]{0,62}$/, got ${JSON.stringify(name)}`);
  }
  return name;
}

/** `name TYPE [key] [NOT NULL]`; a PRIMARY KEY is NOT NULL already, and the tables earlier versions created say so by omission. */
function columnDdl(c: RecordColumn, type: string, key: 'UNIQUE' | 'PRIMARY KEY'): string {
  const parts = [c.sql, type];
  if (c.unique) parts.push(key);
  if (!c.nullable && !(c.unique && key === 'PRIMARY KEY')) parts.push('NOT NULL');
  return parts.join(' ');
}

function indexDdl(table: string): string[] {
  return RECORD_INDEXES.map(
    (i) => `CREATE INDEX IF NOT EXISTS ${table}_${i.suffix} ON ${table}(${i.columns.map(sqlName).join(', ')})`,
  );
}

/** SQLite: CREATE TABLE and its indexes, each `IF NOT EXISTS` (a rowid table; `id` UNIQUE). */
export function sqliteSchema(table: string): string[] {
  const t = checkTableName(table);
  const cols = RECORD_COLUMNS.map((c) => columnDdl(c, c.sqliteType, 'UNIQUE'));
  return [`CREATE TABLE IF NOT EXISTS ${t} (${cols.join(', ')})`, ...indexDdl(t)];
}

/** PostgreSQL: CREATE TABLE and its indexes, each `IF NOT EXISTS` (`id` is the primary key). */
export function postgresSchema(table: string): string[] {
  const t = checkTableName(table);
  const cols = RECORD_COLUMNS.map((c) => columnDdl(c, c.postgresType, 'PRIMARY KEY'));
  return [`CREATE TABLE IF NOT EXISTS ${t} (${cols.join(', ')})`, ...indexDdl(t)];
}

/** SQLite: one record, positional parameters in table order (`sqliteParams`); an id already stored is skipped. */
export function sqliteInsertSql(table: string): string {
  const t = checkTableName(table);
  return `INSERT OR IGNORE INTO ${t} (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`;
}

/** The idempotency key's column. */
const KEY = RECORD_COLUMNS.find((c) => c.unique)!.sql;

/** PostgreSQL: a batch as one array parameter per column (`postgresBatchParams`); ids already stored are skipped. */
export function postgresInsertSql(table: string): string {
  const t = checkTableName(table);
  const arrays = RECORD_COLUMNS.map((c, i) => `$${i + 1}::${postgresArrayType(c)}[]`);
  return `INSERT INTO ${t} (${COLUMNS.join(', ')}) SELECT * FROM unnest(${arrays.join(', ')}) ON CONFLICT (${KEY}) DO NOTHING`;
}

/** The parameters of `postgresInsertSql`: one array per column, in table order. */
export function postgresBatchParams(records: readonly UsageRecord[]): unknown[][] {
  return RECORD_COLUMNS.map((c) => records.map((r) => postgresValue(c, r[c.field])));
}

/** PostgreSQL select list of every column, 64-bit and JSON columns as text (read exactly by `rowToRecord`). */
export const POSTGRES_SELECT = RECORD_COLUMNS.map((c) =>
  postgresReadsAsText(c) ? `${c.sql}::text AS ${c.sql}` : c.sql,
).join(', ');

/** A row as better-sqlite3 (safeIntegers) or pg (POSTGRES_SELECT) returns it, keyed by SQL name. */
export type RecordRow = Record<string, unknown>;

export function rowToRecord(r: RecordRow): UsageRecord {
  const out: Record<string, unknown> = {};
  for (const c of RECORD_COLUMNS) out[c.field] = fromDatabase(c, r[c.sql]);
  return out as unknown as UsageRecord;
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
