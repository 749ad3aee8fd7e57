import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import {
  Meter,
  SqliteLedger,
  InputTooLongError,
  ContextLengthError,
  PriceError,
  reportToCsv,
  reportToJson,
  type PreparedPrompt,
  type MeterablePromptInput,
  type UsageRecord,
} from '../../src/usage/index.js';
import { TokmeterTypeError, TokmeterError } from '../../src/errors.js';
import { FakeModel, DEMO_PRICES, countWords } from './fixtures/fake-model.js';
import { tempDir } from './helpers.js';

describe('Meter admission happens before any compute', () => {
  const meter = new Meter({ prices: DEMO_PRICES, limits: { maxInputBytes: 64, maxInputTokens: 8 }, cache: false });

  it('refuses raw input over the byte limit before tokenizing', async () => {
    const model = new FakeModel();
    const run = meter.wrap(model).generate('x'.repeat(65), { key: 'k' });
    await expect(run.result).rejects.toBeInstanceOf(InputTooLongError);
    await expect(run.result).rejects.toBeInstanceOf(TokmeterError);
    await expect(run.admitted).rejects.toMatchObject({
      code: 'ERR_INPUT_TOO_LONG',
      limitKind: 'bytes',
      actual: 65,
      limit: 64,
    });
    expect(model.countCalls).toBe(0);
    expect(model.generateCalls).toBe(0);
    // multi-byte characters count as bytes, chat messages count role + content
    await expect(meter.wrap(model).generate('é'.repeat(33), { key: 'k' }).result).rejects.toMatchObject({ actual: 66 });
    await expect(
      meter.wrap(model).generate({ messages: [{ role: 'user', content: 'y'.repeat(61) }] }, { key: 'k' }).result,
    ).rejects.toMatchObject({ actual: 65 });
  });

  it('refuses prompts over maxInputTokens and requests over the context window, with both numbers', async () => {
    const model = new FakeModel({ contextLength: 12 });
    await expect(meter.wrap(model).generate('a b c d e f g h i', { key: 'k' }).result).rejects.toMatchObject({
      limitKind: 'tokens',
      actual: 9,
      limit: 8,
    });
    const err = await meter
      .wrap(model)
      .generate('a b c d e', { key: 'k', maxNewTokens: 8 })
      .result.catch((e) => e);
    expect(err).toBeInstanceOf(ContextLengthError);
    expect(err).toMatchObject({
      code: 'ERR_CONTEXT_LENGTH',
      requestedTokens: 13,
      contextLength: 12,
      promptTokens: 5,
      maxNewTokens: 8,
    });
    expect(model.generateCalls).toBe(0);
  });

  it('a default maxNewTokens is capped by the room left in the context window', async () => {
    const m = new Meter({ prices: DEMO_PRICES, cache: false, limits: { defaultMaxNewTokens: 100 } });
    const model = new FakeModel({ contextLength: 20, stopAfter: 1 });
    await m.wrap(model).generate('a b c d e', { key: 'k' }).result;
    expect(model.lastOptions?.maxNewTokens).toBe(15);
    await m.wrap(new FakeModel({ contextLength: 1000, stopAfter: 1 })).generate('a', { key: 'k' }).result;
    const big = new FakeModel({ contextLength: 1000, stopAfter: 1 });
    await m.wrap(big).generate('a', { key: 'k' }).result;
    expect(big.lastOptions?.maxNewTokens).toBe(100);
    const full = Array.from({ length: 20 }, () => 'w').join(' ');
    await expect(m.wrap(model).generate(full, { key: 'k' }).result).rejects.toBeInstanceOf(ContextLengthError);
  });

  it('defaults maxInputTokens to 4096', async () => {
    const m = new Meter({ prices: DEMO_PRICES, cache: false });
    const model = new FakeModel({ contextLength: 10_000 });
    const words = Array.from({ length: 4097 }, () => 'w').join(' ');
    await expect(m.wrap(model).generate(words, { key: 'k', maxNewTokens: 1 }).result).rejects.toMatchObject({
      limit: 4096,
    });
  });

  it('refuses an unpriced model before compute, and bad arguments synchronously', async () => {
    const model = new FakeModel({ name: 'unknown-model' });
    await expect(meter.wrap(model).generate('hi', { key: 'k', maxNewTokens: 1 }).result).rejects.toBeInstanceOf(
      PriceError,
    );
    expect(model.generateCalls).toBe(0);
    expect(() => meter.wrap(model).generate('hi', {} as never)).toThrow(TokmeterTypeError);
    expect(() => meter.wrap(model).generate('hi', { key: 'k', maxNewTokens: -1 })).toThrow(
      'expected an integer in [1, 2147483647] for maxNewTokens, got -1',
    );
  });
});

