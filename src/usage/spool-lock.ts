/**
 * Ownership of a spool directory: one process at a time appends to it, replays it and deletes its segments.
 *
 * Each process that wants the spool writes a claim file, `spool.lock.<pid>-<random>`, naming itself: pid, process
 * start time (/proc/PID/stat, in clock ticks since boot), boot id, PID namespace and host name. The file appears
 * whole (written to a temporary name, then renamed). After its claim is in place the process lists the directory:
 * if it finds another claim whose owner is alive, it withdraws its own and the spool is locked; otherwise it owns
 * the spool until it removes its claim (`release`), which only the owner does, by the claim's unique name.
 *
 * Why two processes can never both own it: each lists the directory after its claim exists. Of two contenders,
 * the one that lists last finds the other's claim (it was created before the other's listing, hence before its
 * own), so at least one of them sees the other and withdraws. Both may withdraw; they then try again after a short
 * random pause, so a race ends with one owner, never with two.
 *
 * A claim is stale when its owner is gone: no process with that pid, a zombie, or a process with that pid but
 * another start time (the pid was reused), or a claim from before a reboot of this host. Stale claims are deleted
 * by whoever finds them; that is safe because a dead owner stays dead and every claim has its own name.
 * When liveness cannot be known (a claim from another PID namespace, as in another container, or from another
 * host on a shared file system) the claim counts as alive: the spool stays locked and the error names the file to
 * remove once that process is known to be gone. A spool is local to one machine and one PID namespace.
 *
 * `spool.lock` holding a bare pid (written by earlier versions) is honoured while that pid is alive. Without procfs
 * (not Linux) only the pid is checked, so there a reused pid keeps a stale claim alive until that process exits.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nodeCrypto, nodeOs } from '../lazy.js';
import { LedgerError } from './errors.js';

/** Who holds (or held) a claim. Fields are null where the platform cannot tell them (no procfs). */
export interface ProcessIdentity {
  pid: number;
  /** Process start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  start: string | null;
  /** /proc/sys/kernel/random/boot_id. */
  boot: string | null;
  /** PID namespace, as /proc/self/ns/pid names it. */
  pidns: string | null;
  host: string;
}

export type OwnerState = 'alive' | 'dead' | 'unknown';

export interface SpoolOwner {
  /** The claim file. */
  file: string;
  identity: ProcessIdentity;
  state: OwnerState;
}

const CLAIM_RE = /^spool\.lock\.\d+-[0-9a-f]{16}$/;
const LEGACY = 'spool.lock';
/** A claim younger than this may be a contender that is about to withdraw: try again before giving up. */
const FRESH_CLAIM_MS = 2000;
const ATTEMPTS = 8;

function readOr(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** State and start time of a process from /proc/PID/stat (undefined: no such process; null: no procfs). */
function procStat(pid: number): { state: string; start: string } | undefined | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (!fs.existsSync('/proc/self/stat')) return null;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH')
      return undefined;
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses: fields after it start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', start: fields[19] ?? '' };
}

let self: ProcessIdentity | undefined;

/** The identity of `pid` as seen from this process (this process's boot id, namespace and host). */
export function processIdentity(pid = process.pid): ProcessIdentity {
  if (pid === process.pid && self) return self;
  const st = procStat(pid);
  let pidns: string | null = null;
  try {
    pidns = fs.readlinkSync('/proc/self/ns/pid');
  } catch {
    // no procfs
  }
  const id: ProcessIdentity = {
    pid,
    start: st ? st.start : null,
    boot: readOr('/proc/sys/kernel/random/boot_id'),
    pidns,
    host: nodeOs().hostname(),
  };
  if (pid === process.pid) self = id;
  return id;
}

function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.start === b.start && a.boot === b.boot && a.pidns === b.pidns;
}

/** Whether the process a claim names is still running, judged from this process. */
export function ownerState(owner: ProcessIdentity): OwnerState {
  const me = processIdentity();
  if (sameProcess(owner, me)) return 'alive';
  if (owner.boot !== null && me.boot !== null && owner.boot !== me.boot) {
    // Another boot of this host: everything from then is gone. Another host: nothing can be known.
    return owner.host === me.host ? 'dead' : 'unknown';
  }
  if (owner.pidns !== null && me.pidns !== null && owner.pidns !== me.pidns) return 'unknown';
  const st = procStat(owner.pid);
  if (st === undefined) return 'dead';
  if (st === null) {
    try {
      process.kill(owner.pid, 0);
      return 'alive';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'dead';
    }
  }
  if (st.state === 'Z' || st.state === 'X') return 'dead'; // killed, not yet reaped: it holds nothing
  if (owner.start !== null && st.start !== owner.start) return 'dead'; // the pid now names another process
  return 'alive';
}

