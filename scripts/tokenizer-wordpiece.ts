/**
 * WordPiece / BERT parity with the reference (Hugging Face `tokenizers`): the trained BERT-style file of
 * scripts/tokenizer-wordpiece-fixture.ts under every setting the reference accepts for BertNormalizer
 * (clean_text, handle_chinese_chars, lowercase, strip_accents true/false/null), the WordPiece model
 * (max_input_chars_per_word, continuing_subword_prefix, unk_token), the WordPiece decoder (prefix, cleanup) and both
 * BERT post-processors (TemplateProcessing, BertProcessing), on a corpus of the cases that separate a BERT tokenizer
 * from the others (CJK runs, control and format characters, words longer than max_input_chars_per_word, combining
 * marks, case and accents, Unicode punctuation). Ids (with and without special tokens), count and decode must equal
 * the reference's.
 *
 *   npx tsx scripts/tokenizer-wordpiece.ts            every variant on the BERT corpus plus the parity corpus
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../src/tokenizer/index.js';
import { buildCorpus, type Doc } from './tokenizer-corpus.js';
import { firstDiff, type Mismatch } from './tokenizer-parity.js';
import { WORDPIECE_FIXTURE } from './tokenizer-wordpiece-fixture.js';

const require = createRequire(import.meta.url);

export interface BertNormalizerOptions {
  clean_text: boolean;
  handle_chinese_chars: boolean;
  /** null: follow lowercase (the reference's default). */
  strip_accents: boolean | null;
  lowercase: boolean;
}

export interface WordPieceVariant {
  normalizer?: BertNormalizerOptions;
  /** model.max_input_chars_per_word (default 100). */
  maxChars?: number;
  /** model.continuing_subword_prefix and decoder.prefix: the vocabulary's "##" is rewritten to it. */
  prefix?: string;
  /** Rename the unk token (in the vocabulary and the added tokens). */
  unk?: string;
  decoderCleanup?: boolean;
  postProcessor?: 'template' | 'bert' | 'none';
}

/** The 24 settings of BertNormalizer: 2 x 2 x 2 x 3 (strip_accents true, false, null). */
export function bertNormalizerSettings(): BertNormalizerOptions[] {
  const out: BertNormalizerOptions[] = [];
  for (const clean_text of [true, false])
    for (const handle_chinese_chars of [true, false])
      for (const lowercase of [true, false])
        for (const strip_accents of [true, false, null])
          out.push({ clean_text, handle_chinese_chars, lowercase, strip_accents });
  return out;
}

export function variantName(v: WordPieceVariant): string {
  const parts: string[] = [];
  if (v.normalizer) {
    const n = v.normalizer;
    parts.push(
      `clean=${n.clean_text ? 1 : 0},cjk=${n.handle_chinese_chars ? 1 : 0},lower=${n.lowercase ? 1 : 0},strip=${n.strip_accents === null ? 'null' : n.strip_accents ? 1 : 0}`,
    );
  }
  if (v.maxChars !== undefined) parts.push(`max=${v.maxChars}`);
  if (v.prefix !== undefined) parts.push(`prefix=${JSON.stringify(v.prefix)}`);
  if (v.unk !== undefined) parts.push(`unk=${v.unk}`);
  if (v.decoderCleanup !== undefined) parts.push(`cleanup=${v.decoderCleanup}`);
  if (v.postProcessor !== undefined) parts.push(`post=${v.postProcessor}`);
  return parts.join(' ') || 'as trained';
}

