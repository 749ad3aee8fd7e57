/**
 * Every code point against the reference: for each tokenizer and each code point c in U+0000..U+10FFFF (surrogates
 * excepted), c is encoded in the contexts of TEMPLATE (after letters, spaces, punctuation, digits, a newline and an
 * apostrophe; doubled; before letters and digits) by tokmeter and by the reference (Hugging Face `tokenizers` for
 * tokenizer.json files, the `tiktoken` package for tiktoken encodings), and the ids must be equal. This pins the
 * character classes of the split patterns (\p{L}, \p{Lu}, \p{M}, \p{N}, \s, ...) to the reference's Unicode version.
 *
 * The contexts of CHUNK consecutive code points are joined into one string (the reference is called once per
 * string, not once per context): both tokenizers must agree on any string, and a difference is reported with the
 * code points around it.
 *
 *   npx tsx scripts/tokenizer-codepoints.ts [name ...] [--step=N]    (--step=N: every Nth code point, for a quick look)
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../src/tokenizer/index.js';
import { type AffixKind, affixBpeFile } from './tokenizer-affix-fixtures.js';
import { lenmlFile } from './tokenizer-parity.js';
import { type PropertyKind, propertyFile } from './tokenizer-property-fixtures.js';
import { wordpieceJson } from './tokenizer-wordpiece.js';

const require = createRequire(import.meta.url);

export const CODEPOINT_HF = [
  'gpt2',
  'llama3',
  'gpt4o',
  'qwen3',
  'llama2',
  'deepseek_v3',
  'bert-cased',
  'bert-uncased',
  'bpe-clip',
  'bpe-gpt1',
  'bpe-prefix',
  'props-scripts',
  'props-codes',
  'props-binary',
  'props-binary-reversed',
  'props-binary-aliases',
  'props-blocks',
] as const;
export const CODEPOINT_TIKTOKEN = ['cl100k_base', 'o200k_base'] as const;

/** The contexts of one code point (the script's default). */
export function template(c: string): string {
  return `a${c}b ${c}${c}1\n${c} x'${c}.${c}A${c}a\n`;
}

/** Fewer contexts, for the test suite: after a letter, a space and an apostrophe; doubled; before a digit. */
export function quickTemplate(c: string): string {
  return `a${c} ${c}${c}1'${c}\n`;
}

const CHUNK = 2048;
const UNASSIGNED = /[\p{Cn}\p{Co}]/u;

export interface CodepointOptions {
  /** Every `step`-th code point (default 1). */
  step?: number;
  /**
   * Only code points assigned in the runtime's Unicode (private use and unassigned ones, whose classes no Unicode
   * version changes, are sampled: every 61st).
   */
  assignedOnly?: boolean;
  quick?: boolean;
}

/** The test strings: the contexts of the selected code points (surrogates excepted), CHUNK code points per string. */
export function codepointDocs(opts: CodepointOptions = {}): { first: number; text: string }[] {
  const step = opts.step ?? 1;
  const tpl = opts.quick ? quickTemplate : template;
  const docs: { first: number; text: string }[] = [];
  let parts: string[] = [];
  let first = 0;
  for (let cp = 0; cp <= 0x10ffff; cp += step) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    if (opts.assignedOnly && cp % 61 !== 0 && UNASSIGNED.test(c)) continue;
    if (!parts.length) first = cp;
    parts.push(tpl(c));
    if (parts.length === CHUNK) {
      docs.push({ first, text: parts.join('') });
      parts = [];
    }
  }
  if (parts.length) docs.push({ first, text: parts.join('') });
  return docs;
}

/**
 * The code points in blocks of 0x800 (surrogates excepted; planes 4-13, which are unassigned, one sample block
 * each), each as one line of `contexts(c)`: for normalizer probes that check a whole block at once and narrow down
 * to the line only when the block differs.
 */
export function* codepointBlocks(contexts: (c: string) => string): Generator<string[]> {
  for (let first = 0; first <= 0x10ffff; first += 0x800) {
    if (first >= 0x40000 && first < 0xe0000 && first % 0x10000 !== 0) continue;
    const lines: string[] = [];
    for (let cp = first; cp < first + 0x800; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      lines.push(contexts(String.fromCodePoint(cp)));
    }
    if (lines.length > 0) yield lines;
  }
}

