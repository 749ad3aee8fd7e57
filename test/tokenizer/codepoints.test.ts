// Every assigned code point (and a sample of the unassigned and private-use ones) in several contexts, once per
// split pattern (GPT-2, cl100k/Llama 3, o200k/GPT-4o, Qwen, and DeepSeek-V3's real tokenizer.json with its three
// Splits), for Llama 2's SentencePiece BPE (merged piece by piece between U+2581s), for the BERT-style WordPiece file
// cased and uncased (BertNormalizer and BertPreTokenizer classes), for the BPE files with word affixes (CLIP's split
// and Lowercase, GPT-1's BERT pipeline, the Whitespace pre-tokenizer's \w), and for Split patterns made of scripts,
// script codes, binary properties and their short names, and blocks (\p{Han}, \p{Hani}, \p{Alphabetic}, \p{Alpha},
// \p{In_Basic_Latin}: scripts/tokenizer-property-fixtures.ts): ids equal to Hugging Face tokenizers'. The full
// product (every code point, more contexts, also the tiktoken encodings against the tiktoken package) is
// `npx tsx scripts/tokenizer-codepoints.ts` (runtime in bench/tokenize/README.md).
import { describe, expect, it } from 'vitest';
import { codepointDocs, codepointParity } from '../../scripts/tokenizer-codepoints.js';

const docs = codepointDocs({ assignedOnly: true, quick: true });

describe('every code point against the reference', () => {
  it('covers the assigned code points', () => {
    expect(docs.length).toBeGreaterThan(70);
    expect(docs[0]!.first).toBe(0);
  });
  for (const name of [
    'gpt2',
    'llama2',
    'llama3',
    'gpt4o',
    'qwen3',
    'deepseek_v3',
    'bert-cased',
    'bert-uncased',
    'bpe-clip',
    'bpe-gpt1',
    'bpe-prefix',
    'props-scripts',
    'props-codes',
    'props-binary',
    'props-binary-reversed',
    'props-binary-aliases',
    'props-blocks',
  ]) {
    it(`${name}: equal ids around every assigned code point`, { timeout: 600_000 }, async () => {
      const r = await codepointParity(name, docs);
      // WordPiece makes one [UNK] of a whole word it cannot piece together: fewer tokens.
      expect(r.tokens).toBeGreaterThan(name.startsWith('bert-') ? 900_000 : 1_000_000);
      expect(r.mismatches).toEqual([]);
    });
  }
});

describe('long runs of one class', () => {
  it('10,000,000 spaces (and 200,000 of digits, letters, newlines, marks) count without a match limit', async () => {
    const { Tokenizer } = await import('../../src/tokenizer/index.js');
    const { lenmlFile } = await import('../../scripts/tokenizer-parity.js');
    for (const name of ['llama3', 'gpt4o']) {
      const t = await Tokenizer.fromFile(lenmlFile(name));
      try {
        for (const [unit, len] of [
          [' ', 10_000_000],
          ['1', 200_000],
          ['a', 200_000],
          ['\n', 200_000],
          [' \n', 200_000],
          ['\u0301', 200_000],
        ] as const) {
          const s = unit.repeat(len / unit.length);
          const n = t.count(s);
          expect(n).toBeGreaterThan(0);
          if (len < 10_000_000) expect(t.encode(s).length).toBe(n);
        }
      } finally {
        t.dispose();
      }
    }
  }, 300_000);

  it('50,000-character runs equal the reference', async () => {
    const { createRequire } = await import('node:module');
    const { Tokenizer } = await import('../../src/tokenizer/index.js');
    const { lenmlFile } = await import('../../scripts/tokenizer-parity.js');
    const { Tokenizer: Hf } = createRequire(import.meta.url)('tokenizers') as typeof import('tokenizers');
    for (const name of ['llama3', 'gpt4o', 'qwen3', 'gpt2']) {
      const ref = Hf.fromFile(lenmlFile(name));
      const t = await Tokenizer.fromFile(lenmlFile(name));
      try {
        for (const unit of [' ', '1', '\n', ' \n', '!', '\u0301', 'A\u0301', '\u3000']) {
          const s = `x${unit.repeat(50_000 / unit.length)}y`;
          const r = (await ref.encode(s, null, { addSpecialTokens: false })).getIds();
          expect(Array.from(t.encode(s, { addSpecialTokens: false }))).toEqual(Array.from(r));
        }
      } finally {
        t.dispose();
      }
    }
  }, 300_000);
});
