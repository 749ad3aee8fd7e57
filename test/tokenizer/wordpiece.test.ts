// WordPiece / BERT parity with Hugging Face tokenizers (scripts/tokenizer-wordpiece.ts): the BERT-style file trained
// by the reference (test/tokenizer/fixtures/wordpiece-bert-cased.json) under every BertNormalizer setting, the
// WordPiece model / decoder / post-processor options, on the BERT corpus (CJK runs, control and format characters,
// over-long words, combining marks, case and accents, Unicode punctuation) and, cased and uncased, on the whole
// parity corpus. Ids with and without special tokens, count, and decode with and without skipSpecialTokens.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { buildCorpus } from '../../scripts/tokenizer-corpus.js';
import {
  MODEL_VARIANTS,
  bertDocs,
  bertNormalizerSettings,
  variantName,
  wordpieceJson,
  wordpieceParity,
} from '../../scripts/tokenizer-wordpiece.js';
import { Tokenizer } from '../../src/tokenizer/index.js';

const bert = bertDocs();

describe('WordPiece / BERT parity', () => {
  it('the BERT corpus has the cases that separate a BERT tokenizer', () => {
    const text = bert.map((d) => d.text).join('');
    for (const c of ['\u0000', '\u001f', '\u007f', '\u009f', '\u200b', '\u200f', '\ufeff', '\u00ad', '中文', 'e\u0301'])
      expect(text).toContain(c);
    expect(text).toContain('a'.repeat(101));
    expect(text).toContain('é'.repeat(101));
  });

  it('covers the 24 BertNormalizer settings', () => {
    const names = new Set(bertNormalizerSettings().map((n) => variantName({ normalizer: n })));
    expect(names.size).toBe(24);
  });

  for (const normalizer of bertNormalizerSettings()) {
    it(`BertNormalizer ${variantName({ normalizer })}: ids, count and decode equal the reference`, async () => {
      const r = await wordpieceParity({ normalizer }, bert);
      expect(r.tokens).toBeGreaterThan(2000);
      expect(r.mismatches).toEqual([]);
      expect(r.otherFailures).toEqual([]);
    });
  }

  for (const v of MODEL_VARIANTS) {
    it(`${variantName(v)}: ids, count and decode equal the reference`, async () => {
      const r = await wordpieceParity(v, bert);
      expect(r.tokens).toBeGreaterThan(2000);
      expect(r.mismatches).toEqual([]);
      expect(r.otherFailures).toEqual([]);
    });
  }

  const corpus = buildCorpus({ maxBytes: 1_000_000 });
  const uncased = { clean_text: true, handle_chinese_chars: true, lowercase: true, strip_accents: null };
  for (const [name, v] of [
    ['cased', {}],
    ['uncased', { normalizer: uncased }],
  ] as const) {
    it(`${name}: equal to the reference on every document of the parity corpus`, async () => {
      const r = await wordpieceParity(v, corpus);
      expect(r.tokens).toBeGreaterThan(100_000);
      expect(r.mismatches).toEqual([]);
      expect(r.otherFailures).toEqual([]);
    }, 120_000);
  }

  it('an unk_token missing from the vocabulary fails only the encode that needs it, as the reference', async () => {
    const { Tokenizer: HfTokenizer } = createRequire(import.meta.url)('tokenizers') as typeof import('tokenizers');
    const j = wordpieceJson({ postProcessor: 'none' }) as { model: { unk_token: string } };
    j.model.unk_token = '[NOT-IN-VOCAB]';
    const ref = HfTokenizer.fromString(JSON.stringify(j));
    const t = await Tokenizer.fromJSON(j);
    try {
      const ok = 'the file loads';
      expect(Array.from(t.encode(ok))).toEqual((await ref.encode(ok)).getIds());
      await expect(ref.encode('ꙮꙮꙮ')).rejects.toThrow(/Missing/);
      expect(() => t.encode('ꙮꙮꙮ')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    } finally {
      t.dispose();
    }
  });

  it('an over-long word is one [UNK], counted in characters, and the limit follows the file', async () => {
    const t = await Tokenizer.fromJSON(wordpieceJson({ maxChars: 5 }));
    try {
      const unk = t.tokenToId('[UNK]');
      expect(Array.from(t.encode('ééééé ééééééé', { addSpecialTokens: false })).at(-1)).toBe(unk);
      expect(Array.from(t.encode('ééééé', { addSpecialTokens: false }))).not.toContain(unk);
      expect(t.count('abcdef', { addSpecialTokens: false })).toBe(1);
    } finally {
      t.dispose();
    }
  });
});
