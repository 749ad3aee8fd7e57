/**
 * GPU benchmark and correctness run for device 'cuda'. Runs on the GPU machine, bundled by
 * bench/gpu/pack.sh into one .mjs that the shipped Node binary runs (no npm there); see bench/gpu/README.md.
 *
 *   node bench.mjs --make-model DIR                      # only make the 1.1B model (run.sh starts this early)
 *   node bench.mjs --out DIR [--model-dir DIR] [--summary FILE] [--deadline-s N] [--bandwidth-gbps N] [--quick]
 *                  [--compute fp32|fp16]
 *
 * 1. Correctness (tiny model, fp32): CPU vs CUDA greedy ids on three prompts, and seeded sampling (the engine passes
 *    the CPU sampler's uniforms to the CUDA sampler, so ids agree). A mismatch or an error is recorded, the run goes
 *    on, and the exit status is 1 at the end.
 * 2. A ~1.1B-parameter Llama (16 × 2048, 32/8 heads × 64, ffn 8192, 32k vocabulary; fp16 weights, KV and logits)
 *    from the model maker: reused from --model-dir when `made.json` there says it is complete (run.sh makes it in
 *    the background while the C++ tests run), made here otherwise (~1 min: a single-threaded JS PRNG over 1.1B
 *    weights, timed at 61 s on the 2-core build machine).
 * 3. Configurations, most useful first: prompt 128 × batch 1, 8; prompt 2048 × batch 1, 8; then batch 32 at both
 *    (skipped with --quick). B concurrent generate() calls (greedy, EOS off; 64 new tokens at 128, 32 at 2048);
 *    time to first token (median and max over the batch: the scheduler queues prefills, so the max grows with B)
 *    and decode tokens/s, aggregate (every request's tokens after its first / from the first first-token to the
 *    last end, so late prefills count against it) and per request (median), beside the bandwidth bound.
 *    Each configuration is aborted at its own time limit or at the deadline; one that fails is reported and the
 *    run goes on.
 * 4. Batched vs solo: request 0 of batch 8 at prompt 128 against the same prompt alone (reported, not a failure:
 *    fp16 KV and batch-shaped kernels may round differently).
 *
 * The bound: decode is memory-bound, so B tokens per step cost at least (bytes read per step) / bandwidth, with
 * bytes per step = resident weight bytes + B × context × KV bytes per token. The graph computes in fp32 (modelgen
 * stores fp16 weights behind a Cast that ONNX Runtime folds at load), so the resident matmul weights are fp32:
 * 4 bytes × (parameters − the embedding table, which stays fp16 and is read a row per token). The device memory
 * taken by the load is printed to check that. The bound for weights read as fp16 is twice as high (a line says so).
 *
 * --compute fp16 (default fp32: the model and bound above): the 1.1B model made with modelgen's `compute: 'fp16'`
 * (fp16 weights used directly, fp16 activations, MatMuls, KV and logits, as a real fp16 export computes), in
 * `<model-dir>-compute-fp16` so the fp32-compute model beside it is kept; the bound then counts the bytes that graph
 * reads: 2 bytes × (parameters − the embedding table) of weights, plus the same fp16 KV.
 *
 * Results: printed as they come and rewritten into --summary after every step, so a timeout or a crash leaves the
 * rows measured so far (the file says "INCOMPLETE" until the end).
 */
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import path from 'node:path';
import { cudaStatus, type CudaStatus } from '../../src/cuda/index.js';
import { Model, type ModelLoadOptions } from '../../src/model/index.js';
import { makeModel } from '../../src/modelgen/index.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const started = performance.now();
const seconds = () => (performance.now() - started) / 1000;
const log = (line: string) => console.log(`[${seconds().toFixed(1)} s] ${line}`);
/** Arithmetic of the 1.1B model's graph: 'fp32' (default; fp16 weights behind folded Casts) or 'fp16'. */
const computeArg = arg('--compute') ?? 'fp32';
if (computeArg !== 'fp32' && computeArg !== 'fp16') {
  console.error(`bench: expected --compute fp32|fp16, got ${computeArg}`);
  process.exit(2);
}
const compute: 'fp32' | 'fp16' = computeArg;
const outDir = path.resolve(arg('--out') ?? '/tmp/tokmeter-gpu-bench');
const modelDirArg = arg('--model-dir') ?? path.join(outDir, 'bench-1b');
const modelDir = path.resolve(compute === 'fp16' ? `${modelDirArg}-compute-fp16` : modelDirArg);
const summaryFile = path.resolve(arg('--summary') ?? path.join(outDir, 'summary.txt'));
const bandwidthGBps = Number(arg('--bandwidth-gbps') ?? process.env.BENCH_BW_GBPS ?? 'NaN');
const deadlineS = Number(arg('--deadline-s') ?? '400');
const quick = args.includes('--quick');
const makeOnlyDir = arg('--make-model');
/** Exercises this file's flow on the CPU with a small model (no GPU needed): `tsx bench/gpu/bench.ts --cpu-dry-run`. */
const cpuDryRun = args.includes('--cpu-dry-run');
const remainingMs = () => (deadlineS - seconds()) * 1000;

