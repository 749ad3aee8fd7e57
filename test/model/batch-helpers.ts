/**
 * Shared by the batching tests (batching.test.ts, gqa.test.ts): token prompts, cases, solo reference runs, the
 * equality a batched generation must meet, the mean batch size that proves batching really happened, and staggered
 * starts (each newcomer joins a batch already decoding).
 */
import { expect } from 'vitest';
import type { GenerateOptions, GenerationResult, Model } from '../../src/model/index.js';

/** A token prompt of `length` ids, distinct per `seed`. */
export function ids(seed: number, length: number): { tokens: number[] } {
  return { tokens: Array.from({ length }, (_, i) => 100 + ((seed * 7919 + i * 104729) % 5000)) };
}

export interface Case {
  prompt: { tokens: number[] };
  options: GenerateOptions;
}

/** A batched generation equals its solo run: tokens, text, finish reason and usage. */
export function same(a: GenerationResult, b: GenerationResult): void {
  expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
  expect(a.text).toBe(b.text);
  expect(a.finishReason).toBe(b.finishReason);
  expect(a.usage).toEqual(b.usage);
}

/** Each case alone, one after another (the reference; `m` loaded with maxBatch 1). */
export async function soloRuns(m: Model, cs: Case[]): Promise<GenerationResult[]> {
  const out: GenerationResult[] = [];
  for (const c of cs) out.push(await m.generate(c.prompt, c.options).result);
  return out;
}

/** Mean batch size since `before` (stats of the same model). */
export function meanBatch(m: Model, before: { batchSteps: number; batchRows: number }): number {
  const s = m.stats();
  return (s.batchRows - before.batchRows) / Math.max(1, s.batchSteps - before.batchSteps);
}

/** Staggered: each starts once the previous one has its first token, so it joins a batch already decoding. */
export async function staggered(one: Model, batched: Model, cs: Case[]): Promise<void> {
  const want = await soloRuns(one, cs);
  const before = batched.stats();
  const results: Promise<GenerationResult>[] = [];
  for (const c of cs) {
    const run = batched.generate(c.prompt, c.options);
    const it = run[Symbol.asyncIterator]();
    const first = await it.next();
    results.push(
      (async () => {
        const tokens = first.done ? [] : Array.from(first.value.tokens);
        for (let n = await it.next(); !n.done; n = await it.next()) tokens.push(...n.value.tokens);
        const r = await run.result;
        expect(tokens).toEqual(Array.from(r.tokens));
        return r;
      })(),
    );
  }
  const got = await Promise.all(results);
  got.forEach((r, i) => same(r, want[i]!));
  expect(meanBatch(batched, before)).toBeGreaterThan(1);
}
