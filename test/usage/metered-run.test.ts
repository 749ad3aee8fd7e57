/**
 * The metered run between admission and settlement: its iterator pulls from the engine's iterator (no queue of its
 * own), leaving early stops the engine and is billed, and an engine failure is billed with the engine's own usage.
 * The engine is a test double, the real `Generation` stream object (src/model) fed with native-shaped events, or the
 * real engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Generation } from '../../src/model/generation.js';
import { Model } from '../../src/model/index.js';
import { asMeterable } from '../../src/server/model-adapter.js';
import type { NativeGeneration, NativeGenerationEvent } from '../../src/native/model-contract.js';
import {
  Meter,
  type MeterableGenerateOptions,
  type MeterableChunk,
  type MeterableResult,
  type GenerationRun,
  type MeterableModel,
  type MeterablePromptInput,
  type UsageRecord,
} from '../../src/usage/index.js';
import { makeTestModel, tempDir } from '../model/helpers.js';
import { DEMO_PRICES, countWords } from './fixtures/fake-model.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** An engine whose `n` chunks are all ready at once; counts the chunks taken from its iterator. */
class ReadyModel implements MeterableModel {
  readonly name = 'demo';
  readonly contextLength = 4096;
  pulled = 0;
  returned = 0;
  constructor(private readonly n: number) {}
  countPrompt(input: MeterablePromptInput): number {
    return countWords(input);
  }
  generate(input: MeterablePromptInput, options: MeterableGenerateOptions = {}): GenerationRun {
    const prompt = countWords(input);
    const max = Math.min(this.n, options.maxNewTokens ?? this.n);
    let produced = 0;
    let settle!: (r: MeterableResult) => void;
    const result = new Promise<MeterableResult>((r) => (settle = r));
    const end = (finishReason: 'length' | 'abort'): void =>
      settle({
        text: 'x'.repeat(produced),
        finishReason,
        usage: { promptTokens: prompt, completionTokens: produced, totalTokens: prompt + produced, cachedTokens: 1 },
      });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the iterator counts on the model
    const self = this;
    return {
      result,
      [Symbol.asyncIterator]: (): AsyncIterator<MeterableChunk> => ({
        next: async () => {
          if (produced >= max) {
            end('length');
            return { value: undefined, done: true };
          }
          self.pulled++;
          produced++;
          return { value: { text: 'x', tokens: Uint32Array.of(7) }, done: false };
        },
        return: async () => {
          self.returned++;
          end('abort');
          return { value: undefined, done: true };
        },
      }),
    };
  }
}