/** The benchmark model: ~1.1B parameters, the shape of TinyLlama-1.1B with a 32k vocabulary. */
const SPEC = cpuDryRun
  ? { layers: 2, hidden: 256, heads: 4, kvHeads: 2, intermediate: 512, context: 4096 }
  : { layers: 16, hidden: 2048, heads: 32, kvHeads: 8, intermediate: 8192, context: 4096 };
const MADE_FILE = 'made.json';
interface Made {
  parameters: number;
  /** Bytes of onnx/model_fp16.onnx and its external data. */
  fileBytes: number;
  vocab: number;
  spec: typeof SPEC;
  seconds: number;
  /** 'fp16' when made with --compute fp16; absent (older made.json) means fp32. */
  compute?: 'fp32' | 'fp16';
}

// ---- the summary, rewritten after every step

const summary = {
  head: [] as string[],
  rows: [] as string[],
  notes: [] as string[],
  failures: [] as string[],
  /** Configurations that failed or were skipped (exit status 3 when nothing else failed). */
  missing: 0,
};
const HEADER =
  'prompt  batch  new  TTFT p50 ms  TTFT max ms  decode tok/s (aggregate)  per-request tok/s  bound tok/s  % of bound';
function writeSummary(final: boolean): void {
  if (makeOnlyDir !== undefined) return;
  const text = [
    ...summary.head,
    HEADER,
    ...summary.rows,
    ...summary.notes,
    summary.failures.length === 0
      ? `correctness: ${final ? 'no failure' : 'no failure so far'}`
      : `FAILURES: ${summary.failures.join('; ')}`,
    `configurations: ${summary.rows.length - summary.missing} measured, ${summary.missing} failed or skipped`,
    final ? `done in ${seconds().toFixed(1)} s` : `INCOMPLETE: still running at ${seconds().toFixed(1)} s`,
  ].join('\n');
  try {
    fs.mkdirSync(path.dirname(summaryFile), { recursive: true });
    fs.writeFileSync(`${summaryFile}.tmp`, `${text}\n`);
    fs.renameSync(`${summaryFile}.tmp`, summaryFile);
  } catch (err) {
    log(`could not write ${summaryFile}: ${(err as Error).message}`);
  }
  if (final) console.log(`\n${text}`);
}
const note = (line: string) => {
  summary.notes.push(line);
  log(line);
  writeSummary(false);
};
const fail = (what: string) => {
  summary.failures.push(what);
  log(`FAILED: ${what}`);
  writeSummary(false);
};
const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0]!;

// ---- helpers

const cudaOptions = (extra: Partial<ModelLoadOptions> = {}): ModelLoadOptions =>
  cpuDryRun ? { threads: 2, ...extra } : { device: 'cuda', deviceId: 0, ...extra };

/** Deterministic prompt ids (xorshift), avoiding the first 3 (special) ids. */
function promptIds(length: number, seed: number, vocab: number): number[] {
  let x = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(3 + ((x >>> 0) % (vocab - 3)));
  }
  return out;
}

/** A right-aligned table cell; '-' for NaN (no bandwidth measured, no token). */
const cell = (x: number, digits: number, width: number) =>
  (Number.isFinite(x) ? x.toFixed(digits) : '-').padStart(width);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};
const sameIds = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  a.length === b.length && Array.prototype.every.call(a, (t: number, i: number) => t === b[i]);
const firstDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
};

interface Timed {
  ttftMs: number;
  decodeTokens: number;
  decodeMs: number;
  tokens: number[];
  firstMs: number;
  endMs: number;
  finishReason: string;
}

