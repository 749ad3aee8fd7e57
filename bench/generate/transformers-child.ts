/**
 * transformers.js side of bench/generate (the named baseline): same folder, same ids, same thread count, greedy,
 * exactly maxNew new tokens (min_new_tokens = max_new_tokens). Times each new token through a streamer.
 */
import { readFileSync } from 'node:fs';
import type { Tensor } from '@huggingface/transformers';
import { loadCausalLm, promptTensors, type PeerDtype } from '../../scripts/transformers-offline.js';

interface Job {
  dir: string;
  threads: number;
  maxNew: number;
  prompts: number[][];
  dtype: PeerDtype;
}
const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const now = (): number => performance.now();

const t0 = now();
const model = await loadCausalLm(job.dir, { threads: job.threads, dtype: job.dtype });
const loadMs = now() - t0;

async function generate(ids: number[], maxNew: number, times: number[]): Promise<number[]> {
  const { input_ids, attention_mask } = promptTensors(ids);
  let calls = 0;
  const streamer = {
    put: () => {
      if (calls++ > 0) times.push(now());
    },
    end: () => {},
  }; // 1st put is the prompt
  const out = (await model.generate({
    input_ids,
    attention_mask,
    max_new_tokens: maxNew,
    min_new_tokens: maxNew,
    do_sample: false,
    streamer,
  } as unknown as Parameters<typeof model.generate>[0])) as Tensor;
  return (out.tolist()[0] as bigint[]).map(Number).slice(ids.length);
}

await generate(job.prompts[0]!.slice(0, 8), 4, []); // warm-up
const results = [];
for (const ids of job.prompts) {
  const times: number[] = [];
  const start = now();
  const tokens = await generate(ids, job.maxNew, times);
  const decodeWallMs = times[times.length - 1]! - times[0]!;
  results.push({
    promptTokens: ids.length,
    newTokens: tokens.length,
    ttftMs: times[0]! - start,
    decodeTokPerS: ((times.length - 1) / decodeWallMs) * 1000,
    decodeStepMs: decodeWallMs / (times.length - 1),
    tokens: tokens.slice(0, 8),
  });
}
process.stdout.write(JSON.stringify({ engine: 'transformers.js', loadMs, results }) + '\n');
