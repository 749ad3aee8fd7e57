import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Spool } from '../../src/usage/spool.js';
import { makeRecord } from './fixtures/records.js';
import { tempDir } from './helpers.js';

const segs = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort();

describe('Spool', () => {
  it('rotates segments, deletes fully acknowledged ones, and replays the rest in order', async () => {
    const dir = tempDir();
    const s = new Spool(dir, { segmentBytes: 2000 });
    expect(s.open()).toEqual([]);
    const tickets = [];
    for (let i = 0; i < 40; i++) tickets.push(...(await s.append([makeRecord(`r${i}`)])));
    expect(segs(dir).length).toBeGreaterThan(3);
    const bytes = s.pendingBytes;
    s.ack(tickets.slice(0, 20)); // the first half is in the database
    expect(s.pendingBytes).toBeLessThan(bytes);
    const left = segs(dir);
    // fully acknowledged, inactive segments are gone; nothing not acknowledged was deleted
    const onDisk = left
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l.slice(9)).id);
    for (let i = 20; i < 40; i++) expect(onDisk).toContain(`r${i}`);
    expect(onDisk.length).toBeLessThan(40);
    // release (as a crash would, for the next owner) and reopen: exactly the unacknowledged records come back
    // (plus acknowledged neighbours sharing a segment with them, which the idempotent ledger ignores)
    await s.close();
    const s2 = new Spool(dir, { segmentBytes: 2000 });
    const back = s2.open().map((x) => x.record.id);
    for (let i = 20; i < 40; i++) expect(back).toContain(`r${i}`);
    expect(new Set(back).size).toBe(back.length);
    await s2.close();
  });

  it('groups concurrent appends into few writes and keeps every record', async () => {
    const dir = tempDir();
    const s = new Spool(dir);
    s.open();
    await Promise.all(Array.from({ length: 500 }, (_, i) => s.append([makeRecord(`g${i}`)])));
    const lines = segs(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
    expect(lines).toHaveLength(500);
    expect(new Set(lines.map((l) => JSON.parse(l.slice(9)).id)).size).toBe(500);
    await s.close();
  });

  it('detects a corrupted line by its checksum', async () => {
    const dir = tempDir();
    const s = new Spool(dir);
    s.open();
    await s.append([makeRecord('a'), makeRecord('b'), makeRecord('c')]);
    await s.close();
    const f = join(dir, segs(dir)[0]!);
    writeFileSync(f, readFileSync(f, 'utf8').replace('"id":"b"', '"id":"X"'));
    const back = new Spool(dir).open().map((x) => x.record.id);
    expect(back).toEqual(['a', 'c']);
  });
});
