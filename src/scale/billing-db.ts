/**
 * BillingDb: the PostgreSQL ledger as the billing worker and report readers use it — direct, synchronous-commit
 * writes with no local spool (the Redis stream plays the spool's part: an event is acknowledged only after
 * `commit()` resolved, i.e. after PostgreSQL committed the batch). Same table and columns as PostgresLedger, and
 * the same `INSERT … ON CONFLICT (id) DO NOTHING`, so a record id is stored at most once however often it is
 * delivered.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { normalizeQuery, PostgresLedger, type ReportQuery, type ReportRow, type UsageRecord } from '../usage/index.js';

export interface BillingDbOptions {
  table?: string;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

export class BillingDb extends PostgresLedger {
  constructor(url: string, options: BillingDbOptions = {}) {
    // The inherited spool is never opened (no append() here); it only needs a directory name.
    super(url, { ...options, spoolDir: path.join(tmpdir(), 'tokmeter-billing-db-unused') });
  }

  /** Insert the batch in one statement (atomic); resolves after the commit. Ids already stored are skipped. */
  async commit(records: UsageRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.ensureConnected(); // a lost connection needs nothing more: pg's pool replaces broken clients
    await this.writeBatch(records);
  }

  /** Totals straight from the database (no spool to flush). */
  async reportNow(query: ReportQuery): Promise<ReportRow[]> {
    await this.ensureConnected();
    return this.queryReport(normalizeQuery(query));
  }

  /** What `key` spent in [from, to) according to the database. */
  async spendNow(key: string, from: number, to: number): Promise<bigint> {
    await this.ensureConnected();
    return this.querySpend(key, from, to);
  }
}
