/**
 * Continuous batching (native/engine/scheduler.h, batch_kv.h): concurrent generate() calls on one Model share
 * decode steps, and each sequence's greedy tokens, text and usage equal its solo run whatever else is in the batch
 * (different prompt lengths, stop points, joins mid-batch, an abort, a parked consumer, fp16 KV, a graph without
 * position_ids, the prefix cache). Solo runs come from the same folder loaded with maxBatch 1. Every test also
 * checks that batching really happened (stats().batchRows > batchSteps), so it fails if the engine ran them one by
 * one. Queue overflow and the KV budget are here too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvBudgetError, Model, QueueFullError, type GenerateOptions } from '../../src/model/index.js';
import { ids, meanBatch, same, soloRuns, staggered, type Case } from './batch-helpers.js';
import { makeTestModel, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let tiny: string;
let solo: Model;
let batched: Model;

beforeAll(async () => {
  root = tempDir('batch');
  tiny = await makeTestModel(root.dir, 'tiny');
  solo = await Model.load(tiny, { threads: 1, maxBatch: 1 });
  batched = await Model.load(tiny, { threads: 1, maxBatch: 8 });
});
afterAll(async () => {
  await solo?.dispose();
  await batched?.dispose();
  root?.cleanup();
});

/** Prompts of different lengths; different maxNewTokens; some stop early on an EOS id taken from their solo run. */
async function cases(m: Model, n: number): Promise<Case[]> {
  const out: Case[] = [];
  for (let i = 0; i < n; i++) {
    const prompt = ids(i + 1, 3 + ((i * 13) % 40));
    // Long enough (30-49 steps) that the batch stays full even when a loaded machine admits arrivals a few steps
    // apart: with 6-25 steps the mean batch of 6 sequences was ~2.5 at best and fell to 2 once in CI.
    const options: GenerateOptions = { maxNewTokens: 30 + ((i * 7) % 20), temperature: 0, eosTokenIds: [] };
    if (i % 3 === 2) {
      // Stop at the 4th sampled token of the solo run (an EOS id that first appears there).
      const base = await m.generate(prompt, options).result;
      const at = Array.from(base.tokens).findIndex((t, k) => k >= 3 && base.tokens.indexOf(t) === k);
      if (at >= 0) options.eosTokenIds = [base.tokens[at]!];
    }
    out.push({ prompt, options });
  }
  return out;
}

