/**
 * Dashboard benchmark: 100,000 ledger records in SQLite; how long the dashboard's data API takes to answer per
 * period, and (with Chromium) how long the page takes to first render. The totals are checked, so the run fails if
 * the aggregation is wrong at this size; the times are printed.
 *
 *   npx tsx bench/dashboard/run.ts
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import type { Summary } from '../../src/dashboard/index.js';
import type { Meter, SqliteLedger } from '../../src/usage/index.js';
import { sqliteParams } from '../../src/usage/columns.js';
import { sqliteInsertSql } from '../../src/usage/sql.js';
import {
  ADMIN_KEY,
  browserSkipReason,
  dashboardApp,
  launchChromium,
  sqliteMeter,
  tempDir,
} from '../../test/dashboard/helpers.js';

// Browser globals inside page.evaluate() callbacks: the test project is typed without the DOM library.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any, performance: any;
type PerformanceNavigationTiming = any;
type PerformanceResourceTiming = any;

const N = 100_000;
const KEYS = 20;
const NOW = Date.now();
const DAY = 86_400_000;
let tmp: ReturnType<typeof tempDir>;
let meter: Meter;
let ledger: SqliteLedger;
let app: Awaited<ReturnType<typeof dashboardApp>>;
const expected = { prompt: 0, completion: 0, cost: 0n };

async function seed(): Promise<void> {
  tmp = tempDir('dashboard-perf');
  ({ meter, ledger } = sqliteMeter(tmp.dir));
  await ledger.count(); // opens the ledger: its schema and indexes exist
  // Seed straight into the ledger's table in one transaction (the spool path is not what is measured here).
  const t0 = performance.now();
  const db = new Database(path.join(tmp.dir, 'usage.db'));
  const insert = db.prepare(sqliteInsertSql('usage_records'));
  db.transaction(() => {
    for (let i = 0; i < N; i++) {
      const prompt = 50 + (i % 400);
      const cached = i % 3 === 0 ? 32 : 0;
      const completion = 10 + (i % 90);
      const cost = BigInt(prompt - cached) * 500_000n + BigInt(cached) * 250_000n + BigInt(completion) * 1_500_000n;
      expected.prompt += prompt;
      expected.completion += completion;
      expected.cost += cost;
      // Spread over the last 23 h 59 min so the default 24 h view holds every record.
      const ts = NOW - 60_000 - Math.floor((i / N) * (DAY - 120_000));
      insert.run(
        sqliteParams({
          id: `seed-${i}`,
          timestamp: ts,
          key: `tenant-${i % KEYS}`,
          model: i % 4 === 0 ? 'large' : 'small',
          promptTokens: prompt,
          cachedTokens: cached,
          completionTokens: completion,
          totalTokens: prompt + completion,
          finishReason: 'stop',
          latencyMs: 20 + (i % 200),
          cacheHit: false,
          custom: {},
          cost,
          currency: 'USD',
          priceVersion: 'test',
        }),
      );
    }
  })();
  db.close();
  console.log(`[dashboard perf] seeded ${N} records in ${Math.round(performance.now() - t0)} ms`);
  app = await dashboardApp({ meter });
}

async function dataApi(): Promise<void> {
  const times: string[] = [];
  for (const [label, span] of [
    ['24 h (cold)', DAY],
    ['24 h', DAY],
    ['1 h', DAY / 24],
    ['7 d', 7 * DAY],
    ['30 d', 30 * DAY],
  ] as const) {
    const t0 = performance.now();
    const res = await app.inject({
      url: `/dashboard/api/summary?from=${NOW - span}&to=${NOW}`,
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    const ms = performance.now() - t0;
    assert.equal(res.statusCode, 200, res.body);
    const s = res.json() as Summary;
    times.push(
      `${label}: ${ms.toFixed(0)} ms (ledger ${s.queryMs} ms, ${s.series.t.length} buckets, ${res.body.length} bytes)`,
    );
    if (span >= DAY) {
      assert.equal(s.totals.requests, N);
      assert.equal(s.totals.promptTokens, expected.prompt);
      assert.equal(s.totals.completionTokens, expected.completion);
      assert.equal(s.totals.costPico, expected.cost.toString());
      assert.equal(s.keys.length, KEYS);
      assert.equal(s.recent.length, 50);
    }
  }
  console.log(`[dashboard perf] /dashboard/api/summary with ${N} records:\n  ${times.join('\n  ')}`);
}

async function firstRender(): Promise<void> {
  const skip = await browserSkipReason();
  if (skip) {
    console.log(`[dashboard perf] first render skipped: ${skip}`);
    return;
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/dashboard`;
  const browser = await launchChromium(path.join(tmp.dir, 'profile'));
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.fill('#admin-key', ADMIN_KEY);
    await Promise.all([page.waitForNavigation(), page.press('#admin-key', 'Enter')]);
    await page.waitForFunction(() => document.body.dataset.firstRenderMs !== undefined, null, { timeout: 30_000 });
    const afterLogin = Number(await page.evaluate(() => document.body.dataset.firstRenderMs));
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.firstRenderMs !== undefined, null, { timeout: 30_000 });
    const reload = Number(await page.evaluate(() => document.body.dataset.firstRenderMs));
    const phases = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const api = performance
        .getEntriesByType('resource')
        .find((e: { name: string }) => e.name.includes('/api/summary')) as PerformanceResourceTiming | undefined;
      return {
        html: Math.round(nav.responseEnd),
        domContentLoaded: Math.round(nav.domContentLoadedEventEnd),
        apiStart: Math.round(api?.startTime ?? NaN),
        apiEnd: Math.round(api?.responseEnd ?? NaN),
      };
    });
    const shown = await page.getAttribute('#totals dd[data-field="requests"]', 'data-value');
    assert.equal(Number(shown), N);
    console.log(
      `[dashboard perf] first render with ${N} records: ${reload} ms from navigation to drawn charts and tables ` +
        `(${afterLogin} ms including the sign-in POST and redirect); page ${phases.html} ms, scripts run by ` +
        `${phases.domContentLoaded} ms, summary API ${phases.apiStart}–${phases.apiEnd} ms`,
    );
  } finally {
    await browser.close();
  }
}

try {
  await seed();
  await dataApi();
  await firstRender();
} finally {
  await app?.close();
  await meter?.close();
  tmp?.cleanup();
}
