// The public Tokenizer API: loaders, encode/count/decode, batches off the event loop, streaming decode, chat
// templates, input validation, lifetime, and very large inputs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, TokmeterTypeError, toTokmeterError } from '../../src/errors.js';
import { Tokenizer, TokenizerError, TokenizerSpecError } from '../../src/tokenizer/index.js';
import { lenmlFile } from '../../scripts/tokenizer-parity.js';

const lenmlDir = (name: string) => path.dirname(lenmlFile(name));

describe('Tokenizer', () => {
  let gpt2: Tokenizer;
  let llama2: Tokenizer;
  beforeAll(async () => {
    gpt2 = await Tokenizer.fromFile(lenmlFile('gpt2'));
    llama2 = await Tokenizer.fromPretrained(lenmlDir('llama2'));
  });
  afterAll(() => {
    gpt2.dispose();
    llama2.dispose();
  });

  it('encodes, counts and decodes', () => {
    const ids = gpt2.encode('Hello world');
    expect(Array.from(ids)).toEqual([15496, 995]);
    expect(gpt2.count('Hello world')).toBe(2);
    expect(gpt2.decode(ids)).toBe('Hello world');
    expect(gpt2.decode([15496, 995])).toBe('Hello world');
    expect(gpt2.vocabSize).toBe(50257);
    expect(gpt2.tokenToId('<|endoftext|>')).toBe(50256);
    expect(gpt2.idToToken(995)).toBe('Ġworld');
    expect(gpt2.encode('')).toHaveLength(0);
  });

  it('applies the post-processor only with addSpecialTokens', () => {
    expect(llama2.bosTokenId).toBe(1);
    expect(llama2.encode('hi')[0]).toBe(1);
    expect(llama2.encode('hi', { addSpecialTokens: false })[0]).not.toBe(1);
    expect(llama2.count('hi')).toBe(llama2.count('hi', { addSpecialTokens: false }) + 1);
    expect(llama2.decode(llama2.encode('hi'), { skipSpecialTokens: true })).toBe('hi');
  });

  it('rejects non-string input with a precise TypeError', () => {
    expect(() => gpt2.count(123 as unknown as string)).toThrow(TokmeterTypeError);
    expect(() => gpt2.count(123 as unknown as string)).toThrow(/expected a string for text, got number 123/);
    expect(() => gpt2.encode(null as unknown as string)).toThrow(/got null/);
    expect(() => gpt2.encode('x', { addSpecialTokens: 'yes' as unknown as boolean })).toThrow(/addSpecialTokens/);
    expect(() => gpt2.decode([1, -2])).toThrow(/ids\[1\]/);
    expect(() => gpt2.decode([999999])).toThrow(/not in the vocabulary/);
    return expect(gpt2.countBatch(['a', 7 as unknown as string])).rejects.toThrow(/texts\[1\]/);
  });

  it('countBatch and encodeBatch equal the one-by-one results, on native threads', async () => {
    const texts = Array.from(
      { length: 400 },
      (_, i) => `document ${i}: ` + 'lorem ipsum dolor sit amet '.repeat(i % 50) + '🙂'.repeat(i % 7),
    );
    const counts = await gpt2.countBatch(texts, { threads: 2 });
    expect(Array.from(counts)).toEqual(texts.map((t) => gpt2.count(t)));
    const ids = await gpt2.encodeBatch(texts.slice(0, 20));
    expect(ids.map((a) => Array.from(a))).toEqual(texts.slice(0, 20).map((t) => Array.from(gpt2.encode(t))));
    // Small batches run on the calling thread, larger ones in chunks of documents on the pool: both exact.
    const all = await gpt2.encodeBatch(texts, { threads: 2 });
    expect(all.map((a) => a.length)).toEqual(Array.from(counts));
    expect(Array.from(all[399]!)).toEqual(Array.from(gpt2.encode(texts[399]!)));
    await expect(gpt2.countBatch(texts, { threads: 0 })).rejects.toThrow(/threads/);
    expect(Array.from(await gpt2.countBatch([]))).toEqual([]);
  });

  it('countBatch is exact on each path: small (calling thread), large (texts released to threads as copied)', async () => {
    // Lone surrogates (each counted as U+FFFD, as count() sees them), pairs at every offset of the threads' 8-unit
    // transcoding blocks, 2- and 3-byte runs between ASCII.
    const parts = [
      'plain ascii words ',
      'Grüße aus Köln ',
      '中文文本 ',
      '🙂👩‍👩‍👧 ',
      'x'.repeat(100) + ' ',
      'a\ud800b\udc00 \ud83d',
    ];
    const mixed = (i: number) => `${'.'.repeat(i % 9)}${i} ` + parts[i % parts.length]!.repeat(i % 97);
    // > 32k UTF-16 units: chunks handed to the pool while later texts are still being copied.
    const large = Array.from({ length: 300 }, (_, i) => mixed(i));
    // Just under 32k UTF-16 units, ~94 kB of UTF-8 (CJK): the calling thread.
    const between = Array.from({ length: 8 }, (_, i) => `${i} ` + '中文文本'.repeat(1000));
    for (const texts of [large, between, large.slice(0, 5)]) {
      const want = texts.map((t) => gpt2.count(t));
      expect(Array.from(await gpt2.countBatch(texts, { threads: 2 }))).toEqual(want);
      expect(Array.from(await gpt2.countBatch(texts, { threads: 3 }))).toEqual(want);
      const ids = await gpt2.encodeBatch(texts, { threads: 2 });
      expect(ids.map((a) => a.length)).toEqual(want);
    }
    // A non-string late in a large batch: rejected (before any thread starts), and the next batch is unaffected.
    const bad = [...large, 42 as unknown as string];
    await expect(gpt2.countBatch(bad, { threads: 2 })).rejects.toThrow(/texts\[300\]/);
    expect(Array.from(await gpt2.countBatch(large, { threads: 2 }))).toEqual(large.map((t) => gpt2.count(t)));
  });

  it('countBatch does not block the event loop', async () => {
    // Flat strings (as read from a file or a request): a string built by concatenation or repeat() is a tree that V8
    // flattens on first read, on the JS thread, whatever reads it (count(), countBatch, Buffer.from alike).
    const big = Array.from({ length: 64 }, (_, i) =>
      Buffer.from(`${i} ` + 'The quick brown fox jumps over the lazy dog. '.repeat(4000)).toString(),
    );
    // countBatch copies the texts on the JS thread before it returns; the counting runs on other threads. So once it
    // has returned, the loop must keep turning until the promise settles: count the turns (setImmediate, no timers)
    // while ~50 ms of counting runs. Counting on the JS thread would settle the promise within the first turn.
    const turnsWhileCounting = async (texts: string[]) => {
      const pending = gpt2.countBatch(texts);
      let settled = false;
      void pending.then(
        () => (settled = true),
        () => (settled = true),
      );
      let turns = 0;
      while (!settled) {
        await new Promise((resolve) => setImmediate(resolve));
        turns++;
      }
      return { counts: await pending, turns };
    };
    // The first batch this large also allocates the buffer the texts are copied into, whose first-touch page faults
    // are on the JS thread; on a loaded machine they can take as long as the counting, which then finishes while the
    // copy is still going (the helpers start on the first texts copied). Later batches reuse the buffer.
    const first = await turnsWhileCounting(big);
    expect(Array.from(first.counts)).toEqual(big.map((t) => gpt2.count(t)));
    const again = await turnsWhileCounting(big.map((t) => Buffer.from(t).toString()));
    expect(Array.from(again.counts)).toEqual(Array.from(first.counts));
    expect(again.turns).toBeGreaterThan(2);
  });

  it('streams decoded text without splitting characters', () => {
    for (const tok of [gpt2, llama2]) {
      const text = 'Grüße 👩‍👩‍👧‍👦 and 中文 text — ok';
      const ids = tok.encode(text, { addSpecialTokens: false });
      const stream = tok.decodeStream();
      let out = '';
      for (const id of ids) {
        const piece = stream.step(id);
        expect(piece).not.toContain('\ufffd');
        out += piece;
      }
      out += stream.flush();
      expect(out).toBe(tok.decode(ids));
    }
  });

  it('dispose is idempotent, later calls throw ClosedError, batches in flight finish', async () => {
    const t = await Tokenizer.fromFile(lenmlFile('gpt2'));
    const pending = t.countBatch(['some text', 'more text']);
    t.dispose();
    t.dispose();
    expect(Array.from(await pending)).toEqual([2, 2]);
    expect(() => t.count('x')).toThrow(ClosedError);
    expect(() => t.encode('x')).toThrow(/disposed/);
  });

  it('counts a 100 MB string without stack overflow and exactly', () => {
    const doc = 'Tokenizers split text into words, then merge bytes: 12345 ünïcödé 中文 🙂!\n';
    const n = Math.ceil(100_000_000 / Buffer.byteLength(doc));
    const big = doc.repeat(n);
    expect(gpt2.count(big)).toBe(n * gpt2.count(doc));
    expect(gpt2.count('a'.repeat(1_000_000))).toBeGreaterThan(0);
  });

  it('names the field at fault in a malformed tokenizer.json', async () => {
    const base = JSON.parse(fs.readFileSync(lenmlFile('gpt2'), 'utf8'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-tok-'));
    const write = (name: string, j: unknown) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, JSON.stringify(j));
      return f;
    };
    const bad1 = structuredClone(base);
    bad1.model.merges[3] = 'Ġ';
    await expect(Tokenizer.fromFile(write('a.json', bad1))).rejects.toThrow(/model\.merges\[3\]/);
    const bad2 = structuredClone(base);
    bad2.pre_tokenizer = { type: 'UnicodeScripts' };
    const e2 = await Tokenizer.fromFile(write('b.json', bad2)).catch((e) => e);
    expect(e2).toBeInstanceOf(TokenizerSpecError);
    expect(e2.code).toBe('ERR_TOKENIZER_UNSUPPORTED');
    expect(e2.message).toMatch(/pre_tokenizer\.type/);
    const bad3 = structuredClone(base);
    bad3.model.vocab['Ġthe'] = -1;
    await expect(Tokenizer.fromFile(write('c.json', bad3))).rejects.toThrow(/model\.vocab\["Ġthe"\]/);
    const bad4 = structuredClone(base);
    bad4.pre_tokenizer = { type: 'Split', pattern: { Regex: '(unclosed' }, behavior: 'Isolated', invert: false };
    const e4 = await Tokenizer.fromFile(write('d.json', bad4)).catch((e) => e);
    expect(e4.code).toBe('ERR_TOKENIZER_SPEC');
    expect(e4.message).toMatch(/pre_tokenizer\.pattern\.Regex/);
    await expect(Tokenizer.fromFile(path.join(dir, 'missing.json'))).rejects.toThrow(/cannot read/);
    fs.rmSync(dir, { recursive: true });
  });

  it('takes tokenizer_config.json special tokens from the model vocabulary when tokenizer.json lists no added tokens', async () => {
    // InternLM2's shape: no added_tokens; "<s>" and "</s>" are model tokens (ids 1 and 2), the template's special
    // token comes with its ids, and tokenizer_config.json names them as bos/eos with add_bos/add_eos.
    const j = JSON.parse(fs.readFileSync(lenmlFile('llama2'), 'utf8'));
    j.added_tokens = [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-vocab-specials-'));
    try {
      fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(j));
      const config = { bos_token: '<s>', eos_token: '</s>', add_bos_token: true, add_eos_token: true };
      fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
      const t = await Tokenizer.fromPretrained(dir);
      try {
        expect(t.bosTokenId).toBe(1);
        expect(t.eosTokenIds).toEqual([2]);
        const ids = Array.from(t.encode('hi'));
        expect(ids[0]).toBe(1);
        expect(ids.at(-1)).toBe(2);
        expect(ids.slice(1, -1)).toEqual(Array.from(t.encode('hi', { addSpecialTokens: false })));
        // Special as transformers counts them: skipped by decode with skipSpecialTokens.
        expect(t.isSpecialToken(1)).toBe(true);
        expect(t.decode(ids, { skipSpecialTokens: true })).toBe('hi');
      } finally {
        t.dispose();
      }
      // A token in neither list is still an error naming the config file.
      fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, eos_token: '<nope>' }));
      const err = await Tokenizer.fromPretrained(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TokenizerSpecError);
      expect((err as Error).message).toMatch(
        /tokenizer_config\.json eos_token.*"<nope>" is neither an added token nor/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('renders chat templates and counts chats', async () => {
    const qwen = await Tokenizer.fromPretrained(lenmlDir('qwen3'));
    try {
      const messages = [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Hi!' },
      ];
      const text = qwen.applyChatTemplate(messages, { addGenerationPrompt: true });
      expect(text).toContain('<|im_start|>user\nHi!<|im_end|>');
      expect(text.endsWith('<|im_start|>assistant\n')).toBe(true);
      expect(qwen.countChat(messages, { addGenerationPrompt: true })).toBe(
        qwen.count(text, { addSpecialTokens: false }),
      );
      expect(qwen.encode(text, { addSpecialTokens: false })).toContain(qwen.tokenToId('<|im_start|>'));
      expect(qwen.eosTokenIds.length).toBeGreaterThan(0);
      expect(() => qwen.countChat('hi' as unknown as [])).toThrow(TypeError);
    } finally {
      qwen.dispose();
    }
  });

  it('loads tiktoken encodings by name', async () => {
    const t = await Tokenizer.fromTiktoken('cl100k_base');
    expect(Array.from(t.encode('hello world'))).toEqual([15339, 1917]);
    expect(t.encode('<|endoftext|>')[0]).toBe(100257);
    expect(t.eosTokenIds).toEqual([100257]);
    t.dispose();
    await expect(Tokenizer.fromTiktoken('/nonexistent.tiktoken')).rejects.toThrow();
  });

  it('throws typed errors from every native failure of the sync paths', async () => {
    // The native codes of encode / count / decode each map to a tokmeter class (never a plain Error).
    const internal = toTokmeterError(
      Object.assign(new Error('regex match failed'), { code: 'ERR_TOKENIZER_INTERNAL' }),
    );
    expect(internal).toBeInstanceOf(TokenizerError);
    expect((internal as TokenizerError).code).toBe('ERR_TOKENIZER_INTERNAL');
    const t = await Tokenizer.fromJSON({
      model: { type: 'Unigram', unk_id: null, vocab: [['a', -1]] },
    });
    expect(() => t.encode('ab')).toThrow(TokmeterTypeError); // no unk_id: the reference fails too
    expect(() => t.count('ab')).toThrow(TokmeterTypeError);
    expect(() => t.decode([7])).toThrow(TokmeterTypeError);
    t.dispose();
  });
});
