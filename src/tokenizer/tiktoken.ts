/**
 * tiktoken encodings -> the native tokenizer's tiktoken source. Named encodings (cl100k_base, o200k_base, p50k_base,
 * p50k_edit, r50k_base, gpt2) are the rank files shipped by the `tiktoken` npm package (JSON with their split pattern
 * and special tokens); a file may be a `.tiktoken` rank file ("<base64> <rank>" per line, pattern and special tokens
 * given by the caller) or a tiktoken-package JSON file ({pat_str, special_tokens, bpe_ranks}). Native code reads the
 * file and builds the tokenizer (native/tokenizer/tokenizer.h FromTiktoken).
 *
 * Semantics are tiktoken's: bytes are split by the pattern, a piece that is a whole token maps to it directly, and
 * otherwise adjacent parts merge lowest-rank-first. Special tokens are recognised in the text, as
 * `encode(text, allowed_special="all")` does.
 */
import { createRequire } from 'node:module';
import type { NativeTokenizerSource } from '../native/tokenizer-contract.js';
import { specError } from './errors.js';

export const TIKTOKEN_ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'p50k_edit', 'r50k_base', 'gpt2'] as const;
export type TiktokenEncodingName = (typeof TIKTOKEN_ENCODINGS)[number];

export interface TiktokenOptions {
  /** Split pattern (required for a `.tiktoken` rank file). */
  pattern?: string;
  /** Special tokens: content -> id. */
  specialTokens?: Record<string, number>;
}

/** The native source for an encoding name or rank file, with the caller's options checked. */
export function tiktokenSource(nameOrFile: string, opts: TiktokenOptions = {}): NativeTokenizerSource {
  let file = nameOrFile;
  if ((TIKTOKEN_ENCODINGS as readonly string[]).includes(nameOrFile)) {
    const require = createRequire(import.meta.url);
    file = require.resolve(`tiktoken/encoders/${nameOrFile}.json`);
  }
  if (opts.pattern !== undefined && typeof opts.pattern !== 'string')
    throw specError('pattern', 'expected a string (the split regex)');
  let specialTokens: [string, number][] | undefined;
  if (opts.specialTokens !== undefined) {
    if (typeof opts.specialTokens !== 'object' || opts.specialTokens === null)
      throw specError('specialTokens', 'expected an object of content -> id');
    specialTokens = Object.entries(opts.specialTokens);
    for (const [content, id] of specialTokens)
      if (!Number.isInteger(id) || id < 0 || id > 0xfffffff0)
        throw specError(`specialTokens[${JSON.stringify(content)}]`, 'expected a non-negative integer id');
  }
  return {
    format: 'tiktoken',
    file,
    ...(opts.pattern !== undefined ? { pattern: opts.pattern } : {}),
    ...(specialTokens ? { specialTokens } : {}),
  };
}
