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
import { tokenizerAddon } from './native.js';
import { jsonWithout, parseJsonText } from './spec.js';

export const TIKTOKEN_ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'p50k_edit', 'r50k_base', 'gpt2'] as const;
export type TiktokenEncodingName = (typeof TIKTOKEN_ENCODINGS)[number];

export interface TiktokenOptions {
  /** Split pattern (required for a `.tiktoken` rank file). */
  pattern?: string;
  /** Special tokens: content -> id. */
  specialTokens?: Record<string, number>;
}

interface TiktokenParts {
  /** The rank data, parsed natively (native/tokenizer/json_scan.h ParseTiktokenRanks). */
  ranks: Buffer;
  ranksFormat: 'tiktoken' | 'package-json-string';
  pattern: string;
  specialTokens: Record<string, number>;
}

/**
 * The tiktoken package's JSON ({pat_str, special_tokens, bpe_ranks}): native code finds bpe_ranks (a 2 MB string)
 * on a worker thread and later decodes and parses it; only the small rest is JSON-parsed here. A document the
 * scanner refuses goes through JSON.parse, which names the problem.
 */
async function fromPackageJson(bytes: Buffer, field: string): Promise<TiktokenParts> {
  let range: [number, number] | null | undefined;
  try {
    [range] = await tokenizerAddon().scanJsonFields(bytes, [['bpe_ranks']], field);
  } catch {
    range = undefined;
  }
  let json: unknown;
  let ranks: Buffer | undefined;
  if (range && bytes[range[0]] === 0x22 /* " */) {
    json = parseJsonText(jsonWithout(bytes, [{ range, placeholder: '""' }]), field);
    ranks = bytes.subarray(range[0], range[1]);
  } else {
    json = parseJsonText(bytes.toString('utf8'), field);
  }
  if (typeof json !== 'object' || json === null) throw specError(field, 'expected an object');
  const o = json as Record<string, unknown>;
  if (typeof o.pat_str !== 'string') throw specError(`${field}.pat_str`, 'expected a string');
  if (typeof o.bpe_ranks !== 'string') throw specError(`${field}.bpe_ranks`, 'expected a string');
  const st = o.special_tokens ?? {};
  if (typeof st !== 'object' || st === null) throw specError(`${field}.special_tokens`, 'expected an object');
  return {
    ranks: ranks ?? Buffer.from(JSON.stringify(o.bpe_ranks), 'utf8'),
    ranksFormat: 'package-json-string',
    pattern: o.pat_str,
    specialTokens: st as Record<string, number>,
  };
}

async function loadParts(nameOrFile: string, opts: TiktokenOptions): Promise<TiktokenParts> {
  let file = nameOrFile;
  if ((TIKTOKEN_ENCODINGS as readonly string[]).includes(nameOrFile)) {
    const require = createRequire(import.meta.url);
    file = require.resolve(`tiktoken/encoders/${nameOrFile}.json`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw specError(file, `cannot read: ${(err as Error).message}`);
  }
  let first = 0;
  while (first < bytes.length && (bytes[first] === 0x20 || (bytes[first]! >= 0x09 && bytes[first]! <= 0x0d))) first++;
  if (bytes[first] === 0x7b /* { */) {
    const parts = await fromPackageJson(bytes, file);
    return {
      ...parts,
      pattern: opts.pattern ?? parts.pattern,
      specialTokens: opts.specialTokens ?? parts.specialTokens,
    };
  }
  if (opts.pattern === undefined)
    throw specError('pattern', `a .tiktoken rank file (${file}) needs options.pattern (its split regex)`);
  return { ranks: bytes, ranksFormat: 'tiktoken', pattern: opts.pattern, specialTokens: opts.specialTokens ?? {} };
}

export async function specFromTiktoken(nameOrFile: string, opts: TiktokenOptions = {}): Promise<NativeTokenizerSpec> {
  const { ranks, ranksFormat, pattern, specialTokens } = await loadParts(nameOrFile, opts);
  const added = Object.entries(specialTokens).map(([content, id]) => {
    if (!Number.isInteger(id) || id < 0)
      throw specError(`specialTokens[${JSON.stringify(content)}]`, 'expected a non-negative integer id');
    return { id, content, special: true, normalized: false, lstrip: false, rstrip: false, singleWord: false };
  });
  return {
    model: {
      kind: 'BPE',
      ranks,
      ranksFormat,
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
