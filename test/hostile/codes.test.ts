/**
 * Stable codes where errors had none: a tokenizer nested thousands of Sequence levels deep (a stack overflow, a
 * RangeError without a code) and a Generation iterated twice (a TypeError without a code).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokmeterTypeError } from '../../src/errors.js';
import { Model } from '../../src/model/index.js';
import { Tokenizer, TokenizerSpecError } from '../../src/tokenizer/index.js';
import { makeTestModel, tempDir } from '../model/helpers.js';

function base(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', vocab: { a: 0, b: 1, '!': 2 }, merges: [] },
    ...extra,
  };
}

function nested(depth: number, key: string, leaf: Record<string, unknown>): Record<string, unknown> {
  let node: Record<string, unknown> = leaf;
  for (let i = 0; i < depth; i++) node = { type: 'Sequence', [key]: [node] };
  return node;
}

/** The same document as text, written by hand (JSON.stringify itself overflows the stack at this depth). */
function nestedText(field: string, depth: number, key: string, leaf: Record<string, unknown>): string {
  const open = `{"type":"Sequence","${key}":[`.repeat(depth);
  const doc = base({});
  delete doc[field];
  const rest = JSON.stringify(doc).slice(1);
  return `{"${field}":${open}${JSON.stringify(leaf)}${']}'.repeat(depth)},${rest}`;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('deeply nested Sequence components', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ['normalizer', 'normalizers', { type: 'Lowercase' }],
    ['pre_tokenizer', 'pretokenizers', { type: 'Whitespace' }],
    ['decoder', 'decoders', { type: 'Fuse' }],
    ['post_processor', 'processors', { type: 'ByteLevel' }],
  ];
  for (const [field, key, leaf] of cases) {
    it(`a 5,000-deep ${field} is a TokenizerSpecError on the object and string paths`, async () => {
      const json = base({ [field]: nested(5000, key, leaf) });
      const text = nestedText(field, 5000, key, leaf);
      for (const load of [() => Tokenizer.fromJSON(json), () => Tokenizer.fromJSON(text)]) {
        const err = await rejection(load());
        expect(err).toBeInstanceOf(TokenizerSpecError);
        expect((err as TokenizerSpecError).code).toBe('ERR_TOKENIZER_SPEC');
        // The JSON reader (or JSON.stringify, for the object) refuses such depth before any component sees it.
        expect((err as Error).message).toMatch(/nested more than/);
      }
      // Within the reader's limit, the component limit names the field.
      const err = await rejection(Tokenizer.fromJSON(base({ [field]: nested(40, key, leaf) })));
      expect(err).toBeInstanceOf(TokenizerSpecError);
      expect((err as Error).message).toMatch(new RegExp(`${field}.*nested more than 32`));
    });
  }

  it('a few levels still load', async () => {
    const t = await Tokenizer.fromJSON(base({ normalizer: nested(3, 'normalizers', { type: 'Lowercase' }) }));
    expect(Array.from(t.encode('AB'))).toEqual([0, 1]);
    t.dispose();
  });
});

describe('a Generation iterated twice', () => {
  let root: { dir: string; cleanup: () => void };
  let model: Model;
  beforeAll(async () => {
    root = tempDir('codes');
    const dir = await makeTestModel(root.dir, 'm', { layers: 1, hidden: 64, heads: 2, intermediate: 128 });
    model = await Model.load(dir, { threads: 1 });
  });
  afterAll(async () => {
    await model?.dispose();
    root?.cleanup();
  });

  it('throws a TypeError with code ERR_ALREADY_ITERATED', async () => {
    const run = model.generate('Hello', { maxNewTokens: 2, temperature: 0 });
    for await (const chunk of run) void chunk;
    let thrown: unknown;
    try {
      run[Symbol.asyncIterator]();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TokmeterTypeError);
    expect((thrown as TokmeterTypeError).code).toBe('ERR_ALREADY_ITERATED');
  });
});
