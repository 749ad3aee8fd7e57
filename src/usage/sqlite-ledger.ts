/**
 * Embedded ledger on SQLite (better-sqlite3 12, WAL). One process owns a database file and its spool; readers
 * (`readOnly`: reports) open the file read-only beside it and never touch the spool.
 *
 * Writes: batches (one prepared INSERT OR IGNORE per record in one transaction) run on a worker thread
 * (sqlite-writer.ts) by default, so the event loop never waits for SQLite; `writeThread: 'main'` runs them on the
 * JS thread instead (measured in bench/metering). Reads (reports, spend, get) use a connection on the JS thread:
 * short queries, and WAL lets them run beside the writer. `busy_timeout` is short so a locked file fails fast and
 * the writer loop retries with backoff.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { LedgerError } from './errors.js';
import { SqliteWriter } from './sqlite-writer.js';
import { sqliteParams } from './columns.js';
import {
  checkTableName,
  rowToRecord,
  aggToRow,
  sqliteInsertSql,
  sqliteSchema,
  AGG_SELECT,
  type RecordRow,
  type AggRow,
} from './sql.js';
import { SpooledLedger, type NormalizedReportQuery, type ReportRow, type SpooledLedgerOptions } from './ledger.js';
import type { UsageRecord } from './types.js';
import { expectPath } from '../validate.js';

export interface SqliteLedgerOptions extends SpooledLedgerOptions {
  /** Table name (default usage_records). */
  table?: string;
  /** SQLite busy timeout in ms (default 10: a locked file fails fast and the writer loop retries with backoff). */
  busyTimeoutMs?: number;
  /** Where insert batches run: 'worker' (default, off the event loop) or 'main'. */
  writeThread?: 'worker' | 'main';
}

type Db = BetterSqlite3.Database;

/**
 * better-sqlite3 is an optional dependency (it compiles at install time where no prebuilt binary can be
 * downloaded), so it is loaded only when a SqliteLedger opens, and its absence is a clear error, not a failed import
 * of all of tokmeter.
 */
