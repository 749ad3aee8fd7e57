/**
 * tiktoken encodings -> NativeTokenizerSpec. Named encodings (cl100k_base, o200k_base, p50k_base, p50k_edit,
 * r50k_base, gpt2) come from the rank files shipped by the `tiktoken` npm package, with their split pattern and
 * special tokens; a file may be a `.tiktoken` rank file ("<base64> <rank>" per line, pattern and special tokens
 * given by the caller) or a tiktoken-package JSON file ({pat_str, special_tokens, bpe_ranks}).
 *
 * Semantics are tiktoken's: bytes are split by the pattern, a piece that is a whole token maps to it directly, and
 * otherwise adjacent parts merge lowest-rank-first (mergesFromRanks). Special tokens are recognised in the text, as
 * `encode(text, allowed_special="all")` does.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { NativeTokenizerSpec } from '../native/tokenizer-contract.js';
import { specError } from './errors.js';

export const TIKTOKEN_ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'p50k_edit', 'r50k_base', 'gpt2'] as const;
export type TiktokenEncodingName = (typeof TIKTOKEN_ENCODINGS)[number];

export interface TiktokenOptions {
  /** Split pattern (required for a `.tiktoken` rank file). */
  pattern?: string;
  /** Special tokens: content -> id. */
  specialTokens?: Record<string, number>;
}

/** Token bytes packed by rank: token r is bytes[offsets[r] .. offsets[r + 1]); present[r] = 0 for gaps. */
interface PackedRanks {
  bytes: Buffer;
  offsets: Uint32Array;
  present: Uint8Array;
}

interface TiktokenParts {
  ranks: PackedRanks;
  pattern: string;
  specialTokens: Record<string, number>;
}

const B64 = new Int16Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  .split('')
  .forEach((c, i) => (B64[c.charCodeAt(0)] = i));

/**
 * One pass over a rank file, decoding base64 straight into one buffer (Buffer.from per token costs ~10x more for
 * 200k tokens). `compressed`: the tiktoken npm package's lines "<prefix> <first rank> <b64> <b64> ...";
 * otherwise the .tiktoken format, "<b64> <rank>" per line. Ranks must increase (they do in every published file).
 */
function parseRanks(text: string, compressed: boolean, field: string): PackedRanks {
  const out = Buffer.allocUnsafe(Math.ceil((text.length * 3) / 4) + 4);
  let offsets = new Uint32Array(1 << 16);
  let count = 0; // ranks filled so far (the next rank expected)
  let pos = 0;
  const gaps: number[] = [];
  const setRank = (rank: number, start: number, line: number) => {
    if (rank < count) throw specError(`${field} line ${line}`, `rank ${rank} is out of order`);
    while (offsets.length < rank + 2) {
      const bigger = new Uint32Array(offsets.length * 2);
      bigger.set(offsets);
      offsets = bigger;
    }
    for (let r = count; r < rank; r++) {
      offsets[r] = start;
      gaps.push(r);
    }
    offsets[rank] = start;
    count = rank + 1;
  };
  // Decodes base64 text[i..j) into out at pos; returns the new pos, or -1 on a bad character.
  const decode = (i: number, j: number): number => {
    let acc = 0,
      bits = 0;
    for (let k = i; k < j; k++) {
      const c = text.charCodeAt(k);
      if (c === 61) break; // '='
      const v = c < 128 ? B64[c]! : -1;
      if (v < 0) return -1;
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[pos++] = (acc >> bits) & 0xff;
      }
    }
    return pos;
  };
  const n = text.length;
  let i = 0,
    line = 0;
  while (i < n) {
    line++;
    let eol = text.indexOf('\n', i);
    if (eol < 0) eol = n;
    if (eol > i) {
      if (compressed) {
        const sp1 = text.indexOf(' ', i);
        const sp2 = sp1 < 0 || sp1 >= eol ? -1 : text.indexOf(' ', sp1 + 1);
        const end2 = sp2 < 0 || sp2 > eol ? eol : sp2;
        const first = sp1 < 0 || sp1 >= eol ? NaN : Number(text.slice(sp1 + 1, end2));
        if (!Number.isInteger(first) || first < 0)
          throw specError(`${field} line ${line}`, 'expected "<prefix> <rank> <base64>..."');
        let rank = first;
        let k = end2 + 1;
        while (k <= eol && end2 < eol) {
          let e = text.indexOf(' ', k);
          if (e < 0 || e > eol) e = eol;
          if (e > k) {
            setRank(rank++, pos, line);
            if (decode(k, e) < 0) throw specError(`${field} line ${line}`, 'invalid base64');
          }
          k = e + 1;
        }
      } else {
        const sp = text.indexOf(' ', i);
        const rank = sp < 0 || sp >= eol ? NaN : Number(text.slice(sp + 1, eol).trim());
        if (!Number.isInteger(rank) || rank < 0)
          throw specError(`${field} line ${line}`, 'expected "<base64 token> <rank>"');
        setRank(rank, pos, line);
        if (decode(i, sp) < 0) throw specError(`${field} line ${line}`, 'invalid base64');
      }
    }
    i = eol + 1;
  }
  offsets[count] = pos;
  const present = new Uint8Array(count).fill(1);
  for (const g of gaps) present[g] = 0;
  return { bytes: out.subarray(0, pos), offsets: offsets.slice(0, count + 1), present };
}