describe('the metered iterator pulls from the engine', () => {
  it('takes a chunk from the engine only when the consumer asks for one', async () => {
    const meter = new Meter({ prices: DEMO_PRICES, cache: false });
    const model = new ReadyModel(1000);
    const run = meter.wrap(model).generate('a b', { key: 'k', maxNewTokens: 1000 });
    await run.admitted;
    const it = run[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    for (let i = 0; i < 20; i++) await turn();
    expect(model.pulled).toBe(2); // a queue between the two would have drained all 1000
    // Leaving early stops the engine; the run is billed for what the engine processed.
    await it.return!();
    expect(model.returned).toBe(1);
    const res = await run.result;
    expect(res.finishReason).toBe('abort');
    expect(res.record).toMatchObject({ finishReason: 'abort', promptTokens: 2, completionTokens: 2, cachedTokens: 1 });
    await expect(it.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('return() before admission is decided stops the engine once it starts', async () => {
    const model = new ReadyModel(10);
    // A shared limiter makes admission asynchronous.
    const limiter = {
      admit: async () => ({ tokens: { settle: () => undefined }, budget: { settle: () => undefined } }),
      charge: async () => undefined,
    };
    const meter = new Meter({ prices: DEMO_PRICES, cache: false, limiter: limiter as never });
    const run = meter.wrap(model).generate('a', { key: 'k', maxNewTokens: 10 });
    const it = run[Symbol.asyncIterator]();
    await it.return!();
    const res = await run.result;
    expect(model.returned).toBe(1);
    expect(res.record).toMatchObject({ finishReason: 'abort', completionTokens: 0 });
  });
});

/** An engine that streams `chunks` chunks and then ends `result` as told (a failure, or a malformed usage). */
function endingModel(chunks: number, end: () => Promise<MeterableResult>): MeterableModel {
  return {
    name: 'demo',
    contextLength: 4096,
    countPrompt: countWords,
    generate: () => {
      const result = (async () => {
        for (let i = 0; i < chunks; i++) await turn();
        return end();
      })();
      result.catch(() => undefined);
      return {
        result,
        async *[Symbol.asyncIterator]() {
          for (let i = 0; i < chunks; i++) yield { text: 'x', tokens: Uint32Array.of(i) };
          await result;
        },
      };
    },
  };
}

describe('engines that report no usage of their own', () => {
  it('a failure without usage is billed as the prompt plus the tokens the consumer took', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({ prices: DEMO_PRICES, cache: false, onRecord: (r) => records.push(r) });
    const run = meter
      .wrap(endingModel(2, () => Promise.reject(new Error('lost'))))
      .generate('a b c', { key: 'k', maxNewTokens: 9 });
    await expect(
      (async () => {
        for await (const _ of run) void _;
      })(),
    ).rejects.toThrow('lost');
    await expect(run.result).rejects.toThrow('lost');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ finishReason: 'error', promptTokens: 3, completionTokens: 2, cachedTokens: 0 });
  });

  it('a malformed usage is an error, still recorded once, and releases the reservation', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({
      prices: DEMO_PRICES,
      cache: false,
      onRecord: (r) => records.push(r),
      limits: { perKey: { tokensPerMinute: 1000 } },
    });
    const bad = { promptTokens: -1, completionTokens: 1, totalTokens: 0, cachedTokens: 0 };
    const run = meter
      .wrap(endingModel(0, async () => ({ text: '', finishReason: 'stop', usage: bad })))
      .generate('a b', { key: 'k', maxNewTokens: 9 });
    await expect(run.result).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ finishReason: 'error', promptTokens: 2, completionTokens: 0 });
    expect(meter.limiter.tokensInWindow('k')).toBe(2);
  });

  it('a usage whose totalTokens is not prompt + completion is malformed too (billed as is or not at all)', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({ prices: DEMO_PRICES, cache: false, onRecord: (r) => records.push(r) });
    const skewed = { promptTokens: 2, completionTokens: 3, totalTokens: 4, cachedTokens: 0 };
    const run = meter
      .wrap(endingModel(0, async () => ({ text: '', finishReason: 'stop', usage: skewed })))
      .generate('a b', { key: 'k', maxNewTokens: 9 });
    await expect(run.result).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ finishReason: 'error', promptTokens: 2, completionTokens: 0, totalTokens: 2 });
  });
});

/** A Model-like engine: real `Generation` objects, fed by the test with native-shaped events. */
class EventModel implements MeterableModel {
  readonly name = 'demo';
  readonly contextLength = 4096;
  readonly runs: { gen: Generation; acked: number; aborted: boolean }[] = [];
  countPrompt(input: MeterablePromptInput): number {
    return countWords(input);
  }
  generate(): GenerationRun {
    const gen = new Generation();
    const entry = { gen, acked: 0, aborted: false };
    const native = {
      abort: () => (entry.aborted = true),
      ack: (n: number) => (entry.acked += n),
    } as unknown as NativeGeneration;
    gen.attach(native, () => undefined);
    this.runs.push(entry);
    return gen;
  }
}

const tokens = (...ids: number[]): NativeGenerationEvent => ({
  tokens: Uint32Array.from(ids),
  text: ids.map((i) => `t${i}`).join(''),
  logprobs: null,
  done: null,
});