async function timedGenerate(model: Model, ids: number[], maxNewTokens: number, signal?: AbortSignal) {
  const t0 = performance.now();
  let first = NaN;
  const tokens: number[] = [];
  const run = model.generate({ tokens: ids }, { maxNewTokens, temperature: 0, eosTokenIds: [], signal });
  for await (const chunk of run) {
    if (Number.isNaN(first) && chunk.tokens.length > 0) first = performance.now();
    tokens.push(...chunk.tokens);
  }
  const { finishReason } = await run.result;
  const end = performance.now();
  const timed: Timed = {
    ttftMs: first - t0,
    decodeTokens: Math.max(0, tokens.length - 1),
    decodeMs: end - first,
    tokens,
    firstMs: first,
    endMs: end,
    finishReason,
  };
  return timed;
}

// ---- 1. correctness on the tiny model

async function correctness(): Promise<void> {
  const dir = path.join(outDir, 'tiny');
  await makeModel({ size: 'tiny', out: dir, force: true });
  const cpu = await Model.load(dir, { threads: 4 });
  let gpu: Model | null = null;
  try {
    gpu = await Model.load(dir, cudaOptions());
    for (const p of ['Hello world', 'The quick brown fox jumps over the lazy dog.', 'Numbers: 1, 2, 3 and 你好']) {
      const a = (await cpu.generate(p, { maxNewTokens: 32, temperature: 0 }).result).tokens;
      const b = (await gpu.generate(p, { maxNewTokens: 32, temperature: 0 }).result).tokens;
      const label = JSON.stringify(p).padEnd(48);
      if (sameIds(a, b)) log(`parity greedy  ${label} same ${a.length} ids`);
      else
        fail(
          `greedy parity on ${JSON.stringify(p)}: first difference at token ${firstDifference(a, b)} (cpu ${a} / cuda ${b})`,
        );
      const o = { maxNewTokens: 32, temperature: 0.8, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 7 };
      const sa = (await cpu.generate(p, o).result).tokens;
      const sb = (await gpu.generate(p, o).result).tokens;
      if (sameIds(sa, sb)) log(`parity seeded  ${label} same ${sa.length} ids`);
      else fail(`seeded parity on ${JSON.stringify(p)}: first difference at token ${firstDifference(sa, sb)}`);
    }
  } finally {
    await cpu.dispose();
    await gpu?.dispose();
  }
}

// ---- 2. the 1.1B model

async function make(dir: string): Promise<Made> {
  const t0 = performance.now();
  const made = await makeModel({
    out: dir,
    force: true,
    tokenizer: 'llama2',
    kvDtype: 'float16',
    dtypes: ['fp16'],
    ...(compute === 'fp16' ? { compute } : {}),
    ...SPEC,
  });
  const result: Made = {
    parameters: made.parameters,
    fileBytes: made.files.filter((f) => f.path.includes('model_fp16')).reduce((s, f) => s + f.bytes, 0),
    vocab: made.config.vocab_size,
    spec: SPEC,
    seconds: (performance.now() - t0) / 1000,
    compute,
  };
  // Written last, atomically: its presence says the folder is complete.
  fs.writeFileSync(path.join(dir, `${MADE_FILE}.tmp`), JSON.stringify(result));
  fs.renameSync(path.join(dir, `${MADE_FILE}.tmp`), path.join(dir, MADE_FILE));
  return result;
}