/** The fixture's tokenizer.json with the variant's settings. */
export function wordpieceJson(v: WordPieceVariant = {}): Record<string, unknown> {
  const j = JSON.parse(fs.readFileSync(WORDPIECE_FIXTURE, 'utf8'));
  if (v.normalizer) j.normalizer = { type: 'BertNormalizer', ...v.normalizer };
  if (v.maxChars !== undefined) j.model.max_input_chars_per_word = v.maxChars;
  const rename = (tok: string) => {
    if (v.prefix !== undefined && tok.startsWith('##')) return v.prefix + tok.slice(2);
    if (v.unk !== undefined && tok === '[UNK]') return v.unk;
    return tok;
  };
  if (v.prefix !== undefined || v.unk !== undefined) {
    const vocab: Record<string, number> = {};
    for (const [tok, id] of Object.entries(j.model.vocab as Record<string, number>)) {
      const t = rename(tok);
      // A rewritten token equal to another one keeps the first id, as a vocabulary file read line by line would.
      if (!(t in vocab)) vocab[t] = id;
    }
    j.model.vocab = vocab;
    j.added_tokens = (j.added_tokens as { content: string }[]).map((a) => ({ ...a, content: rename(a.content) }));
  }
  if (v.prefix !== undefined) {
    j.model.continuing_subword_prefix = v.prefix;
    j.decoder.prefix = v.prefix;
  }
  if (v.unk !== undefined) j.model.unk_token = v.unk;
  if (v.decoderCleanup !== undefined) j.decoder.cleanup = v.decoderCleanup;
  if (v.postProcessor === 'none') j.post_processor = null;
  if (v.postProcessor === 'bert') j.post_processor = { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] };
  return j;
}

