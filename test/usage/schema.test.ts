/**
 * The usage-record schema is one table (src/usage/columns.ts). These tests hold what it generates to what earlier
 * versions created, so existing ledgers keep working: the DDL below is a verbatim copy of the statements the ledgers
 * ran before the table existed, and each database is asked to describe both tables.
 */
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { SqliteLedger, PostgresLedger, validateRecord, recordToJson, reportToCsv } from '../../src/usage/index.js';
import {
  RECORD_COLUMNS,
  csvValue,
  fromDatabase,
  postgresValue,
  sqliteParams,
  validateColumn,
} from '../../src/usage/columns.js';
import {
  COLUMNS,
  postgresInsertSql,
  postgresSchema,
  rowToRecord,
  sqliteInsertSql,
  sqliteSchema,
} from '../../src/usage/sql.js';
import { csvCell, recordsToCsv, RECORD_CSV_HEADER } from '../../src/usage/report.js';
import { TokmeterTypeError } from '../../src/errors.js';
import { makeRecord } from './fixtures/records.js';
import { tempDir } from './helpers.js';
import { PG_URL, uniqueTable, withClient } from './pg-helper.js';

const GOLDEN_SQLITE = (t: string) => `CREATE TABLE IF NOT EXISTS ${t} (
        id TEXT UNIQUE NOT NULL, ts INTEGER NOT NULL, api_key TEXT NOT NULL, model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL, finish_reason TEXT NOT NULL, latency_ms INTEGER NOT NULL,
        cache_hit INTEGER NOT NULL, custom TEXT NOT NULL, cost INTEGER NOT NULL, currency TEXT NOT NULL,
        price_version TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS ${t}_key_ts ON ${t}(api_key, ts);
        CREATE INDEX IF NOT EXISTS ${t}_ts ON ${t}(ts);`;

const GOLDEN_POSTGRES = (t: string) => [
  `CREATE TABLE IF NOT EXISTS ${t} (
        id TEXT PRIMARY KEY, ts BIGINT NOT NULL, api_key TEXT NOT NULL, model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL, finish_reason TEXT NOT NULL, latency_ms INTEGER NOT NULL,
        cache_hit BOOLEAN NOT NULL, custom JSONB NOT NULL, cost BIGINT NOT NULL, currency TEXT NOT NULL,
        price_version TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS ${t}_key_ts ON ${t}(api_key, ts)`,
  `CREATE INDEX IF NOT EXISTS ${t}_ts ON ${t}(ts)`,
];

/** Every field of a UsageRecord, as the fixture spells it. */
const FIELDS = Object.keys(makeRecord('x'));