function madeAlready(dir: string): Made | null {
  try {
    const made = JSON.parse(fs.readFileSync(path.join(dir, MADE_FILE), 'utf8')) as Made;
    return JSON.stringify(made.spec) === JSON.stringify(SPEC) && (made.compute ?? 'fp32') === compute ? made : null;
  } catch {
    return null;
  }
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

// ---- 3. the configurations

interface Config {
  promptLength: number;
  batch: number;
  newTokens: number;
}
function configs(): Config[] {
  const c = (promptLength: number, batch: number): Config => ({
    promptLength,
    batch,
    newTokens: promptLength === 128 ? 64 : 32,
  });
  const list = [c(128, 1), c(128, 8), c(2048, 1), c(2048, 8)];
  return quick ? list : [...list, c(128, 32), c(2048, 32)];
}
/** Time limit of one configuration: generous (prefill of 32 × 2048 tokens in fp32 is ~140 TFLOP). */
const CONFIG_LIMIT_MS = 90_000;
/** What the end of the run needs after the last configuration (dispose, summary). */
const RESERVE_MS = 10_000;

async function runConfig(model: Model, made: Made, cfg: Config): Promise<void> {
  const { promptLength, batch, newTokens } = cfg;
  const label = `${String(promptLength).padStart(6)}  ${String(batch).padStart(5)}  ${String(newTokens).padStart(3)}`;
  const limitMs = Math.floor(Math.min(CONFIG_LIMIT_MS, remainingMs() - RESERVE_MS)); // AbortSignal.timeout: integer
  if (limitMs < 5_000) {
    summary.missing++;
    summary.rows.push(`${label}  skipped: the deadline (--deadline-s ${deadlineS}) is near`);
    log(summary.rows[summary.rows.length - 1]!);
    return;
  }
  const signal = AbortSignal.timeout(limitMs);
  setMaxListeners(0, signal); // one listener per request of the batch
  try {
    const runs = await Promise.all(
      Array.from({ length: batch }, (_, i) =>
        timedGenerate(model, promptIds(promptLength, 1000 + i, made.vocab), newTokens, signal),
      ),
    );
    const aborted = runs.filter((r) => r.finishReason === 'abort').length;
    if (aborted > 0)
      throw new Error(`${aborted} of ${batch} requests aborted at the ${(limitMs / 1000).toFixed(0)} s limit`);
    const ttft = runs.map((r) => r.ttftMs);
    const windowStart = Math.min(...runs.map((r) => r.firstMs));
    const windowEnd = Math.max(...runs.map((r) => r.endMs));
    const decodeTokens = runs.reduce((s, r) => s + r.decodeTokens, 0);
    const aggregate = (decodeTokens / (windowEnd - windowStart)) * 1000;
    const perRequest = median(runs.map((r) => (r.decodeTokens / r.decodeMs) * 1000));
    const kvBytesPerToken = SPEC.layers * 2 * SPEC.kvHeads * (SPEC.hidden / SPEC.heads) * 2; // fp16 K and V
    const context = promptLength + newTokens / 2;
    const bytesPerStep = residentWeightBytes(made) + batch * context * kvBytesPerToken;
    const bound = Number.isFinite(bandwidthGBps) ? (batch * bandwidthGBps * 1e9) / bytesPerStep : NaN;
    const pct = (aggregate / bound) * 100;
    summary.rows.push(
      [
        label,
        cell(median(ttft), 1, 11),
        cell(Math.max(...ttft), 1, 11),
        cell(aggregate, 1, 24),
        cell(perRequest, 1, 17),
        cell(bound, 0, 11),
        Number.isFinite(pct) ? `${cell(pct, 0, 9)}%` : cell(NaN, 0, 10),
      ].join('  '),
    );
    log(summary.rows[summary.rows.length - 1]!);
    writeSummary(false);
    if (batch === 8 && promptLength === 128 && remainingMs() > RESERVE_MS + 10_000) {
      const solo = await timedGenerate(
        model,
        promptIds(promptLength, 1000, made.vocab),
        newTokens,
        AbortSignal.timeout(30_000),
      );
      const d = firstDifference(solo.tokens, runs[0]!.tokens);
      note(
        `batched vs solo (request 0 of batch 8, prompt 128): ${d < 0 ? `all ${solo.tokens.length} tokens equal` : `first difference at token ${d} of ${solo.tokens.length} (fp16 KV; batch-shaped kernels may round differently)`}`,
      );
    }
  } catch (err) {
    summary.missing++;
    summary.rows.push(`${label}  failed: ${firstLine(err)}`);
    log(summary.rows[summary.rows.length - 1]!);
    writeSummary(false);
  }
}

/**
 * Bytes of weights read per decode step: the matmul and norm weights, fp32 (the Casts folded) or, with --compute
 * fp16, fp16 as stored; nothing of the fp16 embedding table (a row per token).
 */
function residentWeightBytes(made: Made): number {
  return (compute === 'fp16' ? 2 : 4) * (made.parameters - made.vocab * SPEC.hidden);
}
const weightWord = compute === 'fp16' ? 'fp16' : 'fp32';

// ---- main

async function main(): Promise<void> {
  if (makeOnlyDir !== undefined) {
    const made = await make(path.resolve(makeOnlyDir));
    log(
      `made ${makeOnlyDir}: ${(made.parameters / 1e9).toFixed(2)}B parameters, ${gib(made.fileBytes)} in ${made.seconds.toFixed(1)} s`,
    );
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  summary.head.push(
    `tokmeter bench/gpu, ${new Date().toISOString()}${quick ? ', --quick' : ''}${compute === 'fp16' ? ', --compute fp16' : ''}`,
  );
  writeSummary(false);

  let status: CudaStatus;
  try {
    status = await cudaStatus();
  } catch (err) {
    fail(`cudaStatus() threw: ${firstLine(err)} (the addon or ONNX Runtime did not load)`);
    writeSummary(true);
    process.exit(2);
  }
  const device =
    status.devices[0] ??
    (cpuDryRun
      ? { index: 0, name: 'CPU (--cpu-dry-run)', computeCapability: '-', totalMemory: 0, freeMemory: 0 }
      : null);
  summary.head.push(
    `device: ${device ? `${device.name} (sm ${device.computeCapability}, ${gib(device.totalMemory)}, ${gib(device.freeMemory)} free)` : 'none'}; driver ${status.driverVersion}; measured bandwidth ${Number.isFinite(bandwidthGBps) ? `${bandwidthGBps.toFixed(0)} GB/s` : 'unknown'}`,
  );
  log(summary.head[summary.head.length - 1]!);
  if ((!status.ready && !cpuDryRun) || !device) {
    fail(`CUDA is not ready:\n  - ${status.problems.join('\n  - ')}`);
    writeSummary(true);
    process.exit(2);
  }

  try {
    await correctness();
  } catch (err) {
    fail(`correctness run threw: ${firstLine(err)}`);
  }

  let made = madeAlready(modelDir);
  if (made) log(`using ${modelDir} (made in the background in ${made.seconds.toFixed(1)} s)`);
  else {
    log(`making ${modelDir} (~1 min)`);
    made = await make(modelDir);
  }
  summary.head.push(
    compute === 'fp16'
      ? `model: ${(made.parameters / 1e9).toFixed(2)}B parameters, fp16 file computing in fp16 (--compute fp16) ${gib(made.fileBytes)}, read per step as fp16 ${gib(residentWeightBytes(made))} (bound column)`
      : `model: ${(made.parameters / 1e9).toFixed(2)}B parameters, fp16 file ${gib(made.fileBytes)}, read per step as fp32 ${gib(residentWeightBytes(made))} (bound column; weights read as fp16 would double it)`,
  );
  log(summary.head[summary.head.length - 1]!);
  writeSummary(false);

  const t1 = performance.now();
  // Batch 32 at a 2048-token prompt reserves 32 x 2 x 2080 x 32 KiB of KV (sequence caches and the batch's two
  // halves): the default 256 MiB budget would queue all but one or two of them.
  const kvCacheBytes = (cpuDryRun ? 1 : 16) * 2 ** 30;
  const model = await Model.load(modelDir, cudaOptions({ dtype: 'fp16', maxBatch: 32, kvCacheBytes }));
  const after = (await cudaStatus()).devices[0];
  note(
    `loaded on ${cpuDryRun ? 'the CPU' : 'CUDA'} in ${((performance.now() - t1) / 1000).toFixed(1)} s; device memory taken: ${after ? gib(device.freeMemory - after.freeMemory) : 'unknown'} (${weightWord} weights alone: ${gib(residentWeightBytes(made))})`,
  );
  try {
    // Warm-up at both prompt lengths: kernels, cuBLAS heuristics, allocator arenas.
    await timedGenerate(model, promptIds(128, 99, made.vocab), 8, AbortSignal.timeout(60_000));
    await timedGenerate(model, promptIds(2048, 98, made.vocab), 2, AbortSignal.timeout(60_000));
    log('warm-up done');
    for (const cfg of configs()) await runConfig(model, made, cfg);
  } finally {
    await model.dispose();
  }
}

main()
  .catch((err: unknown) => fail(`bench threw: ${(err as Error).stack ?? String(err)}`))
  .finally(() => {
    writeSummary(true);
    // 1: a correctness failure or an error; 3: only configurations failed or were skipped.
    process.exit(summary.failures.length > 0 ? 1 : summary.missing > 0 ? 3 : 0);
  });
