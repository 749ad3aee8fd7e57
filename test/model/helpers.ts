/**
 * Test helpers for src/model: model folders made by the model maker into a temp dir (never committed), and a
 * full-recompute greedy reference run through the generic Session (src/session.ts) (plain ORT Run, no KV-cache code of the
 * engine): every step feeds the whole sequence with empty past tensors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeModel, type MakeModelOptions } from '../../src/modelgen/index.js';
import { fromHalfBits } from '../../src/modelgen/half.js';
import { Session, tensor, type Tensor } from '../../src/index.js';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tokmeter-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function makeTestModel(
  root: string,
  name: string,
  options: Omit<MakeModelOptions, 'out'> = {},
): Promise<string> {
  const out = path.join(root, name);
  await makeModel({ size: 'tiny', ...options, out });
  return out;
}

function argmax(data: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  let value = -Infinity;
  for (let i = 0; i < length; i++) {
    const x = data[offset + i]!;
    if (x > value) {
      value = x;
      best = i;
    }
  }
  return best;
}

/** Greedy decoding without a KV cache: each step recomputes the whole sequence. */
export async function recomputeGreedy(
  dir: string,
  prompt: readonly number[],
  maxNew: number,
  eos: number[],
  file = 'model.onnx',
  /** Argmax over ids below this only (a padded vocabulary's real ids); default: the whole vocabulary. */
  samplable?: number,
): Promise<number[]> {
  const session = await Session.load(path.join(dir, 'onnx', file), { intraOpThreads: 1 });
  try {
    const ids = [...prompt];
    const out: number[] = [];
    for (let step = 0; step < maxNew; step++) {
      const n = ids.length;
      const feeds: Record<string, Tensor> = {
        input_ids: tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, n]),
      };
      for (const input of session.inputs) {
        if (input.name === 'attention_mask') feeds[input.name] = tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
        if (input.name === 'position_ids')
          feeds[input.name] = tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, n]);
        if (input.name.startsWith('past_key_values.')) {
          const dims = [1, input.dims[1] as number, 0, input.dims[3] as number];
          feeds[input.name] =
            input.type === 'float16'
              ? tensor('float16', new Uint16Array(0), dims)
              : tensor('float32', new Float32Array(0), dims);
        }
      }
      const result = await session.run(feeds, { outputs: ['logits'] });
      const logits = result.logits!;
      const vocab = logits.dims[2]!;
      const data =
        logits.type === 'float16'
          ? Array.from(logits.data as Uint16Array, fromHalfBits)
          : (logits.data as Float32Array);
      const next = argmax(data, (n - 1) * vocab, Math.min(samplable ?? vocab, vocab));
      out.push(next);
      if (eos.includes(next)) break;
      ids.push(next);
    }
    return out;
  } finally {
    await session.close();
  }
}
