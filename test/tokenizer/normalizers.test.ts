// The Unicode normalizers (NFC, NFD, NFKC, NFKD), StripAccents and Nmt against Hugging Face `tokenizers`, for every
// code point, through a lossless probe (a Unigram model of the 256 byte pieces with byte_fallback: the ids spell the
// normalized text's UTF-8 bytes); an ALBERT/XLNet-shaped file (NFKD + StripAccents + Lowercase + Precompiled) on the
// corpus; the Replace decoder with a Regex pattern.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { buildCorpus } from '../../scripts/tokenizer-corpus.js';
import { codepointBlocks } from '../../scripts/tokenizer-codepoints.js';
import { hfParity } from '../../scripts/tokenizer-parity.js';
import { nmtNfkcCharsmap, normalizerProbe, probeBytes, xlmrShaped } from '../../scripts/tokenizer-spm-fixture.js';

const require = createRequire(import.meta.url);
const hf = require('tokenizers') as typeof import('tokenizers');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-normalizers-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, json: object): string {
  const file = path.join(tmp, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

function probeWith(name: string, normalizer: object): string {
  return write(name, { ...normalizerProbe(), normalizer });
}

const normalizers: [string, object][] = [
  ['NFC', { type: 'NFC' }],
  ['NFD', { type: 'NFD' }],
  ['NFKC', { type: 'NFKC' }],
  ['NFKD', { type: 'NFKD' }],
  ['StripAccents', { type: 'StripAccents' }],
  [
    'NFKD+StripAccents+Lowercase',
    { type: 'Sequence', normalizers: [{ type: 'NFKD' }, { type: 'StripAccents' }, { type: 'Lowercase' }] },
  ],
  ['Nmt', { type: 'Nmt' }],
];

describe('normalizers against the reference, every code point', () => {
  for (const [name, normalizer] of normalizers) {
    it(`${name}: byte-equal output around every code point`, { timeout: 600_000 }, async () => {
      const file = probeWith(name, normalizer);
      const ref = hf.Tokenizer.fromFile(file).getNormalizer()!;
      const ours = await Tokenizer.fromFile(file);
      const ourText = (text: string) => probeBytes(ours.encode(text, { addSpecialTokens: false })).toString('utf8');
      // Alone, after a letter, before a combining mark (composition, reordering), doubled.
      const contexts = (c: string) => `${c}|a${c}|${c}\u0301|${c}${c}\u0323`;
      let checked = 0;
      try {
        for (const lines of codepointBlocks(contexts)) {
          checked += lines.length;
          const text = lines.join('\n');
          if (ourText(text) !== ref.normalizeString(text)) {
            // Narrow down to the first code point that differs, for a readable failure.
            for (const line of lines) expect(ourText(line), JSON.stringify(line)).toBe(ref.normalizeString(line));
          }
        }
      } finally {
        ours.dispose();
      }
      expect(checked).toBeGreaterThan(400_000);
    });
  }

  it('leaves alone what the reference does not decompose or compose, normalizing the text on each side', async () => {
    // U+32FF (Unicode 12.1) and U+1CCD6 (16.0) have compatibility decompositions newer than the reference's tables;
    // U+105C9 (16.0) a canonical one; U+0898 (14.0) is a mark the reference does not reorder. Then the
    // decompositions of the canonical composites newer than the reference (U+11938 = U+11935 U+11930, ...), which
    // it leaves apart.
    const composites: string[] = [];
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const d = String.fromCodePoint(cp).normalize('NFD');
      if (d.length > 1 && d !== String.fromCodePoint(cp)) composites.push(`x${d}\u0301${d}`);
    }
    expect(composites.length).toBeGreaterThan(2000);
    for (const form of ['NFC', 'NFKC', 'NFD']) {
      const file = probeWith(`${form}-kept`, { type: form });
      const ref = hf.Tokenizer.fromFile(file).getNormalizer()!;
      const ours = await Tokenizer.fromFile(file);
      try {
        const texts = [
          'ﬁ\u32ffﬁ',
          'e\u0301\u{1ccd6}e\u0301',
          '\u{105c9}\u0301ﬁ',
          'ｘ\u32ff\u0323\u0301',
          'a\u0898\u0323',
        ];
        for (const s of [...texts, ...composites]) {
          const got = probeBytes(ours.encode(s, { addSpecialTokens: false }));
          expect(got.toString('utf8'), `${form} ${JSON.stringify(s)}`).toBe(ref.normalizeString(s));
        }
      } finally {
        ours.dispose();
      }
    }
  });
});

describe('ALBERT/XLNet-shaped Unigram file', () => {
  it(
    'equal ids on the corpus and accented text (Replace, NFKD, StripAccents, Lowercase, Precompiled)',
    {
      timeout: 600_000,
    },
    async () => {
      const base = xlmrShaped() as { normalizer: object };
      const file = write('albert-shaped', {
        ...base,
        normalizer: {
          type: 'Sequence',
          normalizers: [
            { type: 'Replace', pattern: { String: '``' }, content: '"' },
            { type: 'Replace', pattern: { String: "''" }, content: '"' },
            { type: 'NFKD' },
            { type: 'StripAccents' },
            { type: 'Lowercase' },
            { type: 'Precompiled', precompiled_charsmap: nmtNfkcCharsmap() },
            { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
          ],
        },
      });
      const accented = [
        { name: 'albert/accents', text: "Crème brûlée à l'hôtel ``Ångström'' — naïve coöperation, Øresund, ǅ ﬁ ½" },
        { name: 'albert/marks', text: 'क्षत्रिय ঁ ਂ ಃ ा ी e\u0301\u0323 A\u030a\u0327 ᄀ\u1161 한국어 Ελληνικά ά' },
      ];
      const r = await hfParity('albert-shaped', [...accented, ...buildCorpus({ maxBytes: 200_000 })], { file });
      expect(r.mismatches).toEqual([]);
      expect(r.roundTripFailures).toEqual([]);
      expect(r.tokens).toBeGreaterThan(40_000);
    },
  );
});

describe('Replace decoder with a Regex pattern', () => {
  it('decodes as the reference does (per token, empty matches included)', async () => {
    const vocab: Record<string, number> = { a__: 0, b: 1, xx: 2, ab: 3, '▁▁x': 4, '': 5 };
    for (const decoder of [
      { type: 'Replace', pattern: { Regex: '_+' }, content: ' ' },
      { type: 'Replace', pattern: { Regex: 'x*' }, content: '-' },
      { type: 'Replace', pattern: { String: '' }, content: '-' },
      {
        type: 'Sequence',
        decoders: [{ type: 'Replace', pattern: { Regex: '▁{2,}' }, content: '▁' }, { type: 'Fuse' }],
      },
    ]) {
      const file = write('replace-decoder', {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: [],
        normalizer: null,
        pre_tokenizer: null,
        post_processor: null,
        decoder,
        model: { type: 'WordLevel', vocab, unk_token: 'b' },
      });
      const ref = hf.Tokenizer.fromFile(file);
      const ours = await Tokenizer.fromFile(file);
      try {
        for (const ids of [
          [0, 1],
          [2, 3],
          [3, 1],
          [4, 0, 2],
          [5, 3],
        ])
          expect(ours.decode(ids), JSON.stringify({ decoder, ids })).toBe(await ref.decode(ids, false));
      } finally {
        ours.dispose();
      }
    }
  });
});
