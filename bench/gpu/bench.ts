/**
 * GPU benchmark and correctness run for device 'cuda' (issue 8). Runs on the GPU machine, bundled by
 * bench/gpu/pack.sh into one .mjs that the shipped Node binary runs (no npm there); see bench/gpu/README.md.
 *
 *   node bench.mjs --out <dir> [--bandwidth-gbps N] [--quick]
 *
 * 1. Correctness (tiny model, fp32): CPU vs CUDA greedy ids on three prompts, and seeded sampling (the engine passes
 *    the CPU sampler's uniforms to the CUDA sampler, so ids agree). Any mismatch fails the run (exit 1) after the
 *    timings are printed.
 * 2. Makes a ~1.1B-parameter Llama (16 × 2048, 32/8 heads × 64, ffn 8192, 32k vocabulary; fp16 weights, KV and
 *    logits) with the model maker, loads it on CUDA.
 * 3. For prompt lengths 128 and 2048 and batches 1, 8 and 32 (B concurrent generate() calls: the scheduler batches
 *    what it can), measures time to first token (median over the batch) and decode tokens/s (aggregate: completion
 *    tokens after the first of every request / the decode window), beside the memory-bandwidth bound:
 *    B × bandwidth / bytes per step, bytes per step = weight bytes + the KV cache read at that context.
 * 4. Batched vs solo: the first request of batch 8 against the same prompt alone (tokens in common, reported).
 * A configuration that fails (out of memory, timeout) is reported and the run goes on. Budget: under 8 minutes.
 */
import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import path from 'node:path';
import { cudaStatus } from '../../src/cuda/index.js';
import { Model, type ModelLoadOptions } from '../../src/model/index.js';
import { makeModel } from '../../src/modelgen/index.js';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outDir = path.resolve(arg('--out') ?? '/tmp/tokmeter-gpu-bench');
const bandwidthGBps = Number(arg('--bandwidth-gbps') ?? process.env.BENCH_BW_GBPS ?? 'NaN');
const quick = args.includes('--quick');
const started = performance.now();
const elapsed = () => ((performance.now() - started) / 1000).toFixed(1);
const log = (line: string) => console.log(`[${elapsed()} s] ${line}`);
const cudaOptions = (extra: Partial<ModelLoadOptions> = {}): ModelLoadOptions => ({
  device: 'cuda',
  deviceId: 0,
  ...extra,
});

// Deterministic prompt ids (xorshift), avoiding the first 3 (special) ids.
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

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
};

interface Timed {
  ttftMs: number;
  decodeTokens: number;
  decodeMs: number;
  tokens: number[];
  startMs: number;
  firstMs: number;
  endMs: number;
}

async function timedGenerate(model: Model, ids: number[], maxNewTokens: number): Promise<Timed> {
  const t0 = performance.now();
  let first = NaN;
  const tokens: number[] = [];
  const run = model.generate({ tokens: ids }, { maxNewTokens, temperature: 0, eosTokenIds: [] });
  for await (const chunk of run) {
    if (Number.isNaN(first) && chunk.tokens.length > 0) first = performance.now();
    tokens.push(...chunk.tokens);
  }
  await run.result;
  const end = performance.now();
  return {
    ttftMs: first - t0,
    decodeTokens: Math.max(0, tokens.length - 1),
    decodeMs: end - first,
    tokens,
    startMs: t0,
    firstMs: first,
    endMs: end,
  };
}

async function correctness(root: string): Promise<string[]> {
  const failures: string[] = [];
  const dir = path.join(root, 'tiny');
  await makeModel({ size: 'tiny', out: dir, force: true });
  const cpu = await Model.load(dir, { threads: 4 });
  const gpu = await Model.load(dir, cudaOptions());
  try {
    for (const p of ['Hello world', 'The quick brown fox jumps over the lazy dog.', 'Numbers: 1, 2, 3 and 你好']) {
      const a = Array.from((await cpu.generate(p, { maxNewTokens: 32, temperature: 0 }).result).tokens);
      const b = Array.from((await gpu.generate(p, { maxNewTokens: 32, temperature: 0 }).result).tokens);
      const same = a.length === b.length && a.every((t, i) => t === b[i]);
      log(`parity greedy  ${JSON.stringify(p).padEnd(48)} ${same ? 'same ids' : `DIFFER cpu ${a} cuda ${b}`}`);
      if (!same) failures.push(`greedy parity on ${JSON.stringify(p)}`);
      const o = { maxNewTokens: 32, temperature: 0.8, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 7 };
      const sa = Array.from((await cpu.generate(p, o).result).tokens);
      const sb = Array.from((await gpu.generate(p, o).result).tokens);
      const agree = sa.findIndex((t, i) => t !== sb[i]);
      log(
        `parity seeded  ${JSON.stringify(p).padEnd(48)} ${agree < 0 && sa.length === sb.length ? 'same ids' : `differ from token ${agree}`}`,
      );
      if (!(agree < 0 && sa.length === sb.length)) failures.push(`seeded parity on ${JSON.stringify(p)}`);
    }
  } finally {
    await cpu.dispose();
    await gpu.dispose();
  }
  return failures;
}

