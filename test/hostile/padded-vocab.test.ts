/**
 * A model whose vocabulary is padded past its tokenizer's (as checkpoints pad to a multiple of 64 or 128): the
 * padding ids have logits but no text. The model maker's padding ids outscore every real id, so an unmasked sampler
 * would pick one at the first step; the engine masks them, and generation runs as over the real ids alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/model/index.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { makeTestModel, recomputeGreedy, tempDir } from '../model/helpers.js';

let root: { dir: string; cleanup: () => void };
let dir: string;
let model: Model;
let tokenizerVocab = 0;
const PAD = 96;
const SHAPE = { layers: 1, hidden: 64, heads: 2, intermediate: 128 };

beforeAll(async () => {
  root = tempDir('padded');
  const plain = await makeTestModel(root.dir, 'plain', SHAPE);
  const tokenizer = await Tokenizer.fromPretrained(plain);
  tokenizerVocab = tokenizer.vocabSize;
  tokenizer.dispose();
  dir = await makeTestModel(root.dir, 'padded', { ...SHAPE, vocabSize: tokenizerVocab + PAD });
  model = await Model.load(dir, { threads: 1 });
});
afterAll(async () => {
  await model?.dispose();
  root?.cleanup();
});

describe('a tokenizer smaller than the model', () => {
  it('loads and reports both vocabularies and the masked ids', () => {
    expect(model.info.vocabSize).toBe(tokenizerVocab + PAD);
    expect(model.info.tokenizerVocabSize).toBe(tokenizerVocab);
    expect(model.info.maskedTokens).toBeGreaterThanOrEqual(PAD);
  });

  it('the unmasked argmax is a padding id (the reproduction holds)', async () => {
    const prompt = Array.from(model.encodePrompt('Hello world'));
    const [first] = await recomputeGreedy(dir, prompt, 1, []);
    expect(first).toBeGreaterThanOrEqual(tokenizerVocab);
  });

  it('greedy generation never samples a padding id and equals the argmax over the real ids', async () => {
    const prompt = Array.from(model.encodePrompt('Hello world'));
    const run = model.generate({ tokens: prompt }, { maxNewTokens: 12, temperature: 0, eosTokenIds: [] });
    const result = await run.result;
    expect(result.finishReason).toBe('length');
    expect(result.tokens.length).toBe(12);
    for (const id of result.tokens) expect(id).toBeLessThan(tokenizerVocab);
    const reference = await recomputeGreedy(dir, prompt, 12, [], 'model.onnx', tokenizerVocab);
    expect(Array.from(result.tokens)).toEqual(reference);
  });

  it('sampling, top-k and log-probabilities never reach a padding id either', async () => {
    const run = model.generate('Once upon a time', {
      maxNewTokens: 16,
      temperature: 1.5,
      topK: PAD + 10,
      seed: 7,
      logprobs: true,
      eosTokenIds: [],
    });
    const chunks = [];
    for await (const chunk of run) chunks.push(chunk);
    const result = await run.result;
    expect(result.finishReason).toBe('length');
    for (const id of result.tokens) expect(id).toBeLessThan(tokenizerVocab);
    for (const c of chunks) for (const lp of c.logprobs ?? []) expect(Number.isFinite(lp)).toBe(true);
  });
});
