/**
 * tokmeter side of bench/generate: loads the model, runs each prompt, prints JSON. Run by run.ts in its own process.
 * The in-Run share comes from the engine's own counters of one-token (decode) steps.
 * Then, for each batch size asked (--batch), that many generations at once over `batchPrompts`: the per-step time
 * outside Run while every one of them decodes (from the moment the last one has its first token to the moment the
 * first one has its last), from the JS arrival times and from the engine's counters.
 */
import { readFileSync } from 'node:fs';
import { Model, type ModelDtype } from '../../src/model/index.js';

interface Job {
  dir: string;
  threads: number;
  maxNew: number;
  prompts: number[][];
  dtype: ModelDtype;
  batches: number[];
  batchPrompts: number[][];
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
    forwardOutsideRunMs: (decodeForwardMs - decodeRunMs) / steps,
    cpuOutsideRunMs:
      (after.decodeGapCpuMs - before.decodeGapCpuMs + after.decodeOutsideRunCpuMs - before.decodeOutsideRunCpuMs) /
      steps,
    gapMsPerStep: decodeGapMs / steps,
    tokens: Array.from(r.tokens.slice(0, 8)),
  });
}

// Batches: n generations at once. A model that cannot batch (info.batchable false) runs them one after the
// other; its window is then the whole run (every step has one row).
const batches = [];
for (const n of job.batches) {
  const prompts = Array.from({ length: n }, (_, i) => job.batchPrompts[i % job.batchPrompts.length]!);
  const runs = prompts.map((ids) =>
    model.generate({ tokens: ids }, { ...greedy, maxNewTokens: job.maxNew, highWaterMark: 1 << 20 }),
  );
  const serial = !model.info.batchable;
  let started = 0;
  let from = serial ? { t: now(), timings: model.timings() } : undefined;
  let to: typeof from;
  await Promise.all(
    runs.map(async (run) => {
      let first = true;
      for await (const chunk of run) {
        if (first && chunk.tokens.length > 0) {
          first = false;
          if (++started === n && !serial) from = { t: now(), timings: model.timings() };
        }
      }
      if (!to && !serial) to = { t: now(), timings: model.timings() };
      await run.result;
    }),
  );
  if (serial) to = { t: now(), timings: model.timings() };
  const a = from!.timings;
  const b = to!.timings;
  const steps = b.decodeForwards - a.decodeForwards;
  const run = b.decodeRunMs - a.decodeRunMs;
  const forward = b.decodeForwardMs - a.decodeForwardMs;
  const gap = b.decodeGapMs - a.decodeGapMs;
  const wall = to!.t - from!.t;
  // A join relayouts the batch once (copies every row into the new layout), inside that step's Forward: reported on
  // its own, and left out of the engine's per-step view (the JS view, over wall time, includes it).
  const relayout = b.relayout.ms - a.relayout.ms;
  batches.push({
    batch: n,
    serial,
    steps,
    meanRows: (b.decodeRows - a.decodeRows) / steps,
    stepMs: serial ? (forward + gap) / steps : wall / steps,
    runMsPerStep: run / steps,
    // Outside Run per step: the JS view (wall time between the window's ends) needs every step in the window to be
    // a decode step, so it is given for real batches only; the engine's view counts its Forward and the gap after.
    outsideRunShare: serial ? undefined : 1 - run / wall,
    outsideRunShareEngine: 1 - run / (forward - relayout + gap),
    forwardOutsideRunMs: (forward - relayout - run) / steps,
    relayoutMs: relayout,
    // The inference thread's own CPU time outside Run per step (gap + Forward outside Run): its work, unstretched.
    cpuOutsideRunMs: (b.decodeGapCpuMs - a.decodeGapCpuMs + b.decodeOutsideRunCpuMs - a.decodeOutsideRunCpuMs) / steps,
    relayouts: b.relayout.count - a.relayout.count,
    gapMsPerStep: gap / steps,
  });
}
await model.dispose();
process.stdout.write(JSON.stringify({ engine: 'tokmeter', loadMs, weightBytes, results, batches }) + '\n');
