/**
 * The latest usage records (the dashboard lists them). The `Ledger` interface has aggregates (`report`, `spend`) but
 * no listing, so this reads the ledger's table itself, through its own read-only connection:
 *
 * - SQLite: a second better-sqlite3 connection opened read-only on the ledger's file (WAL readers never block the
 *   writer); the query uses the (ts) index and stops after `limit` rows.
 * - Postgres: a small pg pool on the same URL.
 *
 * Callers run a ledger `report()` first (which flushes the spool), so accepted records are in the table. Totals on
 * the page never come from here: only the list of records does.
 */
import path from 'node:path';
import { checkTableName, rowToRecord, POSTGRES_SELECT, type RecordRow } from './sql.js';
import { SqliteLedger } from './sqlite-ledger.js';
import type { UsageRecord } from './types.js';

export interface RecentQuery {
  from: number;
  to: number;
  key: string | undefined;
  model: string | undefined;
  limit: number;
}

export interface RecentRecords {
  recent(q: RecentQuery): Promise<UsageRecord[]>;
  close(): Promise<void>;
}

function where(q: RecentQuery, param: (i: number) => string): { sql: string; args: unknown[] } {
  const args: unknown[] = [q.from, q.to];
  const parts = [`ts >= ${param(1)}`, `ts < ${param(2)}`];
  if (q.key !== undefined) {
    args.push(q.key);
    parts.push(`api_key = ${param(args.length)}`);
  }
  if (q.model !== undefined) {
    args.push(q.model);
    parts.push(`model = ${param(args.length)}`);
  }
  return { sql: parts.join(' AND '), args };
}

type Db = import('better-sqlite3').Database;

export class SqliteRecentRecords implements RecentRecords {
  private db: Db | undefined;
  private readonly table: string;

  constructor(
    private readonly file: string,
    table = 'usage_records',
  ) {
    this.table = checkTableName(table);
  }

  async recent(q: RecentQuery): Promise<UsageRecord[]> {
    if (!this.db) {
      const { default: Database } = await import('better-sqlite3');
      this.db = new Database(this.file, { readonly: true, fileMustExist: true, timeout: 50 });
    }
    const w = where(q, () => '?');
    const rows = this.db
      .prepare(`SELECT * FROM ${this.table} WHERE ${w.sql} ORDER BY ts DESC, id DESC LIMIT ?`)
      .safeIntegers(true)
      .all(...w.args, q.limit) as RecordRow[];
    return rows.map(rowToRecord);
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }
}

export class PostgresRecentRecords implements RecentRecords {
  private pool: import('pg').Pool | undefined;
  private readonly table: string;

  constructor(
    private readonly url: string,
    table = 'usage_records',
  ) {
    this.table = checkTableName(table);
  }

  async recent(q: RecentQuery): Promise<UsageRecord[]> {
    if (!this.pool) {
      const pg = (await import('pg')).default;
      this.pool = new pg.Pool({ connectionString: this.url, max: 2, statement_timeout: 5000 });
    }
    const w = where(q, (i) => `$${i}`);
    const res = await this.pool.query<RecordRow>(
      `SELECT ${POSTGRES_SELECT}
       FROM ${this.table} WHERE ${w.sql} ORDER BY ts DESC, id DESC LIMIT $${w.args.length + 1}`,
      [...w.args, q.limit],
    );
    return res.rows.map(rowToRecord);
  }

  async close(): Promise<void> {
    await this.pool?.end();
    this.pool = undefined;
  }
}

/** The default source for a ledger: SQLite by its file; otherwise none (pass `records` to the plugin). */
export function recentRecordsFor(ledger: unknown): RecentRecords | undefined {
  return ledger instanceof SqliteLedger ? new SqliteRecentRecords(ledger.file) : undefined;
}

/**
 * The source for a server's `--ledger` spec: the SQLite file's own table, or a pool on the Postgres URL. Undefined
 * for anything else (the page then says that this ledger does not list records).
 */
export function recentRecordsForSpec(spec: string, table?: string): RecentRecords | undefined {
  if (spec.startsWith('sqlite:') && spec.length > 'sqlite:'.length) {
    return new SqliteRecentRecords(path.resolve(spec.slice('sqlite:'.length)), table);
  }
  if (/^postgres(ql)?:\/\//.test(spec)) return new PostgresRecentRecords(spec, table);
  return undefined;
}
