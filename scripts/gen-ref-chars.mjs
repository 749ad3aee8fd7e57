#!/usr/bin/env node
// Generates native/tokenizer/ref_chars.cc: the character classes and the lowercase mapping exactly as the reference
// (Hugging Face `tokenizers`) has them where it does not follow one Unicode version (native/tokenizer/ref_chars.h).
// BertNormalizer, BertPreTokenizer and Punctuation use the unicode_categories crate (Unicode 8.0; its "other" is
// Cc, Cf and Co, without Cn: an unassigned code point survives clean_text), strip_accents an NFD of Unicode 12, and
// lowercasing is Rust's char::to_lowercase. So they are read from the reference itself, one probe per code point:
//   - other (clean_text drops it): BertNormalizer{clean_text} maps the code point alone to the empty string (less
//     U+FFFD, which clean_text drops by name; plus \t \n \r, which are Cc but become a space);
//   - punctuation: BertPreTokenizer splits "a<c>b" into three pieces;
//   - nonspacing mark: BertNormalizer{strip_accents} maps the code point alone to the empty string;
//   - combining mark: the StripAccents normalizer maps the code point alone to the empty string (its table is the
//     unicode-normalization crate's, all of M, not BertNormalizer's Mn);
//   - NFD kept: the reference's NFD leaves the code point alone, as a starter, where Node's (newer) NFD decomposes it
//     or reorders it (a mark newer than the reference's tables), or it starts a composite newer than the reference;
//   - NFKD kept: the same for NFKD (also compatibility decompositions added after the reference's Unicode version);
//   - lowercase: the Lowercase normalizer's output for the code point alone.
//
//   node scripts/gen-ref-chars.mjs
//
// The generated file is committed, so building needs neither this script nor the reference package.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const hf = require('tokenizers');
const version = require('tokenizers/package.json').version;

const clean = hf.bertNormalizer({ cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false });
const strip = hf.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false });
const nfd = hf.nfdNormalizer();
const nfkd = hf.nfkdNormalizer();
const stripAccents = hf.stripAccentsNormalizer();
const lower = hf.lowercase();
const pre = hf.bertPreTokenizer();

// A code point the reference's normalizer leaves alone as a starter (no decomposition, combining class 0: it is
// newer than its tables) where Node's (newer) one decomposes it or gives it a combining class: alone, before U+0334
// (class 1) and after U+0345 (class 240), so that a class of 1 or more reorders in one of the two.
function kept(ref, c, form) {
  if (ref.normalizeString(c) !== c) return false;
  return [c, `${c}\u0334`, `\u0345${c}`].some((s) => ref.normalizeString(s) !== s.normalize(form));
}
// The first character of each canonical composite the reference does not know (Node's NFC composes its
// decomposition, the reference's leaves it apart): a starter the reference cannot compose with what follows. Every
// such character is itself newer than the reference's tables (a composite made of old characters only would have
// been excluded from composition), so to the reference it is a plain starter, as the kept ones are.
const nfc = hf.nfcNormalizer();
const composesLater = new Set();
for (let cp = 0; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const c = String.fromCodePoint(cp);
  const d = c.normalize('NFD');
  if (d === c || nfd.normalizeString(c) !== c) continue;
  if (nfc.normalizeString(d) !== d.normalize('NFC')) composesLater.add(d.codePointAt(0));
}

const other = [];
const punct = [];
const mark = [];
const nfdKept = [];
const combining = [];
const nfkdKept = [];
const lowerMap = [];
for (let cp = 0; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const c = String.fromCodePoint(cp);
  if ((clean.normalizeString(c) === '' && cp !== 0xfffd) || cp === 0x09 || cp === 0x0a || cp === 0x0d) other.push(cp);
  if (pre.preTokenizeString(`a${c}b`).length === 3) punct.push(cp);
  if (strip.normalizeString(c) === '') mark.push(cp);
  if (kept(nfd, c, 'NFD') || composesLater.has(cp)) nfdKept.push(cp);
  if (stripAccents.normalizeString(c) === '') combining.push(cp);
  if (kept(nfkd, c, 'NFKD') || composesLater.has(cp)) nfkdKept.push(cp);
  const l = [...lower.normalizeString(c)].map((x) => x.codePointAt(0));
  if (l.length === 1 && l[0] !== cp) lowerMap.push([cp, l[0]]);
  else if (l.length !== 1 && cp !== 0x130)
    throw new Error(`U+${cp.toString(16)} lowercases to ${l.length} code points`);
}

function ranges(cps) {
  const out = [];
  for (const cp of cps) {
    const last = out[out.length - 1];
    if (last && last[1] === cp - 1) last[1] = cp;
    else out.push([cp, cp]);
  }
  return out;
}

const hex = (cp) => `0x${cp.toString(16).toUpperCase()}`;
function table(type, name, pairs) {
  const rows = [];
  for (let i = 0; i < pairs.length; i += 6)
    rows.push(
      '    ' +
        pairs
          .slice(i, i + 6)
          .map(([a, b]) => `{${hex(a)}, ${hex(b)}}`)
          .join(', ') +
        ',',
    );
  return `const ${type} ${name}[] = {\n${rows.join('\n')}\n};\nconst size_t ${name}Size = std::size(${name});\n`;
}

const text = `// Generated by scripts/gen-ref-chars.mjs from the reference tokenizer (tokenizers ${version}). Do not edit.
// Character classes (sorted ranges) and the lowercase mapping as the reference has them (ref_chars.h).
// clang-format off
#include "tokenizer/ref_chars.h"

#include <iterator>

namespace tokmeter::tokenizer::unicode::ref_tables {

// Cc, Cf, Co of Unicode 8.0 (clean_text drops them, except \\t \\n \\r).
${table('CodeRange', 'kOther', ranges(other))}
// Pc, Pd, Ps, Pe, Pi, Pf, Po of Unicode 8.0 and the ASCII punctuation (which includes some Sm, Sk and Sc).
${table('CodeRange', 'kPunctuation', ranges(punct))}
// Mn of Unicode 8.0 (strip_accents drops them after NFD).
${table('CodeRange', 'kNonspacingMark', ranges(mark))}
// Decomposed or reordered by a newer NFD, starters without a decomposition to the reference's.
${table('CodeRange', 'kNfdKept', ranges(nfdKept))}
// Decomposed or reordered by a newer NFKD, starters without a decomposition to the reference's.
${table('CodeRange', 'kNfkdKept', ranges(nfkdKept))}
// What StripAccents drops: the combining marks (M) of the reference's unicode-normalization tables.
${table('CodeRange', 'kCombiningMark', ranges(combining))}
// char::to_lowercase, where it is one other code point.
${table('CodeMapping', 'kLower', lowerMap)}
}  // namespace tokmeter::tokenizer::unicode::ref_tables
`;
const out = path.join(root, 'native', 'tokenizer', 'ref_chars.cc');
fs.writeFileSync(out, text);
console.log(
  `${out}: other ${other.length}, punctuation ${punct.length}, nonspacing marks ${mark.length}, NFD kept ${nfdKept.length}, NFKD kept ${nfkdKept.length}, combining marks ${combining.length}, lowercase ${lowerMap.length}`,
);
