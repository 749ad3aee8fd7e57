/**
 * Ledger on PostgreSQL (pg). For many servers writing one ledger; each process has its own local spool.
 *
 * Batches are one `INSERT … SELECT FROM unnest($1::text[], …) ON CONFLICT (id) DO NOTHING` per transaction, so a
 * batch is atomic and re-sending it after a lost acknowledgement (server stopped mid-commit) inserts nothing twice.
 * Connection errors never throw into the process: the pool's 'error' events are caught, the batch is retried with
 * backoff, and records wait in the spool.
 *
 * `pg` is loaded on the first connection, so importing the package costs nothing to a process that never uses it.
 */
import type pg from 'pg';
import {
  checkTableName,
  rowToRecord,
  aggToRow,
  postgresBatchParams,
  postgresInsertSql,
  postgresSchema,
  AGG_SELECT,
  POSTGRES_SELECT,
  type RecordRow,
  type AggRow,
} from './sql.js';
import { SpooledLedger, type NormalizedReportQuery, type ReportRow, type SpooledLedgerOptions } from './ledger.js';
import { TokmeterTypeError } from './errors.js';
import type { UsageRecord } from './types.js';

export interface PostgresLedgerOptions extends SpooledLedgerOptions {
  /** Local spool directory (required: records wait here while the server is unreachable). */
  spoolDir: string;
  table?: string;
  /** Connection timeout (default 3000 ms) and per-statement timeout (default 15000 ms). */
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

export class PostgresLedger extends SpooledLedger {
  private readonly url: string;
  private readonly table: string;
  private readonly connectTimeoutMs: number;
  private readonly statementTimeoutMs: number;
  private pool: pg.Pool | undefined;

  constructor(url: string, options: PostgresLedgerOptions) {
    if (typeof url !== 'string' || !/^postgres(ql)?:\/\//.test(url)) {
      throw new TokmeterTypeError(`PostgresLedger: expected a postgres:// URL, got ${JSON.stringify(url)}`);
    }
    if (!options || typeof options.spoolDir !== 'string' || options.spoolDir === '') {
      throw new TokmeterTypeError('PostgresLedger: options.spoolDir (a local directory for the spool) is required');
    }
    super(options.spoolDir, { batchSize: 2000, ...options });
    this.url = url;
    this.table = checkTableName(options.table ?? 'usage_records');
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    this.statementTimeoutMs = options.statementTimeoutMs ?? 15000;
  }

  protected async connect(): Promise<void> {
    const { default: pgModule } = await import('pg');
    const pool = new pgModule.Pool({
      connectionString: this.url,
      max: 2,
      connectionTimeoutMillis: this.connectTimeoutMs,
      statement_timeout: this.statementTimeoutMs,
      query_timeout: this.statementTimeoutMs + 1000,
      idleTimeoutMillis: 30_000,
    });
    pool.on('error', () => undefined); // idle client lost (server restart): the next query reconnects
    if (this.readOnly) {
      this.pool = pool; // a reader creates nothing
      return;
    }
    const t = this.table;
    try {
      for (const stmt of postgresSchema(t)) await pool.query(stmt);
    } catch (err) {
      // Two processes creating the table at once can collide on the catalog; the next attempt sees the table.
      await pool.end().catch(() => undefined);
      throw err;
    }
    this.pool = pool;
  }

  protected async writeBatch(records: UsageRecord[]): Promise<void> {
    await this.pool!.query(postgresInsertSql(this.table), postgresBatchParams(records));
  }

  protected override async countMissing(ids: string[]): Promise<number> {
    const r = await this.pool!.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${this.table} WHERE id = ANY($1::text[])`,
      [ids],
    );
    return ids.length - Number(r.rows[0]!.n);
  }

  protected async querySpend(key: string, from: number, to: number): Promise<bigint> {
    const r = await this.pool!.query<{ s: string | null }>(
      `SELECT sum(cost)::text AS s FROM ${this.table} WHERE api_key = $1 AND ts >= $2 AND ts < $3`,
      [key, from, to],
    );
    return BigInt(r.rows[0]?.s ?? 0);
  }

  protected async queryReport(q: NormalizedReportQuery): Promise<ReportRow[]> {
    const grp =
      q.groupBy === 'key'
        ? 'api_key'
        : q.groupBy === 'model'
          ? 'model'
          : `to_char(to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;
    const params: unknown[] = [q.from, q.to];
    const where = ['ts >= $1', 'ts < $2'];
    if (q.key !== undefined) {
      params.push(q.key);
      where.push(`api_key = $${params.length}`);
    }
    if (q.model !== undefined) {
      params.push(q.model);
      where.push(`model = $${params.length}`);
    }
    const select = AGG_SELECT.replace('cache_hit_i', 'cache_hit::int').replace(
      'sum(cost) AS cost',
      'sum(cost)::text AS cost',
    );
    const r = await this.pool!.query<AggRow>(
      `SELECT ${grp} AS grp, ${select} FROM ${this.table} WHERE ${where.join(' AND ')} GROUP BY 1 ORDER BY 1`,
      params,
    );
    return r.rows.map(aggToRow);
  }

  async get(id: string): Promise<UsageRecord | undefined> {
    await this.ensureConnected();
    const r = await this.pool!.query<RecordRow>(
      `SELECT ${POSTGRES_SELECT}
       FROM ${this.table} WHERE id = $1`,
      [id],
    );
    return r.rows[0] ? rowToRecord(r.rows[0]) : undefined;
  }

  async count(): Promise<number> {
    await this.ensureConnected();
    const r = await this.pool!.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${this.table}`);
    return Number(r.rows[0]!.n);
  }

  /** All ids with how often each occurs (tests: the primary key makes duplicates impossible; this proves it). */
  async idCounts(): Promise<Map<string, number>> {
    await this.ensureConnected();
    const r = await this.pool!.query<{ id: string; n: string }>(
      `SELECT id, count(*)::text AS n FROM ${this.table} GROUP BY id`,
    );
    return new Map(r.rows.map((x) => [x.id, Number(x.n)]));
  }

  protected override isConnectionError(err: Error): boolean {
    const code = (err as { code?: string }).code ?? '';
    return /^(08|57P)/.test(code) || /ECONNREFUSED|ECONNRESET|terminat|timeout|Connection/i.test(err.message);
  }

  protected async disconnect(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    await p?.end();
  }
}