export function loadBetterSqlite3(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (err) {
    throw new LedgerError(
      'ERR_LEDGER',
      'SqliteLedger needs the optional dependency better-sqlite3@12, which is not installed or not built: ' +
        'run `npm install better-sqlite3@12` (with npm >= 11.19, also `npm install-scripts approve better-sqlite3`), ' +
        `or use PostgresLedger. Cause: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export class SqliteLedger extends SpooledLedger {
  readonly file: string;
  private readonly table: string;
  private readonly busyTimeoutMs: number;
  private db: Db | undefined;
  private insertMany: ((records: UsageRecord[]) => void) | undefined;
  private writer: SqliteWriter | undefined;
  private readonly writeThread: 'worker' | 'main';

  constructor(file: string, options: SqliteLedgerOptions = {}) {
    expectPath('the ledger file', file);
    // Off the event loop a bigger transaction costs nothing in latency and saves commits (fsyncs).
    const batchSize = options.batchSize ?? ((options.writeThread ?? 'worker') === 'worker' ? 5000 : 1000);
    super(options.spoolDir ?? `${file}.spool`, { ...options, batchSize });
    this.file = file;
    this.table = checkTableName(options.table ?? 'usage_records');
    this.busyTimeoutMs = options.busyTimeoutMs ?? 10;
    this.writeThread = options.writeThread ?? 'worker';
  }

  protected async connect(): Promise<void> {
    const Database = loadBetterSqlite3();
    if (this.readOnly) return this.connectReader(Database);
    const db = new Database(this.file, { timeout: this.busyTimeoutMs }); // never block the event loop for long
    try {
      db.pragma('journal_mode = WAL');
      // FULL: a batch is on disk before its spool segment may be deleted (NORMAL could lose the last commits on
      // power loss after the spool copy is gone). One fsync per batch of up to 1000 records.
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      const t = this.table;
      // Performance notes (100k random-UUID inserts, 1000/tx, this 2-core box): WITHOUT ROWID + TEXT primary key
      // 11–15k rows/s; a rowid table with a UNIQUE id and a 16 MiB page cache 30–45k rows/s (the row b-tree grows
      // at its end; only the id index takes random inserts). Rejected: WITHOUT ROWID.
      db.pragma('cache_size = -16384');
      db.exec(sqliteSchema(t).join(';\n'));
      const insertSql = sqliteInsertSql(t);
      const insert = db.prepare(insertSql);
      this.insertMany = db.transaction((records: UsageRecord[]) => {
        for (const r of records) insert.run(sqliteParams(r));
      });
      if (this.writeThread === 'worker')
        this.writer = await SqliteWriter.start(this.file, insertSql, this.busyTimeoutMs);
      this.db = db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * A reader's connection: opened read-only, never creating the file, the table or anything else. A database that
   * does not exist yet, or has no table, reads as empty.
   */
  private connectReader(Database: typeof BetterSqlite3): void {
    if (!existsSync(this.file)) return;
    const db = new Database(this.file, { readonly: true, fileMustExist: true, timeout: 5000 });
    const table = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(this.table);
    if (table === undefined) db.close();
    else this.db = db;
  }

  protected override async countMissing(ids: string[]): Promise<number> {
    if (!this.db) return ids.length;
    const has = this.db.prepare(`SELECT 1 FROM ${this.table} WHERE id = ?`).pluck();
    let missing = 0;
    for (const id of ids) if (has.get(id) === undefined) missing++;
    return missing;
  }

  protected async writeBatch(records: UsageRecord[]): Promise<void> {
    if (this.writer) await this.writer.write(records);
    else this.insertMany!(records);
  }

  protected override isConnectionError(err: Error): boolean {
    return (err as { code?: string }).code === 'ERR_SQLITE_WORKER';
  }

  /**
   * Exact spend without waiting for the writer: the table's sum plus the pending records for the key that the
   * table does not have yet.
   */
  override async spend(key: string, from: number, to: number): Promise<bigint> {
    await this.open();
    await this.ensureConnected();
    const db = this.db;
    if (!db) return 0n; // a reader of a database that does not exist yet
    const sumStmt = db.prepare(`SELECT sum(cost) AS s FROM ${this.table} WHERE api_key = ? AND ts >= ? AND ts < ?`);
    const has = db.prepare(`SELECT 1 FROM ${this.table} WHERE id = ?`).pluck();
    // One read transaction = one WAL snapshot: the sum and the membership checks see the same committed batches,
    // even while the writer thread commits. A record leaves the pending list only after its batch is acknowledged
    // on this thread, which cannot happen inside this synchronous block.
    return db.transaction(() => {
      const row = sumStmt.safeIntegers(true).get(key, from, to) as { s: bigint | null };
      let sum = row.s ?? 0n;
      for (const r of this.pendingRecords()) {
        if (r.key === key && r.timestamp >= from && r.timestamp < to && has.get(r.id) === undefined) sum += r.cost;
      }
      return sum;
    })();
  }

  protected async querySpend(key: string, from: number, to: number): Promise<bigint> {
    if (!this.db) return 0n;
    const row = this.db!.prepare(`SELECT sum(cost) AS s FROM ${this.table} WHERE api_key = ? AND ts >= ? AND ts < ?`)
      .safeIntegers(true)
      .get(key, from, to) as { s: bigint | null };
    return row.s ?? 0n;
  }

  protected async queryReport(q: NormalizedReportQuery): Promise<ReportRow[]> {
    if (!this.db) return []; // a reader of a database that does not exist yet
    const grp =
      q.groupBy === 'key'
        ? 'api_key'
        : q.groupBy === 'model'
          ? 'model'
          : `strftime('%Y-%m-%d', ts / 1000, 'unixepoch')`;
    const where = ['ts >= @from', 'ts < @to'];
    if (q.key !== undefined) where.push('api_key = @key');
    if (q.model !== undefined) where.push('model = @model');
    // sum() over INTEGER raises "integer overflow" past 2^63 pico-units (~9.2M currency units) rather than rounding.
    const sql = `SELECT ${grp} AS grp, ${AGG_SELECT.replace('cache_hit_i', 'cache_hit')} FROM ${this.table}
      WHERE ${where.join(' AND ')} GROUP BY grp ORDER BY grp`;
    const rows = this.db!.prepare(sql)
      .safeIntegers(true)
      .all({
        from: q.from,
        to: q.to,
        ...(q.key !== undefined ? { key: q.key } : {}),
        ...(q.model !== undefined ? { model: q.model } : {}),
      }) as AggRow[];
    return rows.map(aggToRow);
  }

  async get(id: string): Promise<UsageRecord | undefined> {
    await this.open();
    await this.ensureConnected();
    if (!this.db) return undefined;
    const row = this.db.prepare(`SELECT * FROM ${this.table} WHERE id = ?`).safeIntegers(true).get(id) as
      RecordRow | undefined;
    return row ? rowToRecord(row) : undefined;
  }

  async count(): Promise<number> {
    await this.open();
    await this.ensureConnected();
    if (!this.db) return 0;
    return Number((this.db.prepare(`SELECT count(*) AS n FROM ${this.table}`).get() as { n: number }).n);
  }

  /** All ids in the table (tests). */
  async ids(): Promise<string[]> {
    await this.open();
    await this.ensureConnected();
    if (!this.db) return [];
    return (this.db.prepare(`SELECT id FROM ${this.table}`).all() as { id: string }[]).map((r) => r.id);
  }

  protected async disconnect(): Promise<void> {
    const w = this.writer;
    this.writer = undefined;
    await w?.close();
    this.db?.close();
    this.db = undefined;
    this.insertMany = undefined;
  }
}
