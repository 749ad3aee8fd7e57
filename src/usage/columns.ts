/**
 * The usage-record schema, written once. Each column names its field in `UsageRecord`, its SQL name, its SQLite and
 * PostgreSQL types, its CSV header and its kind (how it is validated and converted). Everything else is generated
 * from this table: both databases' CREATE TABLE and indexes and INSERT statements (sql.ts, the SQLite worker thread),
 * reading rows back, the record CSV (report.ts) and `validateRecord` (record.ts).
 *
 * Existing ledgers depend on it: the generated DDL must stay what earlier versions created (a test keeps that DDL
 * and compares). A new column must be nullable or have a default, and go at the end.
 *
 * No Node.js imports: the dashboard's browser bundle uses this module (through report.ts).
 */
import { TokmeterTypeError } from '../errors.js';
import type { RecordFinishReason, UsageRecord } from './types.js';

/** Why a record ended (`UsageRecord.finishReason`). */
export const FINISH_REASONS: readonly RecordFinishReason[] = ['stop', 'length', 'abort', 'error', 'count', 'custom'];

/**
 * How a column is checked and converted:
 * - `text`: a non-empty string of at most `maxLength` characters
 * - `count`: a non-negative safe integer (tokens, milliseconds)
 * - `time`: like `count`, milliseconds since the Unix epoch (ISO 8601 UTC in CSV)
 * - `finish`: one of FINISH_REASONS
 * - `flag`: a boolean (only `true` is true); SQLite stores 0/1
 * - `quantities`: an object of `count`s (custom meters), stored as JSON text / JSONB
 * - `pico`: a non-negative bigint of pico-units; a decimal integer string in JSON and CSV
 */
export type ColumnKind = 'text' | 'count' | 'time' | 'finish' | 'flag' | 'quantities' | 'pico';

export interface RecordColumn {
  /** Field of `UsageRecord`. */
  readonly field: keyof UsageRecord;
  /** Column name in both databases. */
  readonly sql: string;
  readonly sqliteType: 'TEXT' | 'INTEGER';
  readonly postgresType: 'TEXT' | 'INTEGER' | 'BIGINT' | 'BOOLEAN' | 'JSONB';
  readonly nullable: boolean;
  /** The idempotency key: every ledger stores a given value at most once (SQLite UNIQUE, PostgreSQL PRIMARY KEY). */
  readonly unique?: boolean;
  readonly csv: string;
  readonly kind: ColumnKind;
  /** `text` only: the longest accepted value. */
  readonly maxLength?: number;
}

const column = (c: RecordColumn): RecordColumn => c;

