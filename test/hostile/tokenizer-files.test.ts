/**
 * Hostile tokenizer.json documents: a huge id in a tiny vocabulary (the parsed-object path used to allocate an array
 * of that size: 1e7 took 4 s and 1.7 GB, 2^31 spun), huge added-token ids, and duplicate added tokens. Each is a
 * TokenizerSpecError (ERR_TOKENIZER_SPEC) naming the field, on the object, string and file paths alike.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tm-tokfiles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function doc(vocab: Record<string, number>, added: { id: number; content: string }[] = []): Record<string, unknown> {
  return {
    version: '1.0',
    added_tokens: added.map((a) => ({ ...a, special: true, normalized: false, lstrip: false, rstrip: false })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', vocab, merges: [] },
  };
}

/** Loads `json` as an object, as a string and as a file; each must reject with the spec error matching `message`. */
async function expectSpecErrorOnEveryPath(json: Record<string, unknown>, message: RegExp): Promise<void> {
  const file = path.join(dir, `t-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(json));
  for (const load of [
    () => Tokenizer.fromJSON(json),
    () => Tokenizer.fromJSON(JSON.stringify(json)),
    () => Tokenizer.fromFile(file),
  ]) {
    const err = await load().then(
      (t) => {
        t.dispose();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: unknown }).code).toBe('ERR_TOKENIZER_SPEC');
    expect((err as Error).message).toMatch(message);
  }
}

describe('ids far beyond the vocabulary', () => {
  it('a model.vocab id of 1e7, 2^31 or 2^32 - 16 in a 4-token vocabulary', async () => {
    for (const id of [1e7, 2 ** 31, 0xfffffff0]) {
      await expectSpecErrorOnEveryPath(doc({ a: 0, b: 1, c: 2, d: id }), /model\.vocab.*far beyond/);
    }
  });

  it('an added token id of 1e9', async () => {
    await expectSpecErrorOnEveryPath(
      doc({ a: 0, b: 1 }, [{ id: 1e9, content: '<x>' }]),
      /added_tokens\[0\].*far beyond/,
    );
  });

  it('a vocabulary with a few holes still loads', async () => {
    const t = await Tokenizer.fromJSON(doc({ a: 0, b: 1, c: 5000 }, [{ id: 6000, content: '<x>' }]));
    expect(t.vocabSize).toBe(6001);
    t.dispose();
  });
});

describe('duplicate added tokens', () => {
  it('two added tokens with one id', async () => {
    await expectSpecErrorOnEveryPath(
      doc({ a: 0 }, [
        { id: 1, content: '<x>' },
        { id: 1, content: '<y>' },
      ]),
      /added_tokens\[1\]\.id.*added_tokens\[0\]/,
    );
  });

  it('two added tokens with one content', async () => {
    await expectSpecErrorOnEveryPath(
      doc({ a: 0 }, [
        { id: 1, content: '<x>' },
        { id: 2, content: '<x>' },
      ]),
      /added_tokens\[1\]\.content.*added_tokens\[0\]/,
    );
  });
});