/** The cases that separate a BERT tokenizer from the others. */
export function bertDocs(): Doc[] {
  const docs: Doc[] = [];
  const add = (name: string, text: string) => docs.push({ name: `bert/${name}`, text });
  const cps = (from: number, to: number) => {
    const out: string[] = [];
    for (let c = from; c <= to; c++) out.push(String.fromCodePoint(c));
    return out;
  };
  add(
    'cjk-runs',
    '中文字符测试，没有空格的句子很长。日本語のテキストと漢字混じり文、한국어 텍스트와 漢字 混用. ' +
      'Mixed中文and English词语mixed 1234年5月6日 (北京)「引用」【注】 ' +
      '𠀀𠀁𪜀𫝀𫠠𬺰 丽侮 㐀㐁 ⺀⻳ 〇 ぁァｱ' +
      '中'.repeat(300) +
      ' a中b c漢字d',
  );
  const controls = [...cps(0x00, 0x1f), ...cps(0x7f, 0x9f), ...cps(0x200b, 0x200f), '\ufeff', '\u00ad'];
  add('controls-between-letters', controls.map((c) => `a${c}b`).join(' '));
  add('controls-in-words', controls.map((c) => `hel${c}lo wor${c}${c}ld ${c}start end${c} `).join(''));
  add(
    'format-and-unassigned',
    [
      0x180e, 0x2028, 0x2029, 0x2060, 0x2061, 0x2064, 0x2066, 0x2069, 0x206a, 0x206f, 0xfff9, 0xfffb, 0xfffc, 0xfffd,
      0xfffe, 0xffff, 0x600, 0x605, 0x61c, 0x6dd, 0x70f, 0x8e2, 0x890, 0x110bd, 0x110cd, 0x13430, 0x1bca0, 0x1d173,
      0xe0001, 0xe0020, 0xe007f, 0xe000, 0xe123, 0xf8ff, 0xf0000, 0xf1234, 0x10fffd, 0x378, 0x2fffe, 0xe0080, 0x10ffff,
    ]
      .map((c) => `x${String.fromCodePoint(c)}y ${String.fromCodePoint(c)} `)
      .join(''),
  );
  add('whitespace', 'a\tb\nc\rd\u000be\u000cf\u0085g\u00a0h\u1680i\u2000j\u200ak\u202fl\u205fm\u3000n \r\n\t o');
  const long = (n: number, unit: string) => unit.repeat(n);
  add(
    'long-words',
    [
      long(99, 'a'),
      long(100, 'a'),
      long(101, 'a'),
      long(100, 'é'),
      long(101, 'é'),
      long(100, 'e\u0301'),
      long(51, 'e\u0301'),
      long(60, 'İ'),
      long(50, 'İ'),
      long(101, '中'),
      long(120, 'ab!'),
      long(7, 'supercalifragilistic'),
      long(34, '😀a'),
      `${long(200, 'x')}.${long(3, 'y')}`,
    ].join(' '),
  );
  add(
    'combining-marks',
    'e\u0301 a\u0308 o\u0302\u0323 Å A\u030a Ǻ ǻ ḗ Tiếng Việt có dấu Ἀθῆναι Ὀδυσσεύς مَرْحَبًا بِكُمْ שָׁלוֹם ' +
      'हिन्दी संस्कृतम् ภาษาไทย ཀྲུང་ 한국어 \u1100\u1161\u11a8 Z\u0351\u0352\u0357a\u0364 \u0301\u0301x ' +
      'cafe\u0301 CAFE\u0301 naïve NAÏVE Ćevapčići \u20dd\u20e3 1\ufe0f\u20e3 a\u0345b \u0f77\u0f79 \u11938',
  );
  add(
    'case-and-accents',
    'ÉCOLE École école ECOLE Straße STRASSE ß ẞ İstanbul ıi IıİI ΣΊΣΥΦΟΣ σίσυφος ǅungla ǈ ǋ ＡＢＣ ａｂｃ ' +
      'ЁЖИК ёжик Ω K Å ﬁ ﬂ ŉ ǰ ΐ Ꭰ ꭰ 𐐀 𐐨 𞤀 Ⓐ ⓐ Ⅻ ⅻ MÜNCHEN München Ærøskøbing ÆRØSKØBING Łódź ŁÓDŹ',
  );
  add(
    'punctuation',
    '¿Qué? ¡Hola! «guillemets» —dash– ‘single’ “double” …ellipsis· ・中点「括弧」【括弧】 〈〉《》 ' +
      '$5 + 3 < 4 = x > y ^ z ` a | b ~ c € £ ¥ © ® ™ ∑ ∞ ° ‿⁀ ⁔ ๏ ๚๛ ، ؛ ؟ । ॥ ၊ ။ ። ፣ ⸮ ⹂ ⹏ 〽 ꓾ ꓿ ' +
      '\u2e43\u2e44\u2e52 \ufe45\ufe46 \ufe5d\ufe5e 𐄀 𑁇 𖺗 𞥞 a.b,c;d:e!f?g(h)i[j]k{l}m"n\'o-p_q/r\\s@t#u%v&w*x',
  );
  add(
    'contractions-for-cleanup',
    "I'm sure it's fine, don't worry. We've done it; they're here! Isn't it? do not . ' a ' n't 's 've 're 'm " +
      'Hello , world . Is it ? Yes ! ok',
  );
  add('special-tokens', '[CLS] text [SEP] more [MASK] [UNK] [PAD][CLS]x[SEP] [cls] [ SEP ] [MASK]s');
  add('unknown-pieces', 'ꙮꙮꙮ xꙮ ꙮx abcꙮdef 𓀀𓀁 ⿰⿱ 👩‍💻 🏳️‍🌈 ��');
  add('empty', '');
  add('only-spaces', '   \t\n  ');
  add('only-controls', '\u0000\u0001\u200b\ufeff\u00ad');
  return docs;
}

export interface WordPieceResult {
  variant: string;
  docs: number;
  tokens: number;
  /** `tokenizer`: the variant's name; `context`: the reference's tokens around the difference. */
  mismatches: Mismatch[];
  /** Documents whose decode or count differs (decode: with and without skipSpecialTokens). */
  otherFailures: string[];
}

