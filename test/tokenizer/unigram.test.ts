// Unigram (SentencePiece) parity with Hugging Face `tokenizers` beyond the corpus runs of parity.test.ts: small
// vocabularies built through the reference's own Unigram model (ties between equal-score segmentations, unk
// fusing, byte fallback, duplicate pieces), and the trained file without an unk_id (the reference fails the encode
// when a character is not covered; so must we, on exactly the same documents).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { buildCorpus } from '../../scripts/tokenizer-corpus.js';
import { UNIGRAM_FIXTURE } from '../../scripts/tokenizer-parity.js';

const require = createRequire(import.meta.url);
const hf = require('tokenizers') as typeof import('tokenizers');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokmeter-unigram-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Saves a reference tokenizer with this Unigram vocabulary and loads it on both sides. */
async function pair(
  vocab: [string, number][],
  opts: { unkId?: number; byteFallback?: boolean },
  name: string,
): Promise<{ ref: import('tokenizers').Tokenizer; ours: Tokenizer }> {
  const t = new hf.Tokenizer(hf.Unigram.init(vocab, opts));
  const file = path.join(tmp, `${name}.json`);
  t.save(file, false);
  const ref = hf.Tokenizer.fromFile(file);
  const ours = await Tokenizer.fromFile(file);
  return { ref, ours };
}

async function refIds(ref: import('tokenizers').Tokenizer, text: string): Promise<number[]> {
  return Array.from((await ref.encode(text, null, { addSpecialTokens: false })).getIds());
}

describe('Unigram against the reference', () => {
  it('breaks ties between equal-score segmentations as the reference does', async () => {
    // Equal scores everywhere: many segmentations tie, the reference keeps the first path found.
    const letters = ['a', 'b', 'c', 'd'];
    const vocab: [string, number][] = [['<unk>', 0]];
    for (const x of letters) vocab.push([x, -1]);
    for (const x of letters) for (const y of letters) vocab.push([x + y, -2]);
    for (const x of ['abc', 'bcd', 'cab', 'dab']) vocab.push([x, -3]);
    const { ref, ours } = await pair(vocab, { unkId: 0 }, 'ties');
    let rng = 7;
    const texts: string[] = ['ab', 'abc', 'abcd', 'aaaa', 'abcabcabc', 'dabcd', 'xxabyyc', ''];
    for (let i = 0; i < 300; i++) {
      let s = '';
      const n = 1 + (i % 23);
      for (let k = 0; k < n; k++) {
        rng = (rng * 1103515245 + 12345) >>> 0;
        s += 'abcdx'[(rng >>> 16) % 5];
      }
      texts.push(s);
    }
    for (const t of texts) expect(Array.from(ours.encode(t)), t).toEqual(await refIds(ref, t));
    ours.dispose();
  });

  it('matches unk fusing, byte fallback and duplicate pieces', async () => {
    const vocab: [string, number][] = [
      ['<unk>', 0],
      ['a', -1.5],
      ['b', -2],
      ['ab', -3.25],
      ['€', -4],
      ['<0xC3>', 0],
      ['<0xA9>', 0],
      ['<0xE2>', 0],
      ['b', -0.5], // duplicate: the reference maps "b" to this later id
      ['<unk>x', -1],
    ];
    const texts = ['ab', 'abba', 'é', 'éé', 'aé€b', '€€', '中文', 'a中é', '<unk>', '<unk>x', 'x<unk>xy', '<0xC3>', ''];
    for (const byteFallback of [false, true]) {
      const { ref, ours } = await pair(vocab, { unkId: 0, byteFallback }, `fallback-${byteFallback}`);
      for (const t of texts) expect(Array.from(ours.encode(t)), `${byteFallback} ${t}`).toEqual(await refIds(ref, t));
      ours.dispose();
    }
  });

  it('fails exactly where the reference fails when there is no unk_id', async () => {
    const ref = hf.Tokenizer.fromFile(UNIGRAM_FIXTURE);
    const ours = await Tokenizer.fromFile(UNIGRAM_FIXTURE);
    let ok = 0,
      failed = 0;
    for (const doc of buildCorpus({ maxBytes: 300_000 })) {
      let r: number[] | undefined;
      try {
        r = await refIds(ref, doc.text);
      } catch {
        r = undefined;
      }
      if (r === undefined) {
        expect(() => ours.encode(doc.text), doc.name).toThrow(/no unk_id/);
        failed++;
      } else {
        expect(Array.from(ours.encode(doc.text)), doc.name).toEqual(r);
        ok++;
      }
    }
    expect(ok).toBeGreaterThan(20);
    expect(failed).toBeGreaterThan(5);
    ours.dispose();
  });

  it('rejects malformed Unigram fields by name', async () => {
    const base = JSON.parse(fs.readFileSync(UNIGRAM_FIXTURE, 'utf8'));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- edits arbitrary fields of a parsed file
    const bad = (edit: (j: any) => void) => {
      const j = structuredClone(base);
      edit(j);
      return Tokenizer.fromJSON(j);
    };
    await expect(bad((j) => (j.model.vocab[3] = ['x']))).rejects.toThrow(/model\.vocab\[3\]/);
    await expect(bad((j) => (j.model.vocab[5] = ['x', 'y']))).rejects.toThrow(/model\.vocab\[5\]\[1\]/);
    await expect(bad((j) => (j.model.unk_id = 8000))).rejects.toThrow(/model\.unk_id/);
    await expect(bad((j) => (j.model.byte_fallback = 'yes'))).rejects.toThrow(/model\.byte_fallback/);
  });
});