/** How SQLite describes a table: columns (type, not null, key) and indexes (uniqueness, columns), names relative. */
function describeSqlite(db: Database.Database, t: string): unknown {
  const cols = db.prepare(`PRAGMA table_xinfo(${t})`).all();
  const indexes = (db.prepare(`PRAGMA index_list(${t})`).all() as { name: string; unique: number; origin: string }[])
    .map((i) => ({
      name: i.name.replace(t, 'T'),
      unique: i.unique,
      origin: i.origin,
      columns: (db.prepare(`PRAGMA index_info(${JSON.stringify(i.name)})`).all() as { name: string }[]).map(
        (c) => c.name,
      ),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const withoutRowid = /WITHOUT ROWID/i.test(
    (db.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).get(t) as { sql: string }).sql,
  );
  return { cols, indexes, withoutRowid };
}

describe('the column table', () => {
  it('covers every field of a usage record once, and names each SQL column once', () => {
    expect(RECORD_COLUMNS.map((c) => c.field).sort()).toEqual([...FIELDS].sort());
    expect(new Set(COLUMNS).size).toBe(COLUMNS.length);
    expect(new Set(RECORD_CSV_HEADER).size).toBe(RECORD_CSV_HEADER.length);
  });

  it('generates the SQLite schema earlier versions created', () => {
    const db = new Database(':memory:');
    db.exec(GOLDEN_SQLITE('old_t'));
    db.exec(sqliteSchema('new_t').join(';\n'));
    expect(describeSqlite(db, 'new_t')).toEqual(describeSqlite(db, 'old_t'));
    // The statements are idempotent: running them on an existing table changes nothing.
    db.exec(sqliteSchema('old_t').join(';\n'));
    expect(describeSqlite(db, 'old_t')).toEqual(describeSqlite(db, 'new_t'));
    db.close();
  });

  it('generates INSERTs that name every column', () => {
    const sqlite = sqliteInsertSql('t');
    const pg = postgresInsertSql('t');
    for (const c of COLUMNS) {
      expect(sqlite).toMatch(new RegExp(`\\b${c}\\b`));
      expect(pg).toMatch(new RegExp(`\\b${c}\\b`));
    }
    expect(sqlite.match(/\?/g)).toHaveLength(COLUMNS.length);
    expect(pg).toContain(`$${COLUMNS.length}::`);
    expect(pg).not.toContain(`$${COLUMNS.length + 1}`);
    expect(() => sqliteSchema('bad name')).toThrow(/table name/);
  });

  it('validates each column by its kind and names the field', () => {
    const r = makeRecord('v1', { custom: { audio_ms: 5 }, cacheHit: true });
    expect(validateRecord(r)).toEqual(r);
    expect(validateRecord(JSON.parse(JSON.stringify(recordToJson(r))))).toEqual(r);
    for (const field of FIELDS) {
      if (field === 'custom' || field === 'cacheHit') continue; // optional: {} and false
      const bad: Record<string, unknown> = { ...r };
      delete bad[field];
      expect(() => validateRecord(bad), field).toThrow(TokmeterTypeError);
      expect(() => validateRecord(bad), field).toThrow(new RegExp(field));
    }
    expect(validateRecord({ ...r, custom: undefined, cacheHit: 1 })).toMatchObject({ custom: {}, cacheHit: false });
    expect(() => validateRecord({ ...r, key: 'k'.repeat(513) })).toThrow(/≤512 chars\) for key/);
    expect(() => validateRecord({ ...r, currency: 'TOOLONGCUR' })).toThrow(/currency/);
    expect(() => validateRecord({ ...r, id: 'i'.repeat(201) })).toThrow(/for id/);
    expect(() => validateRecord({ ...r, timestamp: -1 })).toThrow(/timestamp/);
    expect(() => validateRecord({ ...r, cost: -1n })).toThrow(/cost/);
    expect(() => validateRecord({ ...r, cost: 1.5 })).toThrow(/cost/);
    expect(() => validateRecord({ ...r, finishReason: 'done' })).toThrow(/unknown finishReason/);
    expect(() => validateRecord({ ...r, custom: { n: -1 } })).toThrow(/custom\.n/);
    expect(() => validateRecord({ ...r, custom: 3 })).toThrow(/custom must be an object/);
    expect(() => validateRecord({ ...r, cachedTokens: 11 })).toThrow(/cachedTokens exceeds/);
    expect(() => validateRecord({ ...r, totalTokens: 16 })).toThrow(/totalTokens must equal/);
  });

  it('lets a nullable column be absent, and only a nullable one', () => {
    const c = { ...RECORD_COLUMNS.find((x) => x.field === 'latencyMs')! };
    expect(() => validateColumn(c, undefined)).toThrow(/latencyMs/);
    const nullable = { ...c, nullable: true };
    expect(validateColumn(nullable, undefined)).toBeNull();
    expect(validateColumn(nullable, 5)).toBe(5);
    expect(() => validateColumn(nullable, -5)).toThrow(/latencyMs/);
    expect(fromDatabase(nullable, null)).toBeNull();
    expect(csvValue(nullable, null)).toBe('');
    // NULL is bound as NULL, not as JSON's null or a 0 flag
    const custom = { ...RECORD_COLUMNS.find((x) => x.field === 'custom')!, nullable: true };
    expect(postgresValue(custom, null)).toBeNull();
    const params = sqliteParams({ ...makeRecord('n'), custom: null, cacheHit: undefined } as never);
    expect(params[COLUMNS.indexOf('custom')]).toBeNull();
    expect(params[COLUMNS.indexOf('cache_hit')]).toBeNull();
    expect(postgresSchema('t')[0]).toContain('latency_ms INTEGER NOT NULL');
  });

  it('reads rows back as either driver returns them', () => {
    const r = makeRecord('row1', { custom: { a: 1 }, cacheHit: true });
    const sqliteRow = {
      ...Object.fromEntries(RECORD_COLUMNS.map((c) => [c.sql, (r as unknown as Record<string, unknown>)[c.field]])),
      ts: BigInt(r.timestamp),
      prompt_tokens: 10n,
      cache_hit: 1n,
      custom: '{"a":1}',
    };
    expect(rowToRecord(sqliteRow)).toEqual(r);
    const pgRow = { ...sqliteRow, ts: String(r.timestamp), prompt_tokens: 10, cache_hit: true, cost: '123456789' };
    expect(rowToRecord(pgRow)).toEqual(r);
  });

  it('writes records as CSV, one column per record column', () => {
    const r = makeRecord('c1', { key: '=cmd', custom: { a: 1, b: 2 } });
    const csv = recordsToCsv([r, recordToJson(makeRecord('c2'))]);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe(
      'record_id,time_utc,key,model,prompt_tokens,cached_tokens,completion_tokens,total_tokens,finish_reason,' +
        'latency_ms,cache_hit,custom,cost_pico,currency,price_version',
    );
    expect(lines[1]).toBe(
      `c1,2026-11-28T12:00:00.000Z,'=cmd,demo,10,2,5,15,stop,12,false,"{""a"":1,""b"":2}",123456789,USD,test-1`,
    );
    expect(lines[2]).toBe('c2,2026-11-28T12:00:00.000Z,k1,demo,10,2,5,15,stop,12,false,{},123456789,USD,test-1');
    expect(lines).toHaveLength(4);
    expect(csvCell(null)).toBe('');
    expect(csvCell(-3)).toBe('-3');
    expect(csvCell('-3')).toBe("'-3");
    expect(reportToCsv([]).split('\r\n')[0]).toBe(
      'group,requests,cache_hits,prompt_tokens,cached_tokens,completion_tokens,total_tokens,cost_pico,cost,currency',
    );
  });
});

describe('an existing SQLite ledger', () => {
  it.each(['worker', 'main'] as const)('created by an earlier version is written and read (%s thread)', async (w) => {
    const file = join(tempDir(), 'old.db');
    const db = new Database(file);
    db.exec(GOLDEN_SQLITE('usage_records'));
    db.prepare(
      `INSERT INTO usage_records VALUES ('old-1', 1, 'k1', 'demo', 3, 0, 4, 7, 'length', 9, 1, '{"n":2}', 42, 'USD', 'v0')`,
    ).run();
    db.close();
    const l = new SqliteLedger(file, { writeThread: w });
    const r = makeRecord('new-1', { custom: { audio_ms: 7 }, cacheHit: true });
    await l.append([r, r]);
    await l.flush();
    expect(await l.count()).toBe(2);
    expect(await l.get('new-1')).toEqual(r);
    expect(await l.get('old-1')).toEqual({
      ...makeRecord('old-1'),
      timestamp: 1,
      promptTokens: 3,
      cachedTokens: 0,
      completionTokens: 4,
      totalTokens: 7,
      finishReason: 'length',
      latencyMs: 9,
      cacheHit: true,
      custom: { n: 2 },
      cost: 42n,
      priceVersion: 'v0',
    });
    await l.close();
  });

  it('stores the same row from the worker thread and the main thread', async () => {
    const dir = tempDir();
    const records = [
      makeRecord('a', { custom: { audio_ms: 7 }, cacheHit: true, cost: 2n ** 62n }),
      makeRecord('b', { finishReason: 'count', completionTokens: 0, totalTokens: 10 }),
    ];
    const dump = async (w: 'worker' | 'main') => {
      const file = join(dir, `${w}.db`);
      const l = new SqliteLedger(file, { writeThread: w });
      await l.append(records);
      await l.flush();
      await l.close();
      const db = new Database(file, { readonly: true });
      db.defaultSafeIntegers(true);
      const cols = COLUMNS.map((c) => `${c}, typeof(${c}) AS ${c}_type`).join(', ');
      const rows = db.prepare(`SELECT ${cols} FROM usage_records ORDER BY id`).all();
      db.close();
      return rows;
    };
    const worker = await dump('worker');
    expect(worker).toHaveLength(2);
    expect(worker[0]).toMatchObject({ cache_hit: 1n, custom: '{"audio_ms":7}', cost: 2n ** 62n, cost_type: 'integer' });
    expect(await dump('main')).toEqual(worker);
  });
});

describe.skipIf(!PG_URL)('PostgreSQL schema', () => {
  const tables: string[] = [];
  afterAll(async () => {
    await withClient(async (c) => {
      for (const t of tables) await c.query(`DROP TABLE IF EXISTS ${t}`);
    });
  });

  it('generates the schema earlier versions created', async () => {
    const old = uniqueTable('old_t');
    const now = uniqueTable('new_t');
    tables.push(old, now);
    const describePg = async (t: string) =>
      withClient(async (c) => {
        const cols = await c.query(
          `SELECT column_name, ordinal_position, data_type, is_nullable, column_default
           FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
          [t],
        );
        const idx = await c.query(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY 1`, [t]);
        const cons = await c.query(
          `SELECT contype, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass ORDER BY 1`,
          [t],
        );
        return {
          cols: cols.rows,
          indexes: idx.rows.map((r: { indexname: string; indexdef: string }) => ({
            name: r.indexname.replaceAll(t, 'T'),
            def: r.indexdef.replaceAll(t, 'T'),
          })),
          constraints: cons.rows,
        };
      });
    await withClient(async (c) => {
      for (const s of GOLDEN_POSTGRES(old)) await c.query(s);
      for (const s of postgresSchema(now)) await c.query(s);
    });
    const a = await describePg(old);
    expect(a.cols).toHaveLength(RECORD_COLUMNS.length);
    expect(await describePg(now)).toEqual(a);
  });

  it('a table created by an earlier version is written and read', async () => {
    const t = uniqueTable('old_l');
    tables.push(t);
    await withClient(async (c) => {
      for (const s of GOLDEN_POSTGRES(t)) await c.query(s);
      await c.query(
        `INSERT INTO ${t} VALUES ('old-1', 1, 'k1', 'demo', 3, 0, 4, 7, 'length', 9, true, '{"n":2}', 42, 'USD', 'v0')`,
      );
    });
    const l = new PostgresLedger(PG_URL!, { spoolDir: join(tempDir(), 'spool'), table: t, retryMinMs: 20 });
    const r = makeRecord('new-1', { custom: { audio_ms: 7 }, cacheHit: true, cost: 2n ** 62n });
    await l.append([r, r]);
    await l.flush();
    expect(await l.count()).toBe(2);
    expect(await l.get('new-1')).toEqual(r);
    expect(await l.get('old-1')).toMatchObject({ cacheHit: true, custom: { n: 2 }, cost: 42n, finishReason: 'length' });
    await l.close();
  });
});

describe('the dashboard bundle', () => {
  it('imports money and CSV code from src/usage instead of copying it, and no Node.js built-in', async () => {
    const r = await esbuild.build({
      entryPoints: [new URL('../../src/dashboard/client/main.js', import.meta.url).pathname],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.some((i) => i.endsWith('src/usage/money.ts'))).toBe(true);
    expect(inputs.some((i) => i.endsWith('src/usage/report.ts'))).toBe(true);
    expect(inputs.some((i) => i.endsWith('src/usage/columns.ts'))).toBe(true);
    expect(inputs.filter((i) => i.startsWith('node:') || /src\/usage\/(index|record|sql|ledger)\.ts$/.test(i))).toEqual(
      [],
    );
  });
});
