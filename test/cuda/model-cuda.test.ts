/**
 * Model.load(dir, { device: 'cuda' }): a DeviceUnavailableError (never a crash) where CUDA is unavailable, and — on a
 * GPU machine — the same greedy tokens on CUDA as on CPU for the tiny model, alone, batched and from the prefix
 * cache (skipped with the reason printed here).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DeviceUnavailableError } from '../../src/cuda/index.js';
import { Model, type ModelLoadOptions } from '../../src/model/index.js';
import { makeTestModel, tempDir } from '../model/helpers.js';
import { readModelConfig } from '../../src/model/config.js';
import { ensureRuntime } from '../../src/runtime.js';
import { gpuSkipReason } from './helpers.js';

let root: { dir: string; cleanup: () => void };
let dir: string;
const cuda = (extra: Partial<ModelLoadOptions> = {}): ModelLoadOptions => ({ device: 'cuda', ...extra });

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
    /TOKMETER_CUDA=1 npm run build|libcuda\.so\.1|libcudart|libcublas|libcurand|libonnxruntime_providers/,
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

it("the engine itself refuses device 'cuda' where CUDA is unavailable (native load, past the TS check)", async (ctx) => {
  const reason = await gpuSkipReason();
  if (reason === null) {
    console.log('skipped: CUDA is available here');
    ctx.skip();
  }
  // CausalLm::Load's CUDA branch (CudaDevice::Open) runs before any ONNX Runtime session exists.
  const config = await readModelConfig(dir);
  const err = await ensureRuntime()
    .addon.loadModel({ dir, device: 'cuda', deviceId: 0, maxBatch: 4, config: config.native })
    .then(
      async (m) => {
        await m.dispose();
        return undefined;
      },
      (e: unknown) => e,
    );
  expect((err as { code?: string }).code).toBe('ERR_DEVICE_UNAVAILABLE');
  expect((err as Error).message).toMatch(/plug-in|libcuda\.so\.1|driver|GPU/);
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
    expect(gpu.info.device).toBe('cuda');
  } finally {
    await cpu.dispose();
    await gpu.dispose();
  }
});

it('batched and prefix-cached generations on CUDA equal CPU solo runs (tiny model)', async (ctx) => {
  const reason = await gpuSkipReason();
  if (reason !== null) {
    console.log(`skipped: CUDA batching and prefix cache: ${reason}`);
    ctx.skip();
  }
  const prompts = Array.from({ length: 6 }, (_, i) => ({
    tokens: Array.from({ length: 3 + i * 9 }, (_, k) => 100 + ((i * 7919 + k * 104729) % 5000)),
  }));
  const options = (i: number) => ({ maxNewTokens: 20 + i * 3, temperature: 0, eosTokenIds: [] });
  const cpu = await Model.load(dir, { threads: 1, maxBatch: 1 });
  const gpu = await Model.load(dir, cuda({ maxBatch: 8, prefixCache: true }));
  try {
    const want: Awaited<ReturnType<Model['generate']>['result']>[] = [];
    for (const [i, p] of prompts.entries()) want.push(await cpu.generate(p, options(i)).result);
    const before = gpu.stats();
    const got = await Promise.all(prompts.map((p, i) => gpu.generate(p, options(i)).result));
    got.forEach((r, i) => expect(Array.from(r.tokens)).toEqual(Array.from(want[i]!.tokens)));
    const after = gpu.stats();
    expect(after.batchRows - before.batchRows).toBeGreaterThan(after.batchSteps - before.batchSteps);
    // The longest prompt again, extended: its prefix comes from the GPU prefix cache, the tokens are unchanged.
    const longer = { tokens: [...prompts[5]!.tokens, 7, 8, 9] };
    const solo = await cpu.generate(longer, options(0)).result;
    const cached = await gpu.generate(longer, options(0)).result;
    expect(cached.usage.cachedTokens).toBe(prompts[5]!.tokens.length);
    expect(Array.from(cached.tokens)).toEqual(Array.from(solo.tokens));
  } finally {
    await cpu.dispose();
    await gpu.dispose();
  }
});