/**
 * The BERT-style WordPiece file trained by the reference (scripts/tokenizer-wordpiece-fixture.ts): bert-cased as
 * trained (BertNormalizer without lowercase), bert-uncased with lowercase (and so strip_accents) on. Written to a
 * temporary file; the caller removes it.
 */
export function bertFile(name: string): string {
  const lowercase = name === 'bert-uncased';
  const j = wordpieceJson({
    normalizer: { clean_text: true, handle_chinese_chars: true, lowercase, strip_accents: null },
  });
  const file = path.join(os.tmpdir(), `tokmeter-${name}-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(j));
  return file;
}

export interface CodepointMismatch {
  tokenizer: string;
  /** The first code point of the string where the ids first differ. */
  chunk: string;
  /** The text around the first differing token (as the reference's tokens decode). */
  context: string;
  ours: number[];
  reference: number[];
}

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function hex(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

export interface CodepointResult {
  tokenizer: string;
  strings: number;
  tokens: number;
  mismatches: CodepointMismatch[];
}

export async function codepointParity(name: string, docs: { first: number; text: string }[]): Promise<CodepointResult> {
  const res: CodepointResult = { tokenizer: name, strings: docs.length, tokens: 0, mismatches: [] };
  const report = (first: number, o: ArrayLike<number>, r: ArrayLike<number>, decode: (ids: number[]) => string) => {
    const at = firstDiff(o, r);
    if (at < 0) return;
    const window = (ids: ArrayLike<number>) => Array.from(ids).slice(Math.max(0, at - 3), at + 5);
    res.mismatches.push({
      tokenizer: name,
      chunk: hex(first),
      context: decode(window(r)),
      ours: window(o),
      reference: window(r),
    });
  };
  if ((CODEPOINT_TIKTOKEN as readonly string[]).includes(name)) {
    const { get_encoding } = require('tiktoken') as typeof import('tiktoken');
    const ref = get_encoding(name as 'cl100k_base');
    const ours = await Tokenizer.fromTiktoken(name);
    try {
      for (const d of docs) {
        const o = ours.encode(d.text);
        res.tokens += o.length;
        report(d.first, o, ref.encode(d.text, 'all'), (ids) => ours.decode(ids));
      }
    } finally {
      ref.free();
      ours.dispose();
    }
    return res;
  }
  const { Tokenizer: HfTokenizer } = require('tokenizers') as typeof import('tokenizers');
  const file = name.startsWith('bert-')
    ? bertFile(name)
    : name.startsWith('bpe-')
      ? affixBpeFile(name.slice(4) as AffixKind)
      : name.startsWith('props-')
        ? propertyFile(name.slice(6) as PropertyKind)
        : lenmlFile(name);
  const ref = HfTokenizer.fromFile(file);
  const ours = await Tokenizer.fromFile(file);
  if (file !== lenmlFile(name)) fs.rmSync(file, { force: true });
  try {
    // One batch call per group of strings: the reference encodes a batch on all cores.
    const BATCH = 64;
    for (let k = 0; k < docs.length; k += BATCH) {
      const group = docs.slice(k, k + BATCH);
      const refs = await ref.encodeBatch(
        group.map((d) => d.text),
        { addSpecialTokens: false },
      );
      group.forEach((d, g) => {
        const o = ours.encode(d.text, { addSpecialTokens: false });
        res.tokens += o.length;
        report(d.first, o, refs[g]!.getIds(), (ids) => ours.decode(ids));
      });
    }
  } finally {
    ours.dispose();
  }
  return res;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const stepArg = process.argv.find((a) => a.startsWith('--step='));
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const docs = codepointDocs({ step: stepArg ? Number(stepArg.slice('--step='.length)) : 1 });
  let bad = 0;
  for (const name of [...CODEPOINT_HF, ...CODEPOINT_TIKTOKEN]) {
    if (wanted.length && !wanted.includes(name)) continue;
    const t0 = performance.now();
    const r = await codepointParity(name, docs);
    console.log(
      `${name}: ${r.strings} strings, ${r.tokens} tokens, ${r.mismatches.length} mismatching strings (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    for (const m of r.mismatches.slice(0, 8)) console.log('  ', JSON.stringify(m));
    bad += r.mismatches.length;
  }
  process.exit(bad ? 1 : 0);
}
