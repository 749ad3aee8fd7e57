/**
 * Quantized files (model_q4.onnx, model_q4f16.onnx, model_int8.onnx, model_uint8.onnx) in the engine: Model.load
 * picks each by dtype and reports it, greedy decoding equals plain onnxruntime decoding of the same file, and for
 * the 4-bit files a batched generation equals its solo run and a prefix-cached one its uncached run.
 *
 * 8-bit files (quantize_dynamic) are different: DynamicQuantizeLinear takes one scale over its whole input tensor,
 * so a row's logits depend on the other rows of the batch and on how its prompt was chunked (the prefill of a
 * prompt vs. a cached prefix plus the rest). The same file in transformers.js and in ONNX Runtime has this
 * property; the tests below hold the engine to the path a solo request takes everywhere (whole prompt, then one
 * token per step) and show the coupling instead of asserting an equality that the graph does not have.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type GenerationResult } from '../../src/model/index.js';
import { ONNX_FILE, type ModelDtype } from '../../src/modelgen/index.js';
import { emptyCache, forward, greedy as ortGreedy, maxAbsDiff, openModel, row } from '../modelgen/helpers.js';
import { serveOptions } from '../../src/cli/serve.js';
import { startTestServer } from '../server/helpers.js';
import { ids, soloRuns, same, staggered, type Case } from './batch-helpers.js';
import { makeTestModel, recomputeGreedy, tempDir } from './helpers.js';

const DTYPES = ['q4', 'q4f16', 'int8', 'uint8'] as const;
const NEW = 12;
const greedyOptions = { maxNewTokens: NEW, temperature: 0, eosTokenIds: [] as number[] };

let root: { dir: string; cleanup: () => void };
let dir: string;
beforeAll(async () => {
  root = tempDir('quantized');
  dir = await makeTestModel(root.dir, 'tiny', { seed: 3, dtypes: ['fp32', ...DTYPES] });
});
afterAll(() => root?.cleanup());

describe.each(DTYPES)('dtype %s', (dtype) => {
  const file = ONNX_FILE[dtype as ModelDtype];

  it('loads the file by its transformers.js name, reports the dtype and its bytes, and decodes as ONNX Runtime', async () => {
    const m = await Model.load(dir, { threads: 1, dtype, maxBatch: 1 });
    try {
      expect(m.info.dtype).toBe(dtype);
      expect(m.info.file.endsWith(`onnx/${file}`)).toBe(true);
      expect(m.info.fileBytes).toBe(statSync(join(dir, 'onnx', file)).size);
      expect(m.info.logitsDtype).toBe(dtype === 'q4f16' ? 'float16' : 'float32');
      // 8-bit files quantize activations per tensor: they run one sequence at a time (below).
      expect(m.info.batchable).toBe(dtype.startsWith('q4'));
      const { session, shape } = await openModel(dir, file);
      const outputs = new Set<string>();
      for (const text of ['The quick brown fox jumps over', 'Once upon a time, in 1984,']) {
        const r = await m.generate(text, greedyOptions).result;
        const prompt = Array.from(m.encodePrompt(text));
        // The path transformers.js takes too: the whole prompt, then one token per step with the KV cache.
        expect(Array.from(r.tokens)).toEqual(await ortGreedy(session, shape, prompt, NEW));
        if (dtype === 'q4' || dtype === 'q4f16') {
          // 4-bit weights, float activations: rows do not interact, so a full recompute gives the same tokens.
          expect(Array.from(r.tokens)).toEqual(await recomputeGreedy(dir, prompt, NEW, [], file));
        }
        outputs.add(r.text);
      }
      expect(outputs.size).toBe(2);
      await session.release();
    } finally {
      await m.dispose();
    }
  });
});

describe.each(['q4', 'q4f16'] as const)('dtype %s batching and prefix cache', (dtype) => {
  const cases: Case[] = [3, 9, 14, 20].map((len, i) => ({ prompt: ids(i + 1, len), options: greedyOptions }));

  it('a batched generation equals its solo run, joined at once or staggered', async () => {
    const one = await Model.load(dir, { threads: 1, dtype, maxBatch: 1 });
    const batched = await Model.load(dir, { threads: 1, dtype, maxBatch: 8 });
    try {
      const want = await soloRuns(one, cases);
      const got = await Promise.all(cases.map((c) => batched.generate(c.prompt, c.options).result));
      got.forEach((r, i) => same(r, want[i]!));
      expect(batched.stats().batchRows).toBeGreaterThan(batched.stats().batchSteps); // it did batch
      await staggered(one, batched, cases);
    } finally {
      await one.dispose();
      await batched.dispose();
    }
  });

  it('a prefix-cached generation equals its uncached run', async () => {
    const plain = await Model.load(dir, { threads: 1, dtype });
    const cached = await Model.load(dir, { threads: 1, dtype, prefixCache: true });
    try {
      const system = 'You are a careful assistant. Answer in one short sentence. ';
      const prompts = [system + 'What is the sea?', system + 'Why is the sky blue?', system + 'What is the sea?'];
      let hits = 0;
      for (const p of prompts) {
        const a: GenerationResult = await cached.generate(p, greedyOptions).result;
        const b = await plain.generate(p, greedyOptions).result;
        expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
        hits += a.usage.cachedTokens;
      }
      expect(hits).toBeGreaterThan(0);
    } finally {
      await plain.dispose();
      await cached.dispose();
    }
  });
});

describe('8-bit files, batching and the prefix cache', () => {
  // DynamicQuantizeLinear computes one activation scale per tensor, so batched rows, padding and KV reused from
  // another prompt's prefill would change the tokens (measured before these graphs ran alone: most rows of a
  // 6-prompt batch left their solo tokens within 1-20 steps; 1 prefix-cache hit in 5 changed them). The engine runs
  // such graphs one sequence at a time and turns the prefix cache off, and says why.
  it('int8: a generation beside others equals its solo run; the model says why it does not batch', async () => {
    const cases: Case[] = [3, 9, 14, 20, 30, 5].map((len, i) => ({
      prompt: ids(i + 1, len),
      options: { ...greedyOptions, maxNewTokens: 24 },
    }));
    const one = await Model.load(dir, { threads: 1, dtype: 'int8', maxBatch: 1 });
    const batched = await Model.load(dir, { threads: 1, dtype: 'int8', maxBatch: 8 });
    try {
      expect(batched.info.batchable).toBe(false);
      expect(batched.info.notBatchableReason).toMatch(/DynamicQuantizeLinear/);
      const want = await soloRuns(one, cases);
      const got = await Promise.all(cases.map((c) => batched.generate(c.prompt, c.options).result));
      got.forEach((r, i) => same(r, want[i]!));
      expect(batched.stats().lastBatch).toBeLessThanOrEqual(1);
    } finally {
      await one.dispose();
      await batched.dispose();
    }
  });

  it('int8: prefixCache asked for is off, said so, and generations equal uncached runs', async () => {
    const plain = await Model.load(dir, { threads: 1, dtype: 'int8' });
    const cached = await Model.load(dir, { threads: 1, dtype: 'int8', prefixCache: true });
    try {
      expect(cached.info.prefixCacheOffReason).toMatch(/DynamicQuantizeLinear/);
      expect(cached.stats().prefixCache).toBe(false);
      const system = 'You are a careful assistant. Answer in one short sentence, and never make things up. ';
      for (const q of ['What is the sea?', 'Why is the sky blue?', 'Name a river.', 'What is the sea?', 'Count.']) {
        const options = { ...greedyOptions, maxNewTokens: 24 };
        const a = await cached.generate(system + q, options).result;
        const b = await plain.generate(system + q, options).result;
        expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
        expect(a.usage.cachedTokens).toBe(0);
      }
    } finally {
      await plain.dispose();
      await cached.dispose();
    }
  });

  it.each(['int8', 'uint8'] as const)(
    '%s: a prompt longer than prefillChunk goes in whole, as transformers.js feeds it',
    async (dtype) => {
      const prompt = ids(7, 40).tokens;
      const { session, shape } = await openModel(dir, ONNX_FILE[dtype]);
      // The graph's coupling across a prompt: fed as 16 + 24 tokens, the last position's logits are not those of
      // the whole-prompt pass, so a chunked prefill would be a different computation.
      const whole = await forward(session, shape, [prompt], [prompt.map(() => 1)], emptyCache(shape, 1));
      const first = await forward(
        session,
        shape,
        [prompt.slice(0, 16)],
        [Array<number>(16).fill(1)],
        emptyCache(shape, 1),
      );
      const rest = await forward(session, shape, [prompt.slice(16)], [prompt.map(() => 1)], first.cache);
      const last = (r: { logits: Float32Array; seq: number }): Float32Array =>
        row(r.logits, shape.vocab, r.seq, 0, r.seq - 1);
      expect(maxAbsDiff(last(whole), last(rest))).toBeGreaterThan(0);
      const want = await ortGreedy(session, shape, prompt, NEW);
      await session.release();

      const m = await Model.load(dir, { threads: 1, dtype, prefillChunk: 8, maxBatch: 4 });
      try {
        const base = m.timings().prefill.count;
        // Another generation runs first; the long prompt arrives while it runs.
        const other = m.generate(ids(8, 5), { ...greedyOptions, maxNewTokens: 24 });
        const r = await m.generate({ tokens: prompt }, greedyOptions).result;
        await other.result;
        expect(Array.from(r.tokens)).toEqual(want);
        expect(r.usage.promptTokens).toBe(40);
        // Two prefill Forwards in all: the other prompt's and the 40 tokens in one (8-token chunks would be 5).
        expect(m.timings().prefill.count - base).toBe(2);
      } finally {
        await m.dispose();
      }
    },
  );

  it('q4 files batch and cache: MatMulNBits keeps rows apart', async () => {
    const m = await Model.load(dir, { threads: 1, dtype: 'q4', prefixCache: true });
    try {
      expect(m.info.batchable).toBe(true);
      expect(m.info.prefixCacheOffReason).toBeUndefined();
      expect(m.stats().prefixCache).toBe(true);
    } finally {
      await m.dispose();
    }
  });
});

it('serve --dtype q4 serves the q4 file', async () => {
  expect(serveOptions({ model: dir, port: 0, host: 'h', dtype: 'q4' })).toMatchObject({ dtype: 'q4' });
  const server = await startTestServer({ model: dir, dtype: 'q4' });
  try {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'The quick brown fox', max_tokens: 6, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    expect(body.usage.completion_tokens).toBe(6);
    const m = await Model.load(dir, { threads: 1, dtype: 'q4' });
    const want = await m.generate('The quick brown fox', { maxNewTokens: 6, temperature: 0 }).result;
    await m.dispose();
    expect(body.choices[0]!.text).toBe(want.text);
  } finally {
    await server.close();
  }
});