/** In table order: the order of the columns in both databases (never reorder; add at the end). */
export const RECORD_COLUMNS: readonly RecordColumn[] = [
  column({
    field: 'id',
    sql: 'id',
    sqliteType: 'TEXT',
    postgresType: 'TEXT',
    nullable: false,
    unique: true,
    csv: 'record_id',
    kind: 'text',
    maxLength: 200,
  }),
  column({
    field: 'timestamp',
    sql: 'ts',
    sqliteType: 'INTEGER',
    postgresType: 'BIGINT',
    nullable: false,
    csv: 'time_utc',
    kind: 'time',
  }),
  column({
    field: 'key',
    sql: 'api_key',
    sqliteType: 'TEXT',
    postgresType: 'TEXT',
    nullable: false,
    csv: 'key',
    kind: 'text',
    maxLength: 512,
  }),
  column({
    field: 'model',
    sql: 'model',
    sqliteType: 'TEXT',
    postgresType: 'TEXT',
    nullable: false,
    csv: 'model',
    kind: 'text',
    maxLength: 512,
  }),
  column({
    field: 'promptTokens',
    sql: 'prompt_tokens',
    sqliteType: 'INTEGER',
    postgresType: 'INTEGER',
    nullable: false,
    csv: 'prompt_tokens',
    kind: 'count',
  }),
  column({
    field: 'cachedTokens',
    sql: 'cached_tokens',
    sqliteType: 'INTEGER',
    postgresType: 'INTEGER',
    nullable: false,
    csv: 'cached_tokens',
    kind: 'count',
  }),
  column({
    field: 'completionTokens',
    sql: 'completion_tokens',
    sqliteType: 'INTEGER',
    postgresType: 'INTEGER',
    nullable: false,
    csv: 'completion_tokens',
    kind: 'count',
  }),
  column({
    field: 'totalTokens',
    sql: 'total_tokens',
    sqliteType: 'INTEGER',
    postgresType: 'INTEGER',
    nullable: false,
    csv: 'total_tokens',
    kind: 'count',
  }),
  column({
    field: 'finishReason',
    sql: 'finish_reason',
    sqliteType: 'TEXT',
    postgresType: 'TEXT',
    nullable: false,
    csv: 'finish_reason',
    kind: 'finish',
  }),
  column({
    field: 'latencyMs',
    sql: 'latency_ms',
    sqliteType: 'INTEGER',
    postgresType: 'INTEGER',
    nullable: false,
    csv: 'latency_ms',
    kind: 'count',
  }),
  column({
    field: 'cacheHit',
    sql: 'cache_hit',
    sqliteType: 'INTEGER',
    postgresType: 'BOOLEAN',
    nullable: false,
    csv: 'cache_hit',
    kind: 'flag',
  }),
  column({
    field: 'custom',
    sql: 'custom',
    sqliteType: 'TEXT',
    postgresType: 'JSONB',
    nullable: false,
    csv: 'custom',
    kind: 'quantities',
  }),
  column({
    field: 'cost',
    sql: 'cost',
    sqliteType: 'INTEGER',
    postgresType: 'BIGINT',
    nullable: false,
    csv: 'cost_pico',
    kind: 'pico',
  }),
  column({
    field: 'currency',
    sql: 'currency',
    sqliteType: 'TEXT',
    postgresType: 'TEXT',
    nullable: false,
    csv: 'currency',
    kind: 'text',
    maxLength: 8,
  }),
  column({
    field: 'priceVersion',
    sql: 'price_version',
    sqliteType: 'TEXT',
    postgresType: 'TEXT',
    nullable: false,
    csv: 'price_version',
    kind: 'text',
    maxLength: 200,
  }),
];

/** Secondary indexes, named `<table>_<suffix>`: per-key spend and reports by time. */
export const RECORD_INDEXES: readonly { readonly suffix: string; readonly columns: readonly (keyof UsageRecord)[] }[] =
  [
    { suffix: 'key_ts', columns: ['key', 'timestamp'] },
    { suffix: 'ts', columns: ['timestamp'] },
  ];

/** SQL name of a record field. */
export function sqlName(field: keyof UsageRecord): string {
  const c = RECORD_COLUMNS.find((x) => x.field === field);
  if (!c) throw new TokmeterTypeError(`usage record: no column for field ${String(field)}`);
  return c.sql;
}

// ---- validation ----

