/**
 * A live server's spool cannot be taken from it: `tokmeter usage` (a reader) and a second `tokmeter serve` on the
 * same SQLite ledger, run as real CLI processes beside a running `tokmeter serve`, leave its lock and its active
 * segment alone; the report counts the records still waiting in the spool. Then the server is SIGKILLed with
 * records only in its spool; `usage --flush` and then a new server recover them: every record a client saw is stored
 * exactly once.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChild, type Child } from '../scale/child.js';
import { makeChatTinyModel, tempDir } from '../server/helpers.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI = path.join(ROOT, 'src', 'cli', 'index.ts');

function tokmeter(args: string[]): { status: number | null; stdout: string; stderr: string; signal: string | null } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

interface Seen {
  prompt_tokens: number;
  completion_tokens: number;
}

let tmp: ReturnType<typeof tempDir>;
let model: string;
const children: Child[] = [];

beforeAll(async () => {
  tmp = tempDir('spool-owner');
  model = await makeChatTinyModel(tmp.dir);
}, 120_000);

afterAll(async () => {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await c.exited;
  }
  tmp?.cleanup();
});

describe('a live server keeps its spool', () => {
  it('usage and a second serve beside it change nothing; after kill -9 nothing is lost or doubled', async () => {
    const db = path.join(tmp.dir, 'usage.db');
    const spool = `${db}.spool`;
    const ledger = `sqlite:${db}`;
    const serve = (): Child => {
      const c = runChild(CLI, {}, ['serve', '--model', model, '--port', '0', '--threads', '1', '--ledger', ledger]);
      children.push(c);
      return c;
    };
    const urlOf = async (c: Child) => /at (http:\/\/\S+)\/v1/.exec(await c.waitLine(/serving .* at http/, 90_000))![1]!;
    const seen = new Map<string, Seen>();
    const complete = async (url: string, i: number) => {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: `request ${i}`, max_tokens: 2 + (i % 3), temperature: 0 }),
      });
      expect(res.status).toBe(200);
      const json = (await res.json()) as { id: string; usage: Seen };
      seen.set(json.id, json.usage);
    };
    const claims = () => readdirSync(spool).filter((f) => f.startsWith('spool.lock'));
    const segments = () => readdirSync(spool).filter((f) => f.endsWith('.log'));
    const deletedOpenSegments = (pid: number) =>
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`);
          } catch {
            return '';
          }
        })
        .filter((l) => l.includes('segment-') && l.includes('(deleted)'));
    const rows = (r: ReturnType<typeof tokmeter>) => {
      expect(r.status, `signal ${r.signal}; stderr: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as { requests: number }[];
    };
    let reader: Database.Database | undefined;
    const inDb = () => {
      try {
        reader ??= new Database(db, { readonly: true, fileMustExist: true });
        return (reader.prepare('SELECT count(*) AS n FROM usage_records').get() as { n: number }).n;
      } catch {
        return 0; // the table is not there yet
      }
    };

    const a = serve();
    const url = await urlOf(a);
    const pid = a.proc.pid!;
    for (let i = 0; i < 3; i++) await complete(url, i);
    while (inDb() < 3) await new Promise((r) => setTimeout(r, 20));
    // From here the database refuses the server's writes: new records wait in its spool only.
    const blocker = new Database(db);
    blocker.exec('BEGIN IMMEDIATE');
    for (let i = 3; i < 6; i++) await complete(url, i);
    const held = claims();
    expect(held).toHaveLength(1);
    const active = segments();
    expect(active.length).toBeGreaterThan(0);

    for (let run = 0; run < 2; run++) {
      const report = tokmeter(['usage', '--ledger', ledger, '--json']);
      expect(rows(report)).toEqual([expect.objectContaining({ requests: 3 })]);
      expect(report.stderr).toContain(`3 more records accepted but not in the database yet`);
      expect(report.stderr).toContain(`process ${pid} is writing them`);
      expect(claims()).toEqual(held);
      expect(segments()).toEqual(active);
      expect(deletedOpenSegments(pid)).toEqual([]);
    }
    const table = tokmeter(['usage', '--ledger', ledger]);
    expect(table.status, `signal ${table.signal}; stderr: ${table.stderr}`).toBe(0);
    expect(table.stdout).toMatch(/\n\(3 more records accepted but not in the database yet, in the spool /);

    // a writer that asks for the spool (usage --flush) is refused and, like the second server, takes nothing
    const flushing = tokmeter(['usage', '--ledger', ledger, '--flush']);
    expect(flushing.status, `signal ${flushing.signal}; stderr: ${flushing.stderr}`).toBe(1);
    expect(flushing.stderr).toMatch(new RegExp(`in use by process ${pid}.*ERR_SPOOL_LOCKED`));
    expect(claims()).toEqual(held);
    expect(segments()).toEqual(active);

    const second = serve();
    const secondExit = await second.exited;
    expect(secondExit.code, `signal ${secondExit.signal}; stderr: ${second.stderr.join('')}`).toBe(1);
    expect(second.stderr.join('')).toMatch(new RegExp(`in use by process ${pid}.*ERR_SPOOL_LOCKED`));
    expect(claims()).toEqual(held);
    expect(segments()).toEqual(active);
    expect(deletedOpenSegments(pid)).toEqual([]);
    for (let i = 6; i < 8; i++) await complete(url, i); // the server goes on, with its spool intact

    a.proc.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');
    blocker.exec('COMMIT');
    blocker.close();
    const orphaned = tokmeter(['usage', '--ledger', ledger, '--json']);
    expect(rows(orphaned)).toEqual([expect.objectContaining({ requests: 3 })]);
    expect(orphaned.stderr).toContain('5 more records accepted but not in the database yet');
    expect(orphaned.stderr).toContain('no process owns it; the next server on this ledger, or usage --flush');

    // recovery: usage --flush takes over the dead server's spool and writes what it had accepted; a new server
    // on the same ledger afterwards adds nothing
    const flushed = tokmeter(['usage', '--ledger', ledger, '--flush', '--json']);
    expect(rows(flushed)).toEqual([expect.objectContaining({ requests: 8 })]);
    expect(flushed.stderr).toBe('');
    const c = serve();
    await urlOf(c);
    c.proc.kill('SIGTERM');
    const cExit = await c.exited;
    expect(cExit.code, `signal ${cExit.signal}; stderr: ${c.stderr.join('')}`).toBe(0);
    const stored = reader!
      .prepare('SELECT id, prompt_tokens, completion_tokens, count(*) OVER (PARTITION BY id) AS n FROM usage_records')
      .all() as { id: string; prompt_tokens: number; completion_tokens: number; n: number }[];
    reader!.close();
    expect(new Set(stored.map((r) => r.id))).toEqual(new Set(seen.keys()));
    expect(stored.every((r) => r.n === 1)).toBe(true);
    for (const r of stored) {
      const s = seen.get(r.id)!;
      expect([r.prompt_tokens, r.completion_tokens], r.id).toEqual([s.prompt_tokens, s.completion_tokens]);
    }
    const after = tokmeter(['usage', '--ledger', ledger, '--json']);
    expect(rows(after)).toEqual([expect.objectContaining({ requests: 8 })]);
    expect(after.stderr).toBe('');
    expect(claims()).toEqual([]);
  }, 300_000);
});
