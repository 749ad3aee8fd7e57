/**
 * The generated decoder, run directly in onnxruntime-node: graph contract, exact KV-cache decoding, left padding,
 * the fp16-KV and no-position-ids variants, external data, and that greedy outputs depend on the context.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeModel, type MakeModelResult } from '../../src/modelgen/index.js';
import { decodeModel } from '../../src/modelgen/onnx-builder.js';
import { loadTokenizerInfo } from '../../src/modelgen/tokenizers.js';
import {
  argmax,
  chunkedDecodeDiff,
  emptyCache,
  forward,
  greedy,
  maxAbsDiff,
  openModel,
  row,
  type Cache,
} from './helpers.js';
import { referenceForward } from './reference.js';

const SEED = 7;
let root: string;
let base: MakeModelResult;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tokmeter-modelgen-'));
  base = await makeModel({ out: join(root, 'tiny'), size: 'tiny', seed: SEED });
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const PROMPT = [1, 415, 2936, 9060, 285, 1142, 461, 10575, 754, 272, 17898, 3914];

function pearson(a: Float32Array, b: Float32Array): number {
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < a.length; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= a.length;
  mb /= b.length;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! - ma;
    const y = b[i]! - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

function dimsOf(vi: {
  type?: {
    tensorType?: { shape?: { dim?: { dimValue?: unknown; dimParam?: string | null }[] | null } | null } | null;
  } | null;
}): (number | string)[] {
  return (vi.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
}

describe('graph contract', () => {
  it('writes the Optimum layout and a config that matches the graph', () => {
    const cfg = base.config;
    expect(cfg.model_type).toBe('llama');
    expect(cfg.num_key_value_heads).toBeLessThan(cfg.num_attention_heads);
    expect(cfg.num_attention_heads % cfg.num_key_value_heads).toBe(0);
    const onDisk = JSON.parse(readFileSync(join(base.dir, 'config.json'), 'utf8'));
    expect(onDisk).toEqual(cfg);
    const gen = JSON.parse(readFileSync(join(base.dir, 'generation_config.json'), 'utf8'));
    expect(gen.eos_token_id).toBe(2);
    expect(gen.bos_token_id).toBe(1);
    // Tokenizer files are the package's own bytes.
    const tok = loadTokenizerInfo('llama2');
    expect(readFileSync(join(base.dir, 'tokenizer.json')).equals(readFileSync(tok.tokenizerJsonPath))).toBe(true);
    expect(readFileSync(join(base.dir, 'tokenizer_config.json')).equals(readFileSync(tok.tokenizerConfigPath))).toBe(
      true,
    );
    expect(cfg.vocab_size).toBe(tok.vocabSize);
    expect(base.files.map((f) => f.path.slice(base.dir.length + 1)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'onnx/model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(base.bytes).toBe(base.files.reduce((a, f) => a + f.bytes, 0));
    expect(base.parameters).toBeGreaterThan(2_000_000);
    expect(base.parameters).toBeLessThan(10_000_000);
  });

  it('declares named batch and length dims and fixed head dims', () => {
    const model = decodeModel(readFileSync(join(base.dir, 'onnx', 'model.onnx')));
    const { num_key_value_heads: kv, head_dim: d, vocab_size: v, num_hidden_layers: layers } = base.config;
    const inputs = Object.fromEntries(model.graph!.input!.map((i) => [i.name!, dimsOf(i)]));
    const outputs = Object.fromEntries(model.graph!.output!.map((o) => [o.name!, dimsOf(o)]));
    expect(inputs.input_ids).toEqual(['batch_size', 'sequence_length']);
    expect(inputs.attention_mask).toEqual(['batch_size', 'past_sequence_length + sequence_length']);
    expect(inputs.position_ids).toEqual(['batch_size', 'sequence_length']);
    expect(outputs.logits).toEqual(['batch_size', 'sequence_length', v]);
    expect(model.graph!.output![0]!.name).toBe('logits');
    for (let i = 0; i < layers; i++) {
      for (const kind of ['key', 'value']) {
        expect(inputs[`past_key_values.${i}.${kind}`]).toEqual(['batch_size', kv, 'past_sequence_length', d]);
        expect(outputs[`present.${i}.${kind}`]).toEqual(['batch_size', kv, 'total_sequence_length', d]);
      }
    }
    expect(Number(model.opsetImport![0]!.version)).toBeGreaterThanOrEqual(17);
    const ops = new Set(model.graph!.node!.map((n) => n.opType));
    for (const op of ops) expect(op).toMatch(/^[A-Z][A-Za-z]+$/); // default-domain ops only
    expect(model.graph!.node!.every((n) => !n.domain)).toBe(true);
  });

  it('is deterministic in the seed', async () => {
    const again = await makeModel({ out: join(root, 'tiny-again'), size: 'tiny', seed: SEED });
    const other = await makeModel({ out: join(root, 'tiny-other'), size: 'tiny', seed: SEED + 1 });
    const a = readFileSync(join(base.dir, 'onnx', 'model.onnx'));
    expect(readFileSync(join(again.dir, 'onnx', 'model.onnx')).equals(a)).toBe(true);
    expect(readFileSync(join(other.dir, 'onnx', 'model.onnx')).equals(a)).toBe(false);
    rmSync(again.dir, { recursive: true });
    rmSync(other.dir, { recursive: true });
  });
});

describe('onnxruntime-node', () => {
  it('matches an independent reference implementation of the Llama forward pass', async () => {
    const { session, shape } = await openModel(base.dir);
    const ids = PROMPT.slice(0, 7);
    const out = await forward(session, shape, [ids], [ids.map(() => 1)], emptyCache(shape, 1));
    const ref = referenceForward(base.dir, ids);
    for (let t = 0; t < ids.length; t++) {
      expect(maxAbsDiff(row(out.logits, shape.vocab, out.seq, 0, t), ref[t]!)).toBeLessThan(1e-4);
    }
    // Present KV has the full length and the declared shape.
    expect(out.cache.keys[0]!.dims).toEqual([1, shape.kvHeads, ids.length, shape.headDim]);
  });

  it('matches the reference with overridden sizes (3 query heads per KV head, head_dim != hidden / heads)', async () => {
    const custom = await makeModel({
      out: join(root, 'custom'),
      seed: 3,
      layers: 1,
      hidden: 48,
      heads: 6,
      kvHeads: 2,
      headDim: 12,
      intermediate: 64,
    });
    expect(custom.config).toMatchObject({
      num_attention_heads: 6,
      num_key_value_heads: 2,
      head_dim: 12,
      hidden_size: 48,
    });
    expect(custom.config.tokmeter_modelgen.size).toBe('custom');
    const { session, shape } = await openModel(custom.dir);
    const ids = PROMPT.slice(0, 6);
    const out = await forward(session, shape, [ids], [ids.map(() => 1)], emptyCache(shape, 1));
    const ref = referenceForward(custom.dir, ids);
    for (let t = 0; t < ids.length; t++) {
      expect(maxAbsDiff(row(out.logits, shape.vocab, out.seq, 0, t), ref[t]!)).toBeLessThan(1e-4);
    }
    rmSync(custom.dir, { recursive: true });
  });

  it('gives the same logits step by step with past_key_values as one full pass without cache', async () => {
    const { session, shape } = await openModel(base.dir);
    const seq = PROMPT;
    const full = await forward(session, shape, [seq], [seq.map(() => 1)], emptyCache(shape, 1));
    // Prefill 5 tokens, then one 3-token chunk, then single tokens.
    const chunks = [seq.slice(0, 5), seq.slice(5, 8), ...seq.slice(8).map((t) => [t])];
    let cache: Cache = emptyCache(shape, 1);
    let pos = 0;
    let worst = 0;
    for (const chunk of chunks) {
      const mask = Array.from({ length: pos + chunk.length }, () => 1);
      const r = await forward(session, shape, [chunk], [mask], cache);
      for (let t = 0; t < chunk.length; t++) {
        worst = Math.max(
          worst,
          maxAbsDiff(row(r.logits, shape.vocab, r.seq, 0, t), row(full.logits, shape.vocab, seq.length, 0, pos + t)),
        );
      }
      cache = r.cache;
      pos += chunk.length;
    }
    expect(pos).toBe(seq.length);
    expect(worst).toBeLessThan(1e-4);
    // Greedy with the cache = greedy by full recompute.
    const cached = await greedy(session, shape, seq.slice(0, 6), 8);
    const recomputed: number[] = [];
    const ctx = seq.slice(0, 6);
    for (let i = 0; i < 8; i++) {
      const r = await forward(session, shape, [ctx], [ctx.map(() => 1)], emptyCache(shape, 1));
      const next = argmax(row(r.logits, shape.vocab, r.seq, 0, r.seq - 1));
      recomputed.push(next);
      ctx.push(next);
    }
    expect(cached).toEqual(recomputed);
  });

  it('gives each row of a left-padded batch the logits of its prompt alone, through decode steps', async () => {
    const { session, shape } = await openModel(base.dir);
    const long = PROMPT.slice(0, 9);
    const short = [1, 22557, 1526, 28808];
    const pad = long.length - short.length;
    const ids = [long, [...Array<number>(pad).fill(0), ...short]];
    const mask = [long.map(() => 1), [...Array<number>(pad).fill(0), ...short.map(() => 1)]];
    let batchCache = emptyCache(shape, 2);
    const solo = [emptyCache(shape, 1), emptyCache(shape, 1)];
    const soloIds = [long, short];
    const soloMask = [long.map(() => 1), short.map(() => 1)];
    let worst = 0;
    for (let step = 0; step < 4; step++) {
      const b = await forward(session, shape, ids, mask, batchCache);
      const next: number[] = [];
      for (let r = 0; r < 2; r++) {
        const s = await forward(session, shape, [soloIds[r]!], [soloMask[r]!], solo[r]!);
        // Compare every real (non-pad) position of this step.
        const offset = step === 0 && r === 1 ? pad : 0;
        for (let t = 0; t < s.seq; t++) {
          worst = Math.max(
            worst,
            maxAbsDiff(row(b.logits, shape.vocab, b.seq, r, t + offset), row(s.logits, shape.vocab, s.seq, 0, t)),
          );
        }
        solo[r] = s.cache;
        next.push(argmax(row(s.logits, shape.vocab, s.seq, 0, s.seq - 1)));
        soloIds[r] = [next[r]!];
        soloMask[r] = [...soloMask[r]!, 1];
      }
      batchCache = b.cache;
      ids.splice(0, 2, [next[0]!], [next[1]!]);
      mask[0]!.push(1);
      mask[1]!.push(1);
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it('makes greedy continuations that differ between prompts and depend on earlier context', async () => {
    const { session, shape } = await openModel(base.dir);
    const prompts = [
      [1, 415, 2936, 9060, 285, 1142],
      [1, 22557, 1526],
      [1, 995, 460, 368, 28804],
      [1, 28705, 28740, 28750, 28770],
    ];
    const outs = await Promise.all(prompts.map((p) => greedy(session, shape, p, 16)));
    expect(new Set(outs.map((o) => o.join(','))).size).toBe(prompts.length);
    for (const o of outs) expect(new Set(o).size).toBeGreaterThan(4); // not one token (or a short loop) forever
    // Same last token, different earlier context: a model that only looks at the current token would agree.
    const sameEnd = await Promise.all([
      greedy(session, shape, [1, 415, 2936, 9060, 1142], 8),
      greedy(session, shape, [1, 22557, 1526, 28804, 1142], 8),
      greedy(session, shape, [1, 28705, 28740, 28750, 1142], 8),
    ]);
    expect(new Set(sameEnd.map((o) => o.join(','))).size).toBe(3);
    // ...and not by a hair: the final logits of those prompts are far from each other (Pearson r well below 1).
    const lastLogits = async (ids: number[]): Promise<Float32Array> => {
      const r = await forward(session, shape, [ids], [ids.map(() => 1)], emptyCache(shape, 1));
      return Float32Array.from(row(r.logits, shape.vocab, r.seq, 0, r.seq - 1));
    };
    const x = await lastLogits([1, 415, 2936, 9060, 1142]);
    const y = await lastLogits([1, 22557, 1526, 28804, 1142]);
    expect(pearson(x, y)).toBeLessThan(0.8);
  });
});

describe('variants', () => {
  it('fp16 KV cache: fp16 past/present tensors, logits within fp16 tolerance of fp32', async () => {
    const fp16 = await makeModel({ out: join(root, 'tiny-fp16'), size: 'tiny', seed: SEED, kvDtype: 'float16' });
    const a = await openModel(base.dir);
    const b = await openModel(fp16.dir);
    expect(b.shape.kvType).toBe('float16');
    const outMeta = b.session.outputMetadata.find((m) => m.name === 'present.0.key');
    expect(outMeta && outMeta.isTensor ? outMeta.type : null).toBe('float16');
    const ids = PROMPT;
    const fa = await forward(a.session, a.shape, [ids], [ids.map(() => 1)], emptyCache(a.shape, 1));
    const fb = await forward(b.session, b.shape, [ids], [ids.map(() => 1)], emptyCache(b.shape, 1));
    expect(fb.cache.keys[0]!.type).toBe('float16');
    const diff = maxAbsDiff(fa.logits, fb.logits);
    expect(diff).toBeGreaterThan(0); // really rounded through fp16
    expect(diff).toBeLessThan(5e-2);
    // Cached decoding of the fp16 model equals its own full pass (both round the same K/V values).
    let cache = emptyCache(b.shape, 1);
    let worst = 0;
    for (let t = 0; t < ids.length; t++) {
      const r = await forward(b.session, b.shape, [[ids[t]!]], [ids.slice(0, t + 1).map(() => 1)], cache);
      worst = Math.max(
        worst,
        maxAbsDiff(row(r.logits, b.shape.vocab, 1, 0, 0), row(fb.logits, b.shape.vocab, ids.length, 0, t)),
      );
      cache = r.cache;
    }
    expect(worst).toBeLessThan(1e-4);
    expect(await greedy(b.session, b.shape, ids.slice(0, 6), 10)).toEqual(
      await greedy(a.session, a.shape, ids.slice(0, 6), 10),
    );
  });

  it('no position_ids: positions from attention_mask, same logits as with position_ids, padded too', async () => {
    const nopos = await makeModel({ out: join(root, 'tiny-nopos'), size: 'tiny', seed: SEED, positionIds: false });
    const a = await openModel(base.dir);
    const b = await openModel(nopos.dir);
    expect(b.session.inputNames).not.toContain('position_ids');
    const ids = [PROMPT.slice(0, 8), [0, 0, 0, 1, 22557, 1526, 28808, 461]];
    const mask = [ids[0]!.map(() => 1), [0, 0, 0, 1, 1, 1, 1, 1]];
    const fa = await forward(a.session, a.shape, ids, mask, emptyCache(a.shape, 2));
    const fb = await forward(b.session, b.shape, ids, mask, emptyCache(b.shape, 2));
    // Compare real positions only (padded query rows are don't-care).
    for (const [r, from] of [
      [0, 0],
      [1, 3],
    ] as const) {
      for (let t = from; t < 8; t++) {
        expect(maxAbsDiff(row(fa.logits, a.shape.vocab, 8, r, t), row(fb.logits, b.shape.vocab, 8, r, t))).toBeLessThan(
          1e-5,
        );
      }
    }
    // A decode step with past: positions continue from the mask.
    const sa = await forward(
      a.session,
      a.shape,
      [[461], [272]],
      mask.map((m) => [...m, 1]),
      fa.cache,
    );
    const sb = await forward(
      b.session,
      b.shape,
      [[461], [272]],
      mask.map((m) => [...m, 1]),
      fb.cache,
    );
    expect(maxAbsDiff(sa.logits, sb.logits)).toBeLessThan(1e-5);
    // And positions matter: rotary embeddings are relative, so a uniform shift changes nothing, but a gap does.
    const ort = await import('onnxruntime-node');
    const run = async (pos: bigint[]): Promise<Float32Array> => {
      const empty = emptyCache(a.shape, 1);
      const out = await a.session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from([1n, 415n, 2936n]), [1, 3]),
        attention_mask: new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n]), [1, 3]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from(pos), [1, 3]),
        ...Object.fromEntries(
          empty.keys.flatMap((k, i) => [
            [`past_key_values.${i}.key`, k],
            [`past_key_values.${i}.value`, empty.values[i]!],
          ]),
        ),
      });
      return out.logits!.data as Float32Array;
    };
    const base012 = await run([0n, 1n, 2n]);
    expect(maxAbsDiff(base012, await run([5n, 6n, 7n]))).toBeLessThan(1e-4);
    expect(maxAbsDiff(base012, await run([0n, 1n, 5n]))).toBeGreaterThan(1e-2);
  });

  it("GroupQueryAttention (attention: gqa): the genai builder's op, same logits as the standard graph", async () => {
    const made = await makeModel({
      out: join(root, 'tiny-gqa'),
      size: 'tiny',
      seed: SEED,
      attention: 'gqa',
      dtypes: ['fp32', 'fp16'],
    });
    expect(made.config.tokmeter_modelgen.attention).toBe('gqa');
    expect(base.config.tokmeter_modelgen.attention).toBe('standard');
    const model = decodeModel(readFileSync(join(made.dir, 'onnx', 'model.onnx')));
    const gqaNodes = model.graph!.node!.filter((n) => n.opType === 'GroupQueryAttention');
    expect(gqaNodes).toHaveLength(made.config.num_hidden_layers);
    for (const n of gqaNodes) {
      expect(n.domain).toBe('com.microsoft');
      expect(n.input).toHaveLength(7); // query, key, value, past_key, past_value, seqlens_k, total_sequence_length
      const attrs = Object.fromEntries(n.attribute!.map((a) => [a.name!, Number(a.i)]));
      expect(attrs).toEqual({ num_heads: 4, kv_num_heads: 2, do_rotary: 0 });
    }
    expect(model.opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([
      ['', 17],
      ['com.microsoft', 1],
    ]);
    // Weights are drawn in the same order: the graphs compute the same function.
    const a = await openModel(base.dir);
    const b = await openModel(made.dir);
    const full = await forward(a.session, a.shape, [PROMPT], [PROMPT.map(() => 1)], emptyCache(a.shape, 1));
    expect(await chunkedDecodeDiff(b.session, b.shape, PROMPT, full.logits)).toBeLessThan(1e-4);
    // model_fp16.onnx runs the op in float16 (fp16 KV), close to fp32.
    const h = await openModel(made.dir, 'model_fp16.onnx');
    expect(h.shape.kvType).toBe('float16');
    const fh = await forward(h.session, h.shape, [PROMPT], [PROMPT.map(() => 1)], emptyCache(h.shape, 1));
    expect(maxAbsDiff(fh.logits, full.logits)).toBeLessThan(5e-2);
  });

  it('GroupQueryAttention ignores the mask: a left-padded row is wrong, right-padded rows are exact', async () => {
    // Why the engine batches GQA graphs right-padded (other graphs left-padded): the op reads each row's length
    // from seqlens_k = sum(mask) - 1 and takes that row's first keys as the valid ones.
    const dir = join(root, 'tiny-gqa');
    const a = await openModel(base.dir);
    const b = await openModel(dir);
    const long = PROMPT.slice(0, 8);
    const short = PROMPT.slice(3, 8);
    const pad = long.length - short.length;
    const decodeRow1 = async (
      m: typeof a,
      layout: 'left' | 'right',
    ): Promise<{ batched: Float32Array; solo: Float32Array }> => {
      const p0 = await forward(m.session, m.shape, [long], [long.map(() => 1)], emptyCache(m.shape, 1));
      const p1 = await forward(m.session, m.shape, [short], [short.map(() => 1)], emptyCache(m.shape, 1));
      // Stack the two prefilled caches into a [2, kv, 8, d] batch, the short row padded with zeros.
      const stack = (t0: ort.Tensor, t1: ort.Tensor): ort.Tensor => {
        const [, heads, len0, d] = t0.dims as [number, number, number, number];
        const len1 = t1.dims[2]!;
        const out = new Float32Array(2 * heads * len0 * d);
        out.set(t0.data as Float32Array, 0);
        const shift = layout === 'left' ? pad : 0;
        for (let k = 0; k < heads; k++) {
          const src = (t1.data as Float32Array).subarray(k * len1 * d, (k + 1) * len1 * d);
          out.set(src, (heads + k) * len0 * d + shift * d);
        }
        return new ort.Tensor('float32', out, [2, heads, len0, d]);
      };
      const batchCache: Cache = {
        keys: p0.cache.keys.map((k, i) => stack(k, p1.cache.keys[i]!)),
        values: p0.cache.values.map((v, i) => stack(v, p1.cache.values[i]!)),
        length: long.length,
      };
      const holes = Array<number>(pad).fill(0);
      const ones = Array<number>(short.length + 1).fill(1);
      const mask = [
        Array<number>(long.length + 1).fill(1),
        layout === 'left' ? [...holes, ...ones] : [...ones, ...holes],
      ];
      // Each row's own position (a right-padded row's new token is not in the mask's last column).
      const positions = [[long.length], [short.length]];
      const batched = await forward(m.session, m.shape, [[999], [999]], mask, batchCache, positions);
      const solo = await forward(m.session, m.shape, [[999]], [ones], p1.cache);
      return { batched: row(batched.logits, m.shape.vocab, 1, 1, 0), solo: row(solo.logits, m.shape.vocab, 1, 0, 0) };
    };
    const standardLeft = await decodeRow1(a, 'left');
    expect(maxAbsDiff(standardLeft.batched, standardLeft.solo)).toBeLessThan(1e-4);
    const gqaLeft = await decodeRow1(b, 'left');
    expect(maxAbsDiff(gqaLeft.batched, gqaLeft.solo)).toBeGreaterThan(0.5);
    const gqaRight = await decodeRow1(b, 'right');
    expect(maxAbsDiff(gqaRight.batched, gqaRight.solo)).toBeLessThan(1e-4);
  });

  it('external data: onnx/model.onnx + onnx/model.onnx_data, same logits as inline weights', async () => {
    const ext = await makeModel({ out: join(root, 'tiny-ext'), size: 'tiny', seed: SEED, externalData: true });
    const names = ext.files.map((f) => f.path.slice(ext.dir.length + 1));
    expect(names).toContain('onnx/model.onnx_data');
    const graphBytes = ext.files.find((f) => f.path.endsWith('model.onnx'))!.bytes;
    const dataBytes = ext.files.find((f) => f.path.endsWith('model.onnx_data'))!.bytes;
    expect(graphBytes).toBeLessThan(200_000);
    expect(dataBytes).toBeGreaterThan(ext.parameters * 4 * 0.99);
    expect(ext.config['transformers.js_config']).toMatchObject({ use_external_data_format: { 'model.onnx': 1 } });
    const a = await openModel(base.dir);
    const b = await openModel(ext.dir);
    const ids = PROMPT.slice(0, 6);
    const fa = await forward(a.session, a.shape, [ids], [ids.map(() => 1)], emptyCache(a.shape, 1));
    const fb = await forward(b.session, b.shape, [ids], [ids.map(() => 1)], emptyCache(b.shape, 1));
    expect(maxAbsDiff(fa.logits, fb.logits)).toBe(0);
  });

  it('model_fp16.onnx: fp16 weights, KV and logits, close to the fp32 file; cached decoding consistent', async () => {
    const both = await makeModel({ out: join(root, 'tiny-both'), size: 'tiny', seed: SEED, dtypes: ['fp32', 'fp16'] });
    const names = both.files.map((f) => f.path.slice(both.dir.length + 1));
    expect(names).toEqual(expect.arrayContaining(['onnx/model.onnx', 'onnx/model_fp16.onnx']));
    const model16 = decodeModel(readFileSync(join(both.dir, 'onnx', 'model_fp16.onnx')));
    const weights = model16.graph!.initializer!.filter((t) => t.name!.endsWith('.weight'));
    expect(weights.length).toBeGreaterThan(0);
    expect(weights.every((t) => t.dataType === 10)).toBe(true);
    // The fp32 file of this folder is the same model as the base one (same seed).
    expect(
      readFileSync(join(both.dir, 'onnx', 'model.onnx')).equals(readFileSync(join(base.dir, 'onnx', 'model.onnx'))),
    ).toBe(true);
    const a = await openModel(base.dir);
    const b = await openModel(both.dir, 'model_fp16.onnx');
    expect(b.shape.kvType).toBe('float16');
    const logitsMeta = b.session.outputMetadata.find((m) => m.name === 'logits');
    expect(logitsMeta && logitsMeta.isTensor ? logitsMeta.type : null).toBe('float16');
    const ids = PROMPT;
    const fa = await forward(a.session, a.shape, [ids], [ids.map(() => 1)], emptyCache(a.shape, 1));
    const fb = await forward(b.session, b.shape, [ids], [ids.map(() => 1)], emptyCache(b.shape, 1));
    const diff = maxAbsDiff(fa.logits, fb.logits);
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(5e-2);
    // Same math as the reference run on the fp16-rounded weights (only the fp16 logits rounding differs).
    const ref = referenceForward(both.dir, ids.slice(0, 5), 'model_fp16.onnx');
    for (let t = 0; t < 5; t++) {
      expect(maxAbsDiff(row(fb.logits, b.shape.vocab, ids.length, 0, t), ref[t]!)).toBeLessThan(2e-2);
    }
    let cache = emptyCache(b.shape, 1);
    let worst = 0;
    for (let t = 0; t < ids.length; t++) {
      const r = await forward(b.session, b.shape, [[ids[t]!]], [ids.slice(0, t + 1).map(() => 1)], cache);
      worst = Math.max(
        worst,
        maxAbsDiff(row(r.logits, b.shape.vocab, 1, 0, 0), row(fb.logits, b.shape.vocab, ids.length, 0, t)),
      );
      cache = r.cache;
    }
    expect(worst).toBeLessThan(2e-2); // at most a couple of fp16 ulps of the logits
  });

  it('vocab_size covers every tokenizer id, added tokens included', () => {
    // llama3's BPE vocabulary ends at 127999; its 256 added special tokens take it to 128256.
    const llama3 = loadTokenizerInfo('llama3');
    expect(llama3.vocabSize).toBe(128256);
    expect(llama3.eosTokenIds).toEqual([128001, 128009]);
    expect(llama3.bosTokenId).toBe(128000);
    expect(llama3.hasChatTemplate).toBe(true);
  });
});
