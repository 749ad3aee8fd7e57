/**
 * Graphs with ONNX Runtime's com.microsoft GroupQueryAttention op (onnxruntime-genai's model builder exports).
 * The op takes no attention mask: it derives each row's length from seqlens_k = ReduceSum(attention_mask) - 1 and
 * assumes the valid keys are the first ones of the row (right padding). In the engine's left-padded batch a shorter
 * row attended to holes and wrote its new key in the wrong place, silently changing its tokens (and so what is
 * billed): test/modelgen/model.test.ts shows it at the ORT level, and before GQA graphs ran one at a time 5 of 6
 * concurrent generations below diverged from their solo runs. Now such graphs (causal_lm.cc reads the op types
 * from the .onnx file, onnx_scan.h) batch with right-padded rows (batch_kv.h): every test checks that batching
 * really happened (mean batch > 1) and that each generation equals its solo run, for fp32 and fp16, with sequences
 * joining and leaving at different times, a parked consumer, a graph without position_ids and the prefix cache.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/model/index.js';
import { ids, meanBatch, same, soloRuns, staggered, type Case } from './batch-helpers.js';
import { makeTestModel, recomputeGreedy, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let dir: string;
let solo: Model;
let many: Model;

beforeAll(async () => {
  root = tempDir('gqa');
  dir = await makeTestModel(root.dir, 'tiny-gqa', { attention: 'gqa', dtypes: ['fp32', 'fp16'] });
  solo = await Model.load(dir, { threads: 1, maxBatch: 1 });
  many = await Model.load(dir, { threads: 1, maxBatch: 8 });
});
afterAll(async () => {
  await solo?.dispose();
  await many?.dispose();
  root?.cleanup();
});

/**
 * Prompt lengths 3..40 (every batched step mixes rows of different lengths: holes behind the shorter ones) and
 * 30..49 new tokens, so sequences leave the batch at different steps.
 */
const CASES: Case[] = [3, 17, 8, 40, 5, 26].map((n, i) => ({
  prompt: ids(i + 1, n),
  options: { maxNewTokens: 30 + ((i * 7) % 20), temperature: 0, eosTokenIds: [] },
}));

/** All at once: each equals its solo run, and the steps were batched. */
async function concurrent(one: Model, batched: Model, cs: Case[], minMean: number): Promise<void> {
  const want = await soloRuns(one, cs);
  const before = batched.stats();
  const got = await Promise.all(cs.map((c) => batched.generate(c.prompt, c.options).result));
  got.forEach((r, i) => same(r, want[i]!));
  for (const [i, r] of got.entries()) expect(r.usage.promptTokens).toBe(cs[i]!.prompt.tokens.length);
  expect(meanBatch(batched, before)).toBeGreaterThan(minMean);
  expect(batched.stats()).toMatchObject({ running: 0, queued: 0, parked: 0, kvReservedBytes: 0 });
}

