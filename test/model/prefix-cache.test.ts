/**
 * The prompt-prefix KV cache (Model.load option prefixCache): greedy outputs equal an uncached model's on the miss
 * and hit paths (fp32 KV, fp16 KV, a graph without position_ids), usage.cachedTokens is exact, LRU eviction keeps
 * the byte budget, a prompt larger than what the budget leaves next to the running generations runs uncached,
 * stats() reports it all. The budget (kvCacheBytes) is shared: a running generation reserves
 * 2 x kvBytesPerToken x (prompt + maxNewTokens) and the cache may hold the rest (cacheLimitBytes).
 * Batching with the cache is in batching.test.ts. The cache's internals
 * (copy layout, LRU order, replacement) are unit-tested in native/engine/test/prefix_cache_test.cc.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type GenerationResult, type PromptInput } from '../../src/model/index.js';
import { makeTestModel, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let tiny: string;
let plain: Model;

const SYSTEM = 'You are a careful assistant. Answer in one short sentence, and never make things up. ';
const greedy = { maxNewTokens: 16, temperature: 0, eosTokenIds: [] as number[] };

beforeAll(async () => {
  root = tempDir('prefix');
  tiny = await makeTestModel(root.dir, 'tiny');
  plain = await Model.load(tiny, { threads: 1 });
});
afterAll(async () => {
  await plain?.dispose();
  root?.cleanup();
});

async function run(m: Model, prompt: PromptInput): Promise<GenerationResult> {
  return m.generate(prompt, greedy).result;
}

/** Tokens two prompts share from the start. */
function common(a: Uint32Array, b: Uint32Array): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** A token prompt whose ids start at `first` (distinct first ids: no shared prefix, not even BOS). */
function ids(first: number, length: number): { tokens: number[] } {
  return { tokens: Array.from({ length }, (_, i) => 100 + ((first * 37 + i * 11) % 5000)) };
}