describe('Meter records and pricing', () => {
  it('bills the engine usage exactly and passes the reserved maxNewTokens to the model', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({ prices: DEMO_PRICES, cache: false, onRecord: (r) => records.push(r) });
    const model = new FakeModel({ stopAfter: 4, cachedTokens: 2, contextLength: 100 });
    const run = meter
      .wrap(model)
      .generate(
        { messages: [{ role: 'user', content: 'hello there world' }] },
        { key: 'acme', requestId: 'req-1', custom: { audio_ms: 1000 } },
      );
    const chunks: string[] = [];
    for await (const c of run) chunks.push(c.text);
    const res = await run.result;
    expect(chunks.join('')).toBe('tok0 tok1 tok2 tok3 ');
    expect(model.lastOptions?.maxNewTokens).toBe(95); // rest of the context window
    expect(res.usage).toEqual({ promptTokens: 5, completionTokens: 4, totalTokens: 9, cachedTokens: 2 });
    const r = res.record;
    expect(r).toMatchObject({
      id: 'req-1',
      key: 'acme',
      model: 'demo',
      promptTokens: 5,
      cachedTokens: 2,
      completionTokens: 4,
      totalTokens: 9,
      finishReason: 'stop',
      cacheHit: false,
      currency: 'USD',
      priceVersion: 'test-1',
      custom: { audio_ms: 1000 },
    });
    // 3*0.5 + 2*0.25 + 4*1.5 (per 1M) = 8.0e-6 USD = 8_000_000 pico; audio 1000 ms * 1e-7 = 1e-4 USD
    expect(r.cost).toBe(8_000_000n + 100_000_000n);
    expect(records).toEqual([r]);
  });

  it('result settles even if nobody iterates; abort is billed for what ran', async () => {
    const meter = new Meter({ prices: DEMO_PRICES, cache: false });
    const model = new FakeModel({ stepMs: 5 });
    const ac = new AbortController();
    const run = meter.wrap(model).generate('a b', { key: 'k', maxNewTokens: 1000, signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    const res = await run.result;
    expect(res.finishReason).toBe('abort');
    expect(res.record.completionTokens).toBeGreaterThan(0);
    expect(res.record.completionTokens).toBeLessThan(1000);
    // an already-aborted signal never reaches the model
    const before = model.generateCalls;
    await expect(
      meter.wrap(model).generate('a', { key: 'k', maxNewTokens: 1, signal: AbortSignal.abort() }).result,
    ).rejects.toThrow();
    expect(model.generateCalls).toBe(before);
  });

  it('an engine that refuses the job in generate() is a refusal: nothing billed, reservations released', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({
      prices: DEMO_PRICES,
      onRecord: (r) => records.push(r),
      limits: { perKey: { tokensPerMinute: 1000, budget: { day: '1.00' } } },
    });
    const full = Object.assign(new Error('the queue is full'), { code: 'ERR_QUEUE_FULL' });
    const model = new FakeModel({ refuse: full });
    const run = meter.wrap(model).generate('hello world', { key: 'k', maxNewTokens: 8 });
    await expect(run.admitted).rejects.toBe(full);
    await expect(run.result).rejects.toBe(full);
    await expect(
      (async () => {
        for await (const _ of run) void _;
      })(),
    ).rejects.toBe(full);
    expect(model.generateCalls).toBe(1);
    expect(records).toEqual([]);
    expect(meter.limiter.tokensInWindow('k')).toBe(0);
    expect(meter.budgets.spent('k', 'day')).toBe(0n);
  });

  it('an engine failure is recorded with what was processed and the error reaches the caller', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({
      prices: DEMO_PRICES,
      cache: false,
      onRecord: (r) => records.push(r),
      limits: { perKey: { tokensPerMinute: 1000 } },
    });
    const run = meter.wrap(new FakeModel({ failAfter: 3 })).generate('a b c', { key: 'k', maxNewTokens: 10 });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of run) seen.push(c.text);
      })(),
    ).rejects.toThrow('engine failure');
    await expect(run.result).rejects.toThrow('engine failure');
    expect(seen).toHaveLength(3);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ finishReason: 'error', promptTokens: 3, completionTokens: 3 });
    expect(meter.limiter.tokensInWindow('k')).toBe(6); // reservation settled to what ran
  });
});

