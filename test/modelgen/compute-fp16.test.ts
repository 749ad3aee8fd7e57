/**
 * `compute: 'fp16'`: model_fp16.onnx computing in fp16 as a real fp16 export does (no Cast behind the weights, fp16
 * MatMuls, KV and logits; fp32 only inside RMSNorm, the rotary tables and the masked softmax), run in
 * onnxruntime-node directly and through the engine. The default files stay byte-identical.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel, type MakeModelResult } from '../../src/modelgen/index.js';
import { decodeModel, DataType, type OnnxModelProto } from '../../src/modelgen/onnx-builder.js';
import { Model } from '../../src/model/index.js';
import { recomputeGreedy } from '../model/helpers.js';
import { chunkedDecodeDiff, emptyCache, forward, maxAbsDiff, openModel } from './helpers.js';

const SEED = 7;
const PROMPT = [1, 415, 2936, 9060, 285, 1142, 461, 10575, 754, 272, 17898, 3914];
let root: string;
/** fp32 compute (today's files). */
let base: MakeModelResult;
/** The same seed with compute 'fp16'. */
let half: MakeModelResult;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tokmeter-modelgen-c16-'));
  base = await makeModel({ out: join(root, 'base'), size: 'tiny', seed: SEED, dtypes: ['fp32', 'fp16'] });
  half = await makeModel({
    out: join(root, 'half'),
    size: 'tiny',
    seed: SEED,
    dtypes: ['fp32', 'fp16'],
    compute: 'fp16',
  });
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const read = (dir: string, file: string): Buffer => readFileSync(join(dir, 'onnx', file));

/** Node output name -> the node, and Cast targets, for graph checks. */
function producers(model: OnnxModelProto): Map<string, { opType: string; to: number }> {
  const map = new Map<string, { opType: string; to: number }>();
  for (const n of model.graph!.node!) {
    const to = Number(n.attribute!.find((a) => a.name === 'to')?.i ?? -1);
    for (const o of n.output!) map.set(o, { opType: n.opType!, to });
  }
  return map;
}

