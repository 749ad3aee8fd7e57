// WordLevel models (one id per pre-tokenized word, unk_token for the rest) against Hugging Face `tokenizers`.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/index.js';

const require = createRequire(import.meta.url);
const hf = require('tokenizers') as typeof import('tokenizers');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-wordlevel-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function file(name: string, model: object, preTokenizer: object = { type: 'Whitespace' }): string {
  const f = path.join(tmp, `${name}.json`);
  fs.writeFileSync(
    f,
    JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [
        { id: 0, content: '[UNK]', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      ],
      normalizer: { type: 'Lowercase' },
      pre_tokenizer: preTokenizer,
      post_processor: null,
      decoder: null,
      model,
    }),
  );
  return f;
}

const vocab: Record<string, number> = { '[UNK]': 0, the: 1, quick: 2, brown: 3, fox: 4, '.': 5, ',': 6, é: 7, '42': 8 };

describe('WordLevel', () => {
  it('encodes and decodes as the reference, unknown words as unk_token', async () => {
    const f = file('wordlevel', { type: 'WordLevel', vocab, unk_token: '[UNK]' });
    const ref = hf.Tokenizer.fromFile(f);
    const ours = await Tokenizer.fromFile(f);
    try {
      for (const text of ['The quick brown fox.', 'the lazy dog, 42 é!', '', '  [UNK] fox  ', 'ÉTÉ é 42x']) {
        const want = (await ref.encode(text, null, { addSpecialTokens: false })).getIds();
        const got = ours.encode(text, { addSpecialTokens: false });
        expect(Array.from(got), JSON.stringify(text)).toEqual(Array.from(want));
        expect(ours.count(text, { addSpecialTokens: false })).toBe(want.length);
        expect(ours.decode(got)).toBe(await ref.decode(Array.from(want), false));
      }
    } finally {
      ours.dispose();
    }
  });

  it('CharDelimiterSplit splits on its character and drops it, as the reference', async () => {
    const cases: [object, string[]][] = [
      [{ type: 'CharDelimiterSplit', delimiter: '_' }, ['the_quick__brown_', '_fox', 'the quick_fox', '', '___']],
      [
        { type: 'Sequence', pretokenizers: [{ type: 'CharDelimiterSplit', delimiter: '▁' }, { type: 'Whitespace' }] },
        ['▁the▁quick▁▁brown.', 'fox▁42 é▁', '▁', 'the▁fox, the fox'],
      ],
    ];
    for (const [i, [pre, texts]] of cases.entries()) {
      const f = file(`chardelim-${i}`, { type: 'WordLevel', vocab, unk_token: '[UNK]' }, pre);
      const ref = hf.Tokenizer.fromFile(f);
      const ours = await Tokenizer.fromFile(f);
      try {
        for (const text of texts) {
          const want = (await ref.encode(text, null, { addSpecialTokens: false })).getIds();
          expect(Array.from(ours.encode(text, { addSpecialTokens: false })), JSON.stringify(text)).toEqual(
            Array.from(want),
          );
        }
      } finally {
        ours.dispose();
      }
    }
    // The delimiter is one character.
    for (const delimiter of ['', 'ab', 7]) {
      const f = file(
        'chardelim-bad',
        { type: 'WordLevel', vocab, unk_token: '[UNK]' },
        { type: 'CharDelimiterSplit', delimiter },
      );
      await expect(Tokenizer.fromFile(f)).rejects.toThrow(
        /pre_tokenizer\.delimiter: expected a string of one character/,
      );
    }
  });

  it('an unk_token missing from the vocabulary fails only the encode that needs it', async () => {
    const f = file('wordlevel-no-unk', { type: 'WordLevel', vocab: { the: 1, fox: 4 }, unk_token: '<unk>' });
    const ours = await Tokenizer.fromFile(f);
    try {
      expect(Array.from(ours.encode('the fox', { addSpecialTokens: false }))).toEqual([1, 4]);
      expect(() => ours.encode('the cat', { addSpecialTokens: false })).toThrow(
        /unk_token "<unk>" is not in the vocabulary/,
      );
      expect(
        await hf.Tokenizer.fromFile(f)
          .encode('the cat')
          .then(
            () => 'ok',
            () => 'failed',
          ),
      ).toBe('failed');
    } finally {
      ours.dispose();
    }
  });
});
