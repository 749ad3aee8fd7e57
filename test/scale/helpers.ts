import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import type { UsageRecord } from '../../src/usage/types.js';

const dirs: string[] = [];
export function tempDir(prefix = 'tm-scale-'): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

let n = 0;
/** A valid usage record; `i` makes id and numbers differ. */
export function record(i = n++, over: Partial<UsageRecord> = {}): UsageRecord {
  const promptTokens = 10 + (i % 17);
  const completionTokens = 5 + (i % 13);
  return {
    id: `rec-${process.pid}-${i}-${Math.random().toString(36).slice(2, 8)}`,
    timestamp: 1_764_000_000_000 + i,
    key: `tenant-${i % 3}`,
    model: 'demo',
    promptTokens,
    cachedTokens: i % 5,
    completionTokens,
    totalTokens: promptTokens + completionTokens,
    finishReason: 'stop',
    latencyMs: 12,
    cacheHit: false,
    custom: {},
    cost: BigInt(promptTokens) * 500_000n + BigInt(completionTokens) * 1_500_000n,
    currency: 'USD',
    priceVersion: 'v1',
    ...over,
  };
}