describe("compute: 'fp16'", () => {
  it('leaves the default files byte-identical and records the option only when set', async () => {
    expect(read(half.dir, 'model.onnx').equals(read(base.dir, 'model.onnx'))).toBe(true);
    expect(read(half.dir, 'model_fp16.onnx').equals(read(base.dir, 'model_fp16.onnx'))).toBe(false);
    const explicit = await makeModel({
      out: join(root, 'explicit'),
      size: 'tiny',
      seed: SEED,
      dtypes: ['fp32', 'fp16'],
      compute: 'fp32',
    });
    for (const f of ['model.onnx', 'model_fp16.onnx'])
      expect(read(explicit.dir, f).equals(read(base.dir, f))).toBe(true);
    expect(readFileSync(join(explicit.dir, 'config.json')).equals(readFileSync(join(base.dir, 'config.json')))).toBe(
      true,
    );
    expect('compute' in base.config.tokmeter_modelgen).toBe(false);
    expect(half.config.tokmeter_modelgen.compute).toBe('fp16');
    expect(half.parameters).toBe(base.parameters);
  });

  it('rejects compute fp16 without an fp16 file, and unknown values', async () => {
    await expect(makeModel({ out: join(root, 'x'), size: 'tiny', compute: 'fp16' })).rejects.toThrow(
      "compute 'fp16' applies to onnx/model_fp16.onnx",
    );
    await expect(
      // @ts-expect-error: not a compute type
      makeModel({ out: join(root, 'x'), size: 'tiny', dtypes: ['fp16'], compute: 'bf16' }),
    ).rejects.toThrow('expected compute to be one of fp32, fp16, got bf16');
  });

  it('graph: weights used without a Cast, MatMuls on fp16 values, fp16 KV and logits', () => {
    const model = decodeModel(read(half.dir, 'model_fp16.onnx'));
    const graph = model.graph!;
    const weights = new Set(graph.initializer!.filter((t) => t.name!.endsWith('.weight')).map((t) => t.name!));
    expect(graph.initializer!.filter((t) => weights.has(t.name!)).every((t) => t.dataType === DataType.FLOAT16)).toBe(
      true,
    );
    const from = producers(model);
    const layers = half.config.num_hidden_layers;
    let weightMatMuls = 0;
    for (const n of graph.node!) {
      if (n.opType === 'Cast') expect(n.input!.some((i) => weights.has(i))).toBe(false);
      if (n.opType !== 'MatMul') continue;
      if (n.input!.some((i) => weights.has(i))) weightMatMuls++;
      // No MatMul reads a value just cast to fp32 (the softmax's probabilities are cast back to fp16 first).
      for (const i of n.input!)
        expect(from.get(i)?.opType === 'Cast' && from.get(i)?.to === DataType.FLOAT).toBe(false);
    }
    expect(weightMatMuls).toBe(7 * layers + 1); // q, k, v, o, gate, up, down per layer + the LM head
    const logits = graph.node!.find((n) => n.output!.includes('logits'))!;
    expect(logits.opType).toBe('MatMul');
    expect(logits.input).toContain('lm_head.weight');
    // fp32 islands only: the positions, and per layer RMSNorm x2 and the scores; plus the final norm.
    const toFloat = graph.node!.filter((n) => n.opType === 'Cast' && from.get(n.output![0]!)!.to === DataType.FLOAT);
    expect(toFloat).toHaveLength(1 + 3 * layers + 1);
    // The fp32-compute file, for contrast, casts every weight but the embedding table (gathered, then cast).
    const old = decodeModel(read(base.dir, 'model_fp16.onnx'));
    const oldCasts = old.graph!.node!.filter((n) => n.opType === 'Cast' && n.input!.some((i) => weights.has(i)));
    expect(oldCasts).toHaveLength(weights.size - 1);
    for (const kv of graph.output!.slice(1)) expect(kv.type!.tensorType!.elemType).toBe(DataType.FLOAT16);
    expect(graph.output![0]!.type!.tensorType!.elemType).toBe(DataType.FLOAT16);
  });

  it('ONNX Runtime CPU runs it: logits within fp16 tolerance of the fp32 graph; cached decoding = full pass', async () => {
    const a = await openModel(base.dir);
    const b = await openModel(half.dir, 'model_fp16.onnx');
    const c = await openModel(base.dir, 'model_fp16.onnx');
    expect(b.shape.kvType).toBe('float16');
    const mask = PROMPT.map(() => 1);
    const fa = await forward(a.session, a.shape, [PROMPT], [mask], emptyCache(a.shape, 1));
    const fb = await forward(b.session, b.shape, [PROMPT], [mask], emptyCache(b.shape, 1));
    const fc = await forward(c.session, c.shape, [PROMPT], [mask], emptyCache(c.shape, 1));
    const diff = maxAbsDiff(fa.logits, fb.logits);
    expect(diff).toBeGreaterThan(0);
    // Measured 0.012 (logits up to |4.8|); the fp32-compute fp16 file is 0.014 from fp32.
    expect(diff).toBeLessThan(5e-2);
    expect(maxAbsDiff(fb.logits, fc.logits)).toBeGreaterThan(0); // really a different computation
    // Step by step (chunks 5, 3, then single tokens) against the full pass.
    expect(await chunkedDecodeDiff(b.session, b.shape, PROMPT, fb.logits)).toBeLessThan(2e-2);
  });

  it('GroupQueryAttention in fp16 without Casts around it, close to the standard fp32 graph', async () => {
    const made = await makeModel({
      out: join(root, 'gqa'),
      size: 'tiny',
      seed: SEED,
      dtypes: ['fp16'],
      attention: 'gqa',
      compute: 'fp16',
    });
    const model = decodeModel(read(made.dir, 'model_fp16.onnx'));
    const from = producers(model);
    for (const n of model.graph!.node!.filter((x) => x.opType === 'GroupQueryAttention')) {
      for (const i of n.input!.slice(0, 3)) expect(from.get(i)?.opType).not.toBe('Cast');
    }
    const consumersOfGqa = model.graph!.node!.filter((n) =>
      n.input!.some((i) => i.endsWith('/attn/GroupQueryAttention/output_0')),
    );
    expect(consumersOfGqa.every((n) => n.opType === 'MatMul')).toBe(true);
    const a = await openModel(base.dir);
    const g = await openModel(made.dir, 'model_fp16.onnx');
    const mask = PROMPT.map(() => 1);
    const fa = await forward(a.session, a.shape, [PROMPT], [mask], emptyCache(a.shape, 1));
    const fg = await forward(g.session, g.shape, [PROMPT], [mask], emptyCache(g.shape, 1));
    expect(maxAbsDiff(fa.logits, fg.logits)).toBeLessThan(5e-2);
  });

  it('the engine loads it with dtype fp16 and decodes like a full recompute', async () => {
    const m = await Model.load(half.dir, { threads: 1, dtype: 'fp16' });
    try {
      expect(m.info.file.endsWith('onnx/model_fp16.onnx')).toBe(true);
      expect(m.info.kvDtype).toBe('float16');
      expect(m.info.logitsDtype).toBe('float16');
      for (const prompt of ['The quick brown fox jumps over', 'Once upon a time, in 1984,']) {
        const r = await m.generate(prompt, { maxNewTokens: 16, temperature: 0, eosTokenIds: [] }).result;
        const ids = Array.from(m.encodePrompt(prompt));
        const reference = await recomputeGreedy(half.dir, ids, 16, [], 'model_fp16.onnx');
        expect(Array.from(r.tokens)).toEqual(reference);
      }
    } finally {
      await m.dispose();
    }
  });
});
