/**
 * Ledgers: durable, idempotent stores of usage records, written off the request's hot path.
 *
 * `SpooledLedger` holds the shared machinery; backends (SQLite, Postgres) only implement `connect`, `writeBatch`
 * (idempotent on the record id), queries and `disconnect`.
 *
 * Path of a record: `append()` → spool (fdatasync; the promise resolves here: the record is *accepted*) → in-memory
 * queue → batches of up to `batchSize` written by one writer loop → `ack` deletes it from the spool. If the
 * database is slow or down, batches are retried with backoff and records wait in the spool (bounded: past
 * `maxSpoolBytes`, `append()` rejects with SpoolFullError and the Meter refuses new requests). On restart `open()`
 * replays the spool; the database ignores ids it already has, so nothing is doubled.
 */
import { LedgerError } from './errors.js';
import { scanSpool, Spool, type SpoolOptions, type SpoolTicket } from './spool.js';
import { validateRecord } from './record.js';
import type { UsageRecord } from './types.js';
import { expectPath } from '../validate.js';

export type GroupBy = 'key' | 'model' | 'day';

export interface ReportQuery {
  /** Inclusive start (ms since epoch or Date); default: everything. */
  from?: number | Date;
  /** Exclusive end; default: everything. */
  to?: number | Date;
  groupBy: GroupBy;
  key?: string;
  model?: string;
}

export interface ReportRow {
  /** The key, the model, or the UTC day (YYYY-MM-DD). */
  group: string;
  requests: number;
  cacheHits: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Exact pico-units of the currency. */
  cost: bigint;
}

export interface NormalizedReportQuery {
  from: number;
  to: number;
  groupBy: GroupBy;
  key: string | undefined;
  model: string | undefined;
}

export interface LedgerStats {
  /** Records accepted (in the spool) but not yet confirmed by the database. */
  pending: number;
  spoolBytes: number;
  spoolMaxBytes: number;
  /** Records confirmed by the database since open (including replayed ones). */
  written: number;
  /** Records found in the spool at open and replayed. */
  replayed: number;
  lastError: string | undefined;
  connected: boolean;
}

export interface Ledger {
  open(): Promise<void>;
  /** Resolves once the records are durable in the spool. `force` ignores the spool bound (already-admitted work). */
  append(records: UsageRecord | UsageRecord[], options?: { force?: boolean }): Promise<void>;
  /** Whether the spool can take new records (checked by the Meter at admission). */
  hasRoom(): boolean;
  /** Wait until every accepted record is in the database. Rejects after `timeoutMs` if given. */
  flush(options?: { timeoutMs?: number }): Promise<void>;
  /** Flush (bounded by `timeoutMs`, default 5000), then release everything; unwritten records stay in the spool. */
  close(options?: { timeoutMs?: number }): Promise<void>;
  report(query: ReportQuery, options?: { flushTimeoutMs?: number }): Promise<ReportRow[]>;
  /** Cost for key in [from, to): flushes first so the database sees every accepted record. */
  spend(key: string, from: number, to: number): Promise<bigint>;
  /** Cost for key in [from, to) among records not yet confirmed by the database (no I/O). */
  pendingSpend(key: string, from: number, to: number): bigint;
  stats(): LedgerStats;
}

export interface SpooledLedgerOptions extends SpoolOptions {
  /** Spool directory (required for Postgres; SQLite defaults to `<file>.spool`). */
  spoolDir?: string;
  /** Records per database transaction (default 1000). */
  batchSize?: number;
  /** Retry backoff bounds for a failing database (default 50 ms → 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Called with each database error (the ledger keeps retrying). */
  onError?: (err: Error) => void;
  /**
   * A reader (reports, audits): never opens, locks, replays or flushes the spool, so it can run beside the process
   * that owns it; it creates nothing in the database either. `append` is refused. `spoolPending()` tells what is
   * still waiting in the spool.
   */
  readOnly?: boolean;
}

/** What `spoolPending()` found: records in the spool that the database does not have yet. */
export interface SpoolPending {
  dir: string;
  records: number;
  /** pid of a live process that owns the spool (it writes them); undefined: no live owner (written on next open). */
  ownerPid: number | undefined;
}

interface Item {
  record: UsageRecord;
  ticket: SpoolTicket;
}

function toMs(v: number | Date | undefined, dflt: number, field: string): number {
  if (v === undefined) return dflt;
  const n = v instanceof Date ? v.getTime() : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new LedgerError('ERR_LEDGER', `report: invalid ${field}`);
  return n;
}

export function normalizeQuery(q: ReportQuery): NormalizedReportQuery {
  if (!q || !['key', 'model', 'day'].includes(q.groupBy)) {
    throw new LedgerError(
      'ERR_LEDGER',
      `report: groupBy must be 'key', 'model' or 'day', got ${JSON.stringify(q?.groupBy)}`,
    );
  }
  return {
    from: toMs(q.from, 0, 'from'),
    to: toMs(q.to, 8.64e15, 'to'),
    groupBy: q.groupBy,
    key: q.key,
    model: q.model,
  };
}

