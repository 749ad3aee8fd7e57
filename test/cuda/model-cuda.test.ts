/**
 * Model.load(dir, { device: 'cuda' }): a DeviceUnavailableError (never a crash) where CUDA is unavailable, and — on a
 * GPU machine — the same greedy tokens on CUDA as on CPU for the tiny model (skipped with the reason printed here).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DeviceUnavailableError } from '../../src/cuda/index.js';
import { Model, type ModelLoadOptions } from '../../src/model/index.js';
import { makeTestModel, tempDir } from '../model/helpers.js';
import { gpuSkipReason } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let dir: string;
// ModelLoadOptions['device'] gains 'cuda' with the engine's CUDA path; the cast keeps this file compiling before.
const cuda = (extra: Record<string, unknown> = {}) => ({ device: 'cuda', ...extra }) as unknown as ModelLoadOptions;

beforeAll(async () => {
  root = tempDir('cuda');
  dir = await makeTestModel(root.dir, 'tiny');
});
afterAll(() => root?.cleanup());

it("Model.load with device 'cuda' gives DeviceUnavailableError where CUDA is unavailable", async (ctx) => {
  const reason = await gpuSkipReason();
  if (reason === null) {
    console.log('skipped: CUDA is available here (the parity test below covers this machine)');
    ctx.skip();
  }
  const err = await Model.load(dir, cuda()).then(
    async (m) => {
      await m.dispose();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeviceUnavailableError);
  expect((err as DeviceUnavailableError).code).toBe('ERR_DEVICE_UNAVAILABLE');
  expect((err as Error).message).toMatch(
    /TOKMETER_CUDA=1 npm run build|libcuda\.so\.1|libcublas|libonnxruntime_providers/,
  );
  // The process is intact: a CPU model still loads and runs.
  const cpu = await Model.load(dir, { threads: 1 });
  try {
    const r = await cpu.generate('Hello', { maxNewTokens: 4, temperature: 0 }).result;
    expect(r.tokens.length).toBeGreaterThan(0);
  } finally {
    await cpu.dispose();
  }
});

it('greedy tokens on CUDA equal those on CPU (tiny model)', async (ctx) => {
  const reason = await gpuSkipReason();
  if (reason !== null) {
    console.log(`skipped: CPU-vs-CUDA greedy parity: ${reason}`);
    ctx.skip();
  }
  const prompts = ['Hello world', 'The quick brown fox jumps over the lazy dog.', 'Numbers: 1, 2, 3 and 你好'];
  const cpu = await Model.load(dir, { threads: 1 });
  const gpu = await Model.load(dir, cuda({ deviceId: 0 }));
  try {
    for (const p of prompts) {
      const a = await cpu.generate(p, { maxNewTokens: 32, temperature: 0 }).result;
      const b = await gpu.generate(p, { maxNewTokens: 32, temperature: 0 }).result;
      expect(Array.from(b.tokens)).toEqual(Array.from(a.tokens));
      expect(b.usage).toEqual(a.usage);
    }
    // Seeded sampling: the engine passes the CPU sampler's uniforms to the CUDA sampler, so the ids agree too.
    const sa = await cpu.generate(prompts[0]!, { maxNewTokens: 32, temperature: 0.8, topP: 0.9, seed: 7 }).result;
    const sb = await gpu.generate(prompts[0]!, { maxNewTokens: 32, temperature: 0.8, topP: 0.9, seed: 7 }).result;
    expect(Array.from(sb.tokens)).toEqual(Array.from(sa.tokens));
  } finally {
    await cpu.dispose();
    await gpu.dispose();
  }
});
