/**
 * Test helpers: run generated models through onnxruntime-node directly (no tokmeter code), so the model
 * tests check the ONNX graph against the contract and not against another part of the project.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { fromHalfBits } from '../../src/modelgen/half.js';

export interface ModelShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  kvType: 'float32' | 'float16';
  hasPositionIds: boolean;
}

export interface Cache {
  keys: ort.Tensor[];
  values: ort.Tensor[];
  length: number;
}

export async function openModel(
  dir: string,
  fileName = 'model.onnx',
): Promise<{ session: ort.InferenceSession; shape: ModelShape }> {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const session = await ort.InferenceSession.create(join(dir, 'onnx', fileName), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const kvMeta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
  const kvType = kvMeta && kvMeta.isTensor ? (kvMeta.type as 'float32' | 'float16') : 'float32';
  return {
    session,
    shape: {
      layers: config.num_hidden_layers as number,
      kvHeads: config.num_key_value_heads as number,
      headDim: config.head_dim as number,
      vocab: config.vocab_size as number,
      kvType,
      hasPositionIds: session.inputNames.includes('position_ids'),
    },
  };
}

export function emptyCache(shape: ModelShape, batch: number): Cache {
  const mk = (): ort.Tensor =>
    shape.kvType === 'float16'
      ? new ort.Tensor('float16', new Uint16Array(0), [batch, shape.kvHeads, 0, shape.headDim])
      : new ort.Tensor('float32', new Float32Array(0), [batch, shape.kvHeads, 0, shape.headDim]);
  return {
    keys: Array.from({ length: shape.layers }, mk),
    values: Array.from({ length: shape.layers }, mk),
    length: 0,
  };
}

/**
 * One forward pass. `ids[b]` are the new tokens of row b (all rows the same length), `mask[b]` the full
 * attention mask (past + new). Positions follow HF: cumsum(mask) - 1, 1 where masked, last S columns, unless
 * `positions` gives them ([B][S]).
 */
export async function forward(
  session: ort.InferenceSession,
  shape: ModelShape,
  ids: number[][],
  mask: number[][],
  cache: Cache,
  positions?: number[][],
): Promise<{ logits: Float32Array; cache: Cache; seq: number }> {
  const batch = ids.length;
  const seq = ids[0]!.length;
  const total = mask[0]!.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), [batch, seq]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.flat().map(BigInt)), [batch, total]),
  };
  if (shape.hasPositionIds && positions) {
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(positions.flat().map(BigInt)), [batch, seq]);
  } else if (shape.hasPositionIds) {
    const pos: bigint[] = [];
    for (const row of mask) {
      let c = 0;
      const full = row.map((m) => (m ? c++ : 1));
      pos.push(...full.slice(total - seq).map(BigInt));
    }
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(pos), [batch, seq]);
  }
  for (let i = 0; i < shape.layers; i++) {
    feeds[`past_key_values.${i}.key`] = cache.keys[i]!;
    feeds[`past_key_values.${i}.value`] = cache.values[i]!;
  }
  const out = await session.run(feeds);
  const next: Cache = { keys: [], values: [], length: total };
  for (let i = 0; i < shape.layers; i++) {
    next.keys.push(out[`present.${i}.key`]!);
    next.values.push(out[`present.${i}.value`]!);
  }
  const logits = out.logits!;
  const data =
    logits.type === 'float16'
      ? Float32Array.from(logits.data as Uint16Array, fromHalfBits)
      : (logits.data as Float32Array);
  return { logits: data, cache: next, seq };
}

/** Logits row of (batch b, position t) from a [B, S, V] buffer. */
export function row(logits: Float32Array, vocab: number, seq: number, b: number, t: number): Float32Array {
  const start = (b * seq + t) * vocab;
  return logits.subarray(start, start + vocab);
}

export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * Decodes `prompt` step by step with the KV cache (chunks of 5 and 3 tokens, then one token at a time, so prefill
 * on top of an existing past is covered) and returns the largest difference of any position's logits from
 * `fullLogits`, a full pass over the whole prompt ([1, prompt.length, vocab]).
 */
export async function chunkedDecodeDiff(
  session: ort.InferenceSession,
  shape: ModelShape,
  prompt: number[],
  fullLogits: Float32Array,
): Promise<number> {
  const chunks = [prompt.slice(0, 5), prompt.slice(5, 8), ...prompt.slice(8).map((t) => [t])];
  let cache: Cache = emptyCache(shape, 1);
  let pos = 0;
  let worst = 0;
  for (const chunk of chunks) {
    const r = await forward(session, shape, [chunk], [Array<number>(pos + chunk.length).fill(1)], cache);
    for (let t = 0; t < chunk.length; t++) {
      const want = row(fullLogits, shape.vocab, prompt.length, 0, pos + t);
      worst = Math.max(worst, maxAbsDiff(row(r.logits, shape.vocab, r.seq, 0, t), want));
    }
    cache = r.cache;
    pos += chunk.length;
  }
  return worst;
}

/** Greedy decoding of one prompt with the KV cache; returns the new tokens. */
export async function greedy(
  session: ort.InferenceSession,
  shape: ModelShape,
  prompt: number[],
  maxNewTokens: number,
  eos: number[] = [],
): Promise<number[]> {
  let cache = emptyCache(shape, 1);
  let ids = prompt;
  const mask = prompt.map(() => 1);
  const outTokens: number[] = [];
  for (let step = 0; step < maxNewTokens; step++) {
    const r = await forward(session, shape, [ids], [mask], cache);
    const next = argmax(row(r.logits, shape.vocab, r.seq, 0, r.seq - 1));
    outTokens.push(next);
    if (eos.includes(next)) break;
    cache = r.cache;
    ids = [next];
    mask.push(1);
  }
  return outTokens;
}