describe('the engine starts without waiting', () => {
  it('calls generate() before wrap().generate returns when nothing must be loaded; after the spend load otherwise', async () => {
    const meter = new Meter({ prices: DEMO_PRICES, cache: false });
    const model = new FakeModel({ stopAfter: 2 });
    const run = meter.wrap(model).generate('a b', { key: 'k', maxNewTokens: 4 });
    expect(model.generateCalls).toBe(1); // same tick: no microtask hops before the engine
    await run.result;
    // A budget whose period spend comes from the ledger: admission waits for that one query, then starts.
    const dir = tempDir();
    const ledger = new SqliteLedger(join(dir, 'u.db'));
    const budgeted = new Meter({
      prices: DEMO_PRICES,
      cache: false,
      ledger,
      limits: { perKey: { budget: { day: 1 } } },
    });
    const m2 = new FakeModel({ stopAfter: 1 });
    const r2 = budgeted.wrap(m2).generate('a', { key: 'k', maxNewTokens: 2 });
    expect(m2.generateCalls).toBe(0);
    await r2.admitted;
    expect(m2.generateCalls).toBe(1);
    await r2.result;
    const r3 = budgeted.wrap(m2).generate('a', { key: 'k', maxNewTokens: 2 }); // loaded: synchronous again
    expect(m2.generateCalls).toBe(2);
    await r3.result;
    await budgeted.close();
  });

  it('a run is iterated once: a second iterator rejects, a finished one stays done, an early break leaves it', async () => {
    const meter = new Meter({ prices: DEMO_PRICES, cache: false });
    const run = meter.wrap(new FakeModel({ stopAfter: 3 })).generate('a', { key: 'k', maxNewTokens: 5 });
    const it = run[Symbol.asyncIterator]();
    await expect(run[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(TokmeterTypeError);
    const texts: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) texts.push(r.value.text);
    expect(texts).toHaveLength(3);
    await expect(it.next()).resolves.toEqual({ value: undefined, done: true });
    const run2 = meter.wrap(new FakeModel({ stopAfter: 3 })).generate('b', { key: 'k', maxNewTokens: 5 });
    for await (const _ of run2) break;
    // The break returns the engine's iterator (a real engine stops there); this double runs on, and the record is
    // the engine's count either way.
    expect((await run2.result).usage.completionTokens).toBe(3);
  });
});

describe('preparePrompt: one render and encode per request', () => {
  /** A FakeModel that prepares prompts: its cache key is the prompt's words, so spacing does not matter. */
  class PreparingModel extends FakeModel {
    prepareCalls = 0;
    preparedRuns = 0;
    preparePrompt(input: MeterablePromptInput): PreparedPrompt {
      this.prepareCalls++;
      const words = typeof input === 'string' ? input.split(/\s+/).filter(Boolean) : [];
      return {
        promptTokens: countWords(input),
        cacheKey: new TextEncoder().encode(words.join(' ')),
        generate: (o) => {
          this.preparedRuns++;
          return this.generate(input, o);
        },
      };
    }
  }

  it('uses the prepared count, cache key and generate(), never countPrompt or generate(input) directly', async () => {
    const meter = new Meter({ prices: DEMO_PRICES, limits: { maxInputTokens: 4 } });
    const model = new PreparingModel({ stopAfter: 2 });
    const m = meter.wrap(model);
    const first = await m.generate('hello   world', { key: 'k', temperature: 0, maxNewTokens: 3 }).result;
    expect(first.record.promptTokens).toBe(2);
    expect({ prepare: model.prepareCalls, count: model.countCalls, runs: model.preparedRuns }).toEqual({
      prepare: 1,
      count: 0,
      runs: 1,
    });
    // The response cache keys on the prepared bytes: the same words with other spacing are the same input here.
    const again = await m.generate('hello world', { key: 'k', temperature: 0, maxNewTokens: 3 }).result;
    expect(again.cacheHit).toBe(true);
    expect(again.text).toBe(first.text);
    expect(model.preparedRuns).toBe(1);
    // A refusal happens on the prepared count, before the prepared generate() runs.
    await expect(m.generate('one two three four five', { key: 'k', maxNewTokens: 1 }).result).rejects.toBeInstanceOf(
      InputTooLongError,
    );
    expect({ prepare: model.prepareCalls, runs: model.preparedRuns, generate: model.generateCalls }).toEqual({
      prepare: 3,
      runs: 1,
      generate: 1,
    });
  });
});

describe('response cache', () => {
  it('serves deterministic repeats at once, says so in the record, and bills per the table', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({
      prices: DEMO_PRICES,
      onRecord: (r) => records.push(r),
      limits: { perKey: { tokensPerMinute: 100 } },
    });
    const model = new FakeModel({ stopAfter: 3, stepMs: 2 });
    const m = meter.wrap(model);
    const first = await m.generate('same prompt', { key: 'k', temperature: 0, maxNewTokens: 5 }).result;
    const run = m.generate('same prompt', { key: 'k', temperature: 0, maxNewTokens: 5 });
    const chunks = [];
    for await (const c of run) chunks.push(c);
    const second = await run.result;
    expect(model.generateCalls).toBe(1);
    expect(second.cacheHit).toBe(true);
    expect(second.text).toBe(first.text);
    expect(chunks.map((c) => Array.from(c.tokens)).flat()).toEqual([1000, 1001, 1002]);
    expect(second.record.cacheHit).toBe(true);
    expect(second.record.cost).toBe(0n); // cacheHitBilling: free
    expect(second.record.id).not.toBe(first.record.id);
    expect(meter.limiter.tokensInWindow('k')).toBe(first.usage.totalTokens); // hits use no TPM
    // non-deterministic sampling is never cached; a different seed or maxNewTokens is a different entry
    await m.generate('same prompt', { key: 'k', temperature: 0.7, maxNewTokens: 5 }).result;
    await m.generate('same prompt', { key: 'k', temperature: 0.7, seed: 3, maxNewTokens: 5 }).result;
    await m.generate('same prompt', { key: 'k', temperature: 0.7, seed: 3, maxNewTokens: 5 }).result;
    await m.generate('same prompt', { key: 'k', temperature: 0, maxNewTokens: 6 }).result;
    expect(model.generateCalls).toBe(4);
    expect(records.filter((r) => r.cacheHit)).toHaveLength(2);
  });

  it('bills hits at the cached-input rate when the table says so, and honours TTL and byte budget', async () => {
    let now = 1_000_000;
    const meter = new Meter({
      prices: { ...DEMO_PRICES, cacheHitBilling: 'cached-input' },
      cache: { ttlMs: 1000, maxBytes: 4096 },
      now: () => now,
    });
    const model = new FakeModel({ stopAfter: 2 });
    const m = meter.wrap(model);
    await m.generate('a b c d', { key: 'k', seed: 1, maxNewTokens: 4 }).result;
    const hit = await m.generate('a b c d', { key: 'k', seed: 1, maxNewTokens: 4 }).result;
    expect(hit.record.cost).toBe(4n * 250_000n + 2n * 1_500_000n);
    now += 1001;
    const expired = await m.generate('a b c d', { key: 'k', seed: 1, maxNewTokens: 4 }).result;
    expect(expired.cacheHit).toBe(false);
    for (let i = 0; i < 50; i++) await m.generate(`prompt ${i}`, { key: 'k', seed: 1, maxNewTokens: 4 }).result;
    expect(meter.cache!.bytes).toBeLessThanOrEqual(4096);
    expect(meter.cache!.size).toBeLessThan(50);
  });
});

