/**
 * The model's bounded FIFO queue (Model.load option maxQueue): past it generate() throws QueueFullError
 * (ERR_QUEUE_FULL) synchronously and bills nothing; queued generations still run in order; stats() counts running
 * and queued. One generation is held on the inference thread by an iterator that takes nothing (backpressure).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, QueueFullError } from '../../src/model/index.js';
import { makeTestModel, tempDir } from '../model/helpers.js';

let root: { dir: string; cleanup: () => void };
let tiny: string;

beforeAll(async () => {
  root = tempDir('queue');
  tiny = await makeTestModel(root.dir, 'tiny');
});
afterAll(() => root?.cleanup());

describe('bounded queue', () => {
  it('throws QueueFullError past maxQueue; the queued ones still run, in order', async () => {
    // maxBatch 1: one generation runs at a time, so the held one keeps the others queued.
    const m = await Model.load(tiny, { threads: 1, maxQueue: 2, maxBatch: 1 });
    try {
      const held = m.generate('Hello world', { maxNewTokens: 200, temperature: 0, highWaterMark: 1 });
      const reader = held[Symbol.asyncIterator](); // chunks are acknowledged only as taken: the engine waits
      await expect.poll(() => m.stats().running, { timeout: 5000 }).toBe(1);
      const greedy = { maxNewTokens: 4, temperature: 0, eosTokenIds: [] as number[] };
      const q1 = m.generate('first', greedy);
      const q2 = m.generate('second', greedy);
      expect(m.stats()).toMatchObject({ running: 1, queued: 2 });
      let err: unknown;
      try {
        m.generate('third', greedy);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QueueFullError);
      expect((err as QueueFullError).code).toBe('ERR_QUEUE_FULL');
      expect((err as Error).message).toMatch(/maxQueue 2/);
      expect(m.stats()).toMatchObject({ running: 1, queued: 2 });

      const order: string[] = [];
      void q1.result.then(() => order.push('first'));
      void q2.result.then(() => order.push('second'));
      held.abort();
      await reader.return?.();
      const [r1, r2] = await Promise.all([q1.result, q2.result]);
      expect(r1.usage.completionTokens).toBe(4);
      expect(r2.usage.completionTokens).toBe(4);
      expect(order).toEqual(['first', 'second']);
      expect((await held.result).finishReason).toBe('abort');
      // Room again.
      expect((await m.generate('fourth', greedy).result).usage.completionTokens).toBe(4);
      expect(m.stats()).toMatchObject({ running: 0, queued: 0 });
    } finally {
      await m.dispose();
    }
  });

  it('maxQueue 0 is unbounded; bad values are TypeErrors', async () => {
    const m = await Model.load(tiny, { threads: 1, maxQueue: 0 });
    try {
      const runs = Array.from({ length: 12 }, (_, i) =>
        m.generate(`Prompt ${i}`, { maxNewTokens: 2, temperature: 0, eosTokenIds: [] }),
      );
      for (const r of await Promise.all(runs.map((g) => g.result))) expect(r.usage.completionTokens).toBe(2);
    } finally {
      await m.dispose();
    }
    await expect(Model.load(tiny, { maxQueue: -1 })).rejects.toThrow(/maxQueue/);
    await expect(Model.load(tiny, { maxQueue: 1.5 })).rejects.toThrow(/maxQueue/);
  });
});
