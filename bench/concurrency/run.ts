/**
 * bench/concurrency — one model serving many requests, and the prompt-prefix cache, on the benchmark model.
 *
 *   npx tsx bench/concurrency/run.ts                 # makes .models/bench (the model maker's --size bench) if missing
 *   npx tsx bench/concurrency/run.ts --model DIR --threads 2 --max-new 32 --levels 1,4,8,16 --prefix 1000 --rounds 3
 *
 * 1. Throughput: at each concurrency level N, N greedy requests (distinct 16-token prompts, exactly --max-new tokens
 *    each) are started together on one Model; aggregate decode tokens/s = all sampled tokens / wall time. Baseline,
 *    same run: the same N requests one after another. Time to first token (mean, p-max) at each level.
 *    The engine has no continuous batching yet (native/engine/scheduler.h runs generations in arrival order), so
 *    the concurrent figure is expected to equal the sequential one: this harness is the yardstick for batching.
 * 2. Prefix cache: time to first token of a prompt whose --prefix-token prefix is cached (a model loaded with
 *    prefixCache: true that has seen the prefix) vs uncached (prefixCache: false), the same prompts, --rounds rounds
 *    each with a new 16-token suffix, alternating; usage.cachedTokens is checked to equal the prefix length.
 * Figures are wall-clock on a shared machine: compare numbers from the same run only.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Model, type Generation } from '../../src/model/index.js';
import { makeModel } from '../../src/modelgen/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '.models/bench' },
    threads: { type: 'string', default: '2' },
    'max-new': { type: 'string', default: '32' },
    levels: { type: 'string', default: '1,4,8,16' },
    prefix: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' }, // 'throughput' or 'prefix'
  },
});
const dir = path.resolve(values.model!);
const threads = Number(values.threads);
const maxNew = Number(values['max-new']);
const levels = values.levels!.split(',').map(Number);
const prefixLength = Number(values.prefix);
const rounds = Number(values.rounds);

if (!existsSync(path.join(dir, 'config.json'))) {
  console.error(`making the bench model in ${dir} ...`);
  await makeModel({ size: 'bench', out: dir, log: (l) => console.error(l) });
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
  console.log('level | concurrent tok/s | sequential tok/s | ratio | TTFT mean ms (concurrent) | TTFT max ms');
  await timed(plain.generate({ tokens: ids(999, 16) }, greedy), performance.now()); // warm-up
  let seed = 0;
  for (const n of levels) {
    const prompts = Array.from({ length: n }, () => ids(++seed, 16));
    const t0 = performance.now();
    const together = await Promise.all(prompts.map((p) => timed(plain.generate({ tokens: p }, greedy), t0)));
    const concurrentMs = performance.now() - t0;
    const t1 = performance.now();
    for (const p of prompts) await timed(plain.generate({ tokens: p }, greedy), performance.now());
    const sequentialMs = performance.now() - t1;
    const tokens = together.reduce((s, r) => s + r.tokens, 0);
    const ttfts = together.map((r) => r.ttftMs);
    const conc = (tokens / concurrentMs) * 1000;
    const seq = (tokens / sequentialMs) * 1000;
    console.log(
      `${String(n).padStart(5)} | ${fmt(conc).padStart(16)} | ${fmt(seq).padStart(16)} | ${fmt(conc / seq, 2).padStart(5)} | ` +
        `${fmt(ttfts.reduce((a, b) => a + b, 0) / n).padStart(25)} | ${fmt(Math.max(...ttfts))}`,
    );
  }
}

if (values.only === undefined || values.only === 'prefix') {
  const cached = await Model.load(dir, { threads, prefixCache: true });
  const prefix = ids(424242, prefixLength);
  console.log(
    `\nprefix cache: ${prefixLength}-token cached prefix + 16-token suffix, time to first token (1 new token)`,
  );
  const one = { maxNewTokens: 1, temperature: 0, eosTokenIds: [] as number[] };
  await timed(cached.generate({ tokens: [...prefix, ...ids(1, 16)] }, one), performance.now()); // stores the prefix
  const cold: number[] = [];
  const warm: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const prompt = [...prefix, ...ids(1000 + r, 16)];
    const a = await timed(plain.generate({ tokens: prompt }, one), performance.now());
    const b = await timed(cached.generate({ tokens: prompt }, one), performance.now());
    if (b.cachedTokens !== prefixLength)
      throw new Error(`expected ${prefixLength} cached tokens, got ${b.cachedTokens}`);
    cold.push(a.ttftMs);
    warm.push(b.ttftMs);
  }
  const best = (xs: number[]): number => Math.min(...xs);
  console.log(`uncached TTFT ms: ${cold.map((x) => fmt(x)).join(' / ')} (best ${fmt(best(cold))})`);
  console.log(`cached   TTFT ms: ${warm.map((x) => fmt(x)).join(' / ')} (best ${fmt(best(warm))})`);
  console.log(`speed-up (best vs best): ${fmt(best(cold) / best(warm), 1)}x; stats: ${JSON.stringify(cached.stats())}`);
  await cached.dispose();
}
await plain.dispose();
