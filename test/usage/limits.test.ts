import { describe, expect, it } from 'vitest';
import { Meter, RateLimiter, RateLimitError, BudgetExceededError, BudgetTracker } from '../../src/usage/index.js';
import { FakeModel, DEMO_PRICES } from './fixtures/fake-model.js';

describe('RateLimiter (fake clock)', () => {
  it('enforces RPM with an exact retryAfterMs', () => {
    let now = 1_000_000;
    const rl = new RateLimiter(
      () => ({ requestsPerMinute: 2 }),
      60_000,
      () => now,
    );
    rl.admit('k', 0);
    now += 10_000;
    rl.admit('k', 0);
    now += 5_000;
    const err = (() => {
      try {
        rl.admit('k', 0);
      } catch (e) {
        return e as RateLimitError;
      }
    })();
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err!.limit).toBe('rpm');
    expect(err!.retryAfterMs).toBe(45_000); // first request leaves the window 60 s after it was admitted
    now += 45_000;
    expect(() => rl.admit('k', 0)).not.toThrow();
    expect(() => rl.admit('other', 0)).not.toThrow(); // per key
  });

  it('reserves the maximum, refunds the unused part, and computes retryAfterMs for TPM', () => {
    let now = 0;
    const rl = new RateLimiter(
      () => ({ tokensPerMinute: 1000 }),
      60_000,
      () => now,
    );
    const a = rl.admit('k', 600);
    now = 1000;
    expect(() => rl.admit('k', 500)).toThrow(RateLimitError);
    a.settle(100); // used 100 of 600
    expect(rl.tokensInWindow('k')).toBe(100);
    const b = rl.admit('k', 500);
    b.settle(500);
    now = 2000;
    try {
      rl.admit('k', 600);
      expect.unreachable();
    } catch (e) {
      const err = e as RateLimitError;
      expect(err.limit).toBe('tpm');
      // 600 in use; need 600 more => the first entry (100 at t=0) is not enough, the second (500 at t=1000) is
      expect(err.retryAfterMs).toBe(1000 + 60_000 - 2000);
    }
    expect(() => rl.admit('k', 2000)).toThrow(expect.objectContaining({ retryAfterMs: Infinity }));
    now = 61_001;
    expect(() => rl.admit('k', 1000)).not.toThrow();
  });

  it('settle is idempotent and a late settle after the window passed does not corrupt the sum', () => {
    let now = 0;
    const rl = new RateLimiter(
      () => ({ tokensPerMinute: 100 }),
      60_000,
      () => now,
    );
    const r = rl.admit('k', 100);
    now = 70_000;
    expect(rl.tokensInWindow('k')).toBe(0);
    r.settle(10);
    r.settle(90);
    expect(rl.tokensInWindow('k')).toBe(0);
  });
});

describe('Meter limits under concurrency', () => {
  it('100 parallel requests never exceed the key TPM (reserve at admission, refund at the end)', async () => {
    const model = new FakeModel({ stopAfter: 5 }); // asks for up to 50, uses 5
    const TPM = 1000;
    const meter = new Meter({ prices: DEMO_PRICES, limits: { perKey: { tokensPerMinute: TPM } }, cache: false });
    const m = meter.wrap(model);
    let peak = 0;
    const runs = [];
    // 100 concurrent requests, started in staggered waves so some finish (and refund) while others arrive
    for (let i = 0; i < 100; i++) {
      const run = m.generate('one two three four five six seven eight nine ten', {
        key: 'k',
        maxNewTokens: 50,
        seed: i,
      });
      run.admitted.then(
        () => (peak = Math.max(peak, meter.limiter.tokensInWindow('k'))),
        () => undefined,
      );
      runs.push(run);
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
    }
    const settled = await Promise.allSettled(runs.map((r) => r.result));
    const ok = settled.filter((s) => s.status === 'fulfilled');
    const refused = settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason);
    // every request reserves 10 + 50 = 60 tokens: at most floor(1000 / 60) = 16 can be in flight at once;
    // refunds (each uses 15) let more in as earlier ones finish.
    expect(peak).toBeLessThanOrEqual(TPM);
    for (const e of refused) expect(e).toBeInstanceOf(RateLimitError);
    expect(refused.length).toBeGreaterThan(0);
    const used = ok.reduce(
      (n, s) => n + (s as PromiseFulfilledResult<{ usage: { totalTokens: number } }>).value.usage.totalTokens,
      0,
    );
    expect(used).toBeLessThanOrEqual(TPM);
    expect(meter.limiter.tokensInWindow('k')).toBe(used); // all reservations settled to actual usage
    expect(model.generateCalls).toBe(ok.length); // refused requests never reached the model
    // refunds matter: without them only 16 would fit
    expect(ok.length).toBeGreaterThan(16);
  });

  it('TPM holds when all 100 are admitted in the same tick (no refunds possible yet)', async () => {
    const model = new FakeModel({ stopAfter: 1, stepMs: 5 });
    const meter = new Meter({ prices: DEMO_PRICES, limits: { perKey: { tokensPerMinute: 600 } }, cache: false });
    const m = meter.wrap(model);
    const runs = Array.from({ length: 100 }, () => m.generate('a b c d e f g h i j', { key: 'k', maxNewTokens: 50 }));
    const adm = await Promise.allSettled(runs.map((r) => r.admitted));
    expect(adm.filter((a) => a.status === 'fulfilled')).toHaveLength(10); // 600 / 60
    await Promise.allSettled(runs.map((r) => r.result));
  });

  it('RPM is exact under concurrency and other keys are unaffected', async () => {
    const meter = new Meter({
      prices: DEMO_PRICES,
      limits: { perKey: { requestsPerMinute: 7 }, keys: { vip: { requestsPerMinute: 50 } } },
      cache: false,
    });
    const m = meter.wrap(new FakeModel({ stopAfter: 1 }));
    const a = await Promise.allSettled(
      Array.from({ length: 30 }, () => m.generate('hi', { key: 'k', maxNewTokens: 2 }).result),
    );
    const b = await Promise.allSettled(
      Array.from({ length: 30 }, () => m.generate('hi', { key: 'vip', maxNewTokens: 2 }).result),
    );
    expect(a.filter((s) => s.status === 'fulfilled')).toHaveLength(7);
    expect(b.filter((s) => s.status === 'fulfilled')).toHaveLength(30);
    const err = a.find((s) => s.status === 'rejected') as PromiseRejectedResult;
    expect(err.reason).toBeInstanceOf(RateLimitError);
    expect(err.reason.retryAfterMs).toBeGreaterThan(0);
    expect(err.reason.retryAfterMs).toBeLessThanOrEqual(60_000);
  });
});

