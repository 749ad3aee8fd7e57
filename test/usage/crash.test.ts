/**
 * Crash safety: a child process streams requests through a Meter and is killed with SIGKILL mid-way; after a
 * restart every record the Meter had accepted is in the ledger exactly once.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteLedger } from '../../src/usage/index.js';
import { tempDir } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));

/** Run the child until it printed `kills` accepted records, then SIGKILL its whole process group. */
function runAndKill(db: string, acceptedBeforeKill: number, env: Record<string, string>): Promise<Map<string, bigint>> {
  return new Promise((resolve, reject) => {
    // detached: its own process group, so SIGKILL reaches the node process tsx starts, not only npx
    const child = spawn('npx', ['tsx', CHILD, db], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const accepted = new Map<string, bigint>();
    let buf = '';
    let err = '';
    let killed = false;
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new Error(`child did not produce ${acceptedBeforeKill} records in time; stderr: ${err}`));
    }, 90_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ACCEPTED (\S+) (\d+)$/.exec(line);
        if (m) accepted.set(m[1]!, BigInt(m[2]!));
      }
      if (!killed && accepted.size >= acceptedBeforeKill) {
        killed = true;
        process.kill(-child.pid!, 'SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (!killed) return reject(new Error(`child exited early (${code ?? signal}): ${err}`));
      // lines that were already in the pipe when the kill landed count too: the record was accepted
      for (const line of buf.split('\n')) {
        const m = /^ACCEPTED (\S+) (\d+)$/.exec(line);
        if (m) accepted.set(m[1]!, BigInt(m[2]!));
      }
      resolve(accepted);
    });
  });
}

async function openAfterKill(db: string): Promise<SqliteLedger> {
  // The killed process may take a moment to be torn down; its lock is taken over once it is gone.
  for (let i = 0; ; i++) {
    const ledger = new SqliteLedger(db);
    try {
      await ledger.open();
      return ledger;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_SPOOL_LOCKED' || i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function checkAfterRestart(db: string, accepted: Map<string, bigint>): Promise<{ replayed: number }> {
  const ledger = await openAfterKill(db);
  const replayed = ledger.stats().replayed;
  await ledger.flush();
  const ids = await ledger.ids();
  const set = new Set(ids);
  expect(set.size).toBe(ids.length);
  for (const [id, cost] of accepted) {
    expect(set.has(id), `accepted record ${id} missing after restart`).toBe(true);
    expect((await ledger.get(id))!.cost).toBe(cost);
  }
  await ledger.close();
  // exactly once, checked with a plain query as well
  const raw = new Database(db, { readonly: true });
  const dup = raw.prepare('SELECT id, count(*) AS n FROM usage_records GROUP BY id HAVING n > 1').all();
  raw.close();
  expect(dup).toEqual([]);
  return { replayed };
}

describe('crash safety (SIGKILL)', () => {
  it('every accepted record is in the ledger exactly once after restart (database busy at the kill)', async () => {
    const db = join(tempDir('tm-crash-'), 'usage.db');
    const accepted = await runAndKill(db, 150, { HOLD_LOCK: '1' });
    expect(accepted.size).toBeGreaterThanOrEqual(150);
    const { replayed } = await checkAfterRestart(db, accepted);
    expect(replayed).toBeGreaterThan(0); // the kill left accepted records only in the spool
    // a second crash + restart on the same files adds, never doubles
    const more = await runAndKill(db, 60, {});
    const all = new Map([...accepted, ...more]);
    await checkAfterRestart(db, all);
  });
});
