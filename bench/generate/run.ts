/**
 * bench/generate — time to first token and decode tokens/s: tokmeter vs transformers.js (the named baseline) on the
 * benchmark model, plus raw onnxruntime-node per-step time as the floor. Same folder, same prompt ids, same thread
 * count, greedy, exactly 128 new tokens, prompts of 16 and 1024 tokens.
 *
 *   npx tsx bench/generate/run.ts                    # makes .models/bench (the model maker's --size bench) if missing
 *   npx tsx bench/generate/run.ts --model DIR --threads 2 --max-new 128 --prompts 16,1024 --floor-steps 32 --repeat 2
 *   npx tsx bench/generate/run.ts --dtype q4        # onnx/model_q4.onnx of .models/bench-q4 (made if missing)
 *   npx tsx bench/generate/run.ts --only tokmeter --batch 1,8 --prompts 16   # per-step overhead at batch 1 and 8
 *
 * --dtype (fp32, fp16, q4, q4f16, int8, uint8, q8) picks the file every engine loads. The bandwidth floor: the
 * machine's memory bandwidth (bandwidth-child.ts) over the loaded file's weight bytes (model.info.fileBytes), the
 * most decode steps per second a memory-bound engine can reach at batch 1.
 *
 * Each engine runs in its own child process, one after the other: transformers.js and onnxruntime-node bring their
 * own libonnxruntime.so.1 (same soname as tokmeter's), and separate processes keep their memory and thread pools
 * from disturbing each other. Engines alternate for --repeat rounds and keep their best round. A full run takes about
 * 5-8 minutes on a 2-core machine.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MODEL_DTYPES, makeModel, type ModelDtype } from '../../src/modelgen/index.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { EMBEDDING_ELEMENT_BYTES } from './shared.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    dtype: { type: 'string', default: 'fp32' },
    threads: { type: 'string', default: '2' },
    'max-new': { type: 'string', default: '128' },
    prompts: { type: 'string', default: '16,1024' },
    'floor-steps': { type: 'string', default: '32' },
    only: { type: 'string' },
    repeat: { type: 'string', default: '2' },
    batch: { type: 'string', default: '1,8' },
  },
});
const dtype = values.dtype as ModelDtype;
if (!(MODEL_DTYPES as readonly string[]).includes(dtype)) throw new Error(`expected --dtype ${MODEL_DTYPES.join('|')}`);
const dir = path.resolve(values.model ?? (dtype === 'fp32' ? '.models/bench' : `.models/bench-${dtype}`));
const threads = Number(values.threads);
const maxNew = Number(values['max-new']);
const lengths = values.prompts!.split(',').map(Number);
const only = values.only?.split(',');
const repeat = Number(values.repeat);

if (!existsSync(path.join(dir, 'config.json'))) {
  console.error(`making the bench model in ${dir} ...`);
  await makeModel({ size: 'bench', out: dir, dtypes: [dtype], log: (l) => console.error(l) });
}

// The same prompt ids for every engine: natural-ish text, BOS first, cut to the exact length.
const tokenizer = await Tokenizer.fromPretrained(dir);
const words =
  'the model reads a long report about rivers and mountains and the weather of each season while counting every token it sees'.split(
    ' ',
  );
let text = '';
for (let i = 0; text.length < 12 * Math.max(...lengths); i++)
  text += `${words[(i * 7) % words.length]} ${i % 13 === 0 ? `${i}, ` : ''}`;
const all = Array.from(tokenizer.encode(text, { addSpecialTokens: true }));
tokenizer.dispose();
const prompts = lengths.map((n) => all.slice(0, n));
// Batched runs (tokmeter only): distinct 16-token prompts, BOS first.
const batches = values.batch === '' ? [] : values.batch!.split(',').map(Number);
const batchPrompts = Array.from({ length: Math.max(1, ...batches) }, (_, i) => [
  all[0]!,
  ...all.slice(1 + i * 15, 16 + i * 15),
]);
for (const [i, p] of prompts.entries())
  if (p.length !== lengths[i]) throw new Error(`could not build a ${lengths[i]}-token prompt`);

const work = mkdtempSync(path.join(os.tmpdir(), 'tokmeter-bench-'));
const jobFile = path.join(work, 'job.json');
writeFileSync(
  jobFile,
  JSON.stringify({
    dir,
    dtype,
    threads,
    maxNew,
    prompts,
    batches,
    batchPrompts,
    floorSteps: Number(values['floor-steps']),
  }),
);

interface Row {
  promptTokens: number;
  ttftMs?: number;
  decodeTokPerS?: number;
  decodeStepMs?: number;
  stepMs?: number;
  stepsPerS?: number;
  outsideRunShare?: number;
  outsideRunShareEngine?: number;
  gapMsPerStep?: number;
  forwardOutsideRunMs?: number;
  cpuOutsideRunMs?: number;
  runMsPerDecodeStep?: number;
  tokens?: number[];
}
interface BatchRow {
  batch: number;
  serial: boolean;
  steps: number;
  meanRows: number;
  stepMs: number;
  runMsPerStep: number;
  outsideRunShare?: number;
  outsideRunShareEngine: number;
  forwardOutsideRunMs: number;
  gapMsPerStep: number;
  relayoutMs: number;
  relayouts: number;
  cpuOutsideRunMs: number;
}
function child(file: string): {
  engine: string;
  loadMs?: number;
  weightBytes?: number;
  gbPerS?: number;
  results: Row[];
  batches?: BatchRow[];
} {
  const t0 = performance.now();
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, file), jobFile], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  const parsed = JSON.parse(out.trim().split('\n').pop()!);
  console.error(`${parsed.engine}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return parsed;
}

try {
  const want = (name: string): boolean => !only || only.includes(name);
  // Engines alternate, `repeat` rounds; each keeps its best round per prompt (a shared machine only adds noise,
  // never speed), so one engine is not penalised for running while a neighbour compiles.
  type Out = { engine: string; loadMs?: number; weightBytes?: number; results: Row[]; batches?: BatchRow[] };
  const best = (a: Out | undefined, b: Out): Out => {
    if (!a) return b;
    return {
      engine: a.engine,
      ...(a.weightBytes !== undefined ? { weightBytes: a.weightBytes } : {}),
      loadMs: Math.min(a.loadMs ?? Infinity, b.loadMs ?? Infinity),
      results: a.results.map((r, i) => {
        const o = b.results[i]!;
        const key = r.decodeTokPerS !== undefined ? 'decodeTokPerS' : 'stepsPerS';
        const winner = (o[key] ?? 0) > (r[key] ?? 0) ? o : r;
        return { ...winner, ttftMs: Math.min(r.ttftMs ?? Infinity, o.ttftMs ?? Infinity) };
      }),
      // Batched rounds: the one with the least outside Run (engine view) per batch size.
      ...(a.batches
        ? {
            batches: a.batches.map((x, i) => {
              const y = b.batches?.[i];
              return y && y.outsideRunShareEngine < x.outsideRunShareEngine ? y : x;
            }),
          }
        : {}),
    };
  };
  let tm: Out | undefined, tj: Out | undefined, floor: Out | undefined;
  const bandwidth = want('bandwidth') ? (child('bandwidth-child.ts').gbPerS ?? NaN) : NaN;
  for (let round = 0; round < repeat; round++) {
    if (want('tokmeter')) tm = best(tm, child('tokmeter-child.ts'));
    if (want('transformers')) tj = best(tj, child('transformers-child.ts'));
    if (want('ort')) floor = best(floor, child('ort-child.ts'));
  }

  const f = (x: number | undefined, d = 1): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
  console.log(
    `\nbench/generate — ${path.basename(dir)} (${dir}), ${threads} threads, ${maxNew} new tokens, greedy, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`,
  );
  console.log(`load: tokmeter ${f(tm?.loadMs, 0)} ms, transformers.js ${f(tj?.loadMs, 0)} ms`);
  // Decode reads every weight once per step, except the embedding table, of which a Gather reads one row: the
  // bandwidth floor in steps/s at batch 1 is bandwidth / (file bytes - embedding table).
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, number>;
  const embeddingBytes = config.vocab_size! * config.hidden_size! * EMBEDDING_ELEMENT_BYTES[dtype];
  const stepBytes = tm?.weightBytes ? tm.weightBytes - embeddingBytes : NaN;
  const bwFloor = (bandwidth * 1e9) / stepBytes;
  const mib = (n: number | undefined): string => f(n === undefined ? NaN : n / 2 ** 20);
  console.log(
    `dtype ${dtype}: file ${mib(tm?.weightBytes)} MiB (+ external data), read per decode step ${mib(stepBytes)} MiB ` +
      `(all but the embedding table's ${mib(embeddingBytes)} MiB); memory bandwidth ${f(bandwidth)} GB/s ` +
      `(one-thread memcpy) => bandwidth floor ${f(bwFloor)} tok/s (file bytes: ${f((bandwidth * 1e9) / (tm?.weightBytes ?? NaN))})\n`,
  );
  console.log(
    'prompt | TTFT ms tokmeter / tfjs (ratio) | decode tok/s tokmeter / tfjs (ratio) | % of bandwidth floor | ORT floor steps/s | tokmeter step: ms, in Run ms, outside Run',
  );
  for (let i = 0; i < prompts.length; i++) {
    const a = tm?.results[i];
    const b = tj?.results[i];
    const c = floor?.results[i];
    const ratio = (x?: number, y?: number): string => (x && y ? (x / y).toFixed(2) + 'x' : '-');
    console.log(
      `${String(lengths[i]).padStart(6)} | ${f(a?.ttftMs, 0)} / ${f(b?.ttftMs, 0)} (${ratio(b?.ttftMs, a?.ttftMs)} faster) | ` +
        `${f(a?.decodeTokPerS)} / ${f(b?.decodeTokPerS)} (${ratio(a?.decodeTokPerS, b?.decodeTokPerS)}) | ${f(((a?.decodeTokPerS ?? NaN) / bwFloor) * 100, 0)}% | ${f(c?.stepsPerS)} | ` +
        `${f(a?.decodeStepMs, 2)}, ${f(a?.runMsPerDecodeStep, 2)}, ${a?.outsideRunShare === undefined ? '-' : (a.outsideRunShare * 100).toFixed(2) + '%'}` +
        ` (engine-side: ${a?.outsideRunShareEngine === undefined ? '-' : (a.outsideRunShareEngine * 100).toFixed(2) + '%'}, ` +
        `Forward outside Run ${f(a?.forwardOutsideRunMs, 3)} ms + gap ${f(a?.gapMsPerStep, 3)} ms; ` +
        `the inference thread's CPU outside Run ${f(a?.cpuOutsideRunMs, 3)} ms)`,
    );
  }
  if (tm && tj) {
    const same = tm.results.every((r, i) => JSON.stringify(r.tokens) === JSON.stringify(tj.results[i]?.tokens));
    console.log(`\nfirst 8 greedy tokens identical across engines: ${same}`);
  }
  if (tm?.batches?.length) {
    console.log(
      '\ntokmeter, concurrent generations of 16-token prompts: batch | steps (mean rows) | step ms | in Run ms | ' +
        'outside Run per step: JS view (relayouts included), engine view (Forward outside Run ms + gap ms)',
    );
    for (const x of tm.batches) {
      const pct = (v?: number): string => (v === undefined ? '-' : (v * 100).toFixed(2) + '%');
      console.log(
        `${String(x.batch).padStart(5)}${x.serial ? ' (one at a time: the graph does not batch)' : ''} | ` +
          `${x.steps} (${f(x.meanRows, 2)}) | ${f(x.stepMs, 2)} | ${f(x.runMsPerStep, 2)} | ${pct(x.outsideRunShare)}, ` +
          `${pct(x.outsideRunShareEngine)} (${f(x.forwardOutsideRunMs, 3)} + ${f(x.gapMsPerStep, 3)}); ` +
          `inference thread's CPU outside Run ${f(x.cpuOutsideRunMs, 3)} ms/step; ` +
          `${x.relayouts} relayout(s) at joins: ${f(x.relayoutMs, 1)} ms`,
      );
    }
  }
  console.log(
    '\n"outside Run" = 1 - (time inside OrtSession::Run) / (wall time between the first and last token reaching JS)',
  );
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(', ')}`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
