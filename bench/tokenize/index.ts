/**
 * Tokenizer benchmark: tokmeter vs the peers, same corpus, same run.
 *
 *   npx tsx bench/tokenize/index.ts [--quick]
 *
 * Reports single-thread encode and count throughput (MB/s, tokens/s) with the ratio to the fastest peer, countBatch
 * on all cores vs one thread, the hard set and 1 MB pathological runs, per-call overhead on 50-byte strings, and
 * load time of a 200k-vocabulary tokenizer. Peers: Hugging Face `tokenizers` (Rust), `tiktoken` (WASM),
 * `gpt-tokenizer`, `ai-tokenizer`, `js-tiktoken` (pure JS), `kitoken` (WASM), each where it supports the encoding.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { hardCases, realDocs } from '../../scripts/tokenizer-corpus.js';
import { lenmlFile, unigramVariant } from '../../scripts/tokenizer-parity.js';
import { TwoCoreCeiling } from './two-core-ceiling.js';

const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');
// --only=load,throughput,categories,batch,batchloop,newtext,pathological,percall runs those sections only (default:
// all).
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const want = (section: string) => !only || only.includes(section);

interface Peer {
  name: string;
  encode: (s: string) => ArrayLike<number>;
  count?: (s: string) => number;
  /** true when the peer returns a Promise (HF tokenizers). */
  encodeAsync?: (s: string) => Promise<ArrayLike<number>>;
  free?: () => void;
}

const named = realDocs(quick ? 300_000 : 1_000_000);
const docs = named.map((d) => d.text);
const corpusBytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);