function int(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new TokmeterTypeError(`usage record: expected a non-negative integer for ${field}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(v: unknown, field: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw new TokmeterTypeError(
      `usage record: expected a non-empty string (≤${max} chars) for ${field}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** One column's value from untrusted input (JSON or code), or a TokmeterTypeError naming the field. */
export function validateColumn(c: RecordColumn, v: unknown): unknown {
  if (c.nullable && (v === undefined || v === null)) return null;
  switch (c.kind) {
    case 'text':
      return str(v, c.field, c.maxLength ?? 512);
    case 'count':
    case 'time':
      return int(v, c.field);
    case 'finish':
      if (!FINISH_REASONS.includes(v as RecordFinishReason)) {
        throw new TokmeterTypeError(`usage record: unknown ${c.field} ${JSON.stringify(v)}`);
      }
      return v;
    case 'flag':
      return v === true;
    case 'quantities': {
      const out: Record<string, number> = {};
      if (v === undefined) return out;
      if (typeof v !== 'object' || v === null)
        throw new TokmeterTypeError(`usage record: ${c.field} must be an object`);
      for (const [k, n] of Object.entries(v)) out[k] = int(n, `${c.field}.${k}`);
      return out;
    }
    case 'pico': {
      const p = typeof v === 'bigint' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? BigInt(v) : undefined;
      if (p === undefined || p < 0n) {
        throw new TokmeterTypeError(`usage record: expected a non-negative integer ${c.field}, got ${String(v)}`);
      }
      return p;
    }
  }
}

// ---- conversions to and from the databases ----

/** How a value is bound as a SQLite parameter. Plain data: the SQLite worker thread receives it. */
export type SqliteBinding = 'value' | 'int01' | 'json';

export function sqliteBinding(c: RecordColumn): SqliteBinding {
  return c.kind === 'flag' ? 'int01' : c.kind === 'quantities' ? 'json' : 'value';
}

/** `[field, binding]` per column, in table order: what the SQLite worker thread binds for each record. */
export const SQLITE_BINDINGS: readonly (readonly [keyof UsageRecord, SqliteBinding])[] = RECORD_COLUMNS.map(
  (c) => [c.field, sqliteBinding(c)] as const,
);

/** A record's INSERT parameters for SQLite, in table order (bigint cost bound as a 64-bit integer). */
export function sqliteParams(r: UsageRecord): unknown[] {
  const out = new Array<unknown>(SQLITE_BINDINGS.length);
  for (let i = 0; i < SQLITE_BINDINGS.length; i++) {
    const [field, how] = SQLITE_BINDINGS[i]!;
    const v = r[field];
    out[i] =
      v === undefined || v === null ? null : how === 'int01' ? (v ? 1 : 0) : how === 'json' ? JSON.stringify(v) : v;
  }
  return out;
}

/** The element type of the array parameter that PostgreSQL's unnest() reads for a column. */
export function postgresArrayType(c: RecordColumn): string {
  return { TEXT: 'text', INTEGER: 'int', BIGINT: 'bigint', BOOLEAN: 'bool', JSONB: 'jsonb' }[c.postgresType];
}

/** A column's value as a PostgreSQL array element (bigint and JSON as text, which pg sends exactly). */
export function postgresValue(c: RecordColumn, v: unknown): unknown {
  if (v === undefined || v === null) return null;
  return c.kind === 'quantities' ? JSON.stringify(v) : c.kind === 'pico' ? String(v) : v;
}

/** Whether the column is read back as text from PostgreSQL (64-bit and JSON values, parsed here exactly). */
export function postgresReadsAsText(c: RecordColumn): boolean {
  return c.postgresType === 'BIGINT' || c.postgresType === 'JSONB';
}

/** A value as a database driver returns it (number, bigint, string, boolean) → the record's value. */
export function fromDatabase(c: RecordColumn, v: unknown): unknown {
  if (v === null) return null; // only a nullable column holds NULL
  switch (c.kind) {
    case 'count':
    case 'time':
      return Number(v);
    case 'flag':
      return v === true || Number(v) === 1;
    case 'quantities':
      return JSON.parse(String(v)) as Record<string, number>;
    case 'pico':
      return BigInt(v as string | number | bigint);
    default:
      return v;
  }
}

/** A column's CSV text for a record or its JSON form (cost as a string). */
export function csvValue(c: RecordColumn, v: unknown): string | number {
  if (v === undefined || v === null) return ''; // a nullable column without a value: an empty cell
  switch (c.kind) {
    case 'time':
      return new Date(v as number).toISOString();
    case 'quantities':
      return JSON.stringify(v);
    case 'count':
      return v as number;
    default:
      return String(v);
  }
}
