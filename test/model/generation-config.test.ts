/**
 * generation_config.json sampling defaults (src/model/config.ts SamplingDefaults): with do_sample true its
 * temperature/top_p/top_k fill the options the caller leaves out; with do_sample false the default is greedy; the
 * caller's options always win; a file without do_sample keeps tokmeter's defaults; bad values are named.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/model/index.js';
import { makeTestModel, tempDir } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let plainDir: string;
let plain: Model;

function withGenerationConfig(dir: string, extra: Record<string, unknown>): void {
  const file = path.join(dir, 'generation_config.json');
  const base = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...base, ...extra }));
}

beforeAll(async () => {
  root = tempDir('genconfig');
  plainDir = await makeTestModel(root.dir, 'plain');
  plain = await Model.load(plainDir, { threads: 1 });
});
afterAll(async () => {
  await plain?.dispose();
  root?.cleanup();
});

const prompt = 'Once upon a time';
const tokens = async (m: Model, o: Parameters<Model['generate']>[1]): Promise<number[]> =>
  Array.from((await m.generate(prompt, { maxNewTokens: 12, eosTokenIds: [], ...o }).result).tokens);

describe('generation_config.json sampling defaults', () => {
  it('do_sample true: temperature, top_p and top_k become the defaults; the caller still wins', async () => {
    const dir = await makeTestModel(root.dir, 'sample');
    withGenerationConfig(dir, { do_sample: true, temperature: 0.7, top_p: 0.9, top_k: 5 });
    const m = await Model.load(dir, { threads: 1 });
    try {
      for (const seed of [1, 2, 3]) {
        const want = await tokens(plain, { seed, temperature: 0.7, topP: 0.9, topK: 5 });
        expect(await tokens(m, { seed })).toEqual(want);
      }
      // Not what the plain defaults (temperature 1, no top-k/top-p) give, for some seed.
      const differs = await Promise.all(
        [1, 2, 3, 4].map(async (seed) => (await tokens(plain, { seed })).join() !== (await tokens(m, { seed })).join()),
      );
      expect(differs.some(Boolean)).toBe(true);
      expect(await tokens(m, { seed: 1, temperature: 0 })).toEqual(await tokens(plain, { temperature: 0 }));
      expect(await tokens(m, { seed: 2, temperature: 1.3, topK: 0, topP: 1 })).toEqual(
        await tokens(plain, { seed: 2, temperature: 1.3 }),
      );
    } finally {
      await m.dispose();
    }
  });

  it('do_sample false: greedy by default (its temperature is ignored); an explicit temperature samples', async () => {
    const dir = await makeTestModel(root.dir, 'greedy');
    withGenerationConfig(dir, { do_sample: false, temperature: 0.6 });
    const m = await Model.load(dir, { threads: 1 });
    try {
      expect(await tokens(m, { seed: 5 })).toEqual(await tokens(plain, { temperature: 0 }));
      expect(await tokens(m, { seed: 5, temperature: 1 })).toEqual(await tokens(plain, { seed: 5 }));
    } finally {
      await m.dispose();
    }
  });

  it("without do_sample the defaults are tokmeter's own", async () => {
    for (const seed of [1, 2])
      expect(await tokens(plain, { seed })).toEqual(await tokens(plain, { seed, temperature: 1 }));
  });

  it('bad values are a ModelLoadError naming the field', async () => {
    const dir = await makeTestModel(root.dir, 'bad');
    withGenerationConfig(dir, { do_sample: 'yes' });
    await expect(Model.load(dir)).rejects.toThrow(/do_sample/);
    withGenerationConfig(dir, { do_sample: true, top_p: 2 });
    await expect(Model.load(dir)).rejects.toThrow(/top_p/);
  });
});
