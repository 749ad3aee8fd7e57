import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Meter, SqliteLedger, SpoolFullError, LedgerError } from '../../src/usage/index.js';
import { makeRecord } from './fixtures/records.js';
import { FakeModel, DEMO_PRICES } from './fixtures/fake-model.js';
import { tempDir } from './helpers.js';

describe('SqliteLedger', () => {
  it('is idempotent on the record id, within a run and across reopen', async () => {
    const dir = tempDir();
    const db = join(dir, 'u.db');
    const a = new SqliteLedger(db);
    const r = makeRecord('r1');
    await a.append(r);
    await a.append(r);
    await a.append([r, makeRecord('r2'), r]);
    await a.flush();
    expect(await a.count()).toBe(2);
    expect(await a.get('r1')).toEqual(r);
    await a.close();
    const b = new SqliteLedger(db);
    await b.append({ ...r, cost: 999n }); // same id again after a restart: first write wins, nothing doubled
    await b.flush();
    expect(await b.count()).toBe(2);
    expect((await b.get('r1'))!.cost).toBe(123_456_789n);
    const rows = await b.report({ groupBy: 'key' });
    expect(rows[0]).toMatchObject({ requests: 2, totalTokens: 30, cost: 2n * 123_456_789n });
    await b.close();
    expect(readdirSync(`${db}.spool`).filter((f) => f.endsWith('.log'))).toEqual([]); // spool emptied on clean close
  });

  it('validates records at the edge', async () => {
    const l = new SqliteLedger(join(tempDir(), 'u.db'));
    await expect(l.append(makeRecord('x', { totalTokens: 3 }))).rejects.toThrow(/totalTokens must equal/);
    await expect(l.append(makeRecord('x', { cost: -1n }))).rejects.toThrow(/cost/);
    await expect(l.append(makeRecord('', {}))).rejects.toThrow(/for id/);
    await l.close();
  });

  it('concurrent writers: many async appenders and two ledgers on one database file', async () => {
    const dir = tempDir();
    const db = join(dir, 'u.db');
    const a = new SqliteLedger(db, { spoolDir: join(dir, 'spool-a'), batchSize: 97 });
    const b = new SqliteLedger(db, { spoolDir: join(dir, 'spool-b'), batchSize: 89 });
    const jobs: Promise<void>[] = [];
    for (let w = 0; w < 20; w++) {
      for (let i = 0; i < 100; i++) {
        const id = `w${w}-${i}`;
        jobs.push((w % 2 ? a : b).append(makeRecord(id, { key: `k${w % 3}` })));
        if (i % 10 === 0) jobs.push((w % 2 ? b : a).append(makeRecord(id, { key: `k${w % 3}` }))); // overlap
      }
    }
    await Promise.all(jobs);
    await Promise.all([a.flush(), b.flush()]);
    expect(await a.count()).toBe(2000);
    const rows = await a.report({ groupBy: 'key' });
    expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(2000);
    expect(a.stats().written + b.stats().written).toBe(2200); // every write attempted; duplicates ignored by the db
    await a.close();
    await b.close();
  });

  it('a locked (slow) database never blocks requests; records wait in the spool and land once it frees', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.db');
    const ledger = new SqliteLedger(file, { retryMinMs: 5, retryMaxMs: 20 });
    await ledger.append(makeRecord('warm'));
    await ledger.flush();
    const blocker = new Database(file);
    blocker.exec('BEGIN IMMEDIATE'); // holds the write lock
    const meter = new Meter({ prices: DEMO_PRICES, ledger, cache: false });
    const m = meter.wrap(new FakeModel({ stopAfter: 2 }));
    // The write lock is held until after these resolve: a generation that waited for the ledger would never finish.
    const res = await Promise.all(
      Array.from({ length: 50 }, () => m.generate('a b', { key: 'k', maxNewTokens: 3 }).result),
    );
    expect(res).toHaveLength(50);
    await new Promise((r) => setTimeout(r, 50));
    expect(ledger.stats().pending).toBe(50);
    expect(ledger.stats().lastError).toMatch(/locked|busy/i);
    await expect(ledger.flush({ timeoutMs: 50 })).rejects.toBeInstanceOf(LedgerError);
    blocker.exec('COMMIT');
    blocker.close();
    await ledger.flush();
    expect(await ledger.count()).toBe(51);
    for (const r of res) expect((await ledger.get(r.record.id))?.cost).toBe(r.record.cost);
    await meter.close();
  });

  it('a bounded spool: past maxSpoolBytes appends fail clearly and the Meter refuses before compute', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.db');
    const ledger = new SqliteLedger(file, { maxBytes: 2000, retryMinMs: 5, retryMaxMs: 10 });
    await ledger.open();
    const blocker = new Database(file);
    blocker.exec('BEGIN EXCLUSIVE');
    let i = 0;
    let err: unknown;
    for (; i < 100; i++) {
      try {
        await ledger.append(makeRecord(`s${i}`));
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(err).toBeInstanceOf(SpoolFullError);
    expect((err as SpoolFullError).code).toBe('ERR_SPOOL_FULL');
    expect((err as Error).message).toMatch(/spool is full.*last error/);
    const model = new FakeModel();
    const meter = new Meter({ prices: DEMO_PRICES, ledger });
    await expect(meter.wrap(model).generate('a', { key: 'k', maxNewTokens: 1 }).result).rejects.toBeInstanceOf(
      SpoolFullError,
    );
    expect(model.generateCalls).toBe(0);
    blocker.exec('COMMIT');
    blocker.close();
    await ledger.flush();
    expect(await ledger.count()).toBe(i);
    await expect(meter.wrap(model).generate('a', { key: 'k', maxNewTokens: 1 }).result).resolves.toBeTruthy();
    await meter.close();
  });

  it('replays the spool on open, skipping a torn last line, without doubling', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.db');
    const first = new SqliteLedger(file);
    await first.append(makeRecord('already-in-db'));
    await first.flush();
    await first.close();
    // Simulate a crash: a spool segment holding one record already in the database, one that is not, and a torn
    // line that was being written when the process died (never acknowledged).
    const { Spool } = await import('../../src/usage/spool.js');
    const s = new Spool(`${file}.spool`);
    s.open();
    await s.append([makeRecord('already-in-db'), makeRecord('only-in-spool')]);
    const seg = readdirSync(`${file}.spool`).find((f) => f.endsWith('.log'))!;
    appendFileSync(join(`${file}.spool`, seg), '0badc0de {"id":"torn","timest');
    await s.close(); // the records stay: none was acknowledged
    const second = new SqliteLedger(file);
    await second.open();
    expect(second.stats().replayed).toBe(2);
    await second.flush();
    expect((await second.ids()).sort()).toEqual(['already-in-db', 'only-in-spool']);
    await second.close();
  });

  it('refuses a spool that a live process holds', async () => {
    const dir = tempDir();
    const spool = join(dir, 'sp');
    const l = new SqliteLedger(join(dir, 'u.db'), { spoolDir: spool });
    await l.open();
    const other = new SqliteLedger(join(dir, 'u2.db'), { spoolDir: spool });
    await expect(other.open()).rejects.toMatchObject({ code: 'ERR_SPOOL_LOCKED' });
    await other.close(); // must not release what it never held
    const third = new SqliteLedger(join(dir, 'u3.db'), { spoolDir: spool });
    await expect(third.open()).rejects.toMatchObject({ code: 'ERR_SPOOL_LOCKED' });
    await l.close();
    // an earlier version's lock file (a bare pid) is honoured while that process lives
    writeFileSync(join(spool, 'spool.lock'), String(process.ppid));
    const fourth = new SqliteLedger(join(dir, 'u4.db'), { spoolDir: spool });
    await expect(fourth.open()).rejects.toMatchObject({ code: 'ERR_SPOOL_LOCKED' });
  });
});