function fromPackageJson(json: unknown, field: string): TiktokenParts {
  if (typeof json !== 'object' || json === null) throw specError(field, 'expected an object');
  const o = json as Record<string, unknown>;
  if (typeof o.pat_str !== 'string') throw specError(`${field}.pat_str`, 'expected a string');
  if (typeof o.bpe_ranks !== 'string') throw specError(`${field}.bpe_ranks`, 'expected a string');
  const st = o.special_tokens ?? {};
  if (typeof st !== 'object' || st === null) throw specError(`${field}.special_tokens`, 'expected an object');
  return {
    ranks: parseRanks(o.bpe_ranks, true, `${field}.bpe_ranks`),
    pattern: o.pat_str,
    specialTokens: st as Record<string, number>,
  };
}

async function loadParts(nameOrFile: string, opts: TiktokenOptions): Promise<TiktokenParts> {
  if ((TIKTOKEN_ENCODINGS as readonly string[]).includes(nameOrFile)) {
    const require = createRequire(import.meta.url);
    const file = require.resolve(`tiktoken/encoders/${nameOrFile}.json`);
    const parts = fromPackageJson(JSON.parse(await readFile(file, 'utf8')), file);
    return {
      ...parts,
      pattern: opts.pattern ?? parts.pattern,
      specialTokens: opts.specialTokens ?? parts.specialTokens,
    };
  }
  const text = await readFile(nameOrFile, 'utf8');
  if (text.trimStart().startsWith('{')) {
    const parts = fromPackageJson(JSON.parse(text), nameOrFile);
    return {
      ...parts,
      pattern: opts.pattern ?? parts.pattern,
      specialTokens: opts.specialTokens ?? parts.specialTokens,
    };
  }
  if (opts.pattern === undefined)
    throw specError('pattern', `a .tiktoken rank file (${nameOrFile}) needs options.pattern (its split regex)`);
  return { ranks: parseRanks(text, false, nameOrFile), pattern: opts.pattern, specialTokens: opts.specialTokens ?? {} };
}

export async function specFromTiktoken(nameOrFile: string, opts: TiktokenOptions = {}): Promise<NativeTokenizerSpec> {
  const { ranks, pattern, specialTokens } = await loadParts(nameOrFile, opts);
  const added = Object.entries(specialTokens).map(([content, id]) => {
    if (!Number.isInteger(id) || id < 0)
      throw specError(`specialTokens[${JSON.stringify(content)}]`, 'expected a non-negative integer id');
    return { id, content, special: true, normalized: false, lstrip: false, rstrip: false, singleWord: false };
  });
  return {
    model: {
      kind: 'BPE',
      vocabBytes: ranks.bytes,
      vocabOffsets: ranks.offsets,
      present: ranks.present,
      vocabIsBytes: true,
      merges: new Uint32Array(0),
      mergesFromRanks: true,
      ignoreMerges: true,
      byteFallback: false,
      fuseUnk: false,
      unkId: null,
    },
    normalizers: [],
    preTokenizers: [{ kind: 'Split', pattern, isRegex: true, invert: false, behavior: 'Isolated' }],
    decoders: [{ kind: 'ByteLevel' }],
    hasDecoder: true,
    addedTokens: added,
    postPrefix: [],
    postSuffix: [],
  };
}