export abstract class SpooledLedger implements Ledger {
  protected readonly spool: Spool;
  private readonly batchSize: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly onError: ((err: Error) => void) | undefined;
  private items: Item[] = [];
  private itemsHead = 0;
  private inFlightAppends = 0;
  private writing = false;
  private connected = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private scheduled = false;
  private opened: Promise<void> | undefined;
  private closing = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private written = 0;
  private replayed = 0;
  private lastError: string | undefined;
  readonly readOnly: boolean;

  protected constructor(spoolDir: string, options: SpooledLedgerOptions) {
    expectPath('spoolDir', spoolDir);
    this.spool = new Spool(spoolDir, options);
    this.readOnly = options.readOnly ?? false;
    this.batchSize = options.batchSize ?? 1000;
    this.retryMinMs = options.retryMinMs ?? 50;
    this.retryMaxMs = options.retryMaxMs ?? 5000;
    this.retryDelay = this.retryMinMs;
    this.onError = options.onError;
  }

  protected abstract connect(): Promise<void>;
  protected abstract writeBatch(records: UsageRecord[]): Promise<void>;
  protected abstract queryReport(q: NormalizedReportQuery): Promise<ReportRow[]>;
  protected abstract querySpend(key: string, from: number, to: number): Promise<bigint>;
  protected abstract disconnect(): Promise<void>;
  /** How many of these ids the database does not have (default: all of them, without asking). */
  protected async countMissing(ids: string[]): Promise<number> {
    return ids.length;
  }
  /** Look up one record by id (tests, audits). */
  abstract get(id: string): Promise<UsageRecord | undefined>;
  /** Number of records stored in the database. */
  abstract count(): Promise<number>;

  /** Lock and replay the spool. Idempotent; called implicitly by append/flush/report. */
  open(): Promise<void> {
    if (!this.opened) {
      this.opened = (async () => {
        if (this.closed) throw new LedgerError('ERR_LEDGER_CLOSED', 'the ledger is closed');
        if (this.readOnly) return;
        const recovered = this.spool.open();
        this.replayed = recovered.length;
        for (const it of recovered) this.items.push(it);
        this.schedule();
      })();
    }
    return this.opened;
  }

  hasRoom(): boolean {
    return this.spool.hasRoom();
  }

  async append(records: UsageRecord | UsageRecord[], options: { force?: boolean } = {}): Promise<void> {
    const list = (Array.isArray(records) ? records : [records]).map((r) => validateRecord(r));
    if (this.closing) throw new LedgerError('ERR_LEDGER_CLOSED', 'the ledger is closed');
    if (this.readOnly) throw new LedgerError('ERR_LEDGER_READ_ONLY', 'this ledger was opened read-only (readOnly)');
    await this.open();
    this.inFlightAppends++;
    try {
      const tickets = await this.spool.append(list, options.force ?? false, this.lastError);
      for (let i = 0; i < list.length; i++) this.items.push({ record: list[i]!, ticket: tickets[i]! });
    } finally {
      this.inFlightAppends--;
      this.schedule();
    }
  }

