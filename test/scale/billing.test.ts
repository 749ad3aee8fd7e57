/**
 * The billing path: RedisStreamSink → Redis Stream → billing worker (consumer group) → PostgreSQL.
 *  - the same event delivered 1,000 times is stored and counted once;
 *  - several workers share a stream, an invalid event goes to the dead-letter stream;
 *  - crash: a server SIGKILLed mid-stream, the worker SIGKILLed between commit and XACK, Redis restarted (AOF):
 *    the ledger holds every completed request's record exactly once and its totals equal what clients saw.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BillingDb } from '../../src/scale/billing-db.js';
import { BillingWorker } from '../../src/scale/billing-worker.js';
import { encodeUsageEvent } from '../../src/scale/events.js';
import { RedisStreamSink } from '../../src/scale/redis-sink.js';
import { fixture, runChild } from './child.js';
import { record, tempDir } from './helpers.js';
import { pgUrl, privateRedis, redisUrl, RUN_REDIS_PG, uniquePrefix, waitFor } from './redis-helper.js';

const table = () => `scale_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

async function pendingCount(redis: Redis, stream: string, group = 'tokmeter-billing'): Promise<number> {
  const s = (await redis.call('XPENDING', stream, group)) as [number, ...unknown[]];
  return Number(s[0]);
}

describe.runIf(RUN_REDIS_PG)('billing worker', () => {
  let redis: Redis;
  const tables: string[] = [];
  const dbs: BillingDb[] = [];
  const db = (t: string) => {
    tables.push(t);
    const d = new BillingDb(pgUrl(), { table: t });
    dbs.push(d);
    return d;
  };
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    for (const d of dbs) await d.close();
    if (tables.length > 0) {
      const c = new pg.Client({ connectionString: pgUrl() });
      await c.connect();
      for (const t of tables) await c.query(`DROP TABLE IF EXISTS ${t}`);
      await c.end();
    }
    await redis.quit();
  });

  it('stores and counts an event delivered 1,000 times once', async () => {
    const stream = uniquePrefix('dup');
    const t = table();
    const ledger = db(t);
    const r = record(1);
    const other = record(2);
    const p = redis.pipeline();
    for (let i = 0; i < 1000; i++) p.xadd(stream, '*', 'id', r.id, 'event', encodeUsageEvent(r, 'tokmeter://t'));
    p.xadd(stream, '*', 'id', other.id, 'event', encodeUsageEvent(other, 'tokmeter://t'));
    await p.exec();
    const w = new BillingWorker({
      redis: redisUrl(),
      postgres: ledger,
      stream,
      batchSize: 128,
      blockMs: 100,
      log: () => undefined,
    });
    void w.start();
    try {
      const last = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1))[0]![0];
      await waitFor(
        async () => {
          const g = (await redis.call('XINFO', 'GROUPS', stream)) as unknown[][];
          if (!g[0]) return false; // the worker has not created its group yet
          const lastDelivered = g[0]![g[0]!.indexOf('last-delivered-id') + 1];
          return lastDelivered === last && (await pendingCount(redis, stream)) === 0;
        },
        30_000,
        'the worker to read and acknowledge all 1,001 entries',
      );
    } finally {
      await w.stop();
    }
    expect(await ledger.count()).toBe(2);
    expect([...(await ledger.idCounts()).values()]).toEqual([1, 1]);
    const rows = await ledger.reportNow({ groupBy: 'key', key: r.key });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.requests).toBe(1);
    expect(rows[0]!.cost).toBe(r.cost);
    expect(rows[0]!.totalTokens).toBe(r.totalTokens);
    expect(w.stats().duplicatesInBatch + w.stats().committed).toBeGreaterThanOrEqual(1001); // every delivery seen
    await redis.del(stream);
  });

  it('runs as several instances; an invalid event goes to the dead-letter stream and does not stall billing', async () => {
    const stream = uniquePrefix('multi');
    const t = table();
    const ledger = db(t);
    const sink = new RedisStreamSink({ redis: redisUrl(), stream, spoolDir: tempDir(), batchSize: 50 });
    const records = Array.from({ length: 300 }, (_, i) => record(10_000 + i));
    await sink.append(records.slice(0, 150));
    await redis.xadd(stream, '*', 'id', 'bad', 'event', '{"specversion":"1.0","type":"something.else"}');
    await sink.append(records.slice(150));
    await sink.flush({ timeoutMs: 20_000 });
    const workers = [1, 2, 3].map(
      (i) =>
        new BillingWorker({
          redis: redisUrl(),
          postgres: pgUrl(),
          table: t,
          stream,
          consumer: `w${i}`,
          batchSize: 20,
          blockMs: 100,
          log: () => undefined,
        }),
    );
    for (const w of workers) void w.start();
    try {
      await waitFor(
        async () => (await ledger.count().catch(() => 0)) === 300 && (await pendingCount(redis, stream)) === 0,
        30_000,
        '300 records',
      );
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await sink.close();
    }
    const stats = workers.map((w) => w.stats());
    expect(stats.reduce((a, s) => a + s.committed, 0)).toBe(300); // each event handled by exactly one worker
    expect(stats.filter((s) => s.committed > 0).length).toBeGreaterThan(1);
    expect(stats.reduce((a, s) => a + s.invalid, 0)).toBe(1);
    const dead = await redis.xrange(`${stream}:dead`, '-', '+');
    expect(dead).toHaveLength(1);
    expect(dead[0]![1].join(' ')).toMatch(/unsupported type/);
    expect([...(await ledger.idCounts()).values()].every((n) => n === 1)).toBe(true);
    await redis.del(stream, `${stream}:dead`);
  });

  it('survives SIGKILLed servers and workers and a Redis restart: every completed record exactly once', async () => {
    const server = privateRedis(); // restarted below; nobody else uses it
    const local = new Redis(server.url, { maxRetriesPerRequest: 1 });
    local.on('error', () => undefined);
    const t = table();
    const ledger = db(t);
    const stream = 'tokmeter:usage';
    const spool = tempDir();
    const base = { REDIS_URL: server.url, PG_URL: pgUrl(), TABLE: t, STREAM: stream };
    const seen = new Map<string, { tokens: number; cost: bigint }>();
    const collect = (lines: string[]) => {
      for (const l of lines) {
        const m = /^done (\S+) (\d+) (\d+)$/.exec(l);
        if (m) seen.set(m[1]!, { tokens: Number(m[2]), cost: BigInt(m[3]!) });
      }
    };
    let worker: BillingWorker | undefined;
    try {
      // 1. a worker that holds every batch 2 s between commit and XACK, and a server producing requests
      const wA = runChild(fixture('worker-child.ts'), { ...base, CONSUMER: 'worker-a', HOLD_MS: '2000', BATCH: '10' });
      const p1 = runChild(fixture('producer-child.ts'), { ...base, SPOOL: spool, NAME: 'p1', COUNT: '1000' });
      // 2. kill the worker mid-batch (committed, not acknowledged)
      await wA.waitLine(/^committed [1-9]/);
      wA.proc.kill('SIGKILL');
      await wA.exited;
      expect(await pendingCount(local, stream)).toBeGreaterThan(0);
      // 3. kill the server mid-stream once it completed 30 requests
      await p1.waitLine(/^done p1-29 /);
      await p1.waitLine(/^streaming p1-3[0-9]/);
      p1.proc.kill('SIGKILL');
      await p1.exited;
      collect(p1.lines);
      expect(seen.size).toBeGreaterThanOrEqual(30);
      // 4. restart the server on the same spool (replay), and restart Redis while it runs
      const p2 = runChild(fixture('producer-child.ts'), {
        ...base,
        SPOOL: spool,
        NAME: 'p2',
        COUNT: '60',
        DELAY_MS: '5',
      });
      await p2.waitLine(/^done p2-9 /);
      server.ctl('restart'); // graceful SHUTDOWN: the AOF has everything; the server's sink retries meanwhile
      // 5. a new worker takes over what worker-a left pending
      worker = new BillingWorker({
        redis: server.url,
        postgres: ledger,
        stream,
        consumer: 'worker-b',
        batchSize: 25,
        blockMs: 100,
        claimIdleMs: 1000,
        claimEveryMs: 300,
        log: () => undefined,
      });
      void worker.start();
      const end = await p2.exited;
      expect(end.code, p2.stderr.join('')).toBe(0);
      expect(p2.lines).toContain('closed');
      collect(p2.lines);
      await waitFor(
        async () =>
          (await ledger.count().catch(() => -1)) === seen.size &&
          (await pendingCount(local, stream).catch(() => -1)) === 0,
        60_000,
        `the ledger to hold all ${seen.size} completed records`,
      );
      expect(worker.stats().reclaimed).toBeGreaterThan(0); // worker-a's batch was taken over
    } finally {
      await worker?.stop();
      local.disconnect();
      server.dispose();
    }
    const counts = await ledger.idCounts();
    expect(new Set(counts.keys())).toEqual(new Set(seen.keys()));
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const rows = await ledger.reportNow({ groupBy: 'model' });
    expect(rows[0]!.requests).toBe(seen.size);
    expect(rows[0]!.totalTokens).toBe([...seen.values()].reduce((a, s) => a + s.tokens, 0));
    expect(rows[0]!.cost).toBe([...seen.values()].reduce((a, s) => a + s.cost, 0n));
  });
});
