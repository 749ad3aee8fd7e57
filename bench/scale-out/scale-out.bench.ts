/**
 * Scale-out path throughput and latency, each against a named baseline measured in the same run.
 *
 *   TOKMETER_TEST_REDIS_URL=redis://… TOKMETER_TEST_PG_URL=postgres://… npx tsx bench/scale-out/scale-out.bench.ts \
 *     [events=20000] [checks=10000] [concurrency=32]
 *
 * Limiter (per admission: one EVALSHA of the admit script; every check also settles, as the Meter does):
 *   in-memory RateLimiter         baseline: admit + settle, one process
 *   RedisLimiter, 1 in flight     the latency the limiter adds to admission (p50 / p99 of admit) — target < 2 ms
 *   RedisLimiter, N in flight     checks/s with ioredis pipelining concurrent commands; p99 under that load
 *   Keys: one hot key (RPM + TPM + a day budget — the worst case: three structures per script) and 1,000 keys.
 * Events:
 *   PostgresLedger                baseline: the single-server path, spool → PostgreSQL
 *   RedisStreamSink → worker → PG  spool → XADD (pipelined batches) → XREADGROUP → INSERT … ON CONFLICT → XACK;
 *                                 events/s end to end (time until the ledger holds every event), and XADD alone
 * Numbers depend on the machine; the run prints its own. Redis and PostgreSQL on loopback.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { BillingDb } from '../../src/scale/billing-db.js';
import { BillingWorker } from '../../src/scale/billing-worker.js';
import { RedisLimiter } from '../../src/scale/redis-limiter.js';
import { RedisStreamSink } from '../../src/scale/redis-sink.js';
import type { BudgetPeriod } from '../../src/usage/budget.js';
import { PostgresLedger } from '../../src/usage/postgres-ledger.js';
import { RateLimiter } from '../../src/usage/rate-limiter.js';
import type { UsageRecord } from '../../src/usage/types.js';

const REDIS = process.env.TOKMETER_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG = process.env.TOKMETER_TEST_PG_URL;
const EVENTS = Number(process.argv[2] ?? 20_000);
const CHECKS = Number(process.argv[3] ?? 10_000);
const CONC = Number(process.argv[4] ?? 32);
const tag = `bench${process.pid}`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const ms = (x: number) => `${x.toFixed(3)} ms`;
const rate = (n: number, t: number) => `${Math.round(n / (t / 1000)).toLocaleString('en-US')}/s`;

function row(name: string, cells: Record<string, string>): void {
  console.log(
    `  ${name.padEnd(44)} ${Object.entries(cells)
      .map(([k, v]) => `${k} ${v}`)
      .join('   ')}`,
  );
}

async function limiterBench(): Promise<void> {
  console.log(`\nlimiter checks (${CHECKS} per row; admit + settle)`);
  const rates = { requestsPerMinute: 10_000_000, tokensPerMinute: 1_000_000_000 };
  const budgets = new Map<BudgetPeriod, bigint>([['day', 10n ** 18n]]);
  {
    const mem = new RateLimiter(() => rates);
    const t0 = performance.now();
    for (let i = 0; i < CHECKS; i++) mem.admit('hot', 100).settle(60);
    row('in-memory RateLimiter (baseline)', { rate: rate(CHECKS, performance.now() - t0) });
  }
  const limiter = new RedisLimiter({ redis: REDIS, prefix: tag, commandTimeoutMs: 5000, log: () => undefined });
  while (limiter.redis.status !== 'ready') await new Promise((r) => setTimeout(r, 10));
  const [, fsync] = (await limiter.redis.config('GET', 'appendfsync')) as string[];
  console.log(`  (Redis appendfsync = ${fsync}; with 'always' every admission waits for an fsync)`);
  await limiter.redis.config('RESETSTAT');
  for (const [label, keys] of [
    ['one hot key', 1],
    ['1,000 keys', 1000],
  ] as const) {
    // sequential: the latency one admission waits for
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < CHECKS; i++) {
      const s = performance.now();
      const g = await limiter.admit({ key: `k${i % keys}`, tokens: 100, cost: 1000n, rates, budgets });
      lat.push(performance.now() - s);
      g.tokens.settle(60);
      g.budget.settle(600n);
    }
    const t1 = performance.now();
    row(`RedisLimiter, 1 in flight, ${label}`, {
      rate: rate(CHECKS, t1 - t0),
      'admit p50': ms(pct(lat, 50)),
      p99: ms(pct(lat, 99)),
    });
    // concurrent: CONC admissions in flight
    const lat2: number[] = [];
    let next = 0;
    const t2 = performance.now();
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (next < CHECKS) {
          const i = next++;
          const s = performance.now();
          const g = await limiter.admit({ key: `c${i % keys}`, tokens: 100, cost: 1000n, rates, budgets });
          lat2.push(performance.now() - s);
          g.tokens.settle(60);
          g.budget.settle(600n);
        }
      }),
    );
    const t3 = performance.now();
    row(`RedisLimiter, ${CONC} in flight, ${label}`, {
      rate: rate(CHECKS, t3 - t2),
      'admit p50': ms(pct(lat2, 50)),
      p99: ms(pct(lat2, 99)),
    });
  }
  // Server-side cost of the scripts, free of client scheduling noise (the machine may be shared).
  const stats = await limiter.redis.info('commandstats');
  const evalsha = /cmdstat_evalsha:calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/.exec(stats);
  if (evalsha) row('Redis time per script call (server side)', { calls: evalsha[1]!, 'usec/call': evalsha[2]! });
  await limiter.close();
}

function records(n: number, run: string): UsageRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${run}-${i}`,
    timestamp: Date.now(),
    key: `tenant-${i % 50}`,
    model: 'demo',
    promptTokens: 100,
    cachedTokens: 0,
    completionTokens: 50,
    totalTokens: 150,
    finishReason: 'stop',
    latencyMs: 20,
    cacheHit: false,
    custom: {},
    cost: 125_000_000n,
    currency: 'USD',
    priceVersion: 'bench',
  }));
}

async function eventsBench(): Promise<void> {
  if (!PG) {
    console.log('\nevents: skipped (set TOKMETER_TEST_PG_URL)');
    return;
  }
  console.log(`\nevents (${EVENTS} records, appended 100 at a time as a busy server's requests complete)`);
  const tables = [`bench_base_${process.pid}`, `bench_scale_${process.pid}`];
  const dirs = [0, 1].map(() => mkdtempSync(path.join(tmpdir(), 'tm-bench-')));
  try {
    {
      const ledger = new PostgresLedger(PG, { spoolDir: dirs[0]!, table: tables[0] });
      const t0 = performance.now();
      const recs = records(EVENTS, 'base');
      for (let i = 0; i < EVENTS; i += 100) await ledger.append(recs.slice(i, i + 100));
      await ledger.flush();
      row('PostgresLedger: spool → PG (baseline)', { rate: rate(EVENTS, performance.now() - t0) });
      await ledger.close();
    }
    const stream = `${tag}:usage`;
    const sink = new RedisStreamSink({ redis: REDIS, stream, spoolDir: dirs[1]!, batchSize: 500 });
    const db = new BillingDb(PG, { table: tables[1] });
    await db.commit([]); // connect
    await db.count();
    const worker = new BillingWorker({
      redis: REDIS,
      postgres: db,
      stream,
      batchSize: 500,
      blockMs: 50,
      log: () => undefined,
    });
    void worker.start();
    const recs = records(EVENTS, 'scale');
    const t0 = performance.now();
    for (let i = 0; i < EVENTS; i += 100) await sink.append(recs.slice(i, i + 100));
    await sink.flush();
    const t1 = performance.now();
    while ((await db.count()) < EVENTS) await new Promise((r) => setTimeout(r, 20));
    const t2 = performance.now();
    row('RedisStreamSink: spool → XADD', { rate: rate(EVENTS, t1 - t0) });
    row('… → worker → PG (end to end)', { rate: rate(EVENTS, t2 - t0), 'drain after last XADD': ms(t2 - t1) });
    await worker.stop();
    await sink.close();
    const r = new Redis(REDIS);
    await r.del(stream);
    await r.quit();
    await db.close();
  } finally {
    const c = new pg.Client({ connectionString: PG });
    await c.connect();
    for (const t of tables) await c.query(`DROP TABLE IF EXISTS ${t}`);
    await c.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

console.log(`scale-out bench — Redis ${REDIS}, node ${process.version}`);
await limiterBench();
await eventsBench();
const r = new Redis(REDIS);
const keys = await r.keys(`${tag}:*`);
if (keys.length) await r.del(...keys);
await r.quit();