// Categories of the single-thread tables: prose (package READMEs, Debian copyright files), code (C++/JS/TS
// sources), multilingual (translated messages in ~45 languages), hard (the parity corpus's generated cases: emoji,
// combining marks, runs of spaces/newlines/digits/punctuation, newest-Unicode letters, random mixed scripts; the
// 20 kB single words are left to the pathological section, the special-token document to the parity test, where quadratic peers are timed separately), long (the
// whole corpus as one string).
const categories: { name: string; texts: string[] }[] = [
  { name: 'prose', texts: named.filter((d) => /^(readme|doc)\//.test(d.name)).map((d) => d.text) },
  { name: 'code', texts: named.filter((d) => d.name.startsWith('src/')).map((d) => d.text) },
  { name: 'multilingual', texts: named.filter((d) => d.name.startsWith('locale/')).map((d) => d.text) },
  {
    name: 'hard',
    texts: hardCases()
      .filter((d) => !d.name.startsWith('hard/long-word') && d.name !== 'hard/special-tokens')
      .map((d) => d.text),
  },
  { name: 'long', texts: [docs.join('\n')] },
];

function timeIt(fn: () => number, minMs = 300): { ms: number; tokens: number } {
  let best = Infinity;
  let tokens: number;
  const start = performance.now();
  do {
    const t0 = performance.now();
    tokens = fn();
    best = Math.min(best, performance.now() - t0);
  } while (performance.now() - start < minMs);
  return { ms: best, tokens };
}

async function timeAsync(fn: () => Promise<number>): Promise<{ ms: number; tokens: number }> {
  const t0 = performance.now();
  const tokens = await fn();
  return { ms: performance.now() - t0, tokens };
}

const loadNow = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const rows: string[][] = [];
function row(...cells: (string | number)[]) {
  rows.push(cells.map(String));
}
function printTable(title: string) {
  console.log(`\n### ${title}\n`);
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  rows.forEach((r, k) => {
    console.log('| ' + r.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |');
    if (k === 0) console.log('|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|');
  });
  rows.length = 0;
}

async function peersFor(
  enc: 'o200k_base' | 'cl100k_base' | 'llama3' | 'unigram',
): Promise<{ ours: Tokenizer; peers: Peer[] }> {
  const peers: Peer[] = [];
  // unigram: the reference-trained 8000-piece Unigram file with byte fallback (scripts/tokenizer-parity.ts).
  const hfFile =
    enc === 'o200k_base'
      ? lenmlFile('gpt4o')
      : enc === 'llama3'
        ? lenmlFile('llama3')
        : enc === 'unigram'
          ? unigramVariant('unigram-bytefallback')
          : undefined;
  const ours = hfFile && enc !== 'o200k_base' ? await Tokenizer.fromFile(hfFile) : await Tokenizer.fromTiktoken(enc);
  if (enc === 'unigram') {
    const { Tokenizer: Hf } = require('tokenizers') as typeof import('tokenizers');
    const hf = Hf.fromFile(hfFile!);
    fs.rmSync(hfFile!, { force: true });
    peers.push({
      name: 'tokenizers (HF)',
      encode: () => [],
      encodeAsync: async (s) => (await hf.encode(s, null, { addSpecialTokens: false })).getIds(),
    });
  } else if (hfFile) {
    const { Tokenizer: Hf } = require('tokenizers') as typeof import('tokenizers');
    const hf = Hf.fromFile(hfFile);
    peers.push({
      name: 'tokenizers (HF)',
      encode: () => [],
      encodeAsync: async (s) => (await hf.encode(s, null, { addSpecialTokens: false })).getIds(),
    });
    const { Kitoken } = await import('kitoken/node' as string).catch(() => import('kitoken' as string));
    const kit = Kitoken.from_tokenizers(fs.readFileSync(hfFile));
    peers.push({ name: 'kitoken', encode: (s) => kit.encode(s, true), free: () => kit.free() });
  }
  if (enc === 'o200k_base' || enc === 'cl100k_base') {
    const { get_encoding } = require('tiktoken') as typeof import('tiktoken');
    const tk = get_encoding(enc);
    peers.push({ name: 'tiktoken (WASM)', encode: (s) => tk.encode(s, 'all'), free: () => tk.free() });
    const gpt = await import(`gpt-tokenizer/encoding/${enc}`);
    peers.push({
      name: 'gpt-tokenizer',
      encode: (s) => gpt.encode(s, { allowedSpecial: 'all' }),
      count: (s) => gpt.countTokens(s),
    });
    const ai = await import('ai-tokenizer');
    const aiEnc = await import(`ai-tokenizer/encoding/${enc}`);
    const aiTok = new ai.Tokenizer(aiEnc);
    peers.push({ name: 'ai-tokenizer', encode: (s) => aiTok.encode(s), count: (s) => aiTok.count(s) });
    const { Tiktoken } = await import('js-tiktoken/lite');
    const ranks = (await import(`js-tiktoken/ranks/${enc}`)).default;
    const jt = new Tiktoken(ranks);
    peers.push({ name: 'js-tiktoken', encode: (s) => jt.encode(s, 'all') });
  }
  return { ours, peers };
}

async function throughput() {
  for (const enc of ['o200k_base', 'cl100k_base', 'llama3', 'unigram'] as const) {
    if (!want('throughput') && !want('categories') && enc !== 'o200k_base') continue;
    if (!want('throughput') && !want('categories') && !want('batch') && !want('pathological') && !want('percall'))
      continue;
    const { ours, peers } = await peersFor(enc);
    if (want('throughput')) await singleThread(enc, ours, peers);
    if (want('categories') && enc !== 'unigram') await byCategory(enc, ours, peers);
    if (enc === 'o200k_base' && want('batch')) await batch(ours);
    if (enc === 'o200k_base' && want('pathological')) await pathological(ours, peers);
    if (enc === 'o200k_base' && want('percall')) perCall(ours, peers);
    ours.dispose();
    for (const p of peers) p.free?.();
  }
}

async function singleThread(enc: string, ours: Tokenizer, peers: Peer[]) {
  {
    row('tokenizer', 'encode MB/s', 'encode Mtok/s', 'count MB/s', 'count Mtok/s', 'count vs fastest peer');
    const results: { name: string; enc: number; cnt: number; tokens: number }[] = [];
    const e = timeIt(() => docs.reduce((n, d) => n + ours.encode(d, { addSpecialTokens: false }).length, 0));
    const c = timeIt(() => docs.reduce((n, d) => n + ours.count(d, { addSpecialTokens: false }), 0));
    results.push({ name: 'tokmeter', enc: corpusBytes / e.ms / 1e3, cnt: corpusBytes / c.ms / 1e3, tokens: e.tokens });
    for (const p of peers) {
      let pe: { ms: number; tokens: number };
      if (p.encodeAsync)
        pe = await timeAsync(async () => {
          let n = 0;
          for (const d of docs) n += (await p.encodeAsync!(d)).length;
          return n;
        });
      else pe = timeIt(() => docs.reduce((n, d) => n + p.encode(d).length, 0));
      const pc = p.count ? timeIt(() => docs.reduce((n, d) => n + p.count!(d), 0)) : pe;
      results.push({ name: p.name, enc: corpusBytes / pe.ms / 1e3, cnt: corpusBytes / pc.ms / 1e3, tokens: pe.tokens });
    }
    const fastestPeer = Math.max(...results.slice(1).map((r) => r.cnt));
    for (const r of results) {
      const mtok = (mbps: number) => r.tokens / (corpusBytes / mbps / 1e6) / 1e6;
      row(
        r.name,
        fmt(r.enc),
        fmt(mtok(r.enc)),
        fmt(r.cnt),
        fmt(mtok(r.cnt)),
        r.name === 'tokmeter' ? `${fmt(r.cnt / fastestPeer)}x` : fmt(r.cnt / fastestPeer),
      );
    }
    printTable(
      `${enc}: single thread, ${docs.length} documents, ${fmt(corpusBytes / 1e6)} MB (count falls back to encode for peers without one)`,
    );
  }
}

/** Single-thread encode and count per category; the ratio is to the fastest peer in that category (its count, or
 * its encode when it has no count). */
async function byCategory(enc: string, ours: Tokenizer, peers: Peer[]) {
  row('category', 'MB', 'encode MB/s', 'count MB/s', 'fastest peer', 'peer MB/s', 'encode vs peer', 'count vs peer');
  for (const cat of categories) {
    const bytes = cat.texts.reduce((n, d) => n + Buffer.byteLength(d), 0);
    const mbps = (ms: number) => bytes / ms / 1e3;
    const e = timeIt(() => cat.texts.reduce((n, d) => n + ours.encode(d, { addSpecialTokens: false }).length, 0));
    const c = timeIt(() => cat.texts.reduce((n, d) => n + ours.count(d, { addSpecialTokens: false }), 0));
    let best = { name: '-', enc: 0, cnt: 0 };
    for (const p of peers) {
      let pe: { ms: number };
      if (p.encodeAsync)
        pe = await timeAsync(async () => {
          let n = 0;
          for (const d of cat.texts) n += (await p.encodeAsync!(d)).length;
          return n;
        });
      else pe = timeIt(() => cat.texts.reduce((n, d) => n + p.encode(d).length, 0));
      const pc = p.count ? timeIt(() => cat.texts.reduce((n, d) => n + p.count!(d), 0)) : pe;
      const r = { name: p.name, enc: mbps(pe.ms), cnt: mbps(pc.ms) };
      if (Math.max(r.enc, r.cnt) > Math.max(best.enc, best.cnt)) best = r;
    }
    const peerBest = Math.max(best.enc, best.cnt);
    row(
      cat.name,
      fmt(bytes / 1e6, 3),
      fmt(mbps(e.ms)),
      fmt(mbps(c.ms)),
      best.name,
      fmt(peerBest),
      `${fmt(mbps(e.ms) / peerBest)}x`,
      `${fmt(mbps(c.ms) / peerBest)}x`,
    );
  }
  printTable(
    `${enc}: single thread by category (the peer's best of encode and count; load average ${loadNow()} after)`,
  );
}

async function batch(ours: Tokenizer) {
  const cores = os.availableParallelism();
  const texts = [...docs, ...docs];
  const bytes = 2 * corpusBytes;
  // Best of 3 per setting; `cpu/wall` is the process's CPU time over wall time during the run (2.0 would mean two
  // cores busy the whole time), which shows whether the threads ran in parallel even when other processes compete.
  const run = async (threads: number) => {
    let best = { ms: Infinity, util: 0 };
    for (let i = 0; i < 3; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await ours.countBatch(texts, { threads, addSpecialTokens: false });
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (ms < best.ms) best = { ms, util: (c.user + c.system) / 1000 / ms };
    }
    return best;
  };
  await run(cores); // warm up every thread's caches
  const load0 = os.loadavg()[0]!;
  const one = await run(1);
  const all = await run(cores);
  // MB per CPU-second: equal at 1 and N threads means the threads cost nothing extra (no lock or allocator
  // contention), whatever share of the cores other processes leave us.
  const perCpu = (r: { ms: number; util: number }) => bytes / (r.ms * r.util) / 1e3;
  row('countBatch', 'threads', 'MB/s', 'speed-up', 'cpu/wall', 'MB per cpu-s');
  row('o200k_base', 1, fmt(bytes / one.ms / 1e3), '1.00x', fmt(one.util), fmt(perCpu(one)));
  row('o200k_base', cores, fmt(bytes / all.ms / 1e3), `${fmt(one.ms / all.ms)}x`, fmt(all.util), fmt(perCpu(all)));
  printTable(
    `countBatch, ${texts.length} documents (machine load average ${load0.toFixed(1)} on ${cores} cores before the run)`,
  );
}

/**
 * countBatch on 2 threads against a sequential loop of count() over the same batch (the first 72 documents of the
 * corpus, 0.3 MB or more), for every tokenizer. Alternating, 21 rounds each: the median of the rounds' ratios (and
 * the quartiles), the median wall times as MB/s. Then a small batch
 * (16 documents of up to 640 characters), which countBatch runs on the calling thread: it must not be slower.
 */
/**
 * Text seen for the first time: each tokenizer.json file counts the second half of the corpus after the first half
 * (its word caches hold the first half's words, as in a server that has been running), then the same half again,
 * against the exact peers on the same new text. A benchmark that repeats one batch only measures cache hits; this
 * one measures merging.
 */
async function newText() {
  const half = Math.floor(docs.length / 2);
  const seen = docs.slice(0, half);
  const fresh = docs.slice(half);
  const bytes = fresh.reduce((n, d) => n + Buffer.byteLength(d), 0);
  const { Tokenizer: Hf } = require('tokenizers') as typeof import('tokenizers');
  const { Kitoken } = await import('kitoken/node' as string).catch(() => import('kitoken' as string));
  row('tokenizer.json', 'tokmeter new MB/s', 'again MB/s', 'tokenizers (HF) MB/s', 'kitoken MB/s', 'vs best peer');
  for (const name of ['llama2', 'llama3', 'gpt4o', 'qwen3', 'gpt2', 'deepseek_v3']) {
    const file = lenmlFile(name);
    const ours = await Tokenizer.fromFile(file);
    for (const d of seen) ours.count(d, { addSpecialTokens: false });
    let t0 = performance.now();
    for (const d of fresh) ours.count(d, { addSpecialTokens: false });
    const first = performance.now() - t0;
    t0 = performance.now();
    let tokens = 0;
    for (const d of fresh) tokens += ours.count(d, { addSpecialTokens: false });
    const again = performance.now() - t0;
    ours.dispose();
    const hf = Hf.fromFile(file);
    for (const d of seen) await hf.encode(d, null, { addSpecialTokens: false });
    t0 = performance.now();
    for (const d of fresh) await hf.encode(d, null, { addSpecialTokens: false });
    const hfMs = performance.now() - t0;
    // kitoken is a peer only where it loads the file and counts the same tokens.
    let kitMs = NaN;
    try {
      const kit = Kitoken.from_tokenizers(fs.readFileSync(file));
      for (const d of seen) kit.encode(d, true);
      t0 = performance.now();
      let kitTokens = 0;
      for (const d of fresh) kitTokens += kit.encode(d, true).length;
      if (kitTokens === tokens) kitMs = performance.now() - t0;
      kit.free();
    } catch {
      // not a peer for this file
    }
    const mbps = (ms: number) => bytes / ms / 1e3;
    row(
      name,
      fmt(mbps(first)),
      fmt(mbps(again)),
      fmt(mbps(hfMs)),
      fmt(mbps(kitMs)),
      `${fmt(mbps(first) / Math.max(mbps(hfMs), Number.isNaN(kitMs) ? 0 : mbps(kitMs)))}x`,
    );
  }
  printTable(
    `count of new text: ${fresh.length} documents, ${fmt(bytes / 1e6)} MB, after the other ${seen.length} (single thread; kitoken '-' where it does not load the file or counts other totals; load average ${loadNow()})`,
  );
}

async function batchVsLoop() {
  const texts: string[] = [];
  let bytes = 0;
  for (const d of [...docs, ...docs]) {
    if (texts.length >= 72 && bytes >= 300_000) break;
    texts.push(d);
    bytes += Buffer.byteLength(d);
  }
  const quartiles = (xs: number[]) => {
    const sorted = [...xs].sort((x, y) => x - y);
    const q = (f: number) => sorted[Math.round(f * (sorted.length - 1))]!;
    return { q1: q(0.25), median: q(0.5), q3: q(0.75) };
  };
  const load0 = os.loadavg()[0]!;
  const ceiling = await TwoCoreCeiling.start();
  row('tokenizer', 'loop MB/s', 'countBatch(2) MB/s', 'speed-up', 'quartiles', 'two-core ceiling', 'equal counts');
  const files: [string, () => Promise<Tokenizer>][] = [
    ['o200k_base', () => Tokenizer.fromTiktoken('o200k_base')],
    ['cl100k_base', () => Tokenizer.fromTiktoken('cl100k_base')],
    ...['gpt4o', 'llama3', 'qwen3', 'gpt2', 'llama2', 'deepseek_v3'].map(
      (n) => [n, () => Tokenizer.fromFile(lenmlFile(n))] as [string, () => Promise<Tokenizer>],
    ),
    [
      'unigram',
      async () => {
        const f = unigramVariant('unigram-bytefallback');
        const t = await Tokenizer.fromFile(f);
        fs.rmSync(f, { force: true });
        return t;
      },
    ],
  ];
  // Small batches (below the size where countBatch hands work to threads): 16 short documents, ~10 kB.
  const small: string[] = [];
  for (const d of docs.slice(0, 16)) small.push(d.slice(0, 640));
  const smallBytes = small.reduce((n, d) => n + Buffer.byteLength(d), 0);
  const smallRows: string[][] = [];
  const mixedRows: string[][] = [];
  // `withCeiling`: each round also runs the two-core ceiling (two-core-ceiling.ts) on a job as long as the loop.
  // `between`: run after each round's batch, before the next round's loop.
  const compare = async (
    t: Tokenizer,
    batchTexts: string[],
    rounds: number,
    withCeiling: boolean,
    between?: () => Promise<unknown>,
  ) => {
    const loop = () => batchTexts.map((d) => t.count(d, { addSpecialTokens: false }));
    const want = loop();
    const got = await t.countBatch(batchTexts, { threads: 2, addSpecialTokens: false });
    await t.countBatch(batchTexts, { threads: 2, addSpecialTokens: false });
    let t0 = performance.now();
    loop();
    const iters = ceiling.iterations(performance.now() - t0);
    const a: number[] = [];
    const b: number[] = [];
    const c: number[] = [];
    for (let r = 0; r < rounds; r++) {
      t0 = performance.now();
      loop();
      a.push(performance.now() - t0);
      t0 = performance.now();
      await t.countBatch(batchTexts, { threads: 2, addSpecialTokens: false });
      b.push(performance.now() - t0);
      if (withCeiling) c.push(ceiling.round(iters));
      if (between) await between();
    }
    // Each round's loop and batch run within milliseconds of each other, so the ratio of the pair cancels what this
    // machine's speed does between rounds (a lone busy core runs up to 1.7x faster here than two busy cores do).
    return {
      la: quartiles(a).median,
      lb: quartiles(b).median,
      speedUp: quartiles(a.map((x, i) => x / b[i]!)),
      ceiling: withCeiling ? quartiles(c) : undefined,
      equal: got.every((n, i) => n === want[i]),
    };
  };
  // A table row without the ceiling: MB/s of the loop and the batch, the speed-up and its quartiles.
  const speedRow = (name: string, n: number, r: Awaited<ReturnType<typeof compare>>) => [
    name,
    fmt(n / r.la / 1e3),
    fmt(n / r.lb / 1e3),
    `${fmt(r.speedUp.median)}x`,
    `${fmt(r.speedUp.q1)}-${fmt(r.speedUp.q3)}x`,
    String(r.equal),
  ];
  for (const [name, load] of files) {
    const t = await load();
    const big = await compare(t, texts, 21, true);
    const ceil = big.ceiling!;
    row(
      name,
      fmt(bytes / big.la / 1e3),
      fmt(bytes / big.lb / 1e3),
      `${fmt(big.speedUp.median)}x`,
      `${fmt(big.speedUp.q1)}-${fmt(big.speedUp.q3)}x`,
      `${fmt(ceil.median)}x (${fmt(ceil.q1)}-${fmt(ceil.q3)}x)`,
      String(big.equal),
    );
    // The same batch on one thread between rounds: one pool helper runs alone, then both are woken again (as when
    // another caller's batch asked for one thread). Linux sometimes queued the two helpers on one CPU after this.
    const mixed = await compare(t, texts, 21, false, () =>
      t.countBatch(texts, { threads: 1, addSpecialTokens: false }),
    );
    mixedRows.push(speedRow(name, bytes, mixed));
    smallRows.push(speedRow(name, smallBytes, await compare(t, small, 51, false)));
    t.dispose();
  }
  await ceiling.close();
  printTable(
    `countBatch on 2 threads vs a loop of count(), ${texts.length} documents, ${fmt(bytes / 1e6)} MB (speed-up: median of 21 alternating rounds' loop/batch ratios; MB/s: medians; two-core ceiling: an integer loop as long as the loop of count(), on this thread vs halved on two threads, in the same rounds; load average ${load0.toFixed(1)} before, ${loadNow()} after)`,
  );
  row('tokenizer', 'loop MB/s', 'countBatch(2) MB/s', 'speed-up', 'quartiles', 'equal counts');
  for (const r of mixedRows) row(...r);
  printTable(
    `countBatch on 2 threads after a countBatch on 1 thread, the same ${texts.length} documents (each round: the loop, the 2-thread batch, then a 1-thread batch; median of 21; load average ${loadNow()})`,
  );
  row('tokenizer', 'loop MB/s', 'countBatch(2) MB/s', 'speed-up', 'quartiles', 'equal counts');
  for (const r of smallRows) row(...r);
  printTable(
    `small batches: countBatch on 2 threads vs a loop of count(), ${small.length} documents, ${fmt(smallBytes / 1e3, 1)} kB (runs on the calling thread; median of 51; load average ${loadNow()})`,
  );
}

async function pathological(ours: Tokenizer, peers: Peer[]) {
  const rnd = (() => {
    let s = 1;
    return () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  })();
  const letters = Array.from({ length: 1_000_000 }, () => String.fromCharCode(97 + Math.floor(rnd() * 26))).join('');
  const cases: [string, string][] = [
    ...hardCases()
      .filter((d) => d.text.length > 0)
      .map((d) => [d.name, d.text] as [string, string]),
    ['1 MB of "a"', 'a'.repeat(1_000_000)],
    ['1 MB of random letters', letters],
    ['1 MB of spaces', ' '.repeat(1_000_000)],
    ['1 MB of digits', '7'.repeat(1_000_000)],
  ];
  row('input', 'bytes', 'tokmeter MB/s', 'tokmeter ms');
  let worst = Infinity,
    worstName = '';
  for (const [name, text] of cases) {
    const b = Buffer.byteLength(text);
    const r = timeIt(() => ours.count(text, { addSpecialTokens: false }), 50);
    const mbps = b / r.ms / 1e3;
    if (b >= 1000 && mbps < worst) {
      worst = mbps;
      worstName = name;
    }
    if (b >= 10_000) row(name, b, fmt(mbps), fmt(r.ms, 1));
  }
  row('worst (inputs >= 1 kB)', worstName, fmt(worst), '');
  printTable('o200k_base pathological and hard inputs (target: >= 5 MB/s each)');
  const word = 'a'.repeat(43_000);
  row('peer', '43 kB word without split points, ms');
  row('tokmeter', fmt(timeIt(() => ours.count(word, { addSpecialTokens: false }), 20).ms, 1));
  for (const p of peers) {
    if (p.encodeAsync) {
      row(p.name, fmt((await timeAsync(async () => (await p.encodeAsync!(word)).length)).ms, 1));
      continue;
    }
    if (p.name === 'js-tiktoken') {
      // Measured once at 335 s on this machine (its merge loop is worse than quadratic); not re-run.
      row(p.name, 'skipped (> 300 s)');
      continue;
    }
    const t0 = performance.now();
    p.encode(word);
    row(p.name, fmt(performance.now() - t0, 1));
  }
  printTable("o200k_base: one 43 kB word (the peers' quadratic case)");
}

function perCall(ours: Tokenizer, peers: Peer[]) {
  const s = 'The quick brown fox jumps over the lazy dog again.'; // 50 bytes
  const n = quick ? 20_000 : 100_000;
  row('tokenizer', 'count() ns/call', 'encode() ns/call');
  const c = timeIt(() => {
    let k = 0;
    for (let i = 0; i < n; i++) k += ours.count(s, { addSpecialTokens: false });
    return k;
  }, 200);
  const e = timeIt(() => {
    let k = 0;
    for (let i = 0; i < n; i++) k += ours.encode(s, { addSpecialTokens: false }).length;
    return k;
  }, 200);
  row('tokmeter', fmt((c.ms * 1e6) / n, 0), fmt((e.ms * 1e6) / n, 0));
  for (const p of peers) {
    if (p.encodeAsync) continue;
    const pe = timeIt(() => {
      let k = 0;
      for (let i = 0; i < n; i++) k += p.encode(s).length;
      return k;
    }, 200);
    const pc = p.count
      ? timeIt(() => {
          let k = 0;
          for (let i = 0; i < n; i++) k += p.count!(s);
          return k;
        }, 200)
      : pe;
    row(p.name, fmt((pc.ms * 1e6) / n, 0), fmt((pe.ms * 1e6) / n, 0));
  }
  printTable('per-call cost on a 50-byte string (o200k_base)');
}

async function loadTimes() {
  // Median of 5; `cpu ms` is the process's CPU time (all threads) during the load, less sensitive to other load.
  row('load', 'median ms', 'cpu ms', 'vocabulary');
  for (const [name, fn] of [
    ['fromTiktoken("o200k_base")', () => Tokenizer.fromTiktoken('o200k_base')],
    ['fromTiktoken("cl100k_base")', () => Tokenizer.fromTiktoken('cl100k_base')],
    ['fromFile(gpt4o tokenizer.json, 9.7 MB)', () => Tokenizer.fromFile(lenmlFile('gpt4o'))],
    ['fromFile(llama3 tokenizer.json, 9.1 MB)', () => Tokenizer.fromFile(lenmlFile('llama3'))],
    ['fromFile(qwen3 tokenizer.json, 11 MB)', () => Tokenizer.fromFile(lenmlFile('qwen3'))],
    // Baseline, same run: the whole-document JSON.parse path (what fromFile did before the native scanner).
    [
      'baseline: fromJSON(JSON.parse(gpt4o file))',
      () => Tokenizer.fromJSON(JSON.parse(fs.readFileSync(lenmlFile('gpt4o'), 'utf8'))),
    ],
  ] as [string, () => Promise<Tokenizer>][]) {
    const times: number[] = [];
    const cpu: number[] = [];
    let vocab = 0;
    for (let i = 0; i < 5; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const t = await fn();
      times.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
      vocab = t.vocabSize;
      t.dispose();
    }
    times.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    row(name, fmt(times[2]!, 0), fmt(cpu[2]!, 0), vocab);
  }
  printTable('load time (target: < 150 ms for a 200k vocabulary)');
}

console.log(
  `tokmeter tokenizer bench — ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, node ${process.version}, load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
if (want('load')) await loadTimes();
await throughput();
if (want('batchloop')) await batchVsLoop();
if (want('newtext')) await newText();