function parseClaim(text: string): ProcessIdentity | undefined {
  try {
    const j = JSON.parse(text) as Partial<ProcessIdentity>;
    if (!Number.isSafeInteger(j.pid) || (j.pid as number) <= 0) return undefined;
    const s = (v: unknown): string | null => (typeof v === 'string' ? v : null);
    return { pid: j.pid!, start: s(j.start), boot: s(j.boot), pidns: s(j.pidns), host: s(j.host) ?? '' };
  } catch {
    return undefined;
  }
}

/**
 * The claims in `dir` (read only: nothing is created or deleted), with the state of each owner. A claim that
 * cannot be parsed is reported as 'unknown'.
 */
export function spoolOwners(dir: string): SpoolOwner[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: SpoolOwner[] = [];
  for (const name of names.sort()) {
    const file = path.join(dir, name);
    let identity: ProcessIdentity | undefined;
    if (CLAIM_RE.test(name)) {
      const text = readOr(file);
      if (text === null) continue; // withdrawn or released meanwhile
      identity = parseClaim(text);
    } else if (name === LEGACY) {
      const text = readOr(file);
      if (text === null) continue;
      const pid = Number(text);
      if (!Number.isSafeInteger(pid) || pid <= 0) {
        out.push({ file, identity: { pid: 0, start: null, boot: null, pidns: null, host: '' }, state: 'dead' });
        continue; // earlier versions treated an unreadable pid as stale too
      }
      identity = { pid, start: null, boot: null, pidns: null, host: nodeOs().hostname() };
    } else {
      continue;
    }
    if (!identity) {
      out.push({ file, identity: { pid: 0, start: null, boot: null, pidns: null, host: '' }, state: 'unknown' });
      continue;
    }
    // A bare pid of this very process (earlier versions) cannot be told from a crashed earlier holder: stale.
    const state =
      name === LEGACY && identity.pid === process.pid && identity.start === null ? 'dead' : ownerState(identity);
    out.push({ file, identity, state });
  }
  return out;
}

function describeOwner(o: SpoolOwner): string {
  const who = o.identity.pid > 0 ? `process ${o.identity.pid}` : 'an unreadable claim';
  if (o.state === 'alive') return o.identity.pid === process.pid ? 'this process (another open ledger)' : who;
  return `${who}${o.identity.host && o.identity.host !== nodeOs().hostname() ? ` on ${o.identity.host}` : ''} (whose state cannot be checked from here: remove ${o.file} once it is known to be gone)`;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A held spool lock: `release()` removes this process's claim and nothing else. */
export class SpoolLock {
  private released = false;
  private constructor(
    readonly dir: string,
    /** This process's claim file. */
    readonly file: string,
  ) {}

  /**
   * Claims `dir` (which must exist) for this process. Throws LedgerError ERR_SPOOL_LOCKED when a live process
   * holds it. Stale claims found on the way are deleted.
   */
  static acquire(dir: string): SpoolLock {
    const me = processIdentity();
    const body = `${JSON.stringify(me)}\n`;
    let blocker: SpoolOwner | undefined;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const name = `spool.lock.${me.pid}-${nodeCrypto().randomBytes(8).toString('hex')}`;
      const file = path.join(dir, name);
      const tmp = path.join(dir, `.${name}.tmp`);
      const fd = fs.openSync(tmp, 'wx');
      try {
        fs.writeSync(fd, body);
        fs.fsyncSync(fd); // a claim that survives a power loss has its content: it can be judged stale later
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file); // the claim appears whole
      blocker = undefined;
      for (const o of spoolOwners(dir)) {
        if (o.file === file) continue;
        if (o.state === 'dead') fs.rmSync(o.file, { force: true });
        else blocker ??= o;
      }
      if (!blocker) {
        syncDir(dir);
        return new SpoolLock(dir, file);
      }
      fs.rmSync(file, { force: true });
      // An old claim is an owner, not a contender: give up at once. A fresh one may be withdrawn: retry.
      let age: number;
      try {
        age = Date.now() - fs.statSync(blocker.file).mtimeMs;
      } catch {
        age = 0; // gone already
      }
      if (age > FRESH_CLAIM_MS) break;
      sleepSync(5 + Math.floor(Math.random() * 40));
    }
    throw new LedgerError(
      'ERR_SPOOL_LOCKED',
      `spool ${dir} is in use by ${blocker ? describeOwner(blocker) : 'another process'}`,
    );
  }

  /** Removes this process's claim (idempotent). */
  release(): void {
    if (this.released) return;
    this.released = true;
    fs.rmSync(this.file, { force: true });
  }
}

function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // best effort: a lost claim after power loss only means the next start finds no owner, which is true then
  }
}
