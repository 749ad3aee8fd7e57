/** RedisLimiter: the in-memory limiter's semantics (RPM, TPM, retryAfter, settle, exact budgets) in Redis. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BudgetExceededError, RateLimitError } from '../../src/usage/errors.js';
import { RateLimiter } from '../../src/usage/rate-limiter.js';
import type { BudgetPeriod } from '../../src/usage/budget.js';
import type { LimitGrant } from '../../src/usage/index.js';
import { RedisLimiter } from '../../src/scale/redis-limiter.js';
import { RUN_REDIS, redisUrl, uniquePrefix } from './redis-helper.js';

const budgets = (m: Partial<Record<BudgetPeriod, bigint>>) => new Map(Object.entries(m)) as Map<BudgetPeriod, bigint>;

async function refusal(p: Promise<unknown>): Promise<RateLimitError | BudgetExceededError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RateLimitError || err instanceof BudgetExceededError) return err;
    throw err;
  }
  throw new Error('expected a refusal, but the request was admitted');
}

describe.runIf(RUN_REDIS)('RedisLimiter', () => {
  let redis: Redis;
  const limiters: RedisLimiter[] = [];
  const make = (o: Partial<ConstructorParameters<typeof RedisLimiter>[0]> = {}) => {
    const l = new RedisLimiter({ redis, prefix: uniquePrefix('lim'), log: () => undefined, ...o });
    limiters.push(l);
    return l;
  };
  beforeAll(() => {
    redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    for (const l of limiters) await l.close();
    await redis.quit();
  });

  it('holds RPM and says when to retry', async () => {
    const l = make();
    const rates = { requestsPerMinute: 3 };
    for (let i = 0; i < 3; i++) await l.admit({ key: 'a', tokens: 0, cost: 0n, rates });
    const e = await refusal(l.admit({ key: 'a', tokens: 0, cost: 0n, rates }));
    expect(e).toBeInstanceOf(RateLimitError);
    expect((e as RateLimitError).limit).toBe('rpm');
    expect((e as RateLimitError).retryAfterMs).toBeGreaterThan(59_000);
    expect((e as RateLimitError).retryAfterMs).toBeLessThanOrEqual(60_000);
    await l.admit({ key: 'b', tokens: 0, cost: 0n, rates }); // other keys are independent
    const zero = await refusal(l.admit({ key: 'c', tokens: 0, cost: 0n, rates: { requestsPerMinute: 0 } }));
    expect((zero as RateLimitError).retryAfterMs).toBe(Infinity);
  });

  it('reserves TPM at admission and refunds at settlement; a request larger than the limit can never fit', async () => {
    const l = make();
    const rates = { tokensPerMinute: 100 };
    const g = await l.admit({ key: 'k', tokens: 60, cost: 0n, rates });
    const e = await refusal(l.admit({ key: 'k', tokens: 50, cost: 0n, rates }));
    expect((e as RateLimitError).limit).toBe('tpm');
    expect((e as RateLimitError).retryAfterMs).toBeGreaterThan(0);
    expect((e as RateLimitError).retryAfterMs).toBeLessThanOrEqual(60_000);
    g.tokens.settle(20); // used 20 of 60: 40 come back
    g.tokens.settle(60); // idempotent: the first call wins
    await g.settled();
    await l.admit({ key: 'k', tokens: 50, cost: 0n, rates }); // 70 in use
    const never = await refusal(l.admit({ key: 'k', tokens: 101, cost: 0n, rates }));
    expect((never as RateLimitError).retryAfterMs).toBe(Infinity);
    await refusal(l.admit({ key: 'k', tokens: 31, cost: 0n, rates }));
    await l.admit({ key: 'k', tokens: 30, cost: 0n, rates }); // exactly 100
  });

  it('slides the window (entries older than windowMs no longer count)', async () => {
    const l = make({ windowMs: 300 });
    const rates = { requestsPerMinute: 1, tokensPerMinute: 10 };
    await l.admit({ key: 'w', tokens: 10, cost: 0n, rates });
    const e = await refusal(l.admit({ key: 'w', tokens: 10, cost: 0n, rates }));
    expect((e as RateLimitError).retryAfterMs).toBeLessThanOrEqual(300);
    await new Promise((r) => setTimeout(r, 350));
    await l.admit({ key: 'w', tokens: 10, cost: 0n, rates });
  });

  it('gives the same answers as the in-memory RateLimiter for the same sequence', async () => {
    const l = make();
    const rates = { requestsPerMinute: 25, tokensPerMinute: 1000 };
    const mem = new RateLimiter(() => rates);
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const open: { m: { settle(n: number): void }; r: LimitGrant; max: number }[] = [];
    const outcomes: [string, string][] = [];
    for (let i = 0; i < 40; i++) {
      if (open.length > 0 && rnd(3) === 0) {
        const x = open.splice(rnd(open.length), 1)[0]!;
        const used = rnd(x.max + 1);
        x.m.settle(used);
        x.r.tokens.settle(used);
        await x.r.settled();
        continue;
      }
      const tokens = rnd(300);
      let a = 'ok';
      let b = 'ok';
      let m: { settle(n: number): void } | undefined;
      let r: LimitGrant | undefined;
      try {
        m = mem.admit('s', tokens);
      } catch (err) {
        a = (err as RateLimitError).limit;
      }
      try {
        const g = await l.admit({ key: 's', tokens, cost: 0n, rates });
        r = g;
      } catch (err) {
        b = (err as RateLimitError).limit;
      }
      outcomes.push([a, b]);
      if (m && r) open.push({ m, r, max: tokens });
    }
    expect(outcomes.filter(([a]) => a !== 'ok').length).toBeGreaterThan(3); // the sequence does hit the limits
    expect(outcomes.map(([, b]) => b)).toEqual(outcomes.map(([a]) => a));
  });

  it('admits exactly up to the TPM limit under concurrency', async () => {
    const l = make();
    const rates = { tokensPerMinute: 200 };
    const res = await Promise.allSettled(
      Array.from({ length: 50 }, () => l.admit({ key: 'c', tokens: 10, cost: 0n, rates })),
    );
    expect(res.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
  });

  it('keeps budgets exact above 2^53 pico-units and refunds at settlement', async () => {
    const l = make();
    const big = 10n ** 16n; // > 2^53: a double would round
    const b = budgets({ day: big + 5n, month: big * 10n });
    const g = await l.admit({ key: 'm', tokens: 0, cost: big, rates: {}, budgets: b });
    const e = await refusal(l.admit({ key: 'm', tokens: 0, cost: 6n, rates: {}, budgets: b }));
    expect(e).toBeInstanceOf(BudgetExceededError);
    expect((e as BudgetExceededError).period).toBe('day');
    expect((e as BudgetExceededError).spent).toBe(big);
    expect((e as BudgetExceededError).budget).toBe(big + 5n);
    await l.admit({ key: 'm', tokens: 0, cost: 5n, rates: {}, budgets: b }); // exactly at the budget
    g.budget.settle(big - 100n); // actual cost lower: 100 back
    await g.settled();
    await l.admit({ key: 'm', tokens: 0, cost: 100n, rates: {}, budgets: b });
    await refusal(l.admit({ key: 'm', tokens: 0, cost: 1n, rates: {}, budgets: b }));
  });

  it('refunds the budget reservation when the rate limit refuses', async () => {
    const l = make();
    const b = budgets({ hour: 100n });
    await l.admit({ key: 'r', tokens: 0, cost: 60n, rates: { requestsPerMinute: 1 }, budgets: b });
    await refusal(l.admit({ key: 'r', tokens: 0, cost: 40n, rates: { requestsPerMinute: 1 }, budgets: b }));
    // had the refused request kept its 40, this one (40) would not fit
    await l.admit({ key: 'r', tokens: 0, cost: 40n, rates: {}, budgets: b });
  });

  it('charges custom usage without a check', async () => {
    const l = make();
    const b = budgets({ day: 100n });
    await l.charge('u', 150n, b);
    await refusal(l.admit({ key: 'u', tokens: 0, cost: 0n, rates: {}, budgets: b })); // already over
  });

  it('seeds a budget period from the ledger once, when Redis does not know it', async () => {
    let calls = 0;
    const l = make({
      loadSpend: async () => {
        calls++;
        return 90n;
      },
    });
    const b = budgets({ month: 100n });
    await l.admit({ key: 's', tokens: 0, cost: 10n, rates: {}, budgets: b });
    await refusal(l.admit({ key: 's', tokens: 0, cost: 1n, rates: {}, budgets: b }));
    expect(calls).toBe(1);
  });

  it('sets expiries on every key it writes', async () => {
    const prefix = uniquePrefix('ttl');
    const l = make({ prefix, windowMs: 5000 });
    await l.admit({
      key: 'x y',
      tokens: 5,
      cost: 1n,
      rates: { requestsPerMinute: 10, tokensPerMinute: 100 },
      budgets: budgets({ hour: 10n }),
    });
    const keys = await redis.keys(`${prefix}:*`);
    expect(keys.length).toBe(4); // req, tok, tokn, one budget period
    for (const k of keys) {
      const ttl = await redis.pttl(k);
      expect(ttl, k).toBeGreaterThan(0);
      if (!k.includes(':b:')) expect(ttl, k).toBeLessThanOrEqual(6000);
      else expect(ttl, k).toBeLessThanOrEqual(2 * 3_600_000);
    }
  });
});
