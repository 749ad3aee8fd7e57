/**
 * `createRedisServices` behind a Meter, as `tokmeter serve --redis` wires it: limits through Redis, records as
 * events through the spool to the stream, a billing worker into PostgreSQL, and `meter.report()` from there.
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startBillingWorker } from '../../src/scale/billing-worker.js';
import { createRedisServices } from '../../src/scale/services.js';
import { BudgetExceededError, RateLimitError } from '../../src/usage/errors.js';
import { Meter } from '../../src/usage/meter.js';
import { doubleModel } from './fixtures/double-model.js';
import { tempDir } from './helpers.js';
import { pgUrl, privateRedis, redisUrl, RUN_REDIS, RUN_REDIS_PG, uniquePrefix } from './redis-helper.js';

describe.runIf(RUN_REDIS_PG)('createRedisServices behind a Meter', () => {
  it('limits, records, bills and reports', async () => {
    const stream = uniquePrefix('svc');
    const table = `scale_svc_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    const lines: string[] = [];
    const services = await createRedisServices(redisUrl(), {
      spoolDir: tempDir(),
      postgres: pgUrl(),
      table,
      stream,
      prefix: uniquePrefix('svc'),
      log: (_l, msg) => lines.push(msg),
    });
    const worker = await startBillingWorker({
      redis: redisUrl(),
      postgres: pgUrl(),
      table,
      stream,
      blockMs: 100,
      log: () => undefined,
    });
    const meter = new Meter({
      prices: { demo: { inputPer1M: '1', outputPer1M: '2' } },
      limits: { perKey: { requestsPerMinute: 3, budget: { day: '1' } } },
      ledger: services.sink,
      limiter: services.limiter,
      cache: false,
    });
    const model = meter.wrap(doubleModel(1));
    const key = uniquePrefix('tenant');
    try {
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await model.generate('a b c', { key, maxNewTokens: 4 }).result);
      await expect(model.generate('a b c', { key, maxNewTokens: 4 }).result).rejects.toBeInstanceOf(RateLimitError);
      const budgetKey = uniquePrefix('poor');
      await meter.record({ key: budgetKey, model: 'demo', promptTokens: 1_000_000 }); // 1.00 spent, charged in Redis
      await expect(model.generate('a', { key: budgetKey, maxNewTokens: 1 }).result).rejects.toBeInstanceOf(
        BudgetExceededError,
      );
      await meter.flush();
      const deadline = Date.now() + 20_000;
      let rows = await meter.report({ groupBy: 'key', key });
      while ((rows[0]?.requests ?? 0) < 3 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        rows = await meter.report({ groupBy: 'key', key });
      }
      expect(rows[0]!.requests).toBe(3);
      expect(rows[0]!.totalTokens).toBe(results.reduce((a, r) => a + r.usage.totalTokens, 0));
      expect(rows[0]!.cost).toBe(results.reduce((a, r) => a + r.record.cost, 0n));
    } finally {
      await meter.close();
      await services.close();
      await worker.stop();
      const c = new pg.Client({ connectionString: pgUrl() });
      await c.connect();
      await c.query(`DROP TABLE IF EXISTS ${table}`);
      await c.end();
    }
  });
});

describe.runIf(RUN_REDIS)('createRedisServices at start', () => {
  it('warns when every admission would wait for an fsync, and names the fix', async () => {
    const events = privateRedis(); // scripts/start-redis.sh: AOF, appendfsync always
    const limits = privateRedis();
    const admin = new Redis(limits.url, { maxRetriesPerRequest: 1 });
    try {
      const start = async (url: string, eventsUrl?: string) => {
        const lines: string[] = [];
        const s = await createRedisServices(url, {
          spoolDir: tempDir(),
          ...(eventsUrl ? { eventsUrl } : {}),
          log: (level, msg) => lines.push(`${level} ${msg}`),
        });
        await s.close();
        return lines;
      };
      // one Redis for both, fsync on every write: admissions wait for the disk
      const one = await start(events.url);
      expect(one.filter((l) => /^warn shared limiter: .*appendfsync always/.test(l))).toHaveLength(1);
      expect(one.join('\n')).toMatch(/own Redis with appendfsync everysec .*eventsUrl/);
      // the recommended split: limits on everysec, events on always — neither warning
      await admin.config('SET', 'appendfsync', 'everysec');
      const split = await start(limits.url, events.url);
      expect(split.filter((l) => l.startsWith('warn'))).toEqual([]);
    } finally {
      admin.disconnect();
      limits.dispose();
      events.dispose();
    }
  });
});
