/**
 * The dashboard's routes without a browser: off without an admin key, nothing for a wrong key, and every number
 * equal to the ledger's own report (the function /v1/usage answers with).
 */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDashboard, type Summary } from '../../src/dashboard/index.js';
import { bucketQuantile, liveBetween, liveStatsFromMetrics } from '../../src/dashboard/live.js';
import { addRows, chooseBucket } from '../../src/dashboard/data.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { reportToJson, type Meter, type SqliteLedger } from '../../src/usage/index.js';
import { ADMIN_KEY, dashboardApp, sqliteMeter, tempDir } from './helpers.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 27, 12, 0, 0); // "now" of the test clock
let clock = T0;
let tmp: ReturnType<typeof tempDir>;
let meter: Meter;
let ledger: SqliteLedger;
let app: Awaited<ReturnType<typeof dashboardApp>>;
const bearer = { authorization: `Bearer ${ADMIN_KEY}` };

beforeAll(async () => {
  tmp = tempDir('dashboard-api');
  ({ meter, ledger } = sqliteMeter(tmp.dir, {
    now: () => clock,
    limits: {
      perKey: { tokensPerMinute: 1_000_000, requestsPerMinute: 600 },
      keys: { acme: { budget: { day: '0.01', month: '1.00' } } },
    },
  }));
  // 60 records over the last 30 hours: two tenants, two models, some cached tokens.
  for (let i = 0; i < 60; i++) {
    clock = T0 - 30 * HOUR + i * 30 * 60_000 + 1234;
    await meter.record({
      key: i % 3 === 0 ? 'beta' : 'acme',
      model: i % 4 === 0 ? 'large' : 'small',
      promptTokens: 100 + i,
      cachedTokens: i % 5 === 0 ? 40 : 0,
      completionTokens: 10 + (i % 7),
    });
  }
  clock = T0;
  app = await dashboardApp({ meter, ledger, tenants: () => ['acme', 'beta', 'gamma'], now: () => clock });
});

afterAll(async () => {
  await app?.close();
  await meter?.close();
  tmp?.cleanup();
});

async function summary(query: string): Promise<Summary> {
  const res = await app.inject({ method: 'GET', url: `/dashboard/api/summary${query}`, headers: bearer });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Summary;
}