describe('counting API and custom meters', () => {
  it('wraps a counting-only object with the byte limit and RPM', () => {
    const meter = new Meter({ prices: DEMO_PRICES, limits: { maxInputBytes: 10, perKey: { requestsPerMinute: 2 } } });
    const c = meter.wrapCounter({ count: (t: string) => t.length });
    expect(c.count('abc', { key: 'k' })).toBe(3);
    expect(() => c.count('x'.repeat(11), { key: 'k' })).toThrow(InputTooLongError);
    c.count('a', { key: 'k' });
    expect(() => c.count('a', { key: 'k' })).toThrow(/requests per minute/);
  });

  it('records custom meter usage priced by the table, into the ledger and budgets', async () => {
    const dir = tempDir();
    const ledger = new SqliteLedger(join(dir, 'u.db'));
    const meter = new Meter({ prices: DEMO_PRICES, ledger, limits: { perKey: { budget: { day: '1' } } } });
    const r = await meter.record({ key: 'k', model: 'demo', custom: { audio_ms: 90_000 }, requestId: 'audio-1' });
    expect(r.cost).toBe(9_000_000_000n); // 90 s at $0.006/min = $0.009
    expect(meter.budgets.spent('k', 'day')).toBe(9_000_000_000n);
    await meter.flush();
    expect((await ledger.get('audio-1'))?.custom).toEqual({ audio_ms: 90_000 });
    await meter.close();
  });
});

