/**
 * Generation correctness on tiny generated models: KV-cache greedy equals full recompute (fp32 and fp16 KV, with and
 * without position_ids), sampler options each change what they should, seeded reproducibility, stops and usage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type GenerateOptions, type GenerationResult } from '../../src/model/index.js';
import { makeTestModel, recomputeGreedy, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let tiny: string;
let fp16kv: string;
let noPos: string;
let model: Model;

const PROMPTS = ['Hello world', 'The quick brown fox jumps over', 'Once upon a time, in 1984,'];

beforeAll(async () => {
  root = tempDir('gen');
  tiny = await makeTestModel(root.dir, 'tiny');
  fp16kv = await makeTestModel(root.dir, 'tiny-fp16kv', { kvDtype: 'float16' });
  noPos = await makeTestModel(root.dir, 'tiny-nopos', { positionIds: false });
  model = await Model.load(tiny, { threads: 1 });
});
afterAll(async () => {
  await model?.dispose();
  root?.cleanup();
});

async function run(m: Model, prompt: string, options: GenerateOptions): Promise<GenerationResult> {
  return m.generate(prompt, options).result;
}
const sampled = (r: GenerationResult): number[] => Array.from(r.tokens);

describe('KV cache', () => {
  for (const [label, dir] of [
    ['fp32 KV', () => tiny],
    ['fp16 KV', () => fp16kv],
    ['no position_ids', () => noPos],
  ] as const) {
    it(`greedy with the cache equals greedy by full recompute (${label})`, async () => {
      const m = label === 'fp32 KV' ? model : await Model.load(dir(), { threads: 1 });
      try {
        if (label === 'fp16 KV') expect(m.info.kvDtype).toBe('float16');
        if (label === 'no position_ids') expect(m.info.positionIds).toBe(false);
        expect(m.info).toMatchObject({ device: 'cpu', deviceName: 'cpu' });
        for (const prompt of PROMPTS) {
          const ids = Array.from(m.encodePrompt(prompt));
          const r = await run(m, prompt, { maxNewTokens: 24, temperature: 0 });
          const reference = await recomputeGreedy(dir(), ids, 24, [2]);
          expect(sampled(r)).toEqual(reference);
          // The model is not degenerate: the continuation varies and depends on the prompt.
          expect(new Set(reference).size).toBeGreaterThan(3);
        }
      } finally {
        if (m !== model) await m.dispose();
      }
    });
  }
});

describe('usage and stops', () => {
  it('counts prompt tokens as fed (BOS included) and every sampled token', async () => {
    const r = await run(model, 'Hello world', { maxNewTokens: 7, temperature: 0, eosTokenIds: [] });
    expect(r.usage.promptTokens).toBe(model.countPrompt('Hello world'));
    expect(model.encodePrompt('Hello world')[0]).toBe(1); // <s> added by the tokenizer
    expect(r.usage).toEqual({
      promptTokens: r.usage.promptTokens,
      completionTokens: 7,
      totalTokens: r.usage.promptTokens + 7,
      cachedTokens: 0,
    });
    expect(r.finishReason).toBe('length');
    expect(r.tokens.length).toBe(7);
  });

  it('EOS: ends with stop, counts the EOS token, adds no text for it', async () => {
    const base = await run(model, 'Hello world', { maxNewTokens: 10, temperature: 0, eosTokenIds: [] });
    const eos = base.tokens[3]!;
    const r = await run(model, 'Hello world', { maxNewTokens: 10, temperature: 0, eosTokenIds: [eos] });
    const firstEos = Array.from(base.tokens).indexOf(eos);
    expect(r.finishReason).toBe('stop');
    expect(r.usage.completionTokens).toBe(firstEos + 1);
    expect(Array.from(r.tokens)).toEqual(Array.from(base.tokens.slice(0, firstEos + 1)));
    expect(r.text).toBe(model.tokenizer.decode(base.tokens.slice(0, firstEos), { skipSpecialTokens: true }));
  });

  it('stop strings spanning tokens end the text before the stop', async () => {
    const base = await run(model, 'The quick brown fox jumps over', {
      maxNewTokens: 16,
      temperature: 0,
      eosTokenIds: [],
    });
    // A stop string made of the end of one token's text and the start of the next.
    const pieces = Array.from(base.tokens, (_, i) =>
      model.tokenizer.decode(base.tokens.slice(0, i + 1), { skipSpecialTokens: true }),
    );
    const k = pieces.findIndex((p, i) => i > 2 && p.length - pieces[i - 1]!.length >= 2);
    expect(k).toBeGreaterThan(0);
    const cut = pieces[k - 1]!.length;
    const stop = base.text.slice(cut - 1, cut + 2);
    const expectedText = base.text.slice(0, base.text.indexOf(stop));
    const chunks: string[] = [];
    const g = model.generate('The quick brown fox jumps over', {
      maxNewTokens: 16,
      temperature: 0,
      eosTokenIds: [],
      stop: [stop, 'zzzzzz'],
    });
    for await (const c of g) chunks.push(c.text);
    const r = await g.result;
    expect(r.finishReason).toBe('stop');
    expect(r.text).toBe(expectedText);
    expect(chunks.join('')).toBe(expectedText);
    expect(r.usage.completionTokens).toBe(k + 1); // the token completing the stop string counts
  });

  it('text deltas concatenate to the decoded completion and never split a character', async () => {
    // Sampled text from a random model is full of byte-fallback tokens (multi-byte characters split over tokens).
    for (let seed = 0; seed < 4; seed++) {
      const g = model.generate('Hello', { maxNewTokens: 40, temperature: 1.5, seed, eosTokenIds: [] });
      const deltas: string[] = [];
      for await (const c of g) deltas.push(c.text);
      const r = await g.result;
      const decoded = model.tokenizer.decode(r.tokens, { skipSpecialTokens: true });
      expect(deltas.join('')).toBe(decoded);
      for (const d of deltas) expect(d.includes('\uFFFD') ? decoded.includes('\uFFFD') : true).toBe(true);
      for (const d of deltas) expect(/[\uD800-\uDBFF]$/.test(d)).toBe(false); // no lone high surrogate at an end
    }
  });

  it('maxNewTokens ends with length', async () => {
    const r = await run(model, 'Hi', { maxNewTokens: 3, temperature: 0, eosTokenIds: [] });
    expect(r.finishReason).toBe('length');
    expect(r.usage.completionTokens).toBe(3);
  });
});

describe('sampling', () => {
  const P = 'Once upon a time, in 1984,';
  const N = 24;
  let greedy: number[];
  beforeAll(async () => {
    greedy = sampled(await run(model, P, { maxNewTokens: N, temperature: 0, eosTokenIds: [] }));
  });
  const sample = async (o: GenerateOptions): Promise<number[]> =>
    sampled(await run(model, P, { maxNewTokens: N, eosTokenIds: [], ...o }));

  it('is reproducible with a seed and differs across seeds', async () => {
    const a = await sample({ temperature: 1, seed: 7 });
    const b = await sample({ temperature: 1, seed: 7 });
    const c = await sample({ temperature: 1, seed: 8 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).not.toEqual(greedy);
  });

  it('temperature: low temperature converges to greedy, the default does not', async () => {
    expect(await sample({ temperature: 0.01, seed: 3 })).toEqual(greedy);
    expect(await sample({ temperature: 1, seed: 3 })).not.toEqual(greedy);
  });

  it('topK = 1 is greedy under sampling', async () => {
    expect(await sample({ temperature: 1, seed: 3, topK: 1 })).toEqual(greedy);
    const k5 = await sample({ temperature: 1, seed: 3, topK: 5 });
    expect(k5).not.toEqual(await sample({ temperature: 1, seed: 3 }));
  });

  it('topP tiny is greedy under sampling', async () => {
    expect(await sample({ temperature: 1.5, seed: 3, topP: 1e-6 })).toEqual(greedy);
    expect(await sample({ temperature: 1.5, seed: 3, topP: 0.5 })).not.toEqual(
      await sample({ temperature: 1.5, seed: 3 }),
    );
  });

  it('minP = 1 is greedy under sampling', async () => {
    expect(await sample({ temperature: 1.5, seed: 3, minP: 1 })).toEqual(greedy);
    expect(await sample({ temperature: 1.5, seed: 3, minP: 0.1 })).not.toEqual(
      await sample({ temperature: 1.5, seed: 3 }),
    );
  });

  it('repetition, presence and frequency penalties change greedy output and remove or add repeats', async () => {
    // This prompt makes greedy repeat itself a little within 64 tokens (measured: 2 repeats).
    const Q = 'the the the the the';
    const gen = async (o: GenerateOptions): Promise<number[]> =>
      sampled(await run(model, Q, { maxNewTokens: 64, temperature: 0, eosTokenIds: [], ...o }));
    const repeats = (t: number[]): number => t.length - new Set(t).size;
    const base = await gen({});
    expect(repeats(base)).toBeGreaterThan(0);
    for (const o of [{ repetitionPenalty: 5 }, { presencePenalty: 2 }, { frequencyPenalty: 2 }]) {
      const t = await gen(o);
      expect(t).not.toEqual(base);
      expect(repeats(t)).toBeLessThan(repeats(base));
    }
    // Negative values encourage repetition; presence (once per token) and frequency (per occurrence) differ.
    const pres = await gen({ presencePenalty: -2 });
    const freq = await gen({ frequencyPenalty: -2 });
    const rep = await gen({ repetitionPenalty: 0.2 });
    for (const t of [pres, freq, rep]) expect(repeats(t)).toBeGreaterThan(repeats(base) + 20);
    expect(pres).not.toEqual(freq);
  });

  it('logprobs: one per token, <= 0, and the greedy token is the most likely', async () => {
    const g = model.generate(P, { maxNewTokens: 6, temperature: 0, eosTokenIds: [], logprobs: true });
    const lps: number[] = [];
    for await (const c of g) {
      expect(c.logprobs).toBeInstanceOf(Float32Array);
      expect(c.logprobs!.length).toBe(c.tokens.length);
      lps.push(...c.logprobs!);
    }
    expect(lps.length).toBe(6);
    for (const lp of lps) expect(lp).toBeLessThanOrEqual(0);
    // Greedy picks the argmax, whose probability is at least 1/vocab.
    for (const lp of lps) expect(lp).toBeGreaterThan(Math.log(1 / model.info.vocabSize));
  });

  it('topLogprobs: N alternatives per token (id, text, logprob), the greedy token first with its own logprob', async () => {
    const g = model.generate(P, { maxNewTokens: 5, temperature: 0, eosTokenIds: [], logprobs: true, topLogprobs: 4 });
    let steps = 0;
    for await (const c of g) {
      expect(c.topLogprobs).toHaveLength(c.tokens.length);
      c.tokens.forEach((id, i) => {
        const alts = c.topLogprobs![i]!;
        expect(alts).toHaveLength(4);
        expect(alts[0]).toEqual({
          token: id,
          text: model.tokenizer.decode([id], { skipSpecialTokens: false }),
          logprob: c.logprobs![i],
        });
        for (let k = 1; k < alts.length; k++) expect(alts[k]!.logprob).toBeLessThanOrEqual(alts[k - 1]!.logprob);
        steps++;
      });
    }
    expect(steps).toBe(5);
    const plain = await run(model, P, { maxNewTokens: 5, temperature: 0, eosTokenIds: [] });
    expect(sampled(await g.result)).toEqual(sampled(plain)); // listing alternatives changes nothing sampled
    for await (const c of model.generate(P, { maxNewTokens: 2 })) expect(c.topLogprobs).toBeUndefined();
    expect(() => model.generate(P, { topLogprobs: 21 })).toThrow('expected an integer in [0, 20] for topLogprobs');
  });

  it('logitBias: +100 forces a token, -100 bans the greedy one; the rest of the chain sees the biased logits', async () => {
    const base = { maxNewTokens: 4, temperature: 0, eosTokenIds: [] };
    const plain = await run(model, P, base);
    const forced = await run(model, P, { ...base, logitBias: { 42: 100 } });
    expect(sampled(forced)).toEqual([42, 42, 42, 42]);
    const first = plain.tokens[0]!;
    const banned = await run(model, P, { ...base, maxNewTokens: 1, logitBias: { [first]: -100 } });
    expect(banned.tokens[0]).not.toBe(first);
    const seeded = { maxNewTokens: 30, temperature: 1, seed: 4, eosTokenIds: [] };
    const gone = await run(model, P, { ...seeded, logitBias: { [first]: -100 } });
    expect(sampled(gone)).not.toContain(first);
    expect(sampled(await run(model, P, { ...seeded, logitBias: {} }))).toEqual(sampled(await run(model, P, seeded)));
  });

  it('rejects bad options with precise TypeErrors', () => {
    expect(() => model.generate(P, { topP: 0 })).toThrow(/topP/);
    expect(() => model.generate(P, { temperature: -1 })).toThrow(/temperature/);
    expect(() => model.generate(P, { maxNewTokens: -1 })).toThrow(/maxNewTokens, got -1/);
    expect(() => model.generate(P, { topk: 3 } as unknown as GenerateOptions)).toThrow(/unknown option 'topk'/);
    expect(() => model.generate(P, { stop: [''] })).toThrow(/stop/);
  });
});

describe('variants and prompts', () => {
  it('dtype picks the variant file (fp16 weights, KV and logits; external data) and decodes like full recompute', async () => {
    const dir = await makeTestModel(root.dir, 'variants', { dtypes: ['fp32', 'fp16'], externalData: true });
    const m = await Model.load(dir, { threads: 1, dtype: 'fp16' });
    try {
      expect(m.info.file.endsWith('onnx/model_fp16.onnx')).toBe(true);
      expect(m.info.kvDtype).toBe('float16');
      expect(m.info.logitsDtype).toBe('float16');
      expect(m.info.fileBytes).toBeGreaterThan(4_000_000); // the external data file is counted
      const prompt = 'The quick brown fox jumps over';
      const r = await m.generate(prompt, { maxNewTokens: 16, temperature: 0, eosTokenIds: [] }).result;
      const reference = await recomputeGreedy(dir, Array.from(m.encodePrompt(prompt)), 16, [], 'model_fp16.onnx');
      expect(Array.from(r.tokens)).toEqual(reference);
    } finally {
      await m.dispose();
    }
  });

  it('chat prompts: the template is applied, no special tokens added twice; usage equals countPrompt and countChat', async () => {
    const dir = await makeTestModel(root.dir, 'chat', {
      tokenizer: 'llama3',
      layers: 1,
      hidden: 32,
      heads: 2,
      kvHeads: 1,
      intermediate: 64,
    });
    const m = await Model.load(dir, { threads: 1 });
    try {
      const messages = [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi there!' },
      ];
      const ids = m.encodePrompt({ messages });
      const rendered = m.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
      expect(Array.from(ids)).toEqual(Array.from(m.tokenizer.encode(rendered, { addSpecialTokens: false })));
      expect(ids.filter((id) => id === m.tokenizer.bosTokenId).length).toBe(1); // the template writes BOS once
      expect(m.countPrompt({ messages })).toBe(m.tokenizer.countChat(messages, { addGenerationPrompt: true }));
      const r = await m.generate({ messages }, { maxNewTokens: 4, temperature: 0, eosTokenIds: [] }).result;
      expect(r.usage.promptTokens).toBe(ids.length);
      const byIds = await m.generate({ tokens: ids }, { maxNewTokens: 4, temperature: 0, eosTokenIds: [] }).result;
      expect(Array.from(byIds.tokens)).toEqual(Array.from(r.tokens));
    } finally {
      await m.dispose();
    }
  });
});