describe('usage flows from the engine to the bill unchanged', () => {
  it('an engine failure mid-generation is billed with the engine usage, cachedTokens included', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({
      prices: DEMO_PRICES,
      cache: false,
      onRecord: (r) => records.push(r),
      limits: { perKey: { tokensPerMinute: 10_000 } },
    });
    const model = new EventModel();
    const run = meter.wrap(model).generate('a b c d e', { key: 'k', maxNewTokens: 100 });
    const { gen } = model.runs[0]!;
    const seen: string[] = [];
    const reading = (async () => {
      for await (const c of run) seen.push(c.text);
    })();
    gen.onEvent(tokens(1, 2));
    gen.onEvent(tokens(3));
    await turn();
    const failure = Object.assign(new Error('device lost'), { code: 'ERR_INFERENCE' });
    // The engine counted 5 prompt tokens of which 4 came from its prefix cache, and 4 sampled (one not streamed).
    gen.onEvent({
      ...tokens(),
      done: {
        finishReason: 'error',
        usage: { promptTokens: 5, completionTokens: 4, totalTokens: 9, cachedTokens: 4 },
        error: failure,
      },
    });
    await expect(reading).rejects.toMatchObject({ code: 'ERR_INFERENCE', message: 'device lost' });
    const err = await run.result.catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_INFERENCE',
      usage: { promptTokens: 5, completionTokens: 4, totalTokens: 9, cachedTokens: 4 },
    });
    expect(seen).toEqual(['t1t2', 't3']);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      finishReason: 'error',
      promptTokens: 5,
      completionTokens: 4,
      totalTokens: 9,
      cachedTokens: 4,
    });
    // 1*0.5 + 4*0.25 + 4*1.5 per 1M = 7.5e-6 USD
    expect(records[0]!.cost).toBe(7_500_000n);
    expect(meter.limiter.tokensInWindow('k')).toBe(9); // the reservation settled to the engine's count
  });

  it('acknowledges chunks to the engine only as the consumer takes them; return() aborts and bills the engine count', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({ prices: DEMO_PRICES, cache: false, onRecord: (r) => records.push(r) });
    const model = new EventModel();
    const run = meter.wrap(model).generate('a b', { key: 'k', maxNewTokens: 100 });
    await run.admitted;
    const it = run[Symbol.asyncIterator]();
    const entry = model.runs[0]!;
    for (let i = 0; i < 10; i++) entry.gen.onEvent(tokens(i));
    await turn();
    expect(entry.acked).toBe(0); // nothing read, nothing acknowledged: the engine holds back (parks)
    await it.next();
    await it.next();
    expect(entry.acked).toBe(2);
    await it.return!();
    expect(entry.aborted).toBe(true);
    // The engine ends the aborted generation with its own count.
    entry.gen.onEvent({
      ...tokens(),
      done: {
        finishReason: 'abort',
        usage: { promptTokens: 2, completionTokens: 10, totalTokens: 12, cachedTokens: 1 },
      },
    });
    const res = await run.result;
    expect(res.usage).toEqual({ promptTokens: 2, completionTokens: 10, totalTokens: 12, cachedTokens: 1 });
    expect(records).toEqual([res.record]);
    expect(res.record).toMatchObject({ finishReason: 'abort', completionTokens: 10, cachedTokens: 1 });
  });

  it('a run nobody iterates still settles (chunks are acknowledged on arrival)', async () => {
    const meter = new Meter({ prices: DEMO_PRICES, cache: false });
    const model = new EventModel();
    const run = meter.wrap(model).generate('a', { key: 'k', maxNewTokens: 3 });
    const entry = model.runs[0]!;
    entry.gen.onEvent(tokens(1, 2, 3));
    entry.gen.onEvent({
      ...tokens(),
      done: {
        finishReason: 'length',
        usage: { promptTokens: 1, completionTokens: 3, totalTokens: 4, cachedTokens: 0 },
      },
    });
    expect(entry.acked).toBe(3);
    expect((await run.result).record).toMatchObject({ finishReason: 'length', completionTokens: 3 });
  });
});

describe('with the real engine', () => {
  let tmp: ReturnType<typeof tempDir>;
  let model: Model;

  beforeAll(async () => {
    tmp = tempDir('metered-run');
    model = await Model.load(await makeTestModel(tmp.dir, 'tiny'), { threads: 1, prefixCache: true });
  });

  afterAll(async () => {
    await model?.dispose();
    tmp?.cleanup();
  });

  it('leaving the iterator aborts the engine; the bill is its own count, prefix-cache hits included', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({
      prices: { [model.name]: DEMO_PRICES.models.demo },
      cache: false,
      onRecord: (r) => records.push(r),
    });
    const metered = meter.wrap(asMeterable(model));
    const prompt = 'The same long system prompt, shared by both requests of this test, then a question.';
    await metered.generate(prompt, { key: 'k', maxNewTokens: 2, temperature: 0 }).result; // fills the prefix cache
    const before = model.stats().cachedTokens;
    const run = metered.generate(prompt, { key: 'k', maxNewTokens: 500, temperature: 0 });
    let taken = 0;
    for await (const c of run) {
      taken += c.tokens.length;
      if (taken >= 2) break;
    }
    const res = await run.result;
    expect(res.finishReason).toBe('abort');
    expect(res.record).toMatchObject({
      finishReason: 'abort',
      promptTokens: model.countPrompt(prompt),
      cachedTokens: model.stats().cachedTokens - before,
    });
    expect(res.record.cachedTokens).toBeGreaterThan(0);
    expect(res.record.completionTokens).toBeGreaterThanOrEqual(taken);
    expect(res.record.completionTokens).toBeLessThan(500);
    expect(records).toHaveLength(2);
    expect(model.stats()).toMatchObject({ running: 0, parked: 0 });
  });
});
