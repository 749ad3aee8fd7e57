// The native loaders: tokenizer.json (model.vocab / model.merges with the purpose-built readers of
// native/tokenizer/json_scan.h) and tiktoken ranks are read natively from the raw bytes. They must read documents
// exactly as JSON.parse does (Tokenizer.fromJSON(JSON.parse(text)) hands native code JSON.stringify's rewrite of the
// text: escapes, duplicate keys and number forms resolved by V8), reject malformed input with a typed error that names
// the field, and keep the event loop turning while a large file loads.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer, TokenizerSpecError } from '../../src/tokenizer/index.js';
import { lenmlFile } from '../../scripts/tokenizer-parity.js';
import { BYTE_CHARS } from '../../scripts/tokenizer-json-parts.js';
import { watchLoopTicks } from '../fixtures/loop-ticks.js';

const require = createRequire(import.meta.url);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-raw-'));
const write = (name: string, text: string | Buffer) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A small byte-level BPE tokenizer.json as text, vocab and merges spliced in verbatim (to write escapes). */
function tokenizerJson(vocab: string, merges: string, extra = ''): string {
  return `{"version": "1.0", "added_tokens": [{"id": 900, "content": "<|end|>", "special": true}],
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
  "decoder": {"type": "ByteLevel"}, ${extra}
  "model": {"type": "BPE", "vocab": ${vocab}, "merges": ${merges}}}`;
}

/** The 256 byte-level single-byte tokens as JSON members (ids 0..255, GPT-2 byte order). */
function byteVocab(): string[] {
  return BYTE_CHARS.map((c, b) => `${JSON.stringify(c)}: ${b}`);
}

async function sameAsJsonParse(text: string, samples: string[]): Promise<void> {
  const fast = await Tokenizer.fromFile(write('t.json', text));
  const slow = await Tokenizer.fromJSON(JSON.parse(text));
  try {
    expect(fast.vocabSize).toBe(slow.vocabSize);
    for (const s of samples) expect(Array.from(fast.encode(s))).toEqual(Array.from(slow.encode(s)));
    for (let id = 0; id < slow.vocabSize; id++) expect(fast.idToToken(id)).toBe(slow.idToToken(id));
  } finally {
    fast.dispose();
    slow.dispose();
  }
}