describe('reports', () => {
  it('groups by key, model and day with exact costs, exported as CSV and JSON', async () => {
    const dir = tempDir();
    const ledger = new SqliteLedger(join(dir, 'u.db'));
    const meter = new Meter({ prices: DEMO_PRICES, ledger, cache: false });
    const m = meter.wrap(new FakeModel({ stopAfter: 2 }));
    for (let i = 0; i < 5; i++) await m.generate('a b c', { key: i < 3 ? 'alice' : 'bob', maxNewTokens: 4 }).result;
    const byKey = await meter.report({ groupBy: 'key' });
    expect(byKey.map((r) => [r.group, r.requests, r.totalTokens])).toEqual([
      ['alice', 3, 15],
      ['bob', 2, 10],
    ]);
    // each: 3*0.5 + 2*1.5 = 4.5e-6 USD
    expect(byKey[0]!.cost).toBe(3n * 4_500_000n);
    const byDay = await meter.report({ groupBy: 'day', from: Date.now() - 86_400_000, to: Date.now() + 1000 });
    expect(byDay).toHaveLength(1);
    expect(byDay[0]!.group).toBe(new Date().toISOString().slice(0, 10));
    expect((await meter.report({ groupBy: 'model' }))[0]).toMatchObject({
      group: 'demo',
      requests: 5,
      promptTokens: 15,
      completionTokens: 10,
    });
    expect(await meter.report({ groupBy: 'key', from: Date.now() + 10_000 })).toEqual([]);
    const csv = reportToCsv(byKey);
    expect(csv.split('\r\n')[0]).toBe(
      'group,requests,cache_hits,prompt_tokens,cached_tokens,completion_tokens,total_tokens,cost_pico,cost,currency',
    );
    expect(csv.split('\r\n')[1]).toBe('alice,3,0,9,0,6,15,13500000,0.0000135,USD');
    expect(JSON.parse(JSON.stringify(reportToJson(byKey)))[1]).toMatchObject({
      group: 'bob',
      costPico: '9000000',
      cost: '0.000009',
    });
    await meter.close();
  });
});

describe('Meter.close', () => {
  it('waits for admitted requests so their records are not lost, and refuses new ones', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.db');
    const meter = new Meter({ prices: DEMO_PRICES, ledger: new SqliteLedger(file), cache: false });
    const m = meter.wrap(new FakeModel({ stopAfter: 5, stepMs: 10 }));
    const runs = Array.from({ length: 5 }, (_, i) => m.generate(`request ${i}`, { key: 'k', maxNewTokens: 8 }));
    await Promise.all(runs.map((r) => r.admitted));
    const closing = meter.close();
    await expect(m.generate('late', { key: 'k', maxNewTokens: 1 }).result).rejects.toMatchObject({
      code: 'ERR_LEDGER_CLOSED',
    });
    const results = await Promise.all(runs.map((r) => r.result));
    await closing;
    const check = new SqliteLedger(file);
    expect((await check.ids()).sort()).toEqual(results.map((r) => r.record.id).sort());
    await check.close();
  });
});