async function main(): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  const status = await cudaStatus();
  const device = status.devices[0];
  log(
    `device: ${device ? `${device.name} (sm ${device.computeCapability}, ${(device.totalMemory / 2 ** 30).toFixed(1)} GiB)` : 'none'}; driver ${status.driverVersion}`,
  );
  if (!status.ready) {
    log(`CUDA is not ready:\n  - ${status.problems.join('\n  - ')}`);
    process.exit(2);
  }

  const failures = await correctness(outDir);

  // The ~1B benchmark model.
  const spec = { layers: 16, hidden: 2048, heads: 32, kvHeads: 8, intermediate: 8192, context: 4096 };
  const dir = path.join(outDir, 'bench-1b');
  const t0 = performance.now();
  const made = await makeModel({
    out: dir,
    force: true,
    tokenizer: 'llama2',
    kvDtype: 'float16',
    dtypes: ['fp16'],
    ...spec,
  });
  const weightBytes = made.files.filter((f) => f.path.includes('model_fp16')).reduce((s, f) => s + f.bytes, 0);
  log(
    `made ${dir}: ${(made.parameters / 1e9).toFixed(2)}B parameters, ${(weightBytes / 2 ** 30).toFixed(2)} GiB fp16 in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const t1 = performance.now();
  // Batch 32 at a 2048-token prompt reserves 32 x 2 x 2080 x 32 KiB of KV (sequence caches and the batch's two
  // halves): the default 256 MiB budget would queue all but one or two of them.
  const model = await Model.load(dir, cudaOptions({ dtype: 'fp16', maxBatch: 32, kvCacheBytes: 16 * 2 ** 30 }));
  log(`loaded on CUDA in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  const vocab = made.config.vocab_size;
  const headDim = spec.hidden / spec.heads;
  const kvBytesPerToken = spec.layers * 2 * spec.kvHeads * headDim * 2; // fp16 K and V

  const rows: string[] = [];
  const header =
    'prompt  batch  new   TTFT median ms  decode tok/s (aggregate)  per-request tok/s  bound tok/s  % of bound';
  try {
    // Warm-up: kernels, allocator arenas.
    await timedGenerate(model, promptIds(128, 99, vocab), 8);
    for (const promptLength of [128, 2048]) {
      for (const batch of quick ? [1, 8] : [1, 8, 32]) {
        const newTokens = promptLength === 128 ? 64 : 32;
        const label = `${String(promptLength).padStart(6)}  ${String(batch).padStart(5)}  ${String(newTokens).padStart(3)}`;
        try {
          const runs = await Promise.all(
            Array.from({ length: batch }, (_, i) =>
              timedGenerate(model, promptIds(promptLength, 1000 + i, vocab), newTokens),
            ),
          );
          const ttft = median(runs.map((r) => r.ttftMs));
          const windowStart = Math.min(...runs.map((r) => r.firstMs));
          const windowEnd = Math.max(...runs.map((r) => r.endMs));
          const decodeTokens = runs.reduce((s, r) => s + r.decodeTokens, 0);
          const aggregate = (decodeTokens / (windowEnd - windowStart)) * 1000;
          const perRequest = median(runs.map((r) => (r.decodeTokens / r.decodeMs) * 1000));
          const context = promptLength + newTokens / 2;
          const bytesPerStep = weightBytes + batch * context * kvBytesPerToken;
          const bound = Number.isFinite(bandwidthGBps) ? (batch * bandwidthGBps * 1e9) / bytesPerStep : NaN;
          rows.push(
            `${label}  ${ttft.toFixed(1).padStart(14)}  ${aggregate.toFixed(1).padStart(24)}  ${perRequest.toFixed(1).padStart(17)}  ${bound.toFixed(0).padStart(11)}  ${((aggregate / bound) * 100).toFixed(0).padStart(9)}%`,
          );
          log(rows[rows.length - 1]!);
          if (batch === 8 && promptLength === 128) {
            const solo = await timedGenerate(model, promptIds(promptLength, 1000, vocab), newTokens);
            const firstDiff = solo.tokens.findIndex((t, i) => t !== runs[0]!.tokens[i]);
            log(
              `batched vs solo (request 0 of batch 8): ${firstDiff < 0 ? `all ${solo.tokens.length} tokens equal` : `first difference at token ${firstDiff} (fp16 kernels may differ by batch shape)`}`,
            );
          }
        } catch (err) {
          rows.push(`${label}  failed: ${(err as Error).message.split('\n')[0]}`);
          log(rows[rows.length - 1]!);
        }
      }
    }
  } finally {
    await model.dispose();
  }
  const summary = [
    `device: ${device!.name}, driver ${status.driverVersion}; model: ${(made.parameters / 1e9).toFixed(2)}B fp16 (${(weightBytes / 2 ** 30).toFixed(2)} GiB); measured bandwidth ${Number.isFinite(bandwidthGBps) ? `${bandwidthGBps.toFixed(0)} GB/s` : 'unknown'}`,
    header,
    ...rows,
    `correctness: ${failures.length === 0 ? 'CPU and CUDA ids equal' : `FAILED: ${failures.join('; ')}`}`,
    `total ${elapsed()} s`,
  ].join('\n');
  console.log(`\n${summary}`);
  fs.writeFileSync(path.join(outDir, 'summary.txt'), `${summary}\n`);
  process.exit(failures.length === 0 ? 0 : 1);
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