describe('raw tokenizer.json loading', () => {
  it('decodes escapes, surrogate pairs and duplicate keys exactly as JSON.parse', async () => {
    const bytes = byteVocab();
    // "\u0120w" is "Ġw" (the byte-level form of " w"); "\ud83d\ude00"-style pairs; an escaped quote and backslash;
    // "hi" twice: JSON.parse keeps the last id (261), so id 260 is free.
    const extra = [
      '"\\u0120w": 256',
      '"h\\u0069": 260',
      '"\\"\\\\": 257',
      '"\\u00f0\\u0141": 258',
      '"hi": 261',
      '"\\u0120wh": 259',
      // Lone surrogates: distinct keys for JSON.parse, both U+FFFD once encoded (no key in the byte-level alphabet).
      '"\\ud800": 262',
      '"\\udbff": 263',
    ];
    const vocab = `{${[...bytes, ...extra].join(', ')}}`;
    const merges = `["\\u0120 w", ["\\"", "\\\\"], ["\\u00f0", "\\u0141"], "h i", "\\u0120w h"]`;
    await sameAsJsonParse(tokenizerJson(vocab, merges), ['hi whi', ' wh "\\ x', 'ð\u0141 🙂', '<|end|> w']);
    const t = await Tokenizer.fromFile(write('dup.json', tokenizerJson(vocab, merges)));
    expect(t.tokenToId('hi')).toBe(261);
    expect(t.idToToken(260)).toBeUndefined();
    t.dispose();
  });

  it('loads real files exactly like the JSON.parse path', async () => {
    for (const name of ['gpt2', 'llama2']) {
      const text = fs.readFileSync(lenmlFile(name), 'utf8');
      await sameAsJsonParse(text, ['Hello world, ünïcödé 中文 🙂!\n\t  x', 'a'.repeat(300) + ' b'.repeat(40)]);
    }
  });

  it('rejects malformed vocab and merges with a TokenizerSpecError naming the field', async () => {
    const bytes = byteVocab().join(', ');
    const cases: [string, RegExp][] = [
      [tokenizerJson(`{${bytes}, "x": -1}`, '[]'), /model\.vocab\["x"\]: expected a non-negative integer, got -1/],
      [tokenizerJson(`{${bytes}, "x": 1.5}`, '[]'), /model\.vocab\["x"\]: expected a non-negative integer/],
      [tokenizerJson(`{${bytes}, "x": "7"}`, '[]'), /model\.vocab\["x"\]: expected a non-negative integer/],
      [tokenizerJson(`{${bytes}, "x": 0}`, '[]'), /model\.vocab\["x"\]: id 0 is used twice/],
      [tokenizerJson(`{${bytes}}`, '["! \\"", "!"]'), /model\.merges\[1\]: expected "left right"/],
      [tokenizerJson(`{${bytes}}`, '[["!"]]'), /model\.merges\[0\]/],
      [tokenizerJson(`{${bytes}}`, '["!! !"]'), /model\.merges\[0\]: "!!" is not in model\.vocab/],
    ];
    for (const [text, re] of cases) {
      const e = await Tokenizer.fromFile(write('bad.json', text)).catch((err: unknown) => err);
      expect(e, String(re)).toBeInstanceOf(TokenizerSpecError);
      expect((e as Error).message).toMatch(re);
    }
    // Not JSON at all: JSON.parse's own message.
    for (const text of ['{"model": {"vocab": {"a": 0}', '\uFEFF{}', '{"model": {"vocab": {"a\u0001": 0}}}']) {
      const e = await Tokenizer.fromFile(write('bad.json', text)).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(TokenizerSpecError);
      expect((e as Error).message).toMatch(/not valid JSON/);
    }
  });

  it('reads past truncation and padding settings: text is encoded whole, as transformers does', async () => {
    // A tokenizer.json saved after a call with truncation=True / padding keeps those settings. The reference library
    // applies them to every encode; transformers and transformers.js, which load model folders, ignore them unless a
    // call asks, and so does tokmeter: a count is of the whole text.
    const json = JSON.parse(fs.readFileSync(lenmlFile('gpt2'), 'utf8')) as Record<string, unknown>;
    json.truncation = { direction: 'Right', max_length: 8, strategy: 'LongestFirst', stride: 0 };
    json.padding = {
      strategy: { Fixed: 64 },
      direction: 'Right',
      pad_to_multiple_of: null,
      pad_id: 50256,
      pad_type_id: 0,
      pad_token: '<|endoftext|>',
    };
    const saved = await Tokenizer.fromFile(write('truncating.json', JSON.stringify(json)));
    const plain = await Tokenizer.fromFile(lenmlFile('gpt2'));
    const text = 'The quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog.';
    const { Tokenizer: Hf } = require('tokenizers') as typeof import('tokenizers');
    const ref = Hf.fromFile(lenmlFile('gpt2'));
    const want = (await ref.encode(text)).getIds();
    expect(want.length).toBeGreaterThan(8);
    expect(Array.from(saved.encode(text))).toEqual(want);
    expect(saved.count(text)).toBe(plain.count(text));
    expect(Array.from(await saved.countBatch([text, 'a']))).toEqual([want.length, 1]);
    saved.dispose();
    plain.dispose();
    // Anything but an object or null there is still a malformed file.
    json.padding = 'yes';
    const e = await Tokenizer.fromFile(write('bad-padding.json', JSON.stringify(json))).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TokenizerSpecError);
    expect((e as Error).message).toMatch(/padding: expected an object/);
  });

  it('keeps the event loop turning while a 9.7 MB tokenizer.json loads', async () => {
    const loop = watchLoopTicks();
    const t = await Tokenizer.fromFile(lenmlFile('gpt4o')).finally(() => loop.stop());
    expect(t.vocabSize).toBe(200019);
    expect(loop.ticks).toBeGreaterThan(3);
    // Only the small rest of the document is parsed on the loop; generous for loaded CI machines.
    expect(loop.longestMs).toBeLessThan(250);
    t.dispose();
  });
});

describe('raw tiktoken loading', () => {
  it('parses .tiktoken rank files natively, equal to the package encoding', async () => {
    // cl100k_base rewritten as a .tiktoken file ("<base64> <rank>" lines, CRLF) from the package's compressed form.
    const pkg = JSON.parse(fs.readFileSync(require.resolve('tiktoken/encoders/cl100k_base.json'), 'utf8')) as {
      pat_str: string;
      special_tokens: Record<string, number>;
      bpe_ranks: string;
    };
    const lines: string[] = [];
    for (const line of pkg.bpe_ranks.split('\n')) {
      const [, first, ...toks] = line.split(' ');
      if (first === undefined) continue;
      toks.forEach((b64, k) => lines.push(`${b64} ${Number(first) + k}`));
    }
    const file = write('cl100k.tiktoken', lines.join('\r\n') + '\r\n');
    const fromFile = await Tokenizer.fromTiktoken(file, { pattern: pkg.pat_str, specialTokens: pkg.special_tokens });
    const named = await Tokenizer.fromTiktoken('cl100k_base');
    try {
      expect(fromFile.vocabSize).toBe(named.vocabSize);
      for (const s of ['Hello world', 'ünïcödé 中文 🙂 <|endoftext|>', '  \n\n\tx = f(y) // 12345', 'a'.repeat(999)])
        expect(Array.from(fromFile.encode(s))).toEqual(Array.from(named.encode(s)));
    } finally {
      fromFile.dispose();
      named.dispose();
    }
  });

  it('rejects malformed rank files with a TokenizerSpecError naming the line', async () => {
    const cases: [string, RegExp][] = [
      ['IQ== 1\nIg== 0\n', /line 2: rank 0 is out of order/],
      ['IQ== 0\nI*== 1\n', /line 2: invalid base64/],
      ['IQ==\n', /line 1: expected "<base64 token> <rank>"/],
    ];
    for (const [text, re] of cases) {
      const e = await Tokenizer.fromTiktoken(write('bad.tiktoken', text), { pattern: '\\S+' }).catch(
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(TokenizerSpecError);
      expect((e as Error).message).toMatch(re);
    }
  });
});
