import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Meter, PostgresLedger } from '../../src/usage/index.js';
import { TokmeterTypeError } from '../../src/errors.js';
import { makeRecord } from './fixtures/records.js';
import { FakeModel, DEMO_PRICES } from './fixtures/fake-model.js';
import { tempDir } from './helpers.js';
import { IN_CI, PG_SKIP_REASON, PG_URL, pgServer, uniqueTable, withClient } from './pg-helper.js';

const tables: string[] = [];
afterAll(async () => {
  if (!PG_URL) return;
  await withClient(async (c) => {
    for (const t of tables) await c.query(`DROP TABLE IF EXISTS ${t}`);
  });
});

function ledger(extra: { spoolDir?: string; table?: string } = {}): PostgresLedger {
  const table = extra.table ?? uniqueTable('usage_t');
  tables.push(table);
  return new PostgresLedger(PG_URL!, {
    spoolDir: extra.spoolDir ?? join(tempDir(), 'spool'),
    table,
    retryMinMs: 20,
    retryMaxMs: 200,
    connectTimeoutMs: 1000,
  });
}

describe('PostgreSQL available', () => {
  it.runIf(IN_CI)('CI provides TOKMETER_TEST_PG_URL', () => {
    expect(PG_URL, PG_SKIP_REASON).toBeTruthy();
  });
  it('requires a spool directory and a postgres URL', () => {
    expect(() => new PostgresLedger('postgres://x/y', {} as never)).toThrow(TokmeterTypeError);
    expect(() => new PostgresLedger('mysql://x', { spoolDir: '/tmp/x' })).toThrow(/postgres:\/\//);
  });
});

describe.skipIf(!PG_URL)('PostgresLedger', () => {
  it('is idempotent on the record id and reports exact costs', async () => {
    const l = ledger();
    const r = makeRecord('p1', { cost: 9_007_199_254_740_993n }); // > 2^53: must survive exactly
    await l.append([r, r, makeRecord('p2', { key: 'k2', timestamp: r.timestamp + 86_400_000 })]);
    await l.append(r);
    await l.flush();
    expect(await l.count()).toBe(2);
    expect(await l.get('p1')).toEqual(r);
    const byKey = await l.report({ groupBy: 'key' });
    expect(byKey.map((x) => [x.group, x.requests, x.cost])).toEqual([
      ['k1', 1, 9_007_199_254_740_993n],
      ['k2', 1, 123_456_789n],
    ]);
    expect((await l.report({ groupBy: 'day' })).map((x) => x.group)).toEqual(['2026-11-28', '2026-11-29']);
    expect(await l.spend('k1', 0, 8.64e15)).toBe(9_007_199_254_740_993n);
    await l.close();
  });

  it('concurrent writers: two ledgers (two "servers") with overlapping ids', async () => {
    const table = uniqueTable('usage_c');
    const a = ledger({ table });
    const b = ledger({ table });
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 3000; i++) {
      jobs.push((i % 2 ? a : b).append(makeRecord(`c${i}`)));
      if (i % 7 === 0) jobs.push((i % 2 ? b : a).append(makeRecord(`c${i}`)));
    }
    await Promise.all(jobs);
    await Promise.all([a.flush(), b.flush()]);
    expect(await a.count()).toBe(3000);
    expect([...(await a.idCounts()).values()].every((n) => n === 1)).toBe(true);
    await a.close();
    await b.close();
  });

  it('server stopped mid-run, then started: requests keep completing, no record lost, none doubled', async () => {
    const l = ledger();
    const meter = new Meter({ prices: DEMO_PRICES, ledger: l, cache: false });
    const m = meter.wrap(new FakeModel({ stopAfter: 2 }));
    const accepted: string[] = [];
    let phase: 'before' | 'down' | 'after' | 'done' = 'before';
    const perPhase = { before: 0, down: 0, after: 0, done: 0 };
    const workers = [0, 1, 2, 3].map(async (w) => {
      let i = 0;
      while (phase !== 'done') {
        const res = await m.generate(`worker ${w} request ${i++}`, { key: `k${w}`, maxNewTokens: 4 }).result;
        accepted.push(res.record.id);
        perPhase[phase]++;
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    try {
      while (perPhase.before < 200) await new Promise((r) => setTimeout(r, 10));
      pgServer('stop');
      try {
        phase = 'down';
        const downAt = accepted.length;
        await new Promise((r) => setTimeout(r, 1500));
        expect(accepted.length - downAt).toBeGreaterThan(50); // requests were not blocked by the dead database
        expect(l.stats().pending).toBeGreaterThan(0);
        expect(l.stats().lastError).toBeTruthy();
      } finally {
        pgServer('start'); // never leave the server down for the tests that follow
      }
      phase = 'after';
      while (perPhase.after < 200) await new Promise((r) => setTimeout(r, 10));
    } finally {
      phase = 'done';
      await Promise.all(workers);
    }
    await l.flush({ timeoutMs: 60_000 });
    const counts = await l.idCounts();
    expect(counts.size).toBe(accepted.length);
    for (const id of accepted) expect(counts.get(id), `record ${id}`).toBe(1);
    expect(perPhase.down).toBeGreaterThan(0);
    await meter.close();
  });

  it('a read-only ledger reports beside the live writer without taking its spool, and counts what waits in it', async () => {
    const table = uniqueTable('usage_ro');
    const spoolDir = join(tempDir(), 'spool');
    const writer = ledger({ table, spoolDir });
    await writer.append([makeRecord('ro1'), makeRecord('ro2')]);
    await writer.flush();
    const reader = new PostgresLedger(PG_URL!, { spoolDir, table, readOnly: true, connectTimeoutMs: 1000 });
    expect(await reader.report({ groupBy: 'key' })).toEqual([expect.objectContaining({ group: 'k1', requests: 2 })]);
    expect(await reader.spoolPending()).toMatchObject({ records: 0, ownerPid: process.pid });
    await expect(reader.append(makeRecord('ro3'))).rejects.toMatchObject({ code: 'ERR_LEDGER_READ_ONLY' });
    await reader.close();
    // the writer still owns its spool: it appends, and another writer cannot take it
    await writer.append(makeRecord('ro4'));
    await expect(ledger({ table, spoolDir }).open()).rejects.toMatchObject({ code: 'ERR_SPOOL_LOCKED' });
    await writer.flush();
    expect(await writer.count()).toBe(3);
    await writer.close();
    // a reader creates nothing: a table that does not exist is not made
    const none = uniqueTable('usage_none');
    const empty = new PostgresLedger(PG_URL!, { spoolDir, table: none, readOnly: true, connectTimeoutMs: 1000 });
    await expect(empty.report({ groupBy: 'key' })).rejects.toMatchObject({ code: '42P01' });
    await empty.close();
    await withClient(async (c) => {
      expect((await c.query('SELECT to_regclass($1) AS t', [none])).rows[0].t).toBeNull();
    });
  });
});
