// BPE with word affixes (continuing_subword_prefix, end_of_word_suffix), the BPEDecoder and the CTC decoder, against
// Hugging Face tokenizers loading the same files: CLIP's, GPT-1's and a "##"-prefixed layout
// (scripts/tokenizer-affix-fixtures.ts) on the whole parity corpus (ids with and without special tokens, count,
// decode); every code point is in test/tokenizer/codepoints.test.ts.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AffixKind, affixBpeFile, affixBpeJson } from '../../scripts/tokenizer-affix-fixtures.js';
import { buildCorpus } from '../../scripts/tokenizer-corpus.js';
import { hfParity } from '../../scripts/tokenizer-parity.js';
import { Tokenizer } from '../../src/tokenizer/index.js';

const require = createRequire(import.meta.url);
const docs = buildCorpus({ maxBytes: 400_000 });

describe('BPE with word affixes', () => {
  for (const kind of ['clip', 'gpt1', 'prefix'] as AffixKind[]) {
    it(`${kind}: ids, count and decode equal the reference on the corpus`, { timeout: 300_000 }, async () => {
      const file = affixBpeFile(kind);
      try {
        const r = await hfParity(kind, docs, { file });
        expect(r.tokens).toBeGreaterThan(300_000);
        expect(r.mismatches).toEqual([]);
        expect(r.roundTripFailures).toEqual([]);
      } finally {
        fs.rmSync(file, { force: true });
      }
    });
  }

  it('the affixes are what the ids say: word-final units carry </w>, later units ##', async () => {
    const clip = await Tokenizer.fromJSON(affixBpeJson('clip'));
    const prefix = await Tokenizer.fromJSON(affixBpeJson('prefix'));
    try {
      const ids = clip.encode('a photo of a cat', { addSpecialTokens: false });
      expect(ids.length).toBeGreaterThanOrEqual(5);
      // The ByteLevel decoder leaves the suffixes in place (as CLIP's file does); each word ends with one.
      expect(clip.decode(ids).split('</w>').length - 1).toBe(5);
      const words = prefix.encode('tokenization', { addSpecialTokens: false });
      expect(words.length).toBeGreaterThan(1);
      expect(prefix.decode(words)).toBe('tokenization');
    } finally {
      clip.dispose();
      prefix.dispose();
    }
  });

  it('gpt1: decodeStream gives the whole decode, the suffix of each word a space but the last', async () => {
    const gpt1 = await Tokenizer.fromJSON(affixBpeJson('gpt1'));
    try {
      const text = 'the quick brown fox , jumps over the lazy dog .';
      const ids = gpt1.encode(text, { addSpecialTokens: false });
      const ds = gpt1.decodeStream();
      let streamed = '';
      for (const id of ids) streamed += ds.step(id);
      streamed += ds.flush();
      expect(gpt1.decode(ids)).toBe(text);
      expect(streamed).toBe(text);
    } finally {
      gpt1.dispose();
    }
  });

  it('a merge whose right token lacks continuing_subword_prefix is a spec error naming it', async () => {
    const j = {
      model: {
        type: 'BPE',
        vocab: { a: 0, '##b': 1, ab: 2 },
        merges: ['a ##b', '##b a'],
        continuing_subword_prefix: '##',
      },
    };
    await expect(Tokenizer.fromJSON(j)).rejects.toMatchObject({
      code: 'ERR_TOKENIZER_SPEC',
      message: expect.stringContaining('model.merges[1]'),
    });
  });
});

describe('CTC decoder', () => {
  // wav2vec2-style: characters, "|" between words, <pad> as the blank.
  const vocab: Record<string, number> = { '<pad>': 0, '<s>': 1, '</s>': 2, '<unk>': 3, '|': 4 };
  for (const c of "etaoinshrdlucmfwypvbgkjqxz'.,?!") vocab[c] = Object.keys(vocab).length;
  const json = (cleanup: boolean) => ({
    version: '1.0',
    added_tokens: [],
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
    pre_tokenizer: { type: 'WhitespaceSplit' },
    decoder: { type: 'CTC', pad_token: '<pad>', word_delimiter_token: '|', cleanup },
  });

  for (const cleanup of [true, false]) {
    it(`decodes like the reference (cleanup ${cleanup}): repeats collapsed, blanks dropped, | as spaces`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-ctc-'));
      const file = path.join(dir, 'tokenizer.json');
      fs.writeFileSync(file, JSON.stringify(json(cleanup)));
      const { Tokenizer: Hf } = require('tokenizers') as typeof import('tokenizers');
      const ref = Hf.fromFile(file);
      const ours = await Tokenizer.fromFile(file);
      try {
        let seed = 12345;
        const rand = (n: number) => {
          seed = (seed * 1103515245 + 12345) % 2 ** 31;
          return seed % n;
        };
        const ids = Object.values(vocab);
        const sequences: number[][] = [
          [vocab.h!, vocab.h!, vocab.e!, 0, vocab.l!, vocab.l!, 0, vocab.l!, vocab.o!, 4, 4, vocab.w!],
          [4, vocab['.']!, 4, vocab.n!, vocab["'"]!, vocab.t!, 4, vocab['?']!, 0, 0],
          [],
          [0, 0, 0],
        ];
        for (let k = 0; k < 300; k++)
          sequences.push(Array.from({ length: 1 + rand(30) }, () => ids[rand(ids.length)]!));
        for (const seq of sequences) {
          expect(ours.decode(seq)).toBe(await ref.decode(seq, false));
        }
      } finally {
        ours.dispose();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
