/**
 * Quantized files (quantize.ts): the 4-bit and 8-bit math, the operators' input layouts as ONNX Runtime reads them
 * (one-node graphs run in onnxruntime-node against the same product computed here from the dequantized weights),
 * and the model files: which operators, weights derived from the fp32 file's, determinism, cached decoding.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel, type MakeModelResult } from '../../src/modelgen/index.js';
import { fromHalfBits, toHalfBits } from '../../src/modelgen/half.js';
import {
  DataType,
  decodeModel,
  encodeModel,
  GraphBuilder,
  type OnnxModelProto,
} from '../../src/modelgen/onnx-builder.js';
import { Prng } from '../../src/modelgen/prng.js';
import {
  dequantize4,
  dequantize8,
  quantize4,
  quantize8,
  quantizedMatMul,
  type QuantSpec,
} from '../../src/modelgen/quantize.js';
import { chunkedDecodeDiff, emptyCache, forward, openModel, row } from './helpers.js';
import { tempDir } from '../model/helpers.js';

function randomMatrix(seed: number, n: number, bound = 1): Float32Array {
  return new Prng(seed).fillUniform(new Float32Array(n), bound);
}

/** x [M, K] @ w [K, N] in float64. */
function matmul(x: Float32Array, w: Float32Array, M: number, K: number, N: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[m * N + n]! += x[m * K + k]! * w[k * N + n]!;
  return out;
}

/** Runs a one-node graph `y = quantized(x @ w)` in onnxruntime-node. */
async function runQuantized(
  x: Float32Array,
  w: Float32Array,
  M: number,
  K: number,
  N: number,
  q: QuantSpec,
  half = false,
): Promise<Float32Array> {
  const g = new GraphBuilder('q');
  const type = half ? DataType.FLOAT16 : DataType.FLOAT;
  g.input('x', type, [M, K]);
  g.output('y', type, [M, N]);
  quantizedMatMul(g, 'x', 'w', w, K, N, q, half, new Map(), 'y');
  const model = g.finish({ opset: 17, irVersion: 8, producer: 'test' });
  const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1 });
  const feed = half
    ? new ort.Tensor('float16', Uint16Array.from(x, toHalfBits), [M, K])
    : new ort.Tensor('float32', x, [M, K]);
  const y = (await session.run({ x: feed })).y!;
  await session.release();
  return half ? Float32Array.from(y.data as Uint16Array, fromHalfBits) : (y.data as Float32Array);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('4-bit block quantization', () => {
  it('asymmetric: scale (max - min) / 15 with min <= 0 <= max, zero point round(-min / scale), low nibble first', () => {
    // One column (N = 1), K = 4 in one block of 16 (the rest is padding).
    const w = Float32Array.from([-1.5, 0, 3, 1.2]);
    const q = quantize4(w, 4, 1, { bits: 4, blockSize: 16, zeroPoints: true });
    expect(q.nBlocks).toBe(1);
    expect(q.scales[0]).toBeCloseTo(4.5 / 15, 7);
    const zp = Math.round(1.5 / (4.5 / 15)); // 5
    expect(q.zeroPoints![0]! & 15).toBe(zp);
    const codes = [0, 1, 2, 3].map((j) => (q.packed[j >> 1]! >> ((j & 1) * 4)) & 15);
    expect(codes).toEqual([0, 5, 15, 9]); // -1.5/0.3+5, 0+5, 3/0.3+5, round(4+5)
    // Padding quantizes 0: the zero point.
    expect(q.packed[7]! >> 4).toBe(zp);
    expect(dequantize4(q, 4, 1, 16)[2]).toBeCloseTo(3, 6);
  });

  it('symmetric: scale = (value of largest magnitude) / -8, zero point 8', () => {
    const w = Float32Array.from([-0.5, 0.25, 4, 1]);
    const q = quantize4(w, 4, 1, { bits: 4, blockSize: 16, zeroPoints: false });
    expect(q.zeroPoints).toBeUndefined();
    expect(q.scales[0]).toBeCloseTo(-0.5, 7);
    const codes = [0, 1, 2, 3].map((j) => (q.packed[j >> 1]! >> ((j & 1) * 4)) & 15);
    expect(codes).toEqual([9, 8, 0, 6]); // round(v / -0.5 + 8), half away from zero: 7.5 -> 8
  });

  it('dequantizes within one step, per block and column (K not a multiple of the block)', () => {
    const K = 80;
    const N = 6;
    const w = randomMatrix(3, K * N);
    for (const zeroPoints of [true, false]) {
      const q = quantize4(w, K, N, { bits: 4, blockSize: 32, zeroPoints });
      expect(q.nBlocks).toBe(3);
      const d = dequantize4(q, K, N, 32);
      for (let k = 0; k < K; k++) {
        for (let n = 0; n < N; n++) {
          const step = Math.abs(q.scales[n * 3 + Math.floor(k / 32)]!);
          // Half a step, except at the clipped end of the range: symmetric codes reach -8 but only +7 steps, and
          // a rounded zero point shifts the asymmetric range by up to half a step.
          expect(Math.abs(d[k * N + n]! - w[k * N + n]!)).toBeLessThanOrEqual(step + 1e-6);
        }
      }
    }
  });
});

