/**
 * tokmeter side of bench/generate: loads the model, runs each prompt, prints JSON. Run by run.ts in its own process.
 * The in-Run share comes from the engine's own counters of one-token (decode) steps.
 */
import { readFileSync } from 'node:fs';
import { Model, type ModelDtype } from '../../src/model/index.js';

interface Job {
  dir: string;
  threads: number;
  maxNew: number;
  prompts: number[][];
  dtype: ModelDtype;
}
const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const now = (): number => performance.now();

const t0 = now();
const model = await Model.load(job.dir, { threads: job.threads, dtype: job.dtype });
const loadMs = now() - t0;
const weightBytes = model.info.fileBytes;
const greedy = { temperature: 0, eosTokenIds: [] as number[] };
await model.generate({ tokens: job.prompts[0]!.slice(0, 8) }, { ...greedy, maxNewTokens: 4 }).result; // warm-up

const results = [];
for (const ids of job.prompts) {
  const before = model.timings();
  const times: number[] = [];
  const start = now();
  const run = model.generate({ tokens: ids }, { ...greedy, maxNewTokens: job.maxNew, highWaterMark: 1 << 20 });
  for await (const chunk of run) {
    const t = now();
    for (let i = 0; i < chunk.tokens.length; i++) times.push(t);
  }
  const r = await run.result;
  const after = model.timings();
  const decodeWallMs = times[times.length - 1]! - times[0]!;
  const steps = after.decodeForwards - before.decodeForwards; // = newTokens - 1: the last token is never fed
  const decodeRunMs = after.decodeRunMs - before.decodeRunMs;
  const decodeForwardMs = after.decodeForwardMs - before.decodeForwardMs;
  const decodeGapMs = after.decodeGapMs - before.decodeGapMs;
  results.push({
    promptTokens: r.usage.promptTokens,
    newTokens: r.usage.completionTokens,
    ttftMs: times[0]! - start,
    decodeTokPerS: ((times.length - 1) / decodeWallMs) * 1000,
    decodeStepMs: decodeWallMs / (times.length - 1),
    runMsPerDecodeStep: decodeRunMs / steps,
    outsideRunShare: 1 - decodeRunMs / decodeWallMs,
    // The engine's own view of a decode step: its Forward plus the gap before the next one.
    outsideRunShareEngine: 1 - decodeRunMs / (decodeForwardMs + decodeGapMs),
    gapMsPerStep: decodeGapMs / steps,
    tokens: Array.from(r.tokens.slice(0, 8)),
  });
}
await model.dispose();
process.stdout.write(JSON.stringify({ engine: 'tokmeter', loadMs, weightBytes, results }) + '\n');
