/**
 * transformers.js side of bench/concurrency (the named concurrent baseline): the same folder, the same prompts per
 * level, the same thread count, greedy, exactly maxNew new tokens. At each level all requests are started together
 * (Promise.all over model.generate on one loaded model, as a Node server would), so any overlap comes from ONNX
 * Runtime running several sessions' Runs at once; transformers.js has no batching across calls.
 * Prints one JSON line: {engine, loadMs, levels: [{n, tokens, wallMs, ttfts}]}.
 */
import { readFileSync } from 'node:fs';
import type { Tensor } from '@huggingface/transformers';
import { loadCausalLm, promptTensors } from '../../scripts/transformers-offline.js';

interface Job {
  dir: string;
  threads: number;
  maxNew: number;
  levels: { n: number; prompts: number[][] }[];
}
const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const now = (): number => performance.now();

const t0 = now();
const model = await loadCausalLm(job.dir, { threads: job.threads });
const loadMs = now() - t0;

/** One greedy request; resolves with its token count and time to first token (from `start`). */
async function generate(ids: number[], maxNew: number, start: number): Promise<{ tokens: number; ttftMs: number }> {
  const { input_ids, attention_mask } = promptTensors(ids);
  let calls = 0;
  let ttft = -1;
  const streamer = {
    put: () => {
      if (calls++ === 1) ttft = now() - start; // the 1st put is the prompt
    },
    end: () => {},
  };
  const out = (await model.generate({
    input_ids,
    attention_mask,
    max_new_tokens: maxNew,
    min_new_tokens: maxNew,
    do_sample: false,
    streamer,
  } as unknown as Parameters<typeof model.generate>[0])) as Tensor;
  return { tokens: (out.dims[1] as number) - ids.length, ttftMs: ttft };
}

await generate(job.levels[0]!.prompts[0]!.slice(0, 8), 4, now()); // warm-up
const levels = [];
for (const level of job.levels) {
  const start = now();
  const rows = await Promise.all(level.prompts.map((p) => generate(p, job.maxNew, start)));
  levels.push({
    n: level.n,
    tokens: rows.reduce((s, r) => s + r.tokens, 0),
    wallMs: now() - start,
    ttfts: rows.map((r) => r.ttftMs),
  });
}
process.stdout.write(JSON.stringify({ engine: 'transformers.js', loadMs, levels }) + '\n');