  flush(options: { timeoutMs?: number } = {}): Promise<void> {
    const drained = this.open().then(
      () =>
        new Promise<void>((resolve) => {
          if (this.isDrained()) return resolve();
          this.drainWaiters.push(resolve);
          this.kickNow();
        }),
    );
    if (options.timeoutMs === undefined) return drained;
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new LedgerError(
              'ERR_LEDGER',
              `flush timed out after ${options.timeoutMs} ms with ${this.pendingCount()} records pending` +
                (this.lastError ? ` (last error: ${this.lastError})` : ''),
            ),
          ),
        options.timeoutMs,
      );
      drained.then(
        () => {
          clearTimeout(t);
          resolve();
        },
        (e) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (this.opened) {
      try {
        await this.flush({ timeoutMs: options.timeoutMs ?? 5000 });
      } catch (err) {
        this.onError?.(err as Error); // records stay in the spool and are written on the next open
      }
      while (this.writing) await new Promise((r) => setTimeout(r, 2));
    }
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.opened) await this.spool.close();
    if (this.connected) {
      this.connected = false;
      await this.disconnect().catch(() => undefined);
    }
  }

  /**
   * Totals over the database after flushing (rejects after `flushTimeoutMs`, default 10 s, if it is down). A
   * read-only ledger reports the database as it is: see `spoolPending()` for what is not in it yet.
   */
  async report(query: ReportQuery, options: { flushTimeoutMs?: number } = {}): Promise<ReportRow[]> {
    const q = normalizeQuery(query);
    if (!this.readOnly) await this.flush({ timeoutMs: options.flushTimeoutMs ?? 10_000 });
    await this.ensureConnected();
    return this.queryReport(q);
  }

  /**
   * Default (Postgres): flush with a short timeout so the database has every accepted record, then sum. If the
   * flush does not finish in time, pending records are added to the database sum (conservative: one that is in
   * both is counted twice, so a budget can only refuse early, never overspend). If the database is failing right
   * now this rejects at once, and the Meter falls back to `pendingSpend` with a warning. SQLite overrides this with
   * an exact, non-blocking variant.
   */
  async spend(key: string, from: number, to: number): Promise<bigint> {
    await this.open();
    if (this.lastError !== undefined) {
      throw new LedgerError('ERR_LEDGER', `ledger database unavailable: ${this.lastError}`);
    }
    let flushed = true;
    try {
      await this.flush({ timeoutMs: 250 });
    } catch {
      flushed = false;
    }
    await this.ensureConnected();
    const inDb = await this.querySpend(key, from, to);
    return flushed ? inDb : inDb + this.pendingSpend(key, from, to);
  }

  /**
   * Records waiting in the spool directory that the database does not have yet, read without taking the spool
   * (works beside the live owner, and after it crashed). A record written to the database between the scan and
   * the check counts as written.
   */
  async spoolPending(): Promise<SpoolPending> {
    const scan = scanSpool(this.spool.dir);
    const live = scan.owners.find((o) => o.state !== 'dead');
    const ids = [...new Set(scan.records.map((r) => r.id))];
    await this.ensureConnected();
    return {
      dir: scan.dir,
      records: ids.length === 0 ? 0 : await this.countMissing(ids),
      ownerPid: live?.identity.pid,
    };
  }

  /** Records accepted but not yet confirmed by the database (some may already be there after a replay). */
  protected *pendingRecords(): Iterable<UsageRecord> {
    for (let i = this.itemsHead; i < this.items.length; i++) yield this.items[i]!.record;
  }

  pendingSpend(key: string, from: number, to: number): bigint {
    let sum = 0n;
    for (let i = this.itemsHead; i < this.items.length; i++) {
      const r = this.items[i]!.record;
      if (r.key === key && r.timestamp >= from && r.timestamp < to) sum += r.cost;
    }
    return sum;
  }

  stats(): LedgerStats {
    return {
      pending: this.pendingCount(),
      spoolBytes: this.spool.pendingBytes,
      spoolMaxBytes: this.spool.maxBytes,
      written: this.written,
      replayed: this.replayed,
      lastError: this.lastError,
      connected: this.connected,
    };
  }

  private pendingCount(): number {
    return this.items.length - this.itemsHead + this.inFlightAppends;
  }

  private isDrained(): boolean {
    return this.items.length === this.itemsHead && this.inFlightAppends === 0 && !this.writing;
  }

  protected async ensureConnected(): Promise<void> {
    if (this.connected) return;
    await this.connect();
    this.connected = true;
  }

  private schedule(): void {
    if (this.scheduled || this.writing || this.retryTimer || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private kickNow(): void {
    // flush() should not sit out a long backoff: retry right away once.
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.schedule();
  }

  private async pump(): Promise<void> {
    if (this.writing || this.closed) return;
    if (this.items.length === this.itemsHead) return this.notifyDrain();
    this.writing = true;
    const end = Math.min(this.items.length, this.itemsHead + this.batchSize);
    const batch = this.items.slice(this.itemsHead, end);
    try {
      await this.ensureConnected();
      await this.writeBatch(batch.map((b) => b.record));
      this.itemsHead = end;
      if (this.itemsHead > 4096 && this.itemsHead * 2 > this.items.length) {
        this.items = this.items.slice(this.itemsHead);
        this.itemsHead = 0;
      }
      this.written += batch.length;
      this.lastError = undefined;
      this.retryDelay = this.retryMinMs;
      this.writing = false;
      this.spool.ack(batch.map((b) => b.ticket));
      this.schedule();
    } catch (err) {
      this.writing = false;
      const e = err instanceof Error ? err : new Error(String(err));
      this.lastError = e.message;
      this.onError?.(e);
      if (this.isConnectionError(e) && this.connected) {
        this.connected = false;
        await this.disconnect().catch(() => undefined);
      }
      if (!this.closed) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          void this.pump();
        }, this.retryDelay);
        this.retryDelay = Math.min(this.retryMaxMs, this.retryDelay * 2);
      }
    }
    if (this.isDrained()) this.notifyDrain();
  }

  /** Whether an error means the connection must be rebuilt (backends override). */
  protected isConnectionError(_err: Error): boolean {
    return false;
  }

  private notifyDrain(): void {
    if (!this.isDrained()) return;
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of ws) w();
  }
}
