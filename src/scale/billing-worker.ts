/**
 * The billing worker: reads usage events from the Redis Stream with a consumer group and writes them into the
 * PostgreSQL ledger (BillingDb), exactly once per record id.
 *
 * Delivery contract (at-least-once in, exactly-once stored):
 *   - XREADGROUP hands each new entry to one consumer of the group; entries stay in the group's pending list
 *     (PEL) until XACK.
 *   - A batch is written with one INSERT … ON CONFLICT (id) DO NOTHING and acknowledged only after PostgreSQL
 *     committed it. A crash between commit and XACK re-delivers the batch; the primary key drops the repeats.
 *   - On start, and after any error, the worker first re-reads its own pending entries (XREADGROUP … 0).
 *   - Every `claimEveryMs` it takes over entries pending longer than `claimIdleMs` on any consumer (a dead or stuck
 *     worker) with XAUTOCLAIM, and removes consumers idle for a day with nothing pending.
 *   - Several workers run side by side: each has its own consumer name (default host-pid-random).
 *   - An entry that is not a valid usage event goes to the dead-letter stream (`<stream>:dead`, with the error),
 *     then is acknowledged, so one bad event cannot stall billing. An entry trimmed from the stream before it was
 *     billed (MAXLEN too small for the outage) is logged as an error and counted (outcome "trimmed").
 *   - PostgreSQL or Redis down: the loop backs off (100 ms → 5 s) and retries; nothing is acknowledged.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { TokmeterTypeError } from '../errors.js';
import type { UsageRecord } from '../usage/index.js';
import { BillingDb } from './billing-db.js';
import { decodeUsageEvent } from './events.js';
import { Registry as PromRegistry, stderrLog, workerMetrics, type LogFn } from './log.js';
import { DEFAULT_STREAM } from './redis-sink.js';

export const DEFAULT_GROUP = 'tokmeter-billing';

export interface BillingWorkerOptions {
  /** A `redis://` URL (the worker opens its own connection: reads block) or an ioredis client it may block. */
  redis: string | Redis;
  /** A `postgres://` URL or a BillingDb. */
  postgres: string | BillingDb;
  /** Ledger table (default usage_records), when `postgres` is a URL. */
  table?: string;
  stream?: string;
  group?: string;
  consumer?: string;
  /** Entries per read and per PostgreSQL transaction (default 500). */
  batchSize?: number;
  /** How long one XREADGROUP blocks waiting for new entries (default 2000 ms). */
  blockMs?: number;
  /** Entries pending this long on another consumer are taken over (default 30 000 ms). */
  claimIdleMs?: number;
  /** How often to look for such entries (default claimIdleMs / 2). */
  claimEveryMs?: number;
  deadLetterStream?: string;
  log?: LogFn;
  registry?: Registry;
  /**
   * Called after PostgreSQL committed a batch and before it is acknowledged (observability; the tests kill the
   * worker here, the worst moment). A rejection is treated like a failed commit: the batch is retried.
   */
  onCommitted?: (ids: string[]) => void | Promise<void>;
}

export interface BillingWorkerStats {
  consumer: string;
  committed: number;
  duplicatesInBatch: number;
  invalid: number;
  reclaimed: number;
  trimmed: number;
  errors: number;
  lastError: string | undefined;
}

type StreamEntry = [id: string, fields: string[] | null];

function intOpt(v: number | undefined, dflt: number, field: string, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < min) {
    throw new TokmeterTypeError(`billing worker: expected an integer ≥ ${min} for ${field}, got ${String(v)}`);
  }
  return v;
}

export class BillingWorker {
  readonly consumer: string;
  readonly stream: string;
  readonly group: string;
  readonly db: BillingDb;
  readonly registry: Registry;
  private readonly redis: Redis;
  private readonly ownsRedis: boolean;
  private readonly ownsDb: boolean;
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly claimEveryMs: number;
  private readonly deadLetter: string;
  private readonly log: LogFn;
  private readonly metrics: ReturnType<typeof workerMetrics>;
  private readonly onCommitted: BillingWorkerOptions['onCommitted'];
  private readonly s: BillingWorkerStats;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private blocked = false;
  private groupReady = false;
  private wake: (() => void) | undefined;