describe('continuous batching', () => {
  it('N concurrent greedy generations (different lengths and stop points) each equal their solo run', async () => {
    const cs = await cases(solo, 8);
    const want = await soloRuns(solo, cs);
    expect(want.some((r) => r.finishReason === 'stop')).toBe(true);
    expect(new Set(want.map((r) => r.tokens.length)).size).toBeGreaterThan(3);
    const before = batched.stats();
    const got = await Promise.all(cs.map((c) => batched.generate(c.prompt, c.options).result));
    got.forEach((r, i) => same(r, want[i]!));
    for (const [i, r] of got.entries()) expect(r.usage.promptTokens).toBe(cs[i]!.prompt.tokens.length);
    expect(meanBatch(batched, before)).toBeGreaterThan(2);
    expect(batched.stats()).toMatchObject({ running: 0, queued: 0, parked: 0, kvReservedBytes: 0, maxBatch: 8 });
  });

  it('sequences joining a running batch (staggered) stay exact', async () => {
    const cs = (await cases(solo, 6)).map((c) => ({ ...c, options: { ...c.options, maxNewTokens: 24 } }));
    await staggered(solo, batched, cs);
  });

  for (const [label, options] of [
    ['fp16 KV', { kvDtype: 'float16' as const }],
    ['no position_ids', { positionIds: false }],
  ] as const) {
    it(`is exact for ${label}`, async () => {
      const dir = await makeTestModel(root.dir, `tiny-${label.replace(/\W/g, '')}`, options);
      const one = await Model.load(dir, { threads: 1, maxBatch: 1 });
      const many = await Model.load(dir, { threads: 1, maxBatch: 8 });
      try {
        expect(many.info.batchable).toBe(true);
        const cs = await cases(one, 6);
        const want = await soloRuns(one, cs);
        const before = many.stats();
        const got = await Promise.all(cs.map((c) => many.generate(c.prompt, c.options).result));
        got.forEach((r, i) => same(r, want[i]!));
        expect(meanBatch(many, before)).toBeGreaterThan(2);
      } finally {
        await one.dispose();
        await many.dispose();
      }
    });
  }

  it('chunked prefill (prefillChunk) of a long prompt joining a running batch stays exact', async () => {
    const m = await Model.load(tiny, { threads: 1, maxBatch: 4, prefillChunk: 7 });
    try {
      const cs: Case[] = [
        { prompt: ids(50, 5), options: { maxNewTokens: 200, temperature: 0, eosTokenIds: [] } },
        { prompt: ids(51, 90), options: { maxNewTokens: 10, temperature: 0, eosTokenIds: [] } },
        { prompt: ids(52, 33), options: { maxNewTokens: 12, temperature: 0, eosTokenIds: [] } },
      ];
      const want = await soloRuns(solo, cs);
      // Started together: the first is prefilled alone (at once), then the long prompts are prefilled 7 tokens per
      // step beside its decode steps (it needs 200 steps; they need 13 and 5 chunks).
      const got = await Promise.all(cs.map((c) => m.generate(c.prompt, c.options).result));
      const t = m.timings();
      expect(t.forwards - t.decodeForwards).toBeGreaterThanOrEqual(1 + 13 + 5); // prefill calls: chunked
      got.forEach((r, i) => same(r, want[i]!));
    } finally {
      await m.dispose();
    }
  });

  it('aborting one sequence mid-batch leaves the others exact', async () => {
    const cs = (await cases(solo, 5)).map((c) => ({
      ...c,
      options: { ...c.options, maxNewTokens: 30, eosTokenIds: [] },
    }));
    // The victim runs at most 3 tokens ahead of its reader, so it is still running when the reader leaves.
    cs[2]!.options.highWaterMark = 3;
    const want = await soloRuns(solo, cs);
    const before = batched.stats();
    const runs = cs.map((c) => batched.generate(c.prompt, c.options));
    const victim = runs[2]!;
    let seen = 0;
    for await (const chunk of victim) {
      seen += chunk.tokens.length;
      if (seen >= 3) break; // leaving the loop aborts it
    }
    const aborted = await victim.result;
    expect(aborted.finishReason).toBe('abort');
    expect(aborted.usage.promptTokens).toBe(cs[2]!.prompt.tokens.length);
    expect(aborted.usage.completionTokens).toBe(aborted.tokens.length);
    expect(aborted.usage.completionTokens).toBeGreaterThanOrEqual(3);
    expect(aborted.usage.completionTokens).toBeLessThan(30);
    // What it produced before the abort is its solo prefix.
    expect(Array.from(aborted.tokens)).toEqual(Array.from(want[2]!.tokens).slice(0, aborted.tokens.length));
    const others = await Promise.all(runs.filter((_, i) => i !== 2).map((r) => r.result));
    others.forEach((r, k) => same(r, want[k < 2 ? k : k + 1]!));
    expect(meanBatch(batched, before)).toBeGreaterThan(1.5);
    expect(batched.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  it('a consumer that does not read is parked (keeps its KV); the others keep stepping and stay exact', async () => {
    const slow = {
      prompt: ids(70, 12),
      options: { maxNewTokens: 30, temperature: 0, eosTokenIds: [], highWaterMark: 2 },
    };
    const cs = (await cases(solo, 4)).map((c) => ({ ...c, options: { ...c.options, maxNewTokens: 20 } }));
    const [wantSlow, ...want] = await soloRuns(solo, [slow, ...cs]);
    const held = batched.generate(slow.prompt, slow.options);
    const reader = held[Symbol.asyncIterator](); // chunks are acknowledged only as taken: nothing is taken yet
    await expect.poll(() => batched.stats().parked, { timeout: 5000 }).toBe(1);
    const got = await Promise.all(cs.map((c) => batched.generate(c.prompt, c.options).result));
    got.forEach((r, i) => same(r, want[i]!));
    expect(batched.stats()).toMatchObject({ running: 1, parked: 1, queued: 0 });
    // Now read it: it resumes from its kept KV and ends exactly as alone.
    const tokens: number[] = [];
    for (let n = await reader.next(); !n.done; n = await reader.next()) tokens.push(...n.value.tokens);
    const r = await held.result;
    same(r, wantSlow!);
    expect(tokens).toEqual(Array.from(wantSlow!.tokens));
    expect(batched.stats()).toMatchObject({ running: 0, parked: 0 });
  });

  it('prefix cache with batching: hits and misses equal the uncached solo runs; cachedTokens exact', async () => {
    const m = await Model.load(tiny, { threads: 1, maxBatch: 8, prefixCache: true });
    try {
      const shared = ids(90, 30).tokens;
      const prompts = [
        { tokens: [...shared, ...ids(91, 5).tokens] },
        { tokens: [...shared, ...ids(92, 9).tokens] },
        { tokens: ids(93, 14).tokens }, // shares nothing
        { tokens: [...shared.slice(0, 20), ...ids(94, 3).tokens] },
        { tokens: [...shared, ...ids(91, 5).tokens] }, // the first prompt again
      ];
      const options = { maxNewTokens: 12, temperature: 0, eosTokenIds: [] as number[] };
      const want = await soloRuns(
        solo,
        prompts.map((prompt) => ({ prompt, options })),
      );
      // Prefills run in admission (= call) order, and each prompt is kept right after its prefill, so a prompt can
      // be served by any earlier one: the longest common prefix, all but its last token.
      const common = (a: number[], b: number[]): number => {
        let i = 0;
        while (i < a.length && i < b.length && a[i] === b[i]) i++;
        return i;
      };
      const expected = prompts.map((p, i) =>
        Math.min(p.tokens.length - 1, Math.max(0, ...prompts.slice(0, i).map((q) => common(p.tokens, q.tokens)))),
      );
      expect(expected).toEqual([0, 30, 0, 20, 34]);
      const before = m.stats();
      const got = await Promise.all(prompts.map((p) => m.generate(p, options).result));
      got.forEach((r, i) => {
        expect(Array.from(r.tokens)).toEqual(Array.from(want[i]!.tokens));
        expect(r.usage).toEqual({ ...want[i]!.usage, cachedTokens: expected[i] });
      });
      const s = m.stats();
      expect(s.cachedTokens).toBe(expected.reduce((a, b) => a + b, 0));
      expect(s.cacheHits).toBe(3);
      expect(s.cacheMisses).toBe(2);
      expect(meanBatch(m, before)).toBeGreaterThan(2);
      expect(s.cacheBytes).toBeLessThanOrEqual(s.cacheLimitBytes);
    } finally {
      await m.dispose();
    }
  });
});

describe('limits', () => {
  it('queue overflow: past maxBatch running and maxQueue waiting, generate() throws QueueFullError', async () => {
    const m = await Model.load(tiny, { threads: 1, maxBatch: 2, maxQueue: 1 });
    try {
      const holdOptions = { maxNewTokens: 100, temperature: 0, eosTokenIds: [], highWaterMark: 1 };
      // One at a time: a request counts as queued until the inference thread admits it. Each iterator is taken at
      // once, so chunks are acknowledged only as read (never): each is parked after its first token.
      const held = [m.generate('Hello world', holdOptions)];
      const readers = [held[0]![Symbol.asyncIterator]()];
      await expect.poll(() => m.stats().running, { timeout: 5000 }).toBe(1);
      held.push(m.generate('Hello again', holdOptions));
      readers.push(held[1]![Symbol.asyncIterator]());
      await expect.poll(() => m.stats(), { timeout: 5000 }).toMatchObject({ running: 2, parked: 2 });
      const greedy = { maxNewTokens: 4, temperature: 0, eosTokenIds: [] as number[] };
      const queued = m.generate('first', greedy);
      expect(m.stats()).toMatchObject({ running: 2, queued: 1 });
      let err: unknown;
      try {
        m.generate('second', greedy);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QueueFullError);
      expect((err as QueueFullError).code).toBe('ERR_QUEUE_FULL');
      expect(m.stats()).toMatchObject({ running: 2, queued: 1 });
      held[0]!.abort();
      expect((await queued.result).usage.completionTokens).toBe(4);
      held[1]!.abort();
      await Promise.all(readers.map((r) => r.return?.()));
      for (const g of held) expect((await g.result).finishReason).toBe('abort');
      expect(m.stats()).toMatchObject({ running: 0, queued: 0, parked: 0 });
    } finally {
      await m.dispose();
    }
  });

  it('KV budget: a request that alone exceeds it is refused (KvBudgetError); one that fits only alone waits', async () => {
    const perToken = solo.info.kvBytesPerToken;
    // Room for 2 x 60 token-capacities: one 40 + 20 request alone, not two of them.
    const m = await Model.load(tiny, { threads: 1, maxBatch: 4, kvCacheBytes: 2 * 60 * perToken + 10 });
    try {
      expect(m.stats().kvCacheBytes).toBe(2 * 60 * perToken + 10);
      let err: unknown;
      try {
        m.generate(ids(1, 40), { maxNewTokens: 21, temperature: 0 });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KvBudgetError);
      expect((err as KvBudgetError).code).toBe('ERR_KV_BUDGET');
      expect((err as Error).message).toMatch(/kvCacheBytes/);
      expect(m.stats()).toMatchObject({ running: 0, queued: 0 });

      const options = { maxNewTokens: 20, temperature: 0, eosTokenIds: [] as number[], highWaterMark: 1 };
      const a = m.generate(ids(2, 40), options);
      const reader = a[Symbol.asyncIterator]();
      await expect.poll(() => m.stats().running, { timeout: 5000 }).toBe(1);
      expect(m.stats().kvReservedBytes).toBe(2 * 60 * perToken);
      const b = m.generate(ids(3, 40), { ...options, highWaterMark: 64 });
      await new Promise((r) => setTimeout(r, 50));
      expect(m.stats()).toMatchObject({ running: 1, queued: 1 }); // waits for room, not refused
      for (let n = await reader.next(); !n.done; n = await reader.next());
      const [ra, rb] = [await a.result, await b.result];
      same(ra, await solo.generate(ids(2, 40), options).result);
      same(rb, await solo.generate(ids(3, 40), options).result);
    } finally {
      await m.dispose();
    }
  });

  it('validates maxBatch and prefillChunk', async () => {
    await expect(Model.load(tiny, { maxBatch: 0 })).rejects.toThrow(/maxBatch/);
    await expect(Model.load(tiny, { maxBatch: 1.5 })).rejects.toThrow(/maxBatch/);
    await expect(Model.load(tiny, { maxBatch: 2000 })).rejects.toThrow(/maxBatch/);
    await expect(Model.load(tiny, { maxBatch: '4' as unknown as number })).rejects.toThrow(/maxBatch/);
    await expect(Model.load(tiny, { prefillChunk: 0 })).rejects.toThrow(/prefillChunk/);
  });
});
