/**
 * Two processes, each a Meter over the test-double model, share one Redis: a key's TPM limit holds across both
 * under concurrent load. The control run with the in-memory limiter admits about twice as much, which shows the
 * test can fail. (The real `tokmeter serve --redis` needs a built model; this exercises the same Meter + limiter.)
 */
import { describe, expect, it } from 'vitest';
import { fixture, runChild } from './child.js';
import { RUN_REDIS, redisUrl, uniquePrefix } from './redis-helper.js';

const PER_REQUEST = 5 + 20; // 5 prompt words + maxNewTokens
const TPM = 25 * PER_REQUEST + 10; // room for exactly 25 requests in the window

async function runPair(mode: 'shared' | 'local') {
  const prefix = uniquePrefix('xproc');
  const env = {
    REDIS_URL: redisUrl(),
    PREFIX: prefix,
    MODE: mode,
    N: '40',
    SPACING_MS: '10',
    MAX_NEW: '20',
    TPM: String(TPM),
    PARTIES: '2', // both children wait for each other at a barrier in Redis
  };
  const kids = [runChild(fixture('limiter-child.ts'), env), runChild(fixture('limiter-child.ts'), env)];
  const outs = await Promise.all(
    kids.map(async (k) => {
      const { code } = await k.exited;
      expect(code, k.stderr.join('')).toBe(0);
      return JSON.parse(k.lines.at(-1)!) as {
        admitted: number;
        refused: number;
        tokens: number;
        other: string[];
        startedAt: number;
      };
    }),
  );
  for (const o of outs) expect(o.other).toEqual([]);
  expect(Math.abs(outs[0]!.startedAt - outs[1]!.startedAt)).toBeLessThan(100); // the load did overlap
  return outs;
}

describe.runIf(RUN_REDIS)('TPM across two processes sharing one Redis', () => {
  it('admits exactly what the limit allows, in total, under concurrent load', async () => {
    const outs = await runPair('shared');
    const admitted = outs[0]!.admitted + outs[1]!.admitted;
    expect(admitted).toBe(25);
    expect(outs[0]!.tokens + outs[1]!.tokens).toBeLessThanOrEqual(TPM);
    expect(outs[0]!.refused + outs[1]!.refused).toBe(80 - 25);
    expect(outs[0]!.admitted).toBeGreaterThan(0); // both took part
    expect(outs[1]!.admitted).toBeGreaterThan(0);
  });

  it('control: per-process limits let the pair overshoot', async () => {
    const outs = await runPair('local');
    expect(outs[0]!.admitted + outs[1]!.admitted).toBe(50);
  });
});