  constructor(o: BillingWorkerOptions) {
    if (!o || (typeof o.redis !== 'string' && !(o.redis instanceof Redis))) {
      throw new TokmeterTypeError('billing worker: expected redis (a redis:// URL or an ioredis client)');
    }
    if (typeof o.postgres !== 'string' && !(o.postgres instanceof BillingDb)) {
      throw new TokmeterTypeError('billing worker: expected postgres (a postgres:// URL or a BillingDb)');
    }
    this.batchSize = intOpt(o.batchSize, 500, 'batchSize');
    this.blockMs = intOpt(o.blockMs, 2000, 'blockMs');
    this.claimIdleMs = intOpt(o.claimIdleMs, 30_000, 'claimIdleMs');
    this.claimEveryMs = intOpt(o.claimEveryMs, Math.max(1, Math.floor(this.claimIdleMs / 2)), 'claimEveryMs');
    this.stream = o.stream ?? DEFAULT_STREAM;
    this.group = o.group ?? DEFAULT_GROUP;
    this.consumer = o.consumer ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.deadLetter = o.deadLetterStream ?? `${this.stream}:dead`;
    this.ownsRedis = typeof o.redis === 'string';
    this.redis =
      typeof o.redis === 'string'
        ? new Redis(o.redis, {
            enableOfflineQueue: false,
            maxRetriesPerRequest: 0,
            commandTimeout: this.blockMs + 5000,
            connectTimeout: 2000,
            retryStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 6), 2000),
          })
        : o.redis;
    if (this.ownsRedis) this.redis.on('error', () => undefined); // each failing call is logged by the loop
    this.ownsDb = typeof o.postgres === 'string';
    this.db = typeof o.postgres === 'string' ? new BillingDb(o.postgres, { table: o.table }) : o.postgres;
    this.log = o.log ?? stderrLog;
    this.registry = o.registry ?? new PromRegistry();
    this.metrics = workerMetrics(this.registry);
    this.onCommitted = o.onCommitted;
    this.s = {
      consumer: this.consumer,
      committed: 0,
      duplicatesInBatch: 0,
      invalid: 0,
      reclaimed: 0,
      trimmed: 0,
      errors: 0,
      lastError: undefined,
    };
  }

  stats(): BillingWorkerStats {
    return { ...this.s };
  }

  /** Start the loop (idempotent). The returned promise settles when the worker stops. */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.loop;
  }

  /**
   * Stop after the batch in hand is committed and acknowledged (a blocked read is interrupted), then release the
   * connections the worker opened.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (this.blocked && this.ownsRedis) this.redis.disconnect(); // interrupts XREADGROUP BLOCK; nothing in hand
    await this.loop;
    if (this.ownsRedis) this.redis.disconnect();
    if (this.ownsDb) await this.db.close();
  }

  private async ensureGroup(): Promise<void> {
    if (this.groupReady) return;
    try {
      // From id 0: a group created after events were written (or re-created after Redis lost it) bills them all;
      // the ledger ignores ids it already has.
      await this.redis.xgroup('CREATE', this.stream, this.group, '0', 'MKSTREAM');
      this.log('info', 'billing worker: created consumer group', { stream: this.stream, group: this.group });
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
    this.groupReady = true;
  }

  private async waitReady(): Promise<void> {
    if (this.redis.status === 'ready' || this.redis.status === 'wait') return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, 3000); // not ready by then: the loop reports the error and retries
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.redis.once('ready', done);
    });
  }

  private async run(): Promise<void> {
    await this.waitReady();
    this.log('info', 'billing worker: started', { consumer: this.consumer, stream: this.stream, group: this.group });
    let recovering = true; // our own pending entries first
    let lastClaim = 0;
    let backoff = 100;
    while (!this.stopping) {
      try {
        await this.ensureGroup();
        if (Date.now() - lastClaim >= this.claimEveryMs) {
          await this.claim();
          lastClaim = Date.now();
        }
        let entries: StreamEntry[];
        if (recovering) {
          entries = await this.read('0', false);
          if (entries.length === 0) recovering = false;
        } else {
          entries = await this.read('>', true);
        }
        if (entries.length > 0) await this.process(entries);
        backoff = 100;
      } catch (err) {
        if (this.stopping) break;
        const e = err as Error;
        if (/NOGROUP/.test(e.message)) this.groupReady = false;
        this.s.errors++;
        this.s.lastError = e.message;
        this.metrics.errors.inc({
          where: /postgres|relation|SQL|ECONNREFUSED.*5432/i.test(e.message) ? 'postgres' : 'loop',
        });
        this.log('warn', 'billing worker: retrying after an error; nothing was acknowledged', {
          err: e.message,
          retryInMs: backoff,
        });
        recovering = true;
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, backoff);
        });
        this.wake = undefined;
        backoff = Math.min(5000, backoff * 2);
      }
    }
    this.log('info', 'billing worker: stopped', { ...this.s });
  }

  private async read(from: '0' | '>', block: boolean): Promise<StreamEntry[]> {
    const args: (string | number)[] = ['GROUP', this.group, this.consumer, 'COUNT', this.batchSize];
    if (block) args.push('BLOCK', this.blockMs);
    args.push('STREAMS', this.stream, from);
    this.blocked = block;
    try {
      const res = (await this.redis.call('XREADGROUP', ...args)) as unknown[] | null;
      if (!res || res.length === 0) return [];
      // RESP3 (ioredis 6's default) answers a map, flattened to [stream, entries]; RESP2 [[stream, entries]].
      return (typeof res[0] === 'string' ? res[1] : (res[0] as unknown[])[1]) as StreamEntry[];
    } finally {
      this.blocked = false;
    }
  }

  /** Take over entries idle on other consumers; drop consumers that are long gone. */
  private async claim(): Promise<void> {
    let cursor = '0-0';
    for (let round = 0; round < 100 && !this.stopping; round++) {
      const [next, entries] = (await this.redis.call(
        'XAUTOCLAIM',
        this.stream,
        this.group,
        this.consumer,
        this.claimIdleMs,
        cursor,
        'COUNT',
        this.batchSize,
      )) as [string, StreamEntry[], string[]?];
      if (entries.length > 0) {
        this.s.reclaimed += entries.length;
        this.metrics.written.inc({ outcome: 'reclaimed' }, entries.length);
        this.log('warn', 'billing worker: took over events left pending by another consumer', {
          count: entries.length,
        });
        await this.process(entries);
      }
      cursor = next;
      if (cursor === '0-0') break;
    }
    const consumers = (await this.redis.call('XINFO', 'CONSUMERS', this.stream, this.group)) as unknown[][];
    for (const c of consumers) {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < c.length; i += 2) info.set(String(c[i]), c[i + 1]);
      const name = String(info.get('name'));
      if (name !== this.consumer && Number(info.get('pending')) === 0 && Number(info.get('idle')) > 86_400_000) {
        await this.redis.call('XGROUP', 'DELCONSUMER', this.stream, this.group, name);
      }
    }
  }

  private async process(entries: StreamEntry[]): Promise<void> {
    const records = new Map<string, UsageRecord>();
    const invalid: { entry: StreamEntry; error: string }[] = [];
    let trimmed = 0;
    for (const entry of entries) {
      const [, fields] = entry;
      if (fields === null) {
        trimmed++;
        continue;
      }
      let ev: string | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'event') ev = fields[i + 1];
      try {
        if (ev === undefined) throw new Error("stream entry has no 'event' field");
        const { record } = decodeUsageEvent(ev);
        if (records.has(record.id)) this.s.duplicatesInBatch++;
        else records.set(record.id, record);
      } catch (err) {
        invalid.push({ entry, error: (err as Error).message });
      }
    }
    const list = [...records.values()];
    await this.db.commit(list);
    await this.onCommitted?.(list.map((r) => r.id));
    for (const { entry, error } of invalid) {
      await this.redis.xadd(
        this.deadLetter,
        'MAXLEN',
        '~',
        100_000,
        '*',
        'source',
        entry[0],
        'error',
        error,
        ...(entry[1] ?? []),
      );
      this.log('error', 'billing worker: invalid usage event moved to the dead-letter stream', {
        entry: entry[0],
        error,
        deadLetter: this.deadLetter,
      });
    }
    if (trimmed > 0) {
      this.log(
        'error',
        'billing worker: events were trimmed from the stream before they were billed (MAXLEN too small)',
        {
          count: trimmed,
        },
      );
    }
    await this.redis.xack(this.stream, this.group, ...entries.map((e) => e[0]));
    this.s.committed += list.length;
    this.s.invalid += invalid.length;
    this.s.trimmed += trimmed;
    this.metrics.written.inc({ outcome: 'committed' }, list.length);
    if (invalid.length) this.metrics.written.inc({ outcome: 'invalid' }, invalid.length);
    if (trimmed) this.metrics.written.inc({ outcome: 'trimmed' }, trimmed);
  }
}

/** Start a billing worker; resolves once it is running. `stop()` ends it gracefully. */
export async function startBillingWorker(
  options: BillingWorkerOptions,
): Promise<{ worker: BillingWorker; done: Promise<void>; stop(): Promise<void> }> {
  const worker = new BillingWorker(options);
  const done = worker.start();
  done.catch(() => undefined);
  return { worker, done, stop: () => worker.stop() };
}