describe('8-bit linear quantization (quantize_dynamic)', () => {
  it('int8: symmetric, zero point 0, scale max|w| / 127; uint8: asymmetric over [min(0, min), max(0, max)]', () => {
    const w = Float32Array.from([-2.54, 1, 0.5, 0.2]);
    const s = quantize8(w, 2, 2, true, false);
    expect(s.zeroPoints[0]).toBe(0);
    expect(s.scales[0]).toBeCloseTo(0.02, 7);
    expect(Array.from(s.values)).toEqual([-127, 50, 25, 10]);
    const u = quantize8(w, 2, 2, false, false);
    expect(u.scales[0]).toBeCloseTo(3.54 / 255, 7);
    expect(u.zeroPoints[0]).toBe(Math.round(2.54 / (3.54 / 255)));
    expect(maxDiff(dequantize8(u, 2), w)).toBeLessThanOrEqual(3.54 / 255 / 2 + 1e-6);
  });

  it('per channel: one scale per output column', () => {
    const w = Float32Array.from([1, 100, -1, 50]); // columns [1, -1] and [100, 50]
    const q = quantize8(w, 2, 2, true, true);
    expect(Array.from(q.scales).map((v) => v * 127)).toEqual([expect.closeTo(1, 5), expect.closeTo(100, 5)]);
    expect(Array.from(q.values)).toEqual([127, 127, -127, 64]);
  });
});

describe('operators in ONNX Runtime', () => {
  const M = 3;
  const K = 80; // not a multiple of 32: the last block is padded
  const N = 24;
  const w = randomMatrix(5, K * N, 0.5);
  const x = Float32Array.from(randomMatrix(6, M * K), (v) => Math.round(v * 64) / 64);

  for (const [name, q] of [
    ['block 32, symmetric', { bits: 4, blockSize: 32, zeroPoints: false }],
    ['block 32, zero points', { bits: 4, blockSize: 32, zeroPoints: true }],
    ['block 128, zero points', { bits: 4, blockSize: 128, zeroPoints: true }],
    ['block 128, symmetric', { bits: 4, blockSize: 128, zeroPoints: false }],
  ] as [string, QuantSpec & { bits: 4 }][]) {
    it(`MatMulNBits (${name}) computes x @ the dequantized weight`, async () => {
      const want = matmul(x, dequantize4(quantize4(w, K, N, q), K, N, q.blockSize), M, K, N);
      const got = await runQuantized(x, w, M, K, N, q);
      expect(maxDiff(got, want)).toBeLessThan(1e-4);
      // ... which is not the float product: the layout above is what is being checked, not a float fallback.
      expect(maxDiff(got, matmul(x, w, M, K, N))).toBeGreaterThan(1e-3);
    });
  }

  it('MatMulNBits with fp16 input and scales (q4f16)', async () => {
    const q: QuantSpec = { bits: 4, blockSize: 32, zeroPoints: true };
    const want = matmul(x, dequantize4(quantize4(w, K, N, q, true), K, N, 32), M, K, N);
    const got = await runQuantized(x, w, M, K, N, q, true);
    expect(maxDiff(got, want)).toBeLessThan(2e-2); // fp16 output rounding (|y| < 8)
  });

  for (const signed of [true, false]) {
    for (const perChannel of [false, true]) {
      it(`DynamicQuantizeLinear + MatMulInteger (${signed ? 'int8' : 'uint8'}, per ${perChannel ? 'channel' : 'tensor'})`, async () => {
        const q: QuantSpec = { bits: 8, signed, perChannel };
        // The activation quantized as DynamicQuantizeLinear does: uint8 over [min(0, min), max(0, max)].
        const xq = quantize8(x, M, K, false, false);
        const want = matmul(dequantize8(xq, K), dequantize8(quantize8(w, K, N, signed, perChannel), N), M, K, N);
        const got = await runQuantized(x, w, M, K, N, q);
        expect(maxDiff(got, want)).toBeLessThan(1e-4);
      });
    }
  }
});

