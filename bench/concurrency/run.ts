/**
 * bench/concurrency — one model serving many requests, and the prompt-prefix cache, on the benchmark model.
 *
 *   npx tsx bench/concurrency/run.ts                 # makes .models/bench (the model maker's --size bench) if missing
 *   npx tsx bench/concurrency/run.ts --model DIR --threads 2 --max-new 32 --levels 1,4,8,16 --prefix 1000 --rounds 3
 *   npx tsx bench/concurrency/run.ts --only throughput --skip-transformers   # tokmeter only
 *   npx tsx bench/concurrency/run.ts --only prefix --mha --prefix 902 --tail 2 --rounds 5   # full multi-head KV
 *
 * 1. Throughput: at each concurrency level N, N greedy requests (distinct 16-token prompts, exactly --max-new tokens
 *    each) are started together on one Model (continuous batching, native/engine/scheduler.h; maxBatch 16);
 *    aggregate tokens/s = all sampled tokens / wall time. Baselines, same run: the same N requests one after another
 *    on the same Model, and transformers.js handling the same N requests concurrently (Promise.all over generate()
 *    on one loaded model, in a child process: bench/concurrency/transformers-child.ts). Time to first token (mean,
 *    max) at each level. The ratio column is concurrent / sequential; the target compares concurrency 8
 *    with concurrency 1 (both concurrent columns).
 * 2. Prefix cache: time to first token of a prompt whose --prefix-token prefix is cached (a model loaded with
 *    prefixCache: true that has seen the prefix) vs uncached (prefixCache: false), the same prompts, --rounds rounds
 *    each with a new --tail-token suffix (16), alternating; usage.cachedTokens is checked to equal the prefix length.
 *    Also, same rounds: one decode step at that context (the target is a hit within a few decode steps), and where
 *    the cached request's time went (timings(): sequence allocation, prefix load, prefill of the tail, prefix store,
 *    with the page faults each took), medians over the rounds.
 * Figures are wall-clock on a shared machine: compare numbers from the same run only.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Model, type Generation } from '../../src/model/index.js';
import { makeModel } from '../../src/modelgen/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string', default: '2' },
    'max-new': { type: 'string', default: '32' },
    levels: { type: 'string', default: '1,4,8,16' },
    prefix: { type: 'string', default: '1000' },
    tail: { type: 'string', default: '16' },
    mha: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' }, // 'throughput' or 'prefix'
    'skip-transformers': { type: 'boolean', default: false },
  },
});
// --mha: a GPT-2-shaped model with full multi-head KV (GPT-2's tokenizer, 12 layers, 12 KV heads x 64, MLP 3072,
// context 1024: 72 KiB of fp32 KV per token, 3x the GQA bench model's 24 KiB), where a prefix-cache hit moves 3x
// the bytes.
const dir = path.resolve(values.model ?? (values.mha ? '.models/bench-mha' : '.models/bench'));
const threads = Number(values.threads);
const maxNew = Number(values['max-new']);
const levels = values.levels!.split(',').map(Number);
const prefixLength = Number(values.prefix);
const rounds = Number(values.rounds);

if (!existsSync(path.join(dir, 'config.json'))) {
  console.error(`making the bench model in ${dir} ...`);
  const mha = { tokenizer: 'gpt2', kvHeads: 12, intermediate: 3072, context: 1024 } as const;
  await makeModel({ size: 'bench', out: dir, ...(values.mha ? mha : {}), log: (l) => console.error(l) });
}

const plain = await Model.load(dir, { threads });
const vocab = plain.tokenizer.vocabSize;
/** Deterministic token ids in [100, vocab): `seed` picks a different sequence (distinct prompts share nothing). */
function ids(seed: number, length: number): number[] {
  return Array.from({ length }, (_, i) => 100 + ((seed * 7919 + i * 104729) % (vocab - 100)));
}

