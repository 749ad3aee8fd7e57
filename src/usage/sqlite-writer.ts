/**
 * Off-thread SQLite writer: one worker thread with its own better-sqlite3 connection runs the ledger's insert
 * batches, so a batch (tens of ms under load, longer if the file is busy) never stalls the event loop.
 *
 * Lifetime: created by SqliteLedger.connect(), closed by disconnect(); the worker is ref'ed only while a write is
 * in flight (or it is starting), so an idle, forgotten ledger does not keep the process alive (unwritten records
 * stay in the spool) while an awaited write always completes. If the worker dies, pending
 * writes reject with ERR_SQLITE_WORKER and the ledger reconnects (a fresh worker) on its next retry.
 *
 * The worker is an eval'ed CommonJS script (no file of its own), so it runs the same way under tsx, vitest and
 * the compiled dist; better-sqlite3 is resolved here and passed by path. The INSERT statement and how each column
 * is bound come from columns.ts through workerData, so the worker spells out no column; its three bindings mirror
 * `sqliteParams` (a test writes the same records on both threads and compares the rows).
 */
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { lazyModule } from '../lazy.js';
import { SQLITE_BINDINGS } from './columns.js';
import type { UsageRecord } from './types.js';

const workerThreads = lazyModule<typeof import('node:worker_threads')>('node:worker_threads');

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlitePath);
let db;
let insertMany;
try {
  db = new Database(workerData.file, { timeout: workerData.busyTimeoutMs });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('cache_size = -16384');
  const insert = db.prepare(workerData.insertSql);
  // workerData.bindings: [field, 'value' | 'int01' | 'json'] per column, in the INSERT's order (columns.ts).
  const bindings = workerData.bindings;
  const params = new Array(bindings.length);
  insertMany = db.transaction((rs) => {
    for (const r of rs) {
      for (let i = 0; i < bindings.length; i++) {
        const v = r[bindings[i][0]];
        const how = bindings[i][1];
        params[i] = v === undefined || v === null ? null : how === 'int01' ? (v ? 1 : 0) : how === 'json' ? JSON.stringify(v) : v;
      }
      insert.run(params);
    }
  });
  parentPort.postMessage({ type: 'ready' });
} catch (e) {
  parentPort.postMessage({ type: 'ready', error: String(e && e.message), code: e && e.code });
}
parentPort.on('message', (m) => {
  if (m.type === 'write') {
    try {
      insertMany(m.records);
      parentPort.postMessage({ type: 'done', id: m.id });
    } catch (e) {
      parentPort.postMessage({ type: 'done', id: m.id, error: String(e && e.message), code: e && e.code });
    }
  } else if (m.type === 'close') {
    try { db && db.close(); } catch {}
    process.exit(0);
  }
});
`;

interface Reply {
  type: 'ready' | 'done';
  id?: number;
  error?: string;
  code?: string;
}

function toError(r: Reply): Error {
  return Object.assign(new Error(r.error ?? 'sqlite worker error'), { code: r.code ?? 'ERR_SQLITE' });
}

export class SqliteWriter {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private dead: Error | undefined;

  private constructor(worker: Worker) {
    this.worker = worker;
  }

  static start(file: string, insertSql: string, busyTimeoutMs: number): Promise<SqliteWriter> {
    const sqlitePath = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new (workerThreads().Worker)(WORKER_SOURCE, {
      eval: true,
      workerData: { file, insertSql, bindings: SQLITE_BINDINGS, busyTimeoutMs, sqlitePath },
    });
    const w = new SqliteWriter(worker);
    return new Promise<SqliteWriter>((resolve, reject) => {
      const onReady = (r: Reply) => {
        if (r.type !== 'ready') return;
        worker.off('message', onReady);
        worker.unref(); // idle until the first write
        if (r.error) {
          void worker.terminate();
          reject(toError(r));
        } else {
          worker.on('message', (m: Reply) => w.onMessage(m));
          resolve(w);
        }
      };
      worker.on('message', onReady);
      worker.once('error', (e) => {
        w.fail(e);
        reject(e);
      });
      worker.once('exit', (code) => {
        const e = Object.assign(new Error(`sqlite worker exited (code ${code})`), { code: 'ERR_SQLITE_WORKER' });
        w.fail(e);
        reject(e);
      });
    });
  }

  write(records: UsageRecord[]): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'write', id, records });
    });
  }

  async close(): Promise<void> {
    if (this.dead) return;
    const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
    this.worker.ref();
    this.worker.postMessage({ type: 'close' });
    await exited;
  }

  private onMessage(m: Reply): void {
    if (m.type !== 'done' || m.id === undefined) return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if (m.error) p.reject(toError(m));
    else p.resolve();
  }

  private fail(e: Error): void {
    this.dead ??= Object.assign(e, { code: (e as { code?: string }).code ?? 'ERR_SQLITE_WORKER' });
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }
}