describe('quantized model files', () => {
  let root: { dir: string; cleanup: () => void };
  let made: MakeModelResult;
  const read = (file: string): OnnxModelProto => decodeModel(readFileSync(join(made.dir, 'onnx', file)));
  const ops = (m: OnnxModelProto): Map<string, number> => {
    const count = new Map<string, number>();
    for (const n of m.graph!.node!) count.set(n.opType!, (count.get(n.opType!) ?? 0) + 1);
    return count;
  };
  const init = (m: OnnxModelProto, name: string) => m.graph!.initializer!.find((t) => t.name === name)!;
  const floats = (m: OnnxModelProto, name: string): Float32Array => {
    const raw = init(m, name).rawData!;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  };

  beforeAll(async () => {
    root = tempDir('quant');
    made = await makeModel({
      out: join(root.dir, 'm'),
      size: 'tiny',
      seed: 11,
      layers: 1,
      dtypes: ['fp32', 'q4', 'q4f16', 'int8', 'uint8', 'q8'],
    });
  });
  afterAll(() => root?.cleanup());

  it('names the files as transformers.js looks them up and records how they were quantized', () => {
    expect(made.files.map((f) => f.path.slice(made.dir.length + 1)).filter((p) => p.startsWith('onnx/'))).toEqual([
      'onnx/model.onnx',
      'onnx/model_q4.onnx',
      'onnx/model_q4f16.onnx',
      'onnx/model_int8.onnx',
      'onnx/model_uint8.onnx',
      'onnx/model_quantized.onnx',
    ]);
    expect(made.config.tokmeter_modelgen.quantization).toEqual({
      q4: { block_size: 32, zero_points: false },
      int8: { per_channel: false },
    });
  });

  it('q4: MatMulNBits for the 7 projections and the LM head, a float embedding, weights from the fp32 file', () => {
    const q4 = read('model_q4.onnx');
    const count = ops(q4);
    expect(count.get('MatMulNBits')).toBe(8);
    expect(count.get('MatMul') ?? 0).toBe(2); // attention scores and probabilities x V
    expect(q4.opsetImport!.map((o) => o.domain)).toContain('com.microsoft');
    const head = q4.graph!.node!.find((n) => n.output![0] === 'logits')!;
    expect(head.opType).toBe('MatMulNBits');
    expect(head.domain).toBe('com.microsoft');
    const attrs = Object.fromEntries(head.attribute!.map((a) => [a.name, Number(a.i)]));
    expect(attrs).toEqual({ K: 64, N: 32000, bits: 4, block_size: 32 });
    expect(head.input).toHaveLength(3); // symmetric: no zero points
    expect(init(q4, 'lm_head.weight_Q4').dims!.map(Number)).toEqual([32000, 2, 16]);
    expect(init(q4, 'model.embed_tokens.weight').dataType).toBe(DataType.FLOAT);

    // Derived from the fp32 file's weights: the dequantized projection is within a step of them.
    const fp32 = read('model.onnx');
    const w = floats(fp32, 'model.layers.0.mlp.down_proj.weight'); // [176, 64]
    const node = q4.graph!.node!.find((n) => n.input![1] === 'model.layers.0.mlp.down_proj.weight_Q4')!;
    expect(Object.fromEntries(node.attribute!.map((a) => [a.name, Number(a.i)]))).toMatchObject({ K: 176, N: 64 });
    const scales = floats(q4, 'model.layers.0.mlp.down_proj.weight_scales');
    const packed = init(q4, 'model.layers.0.mlp.down_proj.weight_Q4').rawData!;
    const d = dequantize4({ packed, scales, nBlocks: 6 }, 176, 64, 32);
    const worst = Math.max(...scales.map(Math.abs));
    expect(maxDiff(d, w)).toBeLessThanOrEqual(worst + 1e-6);
    expect(maxDiff(d, w)).toBeGreaterThan(0);
  });

  it('q4f16: an fp16 graph around MatMulNBits with fp16 scales', () => {
    const m = read('model_q4f16.onnx');
    expect(ops(m).get('MatMulNBits')).toBe(8);
    expect(init(m, 'lm_head.weight_scales').dataType).toBe(DataType.FLOAT16);
    expect(init(m, 'model.embed_tokens.weight').dataType).toBe(DataType.FLOAT16);
    expect(m.graph!.output![0]!.type!.tensorType!.elemType).toBe(DataType.FLOAT16);
  });

  it('int8 / uint8 / q8: quantize_dynamic operators, the activation quantized once per tensor it feeds', () => {
    for (const [file, type] of [
      ['model_int8.onnx', DataType.INT8],
      ['model_uint8.onnx', DataType.UINT8],
      ['model_quantized.onnx', DataType.UINT8],
    ] as const) {
      const m = read(file);
      const count = ops(m);
      expect(count.get('MatMulInteger')).toBe(8);
      // q/k/v share the normed input, gate/up theirs: 4 per layer (+1 for the LM head).
      expect(count.get('DynamicQuantizeLinear')).toBe(5);
      expect(count.get('DequantizeLinear')).toBe(1); // the embedding
      expect(init(m, 'lm_head.weight_quantized').dataType).toBe(type);
      expect(init(m, 'model.embed_tokens.weight_quantized').dataType).toBe(type);
      expect(init(m, 'lm_head.weight_scale').dims).toEqual([]);
    }
    const q8 = readFileSync(join(made.dir, 'onnx', 'model_quantized.onnx'));
    expect(q8.equals(readFileSync(join(made.dir, 'onnx', 'model_uint8.onnx')))).toBe(true);
  });

  it('is deterministic from the seed', async () => {
    const again = await makeModel({
      out: join(root.dir, 'again'),
      size: 'tiny',
      seed: 11,
      layers: 1,
      dtypes: ['q4', 'int8'],
    });
    for (const f of ['model_q4.onnx', 'model_int8.onnx']) {
      expect(readFileSync(join(again.dir, 'onnx', f)).equals(readFileSync(join(made.dir, 'onnx', f)))).toBe(true);
    }
  });

  it('each file runs, close to but not equal to the fp32 model, and decodes with the cache as a full pass', async () => {
    const prompt = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366];
    const fp32 = await openModel(made.dir, 'model.onnx');
    const ref = await forward(fp32.session, fp32.shape, [prompt], [prompt.map(() => 1)], emptyCache(fp32.shape, 1));
    const last = (l: Float32Array): Float32Array => row(l, 32000, prompt.length, 0, prompt.length - 1);
    for (const [file, far, cached] of [
      ['model_q4.onnx', 2, 1e-4],
      ['model_q4f16.onnx', 2, 3e-2],
      ['model_int8.onnx', 0.5, 0.5],
      ['model_uint8.onnx', 0.5, 0.5],
    ] as const) {
      const { session, shape } = await openModel(made.dir, file);
      const full = await forward(session, shape, [prompt], [prompt.map(() => 1)], emptyCache(shape, 1));
      const d = maxDiff(last(full.logits), last(ref.logits));
      expect(d, file).toBeGreaterThan(1e-3);
      expect(d, file).toBeLessThan(far);
      // int8: DynamicQuantizeLinear's activation scale spans the whole input tensor, so a chunk's logits
      // depend on what else is in the chunk; 4-bit weights with float activations compute each row alone.
      const chunked = await chunkedDecodeDiff(session, shape, prompt, full.logits);
      expect(chunked, file).toBeLessThan(cached);
      if (file.includes('int8')) expect(chunked).toBeGreaterThan(1e-3); // not exact, for the reason above
      await session.release();
    }
    await fp32.session.release();
  });
});
