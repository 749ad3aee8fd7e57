// Id parity with the references on the corpus of scripts/tokenizer-corpus.ts (real text from this machine plus
// generated hard cases): Hugging Face `tokenizers` for tokenizer.json files, the `tiktoken` package for tiktoken
// encodings. Also checks count == encode().length and decode against the reference's decode.
import { describe, expect, it } from 'vitest';
import { buildCorpus } from '../../scripts/tokenizer-corpus.js';
import { HF_TOKENIZERS, LOSSLESS, TIKTOKENS, hfParity, tiktokenParity } from '../../scripts/tokenizer-parity.js';

const docs = buildCorpus({ maxBytes: 1_000_000 });

describe('tokenizer parity', () => {
  it('the corpus covers real text in many scripts and the hard cases', () => {
    const names = docs.map((d) => d.name);
    expect(names.filter((n) => n.startsWith('locale/')).length).toBeGreaterThanOrEqual(10);
    expect(names.filter((n) => n.startsWith('readme/')).length).toBeGreaterThanOrEqual(10);
    for (const h of [
      'hard/empty',
      'hard/emoji-zwj',
      'hard/skin-tones',
      'hard/combining',
      'hard/long-spaces',
      'hard/digits',
      'hard/long-word',
      'hard/lone-surrogates',
    ])
      expect(names).toContain(h);
  });

  for (const name of HF_TOKENIZERS) {
    it(`${name} (tokenizer.json) matches Hugging Face tokenizers on every document`, async () => {
      const lossless = LOSSLESS[name];
      const r = await hfParity(name, docs, lossless ? { lossless } : {});
      expect(r.tokens).toBeGreaterThan(10_000);
      expect(r.mismatches).toEqual([]);
      expect(r.roundTripFailures).toEqual([]);
    });
  }

  for (const name of TIKTOKENS) {
    it(`${name} (tiktoken ranks) matches the tiktoken package on every document`, async () => {
      const r = await tiktokenParity(name, docs);
      expect(r.tokens).toBeGreaterThan(10_000);
      expect(r.mismatches).toEqual([]);
      expect(r.roundTripFailures).toEqual([]);
    });
  }
});
