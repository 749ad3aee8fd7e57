/**
 * Graphs with ONNX Runtime's com.microsoft GroupQueryAttention op (onnxruntime-genai's model builder exports).
 * The op takes no attention mask: it derives each
 * row's length from seqlens_k = ReduceSum(attention_mask) - 1 and assumes the valid keys are the first ones of the
 * row (right padding), while the engine's running batch is left-padded (batch_kv.h). A batched shorter row would
 * attend to holes and write its new key in the wrong place, silently changing its tokens (and so what is billed):
 * test/modelgen/model.test.ts shows it at the ORT level. The engine therefore runs such graphs one sequence at a
 * time (causal_lm.cc reads the op types from the .onnx file, onnx_scan.h), and concurrent generations equal their
 * solo runs. Before that decision, the equality test below failed (the shorter prompts' tokens differed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type GenerateOptions, type GenerationResult } from '../../src/model/index.js';
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

/** A token prompt of `length` ids, distinct per `seed`. */
function ids(seed: number, length: number): { tokens: number[] } {
  return { tokens: Array.from({ length }, (_, i) => 100 + ((seed * 7919 + i * 104729) % 5000)) };
}

const GREEDY: GenerateOptions = { maxNewTokens: 24, temperature: 0, eosTokenIds: [] };
/** Prompt lengths 3..40: every batched step would mix rows of different lengths (left holes in the shorter). */
const PROMPTS = [3, 17, 8, 40, 5, 26].map((n, i) => ids(i + 1, n));

function same(a: GenerationResult, b: GenerationResult): void {
  expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
  expect(a.text).toBe(b.text);
  expect(a.finishReason).toBe(b.finishReason);
  expect(a.usage).toEqual(b.usage);
}

describe('GroupQueryAttention graphs', () => {
  it('load, and say why they do not batch', () => {
    expect(many.info.attentionMask).toBe(true);
    expect(many.info.batchable).toBe(false);
    expect(many.info.notBatchableReason).toMatch(/GroupQueryAttention/);
    expect(many.stats().maxBatch).toBe(1);
  });

  it('model_fp16.onnx (the op in float16, fp16 KV) does not batch either; concurrent runs equal solo ones', async () => {
    const one = await Model.load(dir, { threads: 1, maxBatch: 1, dtype: 'fp16' });
    const four = await Model.load(dir, { threads: 1, maxBatch: 4, dtype: 'fp16' });
    try {
      expect(four.info).toMatchObject({ kvDtype: 'float16', batchable: false });
      expect(four.info.notBatchableReason).toMatch(/GroupQueryAttention/);
      const prompts = PROMPTS.slice(0, 4);
      const options = { ...GREEDY, maxNewTokens: 8 };
      const want: GenerationResult[] = [];
      for (const p of prompts) want.push(await one.generate(p, options).result);
      const got = await Promise.all(prompts.map((p) => four.generate(p, options).result));
      got.forEach((r, i) => same(r, want[i]!));
    } finally {
      await one.dispose();
      await four.dispose();
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

  it('greedy solo decoding equals a full recompute (the all-ones mask path of the op is right)', async () => {
    const prompt = PROMPTS[1]!.tokens;
    const r = await solo.generate({ tokens: prompt }, { ...GREEDY, maxNewTokens: 12 }).result;
    expect(Array.from(r.tokens)).toEqual(await recomputeGreedy(dir, prompt, 12, []));
  });

  it('concurrent greedy generations of different prompt lengths each equal their solo run', async () => {
    const want: GenerationResult[] = [];
    for (const p of PROMPTS) want.push(await solo.generate(p, GREEDY).result);
    const got = await Promise.all(PROMPTS.map((p) => many.generate(p, GREEDY).result));
    got.forEach((r, i) => same(r, want[i]!));
    for (const [i, r] of got.entries()) expect(r.usage.promptTokens).toBe(PROMPTS[i]!.tokens.length);
    expect(many.stats()).toMatchObject({ running: 0, queued: 0, kvReservedBytes: 0 });
  });

  it('the prefix cache (a prefill that continues a copied past) stays exact', async () => {
    const m = await Model.load(dir, { threads: 1, maxBatch: 8, prefixCache: true });
    try {
      const base = PROMPTS[3]!.tokens;
      const first = await m.generate({ tokens: base }, GREEDY).result;
      same(first, await solo.generate({ tokens: base }, GREEDY).result);
      const longer = { tokens: [...base, 7, 8, 9] };
      const r = await m.generate(longer, GREEDY).result;
      expect(r.usage.cachedTokens).toBeGreaterThan(0);
      expect(Array.from(r.tokens)).toEqual(Array.from((await solo.generate(longer, GREEDY).result).tokens));
    } finally {
      await m.dispose();
    }
  });
});