describe('budgets', () => {
  it('reserves the maximum cost under concurrency and never overspends', async () => {
    // each request: 10 prompt + up to 100 new; max cost = 10*0.5e-6 + 100*1.5e-6 = 0.000155 USD; budget 0.001 => 6 at once
    const model = new FakeModel({ stopAfter: 100, stepMs: 1 });
    const meter = new Meter({ prices: DEMO_PRICES, limits: { perKey: { budget: { day: '0.001' } } }, cache: false });
    const m = meter.wrap(model);
    const res = await Promise.allSettled(
      Array.from({ length: 20 }, () => m.generate('a b c d e f g h i j', { key: 'k', maxNewTokens: 100 }).result),
    );
    const ok = res.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ record: { cost: bigint } }>[];
    expect(ok).toHaveLength(6);
    const spent = ok.reduce((s, r) => s + r.value.record.cost, 0n);
    expect(spent).toBeLessThanOrEqual(1_000_000_000n);
    expect(meter.budgets.spent('k', 'day')).toBe(spent);
    const refused = res.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(BudgetExceededError);
    expect(refused.reason.code).toBe('ERR_BUDGET_EXCEEDED');
    expect(refused.reason.period).toBe('day');
  });

  it('refunds the unused reservation so cheaper-than-max requests keep going', async () => {
    const model = new FakeModel({ stopAfter: 1 }); // max 0.000155, real 10*0.5e-6 + 1*1.5e-6 = 0.0000065
    const meter = new Meter({ prices: DEMO_PRICES, limits: { perKey: { budget: { month: '0.0002' } } }, cache: false });
    const m = meter.wrap(model);
    let ok = 0;
    for (let i = 0; i < 40; i++) {
      try {
        await m.generate('a b c d e f g h i j', { key: 'k', maxNewTokens: 100 }).result;
        ok++;
      } catch (e) {
        expect(e).toBeInstanceOf(BudgetExceededError);
        break;
      }
    }
    // spent + 0.000155 <= 0.0002 while spent <= 0.000045 => 7 requests (7*6.5 = 45.5 > 45 → the 8th is refused)
    expect(ok).toBe(7);
  });

  it('periods reset on UTC boundaries and spend is loaded from the ledger once per period', async () => {
    let now = Date.UTC(2026, 0, 1, 23, 59, 0);
    let loads = 0;
    const tracker = new BudgetTracker(
      () => new Map([['day', 100n]]),
      async () => {
        loads++;
        return 90n;
      },
      () => now,
    );
    await tracker.prepare('k');
    await tracker.prepare('k');
    expect(loads).toBe(1);
    expect(() => tracker.reserve('k', 11n)).toThrow(BudgetExceededError);
    tracker.reserve('k', 10n).settle(10n);
    now = Date.UTC(2026, 0, 2, 0, 0, 1);
    await tracker.prepare('k');
    expect(loads).toBe(2);
  });
});
