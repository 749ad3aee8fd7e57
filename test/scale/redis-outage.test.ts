/**
 * Redis unreachable: fail closed (default) refuses with LimiterUnavailableError, fail open admits; both count the
 * metric and log a line; both recover when Redis is back. Uses a private Redis on its own port, so stopping it
 * disturbs nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimiterUnavailableError } from '../../src/usage/index.js';
import type { LogLevel } from '../../src/scale/log.js';
import { RedisLimiter } from '../../src/scale/redis-limiter.js';
import { privateRedis, RUN_REDIS, uniquePrefix, waitFor } from './redis-helper.js';

const req = { key: 'k', tokens: 10, cost: 0n, rates: { tokensPerMinute: 1000 } };

async function counter(l: RedisLimiter, outcome: string): Promise<number> {
  const m = await l.registry.getSingleMetric('tokmeter_limiter_redis_unavailable_total')!.get();
  return m.values.find((v) => v.labels.outcome === outcome && v.labels.op === 'admit')?.value ?? 0;
}

describe.runIf(RUN_REDIS)('RedisLimiter with Redis down', () => {
  let server: ReturnType<typeof privateRedis>;
  beforeAll(() => {
    server = privateRedis();
  });
  afterAll(() => server?.dispose());

  it('fails closed by default and fails open when asked, with a metric and a log line either way', async () => {
    const lines: { level: LogLevel; msg: string }[][] = [[], []];
    const closed = new RedisLimiter({
      redis: server.url,
      prefix: uniquePrefix('out'),
      log: (level, msg) => lines[0]!.push({ level, msg }),
    });
    const open = new RedisLimiter({
      redis: server.url,
      prefix: uniquePrefix('out'),
      onUnavailable: 'open',
      log: (level, msg) => lines[1]!.push({ level, msg }),
    });
    try {
      await waitFor(() => closed.redis.status === 'ready' && open.redis.status === 'ready', 5000, 'connections');
      await closed.admit(req);
      await open.admit(req);

      server.ctl('stop');
      const err = await closed.admit(req).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LimiterUnavailableError);
      expect((err as LimiterUnavailableError).code).toBe('ERR_LIMITER_UNAVAILABLE');
      await expect(closed.admit(req)).rejects.toBeInstanceOf(LimiterUnavailableError);
      expect(await counter(closed, 'refused')).toBe(2);
      expect(lines[0]!.filter((l) => l.level === 'warn' && /fail closed/.test(l.msg))).toHaveLength(1); // throttled

      const g = await open.admit(req); // admitted without Redis
      g.tokens.settle(5); // tracks nothing, never throws
      await g.settled();
      expect(await counter(open, 'admitted')).toBe(1);
      expect(lines[1]!.some((l) => l.level === 'warn' && /fail open/.test(l.msg))).toBe(true);

      server.ctl('start');
      await waitFor(
        () =>
          closed.admit(req).then(
            () => true,
            () => false,
          ),
        10_000,
        'the fail-closed limiter to admit again after Redis came back',
      );
      expect(lines[0]!.some((l) => /reachable again/.test(l.msg))).toBe(true);
    } finally {
      await closed.close();
      await open.close();
    }
  });

  it('refuses (fail closed) when Redis was never reachable', async () => {
    const l = new RedisLimiter({ redis: 'redis://127.0.0.1:1', log: () => undefined });
    try {
      await expect(l.admit(req)).rejects.toBeInstanceOf(LimiterUnavailableError);
    } finally {
      await l.close();
    }
  });
});
