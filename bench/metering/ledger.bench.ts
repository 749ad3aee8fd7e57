/**
 * Ledger throughput: records/s from the first append until the database confirmed every record (spool write +
 * fdatasync + batched insert), against a named baseline measured in the same run: raw better-sqlite3 inserts in
 * 1000-row transactions (no spool, no durability handshake) and, for Postgres, raw unnest() inserts.
 *
 *   npx tsx bench/metering/ledger.bench.ts [records=100000]
 *   TOKMETER_TEST_PG_URL=postgres://… npx tsx bench/metering/ledger.bench.ts   # adds PostgreSQL
 *
 * SqliteLedger runs its insert batches on a worker thread by default ('worker'); 'main' runs them on the JS thread.
 * Two shapes: "bulk" appends 1000 records per call; "per-request" issues one append per record, 1000 in flight at
 * a time, as a busy server's requests would (group commit merges them into one spool write + fsync).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { PostgresLedger, SqliteLedger, type Ledger, type UsageRecord } from '../../src/usage/index.js';
import { sqliteParams } from '../../src/usage/columns.js';
import {
  postgresBatchParams,
  postgresInsertSql,
  postgresSchema,
  sqliteInsertSql,
  sqliteSchema,
} from '../../src/usage/sql.js';

const N = Number(process.argv[2] ?? 100_000);
const PG_URL = process.env.TOKMETER_TEST_PG_URL;

// Ids are random UUIDs, as the Meter makes them (worst case for the id index); built before the clock starts.
const IDS = Array.from({ length: N }, () => randomUUID());
function rec(i: number, run: string): UsageRecord {
  return {
    id: run === 'warm' ? randomUUID() : `${run}${IDS[i]}`,
    timestamp: Date.now(),
    key: `key-${i % 100}`,
    model: 'demo',
    promptTokens: 100 + (i % 50),
    cachedTokens: 10,
    completionTokens: 50,
    totalTokens: 150 + (i % 50),
    finishReason: 'stop',
    latencyMs: 120,
    cacheHit: false,
    custom: {},
    cost: 123_456_789n + BigInt(i),
    currency: 'USD',
    priceVersion: 'bench',
  };
}

async function timeLedger(make: () => Ledger, shape: 'bulk' | 'per-request'): Promise<number> {
  const l = make();
  await l.open();
  await l.append(rec(0, 'warm'));
  await l.flush();
  const run = Math.random().toString(36).slice(2, 6);
  const recs = Array.from({ length: N }, (_, i) => rec(i, run));
  const t0 = performance.now();
  if (shape === 'bulk') {
    const ps: Promise<void>[] = [];
    for (let i = 0; i < N; i += 1000) ps.push(l.append(recs.slice(i, i + 1000)));
    await Promise.all(ps);
  } else {
    for (let i = 0; i < N; i += 1000) {
      const ps: Promise<void>[] = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) ps.push(l.append(recs[j]!));
      await Promise.all(ps);
    }
  }
  await l.flush();
  const s = (performance.now() - t0) / 1000;
  await l.close();
  return N / s;
}

function baselineSqlite(dir: string): number {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -16384');
  db.exec(sqliteSchema('t').join(';\n'));
  const ins = db.prepare(sqliteInsertSql('t'));
  const tx = db.transaction((rs: UsageRecord[]) => {
    for (const r of rs) ins.run(sqliteParams(r));
  });
  const recs = Array.from({ length: N }, (_, i) => rec(i, 'raw'));
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000) tx(recs.slice(i, i + 1000));
  const s = (performance.now() - t0) / 1000;
  db.close();
  return N / s;
}

/** Raw pg: the ledger's own table definition and INSERT … unnest statement, 2000 rows per statement, no spool. */
async function baselinePg(table: string): Promise<number> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  for (const stmt of postgresSchema(table)) await c.query(stmt);
  const recs = Array.from({ length: N }, (_, i) => rec(i, 'raw'));
  const t0 = performance.now();
  for (let i = 0; i < N; i += 2000) {
    const rs = recs.slice(i, i + 2000);
    await c.query(postgresInsertSql(table), postgresBatchParams(rs));
  }
  const s = (performance.now() - t0) / 1000;
  await c.query(`DROP TABLE ${table}`);
  await c.end();
  return N / s;
}

const fmt = (x: number) => `${Math.round(x).toLocaleString('en-US')} records/s`;
const dir = mkdtempSync(join(tmpdir(), 'tm-bench-'));
try {
  console.log(`ledger throughput, ${N} records, node ${process.version}`);
  console.log(`  baseline  raw better-sqlite3, same schema, 1000/tx, no spool ${fmt(baselineSqlite(dir))}`);
  for (const thread of ['worker', 'main'] as const) {
    for (const shape of ['bulk', 'per-request'] as const) {
      const r = await timeLedger(
        () => new SqliteLedger(join(dir, `u-${thread}-${shape}.db`), { writeThread: thread }),
        shape,
      );
      const verdict = r >= 20_000 ? '(meets ≥20,000/s)' : '(BELOW the 20,000/s target)';
      console.log(`  SqliteLedger ${thread.padEnd(6)} ${shape.padEnd(12)} (spool+fsync) ${fmt(r)}  ${verdict}`);
    }
  }
  if (PG_URL) {
    const table = `bench_${process.pid}`;
    console.log(`  baseline  raw pg, same table + INSERT, 2000/stmt ${fmt(await baselinePg(table + '_raw'))}`);
    for (const shape of ['bulk', 'per-request'] as const) {
      const t = `${table}_${shape.replace('-', '_')}`;
      const r = await timeLedger(
        () => new PostgresLedger(PG_URL, { spoolDir: join(dir, `pg-${shape}`), table: t }),
        shape,
      );
      console.log(`  PostgresLedger ${shape.padEnd(12)} (spool+fsync) ${fmt(r)}`);
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP TABLE IF EXISTS ${t}`);
      await c.end();
    }
  } else {
    console.log('  PostgreSQL: skipped (set TOKMETER_TEST_PG_URL, e.g. from scripts/start-postgres.sh)');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