describe('GroupQueryAttention graphs', () => {
  it('load and batch (right-padded rows)', () => {
    expect(many.info.attentionMask).toBe(true);
    expect(many.info.batchable).toBe(true);
    expect(many.info.notBatchableReason).toBeUndefined();
    expect(many.stats().maxBatch).toBe(8);
  });

  it('greedy solo decoding equals a full recompute (the all-ones mask path of the op is right)', async () => {
    const prompt = CASES[1]!.prompt.tokens;
    const r = await solo.generate({ tokens: prompt }, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] }).result;
    expect(Array.from(r.tokens)).toEqual(await recomputeGreedy(dir, prompt, 12, []));
  });

  it('concurrent greedy generations of different prompt lengths each equal their solo run', async () => {
    // Some stop early on an EOS id taken from their solo run (its 4th token): more leaving mid-batch.
    const cs = CASES.map((c) => ({ ...c, options: { ...c.options } }));
    for (const i of [1, 4]) {
      const base = await solo.generate(cs[i]!.prompt, cs[i]!.options).result;
      const at = Array.from(base.tokens).findIndex((t, k) => k >= 3 && base.tokens.indexOf(t) === k);
      if (at >= 0) cs[i]!.options.eosTokenIds = [base.tokens[at]!];
    }
    await concurrent(solo, many, cs, 2);
  });

  it('sequences joining a running batch (staggered) and leaving at different times stay exact', async () => {
    await staggered(
      solo,
      many,
      CASES.map((c) => ({ ...c, options: { ...c.options, maxNewTokens: 10 + ((c.prompt.tokens.length * 5) % 17) } })),
    );
  });

  it('a parked consumer (moved out of the batch and back) and the others stay exact', async () => {
    const slow: Case = {
      prompt: ids(70, 12),
      options: { maxNewTokens: 30, temperature: 0, eosTokenIds: [], highWaterMark: 2 },
    };
    const cs = CASES.slice(0, 4).map((c) => ({ ...c, options: { ...c.options, maxNewTokens: 20 } }));
    const [wantSlow, ...want] = await soloRuns(solo, [slow, ...cs]);
    const before = many.stats();
    const held = many.generate(slow.prompt, slow.options);
    const reader = held[Symbol.asyncIterator](); // nothing is taken yet: parked after 2 tokens
    await expect.poll(() => many.stats().parked, { timeout: 5000 }).toBe(1);
    const got = await Promise.all(cs.map((c) => many.generate(c.prompt, c.options).result));
    got.forEach((r, i) => same(r, want[i]!));
    expect(many.stats()).toMatchObject({ running: 1, parked: 1, queued: 0 });
    // Read it while others run: it resumes (rejoins the batch) from its kept KV and ends exactly as alone.
    const late = CASES.slice(4).map((c) => many.generate(c.prompt, { ...c.options, maxNewTokens: 20 }).result);
    const tokens: number[] = [];
    for (let n = await reader.next(); !n.done; n = await reader.next()) tokens.push(...n.value.tokens);
    same(await held.result, wantSlow!);
    expect(tokens).toEqual(Array.from(wantSlow!.tokens));
    const wantLate = await soloRuns(
      solo,
      CASES.slice(4).map((c) => ({ ...c, options: { ...c.options, maxNewTokens: 20 } })),
    );
    (await Promise.all(late)).forEach((r, i) => same(r, wantLate[i]!));
    expect(meanBatch(many, before)).toBeGreaterThan(1);
    expect(many.stats()).toMatchObject({ running: 0, parked: 0 });
  });

  it('model_fp16.onnx (the op in float16, fp16 KV) batches and equals its solo runs', async () => {
    const one = await Model.load(dir, { threads: 1, maxBatch: 1, dtype: 'fp16' });
    const four = await Model.load(dir, { threads: 1, maxBatch: 4, dtype: 'fp16' });
    try {
      expect(four.info).toMatchObject({ kvDtype: 'float16', batchable: true });
      const cs = CASES.map((c) => ({ ...c, options: { ...c.options, maxNewTokens: c.prompt.tokens.length } }));
      await concurrent(one, four, cs, 1.5);
      await staggered(one, four, cs.slice(0, 4));
    } finally {
      await one.dispose();
      await four.dispose();
    }
  });

  it('without position_ids (positions from the mask) batches exactly too', async () => {
    const noPos = await makeTestModel(root.dir, 'tiny-gqa-nopos', { attention: 'gqa', positionIds: false });
    const one = await Model.load(noPos, { threads: 1, maxBatch: 1 });
    const eight = await Model.load(noPos, { threads: 1, maxBatch: 8 });
    try {
      expect(eight.info).toMatchObject({ positionIds: false, batchable: true });
      await concurrent(one, eight, CASES, 2);
    } finally {
      await one.dispose();
      await eight.dispose();
    }
  });

  it('a standard graph still batches (no reason given)', async () => {
    const std = await makeTestModel(root.dir, 'tiny-standard');
    const m = await Model.load(std, { threads: 1, maxBatch: 8 });
    try {
      expect(m.info.batchable).toBe(true);
      expect(m.info.notBatchableReason).toBeUndefined();
      expect(m.stats().maxBatch).toBe(8);
    } finally {
      await m.dispose();
    }
  });

  it('the prefix cache (a prefill that continues a copied past) stays exact, batched', async () => {
    const m = await Model.load(dir, { threads: 1, maxBatch: 8, prefixCache: true });
    try {
      const options = CASES[3]!.options;
      const base = CASES[3]!.prompt.tokens;
      const first = await m.generate({ tokens: base }, options).result;
      same(first, await solo.generate({ tokens: base }, options).result);
      const prompts = [{ tokens: [...base, 7, 8, 9] }, { tokens: [...base.slice(0, 20), 5] }, ids(9, 6)];
      const want = await soloRuns(
        solo,
        prompts.map((prompt) => ({ prompt, options })),
      );
      const before = m.stats();
      const got = await Promise.all(prompts.map((p) => m.generate(p, options).result));
      expect(got[0]!.usage.cachedTokens).toBe(base.length);
      expect(got[1]!.usage.cachedTokens).toBe(20);
      got.forEach((r, i) => expect(Array.from(r.tokens)).toEqual(Array.from(want[i]!.tokens)));
      expect(meanBatch(m, before)).toBeGreaterThan(1);
    } finally {
      await m.dispose();
    }
  });
});
