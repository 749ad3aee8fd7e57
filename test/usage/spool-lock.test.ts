/**
 * Spool ownership: only the owner removes its claim; a dead owner's claim (gone, or its pid reused by another
 * process, or from before a reboot) is taken over; an owner whose liveness cannot be checked keeps the spool;
 * contenders racing for a stale spool end with exactly one owner; a reader scans a live spool without touching it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { scanSpool, Spool } from '../../src/usage/spool.js';
import { processIdentity, spoolOwners, type ProcessIdentity } from '../../src/usage/spool-lock.js';
import { runChild, type Child } from '../scale/child.js';
import { makeRecord } from './fixtures/records.js';
import { tempDir } from './helpers.js';

const claims = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('spool.lock'));
const RACER = fileURLToPath(new URL('./fixtures/lock-racer.ts', import.meta.url));

/** Writes a claim as another process would have. */
function writeClaim(dir: string, who: ProcessIdentity): string {
  const name = `spool.lock.${who.pid}-${'0123456789abcdef'}`;
  writeFileSync(join(dir, name), JSON.stringify(who));
  return name;
}

const procs: ChildProcess[] = [];
function sleeper(): Promise<ChildProcess> {
  const p = spawn('sleep', ['60'], { stdio: 'ignore' });
  procs.push(p);
  return new Promise((resolve, reject) => {
    p.once('spawn', () => resolve(p));
    p.once('error', reject);
  });
}
const children: Child[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const c of children.splice(0)) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await c.exited;
  }
});

describe('spool lock', () => {
  it('a process that fails to open a held spool releases nothing: the owner keeps its claim and its segment', async () => {
    const dir = tempDir();
    const owner = new Spool(dir);
    owner.open();
    const held = claims(dir);
    expect(held).toHaveLength(1);
    const segments = readdirSync(dir).filter((f) => f.endsWith('.log'));
    for (let i = 0; i < 2; i++) {
      const other = new Spool(dir);
      expect(() => other.open()).toThrow(expect.objectContaining({ code: 'ERR_SPOOL_LOCKED' }));
      await other.close();
      expect(claims(dir)).toEqual(held);
      expect(readdirSync(dir).filter((f) => f.endsWith('.log'))).toEqual(segments);
    }
    // a claim of another live process is left alone too
    await owner.close();
    expect(claims(dir)).toEqual([]);
    const live = await sleeper();
    const theirs = writeClaim(dir, processIdentity(live.pid));
    const other = new Spool(dir);
    expect(() => other.open()).toThrow(new RegExp(`in use by process ${live.pid}`));
    await other.close();
    expect(claims(dir)).toEqual([theirs]);
  });

  it('takes over the claim of a dead owner, and of a pid now used by another process', async () => {
    const dir = tempDir();
    const gone = await sleeper();
    const identity = processIdentity(gone.pid);
    expect(identity.start).not.toBeNull();
    gone.kill('SIGKILL');
    await new Promise((r) => gone.once('exit', r));
    writeClaim(dir, identity);
    const s = new Spool(dir);
    s.open();
    expect(claims(dir)).toHaveLength(1);
    expect(spoolOwners(dir)).toEqual([expect.objectContaining({ identity: processIdentity(), state: 'alive' })]);
    await s.close();
    expect(claims(dir)).toEqual([]);

    // the pid is alive, but it is another process than the one that wrote the claim (started at another time)
    const reused = await sleeper();
    const claim = writeClaim(dir, { ...processIdentity(reused.pid), start: '1' });
    expect(spoolOwners(dir)[0]!.state).toBe('dead');
    const t = new Spool(dir);
    t.open();
    expect(claims(dir)).not.toContain(claim);
    await t.close();

    // a claim from before a reboot of this host is stale; one from another host cannot be judged: kept
    writeClaim(dir, { ...processIdentity(reused.pid), boot: 'another-boot' });
    const u = new Spool(dir);
    u.open();
    await u.close();
    const far = writeClaim(dir, { ...processIdentity(reused.pid), boot: 'another-boot', host: 'elsewhere' });
    expect(() => new Spool(dir).open()).toThrow(/process \d+ on elsewhere .*remove/);
    expect(claims(dir)).toEqual([far]);
    // as is one from another PID namespace (another container)
    writeFileSync(join(dir, far), JSON.stringify({ ...processIdentity(reused.pid), pidns: 'pid:[1]' }));
    expect(() => new Spool(dir).open()).toThrow(expect.objectContaining({ code: 'ERR_SPOOL_LOCKED' }));
  });

  it('contenders racing for a stale spool: exactly one owns it', async () => {
    const dir = tempDir();
    const gone = await sleeper();
    const identity = processIdentity(gone.pid);
    gone.kill('SIGKILL');
    await new Promise((r) => gone.once('exit', r));
    for (let round = 0; round < 2; round++) {
      writeClaim(dir, identity);
      const go = join(dir, `go-${round}`);
      const racers = Array.from({ length: 4 }, () => runChild(RACER, {}, [dir, go]));
      children.push(...racers);
      await Promise.all(racers.map((r) => r.waitLine(/^READY$/, 60_000)));
      writeFileSync(go, '');
      const outcomes = await Promise.all(racers.map((r) => r.waitLine(/^(WON|LOCKED)/, 60_000)));
      expect(outcomes.filter((o) => o === 'WON')).toHaveLength(1);
      expect(outcomes.filter((o) => o !== 'WON')).toEqual(Array(3).fill('LOCKED ERR_SPOOL_LOCKED'));
      const winner = racers[outcomes.indexOf('WON')]!;
      expect(spoolOwners(dir)).toEqual([
        expect.objectContaining({ identity: expect.objectContaining({ pid: winner.proc.pid }), state: 'alive' }),
      ]);
      for (const r of racers) r.proc.kill('SIGTERM');
      await Promise.all(racers.map((r) => r.exited));
      expect(claims(dir)).toEqual([]);
    }
  }, 120_000);

  it('scanSpool reads a live spool without locking or changing it, skipping a torn last record', async () => {
    const dir = tempDir();
    const s = new Spool(dir);
    s.open();
    await s.append([makeRecord('a'), makeRecord('b')]);
    const seg = readdirSync(dir).find((f) => f.endsWith('.log'))!;
    appendFileSync(join(dir, seg), '0badc0de {"id":"torn","timest');
    const before = readdirSync(dir).sort();
    const scan = scanSpool(dir);
    expect(scan.records.map((r) => r.id)).toEqual(['a', 'b']);
    expect(scan.owners).toEqual([expect.objectContaining({ state: 'alive' })]);
    expect(readdirSync(dir).sort()).toEqual(before);
    await s.append([makeRecord('c')]); // the owner is undisturbed
    await s.close();
  });
});