describe('access', () => {
  it('is off without an admin key (nothing registered: 404)', async () => {
    const bare = Fastify();
    expect(await registerDashboard(bare, { adminKey: undefined, meter })).toBe(false);
    expect(await registerDashboard(bare, { adminKey: '', meter })).toBe(false);
    await bare.ready();
    expect((await bare.inject('/dashboard')).statusCode).toBe(404);
    expect((await bare.inject('/dashboard/api/summary')).statusCode).toBe(404);
    await bare.close();
  });

  it("refuses a short admin key and a ledger other than the Meter's", async () => {
    await expect(registerDashboard(Fastify(), { adminKey: 'short', meter })).rejects.toThrow(/at least 16 characters/);
    const otherDir = tempDir('dashboard-other');
    const other = sqliteMeter(otherDir.dir); // never opened: nothing to close
    await expect(registerDashboard(Fastify(), { adminKey: ADMIN_KEY, meter, ledger: other.ledger })).rejects.toThrow(
      /Meter's ledger/,
    );
    otherDir.cleanup();
  });

  it('a wrong or missing key sees nothing: 401 and no data on every data route', async () => {
    const headers = [
      {},
      { authorization: 'Bearer wrong-key-wrong-key-wrong' },
      { cookie: 'tokmeter_dashboard=forged' },
    ];
    for (const h of headers) {
      for (const url of [
        '/dashboard',
        '/dashboard/api/summary',
        '/dashboard/api/models',
        '/dashboard/api/live',
        '/dashboard/assets/app.js',
      ]) {
        const res = await app.inject({ method: 'GET', url, headers: h });
        expect(res.statusCode, `${url} ${JSON.stringify(h)}`).toBe(401);
        expect(res.body).not.toMatch(/acme|beta|small|large|promptTokens/);
        if (url !== '/dashboard') expect(res.json().error).toMatchObject({ param: null, code: 'invalid_api_key' });
      }
    }
    const page = await app.inject('/dashboard');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('name="key"'); // the sign-in form
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('logs in with the key (cookie session), refuses a wrong key, and logs out', async () => {
    const wrong = await app.inject({
      method: 'POST',
      url: '/dashboard/login',
      payload: 'key=nope-nope-nope-nope',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('Wrong admin key');
    expect(wrong.headers['set-cookie']).toBeUndefined();

    const ok = await app.inject({
      method: 'POST',
      url: '/dashboard/login',
      payload: `key=${ADMIN_KEY}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/dashboard');
    const setCookie = String(ok.headers['set-cookie']);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).not.toContain(ADMIN_KEY);
    const cookie = setCookie.split(';')[0]!;
    const page = await app.inject({ url: '/dashboard', headers: { cookie } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('/dashboard/assets/app.js');
    expect((await app.inject({ url: '/dashboard/api/summary', headers: { cookie } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/dashboard/assets/app.js', headers: { cookie } })).statusCode).toBe(200);

    const out = await app.inject({ method: 'POST', url: '/dashboard/logout', headers: { cookie } });
    expect(out.statusCode).toBe(303);
    expect((await app.inject({ url: '/dashboard/api/summary', headers: { cookie } })).statusCode).toBe(401);
  });

  it('throttles wrong keys per client address: the attacker is locked out, the right key elsewhere signs in', async () => {
    const throttled = await dashboardApp({ meter, maxFailedLoginsPerMinute: 2 });
    const post = (key: string, remoteAddress: string) =>
      throttled.inject({ method: 'POST', url: '/dashboard/login', payload: { key }, remoteAddress });
    const attacker = '203.0.113.7';
    expect((await post('wrong-wrong-wrong-wrong', attacker)).statusCode).toBe(401);
    expect((await post('wrong-wrong-wrong-wrong', attacker)).statusCode).toBe(401);
    const locked = await post('wrong-wrong-wrong-wrong', attacker);
    expect(locked.statusCode).toBe(429);
    const retry = Number(locked.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect((await post(ADMIN_KEY, attacker)).statusCode).toBe(429); // the attacker's address waits out its minute
    const admin = await post(ADMIN_KEY, '198.51.100.20');
    expect(admin.statusCode).toBe(303); // another address signs in
    expect(String(admin.headers['set-cookie'])).toContain('tokmeter_dashboard=');
    // IPv6 clients count by their /64: another address in the attacker's /64 is the same client.
    for (let i = 0; i < 2; i++) await post('wrong-wrong-wrong-wrong', `2001:db8:1:2::${i + 1}`);
    expect((await post(ADMIN_KEY, '2001:db8:1:2:ffff::9')).statusCode).toBe(429);
    expect((await post(ADMIN_KEY, '2001:db8:1:3::1')).statusCode).toBe(303);
    await throttled.close();
  });

  it('throttles wrong bearer keys on the data API the same way (429 + Retry-After)', async () => {
    const throttled = await dashboardApp({ meter, maxFailedLoginsPerMinute: 2 });
    const get = (key: string, remoteAddress: string) =>
      throttled.inject({ url: '/dashboard/api/live', headers: { authorization: `Bearer ${key}` }, remoteAddress });
    const attacker = '203.0.113.8';
    expect((await get('wrong-wrong-wrong-wrong', attacker)).statusCode).toBe(401);
    expect((await get('wrong-wrong-wrong-wrong', attacker)).statusCode).toBe(401);
    const locked = await get(ADMIN_KEY, attacker);
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(locked.json().error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_failed_attempts' });
    // Sign-in from the same address is locked too: one budget for every way of presenting the key.
    const login = await throttled.inject({
      method: 'POST',
      url: '/dashboard/login',
      payload: { key: ADMIN_KEY },
      remoteAddress: attacker,
    });
    expect(login.statusCode).toBe(429);
    expect((await get(ADMIN_KEY, '198.51.100.21')).statusCode).toBe(200);
    await throttled.close();
  });

  it('a global budget far above one client bounds guessing from many addresses', async () => {
    const throttled = await dashboardApp({ meter, maxFailedLoginsPerMinute: 2, maxFailedLoginsPerMinuteTotal: 3 });
    const post = (key: string, remoteAddress: string) =>
      throttled.inject({ method: 'POST', url: '/dashboard/login', payload: { key }, remoteAddress });
    for (const a of ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
      expect((await post('wrong-key-wrong-key', a)).statusCode).toBe(401);
    expect((await post(ADMIN_KEY, '192.0.2.4')).statusCode).toBe(429);
    await throttled.close();
  });

  it('names the bad field of a query (400)', async () => {
    const bad = async (q: string, field: string) => {
      const res = await app.inject({ url: `/dashboard/api/summary${q}`, headers: bearer });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({
        error: { message: expect.any(String), type: 'invalid_request_error', param: field, code: 'invalid_request' },
      });
    };
    await bad('?group_by=day', 'group_by');
    await bad('?from=yesterday', 'from');
    await bad(`?from=${T0}&to=${T0 - 1}`, 'from');
    await bad('?limit=0', 'limit');
    await bad('?key=%20x', 'key');
  });
});

describe('numbers equal the ledger report', () => {
  const period = `?from=${T0 - 24 * HOUR}&to=${T0}`;

  it('totals, keys, models and the chart series all equal meter.report()', async () => {
    const s = await summary(period);
    const from = T0 - 24 * HOUR;
    const byKey = await meter.report({ groupBy: 'key', from, to: T0 });
    const byModel = await meter.report({ groupBy: 'model', from, to: T0 });
    const total = reportToJson([addRows('total', byKey)])[0]!;
    expect(total.requests).toBeGreaterThan(0);
    expect(s.totals).toEqual(total);
    expect(reportToJson([addRows('total', byModel)])[0]).toEqual(total);
    // Keys table: one row per tenant with usage, plus tenants without (gamma), exactly the report's rows.
    expect(s.keys.map((k) => k.key)).toEqual(['acme', 'beta', 'gamma']);
    for (const r of reportToJson(byKey)) expect(s.keys.find((k) => k.key === r.group)!.usage).toEqual(r);
    expect(s.keys.find((k) => k.key === 'gamma')!.usage.requests).toBe(0);
    const models = await app.inject({ url: `/dashboard/api/models${period}`, headers: bearer });
    expect(models.statusCode).toBe(200);
    expect(models.json()).toEqual({ currency: 'USD', models: reportToJson(byModel) });
    // Series: 24 hourly buckets whose sums are the totals.
    expect(s.bucket.ms).toBe(HOUR);
    expect(s.series.t).toHaveLength(24);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sum(s.series.promptTokens)).toBe(total.promptTokens);
    expect(sum(s.series.cachedTokens)).toBe(total.cachedTokens);
    expect(sum(s.series.completionTokens)).toBe(total.completionTokens);
    expect(sum(s.series.requests)).toBe(total.requests);
    expect(s.series.costPico.reduce((a, c) => a + BigInt(c), 0n).toString()).toBe(total.costPico);
    // One bucket checked against its own report.
    const i = 5;
    const one = addRows('b', await meter.report({ groupBy: 'model', from: s.series.t[i]!, to: s.series.t[i]! + HOUR }));
    expect(s.series.promptTokens[i]).toBe(one.promptTokens);
    expect(s.series.costPico[i]).toBe(one.cost.toString());
    expect(s.options).toEqual({ keys: ['acme', 'beta'] });
    // With a key selected, the key list still offers every key.
    expect((await summary(`${period}&key=beta`)).options).toEqual({ keys: ['acme', 'beta'] });
  });

  it("filters by key and by model with the report's own filters", async () => {
    const from = T0 - 24 * HOUR;
    for (const [q, filter] of [
      ['&key=acme', { key: 'acme' }],
      ['&model=large', { model: 'large' }],
      ['&key=beta&model=small', { key: 'beta', model: 'small' }],
    ] as const) {
      const s = await summary(period + q);
      const rows = await meter.report({ groupBy: 'model', from, to: T0, ...filter });
      expect(s.totals).toEqual(reportToJson([addRows('total', rows)])[0]);
      expect(
        s.recent!.every(
          (r) => (!('key' in filter) || r.key === filter.key) && (!('model' in filter) || r.model === filter.model),
        ),
      ).toBe(true);
      if ('key' in filter) expect(s.keys.map((k) => k.key)).toEqual([filter.key]);
      const keyRows = await meter.report({ groupBy: 'key', from, to: T0, ...filter });
      for (const r of reportToJson(keyRows)) expect(s.keys.find((k) => k.key === r.group)!.usage).toEqual(r);
    }
  });

  it('uses UTC day buckets for long periods (one report by day)', async () => {
    const from = T0 - 10 * 24 * HOUR;
    const s = await summary(`?from=${from}&to=${T0}`);
    expect(s.bucket.ms).toBe(24 * HOUR);
    const byDay = await meter.report({ groupBy: 'day', from, to: T0 });
    const nonZero = s.series.t
      .map((t, i) => [new Date(t).toISOString().slice(0, 10), s.series.promptTokens[i]!] as const)
      .filter(([, v]) => v > 0);
    expect(nonZero).toEqual(byDay.map((r) => [r.group, r.promptTokens]));
  });

  it('budgets are the ledger spend of the current period; headroom comes from the rate limiter', async () => {
    const s = await summary(period);
    const acme = s.keys.find((k) => k.key === 'acme')!;
    const day = acme.budgets.find((b) => b.period === 'day')!;
    const dayStart = Date.UTC(2026, 10, 27);
    expect(day.spentPico).toBe((await ledger.spend('acme', dayStart, dayStart + 24 * HOUR)).toString());
    expect(day.limit).toBe('0.01');
    expect(day.percent).toBeCloseTo((Number(BigInt(day.spentPico)) / 1e10) * 100, 1);
    expect(acme.budgets.map((b) => b.period).sort()).toEqual(['day', 'month']);
    expect(s.keys.find((k) => k.key === 'beta')!.budgets).toEqual([]);
    expect(acme.rateLimit.tokensPerMinute).toBe(1_000_000);
    expect(acme.rateLimit.tokensHeadroom).toBe(1_000_000 - meter.limiter.tokensInWindow('acme'));
    expect(acme.rateLimit.requestsPerMinute).toBe(600);
    meter.limiter.admit('acme', 0);
    expect(meter.limiter.requestsInWindow('acme')).toBe(1);
    const again = await summary(period);
    expect(again.keys.find((k) => k.key === 'acme')!.rateLimit).toMatchObject({
      requestsInWindow: 1,
      requestsHeadroom: 599,
    });
  });

  it('lists the latest records newest first, limited', async () => {
    const s = await summary(`${period}&limit=7`);
    expect(s.recent).toHaveLength(7);
    const ts = s.recent!.map((r) => r.timestamp);
    expect([...ts].sort((a, b) => b - a)).toEqual(ts);
    const rec = await ledger.get(s.recent![0]!.id);
    expect(rec!.cost.toString()).toBe(s.recent![0]!.cost);
  });
});

describe('live figures', () => {
  it('interpolates quantiles inside buckets like histogram_quantile', () => {
    expect(
      bucketQuantile(0.5, [
        [0.1, 0],
        [0.2, 10],
        [Infinity, 10],
      ]),
    ).toBeCloseTo(0.15);
    expect(
      bucketQuantile(0.5, [
        [0.1, 0],
        [Infinity, 0],
      ]),
    ).toBeNull();
    expect(
      bucketQuantile(0.99, [
        [0.1, 1],
        [Infinity, 10],
      ]),
    ).toBe(0.1);
  });

  it('reads in-flight, queue depth, tokens/s and TTFT from the server metrics', async () => {
    const m = new ServerMetrics();
    let t = 1_000_000;
    const live = liveStatsFromMetrics(m, { now: () => t, sampleMs: 60_000 });
    try {
      m.inFlight.inc(3);
      m.queueDepth.inc(1);
      m.onRecord({ id: 'r1', key: 'acme', model: 'small', promptTokens: 100, completionTokens: 50 } as never);
      m.ttft.observe({ model: 'small', stream: 'false' }, 0.02);
      m.ttft.observe({ model: 'small', stream: 'true' }, 0.04);
      t += 5000;
      const l = await live();
      expect(l).toMatchObject({
        inFlight: 3,
        queueDepth: 1,
        tokensPerSecond: 30,
        completionTokensPerSecond: 10,
        windowSeconds: 5,
      });
      expect(l.ttftMs.count).toBe(2);
      expect(l.ttftMs.mean).toBe(30);
      expect(l.ttftMs.p50).toBeGreaterThan(10);
      expect(l.ttftMs.p50).toBeLessThanOrEqual(25);
    } finally {
      live.stop?.();
    }
  });

  it('liveBetween: no rate from one sample, no TTFT without requests', () => {
    const s = { t: 1, tokens: 5, completion: 1, ttftCount: 0, ttftSum: 0, buckets: [] as [number, number][] };
    expect(liveBetween(s, s, 0, 0)).toMatchObject({ tokensPerSecond: null, ttftMs: { count: 0, p50: null } });
  });

  it('the live route answers with the source, or says there is none', async () => {
    const res = await app.inject({ url: '/dashboard/api/live', headers: bearer });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ live: null, ledger: { connected: true } });
  });
});

describe('buckets and the bundle', () => {
  it('chooses at most 60 buckets', () => {
    expect(chooseBucket(0, HOUR)).toBe(60_000);
    expect(chooseBucket(0, 24 * HOUR)).toBe(HOUR);
    expect(chooseBucket(0, 7 * 24 * HOUR)).toBe(3 * HOUR);
    expect(chooseBucket(0, 30 * 24 * HOUR)).toBe(24 * HOUR);
  });

  it('the committed bundle is what scripts/build-dashboard.mjs builds now', async () => {
    const { readFileSync } = await import('node:fs');
    // @ts-expect-error -- plain ESM script without types
    const { buildDashboardAssets } = await import('../../scripts/build-dashboard.mjs');
    const built = (await buildDashboardAssets()) as string;
    expect(built === readFileSync(new URL('../../src/dashboard/vendor/assets.ts', import.meta.url), 'utf8')).toBe(true);
  });
});