/** Ids, count and decode of one variant against the reference on `docs`. */
export async function wordpieceParity(v: WordPieceVariant, docs: Doc[]): Promise<WordPieceResult> {
  const { Tokenizer: HfTokenizer } = require('tokenizers') as typeof import('tokenizers');
  const j = wordpieceJson(v);
  const ref = HfTokenizer.fromString(JSON.stringify(j));
  const ours = await Tokenizer.fromJSON(j);
  const name = variantName(v);
  const res: WordPieceResult = { variant: name, docs: docs.length, tokens: 0, mismatches: [], otherFailures: [] };
  try {
    const BATCH = 64;
    for (let k = 0; k < docs.length; k += BATCH) {
      const group = docs.slice(k, k + BATCH);
      for (const add of [false, true]) {
        const refs = await ref.encodeBatch(
          group.map((d) => d.text),
          { addSpecialTokens: add },
        );
        for (let g = 0; g < group.length; g++) {
          const doc = group[g]!;
          const r = refs[g]!.getIds();
          const o = ours.encode(doc.text, { addSpecialTokens: add });
          res.tokens += o.length;
          const at = firstDiff(o, r);
          if (at >= 0) {
            const window = (ids: ArrayLike<number>) => Array.from(ids).slice(Math.max(0, at - 3), at + 5);
            res.mismatches.push({
              tokenizer: name,
              doc: doc.name,
              addSpecialTokens: add,
              at,
              ours: window(o),
              reference: window(r),
              context: JSON.stringify(refs[g]!.getTokens().slice(Math.max(0, at - 3), at + 5)),
            });
          }
          if (ours.count(doc.text, { addSpecialTokens: add }) !== o.length)
            res.otherFailures.push(`${doc.name}: count != encode length`);
          if (add)
            for (const skip of [false, true]) {
              const dr = await ref.decode(Array.from(r), skip);
              if (ours.decode(r, { skipSpecialTokens: skip }) !== dr)
                res.otherFailures.push(`${doc.name}: decode (skipSpecialTokens ${skip}) differs from the reference`);
            }
        }
      }
    }
  } finally {
    ours.dispose();
  }
  return res;
}

/** The model, decoder and post-processor settings checked besides the 24 normalizer settings. */
export const MODEL_VARIANTS: WordPieceVariant[] = [
  { maxChars: 0 },
  { maxChars: 1 },
  { maxChars: 5 },
  { maxChars: 100 },
  { maxChars: 1000 },
  { prefix: '' },
  { prefix: '@@' },
  { prefix: '▁▁' },
  { unk: '<unk>' },
  { decoderCleanup: false },
  { postProcessor: 'bert' },
  { postProcessor: 'none' },
  { normalizer: { clean_text: true, handle_chinese_chars: true, lowercase: true, strip_accents: null }, maxChars: 8 },
];

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const bert = bertDocs();
  const corpus = buildCorpus({ maxBytes: 1_000_000 });
  let bad = 0;
  const show = (r: WordPieceResult, what: string) => {
    const docs = new Set(r.mismatches.map((m) => m.doc));
    console.log(
      `${r.variant} [${what}]: ${r.docs} docs, ${r.tokens} tokens, ${docs.size} documents with different ids (${((100 * docs.size) / r.docs).toFixed(1)}%), ${r.otherFailures.length} decode/count failures`,
    );
    for (const m of r.mismatches.slice(0, 4)) console.log('  ', JSON.stringify(m));
    for (const f of r.otherFailures.slice(0, 4)) console.log('   ', f);
    bad += r.mismatches.length + r.otherFailures.length;
  };
  for (const normalizer of bertNormalizerSettings()) show(await wordpieceParity({ normalizer }, bert), 'bert corpus');
  for (const v of MODEL_VARIANTS) show(await wordpieceParity(v, bert), 'bert corpus');
  const uncased = { clean_text: true, handle_chinese_chars: true, lowercase: true, strip_accents: null };
  show(await wordpieceParity({}, corpus), 'parity corpus');
  show(await wordpieceParity({ normalizer: uncased }, corpus), 'parity corpus');
  process.exit(bad ? 1 : 0);
}
