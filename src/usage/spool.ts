/**
 * Local append-only spool: the durability point of the ledger.
 *
 * Contract: `append()` resolves only after the records' bytes were written and fdatasync'ed, so an accepted record
 * survives SIGKILL or power loss. Records stay in the spool until the database confirmed them (`ack`); a segment
 * file is deleted once every record in it is acknowledged and it is no longer the active segment. On open, every
 * record found in the segments is handed back for replay; ledgers are idempotent on the record id, so records that
 * were already in the database before the crash are not doubled.
 *
 * File format: one record per line, `<crc32 hex> <json>\n`. A torn last line (crash mid-write: never acknowledged)
 * fails its checksum or lacks the newline and is skipped.
 *
 * Threads: all bookkeeping on the JS thread; write + fdatasync run on libuv's pool, one at a time. Appends that
 * arrive while a write is in flight are grouped into the next write (group commit).
 * Exclusive: one process owns a spool (spool-lock.ts: a claim file naming pid and process start time; only its owner
 * removes it; a dead owner's claim is taken over). Readers that must not take it (reports) use `scanSpool`, which
 * reads the segments without locking or changing anything.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lazyModule } from '../lazy.js';
import { LedgerError, SpoolFullError } from './errors.js';
import { recordToJson, validateRecord } from './record.js';
import { SpoolLock, spoolOwners, type SpoolOwner } from './spool-lock.js';
import type { UsageRecord } from './types.js';

const zlib = lazyModule<typeof import('node:zlib')>('node:zlib');

export interface SpoolOptions {
  /** Refuse new records once this many bytes are waiting for the database (default 64 MiB ≈ 190k records). */
  maxBytes?: number;
  /** Rotate the active segment after this many bytes (default 4 MiB). */
  segmentBytes?: number;
  /** fdatasync before acknowledging (default true; false only for benchmarks of the DB path). */
  sync?: boolean;
}

export class Segment {
  pending = 0;
  size = 0;
  constructor(
    readonly file: string,
    public fd: number,
  ) {}
}

export interface SpoolTicket {
  /** Set when the bytes are written (the active segment may rotate between append and write). */
  segment: Segment | undefined;
  readonly bytes: number;
}

interface Waiting {
  buf: Buffer;
  tickets: SpoolTicket[];
  resolve: () => void;
  reject: (err: Error) => void;
}

const SEG_RE = /^segment-(\d{12})\.log$/;

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The records of one segment file's bytes; a torn or corrupt line (never acknowledged) is skipped. */
function parseSegment(data: Buffer): { record: UsageRecord; bytes: number }[] {
  const out: { record: UsageRecord; bytes: number }[] = [];
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(10, start);
    if (nl < 0) break; // torn tail: never acknowledged
    const line = data.subarray(start, nl);
    start = nl + 1;
    const sp = line.indexOf(32);
    if (sp !== 8) continue;
    const body = line.subarray(9);
    if (zlib().crc32(body).toString(16).padStart(8, '0') !== line.subarray(0, 8).toString('latin1')) continue;
    try {
      out.push({ record: validateRecord(JSON.parse(body.toString('utf8'))), bytes: line.length + 1 });
    } catch {
      continue;
    }
  }
  return out;
}

export interface SpoolScan {
  dir: string;
  /** Records in the segment files (some may already be in the database: a segment is deleted only when all are). */
  records: UsageRecord[];
  segments: number;
  /** Claims on the spool and whether their owners are alive. */
  owners: SpoolOwner[];
}

/**
 * Reads a spool without taking it: no lock, nothing created, nothing deleted. Safe beside the live owner: a segment
 * deleted while it is read is skipped (its records were in the database), and a last record being written is
 * skipped like a torn one.
 */
