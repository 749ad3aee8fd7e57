/**
 * The dashboard over a PostgreSQL ledger: the same summary contract (numbers equal `meter.report()`), and the latest
 * records read by PostgresRecentRecords. Skipped without TOKMETER_TEST_PG_URL (a failure under CI=true).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresRecentRecords, type Summary } from '../../src/dashboard/index.js';
import { addRows } from '../../src/dashboard/data.js';
import { Meter, PostgresLedger, reportToJson } from '../../src/usage/index.js';
import { IN_CI, PG_SKIP_REASON, PG_URL, uniqueTable, withClient } from '../usage/pg-helper.js';
import { ADMIN_KEY, dashboardApp, tempDir } from './helpers.js';

if (!PG_URL && IN_CI) throw new Error(`dashboard Postgres test cannot run under CI: ${PG_SKIP_REASON}`);

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 27, 12);
let clock = T0;

describe.skipIf(!PG_URL)('dashboard over a Postgres ledger', () => {
  const table = uniqueTable('dash');
  let tmp: ReturnType<typeof tempDir>;
  let meter: Meter;
  let app: Awaited<ReturnType<typeof dashboardApp>>;

  beforeAll(async () => {
    tmp = tempDir('dashboard-pg');
    const ledger = new PostgresLedger(PG_URL!, { spoolDir: path.join(tmp.dir, 'spool'), table });
    meter = new Meter({
      prices: { version: 'pg', models: { small: { inputPer1M: '0.50', outputPer1M: '1.50' } } },
      ledger,
      cache: false,
      now: () => clock,
    });
    for (let i = 0; i < 30; i++) {
      clock = T0 - 20 * HOUR + i * 40 * 60_000;
      await meter.record({
        key: i % 2 ? 'acme' : 'beta',
        model: 'small',
        promptTokens: 10 + i,
        completionTokens: 5,
      });
    }
    clock = T0;
    app = await dashboardApp({ meter, records: new PostgresRecentRecords(PG_URL!, table), now: () => clock });
  });

  afterAll(async () => {
    await app?.close();
    await meter?.close();
    if (PG_URL) await withClient((c) => c.query(`DROP TABLE IF EXISTS ${table}`));
    tmp?.cleanup();
  });

  it('summary equals the report; latest records come from the table', async () => {
    const from = T0 - 24 * HOUR;
    const res = await app.inject({
      url: `/dashboard/api/summary?from=${from}&to=${T0}&limit=5`,
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(res.statusCode, res.body).toBe(200);
    const s = res.json() as Summary;
    const byKey = await meter.report({ groupBy: 'key', from, to: T0 });
    expect(s.totals).toEqual(reportToJson([addRows('total', byKey)])[0]);
    for (const r of reportToJson(byKey)) expect(s.keys.find((k) => k.key === r.group)!.usage).toEqual(r);
    expect(s.recent!.map((r) => r.timestamp)).toEqual(
      Array.from({ length: 5 }, (_, i) => T0 - 20 * HOUR + (29 - i) * 40 * 60_000),
    );
    expect(s.recent![0]).toMatchObject({ key: 'acme', model: 'small', promptTokens: 39, custom: {} });
  });
});
