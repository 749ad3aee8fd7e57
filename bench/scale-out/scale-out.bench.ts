/**
 * Scale-out path throughput and latency, each against a named baseline measured in the same run.
 *
 *   TOKMETER_TEST_REDIS_URL=redis://… TOKMETER_TEST_PG_URL=postgres://… npx tsx bench/scale-out/scale-out.bench.ts \
 *     [events=20000] [checks=10000] [concurrency=32]
 *
 * Limiter (per admission: one EVALSHA of the admit script; every check also settles, as the Meter does), on two
 * Redis configurations (docs/DEPLOYMENT.md, "Redis persistence"):
 *   limits Redis   appendfsync everysec: TOKMETER_BENCH_LIMITS_REDIS_URL, else a private one this bench starts with
 *                  scripts/start-redis.sh (TOKMETER_REDIS_FSYNC=everysec) and stops — the recommended deployment;
 *   events Redis   TOKMETER_TEST_REDIS_URL as it is (scripts/start-redis.sh: appendfsync always) — one Redis for
 *                  limits and events, where every admission waits for an fsync.
 * Rows per Redis:
 *   PING (floor)                   p50 / p99 of a PING on the limiter's connection, sampled alternately with the
 *                                  admissions below: the round trip + scheduling under the same CPU contention
 *   SET (one write)                the cost of one persisted write (the fsync floor under appendfsync always)
 *   admit, 1 in flight             the latency the limiter adds to admission (p50 / p99) — target < 2 ms; and the
 *                                  client CPU per check (admit + settle) and Redis's time per script (commandstats)
 *   admit, N in flight             checks/s with N admissions in flight on one connection; p99 under that load
 *   Keys: one hot key (RPM + TPM + a day budget — every structure the script touches) and 1,000 keys.
 * In-memory RateLimiter: the in-process baseline (no round trip).
 * Events:
 *   PostgresLedger                baseline: the single-server path, spool → PostgreSQL
 *   RedisStreamSink → worker → PG  spool → XADD (pipelined batches) → XREADGROUP → INSERT … ON CONFLICT → XACK;
 *                                 events/s end to end (time until the ledger holds every event), and XADD alone
 * The load average is printed at the start and the end of each part: on a shared machine, p99 is the scheduler's
 * as much as Redis's — read the limiter's p99 against the PING floor of the same run. Results: README.md here.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
const LIMITS_REDIS = process.env.TOKMETER_BENCH_LIMITS_REDIS_URL;
const PG = process.env.TOKMETER_TEST_PG_URL;
const EVENTS = Number(process.argv[2] ?? 20_000);
const CHECKS = Number(process.argv[3] ?? 10_000);
const CONC = Number(process.argv[4] ?? 32);
const tag = `bench${process.pid}`;
const START_REDIS = fileURLToPath(new URL('../../scripts/start-redis.sh', import.meta.url));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const ms = (x: number) => `${x.toFixed(3)} ms`;
const rate = (n: number, t: number) => `${Math.round(n / (t / 1000)).toLocaleString('en-US')}/s`;
const load = () =>
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} on ${cpus().length} CPUs`;

function row(name: string, cells: Record<string, string>): void {
  console.log(
    `  ${name.padEnd(44)} ${Object.entries(cells)
      .map(([k, v]) => `${k} ${v}`)
      .join('   ')}`,
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** A private Redis with appendfsync everysec (a limits-only Redis), or undefined when redis-server is missing. */
async function startLimitsRedis(): Promise<{ url: string; stop(): void } | undefined> {
  const port = String(await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'tm-bench-redis-'));
  const env = { ...process.env, TOKMETER_REDIS_PORT: port, TOKMETER_REDIS_DIR: dir, TOKMETER_REDIS_FSYNC: 'everysec' };
  const ctl = (action: string) =>
    execFileSync('bash', [START_REDIS, action], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    ctl('start');
  } catch (err) {
    console.log(`  (no private limits Redis: ${(err as Error).message.split('\n')[0]})`);
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop() {
      ctl('stop');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const RATES = { requestsPerMinute: 10_000_000, tokensPerMinute: 1_000_000_000 };
const BUDGETS = new Map<BudgetPeriod, bigint>([['day', 10n ** 18n]]);

async function limiterOn(url: string, label: string): Promise<void> {
  const limiter = new RedisLimiter({ redis: url, prefix: tag, commandTimeoutMs: 5000, log: () => undefined });
  const redis = limiter.redis;
  try {
    while (redis.status !== 'ready') await new Promise((r) => setTimeout(r, 10));
    const [, fsync] = (await redis.config('GET', 'appendfsync')) as string[];
    const [, aof] = (await redis.config('GET', 'appendonly')) as string[];
    console.log(`\n${label}: ${url} (appendonly ${aof}, appendfsync ${fsync}); ${load()}`);
    // warm up: script load (EVAL once per connection), JIT, connection
    for (let i = 0; i < 200; i++) {
      const g = await limiter.admit({ key: `w${i % 10}`, tokens: 100, cost: 1000n, rates: RATES, budgets: BUDGETS });
      g.tokens.settle(60);
      g.budget.settle(600n);
    }
    const ping: number[] = [];
    const set: number[] = [];
    for (let i = 0; i < Math.min(CHECKS, 2000); i++) {
      let s = performance.now();
      await redis.ping();
      ping.push(performance.now() - s);
      s = performance.now();
      await redis.set(`${tag}:set`, i);
      set.push(performance.now() - s);
    }
    row('PING (floor)', { p50: ms(pct(ping, 50)), p99: ms(pct(ping, 99)) });
    row(`SET (one persisted write, fsync ${fsync})`, { p50: ms(pct(set, 50)), p99: ms(pct(set, 99)) });
    for (const [what, keys] of [
      ['one hot key', 1],
      ['1,000 keys', 1000],
    ] as const) {
      // sequential: the latency one admission waits for, PING sampled alternately under the same contention
      await redis.config('RESETSTAT');
      const lat: number[] = [];
      const floor: number[] = [];
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < CHECKS; i++) {
        let s = performance.now();
        await redis.ping();
        floor.push(performance.now() - s);
        s = performance.now();
        const g = await limiter.admit({
          key: `k${i % keys}`,
          tokens: 100,
          cost: 1000n,
          rates: RATES,
          budgets: BUDGETS,
        });
        lat.push(performance.now() - s);
        g.tokens.settle(60);
        g.budget.settle(600n);
      }
      const t1 = performance.now();
      const cpu = process.cpuUsage(c0);
      const stats = await redis.info('commandstats');
      const evalsha = /cmdstat_evalsha:calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/.exec(stats);
      row(`admit, 1 in flight, ${what}`, {
        'admit p50': ms(pct(lat, 50)),
        p99: ms(pct(lat, 99)),
        'PING p99 (same loop)': ms(pct(floor, 99)),
        'client CPU/check (+PING)': `${Math.round((cpu.user + cpu.system) / CHECKS)} µs`,
        'Redis µs/script': evalsha?.[2] ?? '?',
        rate: rate(CHECKS, t1 - t0),
      });
      // concurrent: CONC admissions in flight
      const lat2: number[] = [];
      let next = 0;
      const c2 = process.cpuUsage();
      const t2 = performance.now();
      await Promise.all(
        Array.from({ length: CONC }, async () => {
          while (next < CHECKS) {
            const i = next++;
            const s = performance.now();
            const g = await limiter.admit({
              key: `c${i % keys}`,
              tokens: 100,
              cost: 1000n,
              rates: RATES,
              budgets: BUDGETS,
            });
            lat2.push(performance.now() - s);
            g.tokens.settle(60);
            g.budget.settle(600n);
          }
        }),
      );
      const t3 = performance.now();
      const cpu2 = process.cpuUsage(c2);
      row(`admit, ${CONC} in flight, ${what}`, {
        rate: rate(CHECKS, t3 - t2),
        'admit p50': ms(pct(lat2, 50)),
        p99: ms(pct(lat2, 99)),
        'client CPU/check': `${Math.round((cpu2.user + cpu2.system) / CHECKS)} µs`,
      });
    }
    console.log(`  (end: ${load()})`);
  } finally {
    const keys = await redis.keys(`${tag}:*`).catch(() => [] as string[]);
    if (keys.length) await redis.del(...keys);
    await limiter.close();
  }
}

async function limiterBench(): Promise<void> {
  console.log(`\nlimiter checks (${CHECKS} per row; admit + settle, as the Meter does)`);
  {
    const mem = new RateLimiter(() => RATES);
    const t0 = performance.now();
    for (let i = 0; i < CHECKS; i++) mem.admit('hot', 100).settle(60);
    row('in-memory RateLimiter (baseline)', { rate: rate(CHECKS, performance.now() - t0) });
  }
  const own = LIMITS_REDIS ? undefined : await startLimitsRedis();
  const limitsUrl = LIMITS_REDIS ?? own?.url;
  try {
    if (limitsUrl) await limiterOn(limitsUrl, 'limits Redis (the recommended deployment)');
  } finally {
    own?.stop();
  }
  await limiterOn(REDIS, 'events Redis, also used for limits (TOKMETER_TEST_REDIS_URL)');
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
  console.log(`\nevents (${EVENTS} records, appended 100 at a time as a busy server's requests complete); ${load()}`);
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
    console.log(`  (end: ${load()})`);
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