describe('prefix cache', () => {
  it('is off by default: cachedTokens 0, stats say so', async () => {
    await run(plain, SYSTEM + 'Hello');
    const r = await run(plain, SYSTEM + 'Hello');
    expect(r.usage.cachedTokens).toBe(0);
    expect(plain.stats()).toMatchObject({ prefixCache: false, cacheHits: 0, cachedTokens: 0, cacheBytes: 0 });
  });

  for (const [label, options] of [
    ['fp32 KV', {}],
    ['fp16 KV', { kvDtype: 'float16' as const }],
    ['no position_ids', { positionIds: false }],
  ] as const) {
    it(`miss and hit paths equal the uncached model; cachedTokens exact (${label})`, async () => {
      const dir =
        label === 'fp32 KV' ? tiny : await makeTestModel(root.dir, `tiny-${label.replace(/\W/g, '')}`, options);
      const reference = label === 'fp32 KV' ? plain : await Model.load(dir, { threads: 1 });
      const cached = await Model.load(dir, { threads: 1, prefixCache: true });
      try {
        const prompts = [
          SYSTEM + 'What is the capital of France?',
          SYSTEM + 'Name a prime number larger than ten.',
          SYSTEM + 'What is the capital of France?', // the first prompt again
          SYSTEM + 'What is the capital of France? And of Spain?', // an earlier turn extended
        ];
        const seen: Uint32Array[] = [];
        let expectedCached = 0;
        for (const prompt of prompts) {
          const encoded = cached.encodePrompt(prompt);
          // What the cache can serve: the longest prefix shared with an earlier prompt, all but the last token.
          const shared = Math.max(0, ...seen.map((s) => common(s, encoded)));
          const want = Math.min(shared, encoded.length - 1);
          const [a, b] = [await run(reference, prompt), await run(cached, prompt)];
          expect(Array.from(b.tokens)).toEqual(Array.from(a.tokens));
          expect(b.text).toBe(a.text);
          expect(b.usage).toEqual({ ...a.usage, cachedTokens: want });
          expectedCached += want;
          seen.push(encoded);
        }
        const sys = cached.encodePrompt(SYSTEM).length;
        expect(expectedCached).toBeGreaterThan(3 * (sys - 2)); // the system prompt was served on every later turn
        const s = cached.stats();
        expect(s.prefixCache).toBe(true);
        expect(s.cachedTokens).toBe(expectedCached);
        expect(s.cacheHits).toBe(3);
        expect(s.cacheMisses).toBe(1);
        // Entries: prompt 1 was replaced by its extension (prompt 4); prompt 2 stays. Bytes are exact.
        expect(s.cacheEntries).toBe(2);
        expect(s.cacheBytes).toBe((seen[1]!.length + seen[3]!.length) * cached.info.kvBytesPerToken);
        expect(s).toMatchObject({ running: 0, queued: 0, cacheEvictions: 0, cacheOversized: 0 });
      } finally {
        await cached.dispose();
        if (reference !== plain) await reference.dispose();
      }
    });
  }

  it('evicts the least recently used prompt to stay within kvCacheBytes; outputs stay equal', async () => {
    const perToken = plain.info.kvBytesPerToken;
    const [a, b, c] = [ids(1, 40), ids(2, 40), ids(3, 40)];
    // A running request reserves 2 x (40 + 16) tokens; the cache gets the rest: room for two 40-token prompts.
    const m = await Model.load(tiny, { threads: 1, prefixCache: true, kvCacheBytes: (2 * 56 + 80) * perToken });
    try {
      await run(m, a);
      await run(m, b);
      expect((await run(m, a)).usage.cachedTokens).toBe(39); // a is now the most recent, b the least
      await run(m, c); // evicts b
      let s = m.stats();
      expect(s.cacheEntries).toBe(2);
      expect(s.cacheEvictions).toBe(1);
      expect(s.cacheBytes).toBe(80 * perToken);
      expect(s.cacheBytes).toBeLessThanOrEqual(s.kvCacheBytes);
      const rb = await run(m, b);
      expect(rb.usage.cachedTokens).toBe(0); // evicted: recomputed (and kept again, evicting a)
      expect(Array.from(rb.tokens)).toEqual(Array.from((await run(plain, b)).tokens));
      expect((await run(m, c)).usage.cachedTokens).toBe(39);
      expect((await run(m, a)).usage.cachedTokens).toBe(0);
      s = m.stats();
      expect(s.cacheEvictions).toBe(3);
      expect(s.cacheBytes).toBeLessThanOrEqual(s.kvCacheBytes);
    } finally {
      await m.dispose();
    }
  });

  it('a prompt whose KV exceeds what the running generation leaves runs uncached and is not kept', async () => {
    const perToken = plain.info.kvBytesPerToken;
    // The 30-token request reserves 2 x (30 + 16) tokens: 10 tokens' worth are left for the cache.
    const m = await Model.load(tiny, { threads: 1, prefixCache: true, kvCacheBytes: (2 * 46 + 10) * perToken });
    try {
      const big = ids(4, 30);
      const first = await run(m, big);
      const again = await run(m, big);
      expect(first.usage.cachedTokens).toBe(0);
      expect(again.usage.cachedTokens).toBe(0);
      expect(Array.from(again.tokens)).toEqual(Array.from((await run(plain, big)).tokens));
      expect(m.stats()).toMatchObject({ cacheOversized: 2, cacheEntries: 0, cacheBytes: 0, cacheHits: 0 });
      // A small prompt still fits and hits.
      const small = ids(5, 8);
      await run(m, small);
      expect((await run(m, small)).usage.cachedTokens).toBe(7);
    } finally {
      await m.dispose();
    }
  });

  it('prefixCacheBytes bounds the cache below what the KV budget leaves it', async () => {
    const perToken = plain.info.kvBytesPerToken;
    // Room for two 40-token prompts next to a running request, but the cache's own bound holds one.
    const m = await Model.load(tiny, {
      threads: 1,
      prefixCache: true,
      kvCacheBytes: (2 * 56 + 80) * perToken,
      prefixCacheBytes: 45 * perToken,
    });
    try {
      expect(m.stats().cacheLimitBytes).toBe(45 * perToken);
      const [a, b] = [ids(6, 40), ids(7, 40)];
      await run(m, a);
      await run(m, b); // evicts a: both would fit the budget's room, not the bound
      expect(m.stats()).toMatchObject({ cacheEntries: 1, cacheBytes: 40 * perToken, cacheEvictions: 1 });
      expect((await run(m, b)).usage.cachedTokens).toBe(39);
      expect((await run(m, a)).usage.cachedTokens).toBe(0);
    } finally {
      await m.dispose();
    }
    await expect(Model.load(tiny, { prefixCacheBytes: 1 << 20 })).rejects.toThrow(/needs prefixCache: true/);
  });

  it('stats() counts running and queued generations (maxBatch 1)', async () => {
    const one = await Model.load(tiny, { threads: 1, maxBatch: 1 });
    try {
      const first = one.generate('Hello world', { maxNewTokens: 200, temperature: 0, highWaterMark: 1 });
      const reader = first[Symbol.asyncIterator](); // chunks are now acknowledged only as taken: the engine waits
      const second = one.generate('Hello again', { maxNewTokens: 5, temperature: 0 });
      try {
        await expect.poll(() => one.stats(), { timeout: 5000 }).toMatchObject({ running: 1, queued: 1, parked: 1 });
      } finally {
        first.abort();
        second.abort();
        await reader.return?.();
      }
      await Promise.all([first.result, second.result]);
      expect(one.stats()).toMatchObject({ running: 0, queued: 0, parked: 0 });
    } finally {
      await one.dispose();
    }
  });

  it('KV comes from one arena within kvCacheBytes, the same memory request after request', async () => {
    const kvCacheBytes = 4 << 20;
    const cached = await Model.load(tiny, { threads: 1, prefixCache: true, kvCacheBytes });
    const uncached = await Model.load(tiny, { threads: 1, kvCacheBytes });
    try {
      for (let i = 0; i < 6; i++) {
        expect((await run(cached, ids(20, 40 + i))).usage.cachedTokens).toBe(i === 0 ? 0 : 39 + i);
      }
      const s = cached.stats();
      expect(s.kvArenaBytes).toBeGreaterThan(0);
      expect(s.kvArenaBytes).toBeLessThanOrEqual(kvCacheBytes);
      expect(s.kvArenaPeakBytes).toBeLessThanOrEqual(s.kvArenaBytes);
      expect(s.kvArenaTouchedBytes).toBe(s.kvArenaBytes); // made resident at load: no request faults pages in
      expect(s.kvArenaSpills).toBe(0);
      // Nothing runs: what the arena holds is the cache's one entry (each prompt extended the last and replaced it).
      expect(s.cacheEntries).toBe(1);
      expect(s.kvArenaUsedBytes).toBeGreaterThanOrEqual(s.cacheBytes);
      expect(s.kvArenaUsedBytes).toBeLessThan(s.cacheBytes + 64);

      await run(uncached, ids(30, 40));
      const first = uncached.stats();
      expect(first.kvArenaUsedBytes).toBe(0); // freed with the generation
      expect(first.kvArenaTouchedBytes).toBeLessThan(kvCacheBytes); // without the cache: resident only once used
      for (let i = 1; i < 6; i++) await run(uncached, ids(30 + i, 40));
      const later = uncached.stats();
      expect(later.kvArenaTouchedBytes).toBe(first.kvArenaTouchedBytes); // the same pages again
      expect(later.kvArenaPeakBytes).toBe(first.kvArenaPeakBytes);
      expect(later.kvArenaSpills).toBe(0);
    } finally {
      await cached.dispose();
      await uncached.dispose();
    }
  });

  it('validates its options', async () => {
    await expect(Model.load(tiny, { prefixCache: 'yes' as unknown as boolean })).rejects.toThrow(
      /expected a boolean for prefixCache/,
    );
    await expect(Model.load(tiny, { prefixCache: true, kvCacheBytes: 0 })).rejects.toThrow(/kvCacheBytes/);
    await expect(Model.load(tiny, { prefixCache: true, kvCacheBytes: 1.5 })).rejects.toThrow(/kvCacheBytes/);
  });
});
