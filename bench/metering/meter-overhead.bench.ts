/**
 * The Meter's added latency per request, measured against the same model called directly in the same run.
 *
 *   npx tsx bench/metering/meter-overhead.bench.ts [requests=3000] [tokens=32]
 *
 * The model is a zero-cost test double (every token is a resolved promise), so the difference is the Meter's own
 * work: validation, countPrompt, limits, budget, pricing, the record, and (with a ledger) the durable spool append.
 * Rows:
 *   direct                 model.generate(), iterate chunks, await result
 *   metered, no ledger     limits (RPM+TPM+budget) on, response cache on but missed (seeded, distinct prompts)
 *   metered, SqliteLedger  same + record made durable (fdatasync, group-committed) before `result` resolves;
 *                          inserts on the ledger's worker thread (default), then with writeThread: 'main'
 * Time-to-last-chunk is what a streaming client sees; time-to-result includes the durability wait.
 *
 * The target is under 2% of a demo-model request. This bench uses an instant model so that only the Meter's own
 * cost is timed; the percentage is printed against a reference request estimated for GPT-2-small fp32 on 2 threads
 * (~60 ms to first token for a 16-token prompt, ~40 tok/s decode), i.e. 60 + tokens × 25 ms. `bench/server`
 * measures the Meter beside the real Model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Meter,
  SqliteLedger,
  type MeterableModel,
  type MeterableGenerateOptions,
  type GenerationRun,
  type MeterablePromptInput,
  type MeterableChunk,
} from '../../src/usage/index.js';

const N = Number(process.argv[2] ?? 3000);
const TOKENS = Number(process.argv[3] ?? 32);

class InstantModel implements MeterableModel {
  readonly name = 'demo';
  readonly contextLength = 4096;
  countPrompt(input: MeterablePromptInput): number {
    return typeof input === 'string' ? input.length >> 2 : 16;
  }
  generate(input: MeterablePromptInput, o: MeterableGenerateOptions = {}): GenerationRun {
    const n = Math.min(o.maxNewTokens ?? TOKENS, TOKENS);
    const prompt = this.countPrompt(input);
    const chunks: MeterableChunk[] = Array.from({ length: n }, (_, i) => ({
      text: 'x ',
      tokens: Uint32Array.of(i),
    }));
    return {
      result: Promise.resolve({
        text: 'x '.repeat(n),
        finishReason: 'length' as const,
        usage: { promptTokens: prompt, completionTokens: n, totalTokens: prompt + n, cachedTokens: 0 },
      }),
      async *[Symbol.asyncIterator]() {
        for (const c of chunks) yield c;
      },
    };
  }
}

const prices = {
  version: 'bench',
  models: { demo: { inputPer1M: '0.5', cachedInputPer1M: '0.25', outputPer1M: '1.5' } },
};
const limits = {
  perKey: { requestsPerMinute: 10_000_000, tokensPerMinute: 1_000_000_000, budget: { day: '1000000' } },
};

interface Timing {
  lastChunk: number[];
  result: number[];
}

async function measure(
  gen: (i: number) => { iter: AsyncIterable<MeterableChunk>; result: Promise<unknown> },
): Promise<Timing> {
  const t: Timing = { lastChunk: [], result: [] };
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = gen(i);
    for await (const _ of r.iter);
    const t1 = performance.now();
    await r.result;
    const t2 = performance.now();
    if (i >= N / 10) {
      t.lastChunk.push(t1 - t0);
      t.result.push(t2 - t0);
    }
  }
  return t;
}

const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const p99 = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length * 0.99)]!;
const us = (ms: number) => `${(ms * 1000).toFixed(0).padStart(6)} µs`;

const model = new InstantModel();
const dir = mkdtempSync(join(tmpdir(), 'tm-bench-meter-'));
try {
  const direct = await measure((i) => {
    const run = model.generate(`prompt number ${i} with some words in it`, { maxNewTokens: TOKENS, seed: 1 });
    return { iter: run, result: run.result };
  });
  const noLedger = new Meter({ prices, limits });
  const m1 = noLedger.wrap(model);
  const metered = await measure((i) => {
    const run = m1.generate(`prompt number ${i} with some words in it`, {
      key: `k${i % 10}`,
      maxNewTokens: TOKENS,
      seed: 1,
    });
    return { iter: run, result: run.result };
  });
  const withLedger = async (writeThread: 'worker' | 'main'): Promise<Timing> => {
    const ledger = new SqliteLedger(join(dir, `u-${writeThread}.db`), { writeThread });
    await ledger.open();
    const meter = new Meter({ prices, limits, ledger });
    const m = meter.wrap(model);
    const t = await measure((i) => {
      const run = m.generate(`prompt number ${i} with some words in it`, {
        key: `k${i % 10}`,
        maxNewTokens: TOKENS,
        seed: 1,
      });
      return { iter: run, result: run.result };
    });
    await meter.close();
    return t;
  };
  const durable = await withLedger('worker');
  const durableMain = await withLedger('main');

  const ref = 60 + TOKENS * 25;
  console.log(
    `Meter overhead, ${N} sequential requests (first 10% discarded), ${TOKENS} tokens each, node ${process.version}`,
  );
  console.log('                         last chunk (median / p99)     result (median / p99)');
  for (const [name, t] of [
    ['direct (baseline)', direct],
    ['metered, no ledger', metered],
    ['metered, SqliteLedger', durable],
    ['  (writes on JS thread)', durableMain],
  ] as const) {
    console.log(
      `  ${name.padEnd(22)} ${us(med(t.lastChunk))} / ${us(p99(t.lastChunk))}     ${us(med(t.result))} / ${us(p99(t.result))}`,
    );
  }
  const addStream = med(durable.lastChunk) - med(direct.lastChunk);
  const addResult = med(durable.result) - med(direct.result);
  console.log(`  added per request: ${us(addStream)} to the stream, ${us(addResult)} until the record is durable`);
  console.log(
    `  vs a reference demo-model request of ${ref} ms (estimate, not measured here): ` +
      `${((addStream / ref) * 100).toFixed(3)}% (stream), ${((addResult / ref) * 100).toFixed(3)}% (result)  target < 2%`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