interface Timed {
  ttftMs: number;
  totalMs: number;
  tokens: number;
  cachedTokens: number;
}
async function timed(run: Generation, start: number): Promise<Timed> {
  let ttft = -1;
  let tokens = 0;
  for await (const chunk of run) {
    if (ttft < 0 && chunk.tokens.length > 0) ttft = performance.now() - start;
    tokens += chunk.tokens.length;
  }
  const r = await run.result;
  return { ttftMs: ttft, totalMs: performance.now() - start, tokens, cachedTokens: r.usage.cachedTokens };
}
const greedy = { maxNewTokens: maxNew, temperature: 0, eosTokenIds: [] as number[] };
const fmt = (x: number, d = 1): string => x.toFixed(d);

if (values.only === undefined || values.only === 'throughput') {
  console.log(`\nthroughput: ${maxNew} new tokens per request, 16-token prompts, threads ${threads}`);
  console.log(
    'level | concurrent tok/s | sequential tok/s | ratio | TTFT mean ms (concurrent) | TTFT max ms | mean batch',
  );
  await timed(plain.generate({ tokens: ids(999, 16) }, greedy), performance.now()); // warm-up
  let seed = 0;
  const jobLevels: { n: number; prompts: number[][] }[] = [];
  const concurrent: number[] = [];
  for (const n of levels) {
    const prompts = Array.from({ length: n }, () => ids(++seed, 16));
    jobLevels.push({ n, prompts });
    const before = plain.stats();
    const t0 = performance.now();
    const together = await Promise.all(prompts.map((p) => timed(plain.generate({ tokens: p }, greedy), t0)));
    const concurrentMs = performance.now() - t0;
    const after = plain.stats();
    const t1 = performance.now();
    for (const p of prompts) await timed(plain.generate({ tokens: p }, greedy), performance.now());
    const sequentialMs = performance.now() - t1;
    const tokens = together.reduce((s, r) => s + r.tokens, 0);
    const ttfts = together.map((r) => r.ttftMs);
    const conc = (tokens / concurrentMs) * 1000;
    const seq = (tokens / sequentialMs) * 1000;
    concurrent.push(conc);
    const batch = (after.batchRows - before.batchRows) / Math.max(1, after.batchSteps - before.batchSteps);
    console.log(
      `${String(n).padStart(5)} | ${fmt(conc).padStart(16)} | ${fmt(seq).padStart(16)} | ${fmt(conc / seq, 2).padStart(5)} | ` +
        `${fmt(ttfts.reduce((a, b) => a + b, 0) / n).padStart(25)} | ${fmt(Math.max(...ttfts)).padStart(11)} | ${fmt(batch)}`,
    );
  }
  const at = (n: number): number | undefined => concurrent[levels.indexOf(n)];
  if (at(1) !== undefined && at(8) !== undefined) {
    console.log(`concurrency 8 vs concurrency 1 (aggregate tok/s): ${fmt(at(8)! / at(1)!, 2)}x (target >= 2.5x)`);
  }
  if (!values['skip-transformers']) {
    const work = mkdtempSync(path.join(os.tmpdir(), 'tokmeter-conc-'));
    try {
      const jobFile = path.join(work, 'job.json');
      writeFileSync(jobFile, JSON.stringify({ dir, threads, maxNew, levels: jobLevels }));
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', path.join(import.meta.dirname, 'transformers-child.ts'), jobFile],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 },
      );
      const tj = JSON.parse(out.trim().split('\n').pop()!) as {
        loadMs: number;
        levels: { n: number; tokens: number; wallMs: number; ttfts: number[] }[];
      };
      console.log('\ntransformers.js, the same requests started together (Promise.all on one model):');
      console.log('level | concurrent tok/s | tokmeter / transformers.js | TTFT mean ms | TTFT max ms');
      for (const [i, l] of tj.levels.entries()) {
        const tok = (l.tokens / l.wallMs) * 1000;
        console.log(
          `${String(l.n).padStart(5)} | ${fmt(tok).padStart(16)} | ${fmt(concurrent[i]! / tok, 2).padStart(26)} | ` +
            `${fmt(l.ttfts.reduce((a, b) => a + b, 0) / l.n).padStart(12)} | ${fmt(Math.max(...l.ttfts))}`,
        );
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
}

if (values.only === undefined || values.only === 'prefix') {
  const cached = await Model.load(dir, { threads, prefixCache: true });
  const prefix = ids(424242, prefixLength);
  const tail = Number(values.tail);
  console.log(
    `\nprefix cache: ${prefixLength}-token cached prefix + ${tail}-token tail, time to first token (1 new token);` +
      ` KV ${(cached.info.kvBytesPerToken / 1024).toFixed(0)} KiB per token`,
  );
  const one = { maxNewTokens: 1, temperature: 0, eosTokenIds: [] as number[] };
  await timed(cached.generate({ tokens: [...prefix, ...ids(1, tail)] }, one), performance.now()); // stores the prefix
  const phases = ['sequenceAlloc', 'prefixLoad', 'prefill', 'prefixStore'] as const;
  type Phases = Record<(typeof phases)[number], { ms: number; pageFaults: number }>;
  const phaseOf = (m: Model): Phases | undefined => {
    const t = m.timings() as Partial<Phases>; // an addon without phase timings (an older build): no breakdown
    return phases.every((p) => t[p] !== undefined) ? (t as Phases) : undefined;
  };
  const cold: number[] = [];
  const warm: number[] = [];
  const step: number[] = [];
  const spent = Object.fromEntries(phases.map((p) => [p, { ms: [] as number[], faults: [] as number[] }]));
  for (let r = 0; r < rounds; r++) {
    const prompt = [...prefix, ...ids(1000 + r, tail)];
    const a = await timed(plain.generate({ tokens: prompt }, one), performance.now());
    const before = phaseOf(cached);
    const b = await timed(cached.generate({ tokens: prompt }, one), performance.now());
    const after = phaseOf(cached);
    if (b.cachedTokens !== prefixLength)
      throw new Error(`expected ${prefixLength} cached tokens, got ${b.cachedTokens}`);
    // One decode step at this context, same model, same moment: 9 tokens after the prompt, 8 steps.
    const d = await timed(plain.generate({ tokens: prompt }, { ...one, maxNewTokens: 9 }), performance.now());
    cold.push(a.ttftMs);
    warm.push(b.ttftMs);
    step.push((d.totalMs - d.ttftMs) / 8);
    if (before && after) {
      for (const p of phases) {
        spent[p]!.ms.push(after[p].ms - before[p].ms);
        spent[p]!.faults.push(after[p].pageFaults - before[p].pageFaults);
      }
    }
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const list = (xs: number[]): string => xs.map((x) => fmt(x)).join(' / ');
  console.log(`uncached TTFT ms: ${list(cold)} (median ${fmt(median(cold))})`);
  console.log(`cached   TTFT ms: ${list(warm)} (median ${fmt(median(warm))})`);
  console.log(`decode step ms:   ${list(step)} (median ${fmt(median(step))})`);
  console.log(
    `speed-up (median vs median): ${fmt(median(cold) / median(warm), 1)}x; ` +
      `cached TTFT = ${fmt(median(warm) / median(step), 1)} decode steps`,
  );
  if (spent.prefill!.ms.length > 0) {
    console.log(
      'cached request, median per phase: ' +
        phases.map((p) => `${p} ${fmt(median(spent[p]!.ms))} ms (${median(spent[p]!.faults)} faults)`).join(', '),
    );
  }
  const s = cached.stats();
  // An addon without the KV arena (an older build, for a before/after run) reports none.
  if (s.kvArenaBytes !== undefined) {
    console.log(
      `KV arena: ${fmt(s.kvArenaBytes / 2 ** 20)} MiB of kvCacheBytes ${fmt(s.kvCacheBytes / 2 ** 20)} MiB, ` +
        `peak used ${fmt(s.kvArenaPeakBytes / 2 ** 20)} MiB, spills ${s.kvArenaSpills}`,
    );
  }
  await cached.dispose();
}
await plain.dispose();