export function scanSpool(dir: string): SpoolScan {
  const abs = path.resolve(dir);
  const owners = spoolOwners(abs);
  let names: string[];
  try {
    names = fs.readdirSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { dir: abs, records: [], segments: 0, owners };
    throw err;
  }
  const records: UsageRecord[] = [];
  let segments = 0;
  for (const name of names.filter((n) => SEG_RE.test(n)).sort()) {
    let data: Buffer;
    try {
      data = fs.readFileSync(path.join(abs, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    segments++;
    for (const r of parseSegment(data)) records.push(r.record);
  }
  return { dir: abs, records, segments, owners };
}

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  private readonly sync: boolean;
  private active: Segment | undefined;
  private readonly segments = new Set<Segment>();
  private nextSeq = 1;
  private pendingBytesTotal = 0;
  private queue: Waiting[] = [];
  private writing = false;
  private closed = false;
  private lock: SpoolLock | undefined;

  constructor(dir: string, options: SpoolOptions = {}) {
    this.dir = path.resolve(dir);
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
    this.sync = options.sync ?? true;
  }

  /** Bytes of records not yet acknowledged by the database. */
  get pendingBytes(): number {
    return this.pendingBytesTotal;
  }

  /** Lock the directory and return every record found in it (to be replayed), each with its ticket. */
  open(): { record: UsageRecord; ticket: SpoolTicket }[] {
    if (this.closed) throw new LedgerError('ERR_LEDGER_CLOSED', 'the ledger is closed');
    if (this.lock) throw new LedgerError('ERR_LEDGER', `spool ${this.dir} is already open`);
    fs.mkdirSync(this.dir, { recursive: true });
    this.lock = SpoolLock.acquire(this.dir);
    const out: { record: UsageRecord; ticket: SpoolTicket }[] = [];
    try {
      const names = fs
        .readdirSync(this.dir)
        .filter((n) => SEG_RE.test(n))
        .sort();
      for (const name of names) {
        const seq = Number(SEG_RE.exec(name)![1]);
        this.nextSeq = Math.max(this.nextSeq, seq + 1);
        const file = path.join(this.dir, name);
        const data = fs.readFileSync(file);
        const seg = new Segment(file, -1);
        seg.size = data.length;
        for (const { record, bytes } of parseSegment(data)) {
          seg.pending++;
          this.pendingBytesTotal += bytes;
          out.push({ record, ticket: { segment: seg, bytes } });
        }
        if (seg.pending === 0) fs.rmSync(file, { force: true });
        else this.segments.add(seg);
      }
      this.openNewSegment();
    } catch (err) {
      this.lock.release();
      this.lock = undefined;
      throw err;
    }
    return out;
  }

  /** Whether a new record may be accepted now (the Meter checks this at admission). */
  hasRoom(): boolean {
    return this.pendingBytesTotal < this.maxBytes;
  }

  /**
   * Append records durably. Resolves after fdatasync. `force` skips the size bound (records of requests that were
   * already admitted); otherwise a full spool rejects with SpoolFullError.
   */
  append(records: UsageRecord[], force = false, lastDbError?: string): Promise<SpoolTicket[]> {
    if (this.closed) return Promise.reject(new LedgerError('ERR_LEDGER_CLOSED', 'the ledger is closed'));
    if (!force && !this.hasRoom())
      return Promise.reject(new SpoolFullError(this.pendingBytesTotal, this.maxBytes, lastDbError));
    let text = '';
    const tickets: SpoolTicket[] = [];
    for (const r of records) {
      const json = JSON.stringify(recordToJson(r));
      const line = `${zlib().crc32(json).toString(16).padStart(8, '0')} ${json}\n`; // crc32 of the UTF-8 bytes
      text += line;
      const bytes = Buffer.byteLength(line, 'utf8');
      tickets.push({ segment: undefined, bytes });
      this.pendingBytesTotal += bytes;
    }
    return new Promise<SpoolTicket[]>((resolve, reject) => {
      this.queue.push({ buf: Buffer.from(text, 'utf8'), tickets, resolve: () => resolve(tickets), reject });
      this.kick();
    });
  }

  /** The database has these records: forget them, deleting finished segments. */
  ack(tickets: SpoolTicket[]): void {
    for (const t of tickets) {
      const seg = t.segment;
      if (!seg) throw new LedgerError('ERR_LEDGER', 'spool: ack of a record that was never written');
      t.segment = undefined;
      seg.pending--;
      this.pendingBytesTotal -= t.bytes;
      if (seg.pending === 0 && seg !== this.active) this.dropSegment(seg);
    }
  }

  /** Wait for writes in flight, then close files (finished segments are deleted, others kept for replay). */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 2));
    this.closed = true;
    const a = this.active;
    if (a) {
      fs.closeSync(a.fd);
      a.fd = -1;
      this.active = undefined;
      if (a.pending === 0) this.dropSegment(a);
    }
    for (const s of this.segments) if (s.fd >= 0) fs.closeSync(s.fd);
    // Only a spool this object opened is released, and only its own claim: never another process's.
    this.lock?.release();
    this.lock = undefined;
  }

  private openNewSegment(): void {
    const file = path.join(this.dir, `segment-${String(this.nextSeq++).padStart(12, '0')}.log`);
    const seg = new Segment(file, fs.openSync(file, 'a'));
    fsyncDir(this.dir); // the new file's directory entry must survive a crash too
    this.segments.add(seg);
    this.active = seg;
  }

  private dropSegment(seg: Segment): void {
    if (seg.fd >= 0) {
      fs.closeSync(seg.fd);
      seg.fd = -1;
    }
    this.segments.delete(seg);
    fs.rmSync(seg.file, { force: true });
  }

  private kick(): void {
    if (this.writing || this.queue.length === 0) return;
    this.writing = true;
    const batch = this.queue;
    this.queue = [];
    const seg = this.active!;
    for (const w of batch) {
      for (const t of w.tickets) {
        t.segment = seg;
        seg.pending++;
      }
    }
    const buf = batch.length === 1 ? batch[0]!.buf : Buffer.concat(batch.map((w) => w.buf));
    const finish = (err: Error | null) => {
      this.writing = false;
      seg.size += buf.length;
      if (err) {
        for (const w of batch) {
          for (const t of w.tickets) {
            t.segment = undefined;
            seg.pending--;
            this.pendingBytesTotal -= t.bytes;
          }
          w.reject(new LedgerError('ERR_LEDGER', `usage spool write failed: ${err.message}`, { cause: err }));
        }
      } else {
        for (const w of batch) w.resolve();
      }
      // After a failed write the file may end in a partial line: never append after it.
      if (!this.closed && seg === this.active && (err || seg.size >= this.segmentBytes)) {
        try {
          this.openNewSegment();
          if (seg.pending === 0) this.dropSegment(seg);
        } catch {
          this.active = seg; // keep appending to the old one
        }
      }
      this.kick();
    };
    writeAll(seg.fd, buf, (err) => {
      if (err || !this.sync) return finish(err);
      fs.fdatasync(seg.fd, (e) => finish(e));
    });
  }
}

function writeAll(fd: number, buf: Buffer, cb: (err: Error | null) => void, off = 0): void {
  fs.write(fd, buf, off, buf.length - off, null, (err, n) => {
    if (err) return cb(err);
    if (off + n < buf.length) return writeAll(fd, buf, cb, off + n);
    cb(null);
  });
}