describe('SqliteLedger durability edges', () => {
  it('close while the database is unavailable keeps records in the spool; the next open writes them once', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.db');
    const a = new SqliteLedger(file, { retryMinMs: 5, retryMaxMs: 10 });
    await a.append(makeRecord('w0'));
    await a.flush();
    const blocker = new Database(file);
    blocker.exec('BEGIN IMMEDIATE');
    await a.append([makeRecord('w1'), makeRecord('w2')]);
    await a.close({ timeoutMs: 100 }); // cannot flush: must not lose them
    blocker.exec('COMMIT');
    blocker.close();
    const b = new SqliteLedger(file);
    await b.open();
    expect(b.stats().replayed).toBeGreaterThanOrEqual(2); // the whole unfinished segment is replayed (w0 too)
    await b.flush();
    expect((await b.ids()).sort()).toEqual(['w0', 'w1', 'w2']);
    await b.close();
  });

  it('budgets survive a restart: spend is loaded from the ledger, including records still in the spool', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.db');
    const today = Date.now();
    const a = new SqliteLedger(file, { retryMinMs: 5, retryMaxMs: 10 });
    await a.append(makeRecord('b1', { key: 'k', timestamp: today, cost: 400_000_000_000n })); // $0.40
    await a.flush();
    const blocker = new Database(file);
    blocker.exec('BEGIN IMMEDIATE');
    await a.append(makeRecord('b2', { key: 'k', timestamp: today, cost: 500_000_000_000n })); // $0.50, spool only
    await a.close({ timeoutMs: 50 });
    blocker.exec('COMMIT');
    blocker.close();
    const b = new SqliteLedger(file);
    await b.open(); // b2 is pending (replayed) and b1 is in the table
    expect(await b.spend('k', today - 1000, today + 1000)).toBe(900_000_000_000n);
    const meter = new Meter({
      prices: DEMO_PRICES,
      ledger: b,
      cache: false,
      limits: { perKey: { budget: { day: '0.902' } } },
    });
    const m = meter.wrap(new FakeModel({ stopAfter: 1 }));
    // max cost of this request: 2 prompt * 0.5e-6 + 2000 new * 1.5e-6 = $0.003001 > $0.002 left
    await expect(m.generate('a b', { key: 'k', maxNewTokens: 2000 }).result).rejects.toMatchObject({
      code: 'ERR_BUDGET_EXCEEDED',
      spent: 900_000_000_000n,
    });
    await expect(m.generate('a b', { key: 'k', maxNewTokens: 10 }).result).resolves.toBeTruthy();
    await meter.close();
  });
});

describe('SqliteLedger writeThread: main', () => {
  it('writes, deduplicates and sums the same as the worker writer', async () => {
    const dir = tempDir();
    const l = new SqliteLedger(join(dir, 'u.db'), { writeThread: 'main' });
    await l.append([makeRecord('m1'), makeRecord('m1'), makeRecord('m2', { cost: 1n })]);
    await l.flush();
    expect(await l.count()).toBe(2);
    expect(await l.spend('k1', 0, 8.64e15)).toBe(123_456_789n + 1n);
    await l.close();
  });
});
