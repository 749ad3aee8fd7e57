/**
 * Raw onnxruntime-node floor for bench/generate: the decode step alone (one token, KV cache of the prompt's length
 * fed back from the previous step's present.* outputs), no sampling, no tokenizer. Per-step time = what ORT itself
 * costs through its Node binding, including copying the cache into JS and back.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ONNX_FILE, type ModelDtype } from '../../src/modelgen/index.js';

interface Job {
  dir: string;
  threads: number;
  maxNew: number;
  prompts: number[][];
  floorSteps: number;
  dtype: ModelDtype;
}
const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const now = (): number => performance.now();
const session = await ort.InferenceSession.create(join(job.dir, 'onnx', ONNX_FILE[job.dtype]), {
  intraOpNumThreads: job.threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
const meta = session.inputMetadata.find((m) => m.name === pastNames[0]) as unknown as {
  shape: (number | string)[];
  type: string;
};
const half = meta.type === 'float16';
const heads = meta.shape[1] as number;
const dim = meta.shape[3] as number;
const hasPos = session.inputNames.includes('position_ids');
const i64 = (xs: number[]): BigInt64Array => BigInt64Array.from(xs.map(BigInt));

async function step(
  ids: number[],
  past: Record<string, ort.Tensor>,
  pastLen: number,
): Promise<Record<string, ort.Tensor>> {
  const n = ids.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', i64(ids), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(pastLen + n).fill(1n), [1, pastLen + n]),
    ...past,
  };
  if (hasPos) feeds.position_ids = new ort.Tensor('int64', i64(ids.map((_, i) => pastLen + i)), [1, n]);
  const out = await session.run(feeds);
  const next: Record<string, ort.Tensor> = {};
  for (const name of pastNames) next[name] = out[name.replace('past_key_values.', 'present.')]!;
  return next;
}

const results = [];
for (const ids of job.prompts) {
  let past: Record<string, ort.Tensor> = {};
  for (const name of pastNames) {
    past[name] = half
      ? new ort.Tensor('float16', new Uint16Array(0), [1, heads, 0, dim])
      : new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, dim]);
  }
  past = await step(ids, past, 0);
  let len = ids.length;
  past = await step([5], past, len++); // warm-up step
  const start = now();
  for (let s = 0; s < job.floorSteps; s++) past = await step([5 + s], past, len++);
  const ms = (now() - start) / job.floorSteps;
  results.push({ promptTokens: ids.length, stepMs: ms, stepsPerS: 1000 / ms });
}
process.stdout.write(JSON.stringify({ engine: 'onnxruntime-node', results }) + '\n');
