/**
 * An engine failure in the middle of a generation, on a real model: a generated model whose ONNX Runtime Run fails
 * once the sequence reaches FAIL_AT tokens (modelgen `failAtLength`). What the engine counted before it failed
 * reaches JS unchanged (the error's `usage`, totalTokens included) and is what the Meter bills — not its admission
 * estimate (prompt + maxNewTokens) nor the tokens a consumer happened to take.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/model/index.js';
import { Meter, type UsageRecord } from '../../src/usage/index.js';
import { makeTestModel, tempDir } from './helpers.js';

const FAIL_AT = 12;

let root: ReturnType<typeof tempDir>;
let model: Model;
let healthy: Model;

beforeAll(async () => {
  root = tempDir('engine-failure');
  model = await Model.load(await makeTestModel(root.dir, 'faulty', { failAtLength: FAIL_AT }), { threads: 1 });
  healthy = await Model.load(await makeTestModel(root.dir, 'healthy'), { threads: 1 });
});
afterAll(async () => {
  await model?.dispose();
  await healthy?.dispose();
  root?.cleanup();
});

describe('an engine failure mid-generation', () => {
  it('rejects with the engine usage of what ran, and the tokens before it equal the model without the fault', async () => {
    const ids = model.tokenizer.encode('Hello world');
    const prompt = ids.length;
    expect(prompt).toBeLessThan(FAIL_AT - 2);
    const run = model.generate('Hello world', { maxNewTokens: 40 });
    const chunks: number[] = [];
    const reading = (async () => {
      for await (const c of run) chunks.push(...c.tokens);
    })();
    const err = (await run.result.catch((e: unknown) => e)) as Error & { code?: string; usage?: unknown };
    await expect(reading).rejects.toBe(err);
    expect(err.code).toBe('ERR_INFERENCE');
    // The prefill (prompt tokens in) and every decode step until the one that would reach FAIL_AT tokens sampled one
    // token each: FAIL_AT - prompt tokens, all streamed before the error.
    const completion = FAIL_AT - prompt;
    expect(err.usage).toEqual({
      promptTokens: prompt,
      completionTokens: completion,
      totalTokens: FAIL_AT,
      cachedTokens: 0,
    });
    expect(chunks).toHaveLength(completion);
    const reference = await healthy.generate('Hello world', { maxNewTokens: completion }).result;
    expect(chunks).toEqual(Array.from(reference.tokens));
  });

  it('the Meter bills the engine count, not its admission estimate nor what the consumer took', async () => {
    const records: UsageRecord[] = [];
    const meter = new Meter({
      prices: { [model.name]: { inputPer1M: 1, outputPer1M: 2 } },
      cache: false,
      onRecord: (r) => records.push(r),
      limits: { perKey: { tokensPerMinute: 100_000 } },
    });
    const prompt = model.tokenizer.encode('Hello world').length;
    // Nobody iterates: the consumer took no token, and the admission reserved prompt + 200.
    const run = meter.wrap(model).generate('Hello world', { key: 'k', maxNewTokens: 200 });
    const err = (await run.result.catch((e: unknown) => e)) as { usage?: unknown };
    const engine = { promptTokens: prompt, completionTokens: FAIL_AT - prompt, totalTokens: FAIL_AT, cachedTokens: 0 };
    expect(err.usage).toEqual(engine);
    await meter.flush();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ finishReason: 'error', ...engine });
    // (1 x prompt + 2 x completion) per 1M tokens, in the table's smallest unit (1e-12 USD).
    expect(records[0]!.cost).toBe(BigInt(prompt + 2 * (FAIL_AT - prompt)) * 1_000_000n);
    expect(meter.limiter.tokensInWindow('k')).toBe(FAIL_AT); // the reservation settled to the engine's count
    await meter.close();
  });
});
